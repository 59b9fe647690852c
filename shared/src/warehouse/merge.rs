//! What the dimension and fact loads share: the counts a load reports, the SQL the two
//! dialects differ in, reading the curated parts, and the step timings. The loads themselves
//! are [`super::dimension`] and [`super::fact`]: set-based, with what the merge needs
//! bulk-staged into temporary tables and a few statements applying it.

use std::fs::File;
use std::time::Instant;

use arrow::array::RecordBatch;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::{Deserialize, Serialize};

use super::ddl::{Dialect, quote};
use super::text::TextColumn;
use super::tx::{Cells, Tx, Value};
use crate::contract::Dataset;
use crate::{Error, Result};

/// What a load did to one table.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableCounts {
    /// Rows with a natural key the table did not have.
    pub inserted: u64,
    /// Rows that changed the table: a new or slotted version, a type 1 overwrite, a completed
    /// inferred member, a changed fact.
    pub updated: u64,
    /// Rows already in the table as they are.
    pub unchanged: u64,
    /// Inferred members created in this table by a fact (dimensions only).
    #[serde(default)]
    pub inferred: u64,
}

/// SQL fragments that differ between the dialects.
pub(super) struct Sql {
    pub(super) dialect: Dialect,
}

impl Sql {
    /// Null-safe inequality.
    pub(super) fn differs(&self, left: &str, right: &str) -> String {
        match self.dialect {
            Dialect::Postgres => format!("{left} IS DISTINCT FROM {right}"),
            Dialect::Sqlite => format!("{left} IS NOT {right}"),
        }
    }

    /// A boolean column as the integer 1 or 0.
    pub(super) fn flag_integer(&self, column: &str) -> String {
        match self.dialect {
            Dialect::Postgres => format!("CASE WHEN {column} THEN 1 ELSE 0 END"),
            Dialect::Sqlite => format!("CAST({column} AS INTEGER)"),
        }
    }

    pub(super) fn key_type(&self) -> &'static str {
        match self.dialect {
            Dialect::Postgres => "BIGINT",
            Dialect::Sqlite => "INTEGER",
        }
    }

    pub(super) fn timestamp_type(&self) -> &'static str {
        match self.dialect {
            Dialect::Postgres => "TIMESTAMPTZ",
            Dialect::Sqlite => "TEXT",
        }
    }

    pub(super) fn boolean_type(&self) -> &'static str {
        match self.dialect {
            Dialect::Postgres => "BOOLEAN",
            Dialect::Sqlite => "INTEGER",
        }
    }
}

/// `a = b AND …` over pairs of qualified columns.
pub(super) fn join_on(pairs: impl IntoIterator<Item = (String, String)>) -> String {
    pairs.into_iter().map(|(left, right)| format!("{left} = {right}")).collect::<Vec<_>>().join(" AND ")
}

/// Reads the curated parts batch by batch; with `only`, just those columns.
pub(crate) fn batches(files: Vec<File>, only: Option<Vec<String>>) -> impl Iterator<Item = Result<RecordBatch>> + Send {
    files.into_iter().flat_map(move |file| {
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .and_then(|builder| {
                let builder = match &only {
                    Some(names) => {
                        let mask = ProjectionMask::columns(builder.parquet_schema(), names.iter().map(String::as_str));
                        builder.with_projection(mask)
                    }
                    None => builder,
                };
                builder.with_batch_size(16_384).build()
            })
            .map_err(|error| Error::arrow("opening a curated part", error));
        let iterator: Box<dyn Iterator<Item = Result<RecordBatch>> + Send> = match reader {
            Ok(reader) => {
                Box::new(reader.map(|batch| batch.map_err(|error| Error::arrow("reading a curated part", error))))
            }
            Err(error) => Box::new(std::iter::once(Err(error))),
        };
        iterator
    })
}

/// A curated column of the batch by its star-table name; absent (all null) when an older
/// curated file predates it.
pub(super) fn column(batch: &RecordBatch, name: &str) -> Result<Cells> {
    match batch.column_by_name(name) {
        Some(array) => Ok(Cells::Arrow(TextColumn::new(array)?)),
        None => Ok(Cells::Texts(vec![None; batch.num_rows()])),
    }
}

