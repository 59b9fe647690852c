//! The fact rows as they are staged: each row's dimension keys looked up as of its date,
//! its date key, its columns and the run id, made on the staging thread.

use std::collections::BTreeSet;
use std::fs::File;

use arrow::array::{Array, RecordBatch};

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
}

impl FactRows {
    fn encode(&mut self, batch: &RecordBatch) -> Result<StageBatch> {
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
        Ok(FactRows { batches: Box::new(batches(reopen(files)?, None)), dates: BTreeSet::new(), rows: 0, ..self })
    }
}

impl Producer for FactRows {
    fn next_batch(&mut self) -> Option<Result<StageBatch>> {
        let batch = self.batches.next()?;
        Some(batch.and_then(|batch| self.encode(&batch)))
    }
}
