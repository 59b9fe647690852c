//! A dataset's DQDL rulesets compiled and evaluated on a run.
//!
//! Each rule falls in one of three classes:
//! - **rows**: row-level rules (and `and`/`or` of them) without a threshold. Every row that
//!   fails is quarantined with the rule as its reason (a `warn` rule's rows are kept and counted).
//! - **threshold**: a row-level rule with `with threshold`, and `Completeness`. The share of
//!   rows that pass is measured over every row received, before anything is quarantined; when
//!   it meets the threshold the failing rows are tolerated and kept, when it does not they are
//!   quarantined with the rule as their reason and the rule fails.
//! - **dataset**: dataset-level rules, and composites that hold one. Measured on the rows the
//!   run keeps (what `processed/` holds); a failing rule fails the quality gate, or warns.
//!
//! Validate drives an [`Evaluator`]: `count` on its first pass (threshold shares), `judge` on
//! its second (row reasons), `measure` on the rows it keeps, then `finish`.

pub mod rules;
pub mod sql;
pub mod value;

use std::cmp::Ordering;
use std::collections::HashSet;
use std::sync::Arc;

use arrow::array::BooleanArray;
use serde::{Deserialize, Serialize};

use crate::contract::dqdl;
use crate::contract::{Contract, Dataset};
use crate::types::DataType;
use crate::validate::dedupe::DuplicateFinder;
use crate::validate::plan::Reasons;
use crate::{Error, Result};
pub use rules::{Class, CompileError, Reference, Rule, RuleColumn, Rules, Severity};
use rules::{Leaf, Measure, MeasureRule, Node, RowCheck};
use sql::Aggregate;
pub use value::{Row, Scalar, View};

/// A rule's outcome on a run, as the validate section and the quality report hold it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleOutcome {
    /// The rule as written, whitespace collapsed.
    pub rule: String,
    /// Its line in its ruleset.
    pub line: usize,
    /// `fail` or `warn`.
    pub severity: Severity,
    /// `passed`, `failed`, or `quarantined` (a row-level rule whose failing rows were
    /// quarantined; the reject ratio judges the run).
    pub outcome: String,
    /// Rows that failed it (row-level rules).
    pub rows_failed: u64,
    /// What was measured: the share of rows passing, or the dataset's measure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measure: Option<f64>,
    /// The outcome in words.
    pub message: String,
}

impl RuleOutcome {
    /// A `dqdl` rule that failed: it fails the gate.
    pub fn failed(&self) -> bool {
        self.severity == Severity::Fail && self.outcome == FAILED
    }

    /// A `dqdl_warn` rule that did not pass: a warning.
    pub fn warned(&self) -> bool {
        self.severity == Severity::Warn && self.outcome != PASSED
    }
}

/// A passing rule's outcome.
pub const PASSED: &str = "passed";
/// A failing rule's outcome.
pub const FAILED: &str = "failed";
/// A row-level rule whose failing rows went to quarantine.
pub const QUARANTINED: &str = "quarantined";

impl Rules {
    /// Compiles the dataset's `quality.dqdl` (fail) and `quality.dqdl_warn` (warn) rulesets;
    /// `now` is the run's time. A ruleset the contract's checks passed compiles.
    pub fn of(dataset: &Dataset, now: chrono::DateTime<chrono::Utc>) -> Result<Rules> {
        let mut rules = Rules::new(dataset.rule_columns(), now);
        for (text, severity) in dataset.rulesets() {
            let parsed = dqdl::parse(text).map_err(|error| rules.invalid(dataset, &error.to_string()))?;
            if let Err(errors) = rules.add(&parsed, severity) {
                let error = &errors[0];
                return Err(rules.invalid(
                    dataset,
                    &format!("line {} column {} of the ruleset: {}", error.line, error.column, error.message),
                ));
            }
        }
        Ok(rules)
    }

    fn invalid(&self, dataset: &Dataset, message: &str) -> Error {
        Error::Internal(format!(
            "the DQDL of dataset `{}` does not compile ({message}); run `lakestar check` on the contract",
            dataset.name
        ))
    }
}