/// The star-table names of the dataset's columns, and the natural key's.
pub(super) struct Names {
    pub(super) data: Vec<String>,
    pub(super) natural_key: Vec<String>,
}

impl Names {
    pub(super) fn of(dataset: &Dataset) -> Names {
        let data = dataset.columns.iter().map(|column| column.target_name().to_string()).collect();
        let natural_key = dataset
            .table
            .natural_key
            .iter()
            .map(|name| dataset.column(name).map_or(name.clone(), |column| column.target_name().to_string()))
            .collect();
        Names { data, natural_key }
    }
}

pub(super) fn quoted(names: &[String]) -> Result<Vec<String>> {
    names.iter().map(|name| quote(name)).collect()
}

/// Reopens the curated parts from their start, for another pass.
pub(super) fn reopen(files: &[File]) -> Result<Vec<File>> {
    files
        .iter()
        .map(|file| {
            let mut file = file.try_clone().map_err(|error| Error::arrow("reopening a curated part", error))?;
            std::io::Seek::rewind(&mut file).map_err(|error| Error::arrow("rewinding a curated part", error))?;
            Ok(file)
        })
        .collect()
}

/// Debug-level timings of a load's steps (`LAKESTAR_LOG=lakestar=debug` offline,
/// `AWS_LAMBDA_LOG_LEVEL=DEBUG` in Lambda).
pub(super) struct Steps<'a> {
    run: &'a str,
    table: &'a str,
    last: Instant,
}

impl<'a> Steps<'a> {
    pub(super) fn new(run: &'a str, table: &'a str) -> Steps<'a> {
        Steps { run, table, last: Instant::now() }
    }

    pub(super) fn done(&mut self, step: &str, rows: usize) {
        let ms = self.last.elapsed().as_millis() as u64;
        tracing::debug!(run = %self.run, table = %self.table, step, rows, ms, "Load step done.");
        self.last = Instant::now();
    }
}

/// The rows of the curated parts, from their footers.
pub(super) fn row_count(files: &[File]) -> Result<u64> {
    Ok(footprint(files)?.0)
}

/// The rows of the curated files and their uncompressed bytes, from their footers.
pub(super) fn footprint(files: &[File]) -> Result<(u64, u64)> {
    let (mut rows, mut bytes) = (0, 0);
    for file in reopen(files)? {
        let builder = ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(|error| Error::arrow("reading a curated part's footer", error))?;
        let metadata = builder.metadata();
        rows += metadata.file_metadata().num_rows().max(0) as u64;
        bytes += metadata.row_groups().iter().map(|group| group.total_byte_size().max(0) as u64).sum::<u64>();
    }
    Ok((rows, bytes))
}

/// ` WHERE EXISTS …`: the rows of `d` whose natural key (quoted columns) is in `staged`.
pub(super) fn where_staged(staged: &str, natural_key: &[String]) -> String {
    let matches = join_on(natural_key.iter().map(|column| (format!("s.{column}"), format!("d.{column}"))));
    format!(" WHERE EXISTS (SELECT 1 FROM {staged} s WHERE {matches})")
}

/// The natural key text of values read back (parts joined by U+001F, null parts empty).
pub(super) fn natural_text(parts: impl Iterator<Item = Value>) -> String {
    let mut parts = parts.map(|part| part.into_text().unwrap_or_default());
    // The first part is taken as it is: a one-column key costs no copy.
    let mut natural = parts.next().unwrap_or_default();
    for part in parts {
        natural.push('\u{1f}');
        natural.push_str(&part);
    }
    natural
}

/// The highest surrogate key (quoted `key`) of `table`, 0 when it is empty.
pub(super) async fn highest_key(tx: &mut Tx, table: &str, key: &str) -> Result<i64> {
    tx.fetch_count(
        &format!("reading the highest key of {table}"),
        format!("SELECT CAST(COALESCE(MAX({key}), 0) AS TEXT) FROM {table}"),
    )
    .await
}
