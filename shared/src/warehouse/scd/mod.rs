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
    /// The effective time of the row its columns were last written from (`valid_from` for a
    /// row written before the warehouse kept it): a row older than that does not overwrite them.
    pub type1_from: i64,
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
    /// A version unchanged in its tracked columns but not in its type 1 hash: its type 1
    /// columns are overwritten from `row` where they differ.
    Type1,
    /// A new version holding the columns of the version `copy_of`: the earlier part of a
    /// version that a back-dated change splits in three (A, then B, then A again).
    Copy,
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
    /// The effective time its columns come from after the load.
    pub type1_from: i64,
    /// For [`Action::Copy`], the version whose columns it takes.
    pub copy_of: Option<i64>,
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
    /// Versions that were current and are closed by the load.
    pub closed: u64,
    /// Natural keys the warehouse had whose history the plan changes (their facts may now
    /// belong to another version).
    pub reshaped: Vec<String>,
}

/// A version while the plan is built: where it came from and whether it changed.
#[derive(Debug, Clone)]
struct Working {
    version: Version,
    /// For a version the warehouse has: what the plan may change without taking a staged row's
    /// columns, as it was before the load.
    before: Option<Validity>,
    /// The staged row whose columns it takes.
    row: Option<i64>,
    /// Left to the type 1 comparison with this staged row.
    type1: Option<i64>,
    /// A copy of this existing version's columns.
    copy_of: Option<i64>,
}

/// The fields of a version the plan changes without a staged row's columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Validity {
    valid_from: i64,
    valid_to: Option<i64>,
    is_current: bool,
    type1_from: i64,
}

impl Validity {
    fn of(version: &Version) -> Validity {
        Validity {
            valid_from: version.valid_from,
            valid_to: version.valid_to,
            is_current: version.is_current,
            type1_from: version.type1_from,
        }
    }
}

impl Validity {
    /// Whether `version` differs from this; its columns' time not counted when a type 1
    /// overwrite records it.
    fn differs(&self, version: &Version, type1: bool) -> bool {
        let now = Validity::of(version);
        (now.valid_from, now.valid_to, now.is_current) != (self.valid_from, self.valid_to, self.is_current)
            || (!type1 && now.type1_from != self.type1_from)
    }
}

impl Working {
    /// Created or rewritten by this load (its columns are a staged row's or a copy's).
    fn written(&self) -> bool {
        self.before.is_none() || self.row.is_some()
    }
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
        let existed = if let Some(mut found) = existing.remove(&group[0].natural_key) {
            found.sort_by_key(|version| version.valid_from);
            versions.extend(found.into_iter().map(|version| Working {
                before: Some(Validity::of(&version)),
                version,
                row: None,
                type1: None,
                copy_of: None,
            }));
            true
        } else {
            false
        };
        let mut reshaped = false;
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
                (None, _) if working.copy_of.is_some() => Some(Action::Copy),
                (None, _) => Some(Action::Insert),
                (Some(before), row) if row.is_some() || before.differs(&version, working.type1.is_some()) => {
                    if before.is_current && !version.is_current {
                        plan.closed += 1;
                    }
                    Some(Action::Update)
                }
                _ if working.type1.is_some() => Some(Action::Type1),
                _ => None,
            };
            if let Some(action) = action {
                reshaped |= action != Action::Type1;
                plan.rows.push(PlanRow {
                    key: version.key,
                    row: working.row.or(working.type1),
                    action,
                    valid_from: version.valid_from,
                    valid_to: version.valid_to,
                    is_current: version.is_current,
                    type1_from: version.type1_from,
                    copy_of: working.copy_of,
                });
            }
        }
        if existed && reshaped {
            plan.reshaped.push(group[0].natural_key.clone());
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
            type1_from: row.effective,
        },
        before: None,
        row: Some(row.row),
        type1: None,
        copy_of: None,
    }
}

