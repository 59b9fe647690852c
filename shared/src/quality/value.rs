//! One cell's value as the rules see it, read from a typed batch column, and how two values
//! compare across the contract's types (an integer with a decimal, a date with a timestamp,
//! a quoted literal with a number or a date).

use std::borrow::Cow;
use std::cmp::Ordering;

use arrow::array::{
    Array, ArrayRef, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int64Array, StringArray,
    TimestampMicrosecondArray,
};

use crate::types::{DataType, cast};

/// Microseconds in a day.
const DAY_MICROS: i64 = 86_400_000_000;

/// A value: missing, or of one of the contract's types.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar<'a> {
    /// Missing (null, empty or only whitespace: Lakestar standardises all three to missing).
    Null,
    /// A 64-bit integer.
    Integer(i64),
    /// A decimal: its unscaled value and its scale.
    Decimal(i128, u8),
    /// A float.
    Float(f64),
    /// A boolean.
    Boolean(bool),
    /// A date: days since 1970-01-01.
    Date(i32),
    /// An instant: microseconds since the epoch, UTC.
    Timestamp(i64),
    /// Text.
    Text(Cow<'a, str>),
}

impl Scalar<'_> {
    /// Whether the value is missing.
    pub fn is_null(&self) -> bool {
        matches!(self, Scalar::Null)
    }

    /// The value as a float, when it is a number.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Scalar::Integer(value) => Some(*value as f64),
            Scalar::Decimal(value, scale) => Some(*value as f64 / 10f64.powi(i32::from(*scale))),
            Scalar::Float(value) => Some(*value),
            _ => None,
        }
    }

    /// The value with its borrowed text copied: it outlives the batch it came from.
    pub fn into_owned(self) -> Scalar<'static> {
        match self {
            Scalar::Null => Scalar::Null,
            Scalar::Integer(value) => Scalar::Integer(value),
            Scalar::Decimal(value, scale) => Scalar::Decimal(value, scale),
            Scalar::Float(value) => Scalar::Float(value),
            Scalar::Boolean(value) => Scalar::Boolean(value),
            Scalar::Date(value) => Scalar::Date(value),
            Scalar::Timestamp(value) => Scalar::Timestamp(value),
            Scalar::Text(text) => Scalar::Text(Cow::Owned(text.into_owned())),
        }
    }

    /// A text that identifies the value among values of its column (a distinct-values key):
    /// equal values give equal keys whatever their spelling in the file.
    pub fn key(&self) -> Cow<'_, str> {
        match self {
            Scalar::Text(text) => Cow::Borrowed(text),
            Scalar::Null => Cow::Borrowed(""),
            Scalar::Integer(value) => Cow::Owned(value.to_string()),
            Scalar::Decimal(value, _) => Cow::Owned(value.to_string()),
            Scalar::Float(value) => Cow::Owned(value.to_string()),
            Scalar::Boolean(value) => Cow::Borrowed(if *value { "true" } else { "false" }),
            Scalar::Date(value) => Cow::Owned(format!("d{value}")),
            Scalar::Timestamp(value) => Cow::Owned(format!("t{value}")),
        }
    }

    /// How the value compares with another: `None` when either is missing or they do not
    /// compare (a boolean with a date). Numbers compare exactly where both are integers or
    /// decimals; text compares with a number, date or timestamp by reading it as one.
    pub fn compare(&self, other: &Scalar<'_>) -> Option<Ordering> {
        use Scalar::{Boolean, Date, Decimal, Float, Integer, Null, Text, Timestamp};
        match (self, other) {
            (Null, _) | (_, Null) => None,
            (Integer(a), Integer(b)) => Some(a.cmp(b)),
            (Integer(a), Decimal(b, scale)) => decimal_compare(i128::from(*a), 0, *b, *scale),
            (Decimal(a, scale), Integer(b)) => decimal_compare(*a, *scale, i128::from(*b), 0),
            (Decimal(a, left), Decimal(b, right)) => decimal_compare(*a, *left, *b, *right),
            (Float(_), _) | (_, Float(_)) if self.as_f64().is_some() && other.as_f64().is_some() => {
                self.as_f64()?.partial_cmp(&other.as_f64()?)
            }
            (Boolean(a), Boolean(b)) => Some(a.cmp(b)),
            (Date(a), Date(b)) => Some(a.cmp(b)),
            (Timestamp(a), Timestamp(b)) => Some(a.cmp(b)),
            (Date(a), Timestamp(b)) => Some((i64::from(*a) * DAY_MICROS).cmp(b)),
            (Timestamp(a), Date(b)) => Some(a.cmp(&(i64::from(*b) * DAY_MICROS))),
            (Text(a), Text(b)) => Some(a.as_ref().cmp(b.as_ref())),
            (Text(text), _) => coerce(text, other)?.compare(other),
            (_, Text(text)) => self.compare(&coerce(text, self)?),
            _ => None,
        }
    }
}

