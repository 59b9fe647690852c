//! The value types a contract can declare, and how text becomes each of them: a leaf the
//! contract checks with and validate types with, so neither needs the other.

pub mod cast;

use std::cmp::Ordering;

use arrow::datatypes::{DataType as ArrowType, TimeUnit};

pub use cast::Zone;

/// A column's type in `processed/` and beyond.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataType {
    /// UTF-8 text.
    String,
    /// A 64-bit signed integer.
    Integer,
    /// A fixed-point decimal: `precision` digits, `scale` of them after the point.
    Decimal {
        /// Total digits, 1 to 38.
        precision: u8,
        /// Digits after the point, at most `precision`.
        scale: u8,
    },
    /// A 64-bit float.
    Float,
    /// True or false.
    Boolean,
    /// A calendar date.
    Date,
    /// An instant, stored as UTC microseconds.
    Timestamp,
}

impl DataType {
    /// Parses a contract type name: `string`, `integer`, `decimal(p,s)`, `float`, `boolean`,
    /// `date`, `timestamp`.
    pub fn parse(text: &str) -> Option<DataType> {
        let text = text.trim().to_ascii_lowercase();
        let simple = match text.as_str() {
            "string" | "text" => Some(DataType::String),
            "integer" | "int" | "bigint" => Some(DataType::Integer),
            "float" | "double" => Some(DataType::Float),
            "boolean" | "bool" => Some(DataType::Boolean),
            "date" => Some(DataType::Date),
            "timestamp" => Some(DataType::Timestamp),
            _ => None,
        };
        if simple.is_some() {
            return simple;
        }
        let inner = text.strip_prefix("decimal(")?.strip_suffix(')')?;
        let (precision, scale) = inner.split_once(',')?;
        let precision: u8 = precision.trim().parse().ok()?;
        let scale: u8 = scale.trim().parse().ok()?;
        (1..=38).contains(&precision).then_some(())?;
        (scale <= precision).then_some(DataType::Decimal { precision, scale })
    }

    /// Whether values are dates or instants.
    pub fn is_temporal(self) -> bool {
        matches!(self, DataType::Date | DataType::Timestamp)
    }

    /// Whether values are numbers.
    pub fn is_numeric(self) -> bool {
        matches!(self, DataType::Integer | DataType::Float | DataType::Decimal { .. })
    }
}

/// A comparison: of a contract's cross-column rule, a DQDL expression, a rule's SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl CompareOp {
    /// Whether an ordering satisfies the comparison.
    pub fn holds(self, ordering: Ordering) -> bool {
        match self {
            CompareOp::Eq => ordering == Ordering::Equal,
            CompareOp::Ne => ordering != Ordering::Equal,
            CompareOp::Lt => ordering == Ordering::Less,
            CompareOp::Le => ordering != Ordering::Greater,
            CompareOp::Gt => ordering == Ordering::Greater,
            CompareOp::Ge => ordering != Ordering::Less,
        }
    }
}

/// A bound of a `min` or `max` check, in the column's own representation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bound {
    /// A 64-bit integer.
    Integer(i64),
    /// A decimal's unscaled value.
    Decimal(i128),
    /// A float.
    Float(f64),
    /// A date: days since 1970-01-01.
    Days(i32),
    /// An instant: microseconds since the epoch.
    Micros(i64),
}

/// A typed value of one cell, compared against bounds.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub enum Typed {
    /// A 64-bit integer.
    Integer(i64),
    /// A decimal's unscaled value.
    Decimal(i128),
    /// A float.
    Float(f64),
    /// A boolean.
    Boolean(bool),
    /// A date: days since 1970-01-01.
    Days(i32),
    /// An instant: microseconds since the epoch.
    Micros(i64),
}

impl Typed {
    /// Whether the value is below the bound (values and bounds of different kinds never compare).
    pub fn below(self, bound: Bound) -> bool {
        match (self, bound) {
            (Typed::Integer(value), Bound::Integer(bound)) => value < bound,
            (Typed::Decimal(value), Bound::Decimal(bound)) => value < bound,
            (Typed::Float(value), Bound::Float(bound)) => value < bound,
            (Typed::Days(value), Bound::Days(bound)) => value < bound,
            (Typed::Micros(value), Bound::Micros(bound)) => value < bound,
            _ => false,
        }
    }

