//! The first pass of a dimension load: every curated row keyed (its natural key text),
//! hashed (tracked and type 1 columns) and given its effective time, on a thread of its own;
//! as a [`Producer`], the natural keys to stage.

use arrow::array::{Array, RecordBatch};
use sha2::{Digest, Sha256};

use crate::warehouse::cells::{Cells, StageBatch};
use crate::warehouse::curated::column;
use crate::warehouse::scd::{Hash, Staged};
use crate::warehouse::staging::Producer;
use crate::warehouse::text::TextColumn;
use crate::{Error, Result};

/// The first pass of a dimension load: every row's natural key, hashes and effective time
/// gathered in `staged`; as a [`Producer`], the natural keys to stage.
pub(super) struct KeyedRows {
    pub(super) batches: Box<dyn Iterator<Item = Result<RecordBatch>> + Send>,
    pub(super) data: Vec<String>,
    /// The natural key columns to stage (none when the keys are not staged).
    pub(super) natural_key: Vec<String>,
    pub(super) key_positions: Vec<usize>,
    pub(super) tracked_positions: Vec<usize>,
    pub(super) type1_positions: Vec<usize>,
    pub(super) effective_from: Option<String>,
    /// The run's time, in microseconds since the epoch: when rows without an effective time
    /// take effect.
    pub(super) run_time: i64,
    pub(super) staged: Vec<Staged>,
    /// Every batch read, when kept.
    pub(super) kept: Option<Vec<RecordBatch>>,
}

impl KeyedRows {
    /// Keys and hashes `batch`'s rows; returns its natural key columns.
    fn key(&mut self, batch: &RecordBatch) -> Result<StageBatch> {
        let rows = batch.num_rows();
        let cells: Vec<Cells> = self.data.iter().map(|name| column(batch, name)).collect::<Result<_>>()?;
        let effective = match &self.effective_from {
            Some(name) => Some(column(batch, name)?),
            None => None,
        };
        let mut buffer = String::new();
        for row in 0..rows {
            let mut natural = String::new();
            for (part, &index) in self.key_positions.iter().enumerate() {
                if part > 0 {
                    natural.push('\u{1f}');
                }
                cells[index].write(row, &mut natural);
            }
            let when = effective.as_ref().and_then(|cells| effective_micros(cells, row)).unwrap_or(self.run_time);
            self.staged.push(Staged {
                row: self.staged.len() as i64,
                natural_key: natural,
                hash: row_hash(self.tracked_positions.iter().map(|&index| &cells[index]), row, &mut buffer),
                type1_hash: row_hash(self.type1_positions.iter().map(|&index| &cells[index]), row, &mut buffer),
                effective: when,
            });
        }
        let keys: Vec<Cells> = self.natural_key.iter().map(|name| column(batch, name)).collect::<Result<_>>()?;
        Ok(StageBatch { columns: keys, rows })
    }

    /// Keys and hashes every row on a blocking thread, staging nothing.
    pub(super) async fn drain(mut self) -> Result<(Vec<Staged>, Option<Vec<RecordBatch>>)> {
        tokio::task::spawn_blocking(move || {
            while let Some(batch) = self.next_batch() {
                batch?;
            }
            Ok((self.staged, self.kept))
        })
        .await
        .map_err(|error| Error::Internal(format!("the keying thread failed: {error}")))?
    }
}

impl Producer for KeyedRows {
    fn next_batch(&mut self) -> Option<Result<StageBatch>> {
        let batch = self.batches.next()?;
        Some(batch.and_then(|batch| {
            let keys = self.key(&batch)?;
            if let Some(kept) = &mut self.kept {
                kept.push(batch);
            }
            Ok(keys)
        }))
    }
}

/// The hash of some columns' text for one row, nulls distinct from empty text.
pub(super) fn row_hash<'a>(cells: impl Iterator<Item = &'a Cells>, row: usize, buffer: &mut String) -> Hash {
    let mut hasher = Sha256::new();
    for cell in cells {
        buffer.clear();
        if cell.write(row, buffer) {
            hasher.update([1u8]);
            hasher.update((buffer.len() as u64).to_le_bytes());
            hasher.update(buffer.as_bytes());
        } else {
            hasher.update([0u8]);
        }
    }
    let digest = hasher.finalize();
    let mut first = [0u8; 16];
    first.copy_from_slice(&digest[..16]);
    Hash::from_be_bytes(first)
}

/// The instant a date (its midnight UTC) or timestamp cell names, in microseconds since the
/// epoch; `None` for a null, another type, or an instant chrono cannot hold.
fn effective_micros(cells: &Cells, row: usize) -> Option<i64> {
    match cells {
        Cells::Arrow(column @ TextColumn::Date(_)) => column
            .date(row)
            .and_then(|date| date.and_hms_opt(0, 0, 0))
            .map(|midnight| midnight.and_utc().timestamp_micros()),
        Cells::Arrow(TextColumn::Timestamp(array)) if !array.is_null(row) => {
            let micros = array.value(row);
            chrono::DateTime::from_timestamp_micros(micros).map(|_| micros)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_hash_is_the_first_half_of_its_sha256() {
        // What every Lakestar has stored: SHA-256 over each value framed as 1, its length
        // (8 bytes, little-endian) and its bytes, or 0 for a null; the first 16 bytes
        // (computed independently with Python's hashlib), as bytes in PostgreSQL and as hex
        // in SQLite (and in PostgreSQL tables made before hashes were bytes).
        let cells = [
            Cells::Texts(vec![Some("Zoë".to_string())]),
            Cells::Texts(vec![None]),
            Cells::Texts(vec![Some(String::new())]),
        ];
        let hash = row_hash(cells.iter(), 0, &mut String::new());
        assert_eq!(crate::warehouse::codec::hash_text(hash), "e1582bcbd4782771808d3248c3517b9c");
        assert_eq!(crate::warehouse::codec::hash_value("e1582bcbd4782771808d3248c3517b9c"), Some(hash));
        let bytes = [0xe1, 0x58, 0x2b, 0xcb, 0xd4, 0x78, 0x27, 0x71, 0x80, 0x8d, 0x32, 0x48, 0xc3, 0x51, 0x7b, 0x9c];
        assert_eq!(hash.to_be_bytes(), bytes);
        assert_eq!(crate::warehouse::codec::stored_hash(&bytes), Some(hash));
    }
}
