//! The slowly-changing-dimension merge, planned in memory: the versions a run's staged rows
//! touch are read once, each staged row is applied in turn, and what changed becomes a
//! handful of set-based statements. Pure, so every case is a unit test.
//!
//! Times are microseconds since the Unix epoch, as PostgreSQL's binary `COPY` carries them;
//! SQLite stores the fixed-width UTC text `YYYY-MM-DDTHH:MM:SS.ffffffZ`,
//! which orders like the instants it names ([`super::codec`]).

use std::collections::HashMap;

/// `valid_from` of an inferred member: early enough that every fact finds it.
pub const INFERRED_FROM: &str = "1900-01-01T00:00:00.000000Z";

/// [`INFERRED_FROM`] in microseconds since the epoch.
pub const INFERRED_FROM_MICROS: i64 = -2_208_988_800_000_000;

pub use super::codec::Hash;

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
    /// A new version, a slotted back-dated version or a correction.
    Updated,
    /// An inferred member completed in place by its real row (counted as updated too).
    Completed,
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
    /// Of the `updated`, the inferred members completed in place by their real row.
    pub completed: u64,
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
                Outcome::Completed => {
                    plan.updated += 1;
                    plan.completed += 1;
                }
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
        return Outcome::Completed;
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
mod tests;
