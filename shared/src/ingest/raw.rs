//! Writers of the ingest stage's outputs: raw Parquet parts (every source column as text
//! plus lineage) and the parse rejects in quarantine (Parquet and CSV).

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Builder, StringArray, StringBuilder, TimestampMicrosecondArray};
use arrow::record_batch::RecordBatch;
use tokio::runtime::Handle;

use crate::lake::{self, Lake, MultipartWriter, ParquetObjectWriter, schema};
use crate::run::RunDescriptor;
use crate::{Error, Result};

/// Rows per Arrow batch.
pub const BATCH_ROWS: usize = 8192;

/// A new part starts after this many rows, so that later stages can work part by part.
const PART_ROWS: u64 = 4 * 1024 * 1024;

/// Context every writer of one run shares.
#[derive(Clone)]
pub struct RunWriter {
    /// Where to write.
    pub lake: Lake,
    /// The run.
    pub run: RunDescriptor,
    /// The runtime the uploads block on.
    pub handle: Handle,
}

/// Writes raw parts: batches of text columns, rolled into `part-NNNNN.parquet` files.
pub struct RawWriter {
    context: RunWriter,
    columns: Vec<String>,
    builders: Vec<StringBuilder>,
    lines: Int64Builder,
    pending: usize,
    writer: Option<ParquetObjectWriter>,
    parts: Vec<String>,
    rows: u64,
}

impl RawWriter {
    /// A writer with no columns yet.
    pub fn new(context: RunWriter) -> RawWriter {
        RawWriter {
            context,
            columns: Vec::new(),
            builders: Vec::new(),
            lines: Int64Builder::with_capacity(BATCH_ROWS),
            pending: 0,
            writer: None,
            parts: Vec::new(),
            rows: 0,
        }
    }

    /// Adds a source column. When rows were already written, the current part is closed so
    /// that every part has one schema; the next part has the new column too.
    pub fn add_column(&mut self, name: &str) -> Result<()> {
        if self.writer.is_some() || !self.parts.is_empty() {
            self.flush()?;
            self.close_part()?;
        }
        let mut builder = StringBuilder::with_capacity(BATCH_ROWS, BATCH_ROWS * 16);
        // Rows still pending (before the first part opens) lack the new column.
        for _ in 0..self.pending {
            builder.append_null();
        }
        self.columns.push(name.to_string());
        self.builders.push(builder);
        Ok(())
    }

    /// Appends one row; `values` gives the source columns in order (missing trailing
    /// columns are null).
    pub fn push<'v>(&mut self, line: u64, values: impl IntoIterator<Item = Option<&'v str>>) -> Result<()> {
        let mut count = 0;
        for (builder, value) in self.builders.iter_mut().zip(values) {
            builder.append_option(value);
            count += 1;
        }
        for builder in &mut self.builders[count..] {
            builder.append_null();
        }
        self.lines.append_value(i64::try_from(line).unwrap_or(i64::MAX));
        self.pending += 1;
        self.rows += 1;
        if self.pending >= BATCH_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    /// Rows pushed so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    fn flush(&mut self) -> Result<()> {
        if self.pending == 0 {
            return Ok(());
        }
        let rows = std::mem::take(&mut self.pending);
        let run = &self.context.run;
        let mut arrays: Vec<ArrayRef> =
            self.builders.iter_mut().map(|builder| Arc::new(builder.finish()) as ArrayRef).collect();
        arrays.push(Arc::new(StringArray::from(vec![run.key.as_str(); rows])));
        arrays.push(Arc::new(self.lines.finish()));
        arrays.push(Arc::new(StringArray::from(vec![run.id.as_str(); rows])));
        let ingested_at = run.time.timestamp_micros();
        arrays.push(Arc::new(TimestampMicrosecondArray::from(vec![ingested_at; rows]).with_timezone("UTC")));
        let batch = RecordBatch::try_new(schema::raw_schema(&self.columns), arrays)
            .map_err(|error| Error::arrow(format!("building a raw batch of {}", run.key), error))?;

        if self.writer.is_none() {
            let key = format!("{}{}", lake::raw_prefix(run), lake::part_name(self.parts.len()));
            self.writer = Some(ParquetObjectWriter::with_properties(
                &self.context.lake,
                &key,
                batch.schema(),
                self.context.handle.clone(),
                lake::raw_writer_properties(&self.columns),
            )?);
        }
        if let Some(writer) = &mut self.writer {
            writer.write(&batch)?;
            if writer.rows() >= PART_ROWS {
                self.close_part()?;
            }
        }
        Ok(())
    }

    fn close_part(&mut self) -> Result<()> {
        if let Some(writer) = self.writer.take() {
            let key = writer.key().to_string();
            let rows = writer.rows();
            let bytes = writer.finish()?;
            tracing::info!(run = %self.context.run.id, key = %key, rows, bytes, "Wrote raw part.");
            self.parts.push(key);
        }
        Ok(())
    }

    /// Writes what is pending and returns the keys of the parts written.
    pub fn finish(mut self) -> Result<Vec<String>> {
        self.flush()?;
        self.close_part()?;
        Ok(std::mem::take(&mut self.parts))
    }
}

