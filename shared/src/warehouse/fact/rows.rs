//! The fact rows as they are staged: each row's dimension keys looked up as of its date,
//! its date key, its columns and the run id, made on the staging thread.

use std::collections::BTreeSet;
use std::fs::File;

use arrow::array::{Array, BooleanArray, RecordBatch, StringArray};
use arrow::compute::filter_record_batch;

use super::index::{DimensionIndex, Reference, reference_key};
use crate::Result;
use crate::warehouse::cells::{Cells, StageBatch};
use crate::warehouse::curated::{batches, column, reopen};
use crate::warehouse::dates::date_key;
use crate::warehouse::staging::Producer;
use crate::warehouse::text::TextColumn;

/// The fact rows with their dimension and date keys, in the fact table's column order, made
/// on the staging thread.
pub(super) struct FactRows {
    pub(super) batches: Box<dyn Iterator<Item = Result<RecordBatch>> + Send>,
    pub(super) references: Vec<Reference>,
    pub(super) indexes: Vec<DimensionIndex>,
    pub(super) date_column: Option<String>,
    pub(super) data: Vec<String>,
    pub(super) run_id: String,
    pub(super) dates: BTreeSet<chrono::NaiveDate>,
    pub(super) rows: u64,
    /// The facts set aside for a member a `quarantine` reference's dimension lacks.
    pub(super) quarantine: Quarantine,
}

/// The facts a load quarantines (`on_missing = "quarantine"`): the curated rows with their
/// `_reasons`, spooled to a local Parquet file as they are met.
#[derive(Default)]
pub(crate) struct Quarantine {
    writer: Option<parquet::arrow::ArrowWriter<File>>,
    /// How many rows were set aside.
    pub(crate) rows: u64,
    /// Rows set aside per dimension lacking their member (a row lacking two counts twice).
    pub(crate) per_dimension: std::collections::BTreeMap<String, u64>,
}

/// The reason of a fact set aside because `dimension` lacks the member its `columns` name.
pub fn member_missing(columns: &[String], dimension: &str) -> String {
    format!("{}:member_missing({dimension})", columns.join("+"))
}

impl Quarantine {
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if self.writer.is_none() {
            let file = tempfile::tempfile().map_err(crate::Error::temp_io)?;
            let writer = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None)
                .map_err(|error| crate::Error::arrow("spooling quarantined facts", error))?;
            self.writer = Some(writer);
        }
        if let Some(writer) = &mut self.writer {
            writer.write(batch).map_err(|error| crate::Error::arrow("spooling quarantined facts", error))?;
        }
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    /// The spooled Parquet file, when any fact was set aside.
    pub(crate) fn finish(self) -> Result<Option<File>> {
        let Some(writer) = self.writer else { return Ok(None) };
        let mut file =
            writer.into_inner().map_err(|error| crate::Error::arrow("finishing the quarantined facts", error))?;
        std::io::Seek::rewind(&mut file).map_err(crate::Error::temp_io)?;
        Ok(Some(file))
    }
}

