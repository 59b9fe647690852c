//! The rows a dimension load writes, made on the staging thread: plan rows with the curated
//! columns of the rows they take, into the plan table or straight into the dimension, new
//! versions gathered into key order.

use std::fs::File;

use arrow::array::RecordBatch;

use super::IN_KEY_ORDER;
use crate::warehouse::cells::{Cells, StageBatch};
use crate::warehouse::curated::{batches, column, reopen};
use crate::warehouse::scd::{self, Hash};
use crate::warehouse::staging::Producer;
use crate::{Error, Result};

/// Rows per batch when copying in key order.
const ORDERED_BATCH: usize = 16_384;

/// Where [`PlannedRows`] go, which decides their columns.
pub(super) enum Layout {
    /// The plan table: [`PLAN_COLUMNS`], the data columns, the hashes.
    Plan,
    /// The dimension itself: key, data columns, hashes, validity, flags, run.
    Table { run_id: String },
}

/// The plan's own cells for `rows`, in [`PLAN_COLUMNS`] order.
pub(super) fn plan_cells(rows: &[scd::PlanRow]) -> Vec<Cells> {
    let action = |action: &scd::Action| match action {
        scd::Action::Insert => "insert",
        scd::Action::Update => "update",
        scd::Action::Type1 => "type1",
        scd::Action::Copy => "copy",
    };
    vec![
        Cells::Integers(rows.iter().map(|row| Some(row.key)).collect()),
        Cells::Integers(rows.iter().map(|row| row.row).collect()),
        Cells::Texts(rows.iter().map(|row| Some(action(&row.action).to_string())).collect()),
        Cells::Instants(rows.iter().map(|row| Some(row.valid_from)).collect()),
        Cells::Instants(rows.iter().map(|row| row.valid_to).collect()),
        flags(rows.iter().map(|row| row.is_current)),
        Cells::Instants(rows.iter().map(|row| Some(row.type1_from)).collect()),
        Cells::Integers(rows.iter().map(|row| row.copy_of).collect()),
    ]
}

/// Flags as cells: one constant when they are all alike (every new version of a first
/// delivery is current), else each row's.
pub(super) fn flags(values: impl Iterator<Item = bool> + Clone) -> Cells {
    let text = |flag: bool| Some(if flag { "1" } else { "0" }.to_string());
    let mut all = values.clone();
    match all.next() {
        Some(first) if all.all(|flag| flag == first) => Cells::Constant(text(first)),
        _ => Cells::Texts(values.map(text).collect()),
    }
}

/// Plan rows with the curated columns of the staged rows they take, made on the staging
/// thread in one more pass over the curated parts; `then` follows (rows without columns).
///
/// New versions go into the table in key order, which is also natural-key order: each of the
/// table's indexes then receives its keys sorted, and PostgreSQL's sort finds them in order
/// (a first delivery's three index builds take a third less time). Up to [`IN_KEY_ORDER`]
/// rows are gathered for that; more go in file order.
pub(super) struct PlannedRows {
    batches: Box<dyn Iterator<Item = Result<RecordBatch>> + Send>,
    /// Staged row number → index in `rows`.
    picked: Vec<Option<u32>>,
    rows: Vec<(scd::PlanRow, Hash, Hash)>,
    offset: usize,
    layout: Layout,
    data: Vec<String>,
    then: std::vec::IntoIter<StageBatch>,
    /// In key order: the rows to gather, then gathered.
    ordered: Option<Ordered>,
}

/// A curated batch with rows the plan writes.
struct Picked {
    batch: RecordBatch,
    /// The rows' indexes in the batch.
    indexes: Vec<u32>,
    /// Their indexes in [`PlannedRows`]' `rows`.
    planned: Vec<u32>,
}

/// The rows [`PlannedRows`] copies in key order.
enum Ordered {
    /// Not gathered yet; every curated batch when the first pass kept them (else the files
    /// are read).
    Pending(Vec<RecordBatch>),
    /// Gathered from every curated batch.
    Gathered {
        /// Curated batches (or each one's picked rows).
        held: Vec<RecordBatch>,
        /// Index in `rows` → (held batch, row in it).
        places: Vec<(usize, usize)>,
        /// The next index in `rows` to send.
        next: usize,
    },
}

