//! Duplicates within a run: rows sharing a natural key (or a `unique` column's value).
//!
//! Each row is reduced to 16 bytes, a 96-bit hash of its key and its 32-bit position (two
//! different keys colliding on 96 bits is about as likely as 1 in 10^16 for a billion rows).
//! The entries are sorted in bounded chunks; a chunk that fills is spilled to a temporary
//! file as a sorted run, and the runs are merged at the end. Memory stays flat whatever the
//! file's size: one chunk, plus the positions of the rows that lose.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::hash::{Hash, Hasher};
use std::io::{BufReader, BufWriter, Read, Seek, Write};

use crate::contract::Dedupe;
use crate::{Error, Result};

/// Entries sorted in memory before a chunk is spilled: 2 Mi entries, 32 MiB.
const CHUNK_ENTRIES: usize = 2 * 1024 * 1024;

/// Collects keys row by row, then names the rows that lose.
#[derive(Debug)]
pub struct DuplicateFinder {
    chunk: Vec<u128>,
    runs: Vec<std::fs::File>,
    chunk_entries: usize,
}

impl Default for DuplicateFinder {
    fn default() -> Self {
        DuplicateFinder::with_chunk(CHUNK_ENTRIES)
    }
}

impl DuplicateFinder {
    /// A finder that spills every `entries` entries (small values exercise the merge in tests).
    pub fn with_chunk(entries: usize) -> DuplicateFinder {
        DuplicateFinder { chunk: Vec::new(), runs: Vec::new(), chunk_entries: entries.max(1) }
    }

    /// Notes that the row at `position` (in file order) has `key` (its parts already
    /// standardised). Rows whose key has a null part take no part.
    pub fn add(&mut self, position: u32, key: &[impl AsRef<str>]) -> Result<()> {
        let mut first = std::hash::DefaultHasher::new();
        let mut second = std::hash::DefaultHasher::new();
        0xA5u8.hash(&mut second);
        for part in key {
            part.as_ref().hash(&mut first);
            part.as_ref().hash(&mut second);
        }
        let hash = (u128::from(first.finish()) << 32) | u128::from(second.finish() as u32);
        self.chunk.push((hash << 32) | u128::from(position));
        if self.chunk.len() >= self.chunk_entries {
            self.spill()?;
        }
        Ok(())
    }

    fn spill(&mut self) -> Result<()> {
        self.chunk.sort_unstable();
        let mut file = tempfile::tempfile().map_err(Error::temp_io)?;
        {
            let mut writer = BufWriter::with_capacity(1 << 20, &mut file);
            for entry in &self.chunk {
                writer.write_all(&entry.to_le_bytes()).map_err(Error::temp_io)?;
            }
            writer.flush().map_err(Error::temp_io)?;
        }
        file.rewind().map_err(Error::temp_io)?;
        self.runs.push(file);
        self.chunk.clear();
        Ok(())
    }

    /// The positions of the rows that lose under `rule`, ascending: every row of a key but
    /// the last (`keep_last`), but the first (`keep_first`), or all of them (`reject_all`).
    pub fn losers(self, rule: Dedupe) -> Result<Vec<u32>> {
        let mut losers = Vec::new();
        self.groups(|group| {
            if group.len() > 1 {
                match rule {
                    Dedupe::KeepLast => losers.extend_from_slice(&group[..group.len() - 1]),
                    Dedupe::KeepFirst => losers.extend_from_slice(&group[1..]),
                    Dedupe::RejectAll => losers.extend_from_slice(group),
                }
            }
        })?;
        losers.sort_unstable();
        Ok(losers)
    }

    /// Visits how many rows share each key, key by key (in no particular order): the
    /// frequencies behind distinct counts, uniqueness and entropy, in the same flat memory.
    pub fn frequencies(self, mut visit: impl FnMut(u64)) -> Result<()> {
        self.groups(|group| visit(group.len() as u64))
    }