impl FactRows {
    /// Sets aside the facts naming a member a `quarantine` reference's dimension lacks, each
    /// with the missing key in its reason; the facts that remain, or `None` when all remain.
    fn set_aside(&mut self, batch: &RecordBatch) -> Result<Option<RecordBatch>> {
        let count = batch.num_rows();
        let mut reasons: Vec<String> = vec![String::new(); count];
        let mut buffer = String::new();
        for (reference, index) in self.references.iter().zip(&self.indexes) {
            if reference.on_missing != crate::contract::OnMissing::Quarantine {
                continue;
            }
            let fact: Vec<Cells> =
                reference.fact_columns.iter().map(|name| column(batch, name)).collect::<Result<_>>()?;
            let dimension = reference.table.trim_matches('"').to_string();
            let rule = member_missing(&reference.named_columns, &dimension);
            for (row, reason) in reasons.iter_mut().enumerate() {
                if let Some(natural) = reference_key(&fact, row, &mut buffer)
                    && !index.versions.contains_key(natural)
                {
                    if !reason.is_empty() {
                        reason.push_str("; ");
                    }
                    reason.push_str(&format!("{rule}={}", natural.replace('\u{1f}', ",")));
                    *self.quarantine.per_dimension.entry(dimension.clone()).or_default() += 1;
                }
            }
        }
        if reasons.iter().all(String::is_empty) {
            return Ok(None);
        }
        let keep: BooleanArray = reasons.iter().map(|reason| Some(reason.is_empty())).collect();
        let drop = arrow::compute::not(&keep).map_err(|error| crate::Error::arrow("setting facts aside", error))?;
        let dropped =
            filter_record_batch(batch, &drop).map_err(|error| crate::Error::arrow("setting facts aside", error))?;
        let texts: StringArray = reasons.into_iter().filter(|reason| !reason.is_empty()).map(Some).collect();
        let mut fields: Vec<arrow::datatypes::FieldRef> = dropped.schema().fields().iter().cloned().collect();
        fields.push(std::sync::Arc::new(arrow::datatypes::Field::new(
            "_reasons",
            arrow::datatypes::DataType::Utf8,
            false,
        )));
        let mut columns = dropped.columns().to_vec();
        columns.push(std::sync::Arc::new(texts));
        let rejected = RecordBatch::try_new(std::sync::Arc::new(arrow::datatypes::Schema::new(fields)), columns)
            .map_err(|error| crate::Error::arrow("setting facts aside", error))?;
        self.quarantine.write(&rejected)?;
        let kept =
            filter_record_batch(batch, &keep).map_err(|error| crate::Error::arrow("setting facts aside", error))?;
        Ok(Some(kept))
    }

    fn encode(&mut self, batch: &RecordBatch) -> Result<StageBatch> {
        let kept =
            if self.references.iter().any(|reference| reference.on_missing == crate::contract::OnMissing::Quarantine) {
                self.set_aside(batch)?
            } else {
                None
            };
        let batch = kept.as_ref().unwrap_or(batch);
        const DAY: i64 = 86_400_000_000;
        let count = batch.num_rows();
        let date_cells = match &self.date_column {
            Some(name) => Some(column(batch, name)?),
            None => None,
        };
        let mut as_of = Vec::with_capacity(count);
        let mut date_keys = Vec::with_capacity(count);
        let mut previous = None;
        for row in 0..count {
            let (instant, date) = match &date_cells {
                // As of the end of the fact's day.
                Some(Cells::Arrow(column @ TextColumn::Date(array))) => {
                    ((!array.is_null(row)).then(|| i64::from(array.value(row)) * DAY + DAY), column.date(row))
                }
                Some(Cells::Arrow(column @ TextColumn::Timestamp(array))) => {
                    ((!array.is_null(row)).then(|| array.value(row) + 1), column.date(row))
                }
                _ => (None, None),
            };
            if date.is_some() && date != previous {
                self.dates.extend(date);
                previous = date;
            }
            as_of.push(instant.unwrap_or(i64::MAX));
            date_keys.push(date.map(|date| i64::from(date_key(date))));
        }
        let mut cells = Vec::with_capacity(self.references.len() + self.data.len() + 2);
        let mut buffer = String::new();
        for (reference, index) in self.references.iter().zip(&self.indexes) {
            let fact: Vec<Cells> =
                reference.fact_columns.iter().map(|name| column(batch, name)).collect::<Result<_>>()?;
            let keys = (0..count)
                .map(|row| reference_key(&fact, row, &mut buffer).and_then(|natural| index.lookup(natural, as_of[row])))
                .collect();
            cells.push(Cells::Integers(keys));
        }
        if self.date_column.is_some() {
            cells.push(Cells::Integers(date_keys));
        }
        for name in &self.data {
            cells.push(column(batch, name)?);
        }
        cells.push(Cells::Constant(Some(self.run_id.clone())));
        self.rows += count as u64;
        Ok(StageBatch { columns: cells, rows: count })
    }

    /// The same rows again from the start of `files`.
    pub(super) fn restart(self, files: &[File]) -> Result<FactRows> {
        Ok(FactRows {
            batches: Box::new(batches(reopen(files)?, None)),
            dates: BTreeSet::new(),
            rows: 0,
            quarantine: Quarantine::default(),
            ..self
        })
    }
}

impl Producer for FactRows {
    fn next_batch(&mut self) -> Option<Result<StageBatch>> {
        let batch = self.batches.next()?;
        Some(batch.and_then(|batch| self.encode(&batch)))
    }
}