/// A measure's running state.
enum Accumulator {
    None,
    Count(u64),
    /// Present values: count, sum, and Welford's mean and squared deviations.
    Stats {
        count: u64,
        sum: f64,
        mean: f64,
        squares: f64,
    },
    /// Values by key, for distinct counts; rows with a missing part counted apart.
    Frequencies {
        finder: DuplicateFinder,
        present: u64,
        missing: u64,
    },
    Extreme(Option<Scalar<'static>>, bool),
    /// Keys looked up in another dataset's: those found, those with every part present.
    Lookups {
        keys: Arc<ReferenceKeys>,
        found: u64,
        present: u64,
    },
}

/// The keys another dataset's rows hold in a reference's columns (`ReferentialIntegrity`).
#[derive(Debug, Default)]
pub struct ReferenceKeys {
    /// Each complete key, as [`ReferenceKeys::key`] writes it.
    pub keys: HashSet<String>,
    /// The rows read (with a missing part or not).
    pub rows: u64,
}

impl ReferenceKeys {
    /// Appends a value's part of a key to `key` (parts apart by a unit separator); `false`
    /// when the value is missing (the key is incomplete).
    pub fn push(key: &mut String, value: &Scalar<'_>) -> bool {
        if value.is_null() {
            return false;
        }
        if !key.is_empty() {
            key.push('\u{1f}');
        }
        key.push_str(&value.key());
        true
    }
}

/// A rule set's evaluation on one run.
pub struct Evaluator {
    rules: Rules,
    /// The row leaves the first pass counts (of threshold and dataset rules).
    counted: Vec<usize>,
    /// Per leaf: rows judged and rows passed (first pass, counted leaves).
    shares: Vec<(u64, u64)>,
    /// Per rule: whether its failing rows are quarantined (second pass).
    quarantines: Vec<bool>,
    /// Per rule: rows that failed it on the second pass (row rules).
    failed: Vec<u64>,
    accumulators: Vec<Accumulator>,
}

/// What `finish` needs besides the rows: the file's columns and the contract.
pub struct Context<'a> {
    /// The file's columns as received (contract names where headers matched).
    pub columns: &'a [String],
    /// The contract (SchemaMatch's reference dataset).
    pub contract: &'a Contract,
    /// The dataset.
    pub dataset: &'a Dataset,
    /// The rows the dataset's previous run kept, for RowCountMatch (`None`: no earlier run).
    pub previous_rows: Option<u64>,
}

impl Evaluator {
    /// An evaluation of the rules.
    pub fn new(rules: Rules) -> Evaluator {
        let accumulators = rules
            .leaves
            .iter()
            .map(|leaf| match leaf {
                Leaf::Row(_) => Accumulator::None,
                Leaf::Measure(rule) => match &rule.measure {
                    Measure::RowCount | Measure::RowCountMatch => Accumulator::Count(0),
                    Measure::Mean(_) | Measure::Sum(_) | Measure::StandardDeviation(_) => {
                        Accumulator::Stats { count: 0, sum: 0.0, mean: 0.0, squares: 0.0 }
                    }
                    Measure::Sql(Aggregate::CountRows | Aggregate::Count(_)) => Accumulator::Count(0),
                    Measure::Sql(Aggregate::Sum(_) | Aggregate::Avg(_)) => {
                        Accumulator::Stats { count: 0, sum: 0.0, mean: 0.0, squares: 0.0 }
                    }
                    Measure::Sql(Aggregate::Min(_)) => Accumulator::Extreme(None, false),
                    Measure::Sql(Aggregate::Max(_)) => Accumulator::Extreme(None, true),
                    Measure::IsUnique(_)
                    | Measure::IsPrimaryKey(_)
                    | Measure::Uniqueness(_)
                    | Measure::UniqueValueRatio(_)
                    | Measure::DistinctValuesCount(_)
                    | Measure::Entropy(_)
                    | Measure::Sql(Aggregate::CountDistinct(_)) => {
                        Accumulator::Frequencies { finder: DuplicateFinder::default(), present: 0, missing: 0 }
                    }
                    Measure::ReferentialIntegrity(..) => {
                        Accumulator::Lookups { keys: Arc::default(), found: 0, present: 0 }
                    }
                    Measure::ColumnCount
                    | Measure::ColumnExists(_)
                    | Measure::ColumnNamesMatch(_)
                    | Measure::SchemaMatch(_) => Accumulator::None,
                },
            })
            .collect();
        let count = rules.rules.len();
        Evaluator {
            counted: rules.counted_leaves().collect(),
            shares: vec![(0, 0); rules.leaves.len()],
            quarantines: rules
                .rules
                .iter()
                .map(|rule| rule.severity == Severity::Fail && rule.class == Class::Rows)
                .collect(),
            failed: vec![0; count],
            accumulators,
            rules,
        }
    }

