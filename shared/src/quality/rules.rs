//! DQDL rulesets compiled against a dataset's columns: each rule's class, its row checks and
//! dataset measures, its expressions typed for the column they compare. No data here; the
//! contract's checks compile with it, and [`super::Evaluator`] runs what it compiles.

use std::cmp::Ordering;

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::sql::{self, Aggregate, Expr, Op, Query, Scope};
use super::value::{self, Row, Scalar};
use crate::contract::dqdl::{self, Condition, Operator, RuleKind, SimpleRule, Value};
use crate::types::{DataType, cast};

/// What a failing rule does to the run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Quarantines its rows, or fails the gate (`quality.dqdl`).
    #[default]
    Fail,
    /// Reported and alerted, never rejecting a row or failing the run (`quality.dqdl_warn`).
    Warn,
}

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
    pub(super) reason: String,
    pub(super) node: Node,
}

#[derive(Debug, Clone)]
pub(super) enum Node {
    Leaf(usize),
    And(Vec<Node>),
    Or(Vec<Node>),
}

#[derive(Debug, Clone)]
pub(super) enum Leaf {
    Row(RowCheck),
    Measure(MeasureRule),
}

#[derive(Debug, Clone)]
pub(super) struct RowCheck {
    test: RowTest,
    filter: Option<Expr>,
    /// The share of judged rows that must pass; `None` means every row.
    pub(super) threshold: Option<Cond>,
}

#[derive(Debug, Clone)]
pub(super) enum RowTest {
    Complete(usize),
    Values(usize, Cond),
    Length(usize, Cond),
    DataType(usize, Vec<GlueType>, bool),
    Fresh(usize, Cond),
    Selected(Option<Expr>),
}

#[derive(Debug, Clone)]
pub(super) struct MeasureRule {
    pub(super) measure: Measure,
    pub(super) filter: Option<Expr>,
    pub(super) condition: Option<Cond>,
}

#[derive(Debug, Clone)]
pub(super) enum Measure {
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
    RowCountMatch,
    /// The run's key columns, and the other dataset's columns that must hold each key.
    ReferentialIntegrity(Vec<usize>, Reference),
}

/// Another dataset's columns a `ReferentialIntegrity` rule looks keys up in: written
/// `"dataset.column"` or `"dataset.{a,b}"`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    /// The other dataset of the contract.
    pub dataset: String,
    /// Its columns, in the order of the run's key columns.
    pub columns: Vec<String>,
}

impl Reference {
    /// Reads `dataset.column` or `dataset.{a,b}`.
    pub fn parse(text: &str) -> std::result::Result<Reference, String> {
        let expected =
            || format!("`{text}` is not a reference: write \"dataset.column\" or \"dataset.{{column_a,column_b}}\"");
        let (dataset, rest) = text.split_once('.').ok_or_else(expected)?;
        let rest = rest.trim();
        let columns: Vec<String> = match rest.strip_prefix('{').and_then(|inner| inner.strip_suffix('}')) {
            Some(inner) => inner.split(',').map(|name| name.trim().to_string()).collect(),
            None => vec![rest.to_string()],
        };
        if dataset.trim().is_empty() || columns.iter().any(String::is_empty) {
            return Err(expected());
        }
        Ok(Reference { dataset: dataset.trim().to_string(), columns })
    }

    /// The rule's key columns in the run, written `"a"` or `"a,b"`.
    pub fn key_columns(text: &str) -> Vec<String> {
        text.split(',').map(|name| name.trim().to_string()).collect()
    }
}

/// A DQDL expression compiled against a column's type.
#[derive(Debug, Clone)]
pub(super) enum Cond {
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

    pub(super) fn measure_holds(&self, measure: f64) -> bool {
        self.holds(&Scalar::Float(measure), None)
    }
}

/// A type `ColumnDataType` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum GlueType {
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
    pub(super) leaves: Vec<Leaf>,
    /// The dataset's columns.
    columns: Vec<RuleColumn>,
    /// The run's time, in microseconds: `now()` and `DataFreshness` measure from it.
    now: i64,
}

/// A column as the rules read it.
#[derive(Debug, Clone)]
pub struct RuleColumn {
    /// Its contract name.
    pub name: String,
    /// Its type.
    pub data_type: DataType,
    /// Its date or timestamp format, for `ColumnDataType`.
    pub format: Option<String>,
    /// The zone of its timestamps written without one.
    pub zone: cast::Zone,
}

