//! Duplicates within a run: rows sharing a natural key (or a `unique` column's value).
//!
//! Memory is 16 bytes per row whatever the key's width: each row is reduced to a 96-bit hash
//! of its key and its 32-bit position, the list is sorted, and equal hashes form the groups.
//! (Two different keys colliding on 96 bits is about as likely as 1 in 10^16 for a billion
//! rows.)

use std::collections::HashSet;
use std::hash::{Hash, Hasher};

use crate::contract::Dedupe;

/// Collects keys row by row, then names the rows that lose.
#[derive(Debug, Default)]
pub struct DuplicateFinder {
    entries: Vec<u128>,
}

impl DuplicateFinder {
    /// Notes that the row at `position` (in file order) has `key` (its parts already
    /// standardised). Rows whose key has a null part take no part.
    pub fn add(&mut self, position: u32, key: &[&str]) {
        let mut first = std::hash::DefaultHasher::new();
        let mut second = std::hash::DefaultHasher::new();
        0xA5u8.hash(&mut second);
        for part in key {
            part.hash(&mut first);
            part.hash(&mut second);
        }
        let hash = (u128::from(first.finish()) << 32) | u128::from(second.finish() as u32);
        self.entries.push((hash << 32) | u128::from(position));
    }

    /// The positions of the rows that lose under `rule`: every row of a key but the last
    /// (`keep_last`), but the first (`keep_first`), or all of them (`reject_all`).
    pub fn losers(mut self, rule: Dedupe) -> HashSet<u32> {
        self.entries.sort_unstable();
        let mut losers = HashSet::new();
        let mut start = 0;
        while start < self.entries.len() {
            let hash = self.entries[start] >> 32;
            let end = self.entries[start..]
                .iter()
                .position(|entry| entry >> 32 != hash)
                .map_or(self.entries.len(), |offset| start + offset);
            if end - start > 1 {
                let group = self.entries[start..end].iter().map(|entry| *entry as u32);
                match rule {
                    Dedupe::KeepLast => losers.extend(group.take(end - start - 1)),
                    Dedupe::KeepFirst => losers.extend(group.skip(1)),
                    Dedupe::RejectAll => losers.extend(group),
                }
            }
            start = end;
        }
        losers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finder(keys: &[&[&str]]) -> DuplicateFinder {
        let mut finder = DuplicateFinder::default();
        for (position, key) in keys.iter().enumerate() {
            finder.add(position as u32, key);
        }
        finder
    }

    #[test]
    fn duplicates_lose_by_the_rule() {
        let keys: &[&[&str]] = &[&["a", "1"], &["b", "1"], &["a", "1"], &["a", "2"], &["a", "1"]];
        assert_eq!(finder(keys).losers(Dedupe::KeepLast), HashSet::from([0, 2]));
        assert_eq!(finder(keys).losers(Dedupe::KeepFirst), HashSet::from([2, 4]));
        assert_eq!(finder(keys).losers(Dedupe::RejectAll), HashSet::from([0, 2, 4]));
        assert!(finder(&[&["x"], &["y"]]).losers(Dedupe::KeepLast).is_empty());
    }

    #[test]
    fn key_parts_do_not_run_together() {
        // ("ab", "c") and ("a", "bc") are different keys.
        assert!(finder(&[&["ab", "c"], &["a", "bc"]]).losers(Dedupe::RejectAll).is_empty());
    }
}
