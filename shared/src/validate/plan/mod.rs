//! A contract's dataset compiled into column plans: for each column, how its raw text is
//! standardised, typed and checked, and the cross-column rules. Synchronous, no I/O: text
//! batches in, typed batches and reject reasons out.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, BooleanBuilder, Date32Builder, Decimal128Builder, Float64Builder, Int64Builder,
    StringArray, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::compute::kernels::cmp;
use arrow::datatypes::SchemaRef;
use regex::Regex;

use crate::contract::{CaseRule, Column, CompareOp, DataType, Dataset, DriftMode, Operand};
use crate::types::{Bound, Reading, Typed, cast, type_name};
use crate::{Error, Result};

/// Why rows were rejected, row by row, within one batch.
#[derive(Debug, Default)]
pub struct Reasons {
    rows: Vec<String>,
}

impl Reasons {
    /// No reasons yet for `rows` rows.
    pub fn new(rows: usize) -> Reasons {
        Reasons { rows: vec![String::new(); rows] }
    }

    /// Adds a reason to a row.
    pub fn push(&mut self, row: usize, reason: &str) {
        let text = &mut self.rows[row];
        if !text.is_empty() {
            text.push_str("; ");
        }
        text.push_str(reason);
    }

    /// Whether a row has no reason.
    pub fn is_valid(&self, row: usize) -> bool {
        self.rows[row].is_empty()
    }

    /// The reasons of a row, `; `-separated.
    pub fn get(&self, row: usize) -> &str {
        &self.rows[row]
    }

    /// How many rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// One column's compiled plan.
#[derive(Debug, Clone)]
pub struct ColumnPlan {
    /// The column's name.
    pub name: String,
    reading: Reading,
    required: bool,
    case: Option<CaseRule>,
    email: bool,
    regex: Option<Regex>,
    min: Option<(Bound, String)>,
    max: Option<(Bound, String)>,
    min_length: Option<usize>,
    max_length: Option<usize>,
    /// The allowed values, sorted: a few, searched without hashing the value.
    allowed: Option<Vec<String>>,
    /// A value the type cannot read becomes null without a reason (`schema_contract.data_type`
    /// `discard_value` or `evolve`, for a column that is not required).
    keep_unreadable: bool,
    /// Reason texts, built once.
    reasons: ReasonTexts,
}

#[derive(Debug, Clone)]
struct ReasonTexts {
    required: String,
    type_error: String,
    email: String,
    nul: String,
    regex: String,
    min: String,
    max: String,
    min_length: String,
    max_length: String,
    allowed: String,
}

impl ColumnPlan {
    /// The plan of a column the contract has checked: its reading, bounds and checks as
    /// compiled there, the reason texts built once.
    fn new(column: &Column, data_type_mode: DriftMode) -> ColumnPlan {
        let config = &column.config;
        let name = column.name.clone();
        let bound_reason = |which: &str, bound: &Option<(Bound, String)>| {
            bound.as_ref().map_or_else(String::new, |(_, text)| format!("{name}:{which}({text})"))
        };
        ColumnPlan {
            name: name.clone(),
            reading: column.reading.clone(),
            required: config.required,
            case: config.case,
            email: config.checks.email,
            regex: column.regex.clone(),
            min: column.min.clone(),
            max: column.max.clone(),
            min_length: config.checks.min_length,
            max_length: config.checks.max_length,
            allowed: (!config.checks.allowed.is_empty()).then(|| {
                let mut allowed = config.checks.allowed.clone();
                allowed.sort();
                allowed
            }),
            keep_unreadable: !config.required && matches!(data_type_mode, DriftMode::DiscardValue | DriftMode::Evolve),
            reasons: ReasonTexts {
                required: format!("{name}:required"),
                // A date or timestamp in a format of the contract's says which: the reader of
                // the quarantine sees what was expected.
                type_error: match &config.format {
                    Some(format) => format!("{name}:type({} {format})", type_name(column.data_type)),
                    None => format!("{name}:type({})", type_name(column.data_type)),
                },
                email: format!("{name}:format"),
                nul: format!("{name}:nul_byte"),
                regex: format!("{name}:regex"),
                min: bound_reason("min", &column.min),
                max: bound_reason("max", &column.max),
                min_length: format!("{name}:min_length({})", config.checks.min_length.unwrap_or(0)),
                max_length: format!("{name}:max_length({})", config.checks.max_length.unwrap_or(0)),
                allowed: format!("{name}:allowed"),
            },
        }
    }

