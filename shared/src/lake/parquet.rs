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
    PROPERTIES.get_or_init(|| Arc::new(properties_builder().build())).clone()
}

/// The same with small pages and dictionaries, for many files written at once: every open
/// column writer buffers a data page and a dictionary, so their limits bound the memory.
fn shared_writer_properties() -> Arc<WriterProperties> {
    static PROPERTIES: OnceLock<Arc<WriterProperties>> = OnceLock::new();
    PROPERTIES
        .get_or_init(|| {
            Arc::new(
                properties_builder()
                    .set_data_page_size_limit(64 * 1024)
                    .set_dictionary_page_size_limit(64 * 1024)
                    .set_write_batch_size(1024)
                    .build(),
            )
        })
        .clone()
}

fn properties_builder() -> parquet::file::properties::WriterPropertiesBuilder {
    let level = ZstdLevel::try_new(1).unwrap_or_default();
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(level))
        // A column of few distinct values fits a small dictionary; one of many (ids, card
        // numbers, lineage) gives up early instead of interning a megabyte per row group,
        // which profiling showed as a tenth of the chain's time.
        .set_dictionary_page_size_limit(64 * 1024)
        .set_max_row_group_row_count(Some(256 * 1024))
        .set_created_by(format!("lakestar {}", env!("CARGO_PKG_VERSION")))
}

/// One Parquet object being written to S3.
pub struct ParquetObjectWriter {
    writer: ArrowWriter<MultipartWriter>,
    schema: SchemaRef,
    key: String,
    rows: u64,
    row_group_bytes: usize,
}

/// How much memory one object being written may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteBudget {
    /// A row group is flushed once its encoded data passes this size.
    pub row_group_bytes: usize,
    /// The multipart upload's part size.
    pub part_bytes: usize,
}

impl WriteBudget {
    /// One object at a time: large row groups and parts.
    pub const SINGLE: WriteBudget = WriteBudget { row_group_bytes: ROW_GROUP_BYTES, part_bytes: super::PART_SIZE };
    /// Many objects at once (one per partition): small row groups and the smallest parts.
    pub const SHARED: WriteBudget = WriteBudget { row_group_bytes: 4 * 1024 * 1024, part_bytes: super::MIN_PART_SIZE };

    fn properties(self) -> Arc<WriterProperties> {
        if self == WriteBudget::SHARED { shared_writer_properties() } else { writer_properties() }
    }
}

impl ParquetObjectWriter {
    /// Starts writing `key` with `schema`. Call from a blocking thread.
    pub fn new(lake: &Lake, key: &str, schema: SchemaRef, handle: Handle) -> Result<ParquetObjectWriter> {
        Self::with_budget(lake, key, schema, handle, WriteBudget::SINGLE)
    }

    /// Starts writing `key` within a memory budget.
    pub fn with_budget(
        lake: &Lake,
        key: &str,
        schema: SchemaRef,
        handle: Handle,
        budget: WriteBudget,
    ) -> Result<ParquetObjectWriter> {
        let sink =
            MultipartWriter::new(lake, key, "application/vnd.apache.parquet", handle).with_part_size(budget.part_bytes);
        let writer = ArrowWriter::try_new(sink, schema.clone(), Some((*budget.properties()).clone()))
            .map_err(|error| Error::arrow(format!("starting Parquet object {key}"), error))?;
        Ok(ParquetObjectWriter {
            writer,
            schema,
            key: key.to_string(),
            rows: 0,
            row_group_bytes: budget.row_group_bytes,
        })
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
        if self.writer.in_progress_size() >= self.row_group_bytes {
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

/// Writes a folder of `part-NNNNN.parquet` objects of one schema, starting a new part every
/// `part_rows` rows.
pub struct PartedWriter {
    lake: Lake,
    handle: Handle,
    prefix: String,
    schema: SchemaRef,
    part_rows: u64,
    writer: Option<ParquetObjectWriter>,
    parts: Vec<String>,
    budget: WriteBudget,
}

impl PartedWriter {
    /// Parts under `prefix` (ending in `/`), nothing written until the first batch.
    pub fn new(lake: &Lake, prefix: &str, schema: SchemaRef, part_rows: u64, handle: Handle) -> PartedWriter {
        PartedWriter {
            lake: lake.clone(),
            handle,
            prefix: prefix.to_string(),
            schema,
            part_rows,
            writer: None,
            parts: Vec::new(),
            budget: WriteBudget::SINGLE,
        }
    }

    /// Writes within a memory budget (see [`WriteBudget::SHARED`] for many writers at once).
    pub fn with_budget(mut self, budget: WriteBudget) -> PartedWriter {
        self.budget = budget;
        self
    }

    /// Appends a batch (empty batches are skipped).
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        if self.writer.is_none() {
            let key = format!("{}{}", self.prefix, super::part_name(self.parts.len()));
            self.writer = Some(ParquetObjectWriter::with_budget(
                &self.lake,
                &key,
                self.schema.clone(),
                self.handle.clone(),
                self.budget,
            )?);
        }
        if let Some(writer) = &mut self.writer {
            writer.write(batch)?;
            if writer.rows() >= self.part_rows {
                self.close_part()?;
            }
        }
        Ok(())
    }

    fn close_part(&mut self) -> Result<()> {
        if let Some(writer) = self.writer.take() {
            let key = writer.key().to_string();
            writer.finish()?;
            self.parts.push(key);
        }
        Ok(())
    }

    /// Completes the last part and returns the keys written.
    pub fn finish(mut self) -> Result<Vec<String>> {
        self.close_part()?;
        Ok(self.parts)
    }
}
