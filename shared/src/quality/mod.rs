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

pub mod sql;
pub mod value;

use std::cmp::Ordering;

use arrow::array::BooleanArray;
use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::contract::dqdl::{self, Condition, Operator, RuleKind, SimpleRule, Value};
use crate::contract::{Contract, Dataset};
use crate::types::{DataType, cast};
use crate::validate::{DuplicateFinder, Reasons};
use crate::{Error, Result};
use sql::{Aggregate, Expr, Op, Query, Scope};
pub use value::{Row, Scalar, View};

/// What a failing rule does to the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Quarantines its rows, or fails the gate (`quality.dqdl`).
    Fail,
    /// Reported and alerted, never rejecting a row or failing the run (`quality.dqdl_warn`).
    Warn,
}

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

/// A passing rule's outcome.
pub const PASSED: &str = "passed";
/// A failing rule's outcome.
pub const FAILED: &str = "failed";
/// A row-level rule whose failing rows went to quarantine.
pub const QUARANTINED: &str = "quarantined";

/// A mistake in a ruleset found while compiling it against the dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileError {
    /// The rule's line in its ruleset.
    pub line: usize,
    /// The rule's column in its ruleset.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

/// How a rule is evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Failing rows quarantined.
    Rows,
    /// A share of rows against a threshold.
    Threshold,
    /// A measure of the dataset.
    Dataset,
}

/// A compiled top-level rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// As written.
    pub text: String,
    /// Its line in its ruleset.
    pub line: usize,
    /// Its severity.
    pub severity: Severity,
    /// How it is evaluated.
    pub class: Class,
    /// The reason a quarantined row carries.
    reason: String,
    node: Node,
}

#[derive(Debug, Clone)]
enum Node {
    Leaf(usize),
    And(Vec<Node>),
    Or(Vec<Node>),
}

#[derive(Debug, Clone)]
enum Leaf {
    Row(RowCheck),
    Measure(MeasureRule),
}

#[derive(Debug, Clone)]
struct RowCheck {
    test: RowTest,
    filter: Option<Expr>,
    /// The share of judged rows that must pass; `None` means every row.
    threshold: Option<Cond>,
}

#[derive(Debug, Clone)]
enum RowTest {
    Complete(usize),
    Values(usize, Cond),
    Length(usize, Cond),
    DataType(usize, Vec<GlueType>, bool),
    Fresh(usize, Cond),
    Selected(Option<Expr>),
}

#[derive(Debug, Clone)]
struct MeasureRule {
    measure: Measure,
    filter: Option<Expr>,
    condition: Option<Cond>,
}

#[derive(Debug, Clone)]
enum Measure {
    RowCount,
    ColumnCount,
    ColumnExists(String),
    ColumnNamesMatch(Regex),
    IsUnique(usize),
    IsPrimaryKey(Vec<usize>),
    Uniqueness(usize),
    UniqueValueRatio(usize),
    DistinctValuesCount(usize),
    Mean(usize),
    Sum(usize),
    StandardDeviation(usize),
    Entropy(usize),
    Sql(Aggregate),
    SchemaMatch(String),
}