    /// Trims, turns empty into null, and applies the case rule.
    pub fn standardise<'a>(&self, text: &'a str) -> Option<std::borrow::Cow<'a, str>> {
        let text = cast::trim(text);
        if text.is_empty() {
            return None;
        }
        Some(match self.case {
            None => std::borrow::Cow::Borrowed(text),
            // Most values are already in the right case: no copy for them.
            Some(CaseRule::Upper) if text.is_ascii() && !text.bytes().any(|byte| byte.is_ascii_lowercase()) => {
                std::borrow::Cow::Borrowed(text)
            }
            Some(CaseRule::Lower) if text.is_ascii() && !text.bytes().any(|byte| byte.is_ascii_uppercase()) => {
                std::borrow::Cow::Borrowed(text)
            }
            Some(CaseRule::Upper) => std::borrow::Cow::Owned(text.to_uppercase()),
            Some(CaseRule::Lower) => std::borrow::Cow::Owned(text.to_lowercase()),
            Some(CaseRule::Title) => std::borrow::Cow::Owned(title_case(text)),
        })
    }

    /// Types and checks one column of a batch. `input` is the raw text column (absent when
    /// the file lacks it). Reasons go to `reasons`; the typed array has nulls where a value
    /// was missing or unreadable. Returns the array, the number of nulls after
    /// standardisation, and the number of unreadable values made null without a reason.
    pub fn apply(&self, input: Option<&StringArray>, rows: usize, reasons: &mut Reasons) -> (ArrayRef, u64, u64) {
        let mut builder = TypedBuilder::new(self.reading.data_type, rows);
        let (mut nulls, mut kept_unreadable) = (0u64, 0u64);
        for row in 0..rows {
            let text = input.filter(|array| array.is_valid(row)).and_then(|array| self.standardise(array.value(row)));
            let Some(text) = text else {
                nulls += 1;
                if self.required {
                    reasons.push(row, &self.reasons.required);
                }
                builder.append_null();
                continue;
            };
            self.check_text(&text, row, reasons);
            if self.reading.data_type == DataType::String {
                builder.append_str(&text);
                continue;
            }
            match self.reading.parse(&text) {
                Ok(value) => {
                    if let Some((bound, _)) = self.min
                        && value.below(bound)
                    {
                        reasons.push(row, &self.reasons.min);
                    }
                    if let Some((bound, _)) = self.max
                        && value.above(bound)
                    {
                        reasons.push(row, &self.reasons.max);
                    }
                    builder.append(value);
                }
                Err(_) if self.keep_unreadable => {
                    kept_unreadable += 1;
                    builder.append_null();
                }
                Err(_) => {
                    reasons.push(row, &self.reasons.type_error);
                    builder.append_null();
                }
            }
        }
        (builder.finish(), nulls, kept_unreadable)
    }

    /// Whether the column's type reads a raw value (a missing value reads: it is `required`'s
    /// business).
    pub fn reads(&self, text: &str) -> bool {
        match self.standardise(text) {
            None => true,
            Some(_) if self.reading.data_type == DataType::String => true,
            Some(text) => self.reading.parse(&text).is_ok(),
        }
    }

    /// Makes a value the type cannot read quarantine its row again (an `evolve` whose variant
    /// column cannot be added).
    pub fn reject_unreadable(&mut self) {
        self.keep_unreadable = false;
    }

    /// Whether a value the type cannot read quarantines its row.
    pub fn rejects_unreadable(&self) -> bool {
        !self.keep_unreadable
    }

    /// Whether the column's type is text (its values always read).
    pub fn is_text(&self) -> bool {
        self.reading.data_type == DataType::String
    }

    fn check_text(&self, text: &str, row: usize, reasons: &mut Reasons) {
        // A NUL byte is legal in a CSV field but no warehouse text column takes it.
        if text.contains('\0') {
            reasons.push(row, &self.reasons.nul);
        }
        if self.email && !cast::is_email(text) {
            reasons.push(row, &self.reasons.email);
        }
        if let Some(regex) = &self.regex
            && !regex.is_match(text)
        {
            reasons.push(row, &self.reasons.regex);
        }
        if self.min_length.is_some() || self.max_length.is_some() {
            let length = text.chars().count();
            if self.min_length.is_some_and(|min| length < min) {
                reasons.push(row, &self.reasons.min_length);
            }
            if self.max_length.is_some_and(|max| length > max) {
                reasons.push(row, &self.reasons.max_length);
            }
        }
        if let Some(allowed) = &self.allowed
            && allowed.binary_search_by(|value| value.as_str().cmp(text)).is_err()
        {
            reasons.push(row, &self.reasons.allowed);
        }
    }
}