    /// Whether the value is above the bound.
    pub fn above(self, bound: Bound) -> bool {
        match (self, bound) {
            (Typed::Integer(value), Bound::Integer(bound)) => value > bound,
            (Typed::Decimal(value), Bound::Decimal(bound)) => value > bound,
            (Typed::Float(value), Bound::Float(bound)) => value > bound,
            (Typed::Days(value), Bound::Days(bound)) => value > bound,
            (Typed::Micros(value), Bound::Micros(bound)) => value > bound,
            _ => false,
        }
    }
}

/// The Arrow type a contract type is stored as.
pub fn arrow_type(data_type: DataType) -> ArrowType {
    match data_type {
        DataType::String => ArrowType::Utf8,
        DataType::Integer => ArrowType::Int64,
        DataType::Decimal { precision, scale } => ArrowType::Decimal128(precision, scale as i8),
        DataType::Float => ArrowType::Float64,
        DataType::Boolean => ArrowType::Boolean,
        DataType::Date => ArrowType::Date32,
        DataType::Timestamp => ArrowType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
    }
}

/// The contract's spelling of a type, as reject reasons name it.
pub fn type_name(data_type: DataType) -> String {
    match data_type {
        DataType::String => "string".to_string(),
        DataType::Integer => "integer".to_string(),
        DataType::Decimal { precision, scale } => format!("decimal({precision},{scale})"),
        DataType::Float => "float".to_string(),
        DataType::Boolean => "boolean".to_string(),
        DataType::Date => "date".to_string(),
        DataType::Timestamp => "timestamp".to_string(),
    }
}

/// How one column's text is read: its type, with the contract's date format, time zone and
/// thousands separator. Compiled once per column by the contract's checks.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// The column's type.
    pub data_type: DataType,
    /// The thousands separator of numbers.
    pub thousands: Option<char>,
    /// The strftime format of dates and timestamps; ISO 8601 when absent.
    pub format: Option<String>,
    /// The zone of timestamps written without one.
    pub zone: Zone,
}

impl Reading {
    /// Parses a standardised, non-empty value of a non-string column.
    pub fn parse(&self, text: &str) -> Result<Typed, String> {
        match self.data_type {
            DataType::String => Err("a string has no typed value".to_string()),
            DataType::Integer => cast::integer(text, self.thousands).map(Typed::Integer),
            DataType::Decimal { precision, scale } => {
                cast::decimal(text, precision, scale, self.thousands).map(Typed::Decimal)
            }
            DataType::Float => cast::float(text, self.thousands).map(Typed::Float),
            DataType::Boolean => cast::boolean(text).map(Typed::Boolean),
            DataType::Date => cast::date(text, self.format.as_deref()).map(Typed::Days),
            DataType::Timestamp => cast::timestamp(text, self.format.as_deref(), self.zone).map(Typed::Micros),
        }
    }

    /// A `min`/`max` bound: numbers as the column parses them, dates and timestamps in ISO
    /// form whatever the column's source format.
    pub fn bound(&self, text: &str) -> Option<Bound> {
        let typed = match self.data_type {
            DataType::Date => cast::date(text, None).map(Typed::Days),
            DataType::Timestamp => {
                cast::timestamp(text, None, Zone::Fixed(chrono::Offset::fix(&chrono::Utc))).map(Typed::Micros)
            }
            _ => self.parse(text),
        };
        match typed.ok()? {
            Typed::Integer(value) => Some(Bound::Integer(value)),
            Typed::Decimal(value) => Some(Bound::Decimal(value)),
            Typed::Float(value) => Some(Bound::Float(value)),
            Typed::Days(value) => Some(Bound::Days(value)),
            Typed::Micros(value) => Some(Bound::Micros(value)),
            Typed::Boolean(_) => None,
        }
    }
}