fn decimal_compare(a: i128, a_scale: u8, b: i128, b_scale: u8) -> Option<Ordering> {
    let widen = |value: i128, by: u8| 10i128.checked_pow(u32::from(by)).and_then(|factor| value.checked_mul(factor));
    let (a, b) = match a_scale.cmp(&b_scale) {
        Ordering::Equal => (Some(a), Some(b)),
        Ordering::Less => (widen(a, b_scale - a_scale), Some(b)),
        Ordering::Greater => (Some(a), widen(b, a_scale - b_scale)),
    };
    match (a, b) {
        (Some(a), Some(b)) => Some(a.cmp(&b)),
        // Beyond 38 digits once aligned: compare as floats.
        _ => {
            let float = |value: i128, scale: u8| value as f64 / 10f64.powi(i32::from(scale));
            float(a.unwrap_or(0), a_scale).partial_cmp(&float(b.unwrap_or(0), b_scale))
        }
    }
}

/// Text read as a value of `like`'s kind (a number, a boolean, an ISO date or timestamp).
pub fn coerce(text: &str, like: &Scalar<'_>) -> Option<Scalar<'static>> {
    let text = text.trim();
    match like {
        Scalar::Integer(_) | Scalar::Decimal(..) | Scalar::Float(_) => number(text),
        Scalar::Boolean(_) => cast::boolean(text).ok().map(Scalar::Boolean),
        Scalar::Date(_) => cast::date(text, None)
            .map(Scalar::Date)
            .ok()
            .or_else(|| cast::timestamp(text, None, utc()).ok().map(Scalar::Timestamp)),
        Scalar::Timestamp(_) => cast::timestamp(text, None, utc()).ok().map(Scalar::Timestamp),
        Scalar::Text(_) => Some(Scalar::Text(Cow::Owned(text.to_string()))),
        Scalar::Null => None,
    }
}

/// A literal of the column's type: `None` when the text is not one.
pub fn literal_for(text: &str, data_type: DataType) -> Option<Scalar<'static>> {
    let like = match data_type {
        DataType::String => return Some(Scalar::Text(Cow::Owned(text.to_string()))),
        DataType::Integer | DataType::Decimal { .. } | DataType::Float => Scalar::Integer(0),
        DataType::Boolean => Scalar::Boolean(false),
        DataType::Date => Scalar::Date(0),
        DataType::Timestamp => Scalar::Timestamp(0),
    };
    coerce(text, &like)
}

fn utc() -> cast::Zone {
    cast::Zone::Fixed(chrono::Offset::fix(&chrono::Utc))
}

/// A number as written: an integer when it is one, else an exact decimal of up to 38
/// digits, else a float.
pub fn number(text: &str) -> Option<Scalar<'static>> {
    if let Ok(value) = text.parse::<i64>() {
        return Some(Scalar::Integer(value));
    }
    let unsigned = text.trim_start_matches(['-', '+']);
    if let Some((integer, fraction)) = unsigned.split_once('.')
        && !(integer.is_empty() && fraction.is_empty())
        && integer.bytes().chain(fraction.bytes()).all(|byte| byte.is_ascii_digit())
        && integer.len() + fraction.len() <= 38
        && let Ok(scale) = u8::try_from(fraction.len())
        && let Ok(value) = format!("{integer}{fraction}").parse::<i128>()
    {
        return Some(Scalar::Decimal(if text.starts_with('-') { -value } else { value }, scale));
    }
    text.parse::<f64>().ok().filter(|value| value.is_finite()).map(Scalar::Float)
}

