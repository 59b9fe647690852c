//! Parquet objects written straight into S3 multipart uploads, with memory bounded by one
//! row group and one upload part, each encoded on a thread of its own; and Parquet parts
//! decoded a few batches ahead of the stage reading them.

use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
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

/// The writer properties of a raw part: those of every file, without statistics for the
/// source columns. Raw text is kept as received, for audit and replay, and validate reads it
/// whole: the minimum and maximum of arbitrary source text prune nothing, and computing them
/// (a compare of every value) was about a twelfth of ingest's time in `perf`. The lineage
/// columns keep theirs, so a reader can still find a run's or a file's rows by them.
pub fn raw_writer_properties(source_columns: &[String]) -> WriterProperties {
    source_columns
        .iter()
        .fold(properties_builder(), |builder, name| {
            builder.set_column_statistics_enabled(ColumnPath::from(name.as_str()), EnabledStatistics::None)
        })
        .build()
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

/// One Parquet object being written to S3. The caller hands batches over; a thread of the
/// object's own encodes, compresses and uploads them, so that a stage's own work (parsing,
/// checking, masking) and the writing overlap on the two vCPUs Lambda gives from 1 769 MB.
/// The bytes are the same as a writer on the caller's thread would give: one thread writes
/// every batch, in order.
pub struct ParquetObjectWriter {
    schema: SchemaRef,
    key: String,
    rows: u64,
    batches: Option<SyncSender<Message>>,
    encoder: Option<JoinHandle<Result<u64>>>,
}

/// What the caller sends the encoding thread.
enum Message {
    Batch(RecordBatch),
    /// Write the footer and complete the upload.
    Finish,
}

/// Batches waiting for the encoding thread: enough to keep it busy while the caller works
/// on the next, few enough that memory stays bounded by a row group.
const BATCHES_AHEAD: usize = 2;

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
        Self::start(lake, key, schema, handle, budget, (*budget.properties()).clone())
    }

    /// Starts writing `key`, one object at a time, with `properties` (those of
    /// [`writer_properties`] with some columns' settings changed).
    pub fn with_properties(
        lake: &Lake,
        key: &str,
        schema: SchemaRef,
        handle: Handle,
        properties: WriterProperties,
    ) -> Result<ParquetObjectWriter> {
        Self::start(lake, key, schema, handle, WriteBudget::SINGLE, properties)
    }

    fn start(
        lake: &Lake,
        key: &str,
        schema: SchemaRef,
        handle: Handle,
        budget: WriteBudget,
        properties: WriterProperties,
    ) -> Result<ParquetObjectWriter> {
        let sink =
            MultipartWriter::new(lake, key, "application/vnd.apache.parquet", handle).with_part_size(budget.part_bytes);
        let writer = ArrowWriter::try_new(sink, schema.clone(), Some(properties))
            .map_err(|error| Error::arrow(format!("starting Parquet object {key}"), error))?;
        let (batches, received) = mpsc::sync_channel(BATCHES_AHEAD);
        let encoding = Encoding { writer, key: key.to_string(), row_group_bytes: budget.row_group_bytes };
        let encoder = std::thread::Builder::new()
            .name("parquet-writer".to_string())
            .spawn(move || encoding.run(received))
            .map_err(Error::temp_io)?;
        Ok(ParquetObjectWriter {
            schema,
            key: key.to_string(),
            rows: 0,
            batches: Some(batches),
            encoder: Some(encoder),
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

    /// Appends a batch, whose schema must be the writer's.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.schema().fields() != self.schema.fields() {
            return Err(Error::Arrow {
                context: format!("writing {}", self.key),
                source: format!("batch schema {:?} differs from the file's {:?}", batch.schema(), self.schema).into(),
            });
        }
        self.send(Message::Batch(batch.clone()))?;
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    /// Writes the footer and completes the upload; returns the object's size in bytes.
    pub fn finish(mut self) -> Result<u64> {
        self.send(Message::Finish)?;
        self.batches = None;
        self.join()
    }

    /// Hands a message to the encoding thread; when that thread has stopped, its error.
    fn send(&mut self, message: Message) -> Result<()> {
        let sent = self.batches.as_ref().is_some_and(|batches| batches.send(message).is_ok());
        if sent {
            return Ok(());
        }
        // The thread stops early only on an error, which it returns.
        self.batches = None;
        match self.join() {
            Err(error) => Err(error),
            Ok(_) => Err(self.stopped()),
        }
    }

    fn join(&mut self) -> Result<u64> {
        match self.encoder.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) | None => Err(self.stopped()),
        }
    }

    fn stopped(&self) -> Error {
        Error::Arrow {
            context: format!("writing {}", self.key),
            source: "the thread writing the object stopped unexpectedly".into(),
        }
    }
}

