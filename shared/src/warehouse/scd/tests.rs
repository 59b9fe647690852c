//! The SCD2 planner case by case: new keys, tracked and type 1 changes, back-dated changes,
//! inferred members, and applying a plan twice.

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
        type1_from: at(from),
    }
}

fn existing(key: &str, versions: Vec<Version>) -> Existing {
    Existing::from_iter([(key.to_string(), versions)])
}

#[test]
fn new_keys_get_new_surrogate_keys_in_order() {
    let plan = plan(&[staged(0, "C1", "a", "2024-01-01"), staged(1, "C2", "b", "2024-01-01")], Existing::default(), 7);
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
                type1_from: at("2024-01-01"),
                copy_of: None,
            },
            PlanRow {
                key: 11,
                row: Some(0),
                action: Action::Insert,
                valid_from: at("2024-02-01"),
                valid_to: None,
                is_current: true,
                type1_from: at("2024-02-01"),
                copy_of: None,
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
    let existing =
        existing("C1", vec![version(3, "a", "2024-01-01", Some("2024-03-01")), version(4, "c", "2024-03-01", None)]);
    let plan = plan(&[staged(0, "C1", "b", "2024-02-01")], existing.clone(), 10);
    assert_eq!(plan.updated, 1);
    let rows: Vec<_> = plan.rows.iter().map(|row| (row.key, row.valid_from, row.valid_to, row.is_current)).collect();
    assert_eq!(
        rows,
        [(3, at("2024-01-01"), Some(at("2024-02-01")), false), (11, at("2024-02-01"), Some(at("2024-03-01")), false)]
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
        type1_from: INFERRED_FROM_MICROS,
    };
    let plan = plan(&[staged(2, "C9", "a", "2024-01-03")], existing("C9", vec![inferred]), 10);
    assert_eq!(plan.updated, 1);
    assert_eq!(plan.rows.len(), 1);
    let row = &plan.rows[0];
    // Valid from the row's time, as if the row had come before the fact.
    assert_eq!((row.key, row.row, row.action.clone(), row.valid_from), (5, Some(2), Action::Update, at("2024-01-03")));
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
        let mut after: BTreeMap<i64, Version> = versions.into_iter().map(|version| (version.key, version)).collect();
        for planned in &first.rows {
            let hash = if planned.row.is_some() {
                Some(row.hash)
            } else {
                after.get(&planned.copy_of.unwrap_or(planned.key)).and_then(|v| v.hash)
            };
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
                    type1_from: planned.type1_from,
                },
            );
        }
        let again = plan(std::slice::from_ref(&row), existing("C1", after.into_values().collect()), 20);
        assert_eq!(again.inserted + again.updated + again.type1, 0, "{row:?}: {again:?}");
        assert!(again.rows.is_empty(), "{again:?}");
    }
}

/// What the warehouse would hold for one key after planning `rows` one load at a time in the
/// given order, each load applied to the result of the one before: its versions (tracked hash,
/// valid from, valid to) and the current version's type 1 hash.
fn history(rows: &[Staged]) -> (Vec<(Hash, i64, Option<i64>)>, Hash) {
    let mut stored: BTreeMap<i64, Version> = BTreeMap::new();
    let mut max_key = 0;
    for row in rows {
        let found: Vec<Version> = stored.values().cloned().collect();
        let existing = if found.is_empty() { Existing::default() } else { existing("C1", found) };
        let planned = plan(std::slice::from_ref(row), existing, max_key);
        for planned in &planned.rows {
            max_key = max_key.max(planned.key);
            let source = planned.copy_of.and_then(|key| stored.get(&key).cloned());
            let before = stored.get(&planned.key).cloned();
            let (hash, type1_hash) = match (planned.row, &source, &before) {
                (Some(_), _, _) if planned.action != Action::Type1 => (row.hash, row.type1_hash),
                (Some(_), _, Some(before)) => (before.hash.unwrap_or_default(), row.type1_hash),
                (None, Some(source), _) | (None, None, Some(source)) => {
                    (source.hash.unwrap_or_default(), source.type1_hash.unwrap_or_default())
                }
                _ => panic!("a plan row without columns: {planned:?}"),
            };
            stored.insert(
                planned.key,
                Version {
                    key: planned.key,
                    hash: Some(hash),
                    type1_hash: Some(type1_hash),
                    valid_from: planned.valid_from,
                    valid_to: planned.valid_to,
                    is_current: planned.is_current,
                    is_inferred: false,
                    type1_from: planned.type1_from,
                },
            );
        }
    }
    let current = stored.values().find(|version| version.is_current).and_then(|version| version.type1_hash);
    let mut versions: Vec<_> = stored
        .into_values()
        .map(|version| (version.hash.unwrap_or_default(), version.valid_from, version.valid_to))
        .collect();
    versions.sort_by_key(|version| version.1);
    (versions, current.unwrap_or_default())
}

/// Issue 32.3: one key's deliveries in every order give the history of the order of their
/// times: tracked changes, type 1 changes, a value that returns (A, B, A), rows equal to the
/// version before them. (A closed version's type 1 columns are the newest row's of its
/// tracked values the warehouse saw: an older row's are not kept once a newer one is loaded.)
#[test]
fn every_arrival_order_gives_the_history_of_time_order() {
    let row = |row: i64, hash: &str, type1: &str, day: &str| {
        let mut staged = staged(row, "C1", hash, day);
        staged.type1_hash = h(type1);
        staged
    };
    let cases = [
        vec![row(0, "a", "850", "2024-01-01"), row(1, "a", "900", "2024-01-03")],
        vec![row(0, "a", "t", "2024-01-01"), row(1, "b", "t", "2024-01-02"), row(2, "c", "t", "2024-01-03")],
        vec![row(0, "a", "t", "2024-01-01"), row(1, "b", "t", "2024-01-02"), row(2, "a", "u", "2024-01-03")],
        vec![row(0, "a", "t", "2024-01-01"), row(1, "a", "u", "2024-01-02"), row(2, "b", "u", "2024-01-03")],
        vec![
            row(0, "a", "t", "2024-01-01"),
            row(1, "b", "t", "2024-01-02"),
            row(2, "b", "u", "2024-01-03"),
            row(3, "a", "v", "2024-01-04"),
        ],
    ];
    for rows in cases {
        let expected = history(&rows);
        let mut order: Vec<usize> = (0..rows.len()).collect();
        // Every permutation, by Heap's algorithm.
        let mut counters = vec![0; order.len()];
        let mut index = 0;
        loop {
            let arrived: Vec<Staged> = order.iter().map(|&at| rows[at].clone()).collect();
            assert_eq!(history(&arrived), expected, "arrival order {order:?} of {rows:?}");
            while index < order.len() && counters[index] >= index {
                counters[index] = 0;
                index += 1;
            }
            if index == order.len() {
                break;
            }
            order.swap(if index % 2 == 0 { 0 } else { counters[index] }, index);
            counters[index] += 1;
            index = 0;
        }
    }
}