impl PlannedRows {
    /// `rows` (each with its staged row) take their hashes out of `hashes`; `kept` are the
    /// curated batches when the first pass kept them (then the files are not read again).
    pub(super) fn new(
        files: &[File],
        rows: Vec<scd::PlanRow>,
        hashes: &[(Hash, Hash)],
        layout: Layout,
        data: Vec<String>,
        then: Vec<StageBatch>,
        kept: Option<Vec<RecordBatch>>,
    ) -> Result<PlannedRows> {
        let mut picked = vec![None; hashes.len()];
        let mut with_hashes = Vec::with_capacity(rows.len());
        for planned in rows {
            let Some(row) = planned.row.map(|row| row as usize).filter(|&row| row < hashes.len()) else {
                continue;
            };
            picked[row] = Some(with_hashes.len() as u32);
            let (hash, type1_hash) = hashes[row];
            with_hashes.push((planned, hash, type1_hash));
        }
        let in_key_order = matches!(layout, Layout::Table { .. }) && with_hashes.len() <= IN_KEY_ORDER;
        type Batches = Box<dyn Iterator<Item = Result<RecordBatch>> + Send>;
        let (batches, pending): (Batches, Vec<RecordBatch>) = match kept {
            _ if with_hashes.is_empty() => (Box::new(std::iter::empty()), Vec::new()),
            Some(kept) if in_key_order => (Box::new(std::iter::empty()), kept),
            Some(kept) => (Box::new(kept.into_iter().map(Ok)), Vec::new()),
            None => (Box::new(batches(reopen(files)?, None)), Vec::new()),
        };
        let ordered = in_key_order.then(|| Ordered::Pending(pending));
        Ok(PlannedRows { batches, picked, rows: with_hashes, offset: 0, layout, data, then: then.into_iter(), ordered })
    }

    /// The next batch's picked rows in file order; `None` at the end of the files.
    fn next_picked(&mut self) -> Option<Result<Picked>> {
        loop {
            let batch = match self.batches.next()? {
                Ok(batch) => batch,
                Err(error) => return Some(Err(error)),
            };
            let count = batch.num_rows();
            let (indexes, planned): (Vec<u32>, Vec<u32>) = (0..count)
                .filter_map(|row| {
                    self.picked.get(self.offset + row).copied().flatten().map(|index| (row as u32, index))
                })
                .unzip();
            self.offset += count;
            if !indexes.is_empty() {
                return Some(Ok(Picked { batch, indexes, planned }));
            }
        }
    }

    /// The next batch in key order: every curated batch's picked rows are gathered first.
    fn next_in_order(&mut self) -> Option<Result<StageBatch>> {
        if let Some(Ordered::Pending(kept)) = &mut self.ordered {
            let mut held = std::mem::take(kept);
            let mut places = vec![None; self.rows.len()];
            if !held.is_empty() {
                let mut starts = Vec::with_capacity(held.len());
                let mut rows = 0;
                for batch in &held {
                    starts.push(rows);
                    rows += batch.num_rows();
                }
                for (place, (planned, _, _)) in places.iter_mut().zip(&self.rows) {
                    let Some(row) = planned.row.map(|row| row as usize).filter(|&row| row < rows) else {
                        continue;
                    };
                    let batch = starts.partition_point(|&start| start <= row) - 1;
                    *place = Some((batch, row - starts[batch]));
                }
            }
            while let Some(next) = self.next_picked() {
                let Picked { batch, indexes, planned } = match next {
                    Ok(picked) => picked,
                    Err(error) => return Some(Err(error)),
                };
                for (position, &index) in planned.iter().enumerate() {
                    if let Some(place) = places.get_mut(index as usize) {
                        *place = Some((held.len(), position));
                    }
                }
                match take(batch, indexes) {
                    Ok(taken) => held.push(taken),
                    Err(error) => return Some(Err(error)),
                }
            }
            let Some(places) = places.into_iter().collect::<Option<Vec<_>>>() else {
                return Some(Err(Error::load_step(
                    "copying the new versions",
                    "a planned version's row is missing from the curated files (they changed during the load)",
                )));
            };
            self.ordered = Some(Ordered::Gathered { held, places, next: 0 });
        }
        let Some(Ordered::Gathered { held, places, next }) = &mut self.ordered else {
            return None;
        };
        let start = *next;
        let mut end = (start + ORDERED_BATCH).min(places.len());
        if start == end {
            return None;
        }
        // Rows that follow each other in one curated batch (a delivery sorted by its natural
        // key) go as a slice of it, without copying them.
        let (first_batch, first_row) = places[start];
        let run = places[start..end]
            .iter()
            .zip(first_row..)
            .take_while(|&(&(batch, row), expected)| batch == first_batch && row == expected)
            .count();
        let batch = if run >= ORDERED_BATCH / 16 {
            end = start + run;
            held[first_batch].slice(first_row, run)
        } else {
            let held: Vec<&RecordBatch> = held.iter().collect();
            match arrow::compute::interleave_record_batch(&held, &places[start..end]) {
                Ok(batch) => batch,
                Err(error) => return Some(Err(Error::arrow("putting the new versions in key order", error))),
            }
        };
        *next = end;
        let planned: Vec<u32> = (start as u32..end as u32).collect();
        Some(self.encode(batch, &planned))
    }