    /// The rules.
    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// Gives the rules that look keys up in `reference` the keys its dataset holds.
    pub fn provide(&mut self, reference: &Reference, keys: ReferenceKeys) {
        let keys = Arc::new(keys);
        for (leaf, accumulator) in self.rules.leaves.iter().zip(&mut self.accumulators) {
            if let Leaf::Measure(rule) = leaf
                && let Measure::ReferentialIntegrity(_, wanted) = &rule.measure
                && wanted == reference
                && let Accumulator::Lookups { keys: held, .. } = accumulator
            {
                *held = Arc::clone(&keys);
            }
        }
    }

    /// First pass: counts the rows that pass each threshold's and composite's row rule.
    pub fn count(&mut self, row: &Row<'_>, rows: usize) {
        for &index in &self.counted {
            let Leaf::Row(check) = &self.rules.leaves[index] else { continue };
            let (judged, passed) = &mut self.shares[index];
            for position in 0..rows {
                if let Some(pass) = check.judge(&self.rules, row, position) {
                    *judged += 1;
                    *passed += u64::from(pass);
                }
            }
        }
    }

    /// Between the passes: a threshold rule whose share falls short quarantines its failing rows.
    pub fn settle(&mut self) {
        for (index, rule) in self.rules.rules.iter().enumerate() {
            if rule.class == Class::Threshold && rule.severity == Severity::Fail {
                self.quarantines[index] = !self.threshold_met(rule);
            }
        }
    }

    fn share(&self, leaf: usize) -> f64 {
        let (judged, passed) = self.shares[leaf];
        if judged == 0 { 1.0 } else { passed as f64 / judged as f64 }
    }

    fn leaf_check(&self, leaf: usize) -> Option<&RowCheck> {
        match &self.rules.leaves[leaf] {
            Leaf::Row(check) => Some(check),
            Leaf::Measure(_) => None,
        }
    }

    fn threshold_met(&self, rule: &Rule) -> bool {
        let Node::Leaf(leaf) = rule.node else { return true };
        self.row_leaf_holds(leaf)
    }

    /// A counted row leaf's verdict: its share against its threshold, or every row passing.
    fn row_leaf_holds(&self, leaf: usize) -> bool {
        let share = self.share(leaf);
        match self.leaf_check(leaf).and_then(|check| check.threshold.as_ref()) {
            Some(threshold) => threshold.measure_holds(share),
            None => self.shares[leaf].0 == self.shares[leaf].1,
        }
    }