/// A DQDL expression compiled against a column's type.
#[derive(Debug, Clone)]
enum Cond {
    Compare(Op, Scalar<'static>),
    /// Exclusive bounds, as DQDL defines `between`.
    Between(Scalar<'static>, Scalar<'static>, bool),
    /// The values, whether a missing value is among them, and `not in`.
    In(Vec<Scalar<'static>>, bool, bool),
    Matches(Regex, bool),
}

impl Cond {
    /// Whether a value satisfies the expression; `text` is the value as written, for `matches`.
    /// A missing value satisfies `= NULL`, `in [.., NULL]`, `!= x` and `not in [..]` without
    /// NULL, and nothing else.
    fn holds(&self, value: &Scalar<'_>, text: Option<&str>) -> bool {
        match self {
            Cond::Compare(op, expected) => match (value.is_null(), expected.is_null()) {
                (true, true) => *op == Op::Eq,
                (false, true) | (true, false) => *op == Op::Ne,
                (false, false) => value.compare(expected).is_some_and(|ordering| op.holds(ordering)),
            },
            Cond::Between(low, high, negated) => {
                if value.is_null() {
                    return false;
                }
                let inside =
                    value.compare(low) == Some(Ordering::Greater) && value.compare(high) == Some(Ordering::Less);
                inside != *negated
            }
            Cond::In(values, null_listed, negated) => {
                let found = if value.is_null() {
                    *null_listed
                } else {
                    values.iter().any(|expected| value.compare(expected) == Some(Ordering::Equal))
                };
                found != *negated
            }
            Cond::Matches(pattern, negated) => match text {
                Some(text) => pattern.is_match(text) != *negated,
                None => false,
            },
        }
    }

    fn measure_holds(&self, measure: f64) -> bool {
        self.holds(&Scalar::Float(measure), None)
    }
}

/// A type `ColumnDataType` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GlueType {
    String,
    Integer,
    Number,
    Boolean,
    Date,
    Timestamp,
}

impl GlueType {
    fn parse(name: &str) -> Option<GlueType> {
        Some(match name.to_ascii_uppercase().as_str() {
            "STRING" | "VARCHAR" | "CHAR" => GlueType::String,
            "INTEGER" | "INT" | "LONG" | "BIGINT" | "SHORT" | "SMALLINT" | "BYTE" | "TINYINT" => GlueType::Integer,
            "DOUBLE" | "FLOAT" | "DECIMAL" | "NUMERIC" => GlueType::Number,
            "BOOLEAN" => GlueType::Boolean,
            "DATE" => GlueType::Date,
            "TIMESTAMP" => GlueType::Timestamp,
            _ => return None,
        })
    }

    fn reads(self, text: &str, format: Option<&str>, zone: cast::Zone) -> bool {
        match self {
            GlueType::String => true,
            GlueType::Integer => cast::integer(text, None).is_ok(),
            GlueType::Number => cast::float(text, None).is_ok(),
            GlueType::Boolean => cast::boolean(text).is_ok(),
            GlueType::Date => cast::date(text, format).is_ok() || cast::date(text, None).is_ok(),
            GlueType::Timestamp => {
                cast::timestamp(text, format, zone).is_ok() || cast::timestamp(text, None, zone).is_ok()
            }
        }
    }
}

/// A dataset's rulesets, compiled for one run.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    /// The rules, `fail` ruleset first.
    pub rules: Vec<Rule>,
    leaves: Vec<Leaf>,
    /// The columns' text readings, for `ColumnDataType`.
    readings: Vec<(Option<String>, cast::Zone)>,
    /// The run's time, in microseconds: `now()` and `DataFreshness` measure from it.
    now: i64,
}