fn title_case(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut start = true;
    for c in text.chars() {
        if start {
            out.extend(c.to_uppercase());
        } else {
            out.extend(c.to_lowercase());
        }
        start = c.is_whitespace() || c == '-' || c == '\'';
    }
    out
}

/// A builder of any of the contract types' arrays.
enum TypedBuilder {
    String(StringBuilder),
    Integer(Int64Builder),
    Decimal(Decimal128Builder),
    Float(Float64Builder),
    Boolean(BooleanBuilder),
    Date(Date32Builder),
    Timestamp(TimestampMicrosecondBuilder),
}

impl TypedBuilder {
    fn new(data_type: DataType, rows: usize) -> TypedBuilder {
        match data_type {
            DataType::String => TypedBuilder::String(StringBuilder::with_capacity(rows, rows * 16)),
            DataType::Integer => TypedBuilder::Integer(Int64Builder::with_capacity(rows)),
            DataType::Decimal { precision, scale } => TypedBuilder::Decimal(
                Decimal128Builder::with_capacity(rows)
                    .with_precision_and_scale(precision, scale as i8)
                    .unwrap_or_else(|_| Decimal128Builder::with_capacity(rows)),
            ),
            DataType::Float => TypedBuilder::Float(Float64Builder::with_capacity(rows)),
            DataType::Boolean => TypedBuilder::Boolean(BooleanBuilder::with_capacity(rows)),
            DataType::Date => TypedBuilder::Date(Date32Builder::with_capacity(rows)),
            DataType::Timestamp => {
                TypedBuilder::Timestamp(TimestampMicrosecondBuilder::with_capacity(rows).with_timezone("UTC"))
            }
        }
    }

    fn append_null(&mut self) {
        match self {
            TypedBuilder::String(builder) => builder.append_null(),
            TypedBuilder::Integer(builder) => builder.append_null(),
            TypedBuilder::Decimal(builder) => builder.append_null(),
            TypedBuilder::Float(builder) => builder.append_null(),
            TypedBuilder::Boolean(builder) => builder.append_null(),
            TypedBuilder::Date(builder) => builder.append_null(),
            TypedBuilder::Timestamp(builder) => builder.append_null(),
        }
    }

    fn append_str(&mut self, text: &str) {
        if let TypedBuilder::String(builder) = self {
            builder.append_value(text);
        }
    }

    fn append(&mut self, value: Typed) {
        match (self, value) {
            (TypedBuilder::Integer(builder), Typed::Integer(value)) => builder.append_value(value),
            (TypedBuilder::Decimal(builder), Typed::Decimal(value)) => builder.append_value(value),
            (TypedBuilder::Float(builder), Typed::Float(value)) => builder.append_value(value),
            (TypedBuilder::Boolean(builder), Typed::Boolean(value)) => builder.append_value(value),
            (TypedBuilder::Date(builder), Typed::Days(value)) => builder.append_value(value),
            (TypedBuilder::Timestamp(builder), Typed::Micros(value)) => builder.append_value(value),
            (builder, _) => builder.append_null(),
        }
    }

    fn finish(self) -> ArrayRef {
        match self {
            TypedBuilder::String(mut builder) => Arc::new(builder.finish()),
            TypedBuilder::Integer(mut builder) => Arc::new(builder.finish()),
            TypedBuilder::Decimal(mut builder) => Arc::new(builder.finish()),
            TypedBuilder::Float(mut builder) => Arc::new(builder.finish()),
            TypedBuilder::Boolean(mut builder) => Arc::new(builder.finish()),
            TypedBuilder::Date(mut builder) => Arc::new(builder.finish()),
            TypedBuilder::Timestamp(mut builder) => Arc::new(builder.finish()),
        }
    }
}

/// A compiled cross-column rule.
#[derive(Debug, Clone)]
struct RulePlan {
    name: String,
    left: usize,
    op: CompareOp,
    right: RightSide,
}

#[derive(Debug, Clone)]
enum RightSide {
    Column(usize),
    Literal(ArrayRef),
}