impl Rules {
    /// No rules yet, for a dataset's columns (`Dataset::rule_columns`).
    pub fn new(columns: Vec<RuleColumn>, now: chrono::DateTime<chrono::Utc>) -> Rules {
        Rules { rules: Vec::new(), leaves: Vec::new(), columns, now: now.timestamp_micros() }
    }

    /// Compiles a parsed ruleset's rules at a severity: every mistake, each at its rule.
    pub fn add(&mut self, ruleset: &dqdl::Ruleset, severity: Severity) -> std::result::Result<(), Vec<CompileError>> {
        let columns: Vec<(String, DataType)> =
            self.columns.iter().map(|column| (column.name.clone(), column.data_type)).collect();
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
            RuleKind::RowCountMatch => {
                if rule.parameters.first().map(String::as_str) != Some("previous") {
                    return Err(error(format!(
                        "`{}`: Lakestar's RowCountMatch compares the run with the dataset's previous run: write `RowCountMatch \"previous\" >= 0.9`",
                        rule.text
                    )));
                }
                measure(Measure::RowCountMatch, condition(None, Kind::Number)?)
            }
            RuleKind::ReferentialIntegrity => {
                let names = Reference::key_columns(rule.parameters.first().map(String::as_str).unwrap_or(""));
                let mut keys = Vec::with_capacity(names.len());
                for name in &names {
                    keys.push(columns.iter().position(|(known, _)| known == name).ok_or_else(|| {
                        let known: Vec<&str> = columns.iter().map(|(known, _)| known.as_str()).collect();
                        error(format!(
                            "`{}` names the column `{name}`, which the dataset does not declare; its columns are: {}",
                            rule.text,
                            known.join(", ")
                        ))
                    })?);
                }
                let reference = Reference::parse(rule.parameters.get(1).map(String::as_str).unwrap_or(""))
                    .map_err(|message| error(format!("`{}`: {message}", rule.text)))?;
                if reference.columns.len() != keys.len() {
                    return Err(error(format!(
                        "`{}`: {} key column(s) against {} reference column(s); name as many in `{}` as in `{}`",
                        rule.text,
                        keys.len(),
                        reference.columns.len(),
                        rule.parameters.get(1).map(String::as_str).unwrap_or(""),
                        rule.parameters.first().map(String::as_str).unwrap_or("")
                    )));
                }
                measure(Measure::ReferentialIntegrity(keys, reference), condition(None, Kind::Ratio)?)
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
            Condition::Compare(operator, expected) => Cond::Compare(*operator, value(expected)?),
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

    /// Whether a rule compares with the dataset's previous run.
    pub fn reads_previous_run(&self) -> bool {
        self.leaves
            .iter()
            .any(|leaf| matches!(leaf, Leaf::Measure(rule) if matches!(rule.measure, Measure::RowCountMatch)))
    }

    /// The other datasets' columns the rules look keys up in (`ReferentialIntegrity`), once each.
    pub fn references(&self) -> Vec<Reference> {
        let mut references: Vec<Reference> = self
            .leaves
            .iter()
            .filter_map(|leaf| match leaf {
                Leaf::Measure(MeasureRule { measure: Measure::ReferentialIntegrity(_, reference), .. }) => {
                    Some(reference.clone())
                }
                _ => None,
            })
            .collect();
        references.sort();
        references.dedup();
        references
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
    pub(super) fn counted_leaves(&self) -> impl Iterator<Item = usize> + '_ {
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
    pub(super) fn leaves(&self, out: &mut Vec<usize>) {
        match self {
            Node::Leaf(index) => out.push(*index),
            Node::And(parts) | Node::Or(parts) => parts.iter().for_each(|part| part.leaves(out)),
        }
    }

    /// The composite's truth given each leaf's.
    pub(super) fn holds(&self, leaf: &mut impl FnMut(usize) -> bool) -> bool {
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
    pub(super) fn judge(&self, rules: &Rules, row: &Row<'_>, index: usize) -> Option<bool> {
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
                    let (format, zone) = (&rules.columns[*column].format, &rules.columns[*column].zone);
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
