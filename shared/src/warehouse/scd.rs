//! The slowly-changing-dimension merge, planned in memory: the versions a run's staged rows
//! touch are read once, each staged row is applied in turn, and what changed becomes a
//! handful of set-based statements. Pure, so every case is a unit test.
//!
//! Times are microseconds since the Unix epoch, as PostgreSQL's binary `COPY` carries them;
//! SQLite stores the fixed-width UTC text `YYYY-MM-DDTHH:MM:SS.ffffffZ` ([`timestamp_text`]),
//! which orders like the instants it names.

use std::collections::HashMap;

/// `valid_from` of an inferred member: early enough that every fact finds it.
pub const INFERRED_FROM: &str = "1900-01-01T00:00:00.000000Z";

/// [`INFERRED_FROM`] in microseconds since the epoch.
pub const INFERRED_FROM_MICROS: i64 = -2_208_988_800_000_000;

/// The fixed-width text of an instant, as the warehouse stores and compares it.
pub fn timestamp_text(instant: chrono::DateTime<chrono::Utc>) -> String {
    let mut out = String::with_capacity(27);
    push_timestamp_text(instant, &mut out);
    out
}

/// Appends [`timestamp_text`] to `out` without chrono's format interpreter (it runs once per
/// fact row in a load).
pub fn push_timestamp_text(instant: chrono::DateTime<chrono::Utc>, out: &mut String) {
    use chrono::{Datelike, Timelike};
    fn digits(out: &mut String, value: u32, width: usize) {
        let mut buffer = [b'0'; 10];
        let mut rest = value;
        for position in (0..width).rev() {
            buffer[position] = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        out.extend(buffer[..width].iter().map(|&byte| byte as char));
    }
    let year = instant.year();
    if !(0..=9999).contains(&year) {
        // Outside four digits: let chrono say it (never met in practice).
        out.push_str(&instant.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string());
        return;
    }
    digits(out, year as u32, 4);
    out.push('-');
    digits(out, instant.month(), 2);
    out.push('-');
    digits(out, instant.day(), 2);
    out.push('T');
    digits(out, instant.hour(), 2);
    out.push(':');
    digits(out, instant.minute(), 2);
    out.push(':');
    digits(out, instant.second(), 2);
    out.push('.');
    digits(out, instant.nanosecond() / 1000 % 1_000_000, 6);
    out.push('Z');
}

/// Appends [`timestamp_text`] of an instant in microseconds since the epoch; false (writing
/// nothing) when chrono cannot hold it.
pub fn push_micros_text(micros: i64, out: &mut String) -> bool {
    match chrono::DateTime::from_timestamp_micros(micros) {
        Some(instant) => {
            push_timestamp_text(instant, out);
            true
        }
        None => false,
    }
}

/// The instant of a fixed-width text written by [`timestamp_text`] (or PostgreSQL's
/// equivalent), as microseconds since the epoch.
pub fn timestamp_micros(text: &str) -> Option<i64> {
    fixed_width_micros(text).or_else(|| {
        chrono::NaiveDateTime::parse_from_str(text.trim_end_matches('Z'), "%Y-%m-%dT%H:%M:%S%.f")
            .ok()
            .map(|time| time.and_utc().timestamp_micros())
    })
}

/// [`timestamp_micros`] of exactly `YYYY-MM-DDTHH:MM:SS.ffffffZ`, without chrono's format
/// interpreter (a load reads two per new dimension version).
fn fixed_width_micros(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    if bytes.len() != 27 || bytes[26] != b'Z' {
        return None;
    }
    let number = |from: usize, to: usize| {
        bytes[from..to]
            .iter()
            .try_fold(0u32, |sum, &byte| byte.is_ascii_digit().then(|| sum * 10 + u32::from(byte - b'0')))
    };
    let separators = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':'), (19, b'.')];
    if separators.iter().any(|&(at, separator)| bytes[at] != separator) {
        return None;
    }
    let date = chrono::NaiveDate::from_ymd_opt(number(0, 4)? as i32, number(5, 7)?, number(8, 10)?)?;
    let time =
        chrono::NaiveTime::from_hms_micro_opt(number(11, 13)?, number(14, 16)?, number(17, 19)?, number(20, 26)?)?;
    Some(date.and_time(time).and_utc().timestamp_micros())
}