impl Drop for ParquetObjectWriter {
    /// A writer dropped before `finish` (an error elsewhere) abandons its object: closing the
    /// channel without `Finish` makes the thread drop its upload, which aborts it.
    fn drop(&mut self) {
        self.batches = None;
        if let Some(encoder) = self.encoder.take() {
            let _ = encoder.join();
        }
    }
}

/// The encoding thread's side of a [`ParquetObjectWriter`].
struct Encoding {
    writer: ArrowWriter<MultipartWriter>,
    key: String,
    row_group_bytes: usize,
}

impl Encoding {
    fn run(mut self, messages: Receiver<Message>) -> Result<u64> {
        for message in messages {
            match message {
                Message::Batch(batch) => {
                    let key = &self.key;
                    self.writer.write(&batch).map_err(|error| Error::arrow(format!("writing {key}"), error))?;
                    if self.writer.in_progress_size() >= self.row_group_bytes {
                        self.writer.flush().map_err(|error| Error::arrow(format!("writing {key}"), error))?;
                    }
                }
                Message::Finish => {
                    let key = self.key;
                    let sink =
                        self.writer.into_inner().map_err(|error| Error::arrow(format!("closing {key}"), error))?;
                    return sink.finish();
                }
            }
        }
        // Abandoned: dropping the writer aborts the upload; nobody reads this result.
        Ok(0)
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

/// Batches decoded on a thread of their own, a few ahead of the caller, so that decoding the
/// next batch (decompressing, unpacking pages) overlaps with the caller's work on this one.
/// Order is kept; a reader thread that stops unexpectedly ends the batches with an error,
/// never silently.
pub struct ReadAhead {
    batches: Option<Receiver<ArrowResult>>,
    reader: Option<JoinHandle<()>>,
    what: String,
}

type ArrowResult = std::result::Result<RecordBatch, arrow::error::ArrowError>;

impl ReadAhead {
    /// Starts reading `batches` (for instance a Parquet or Arrow IPC reader); `what` names
    /// the file in an error.
    pub fn new<I>(batches: I, what: &str) -> Result<ReadAhead>
    where
        I: Iterator<Item = ArrowResult> + Send + 'static,
    {
        let (sender, received) = mpsc::sync_channel(BATCHES_AHEAD);
        let reader = std::thread::Builder::new()
            .name("batch-reader".to_string())
            .spawn(move || {
                for batch in batches {
                    if sender.send(batch).is_err() {
                        break;
                    }
                }
            })
            .map_err(Error::temp_io)?;
        Ok(ReadAhead { batches: Some(received), reader: Some(reader), what: what.to_string() })
    }
}

impl Iterator for ReadAhead {
    type Item = ArrowResult;

    fn next(&mut self) -> Option<ArrowResult> {
        if let Some(batch) = self.batches.as_ref().and_then(|batches| batches.recv().ok()) {
            return Some(batch);
        }
        // The thread closed the channel: either every batch was read, or it panicked.
        self.batches = None;
        match self.reader.take().map(JoinHandle::join) {
            Some(Err(_)) => Some(Err(arrow::error::ArrowError::ExternalError(
                format!("the thread reading {} stopped unexpectedly", self.what).into(),
            ))),
            Some(Ok(())) | None => None,
        }
    }
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        // Closing the channel stops the thread at its next batch.
        self.batches = None;
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Array, Int64Array};
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn numbered(start: i64) -> ArrowResult {
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        Ok(RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![start]))]).expect("batch"))
    }

    fn first_value(batch: &RecordBatch) -> i64 {
        batch.column(0).as_any().downcast_ref::<Int64Array>().map_or(-1, |values| values.value(0))
    }

    #[test]
    fn batches_read_ahead_arrive_all_and_in_order() {
        let read: Vec<i64> = ReadAhead::new((0..500).map(numbered), "part-00000.parquet")
            .expect("started")
            .map(|batch| first_value(&batch.expect("a batch")))
            .collect();
        assert_eq!(read, (0..500).collect::<Vec<_>>());
    }

    #[test]
    fn a_reader_that_panics_ends_with_an_error_naming_the_file_not_silently() {
        let batches = (0..5).map(|n| if n < 3 { numbered(n) } else { panic!("a broken page") });
        let read: Vec<ArrowResult> = ReadAhead::new(batches, "part-00007.parquet").expect("started").collect();
        assert_eq!(read.len(), 4, "three batches, then the error");
        assert_eq!(
            read.iter().take(3).map(|batch| batch.as_ref().map(first_value).ok()).collect::<Vec<_>>(),
            [Some(0), Some(1), Some(2)]
        );
        let error = read[3].as_ref().expect_err("an error");
        assert!(error.to_string().contains("part-00007.parquet"), "{error}");
    }

    #[test]
    fn a_reader_dropped_early_stops_its_thread() {
        let mut batches = ReadAhead::new((0..).map(numbered), "endless").expect("started");
        assert_eq!(batches.next().map(|batch| first_value(&batch.expect("a batch"))), Some(0));
        drop(batches); // joins the thread: returns only because the thread stops
    }
}