impl Rules {
    /// Compiles the dataset's `quality.dqdl` (fail) and `quality.dqdl_warn` (warn) rulesets;
    /// `now` is the run's time. A ruleset the contract's checks passed compiles.
    pub fn of(dataset: &Dataset, now: chrono::DateTime<chrono::Utc>) -> Result<Rules> {
        let mut rules = Rules::new(dataset, now);
        for (text, severity) in dataset.rulesets() {
            let parsed = dqdl::parse(text).map_err(|error| rules.invalid(dataset, &error.to_string()))?;
            if let Err(errors) = rules.add(&parsed, severity, dataset) {
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

    /// No rules yet, for a dataset's columns.
    pub fn new(dataset: &Dataset, now: chrono::DateTime<chrono::Utc>) -> Rules {
        Rules {
            rules: Vec::new(),
            leaves: Vec::new(),
            readings: dataset
                .columns
                .iter()
                .map(|column| (column.reading.format.clone(), column.reading.zone))
                .collect(),
            now: now.timestamp_micros(),
        }
    }

    /// Compiles a parsed ruleset's rules at a severity: every mistake, each at its rule.
    pub fn add(
        &mut self,
        ruleset: &dqdl::Ruleset,
        severity: Severity,
        dataset: &Dataset,
    ) -> std::result::Result<(), Vec<CompileError>> {
        let columns: Vec<(String, DataType)> =
            dataset.columns.iter().map(|column| (column.name.clone(), column.data_type)).collect();
        let mut errors = Vec::new();
        for rule in &ruleset.rules {
            let mut leaves = Vec::new();
            match self.node(rule, &columns, &mut leaves) {
                Ok(node) => {
                    let (line, text) = first(rule);
                    let all_rows =
                        leaves.iter().all(|leaf| matches!(leaf, Leaf::Row(check) if check.threshold.is_none()));
                    let class = match (&node, leaves.as_slice()) {
                        _ if all_rows => Class::Rows,
                        (Node::Leaf(_), [Leaf::Row(_)]) => Class::Threshold,
                        _ => Class::Dataset,
                    };
                    let offset = self.leaves.len();
                    self.leaves.extend(leaves);
                    self.rules.push(Rule {
                        text: text.clone(),
                        line,
                        severity,
                        class,
                        // `; ` separates a quarantined row's reasons.
                        reason: text.replace("; ", ";"),
                        node: shift(node, offset),
                    });
                }
                Err(error) => errors.push(error),
            }
        }
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }

    fn node(
        &self,
        rule: &dqdl::Rule,
        columns: &[(String, DataType)],
        leaves: &mut Vec<Leaf>,
    ) -> std::result::Result<Node, CompileError> {
        match rule {
            dqdl::Rule::Simple(simple) => {
                leaves.push(self.leaf(simple, columns)?);
                Ok(Node::Leaf(leaves.len() - 1))
            }
            dqdl::Rule::And(parts) => Ok(Node::And(
                parts.iter().map(|part| self.node(part, columns, leaves)).collect::<std::result::Result<_, _>>()?,
            )),
            dqdl::Rule::Or(parts) => Ok(Node::Or(
                parts.iter().map(|part| self.node(part, columns, leaves)).collect::<std::result::Result<_, _>>()?,
            )),
        }
    }

    fn leaf(&self, rule: &SimpleRule, columns: &[(String, DataType)]) -> std::result::Result<Leaf, CompileError> {
        let error = |message: String| CompileError { line: rule.line, column: rule.column, message };
        let scope = Scope { columns };
        let column = |index: usize| -> std::result::Result<usize, CompileError> {
            let name = rule.parameters.get(index).map(String::as_str).unwrap_or("");
            columns.iter().position(|(known, _)| known == name).ok_or_else(|| {
                let known: Vec<&str> = columns.iter().map(|(known, _)| known.as_str()).collect();
                error(format!(
                    "`{}` names the column `{name}`, which the dataset does not declare; its columns are: {}",
                    rule.text,
                    known.join(", ")
                ))
            })
        };
        let filter = match &rule.filter {
            Some(text) => Some(sql::condition(text, &scope).map_err(|problem| {
                error(format!("in the `where` of `{}`, at character {}: {}", rule.text, problem.at, problem.message))
            })?),
            None => None,
        };
        let condition = |data_type: Option<DataType>, what: Kind| -> std::result::Result<Option<Cond>, CompileError> {
            match &rule.condition {
                Some(condition) => self
                    .cond(condition, data_type, what)
                    .map(Some)
                    .map_err(|message| error(format!("`{}`: {message}", rule.text))),
                None => Ok(None),
            }
        };
        let required = |cond: Option<Cond>| cond.ok_or_else(|| error(format!("`{}` needs an expression", rule.text)));
        let threshold = match &rule.threshold {
            Some(threshold) => Some(
                self.cond(threshold, None, Kind::Ratio)
                    .map_err(|message| error(format!("the threshold of `{}`: {message}", rule.text)))?,
            ),
            None => None,
        };
        let row =
            |test: RowTest, threshold: Option<Cond>| Leaf::Row(RowCheck { test, filter: filter.clone(), threshold });
        let measure = |measure: Measure, condition: Option<Cond>| {
            Leaf::Measure(MeasureRule { measure, filter: filter.clone(), condition })
        };
        if threshold.is_some() && !rule.kind.row_level() {
            return Err(error(format!(
                "`{}`: `with threshold` belongs to row-level rules; {} measures the dataset",
                rule.text,
                rule.kind.name()
            )));
        }
        Ok(match rule.kind {
            RuleKind::IsComplete => row(RowTest::Complete(column(0)?), threshold),
            RuleKind::Completeness => {
                if threshold.is_some() {
                    return Err(error(format!(
                        "`{}`: Completeness's expression is its threshold; remove `with threshold`",
                        rule.text
                    )));
                }
                row(RowTest::Complete(column(0)?), Some(required(condition(None, Kind::Ratio)?)?))
            }
            RuleKind::ColumnValues => {
                let index = column(0)?;
                row(RowTest::Values(index, required(condition(Some(columns[index].1), Kind::Value)?)?), threshold)
            }
            RuleKind::ColumnLength => {
                row(RowTest::Length(column(0)?, required(condition(None, Kind::Count)?)?), threshold)
            }
            RuleKind::ColumnDataType => {
                let index = column(0)?;
                let (types, negated) =
                    self.types(rule).map_err(|message| error(format!("`{}`: {message}", rule.text)))?;
                row(RowTest::DataType(index, types, negated), threshold)
            }
            RuleKind::DataFreshness => {
                let index = column(0)?;
                if !columns[index].1.is_temporal() {
                    return Err(error(format!(
                        "`{}`: DataFreshness measures a date or timestamp column; `{}` is {}",
                        rule.text,
                        columns[index].0,
                        crate::types::type_name(columns[index].1)
                    )));
                }
                row(RowTest::Fresh(index, required(condition(None, Kind::Duration)?)?), threshold)
            }
            RuleKind::CustomSql => {
                let text = rule.parameters.first().map(String::as_str).unwrap_or("");
                let query = sql::query(text, &scope).map_err(|problem| {
                    error(format!("the SQL of `{}`, at character {}: {}", rule.text, problem.at, problem.message))
                })?;
                match (query, &rule.condition) {
                    (Query::Rows(selected), None) => row(RowTest::Selected(selected), threshold),
                    (Query::Aggregate(aggregate, where_clause), Some(_)) => {
                        let filter = match (where_clause, filter.clone()) {
                            (Some(inner), Some(outer)) => Some(Expr::And(Box::new(inner), Box::new(outer))),
                            (inner, outer) => inner.or(outer),
                        };
                        Leaf::Measure(MeasureRule {
                            measure: Measure::Sql(aggregate),
                            filter,
                            condition: condition(None, Kind::Number)?,
                        })
                    }
                    (Query::Rows(_), Some(_)) => {
                        return Err(error(format!(
                            "`{}`: a query that returns rows is row-level (the rows it returns pass) and takes no expression; to compare a value, select one aggregate such as count(*)",
                            rule.text
                        )));
                    }
                    (Query::Aggregate(..), None) => {
                        return Err(error(format!(
                            "`{}`: a query that returns one value needs an expression, e.g. `between 10 and 20`",
                            rule.text
                        )));
                    }
                }
            }
            RuleKind::RowCount => measure(Measure::RowCount, condition(None, Kind::Number)?),
            RuleKind::ColumnCount => measure(Measure::ColumnCount, condition(None, Kind::Number)?),
            RuleKind::ColumnExists => {
                measure(Measure::ColumnExists(rule.parameters.first().cloned().unwrap_or_default()), None)
            }
            RuleKind::ColumnNamesMatchPattern => {
                let pattern = rule.parameters.first().map(String::as_str).unwrap_or("");
                let regex = Regex::new(&format!("^(?:{pattern})$"))
                    .map_err(|problem| error(format!("`{}`: not a regular expression ({problem})", rule.text)))?;
                measure(Measure::ColumnNamesMatch(regex), None)
            }
            RuleKind::IsUnique => measure(Measure::IsUnique(column(0)?), None),
            RuleKind::IsPrimaryKey => {
                let parts = (0..rule.parameters.len()).map(column).collect::<std::result::Result<_, _>>()?;
                measure(Measure::IsPrimaryKey(parts), None)
            }
            RuleKind::Uniqueness => measure(Measure::Uniqueness(column(0)?), condition(None, Kind::Ratio)?),
            RuleKind::UniqueValueRatio => measure(Measure::UniqueValueRatio(column(0)?), condition(None, Kind::Ratio)?),
            RuleKind::DistinctValuesCount => {
                measure(Measure::DistinctValuesCount(column(0)?), condition(None, Kind::Number)?)
            }
            RuleKind::Mean | RuleKind::Sum | RuleKind::StandardDeviation => {
                let index = column(0)?;
                if !columns[index].1.is_numeric() {
                    return Err(error(format!(
                        "`{}`: {} measures a numeric column; `{}` is {}",
                        rule.text,
                        rule.kind.name(),
                        columns[index].0,
                        crate::types::type_name(columns[index].1)
                    )));
                }
                let kind = match rule.kind {
                    RuleKind::Mean => Measure::Mean(index),
                    RuleKind::Sum => Measure::Sum(index),
                    _ => Measure::StandardDeviation(index),
                };
                measure(kind, condition(None, Kind::Number)?)
            }
            RuleKind::Entropy => measure(Measure::Entropy(column(0)?), condition(None, Kind::Number)?),
            RuleKind::SchemaMatch => measure(
                Measure::SchemaMatch(rule.parameters.first().cloned().unwrap_or_default()),
                condition(None, Kind::Ratio)?,
            ),
            RuleKind::ReferentialIntegrity | RuleKind::RowCountMatch => {
                return Err(error(format!(
                    "`{}`: Lakestar does not evaluate {} yet (it compares with another dataset's or run's data); a rule it took would not hold, so remove it",
                    rule.text,
                    rule.kind.name()
                )));
            }
        })
    }

    /// A DQDL expression typed for what it compares: a column's values, a count, a ratio,
    /// a number or a duration.
    fn cond(
        &self,
        condition: &Condition,
        data_type: Option<DataType>,
        what: Kind,
    ) -> std::result::Result<Cond, String> {
        let value = |value: &Value| self.value(value, data_type, what);
        Ok(match condition {
            Condition::Compare(operator, expected) => Cond::Compare(op(*operator), value(expected)?),
            Condition::Between { low, high, negated } => Cond::Between(value(low)?, value(high)?, *negated),
            Condition::In { values, negated } => {
                let mut typed = Vec::new();
                let mut null_listed = false;
                for item in values {
                    match value(item)? {
                        Scalar::Null => null_listed = true,
                        other => typed.push(other),
                    }
                }
                Cond::In(typed, null_listed, *negated)
            }
            Condition::Matches { pattern, negated } => {
                if what != Kind::Value {
                    return Err("`matches` compares a column's values; this rule measures a number".to_string());
                }
                let regex = Regex::new(&format!("^(?:{pattern})$"))
                    .map_err(|problem| format!("`{pattern}` is not a regular expression ({problem})"))?;
                Cond::Matches(regex, *negated)
            }
        })
    }

    fn value(
        &self,
        value: &Value,
        data_type: Option<DataType>,
        what: Kind,
    ) -> std::result::Result<Scalar<'static>, String> {
        match (value, what) {
            (Value::Duration { amount, unit }, Kind::Duration) => dqdl::seconds_of(amount, unit)
                .map(Scalar::Integer)
                .ok_or_else(|| format!("`{amount} {unit}` is not a whole number of {unit}")),
            (_, Kind::Duration) => {
                Err("DataFreshness compares an age with durations such as `24 hours` or `3 days`".to_string())
            }
            (Value::Number(text), Kind::Value) => match data_type {
                Some(data_type) if data_type.is_numeric() => {
                    value::number(text).ok_or_else(|| format!("`{text}` is not a number"))
                }
                Some(data_type) => value::literal_for(text, data_type)
                    .ok_or_else(|| format!("`{text}` is not a {} value", crate::types::type_name(data_type))),
                None => value::number(text).ok_or_else(|| format!("`{text}` is not a number")),
            },
            (Value::Number(text), _) => value::number(text).ok_or_else(|| format!("`{text}` is not a number")),
            (Value::Text(text), Kind::Value) => {
                let data_type = data_type.unwrap_or(DataType::String);
                value::literal_for(text, data_type).ok_or_else(|| {
                    format!(
                        "\"{text}\" is not a {} value (dates are written \"2024-01-31\", timestamps \"2024-01-31T12:00:00Z\")",
                        crate::types::type_name(data_type)
                    )
                })
            }
            (Value::Null | Value::Empty | Value::WhitespacesOnly, Kind::Value) => Ok(Scalar::Null),
            (Value::Now { offset_seconds }, Kind::Value) => match data_type {
                Some(DataType::Date | DataType::Timestamp) => {
                    Ok(Scalar::Timestamp(self.now + offset_seconds.saturating_mul(1_000_000)))
                }
                _ => Err("now() compares with a date or timestamp column".to_string()),
            },
            (Value::Duration { .. }, _) => Err("a duration belongs to DataFreshness".to_string()),
            (_, Kind::Ratio) => Err("a number between 0 and 1 (a share of rows)".to_string()),
            (_, _) => Err("a number".to_string()),
        }
    }

    fn types(&self, rule: &SimpleRule) -> std::result::Result<(Vec<GlueType>, bool), String> {
        let name = |value: &Value| -> std::result::Result<GlueType, String> {
            match value {
                Value::Text(text) => GlueType::parse(text).ok_or_else(|| {
                    format!("\"{text}\" is not a type ColumnDataType names: STRING, INTEGER, LONG, DOUBLE, FLOAT, DECIMAL, BOOLEAN, DATE, TIMESTAMP")
                }),
                _ => Err("a \"quoted\" type name such as \"INTEGER\"".to_string()),
            }
        };
        match &rule.condition {
            Some(Condition::Compare(Operator::Eq, value)) => Ok((vec![name(value)?], false)),
            Some(Condition::Compare(Operator::Ne, value)) => Ok((vec![name(value)?], true)),
            Some(Condition::In { values, negated }) => {
                Ok((values.iter().map(name).collect::<std::result::Result<_, _>>()?, *negated))
            }
            _ => Err("ColumnDataType takes `= \"TYPE\"`, `!= \"TYPE\"` or `in [\"TYPE\", …]`".to_string()),
        }
    }

    /// Whether any rule needs validate's first pass (a threshold's share).
    pub fn counts_first(&self) -> bool {
        self.counted_leaves().next().is_some()
    }

    /// The columns the first pass must read for the thresholds' shares.
    pub fn first_pass_columns(&self) -> Vec<usize> {
        let mut columns = Vec::new();
        for index in self.counted_leaves() {
            if let Leaf::Row(check) = &self.leaves[index] {
                check.columns(&mut columns);
            }
        }
        columns.sort_unstable();
        columns.dedup();
        columns
    }

    /// Row leaves measured as shares: those of threshold and dataset rules.
    fn counted_leaves(&self) -> impl Iterator<Item = usize> + '_ {
        self.rules.iter().filter(|rule| rule.class != Class::Rows).flat_map(|rule| {
            let mut found = Vec::new();
            rule.node.leaves(&mut found);
            found.into_iter().filter(|index| matches!(self.leaves[*index], Leaf::Row(_)))
        })
    }
}

/// What a DQDL value stands for in a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Value,
    Count,
    Ratio,
    Number,
    Duration,
}