/// A row hash: the first 16 bytes of a SHA-256, stored in PostgreSQL as those bytes (`BYTEA`,
/// big-endian) and in SQLite as 32 lowercase hex digits ([`hash_digits`]), compared here as a
/// number.
pub type Hash = u128;

/// The 32 lowercase hex digits SQLite stores for `hash`.
#[cfg(test)]
pub fn hash_text(hash: Hash) -> String {
    let mut out = String::with_capacity(32);
    push_hash_text(hash, &mut out);
    out
}

/// Appends the 32 lowercase hex digits SQLite stores for `hash` to `out`.
pub fn push_hash_text(hash: Hash, out: &mut String) {
    let mut digits = [0u8; 32];
    hash_digits(hash, &mut digits);
    out.extend(digits.iter().map(|&digit| char::from(digit)));
}

/// The 32 lowercase hex digits SQLite stores for `hash`, into `digits`.
fn hash_digits(hash: Hash, digits: &mut [u8; 32]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (place, digit) in digits.iter_mut().rev().enumerate() {
        *digit = HEX[(hash >> (place * 4)) as usize & 15];
    }
}

/// The hash whose stored text is `text`; `None` unless it is 32 lowercase hex digits (a hash
/// Lakestar did not write then equals no row's, as its text would).
pub fn hash_value(text: &str) -> Option<Hash> {
    let digits = text.as_bytes();
    if digits.len() != 32 || !digits.iter().all(|&digit| matches!(digit, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    Hash::from_str_radix(text, 16).ok()
}

/// The hash whose stored bytes are `bytes`: the 16 bytes of a `BYTEA` hash (big-endian), or
/// the 32 hex digits of a text one ([`hash_value`]); `None` for anything else.
pub fn stored_hash(bytes: &[u8]) -> Option<Hash> {
    match <[u8; 16]>::try_from(bytes) {
        Ok(bytes) => Some(Hash::from_be_bytes(bytes)),
        Err(_) => std::str::from_utf8(bytes).ok().and_then(hash_value),
    }
}

/// One version of a dimension row, as it is in the warehouse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// The surrogate key.
    pub key: i64,
    /// The hash of the tracked (type 2) columns ([`Hash`]); `None` for an inferred member
    /// (or a stored hash not in Lakestar's form, which equals no row's).
    pub hash: Option<Hash>,
    /// The hash of the type 1 columns; `None` for an inferred member or a row written before
    /// the warehouse kept it (the database then compares the columns).
    pub type1_hash: Option<Hash>,
    /// Valid from (inclusive), in microseconds since the epoch.
    pub valid_from: i64,
    /// Valid to (exclusive); `None` while open.
    pub valid_to: Option<i64>,
    /// The current version of its natural key.
    pub is_current: bool,
    /// Created by a fact before the dimension row arrived.
    pub is_inferred: bool,
}

/// The versions of the keys a load touches (or of the whole table), by natural key text.
pub type Existing = HashMap<String, Vec<Version>, foldhash::fast::RandomState>;

/// One staged row of the run: its natural key, tracked hash and effective time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staged {
    /// The staged row's number in the staging table.
    pub row: i64,
    /// The natural key's text.
    pub natural_key: String,
    /// The hash of the tracked columns.
    pub hash: Hash,
    /// The hash of the type 1 columns.
    pub type1_hash: Hash,
    /// When this version takes effect, in microseconds since the epoch.
    pub effective: i64,
}

/// What the plan does to one warehouse row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// A new version from staged row `row`.
    Insert,
    /// An existing version's validity changes; with `row`, its columns are overwritten from
    /// that staged row too (a completed inferred member, a correction at the same instant).
    Update,
    /// The current version, unchanged in its tracked columns but not in its type 1 hash: its
    /// type 1 columns are overwritten from `row` where they differ.
    Type1,
}

/// One row of the plan, staged and applied set-based.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanRow {
    /// The surrogate key (new for inserts).
    pub key: i64,
    /// The staged row providing the columns, if any.
    pub row: Option<i64>,
    /// What to do.
    pub action: Action,
    /// The version's validity after the load, in microseconds since the epoch.
    pub valid_from: i64,
    /// Valid to, `None` while open.
    pub valid_to: Option<i64>,
    /// Whether it is current after the load.
    pub is_current: bool,
}

