//! The lake bucket: its key layout and the S3 I/O every stage shares.

#[cfg(feature = "embedded-s3")]
mod embedded;
mod parquet;
mod s3;

#[cfg(feature = "embedded-s3")]
pub use embedded::EmbeddedS3;
pub use parquet::{
    ParquetObjectWriter, PartedWriter, ReadAhead, WriteBudget, raw_writer_properties, writer_properties,
};
pub use s3::{Lake, MIN_PART_SIZE, MultipartWriter, PART_SIZE, percent_encode_key};

use crate::run::RunDescriptor;

/// `archive/<dataset>/ingest_date=<date>/run=<run>/<file>`: the original bytes.
pub fn archive_key(run: &RunDescriptor) -> String {
    format!("archive/{}/ingest_date={}/run={}/{}", run.dataset, run.ingest_date(), run.id, run.file_name())
}

/// `raw/<dataset>/ingest_date=<date>/run=<run>/`: the folder of the run's raw parts.
pub fn raw_prefix(run: &RunDescriptor) -> String {
    format!("raw/{}/ingest_date={}/run={}/", run.dataset, run.ingest_date(), run.id)
}

/// `quarantine/<dataset>/run=<run>/`: the folder of the run's rejected rows.
pub fn quarantine_prefix(run: &RunDescriptor) -> String {
    format!("quarantine/{}/run={}/", run.dataset, run.id)
}

/// The name of the `index`-th part file of a folder: `part-00000.parquet`.
pub fn part_name(index: usize) -> String {
    format!("part-{index:05}.parquet")
}

/// `processed/<dataset>/ingest_date=<date>/run=<run>/`: the folder of the run's validated parts.
pub fn processed_prefix(run: &RunDescriptor) -> String {
    format!("processed/{}/ingest_date={}/run={}/", run.dataset, run.ingest_date(), run.id)
}
