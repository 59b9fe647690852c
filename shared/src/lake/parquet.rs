//! Parquet objects written straight into S3 multipart uploads, with memory bounded by one
//! row group and one upload part.

use std::sync::{Arc, OnceLock};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use tokio::runtime::Handle;

use super::{Lake, MultipartWriter};
use crate::{Error, Result};

/// A row group is flushed once its encoded data passes this size.
const ROW_GROUP_BYTES: usize = 32 * 1024 * 1024;

/// The writer properties of every Parquet file Lakestar writes: zstd, dictionaries, page
/// statistics, and a fixed `created_by` so that the same rows give the same bytes.
pub fn writer_properties() -> Arc<WriterProperties> {
    static PROPERTIES: OnceLock<Arc<WriterProperties>> = OnceLock::new();
    PROPERTIES
        .get_or_init(|| {
            let level = ZstdLevel::try_new(3).unwrap_or_default();
            Arc::new(
                WriterProperties::builder()
                    .set_compression(Compression::ZSTD(level))
                    .set_max_row_group_row_count(Some(1024 * 1024))
                    .set_created_by(format!("lakestar {}", env!("CARGO_PKG_VERSION")))
                    .build(),
            )
        })
        .clone()
}

/// One Parquet object being written to S3.
pub struct ParquetObjectWriter {
    writer: ArrowWriter<MultipartWriter>,
    schema: SchemaRef,
    key: String,
    rows: u64,
}

impl ParquetObjectWriter {
    /// Starts writing `key` with `schema`. Call from a blocking thread.
    pub fn new(lake: &Lake, key: &str, schema: SchemaRef, handle: Handle) -> Result<ParquetObjectWriter> {
        let sink = MultipartWriter::new(lake, key, "application/vnd.apache.parquet", handle);
        let writer = ArrowWriter::try_new(sink, schema.clone(), Some((*writer_properties()).clone()))
            .map_err(|error| Error::arrow(format!("starting Parquet object {key}"), error))?;
        Ok(ParquetObjectWriter { writer, schema, key: key.to_string(), rows: 0 })
    }

    /// The object's key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Bytes produced so far, flushed or buffered.
    pub fn size(&self) -> usize {
        self.writer.bytes_written() + self.writer.in_progress_size()
    }

    /// Appends a batch, whose schema must be the writer's.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.schema().fields() != self.schema.fields() {
            return Err(Error::Arrow {
                context: format!("writing {}", self.key),
                source: format!("batch schema {:?} differs from the file's {:?}", batch.schema(), self.schema).into(),
            });
        }
        self.writer.write(batch).map_err(|error| Error::arrow(format!("writing {}", self.key), error))?;
        self.rows += batch.num_rows() as u64;
        if self.writer.in_progress_size() >= ROW_GROUP_BYTES {
            self.writer.flush().map_err(|error| Error::arrow(format!("writing {}", self.key), error))?;
        }
        Ok(())
    }

    /// Writes the footer and completes the upload; returns the object's size in bytes.
    pub fn finish(self) -> Result<u64> {
        let key = self.key;
        let sink = self.writer.into_inner().map_err(|error| Error::arrow(format!("closing {key}"), error))?;
        sink.finish()
    }
}
