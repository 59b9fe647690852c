//! The lake bucket: its key layout, its schemas, and the S3 I/O every stage shares.

#[cfg(feature = "embedded-s3")]
mod embedded;
pub mod glue;
mod layout;
mod parquet;
mod s3;
pub mod schema;

#[cfg(feature = "embedded-s3")]
pub use embedded::EmbeddedS3;
pub use layout::*;
pub use parquet::{
    ParquetObjectWriter, PartedWriter, ReadAhead, WriteBudget, raw_writer_properties, writer_properties,
};
pub use s3::{Lake, MIN_PART_SIZE, MultipartWriter, PART_SIZE, percent_encode_key};
pub use schema::LINEAGE;