/// A row that could not be parsed: where it was, why, and its text as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseReject {
    /// The line (CSV, NDJSON) or element number (JSON array, Parquet) of the row.
    pub line: u64,
    /// `parse:<what>`, e.g. `parse:field_count(expected 5, got 4)`.
    pub reason: String,
    /// The row's text (invalid bytes replaced by U+FFFD).
    pub raw: String,
}

/// Streams parse rejects to `quarantine/<dataset>/run=<run>/ingest_rejected.{parquet,csv}`;
/// writes nothing when no row is rejected.
pub struct RejectWriter {
    context: RunWriter,
    pending: Vec<ParseReject>,
    parquet: Option<ParquetObjectWriter>,
    csv: Option<csv::Writer<MultipartWriter>>,
    rows: u64,
}

impl RejectWriter {
    /// A writer for the run's parse rejects.
    pub fn new(context: RunWriter) -> RejectWriter {
        RejectWriter { context, pending: Vec::new(), parquet: None, csv: None, rows: 0 }
    }

    /// Quarantines one row.
    pub fn push(&mut self, reject: ParseReject) -> Result<()> {
        tracing::debug!(run = %self.context.run.id, line = reject.line, reason = %reject.reason, "Row quarantined at parse.");
        self.pending.push(reject);
        self.rows += 1;
        if self.pending.len() >= BATCH_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    /// Rows quarantined so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let rejects = std::mem::take(&mut self.pending);
        let run = &self.context.run;
        let [parquet_key, csv_key] = lake::parse_reject_keys(run);
        if self.parquet.is_none() {
            self.parquet = Some(ParquetObjectWriter::new(
                &self.context.lake,
                &parquet_key,
                schema::parse_reject_schema(),
                self.context.handle.clone(),
            )?);
            let sink = MultipartWriter::new(&self.context.lake, &csv_key, "text/csv", self.context.handle.clone());
            let mut writer = csv::Writer::from_writer(sink);
            writer.write_record(schema::PARSE_REJECT_COLUMNS).map_err(|error| csv_error(&csv_key, error))?;
            self.csv = Some(writer);
        }
        let rows = rejects.len();
        let lines: Vec<i64> = rejects.iter().map(|reject| i64::try_from(reject.line).unwrap_or(i64::MAX)).collect();
        let batch = RecordBatch::try_new(
            schema::parse_reject_schema(),
            vec![
                Arc::new(arrow::array::Int64Array::from(lines)),
                Arc::new(StringArray::from_iter_values(rejects.iter().map(|reject| reject.reason.as_str()))),
                Arc::new(StringArray::from_iter_values(rejects.iter().map(|reject| reject.raw.as_str()))),
                Arc::new(StringArray::from(vec![run.key.as_str(); rows])),
                Arc::new(StringArray::from(vec![run.id.as_str(); rows])),
            ],
        )
        .map_err(|error| Error::arrow(format!("building a reject batch of {}", run.key), error))?;
        if let Some(parquet) = &mut self.parquet {
            parquet.write(&batch)?;
        }
        if let Some(csv) = &mut self.csv {
            for reject in &rejects {
                let line = reject.line.to_string();
                csv.write_record([line.as_str(), &reject.reason, &reject.raw, &run.key, &run.id])
                    .map_err(|error| csv_error(&csv_key, error))?;
            }
        }
        Ok(())
    }

    /// Writes what is pending, completes the files, and returns their keys (none when no
    /// row was rejected).
    pub fn finish(mut self) -> Result<Vec<String>> {
        self.flush()?;
        let mut keys = Vec::new();
        if let Some(parquet) = self.parquet.take() {
            keys.push(parquet.key().to_string());
            parquet.finish()?;
        }
        if let Some(csv) = self.csv.take() {
            let [_, csv_key] = lake::parse_reject_keys(&self.context.run);
            let sink = csv.into_inner().map_err(|error| csv_error(&csv_key, error.into_error()))?;
            sink.finish()?;
            keys.push(csv_key);
        }
        Ok(keys)
    }
}

fn csv_error(key: &str, error: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::arrow(format!("writing {key}"), error)
}