    /// Visits the positions of each key's rows, in file order within a key.
    fn groups(mut self, mut visit: impl FnMut(&[u32])) -> Result<()> {
        let mut group: Vec<u32> = Vec::new();
        let mut current: Option<u128> = None;
        let mut add = |entry: u128, group: &mut Vec<u32>| {
            let hash = entry >> 32;
            if current != Some(hash) {
                if !group.is_empty() {
                    visit(group);
                }
                group.clear();
                current = Some(hash);
            }
            group.push(entry as u32);
        };
        if self.runs.is_empty() {
            self.chunk.sort_unstable();
            for entry in std::mem::take(&mut self.chunk) {
                add(entry, &mut group);
            }
        } else {
            if !self.chunk.is_empty() {
                self.spill()?;
            }
            let mut readers: Vec<BufReader<std::fs::File>> =
                self.runs.drain(..).map(|file| BufReader::with_capacity(64 * 1024, file)).collect();
            let mut heap = BinaryHeap::new();
            for (index, reader) in readers.iter_mut().enumerate() {
                if let Some(entry) = next_entry(reader)? {
                    heap.push(Reverse((entry, index)));
                }
            }
            while let Some(Reverse((entry, index))) = heap.pop() {
                add(entry, &mut group);
                if let Some(next) = next_entry(&mut readers[index])? {
                    heap.push(Reverse((next, index)));
                }
            }
        }
        if !group.is_empty() {
            visit(&group);
        }
        Ok(())
    }
}

fn next_entry(reader: &mut BufReader<std::fs::File>) -> Result<Option<u128>> {
    let mut bytes = [0u8; 16];
    match reader.read_exact(&mut bytes) {
        Ok(()) => Ok(Some(u128::from_le_bytes(bytes))),
        Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
        Err(error) => Err(Error::temp_io(error)),
    }
}

/// Answers "does the row at this position lose?" for positions asked in ascending order, in
/// constant time each.
#[derive(Debug, Default)]
pub struct LoserCursor {
    losers: Vec<u32>,
    next: usize,
}

impl LoserCursor {
    /// A cursor over ascending positions.
    pub fn new(losers: Vec<u32>) -> LoserCursor {
        LoserCursor { losers, next: 0 }
    }

    /// Whether `position` loses; positions must not decrease between calls.
    pub fn contains(&mut self, position: u32) -> bool {
        while self.losers.get(self.next).is_some_and(|&loser| loser < position) {
            self.next += 1;
        }
        self.losers.get(self.next) == Some(&position)
    }

    /// Whether no row loses.
    pub fn is_empty(&self) -> bool {
        self.losers.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn losers(keys: &[&[&str]], rule: Dedupe, chunk: usize) -> Vec<u32> {
        let mut finder = DuplicateFinder::with_chunk(chunk);
        for (position, key) in keys.iter().enumerate() {
            finder.add(position as u32, key).expect("add");
        }
        finder.losers(rule).expect("losers")
    }

    #[test]
    fn duplicates_lose_by_the_rule_in_memory_and_through_spilled_runs() {
        let keys: &[&[&str]] = &[&["a", "1"], &["b", "1"], &["a", "1"], &["a", "2"], &["a", "1"]];
        for chunk in [1000, 2, 1] {
            assert_eq!(losers(keys, Dedupe::KeepLast, chunk), vec![0, 2], "chunk {chunk}");
            assert_eq!(losers(keys, Dedupe::KeepFirst, chunk), vec![2, 4], "chunk {chunk}");
            assert_eq!(losers(keys, Dedupe::RejectAll, chunk), vec![0, 2, 4], "chunk {chunk}");
        }
        assert!(losers(&[&["x"], &["y"]], Dedupe::KeepLast, 1).is_empty());
    }

    #[test]
    fn key_parts_do_not_run_together() {
        // ("ab", "c") and ("a", "bc") are different keys.
        assert!(losers(&[&["ab", "c"], &["a", "bc"]], Dedupe::RejectAll, 10).is_empty());
    }

    #[test]
    fn many_rows_spill_and_merge_to_the_same_answer() {
        let keys: Vec<String> = (0..10_000).map(|index| format!("k{}", index % 3_000)).collect();
        let rows: Vec<[&str; 1]> = keys.iter().map(|key| [key.as_str()]).collect();
        let rows: Vec<&[&str]> = rows.iter().map(|row| &row[..]).collect();
        let in_memory = losers(&rows, Dedupe::KeepLast, usize::MAX);
        let spilled = losers(&rows, Dedupe::KeepLast, 777);
        assert_eq!(in_memory.len(), 7_000);
        assert_eq!(in_memory, spilled);
        let mut cursor = LoserCursor::new(spilled);
        let mut finder = DuplicateFinder::with_chunk(777);
        for (position, key) in rows.iter().enumerate() {
            finder.add(position as u32, key).expect("add");
        }
        let mut sizes = Vec::new();
        finder.frequencies(|size| sizes.push(size)).expect("frequencies");
        sizes.sort_unstable();
        assert_eq!((sizes.len(), sizes.iter().sum::<u64>()), (3_000, 10_000));
        assert_eq!((sizes[0], sizes[2_999]), (3, 4));
        assert!(cursor.contains(0) && !cursor.contains(9_999) && !cursor.is_empty());
    }
}