/// How a staged row ended up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A natural key seen for the first time.
    Inserted,
    /// A new version, a slotted back-dated version, a completed inferred member or a
    /// correction.
    Updated,
    /// Tracked columns unchanged, the type 1 hash not: the database compares the columns.
    Type1,
    /// Nothing to do: a back-dated row equal to the version of its time.
    Unchanged,
}

/// The plan for one load of a dimension.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The rows to apply.
    pub rows: Vec<PlanRow>,
    /// Rows inserted with a new natural key.
    pub inserted: u64,
    /// Rows that changed the history of an existing key.
    pub updated: u64,
    /// Rows left to the type 1 comparison (unchanged unless a type 1 column differs).
    pub type1: u64,
    /// Rows with nothing to do.
    pub unchanged: u64,
}

/// A version while the plan is built: where it came from and whether it changed.
#[derive(Debug, Clone)]
struct Working {
    version: Version,
    /// For a version the warehouse has: its validity before the load (`valid_to`,
    /// `is_current`), the only fields the plan changes without taking a staged row's columns.
    before: Option<(Option<i64>, bool)>,
    /// The staged row whose columns it takes.
    row: Option<i64>,
    /// Left to the type 1 comparison with this staged row.
    type1: Option<i64>,
}

/// Plans the merge of `staged` into the versions of the touched keys. The rows are applied
/// key by key in (natural key, effective, row) order; new surrogate keys start after
/// `max_key`, handed out in that order, so the same rows always get the same keys.
pub fn plan(staged: &[Staged], mut existing: Existing, max_key: i64) -> Plan {
    let order_of = |a: &Staged, b: &Staged| {
        a.natural_key.cmp(&b.natural_key).then(a.effective.cmp(&b.effective)).then(a.row.cmp(&b.row))
    };
    let mut order: Vec<&Staged> = staged.iter().collect();
    if !order.is_sorted_by(|a, b| order_of(a, b).is_le()) {
        order.sort_by(|a, b| order_of(a, b));
    }
    let mut next_key = max_key;
    let mut plan = Plan { rows: Vec::with_capacity(staged.len()), ..Plan::default() };
    // One key's versions at a time, in one buffer for every key.
    let mut versions: Vec<Working> = Vec::new();
    for group in order.chunk_by(|a, b| a.natural_key == b.natural_key) {
        // A key the warehouse does not have yet costs no lookup of its history.
        if let Some(mut found) = existing.remove(&group[0].natural_key) {
            found.sort_by_key(|version| version.valid_from);
            versions.extend(found.into_iter().map(|version| Working {
                before: Some((version.valid_to, version.is_current)),
                version,
                row: None,
                type1: None,
            }));
        }
        for row in group {
            match apply(&mut versions, row, &mut next_key) {
                Outcome::Inserted => plan.inserted += 1,
                Outcome::Updated => plan.updated += 1,
                Outcome::Type1 => plan.type1 += 1,
                Outcome::Unchanged => plan.unchanged += 1,
            }
        }
        for working in versions.drain(..) {
            let version = working.version;
            let action = match (&working.before, working.row) {
                (None, _) => Some(Action::Insert),
                (Some((valid_to, is_current)), row)
                    if row.is_some() || *valid_to != version.valid_to || *is_current != version.is_current =>
                {
                    Some(Action::Update)
                }
                _ if working.type1.is_some() => Some(Action::Type1),
                _ => None,
            };
            if let Some(action) = action {
                plan.rows.push(PlanRow {
                    key: version.key,
                    row: working.row.or(working.type1),
                    action,
                    valid_from: version.valid_from,
                    valid_to: version.valid_to,
                    is_current: version.is_current,
                });
            }
        }
    }
    plan.rows.sort_by_key(|row| row.key);
    plan
}

fn new_version(row: &Staged, next_key: &mut i64, valid_to: Option<i64>) -> Working {
    *next_key += 1;
    Working {
        version: Version {
            key: *next_key,
            hash: Some(row.hash),
            type1_hash: Some(row.type1_hash),
            valid_from: row.effective,
            is_current: valid_to.is_none(),
            valid_to,
            is_inferred: false,
        },
        before: None,
        row: Some(row.row),
        type1: None,
    }
}

/// Takes `row`'s columns into `working` (its tracked hash included).
fn overwrite(working: &mut Working, row: &Staged) {
    working.version.hash = Some(row.hash);
    working.version.type1_hash = Some(row.type1_hash);
    working.version.is_inferred = false;
    working.row = Some(row.row);
    working.type1 = None;
}