fn op(operator: Operator) -> Op {
    match operator {
        Operator::Eq => Op::Eq,
        Operator::Ne => Op::Ne,
        Operator::Gt => Op::Gt,
        Operator::Ge => Op::Ge,
        Operator::Lt => Op::Lt,
        Operator::Le => Op::Le,
    }
}

/// A composite's first rule's line, and the composite's text.
fn first(rule: &dqdl::Rule) -> (usize, String) {
    match rule {
        dqdl::Rule::Simple(simple) => (simple.line, simple.text.clone()),
        dqdl::Rule::And(parts) | dqdl::Rule::Or(parts) => {
            let joiner = if matches!(rule, dqdl::Rule::And(_)) { " and " } else { " or " };
            let line = parts.first().map_or(1, |part| first(part).0);
            let text = parts.iter().map(|part| format!("({})", first(part).1)).collect::<Vec<_>>().join(joiner);
            (line, text)
        }
    }
}

fn shift(node: Node, offset: usize) -> Node {
    match node {
        Node::Leaf(index) => Node::Leaf(index + offset),
        Node::And(parts) => Node::And(parts.into_iter().map(|part| shift(part, offset)).collect()),
        Node::Or(parts) => Node::Or(parts.into_iter().map(|part| shift(part, offset)).collect()),
    }
}