/// Takes `row`'s columns into `working` (its tracked hash included).
fn overwrite(working: &mut Working, row: &Staged) {
    working.version.hash = Some(row.hash);
    working.version.type1_hash = Some(row.type1_hash);
    working.version.is_inferred = false;
    working.version.type1_from = row.effective;
    working.row = Some(row.row);
    working.type1 = None;
}

/// Applies one staged row to the versions of its key (sorted by `valid_from`). The result
/// does not depend on the order rows arrive in: a row is placed by its effective time, a row
/// equal in its tracked columns to the version of its time overwrites that version's other
/// columns only if it is not older than the row they came from, and a back-dated row equal to
/// the version after it moves that version's start back instead of opening another.
fn apply(versions: &mut Vec<Working>, row: &Staged, next_key: &mut i64) -> Outcome {
    let Some(current) = versions.last_mut() else {
        versions.push(new_version(row, next_key, None));
        return Outcome::Inserted;
    };
    if current.version.is_inferred {
        // The real row completes the member a fact created, keeping its surrogate key; it is
        // valid from the row's time, as if the row had come first (a fact dated earlier keeps
        // its key: a date before a key's first version takes that version).
        overwrite(current, row);
        current.version.valid_from = row.effective;
        return Outcome::Completed;
    }
    let Some(index) = versions.iter().rposition(|working| working.version.valid_from <= row.effective) else {
        // Older than every version.
        let first = &mut versions[0];
        if first.version.hash == Some(row.hash) {
            // The first version was in effect already: it begins earlier. Its columns come
            // from a later row, which wins over this one.
            first.version.valid_from = row.effective;
        } else {
            let begins = first.version.valid_from;
            versions.insert(0, new_version(row, next_key, Some(begins)));
        }
        return Outcome::Updated;
    };
    let covering = &mut versions[index];
    if covering.version.hash == Some(row.hash) {
        // The version of its time, in the same tracked columns: its other columns take the
        // newer row's.
        if row.effective < covering.version.type1_from {
            return Outcome::Unchanged;
        }
        if covering.written() {
            overwrite(covering, row);
        } else if covering.version.type1_hash == Some(row.type1_hash) {
            covering.type1 = None;
            return Outcome::Unchanged;
        } else {
            covering.type1 = Some(row.row);
            covering.version.type1_hash = Some(row.type1_hash);
            covering.version.type1_from = row.effective;
        }
        return Outcome::Type1;
    }
    if covering.version.valid_from == row.effective {
        // A correction at the same instant.
        overwrite(covering, row);
        return Outcome::Updated;
    }
    let ends = covering.version.valid_to;
    if versions.get(index + 1).is_some_and(|next| next.version.hash == Some(row.hash)) {
        // The next version was in effect from this row's time already.
        versions[index].version.valid_to = Some(row.effective);
        versions[index + 1].version.valid_from = row.effective;
        return Outcome::Updated;
    }
    let covering = &mut versions[index];
    let rewritten_at = covering.version.type1_from;
    covering.version.valid_to = Some(row.effective);
    covering.version.is_current = false;
    if rewritten_at > row.effective && !covering.written() {
        // The version's columns come from a row later than this one, in the version's tracked
        // columns: that row began a version of its own after this one (A, B, A again). The
        // version keeps its key and columns from that row's time; its earlier part becomes a
        // copy of it; this row goes between.
        let earlier = covering.version.clone();
        covering.version.valid_from = rewritten_at;
        covering.version.valid_to = ends;
        covering.version.is_current = ends.is_none();
        let key = covering.version.key;
        *next_key += 1;
        let copy = Working {
            version: Version {
                key: *next_key,
                valid_to: Some(row.effective),
                is_current: false,
                // Its columns are a later row's: a row of its own time wins over them.
                type1_from: earlier.valid_from,
                ..earlier
            },
            before: None,
            row: None,
            type1: None,
            copy_of: Some(key),
        };
        versions.insert(index, copy);
        versions.insert(index + 1, new_version(row, next_key, Some(rewritten_at)));
        return Outcome::Updated;
    }
    versions.insert(index + 1, new_version(row, next_key, ends));
    Outcome::Updated
}

#[cfg(test)]
mod tests;