    /// The staging batch of `taken`'s rows, which take the plan rows `planned`.
    fn encode(&self, taken: RecordBatch, planned: &[u32]) -> Result<StageBatch> {
        let rows: Vec<&(scd::PlanRow, Hash, Hash)> = planned.iter().map(|&index| &self.rows[index as usize]).collect();
        let mut columns = Vec::with_capacity(self.data.len() + 10);
        if let Layout::Plan = self.layout {
            columns.extend(plan_cells(&rows.iter().map(|row| row.0.clone()).collect::<Vec<_>>()));
        } else {
            columns.push(Cells::Integers(rows.iter().map(|row| Some(row.0.key)).collect()));
        }
        for name in &self.data {
            columns.push(column(&taken, name)?);
        }
        columns.push(Cells::Hashes(rows.iter().map(|row| row.1).collect()));
        columns.push(Cells::Hashes(rows.iter().map(|row| row.2).collect()));
        if let Layout::Table { run_id } = &self.layout {
            columns.extend([
                Cells::Instants(rows.iter().map(|row| Some(row.0.valid_from)).collect()),
                Cells::Instants(rows.iter().map(|row| row.0.valid_to).collect()),
                flags(rows.iter().map(|row| row.0.is_current)),
                Cells::Constant(Some("0".to_string())),
                Cells::Constant(Some(run_id.clone())),
                Cells::Instants(rows.iter().map(|row| Some(row.0.type1_from)).collect()),
            ]);
        }
        Ok(StageBatch { columns, rows: rows.len() })
    }
}

impl Producer for PlannedRows {
    fn next_batch(&mut self) -> Option<Result<StageBatch>> {
        let next = if self.ordered.is_some() {
            self.next_in_order()
        } else {
            self.next_picked().map(|picked| {
                picked.and_then(|Picked { batch, indexes, planned }| self.encode(take(batch, indexes)?, &planned))
            })
        };
        next.or_else(|| self.then.next().map(Ok))
    }
}

/// `batch`'s rows at `indexes` (the batch itself when they are all of its rows, in order).
fn take(batch: RecordBatch, indexes: Vec<u32>) -> Result<RecordBatch> {
    // A first delivery picks every row: no copy of the batch.
    if indexes.len() == batch.num_rows() {
        return Ok(batch);
    }
    arrow::compute::take_record_batch(&batch, &arrow::array::UInt32Array::from(indexes))
        .map_err(|error| Error::arrow("picking the rows the merge writes", error))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, StringArray};

    use super::super::PLAN_COLUMNS;
    use super::*;

    /// The text of column `index` of every batch `producer` makes.
    fn column_texts(mut producer: PlannedRows, index: usize) -> Vec<String> {
        let mut texts = Vec::new();
        while let Some(batch) = producer.next_batch() {
            let batch = batch.expect("a batch");
            texts.extend((0..batch.rows).map(|row| batch.columns[index].text(row).unwrap_or_default()));
        }
        texts
    }

    #[test]
    fn planned_rows_read_from_the_files_again_are_those_kept_from_the_first_pass() {
        let path = std::env::temp_dir().join(format!("lakestar-planned-rows-{}.parquet", std::process::id()));
        let ids: ArrayRef = Arc::new(StringArray::from(vec!["c", "a", "e", "b", "d"]));
        let batch = RecordBatch::try_from_iter([("id", ids)]).expect("a batch");
        let mut writer =
            parquet::arrow::ArrowWriter::try_new(File::create(&path).expect("a file"), batch.schema(), None)
                .expect("a writer");
        writer.write(&batch).expect("written");
        writer.close().expect("closed");
        let files = vec![File::open(&path).expect("the file")];
        // New versions of rows 1, 3 and 0 (a, b, c), keyed in that order.
        let planned = |row: i64, key: i64| scd::PlanRow {
            key,
            row: Some(row),
            action: scd::Action::Insert,
            valid_from: 0,
            valid_to: None,
            is_current: true,
            type1_from: 0,
            copy_of: None,
        };
        let rows = vec![planned(1, 1), planned(3, 2), planned(0, 3)];
        let hashes = vec![(7, 9); 5];
        for kept in [None, Some(vec![batch.clone()])] {
            let data = vec!["id".to_string()];
            let table = Layout::Table { run_id: "run".to_string() };
            let producer =
                PlannedRows::new(&files, rows.clone(), &hashes, table, data.clone(), Vec::new(), kept.clone())
                    .expect("rows");
            assert_eq!(column_texts(producer, 1), ["a", "b", "c"], "in key order, kept: {}", kept.is_some());
            let producer =
                PlannedRows::new(&files, rows.clone(), &hashes, Layout::Plan, data, Vec::new(), kept.clone())
                    .expect("rows");
            assert_eq!(column_texts(producer, PLAN_COLUMNS.len()), ["c", "a", "b"], "in file order");
        }
        std::fs::remove_file(&path).expect("removed");
    }
}