    /// Second pass: each row's failures of the row rules; a failing row of a rule that
    /// quarantines gets the rule as a reason.
    pub fn judge(&mut self, row: &Row<'_>, rows: usize, reasons: &mut Reasons) {
        for (index, rule) in self.rules.rules.iter().enumerate() {
            match rule.class {
                Class::Rows => {
                    for position in 0..rows {
                        let holds = rule.node.holds(&mut |leaf| match &self.rules.leaves[leaf] {
                            Leaf::Row(check) => check.judge(&self.rules, row, position) != Some(false),
                            Leaf::Measure(_) => true,
                        });
                        if !holds {
                            self.failed[index] += 1;
                            if self.quarantines[index] {
                                reasons.push(position, &rule.reason);
                            }
                        }
                    }
                }
                Class::Threshold if self.quarantines[index] => {
                    let Node::Leaf(leaf) = rule.node else { continue };
                    let Leaf::Row(check) = &self.rules.leaves[leaf] else { continue };
                    for position in 0..rows {
                        if check.judge(&self.rules, row, position) == Some(false) {
                            reasons.push(position, &rule.reason);
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// The dataset measures over the rows the run keeps.
    pub fn measure(&mut self, row: &Row<'_>, keep: &BooleanArray) -> Result<()> {
        let mut parts: Vec<String> = Vec::new();
        let mut key = String::new();
        for (leaf, accumulator) in self.rules.leaves.iter().zip(&mut self.accumulators) {
            let Leaf::Measure(rule) = leaf else { continue };
            let column = match &rule.measure {
                Measure::Mean(column)
                | Measure::Sum(column)
                | Measure::StandardDeviation(column)
                | Measure::IsUnique(column)
                | Measure::Uniqueness(column)
                | Measure::UniqueValueRatio(column)
                | Measure::DistinctValuesCount(column)
                | Measure::Entropy(column)
                | Measure::Sql(
                    Aggregate::Count(column)
                    | Aggregate::CountDistinct(column)
                    | Aggregate::Sum(column)
                    | Aggregate::Avg(column)
                    | Aggregate::Min(column)
                    | Aggregate::Max(column),
                ) => Some(*column),
                _ => None,
            };
            if matches!(accumulator, Accumulator::None) {
                continue;
            }
            let single = column.unwrap_or(0);
            let key_columns: &[usize] = match &rule.measure {
                Measure::IsPrimaryKey(columns) | Measure::ReferentialIntegrity(columns, _) => columns,
                _ => std::slice::from_ref(&single),
            };
            for position in (0..keep.len()).filter(|position| keep.value(*position)) {
                if let Some(filter) = &rule.filter
                    && !filter.holds(row, position)
                {
                    continue;
                }
                match accumulator {
                    Accumulator::None => {}
                    Accumulator::Count(count) => {
                        if column.is_none_or(|column| !row.value(column, position).is_null()) {
                            *count += 1;
                        }
                    }
                    Accumulator::Stats { count, sum, mean, squares } => {
                        let Some(value) = column.and_then(|column| row.value(column, position).as_f64()) else {
                            continue;
                        };
                        *count += 1;
                        *sum += value;
                        let delta = value - *mean;
                        *mean += delta / *count as f64;
                        *squares += delta * (value - *mean);
                    }
                    Accumulator::Extreme(best, max) => {
                        let Some(column) = column else { continue };
                        let value = row.value(column, position);
                        if value.is_null() {
                            continue;
                        }
                        let better = match best {
                            None => true,
                            Some(best) => {
                                let ordering = value.compare(best);
                                if *max {
                                    ordering == Some(Ordering::Greater)
                                } else {
                                    ordering == Some(Ordering::Less)
                                }
                            }
                        };
                        if better {
                            *best = Some(value.into_owned());
                        }
                    }
                    Accumulator::Lookups { keys, found, present } => {
                        key.clear();
                        if key_columns.iter().all(|column| ReferenceKeys::push(&mut key, &row.value(*column, position)))
                        {
                            *present += 1;
                            *found += u64::from(keys.keys.contains(&key));
                        }
                    }
                    Accumulator::Frequencies { finder, present, missing } => {
                        parts.clear();
                        let mut complete = true;
                        for column in key_columns {
                            let value = row.value(*column, position);
                            if value.is_null() {
                                complete = false;
                                break;
                            }
                            parts.push(value.key().into_owned());
                        }
                        if complete {
                            *present += 1;
                            finder.add(0, &parts)?;
                        } else {
                            *missing += 1;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Every rule's outcome on the run.
    pub fn finish(mut self, context: &Context<'_>) -> Result<Vec<RuleOutcome>> {
        let accumulators = std::mem::take(&mut self.accumulators);
        let evaluator = self;
        // Each measure leaf: its value (None when there is nothing to measure) and verdict.
        let mut measured: Vec<Option<(Option<f64>, bool, String)>> = Vec::new();
        for (leaf, accumulator) in evaluator.rules.leaves.iter().zip(accumulators) {
            let Leaf::Measure(rule) = leaf else {
                measured.push(None);
                continue;
            };
            measured.push(Some(measure_outcome(rule, accumulator, context)?));
        }
        let mut outcomes = Vec::new();
        for (index, rule) in evaluator.rules.rules.iter().enumerate() {
            let (outcome, rows_failed, measure, message) = match rule.class {
                Class::Rows => {
                    let failed = evaluator.failed[index];
                    if failed == 0 {
                        (PASSED, 0, None, "every row passed".to_string())
                    } else if evaluator.quarantines[index] {
                        (QUARANTINED, failed, None, format!("{failed} row(s) failed and were quarantined"))
                    } else {
                        (FAILED, failed, None, format!("{failed} row(s) failed (kept: the rule warns)"))
                    }
                }
                Class::Threshold => {
                    let Node::Leaf(leaf) = rule.node else { continue };
                    let (judged, passed) = evaluator.shares[leaf];
                    let share = evaluator.share(leaf);
                    let met = evaluator.threshold_met(rule);
                    let message = if met {
                        format!("{passed} of {judged} row(s) passed ({share:.4}); the threshold holds")
                    } else if evaluator.quarantines[index] {
                        format!(
                            "{passed} of {judged} row(s) passed ({share:.4}), short of the threshold; the failing rows were quarantined"
                        )
                    } else {
                        format!("{passed} of {judged} row(s) passed ({share:.4}), short of the threshold")
                    };
                    (if met { PASSED } else { FAILED }, judged - passed, Some(share), message)
                }
                Class::Dataset => {
                    let mut messages = Vec::new();
                    let mut single = None;
                    let holds = rule.node.holds(&mut |leaf| match &measured[leaf] {
                        Some((value, holds, message)) => {
                            single = *value;
                            messages.push(message.clone());
                            *holds
                        }
                        None => {
                            let (judged, passed) = evaluator.shares[leaf];
                            messages.push(format!("{passed} of {judged} row(s) passed"));
                            evaluator.row_leaf_holds(leaf)
                        }
                    });
                    let measure = if matches!(rule.node, Node::Leaf(_)) { single } else { None };
                    (if holds { PASSED } else { FAILED }, 0, measure, messages.join("; "))
                }
            };
            outcomes.push(RuleOutcome {
                rule: rule.text.clone(),
                line: rule.line,
                severity: rule.severity,
                outcome: outcome.to_string(),
                rows_failed,
                measure,
                message,
            });
        }
        Ok(outcomes)
    }
}

/// A dataset measure's value, verdict and words.
fn measure_outcome(
    rule: &MeasureRule,
    accumulator: Accumulator,
    context: &Context<'_>,
) -> Result<(Option<f64>, bool, String)> {
    let verdict = |value: Option<f64>, what: &str| -> (Option<f64>, bool, String) {
        match (value, &rule.condition) {
            (Some(value), Some(condition)) => {
                (Some(value), condition.measure_holds(value), format!("{what} {}", shown(value)))
            }
            (None, _) => (None, false, format!("no {what} to measure: no rows")),
            (Some(value), None) => (Some(value), true, format!("{what} {}", shown(value))),
        }
    };
    let flag = |holds: bool, message: String| (None, holds, message);
    let columns = context.columns;
    Ok(match (&rule.measure, accumulator) {
        (Measure::RowCount, Accumulator::Count(count)) => verdict(Some(count as f64), "rows"),
        (Measure::ColumnCount, _) => verdict(Some(columns.len() as f64), "columns"),
        (Measure::RowCountMatch, Accumulator::Count(count)) => match context.previous_rows {
            None => flag(true, "no previous run of the dataset to compare with".to_string()),
            Some(previous) => {
                let ratio = if previous == 0 {
                    if count == 0 { 1.0 } else { f64::INFINITY }
                } else {
                    count as f64 / previous as f64
                };
                verdict(Some(ratio), &format!("{count} rows against the previous run's {previous}: ratio"))
            }
        },
        (Measure::ReferentialIntegrity(_, reference), Accumulator::Lookups { keys, found, present }) => {
            let (value, holds, mut message) = verdict(
                (present > 0).then(|| found as f64 / present as f64),
                &format!("{found} of {present} key(s) found in `{}`: share", reference.dataset),
            );
            if keys.rows == 0 {
                message.push_str(&format!(" (`{}` has no processed rows yet)", reference.dataset));
            }
            (value, holds, message)
        }
        (Measure::ColumnExists(name), _) => {
            let found = columns.iter().any(|column| column == name);
            flag(found, if found { format!("`{name}` is present") } else { format!("the file has no column `{name}`") })
        }
        (Measure::ColumnNamesMatch(pattern), _) => {
            let misfits: Vec<&str> =
                columns.iter().filter(|column| !pattern.is_match(column)).map(String::as_str).collect();
            flag(
                misfits.is_empty(),
                if misfits.is_empty() {
                    "every column's name matches".to_string()
                } else {
                    format!("not matching: {}", misfits.join(", "))
                },
            )
        }
        (Measure::SchemaMatch(reference), _) => {
            let Some(other) = context.contract.dataset(reference) else {
                return Err(Error::Internal(format!(
                    "SchemaMatch names the dataset `{reference}`, which the contract lacks; run `lakestar check`"
                )));
            };
            let ours: Vec<(&str, Option<DataType>)> = columns
                .iter()
                .map(|name| (name.as_str(), context.dataset.column(name).map(|column| column.data_type)))
                .collect();
            let mut names: Vec<&str> = ours.iter().map(|(name, _)| *name).collect();
            names.extend(other.columns.iter().map(|column| column.name.as_str()));
            names.sort_unstable();
            names.dedup();
            let matching = ours
                .iter()
                .filter(|(name, data_type)| {
                    data_type
                        .is_some_and(|data_type| other.column(name).is_some_and(|column| column.data_type == data_type))
                })
                .count();
            let share = if names.is_empty() { 1.0 } else { matching as f64 / names.len() as f64 };
            verdict(Some(share), &format!("columns matching `{reference}`'s"))
        }
        (Measure::Mean(_) | Measure::Sql(Aggregate::Avg(_)), Accumulator::Stats { count, mean, .. }) => {
            verdict((count > 0).then_some(mean), "mean")
        }
        (Measure::Sum(_) | Measure::Sql(Aggregate::Sum(_)), Accumulator::Stats { sum, .. }) => {
            verdict(Some(sum), "sum")
        }
        (Measure::StandardDeviation(_), Accumulator::Stats { count, squares, .. }) => {
            verdict((count > 0).then(|| (squares / count as f64).sqrt()), "standard deviation")
        }
        (Measure::Sql(Aggregate::CountRows | Aggregate::Count(_)), Accumulator::Count(count)) => {
            verdict(Some(count as f64), "value")
        }
        (Measure::Sql(_), Accumulator::Extreme(best, _)) => {
            let value = best.as_ref().and_then(|best| match best {
                Scalar::Date(days) => Some(f64::from(*days)),
                Scalar::Timestamp(micros) => Some(*micros as f64 / 1e6),
                other => other.as_f64(),
            });
            verdict(value, "value")
        }
        (measure, Accumulator::Frequencies { finder, present, missing }) => {
            let (mut distinct, mut singles, mut entropy, mut largest) = (0u64, 0u64, 0f64, 0u64);
            finder.frequencies(|count| {
                distinct += 1;
                singles += u64::from(count == 1);
                largest = largest.max(count);
                let share = count as f64 / present.max(1) as f64;
                entropy -= share * share.ln();
            })?;
            match measure {
                Measure::IsUnique(_) => flag(
                    largest <= 1,
                    if largest <= 1 {
                        format!("{distinct} distinct value(s), none repeated")
                    } else {
                        format!("{} of {present} value(s) repeat another", present - distinct)
                    },
                ),
                Measure::IsPrimaryKey(_) => {
                    let holds = largest <= 1 && missing == 0;
                    let message = match (missing, largest <= 1) {
                        (0, true) => "complete and unique".to_string(),
                        (0, false) => format!("{} of {present} key(s) repeat another", present - distinct),
                        (missing, _) => format!("{missing} row(s) lack a part of the key"),
                    };
                    flag(holds, message)
                }
                Measure::Uniqueness(_) => verdict((present > 0).then(|| singles as f64 / present as f64), "uniqueness"),
                Measure::UniqueValueRatio(_) => {
                    verdict((distinct > 0).then(|| singles as f64 / distinct as f64), "unique value ratio")
                }
                Measure::Entropy(_) => verdict((present > 0).then_some(entropy.abs()), "entropy"),
                _ => verdict(Some(distinct as f64), "distinct values"),
            }
        }
        _ => (None, false, "not measured".to_string()),
    })
}

/// A measure as words: integers without a fraction, others to six significant places.
fn shown(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 { format!("{value:.0}") } else { format!("{value:.6}") }
}

#[cfg(test)]
mod tests;