/// A typed batch column, read cell by cell.
#[derive(Debug, Clone, Copy)]
pub enum View<'a> {
    /// A column the rules do not read in this pass: every cell missing.
    Absent,
    /// Text.
    Text(&'a StringArray),
    /// Integers.
    Integer(&'a Int64Array),
    /// Decimals of a scale.
    Decimal(&'a Decimal128Array, u8),
    /// Floats.
    Float(&'a Float64Array),
    /// Booleans.
    Boolean(&'a BooleanArray),
    /// Dates.
    Date(&'a Date32Array),
    /// Timestamps in microseconds.
    Timestamp(&'a TimestampMicrosecondArray),
}

impl<'a> View<'a> {
    /// The view of an array of one of the contract types' Arrow types.
    pub fn of(array: &'a ArrayRef) -> View<'a> {
        let any = array.as_any();
        if let Some(array) = any.downcast_ref::<StringArray>() {
            View::Text(array)
        } else if let Some(array) = any.downcast_ref::<Int64Array>() {
            View::Integer(array)
        } else if let Some(array) = any.downcast_ref::<Decimal128Array>() {
            View::Decimal(array, u8::try_from(array.scale()).unwrap_or(0))
        } else if let Some(array) = any.downcast_ref::<Float64Array>() {
            View::Float(array)
        } else if let Some(array) = any.downcast_ref::<BooleanArray>() {
            View::Boolean(array)
        } else if let Some(array) = any.downcast_ref::<Date32Array>() {
            View::Date(array)
        } else if let Some(array) = any.downcast_ref::<TimestampMicrosecondArray>() {
            View::Timestamp(array)
        } else {
            View::Absent
        }
    }

    /// The value of a row.
    pub fn get(&self, row: usize) -> Scalar<'a> {
        match self {
            View::Absent => Scalar::Null,
            View::Text(array) if array.is_valid(row) => Scalar::Text(Cow::Borrowed(array.value(row))),
            View::Integer(array) if array.is_valid(row) => Scalar::Integer(array.value(row)),
            View::Decimal(array, scale) if array.is_valid(row) => Scalar::Decimal(array.value(row), *scale),
            View::Float(array) if array.is_valid(row) => Scalar::Float(array.value(row)),
            View::Boolean(array) if array.is_valid(row) => Scalar::Boolean(array.value(row)),
            View::Date(array) if array.is_valid(row) => Scalar::Date(array.value(row)),
            View::Timestamp(array) if array.is_valid(row) => Scalar::Timestamp(array.value(row)),
            _ => Scalar::Null,
        }
    }
}

/// One batch as the rules read it: the typed contract columns, and their text as received
/// (for `ColumnDataType` and `ColumnLength`, which judge what was written).
pub struct Row<'a> {
    /// Typed columns, in contract order.
    pub typed: Vec<View<'a>>,
    /// The raw text columns, in contract order (`None` when the file lacks the column).
    pub raw: Vec<Option<&'a StringArray>>,
}

impl Row<'_> {
    /// The typed value of a column at a row.
    pub fn value(&self, column: usize, row: usize) -> Scalar<'_> {
        self.typed.get(column).map_or(Scalar::Null, |view| view.get(row))
    }

    /// The trimmed text of a column at a row as the file wrote it; `None` when missing.
    pub fn text(&self, column: usize, row: usize) -> Option<&str> {
        let array = self.raw.get(column).copied().flatten()?;
        if !array.is_valid(row) {
            return None;
        }
        Some(cast::trim(array.value(row))).filter(|text| !text.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_compare_across_types() {
        let text = |value: &'static str| Scalar::Text(Cow::Borrowed(value));
        assert_eq!(Scalar::Integer(5).compare(&Scalar::Decimal(500, 2)), Some(Ordering::Equal));
        assert_eq!(Scalar::Decimal(1234, 2).compare(&Scalar::Decimal(12_340, 3)), Some(Ordering::Equal));
        assert_eq!(Scalar::Decimal(1, 1).compare(&Scalar::Float(0.2)), Some(Ordering::Less));
        assert_eq!(Scalar::Date(1).compare(&Scalar::Timestamp(DAY_MICROS)), Some(Ordering::Equal));
        assert_eq!(Scalar::Date(0).compare(&text("1970-01-02")), Some(Ordering::Less));
        assert_eq!(Scalar::Integer(10).compare(&text("9.5")), Some(Ordering::Greater));
        assert_eq!(text("b").compare(&text("a")), Some(Ordering::Greater));
        assert_eq!(Scalar::Null.compare(&Scalar::Integer(1)), None);
        assert_eq!(Scalar::Boolean(true).compare(&Scalar::Date(1)), None);
        assert_eq!(Scalar::Integer(1).compare(&text("x")), None);
    }

    #[test]
    fn numbers_keep_their_digits() {
        assert_eq!(number("42"), Some(Scalar::Integer(42)));
        assert_eq!(number("-1.50"), Some(Scalar::Decimal(-150, 2)));
        assert_eq!(number("12345678901234567890.123"), Some(Scalar::Decimal(12_345_678_901_234_567_890_123, 3)));
        assert_eq!(number("1e3"), Some(Scalar::Float(1000.0)));
        assert_eq!(number("x"), None);
    }
}