impl Node {
    fn leaves(&self, out: &mut Vec<usize>) {
        match self {
            Node::Leaf(index) => out.push(*index),
            Node::And(parts) | Node::Or(parts) => parts.iter().for_each(|part| part.leaves(out)),
        }
    }

    /// The composite's truth given each leaf's.
    fn holds(&self, leaf: &mut impl FnMut(usize) -> bool) -> bool {
        match self {
            Node::Leaf(index) => leaf(*index),
            Node::And(parts) => parts.iter().all(|part| part.holds(leaf)),
            Node::Or(parts) => parts.iter().any(|part| part.holds(leaf)),
        }
    }
}

impl RowCheck {
    fn columns(&self, out: &mut Vec<usize>) {
        match &self.test {
            RowTest::Complete(column)
            | RowTest::Values(column, _)
            | RowTest::Length(column, _)
            | RowTest::DataType(column, _, _)
            | RowTest::Fresh(column, _) => out.push(*column),
            RowTest::Selected(Some(expr)) => expr.columns(out),
            RowTest::Selected(None) => {}
        }
        if let Some(filter) = &self.filter {
            filter.columns(out);
        }
    }

    /// Whether the row passes; `None` when the `where` leaves it out.
    fn judge(&self, rules: &Rules, row: &Row<'_>, index: usize) -> Option<bool> {
        if let Some(filter) = &self.filter
            && !filter.holds(row, index)
        {
            return None;
        }
        // A value the column's type could not read is missing from the typed row, and its
        // row is quarantined by its type check already: a rule does not judge it again.
        let unreadable = |column: usize| row.value(column, index).is_null() && row.text(column, index).is_some();
        match &self.test {
            RowTest::Values(column, _) | RowTest::Length(column, _) | RowTest::Fresh(column, _)
                if unreadable(*column) =>
            {
                return None;
            }
            _ => {}
        }
        Some(match &self.test {
            RowTest::Complete(column) => !row.value(*column, index).is_null() || row.text(*column, index).is_some(),
            RowTest::Values(column, cond) => {
                let value = row.value(*column, index);
                let text = match &value {
                    Scalar::Text(text) => Some(text.as_ref()),
                    _ => row.text(*column, index),
                };
                cond.holds(&value, text)
            }
            RowTest::Length(column, cond) => {
                let value = row.value(*column, index);
                let length = match &value {
                    Scalar::Text(text) => Some(text.chars().count()),
                    Scalar::Null => None,
                    _ => row.text(*column, index).map(|text| text.chars().count()),
                };
                match length {
                    Some(length) => cond.holds(&Scalar::Integer(length as i64), None),
                    None => cond.holds(&Scalar::Null, None),
                }
            }
            RowTest::DataType(column, types, negated) => match row.text(*column, index) {
                // A missing value has no type: IsComplete judges it.
                None => true,
                Some(text) => {
                    let (format, zone) = &rules.readings[*column];
                    types.iter().any(|kind| kind.reads(text, format.as_deref(), *zone)) != *negated
                }
            },
            RowTest::Fresh(column, cond) => {
                let micros = match row.value(*column, index) {
                    Scalar::Timestamp(micros) => Some(micros),
                    Scalar::Date(days) => Some(i64::from(days) * 86_400_000_000),
                    _ => None,
                };
                match micros {
                    Some(micros) => cond.holds(&Scalar::Float((rules.now - micros) as f64 / 1e6), None),
                    None => false,
                }
            }
            RowTest::Selected(filter) => filter.as_ref().is_none_or(|filter| filter.holds(row, index)),
        })
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
}

/// A rule set's evaluation on one run.
pub struct Evaluator {
    rules: Rules,
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
                    Measure::RowCount => Accumulator::Count(0),
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
                    Measure::ColumnCount
                    | Measure::ColumnExists(_)
                    | Measure::ColumnNamesMatch(_)
                    | Measure::SchemaMatch(_) => Accumulator::None,
                },
            })
            .collect();
        let count = rules.rules.len();
        Evaluator {
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

    /// First pass: counts the rows that pass each threshold's and composite's row rule.
    pub fn count(&mut self, row: &Row<'_>, rows: usize) {
        let counted: Vec<usize> = self.rules.counted_leaves().collect();
        for index in counted {
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
        for (leaf, accumulator) in self.rules.leaves.iter().zip(&mut self.accumulators) {
            let Leaf::Measure(rule) = leaf else { continue };
            for position in (0..keep.len()).filter(|position| keep.value(*position)) {
                if let Some(filter) = &rule.filter
                    && !filter.holds(row, position)
                {
                    continue;
                }
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
                    Accumulator::Frequencies { finder, present, missing } => {
                        parts.clear();
                        let columns: &[usize] = match &rule.measure {
                            Measure::IsPrimaryKey(columns) => columns,
                            _ => std::slice::from_ref(column.as_ref().unwrap_or(&0)),
                        };
                        let mut complete = true;
                        for column in columns {
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