/// Applies one staged row to the versions of its key (sorted by `valid_from`).
fn apply(versions: &mut Vec<Working>, row: &Staged, next_key: &mut i64) -> Outcome {
    let Some(current) = versions.last_mut() else {
        versions.push(new_version(row, next_key, None));
        return Outcome::Inserted;
    };
    let same = current.version.hash == Some(row.hash);
    if current.version.is_inferred {
        // The real row completes the member a fact created, keeping its surrogate key.
        overwrite(current, row);
        return Outcome::Updated;
    }
    if row.effective >= current.version.valid_from {
        return if same {
            if current.before.is_none() || current.row.is_some() {
                // Created or rewritten by this same load: the later row's columns win.
                overwrite(current, row);
            } else if current.version.type1_hash == Some(row.type1_hash) {
                // Every column as it is: nothing to write.
                current.type1 = None;
                return Outcome::Unchanged;
            } else {
                current.type1 = Some(row.row);
            }
            Outcome::Type1
        } else if row.effective == current.version.valid_from {
            overwrite(current, row);
            Outcome::Updated
        } else {
            current.version.valid_to = Some(row.effective);
            current.version.is_current = false;
            versions.push(new_version(row, next_key, None));
            Outcome::Updated
        };
    }
    // Back-dated: older than the current version, slotted into history.
    let covering = versions.iter().rposition(|working| working.version.valid_from <= row.effective);
    match covering {
        Some(index) => {
            let version = &versions[index].version;
            if version.hash == Some(row.hash) {
                return Outcome::Unchanged;
            }
            if version.valid_from == row.effective {
                overwrite(&mut versions[index], row);
                return Outcome::Updated;
            }
            let valid_to = version.valid_to;
            versions[index].version.valid_to = Some(row.effective);
            let slotted = new_version(row, next_key, valid_to.or(Some(row.effective)));
            versions.insert(index + 1, slotted);
            Outcome::Updated
        }
        None => {
            let first = versions[0].version.valid_from;
            versions.insert(0, new_version(row, next_key, Some(first)));
            Outcome::Updated
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// Midnight UTC of `day` (`YYYY-MM-DD`), in microseconds.
    fn at(day: &str) -> i64 {
        let date = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").expect("a date");
        date.and_hms_opt(0, 0, 0).expect("midnight").and_utc().timestamp_micros()
    }

    /// A distinct hash for each short name.
    fn h(name: &str) -> Hash {
        name.bytes().fold(0, |hash, byte| hash << 8 | Hash::from(byte))
    }

    fn staged(row: i64, key: &str, hash: &str, effective: &str) -> Staged {
        Staged { row, natural_key: key.to_string(), hash: h(hash), type1_hash: h("t"), effective: at(effective) }
    }

    fn version(key: i64, hash: &str, from: &str, to: Option<&str>) -> Version {
        Version {
            key,
            hash: Some(h(hash)),
            type1_hash: Some(h("t")),
            valid_from: at(from),
            valid_to: to.map(at),
            is_current: to.is_none(),
            is_inferred: false,
        }
    }

    fn existing(key: &str, versions: Vec<Version>) -> Existing {
        Existing::from_iter([(key.to_string(), versions)])
    }

    #[test]
    fn instants_are_written_fixed_width_and_read_back() {
        let instant = chrono::DateTime::from_timestamp_micros(1_704_067_200_000_001).expect("instant");
        assert_eq!(timestamp_text(instant), "2024-01-01T00:00:00.000001Z");
        assert_eq!(timestamp_text(instant), instant.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string());
        assert_eq!(timestamp_micros("2024-01-01T00:00:00.000001Z"), Some(1_704_067_200_000_001));
        assert_eq!(timestamp_micros(INFERRED_FROM), Some(INFERRED_FROM_MICROS));
        let early = chrono::DateTime::from_timestamp_micros(INFERRED_FROM_MICROS).expect("1900");
        assert_eq!(timestamp_text(early), INFERRED_FROM);
    }

    #[test]
    fn the_fixed_width_reader_agrees_with_chrono() {
        let chrono_micros = |text: &str| {
            chrono::NaiveDateTime::parse_from_str(text.trim_end_matches('Z'), "%Y-%m-%dT%H:%M:%S%.f")
                .ok()
                .map(|time| time.and_utc().timestamp_micros())
        };
        let mut micros = -62_135_596_800_000_000i64; // 0001-01-01
        while micros < 253_402_300_799_999_999 {
            let text = timestamp_text(chrono::DateTime::from_timestamp_micros(micros).expect("instant"));
            assert_eq!(fixed_width_micros(&text), Some(micros), "{text}");
            assert_eq!(chrono_micros(&text), Some(micros), "{text}");
            micros += 7_777_777_777_777;
        }
        for text in ["2024-02-30T00:00:00.000000Z", "2024-01-01T24:00:00.000000Z", "2024-01-01 00:00:00.000000Z"] {
            assert_eq!(fixed_width_micros(text), None, "{text}");
            assert_eq!(timestamp_micros(text), chrono_micros(text), "{text}");
        }
        // Other widths go to chrono.
        assert_eq!(timestamp_micros("2024-01-01T00:00:00.5Z"), Some(1_704_067_200_500_000));
    }

    #[test]
    fn hashes_are_stored_as_32_hex_digits_and_read_back() {
        let hash: Hash = 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210;
        assert_eq!(hash_text(hash), "0123456789abcdeffedcba9876543210");
        assert_eq!(hash_value(&hash_text(hash)), Some(hash));
        assert_eq!(hash_text(1), format!("{}1", "0".repeat(31)));
        // Anything else is no hash of Lakestar's: it equals no row's.
        for text in ["", "0123456789ABCDEFFEDCBA9876543210", "+123456789abcdeffedcba9876543210", "abc", &"0".repeat(64)]
        {
            assert_eq!(hash_value(text), None, "{text}");
        }
    }

    #[test]
    fn a_stored_hash_is_its_16_bytes_or_its_32_hex_digits() {
        let hash: Hash = 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210;
        assert_eq!(stored_hash(&hash.to_be_bytes()), Some(hash));
        assert_eq!(stored_hash(hash_text(hash).as_bytes()), Some(hash));
        for bytes in [&b""[..], &[0u8; 15], &[0u8; 17], &[0xff; 32], b"0123456789ABCDEFFEDCBA9876543210"] {
            assert_eq!(stored_hash(bytes), None, "{bytes:?}");
        }
    }

    #[test]
    fn new_keys_get_new_surrogate_keys_in_order() {
        let plan =
            plan(&[staged(0, "C1", "a", "2024-01-01"), staged(1, "C2", "b", "2024-01-01")], Existing::default(), 7);
        assert_eq!(plan.inserted, 2);
        assert_eq!(plan.rows.iter().map(|row| (row.key, row.row)).collect::<Vec<_>>(), [(8, Some(0)), (9, Some(1))]);
        assert!(plan.rows.iter().all(|row| row.action == Action::Insert && row.is_current && row.valid_to.is_none()));
    }

    #[test]
    fn a_tracked_change_closes_the_current_version_and_opens_a_new_one() {
        let plan =
            plan(&[staged(0, "C1", "b", "2024-02-01")], existing("C1", vec![version(3, "a", "2024-01-01", None)]), 10);
        assert_eq!(plan.updated, 1);
        assert_eq!(
            plan.rows,
            [
                PlanRow {
                    key: 3,
                    row: None,
                    action: Action::Update,
                    valid_from: at("2024-01-01"),
                    valid_to: Some(at("2024-02-01")),
                    is_current: false,
                },
                PlanRow {
                    key: 11,
                    row: Some(0),
                    action: Action::Insert,
                    valid_from: at("2024-02-01"),
                    valid_to: None,
                    is_current: true,
                },
            ]
        );
    }

    #[test]
    fn a_changed_type_one_hash_leaves_the_columns_to_the_database() {
        let mut row = staged(0, "C1", "a", "2024-02-01");
        row.type1_hash = h("u");
        let plan = plan(&[row], existing("C1", vec![version(3, "a", "2024-01-01", None)]), 10);
        assert_eq!((plan.type1, plan.updated, plan.inserted, plan.unchanged), (1, 0, 0, 0));
        assert_eq!(plan.rows.len(), 1);
        assert_eq!((plan.rows[0].action.clone(), plan.rows[0].row, plan.rows[0].key), (Action::Type1, Some(0), 3));

        // A row written before the warehouse kept the hash is compared by the database too.
        let mut legacy = version(3, "a", "2024-01-01", None);
        legacy.type1_hash = None;
        let plan = super::plan(&[staged(0, "C1", "a", "2024-02-01")], existing("C1", vec![legacy]), 10);
        assert_eq!((plan.type1, plan.rows.len()), (1, 1));
    }

    #[test]
    fn an_unchanged_row_plans_nothing() {
        let plan =
            plan(&[staged(0, "C1", "a", "2024-02-01")], existing("C1", vec![version(3, "a", "2024-01-01", None)]), 10);
        assert_eq!((plan.unchanged, plan.type1, plan.updated, plan.inserted), (1, 0, 0, 0));
        assert!(plan.rows.is_empty(), "{plan:?}");
    }

    #[test]
    fn a_back_dated_change_is_slotted_into_history_and_does_not_become_current() {
        let existing = existing(
            "C1",
            vec![version(3, "a", "2024-01-01", Some("2024-03-01")), version(4, "c", "2024-03-01", None)],
        );
        let plan = plan(&[staged(0, "C1", "b", "2024-02-01")], existing.clone(), 10);
        assert_eq!(plan.updated, 1);
        let rows: Vec<_> =
            plan.rows.iter().map(|row| (row.key, row.valid_from, row.valid_to, row.is_current)).collect();
        assert_eq!(
            rows,
            [
                (3, at("2024-01-01"), Some(at("2024-02-01")), false),
                (11, at("2024-02-01"), Some(at("2024-03-01")), false)
            ]
        );

        // Before every version: a new first version ending where the old first began.
        let plan = super::plan(&[staged(0, "C1", "z", "2023-06-01")], existing.clone(), 10);
        assert_eq!(plan.rows.len(), 1);
        assert_eq!((plan.rows[0].valid_from, plan.rows[0].valid_to), (at("2023-06-01"), Some(at("2024-01-01"))));

        // Equal to the version of its time: nothing to do.
        let plan = super::plan(&[staged(0, "C1", "a", "2024-02-01")], existing, 10);
        assert_eq!((plan.unchanged, plan.rows.len()), (1, 0));
    }

    #[test]
    fn an_inferred_member_is_completed_in_place() {
        let inferred = Version {
            key: 5,
            hash: None,
            type1_hash: None,
            valid_from: INFERRED_FROM_MICROS,
            valid_to: None,
            is_current: true,
            is_inferred: true,
        };
        let plan = plan(&[staged(2, "C9", "a", "2024-01-03")], existing("C9", vec![inferred]), 10);
        assert_eq!(plan.updated, 1);
        assert_eq!(plan.rows.len(), 1);
        let row = &plan.rows[0];
        assert_eq!(
            (row.key, row.row, row.action.clone(), row.valid_from),
            (5, Some(2), Action::Update, INFERRED_FROM_MICROS)
        );
        assert!(row.is_current);
    }

    #[test]
    fn applying_the_result_again_changes_nothing() {
        // Replaying each case against the versions it produced plans no history change.
        let cases = [
            (vec![], staged(0, "C1", "a", "2024-01-01")),
            (vec![version(3, "a", "2024-01-01", None)], staged(0, "C1", "b", "2024-02-01")),
            (
                vec![version(3, "a", "2024-01-01", Some("2024-03-01")), version(4, "c", "2024-03-01", None)],
                staged(0, "C1", "b", "2024-02-01"),
            ),
            (vec![version(3, "a", "2024-01-01", None)], staged(0, "C1", "z", "2023-01-01")),
        ];
        for (versions, row) in cases {
            let first = plan(std::slice::from_ref(&row), existing("C1", versions.clone()), 10);
            let mut after: BTreeMap<i64, Version> =
                versions.into_iter().map(|version| (version.key, version)).collect();
            for planned in &first.rows {
                let hash =
                    if planned.row.is_some() { Some(row.hash) } else { after.get(&planned.key).and_then(|v| v.hash) };
                after.insert(
                    planned.key,
                    Version {
                        key: planned.key,
                        hash,
                        type1_hash: Some(row.type1_hash),
                        valid_from: planned.valid_from,
                        valid_to: planned.valid_to,
                        is_current: planned.is_current,
                        is_inferred: false,
                    },
                );
            }
            let again = plan(std::slice::from_ref(&row), existing("C1", after.into_values().collect()), 20);
            assert_eq!(again.inserted + again.updated + again.type1, 0, "{row:?}: {again:?}");
            assert!(again.rows.is_empty(), "{again:?}");
        }
    }
}