/// A dataset's compiled plan.
#[derive(Debug, Clone)]
pub struct DatasetPlan {
    /// The column plans, in contract order.
    pub columns: Vec<ColumnPlan>,
    rules: Vec<RulePlan>,
    schema: SchemaRef,
}

/// The output of one batch.
pub struct Checked {
    /// The typed contract columns, in contract order.
    pub columns: Vec<ArrayRef>,
    /// Nulls per contract column, after standardisation.
    pub nulls: Vec<u64>,
    /// Per column, the values its type could not read that were made null without a reason.
    pub unreadable: Vec<u64>,
}

impl DatasetPlan {
    /// Compiles a checked dataset's columns and rules (a rule's literal is typed as its left
    /// column types values; the contract's checks made sure it can be).
    pub fn new(dataset: &Dataset) -> Result<DatasetPlan> {
        let mode = dataset.config.schema_contract.data_type;
        let columns: Vec<ColumnPlan> = dataset.columns.iter().map(|column| ColumnPlan::new(column, mode)).collect();
        let position = |name: &str| columns.iter().position(|column| column.name == name);
        let mut rules = Vec::new();
        for rule in &dataset.rules {
            let missing = || {
                Error::Internal(format!(
                    "rule `{}` of dataset `{}` names a column the dataset lacks",
                    rule.name, dataset.name
                ))
            };
            let left = position(&rule.left).ok_or_else(missing)?;
            let right = match &rule.right {
                Operand::Column(name) => RightSide::Column(position(name).ok_or_else(missing)?),
                Operand::Literal(text) => {
                    let mut reasons = Reasons::new(1);
                    let literal = StringArray::from(vec![text.as_str()]);
                    let (array, _, unreadable) = columns[left].apply(Some(&literal), 1, &mut reasons);
                    if !reasons.is_valid(0) || array.is_null(0) || unreadable > 0 {
                        return Err(Error::Internal(format!(
                            "rule `{}` of dataset `{}`: `{text}` is not a value of `{}`'s type",
                            rule.name, dataset.name, rule.left
                        )));
                    }
                    RightSide::Literal(array)
                }
            };
            rules.push(RulePlan { name: rule.name.clone(), left, op: rule.op, right });
        }
        Ok(DatasetPlan { columns, rules, schema: crate::lake::schema::processed_schema(dataset) })
    }

    /// The schema of `processed/` files: the contract columns typed, then lineage.
    pub fn processed_schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// Types and checks a batch's contract columns (`inputs` in contract order, `None` for a
    /// column the file lacks), then applies the rules.
    pub fn check(&self, inputs: &[Option<&StringArray>], rows: usize, reasons: &mut Reasons) -> Checked {
        let mut columns = Vec::with_capacity(self.columns.len());
        let mut nulls = Vec::with_capacity(self.columns.len());
        let mut unreadable = Vec::with_capacity(self.columns.len());
        for (plan, input) in self.columns.iter().zip(inputs) {
            let (array, count, discarded) = plan.apply(*input, rows, reasons);
            columns.push(array);
            nulls.push(count);
            unreadable.push(discarded);
        }
        for rule in &self.rules {
            let left = &columns[rule.left];
            let outcome = match &rule.right {
                RightSide::Column(index) => compare(left, &columns[*index], rule.op, false),
                RightSide::Literal(literal) => compare(left, literal, rule.op, true),
            };
            // Null on either side passes: a missing value is `required`'s business.
            if let Some(outcome) = outcome {
                for row in 0..rows {
                    if outcome.is_valid(row) && !outcome.value(row) {
                        reasons.push(row, &rule.name);
                    }
                }
            }
        }
        Checked { columns, nulls, unreadable }
    }
}

fn compare(left: &ArrayRef, right: &ArrayRef, op: CompareOp, scalar: bool) -> Option<BooleanArray> {
    let left: &dyn arrow::array::Datum = left;
    let right_scalar;
    let right: &dyn arrow::array::Datum = if scalar {
        right_scalar = arrow::array::Scalar::new(right.clone());
        &right_scalar
    } else {
        right
    };
    let result = match op {
        CompareOp::Eq => cmp::eq(left, right),
        CompareOp::Ne => cmp::neq(left, right),
        CompareOp::Lt => cmp::lt(left, right),
        CompareOp::Le => cmp::lt_eq(left, right),
        CompareOp::Gt => cmp::gt(left, right),
        CompareOp::Ge => cmp::gt_eq(left, right),
    };
    result.ok()
}

#[cfg(test)]
mod tests;
