//! Curated Arrow columns as the text both warehouses parse: what PostgreSQL's `COPY … CSV`
//! reads and what SQLite's bound parameters store. Decimals keep every digit, timestamps are
//! fixed-width UTC text (so they also order correctly as SQLite text), booleans are `1`/`0`.

use std::fmt::Write;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int32Array, Int64Array,
    StringArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, TimeUnit};

use crate::{Error, Result};

/// One column of a batch, ready to be written as text row by row.
#[derive(Debug)]
pub enum TextColumn {
    /// Text.
    Text(StringArray),
    /// 64-bit integers.
    Int64(Int64Array),
    /// 32-bit integers.
    Int32(Int32Array),
    /// Floats.
    Float64(Float64Array),
    /// Booleans, as `1`/`0`.
    Boolean(BooleanArray),
    /// Exact decimals with their scale.
    Decimal(Decimal128Array, i8),
    /// Dates, `YYYY-MM-DD`.
    Date(Date32Array),
    /// Instants, fixed-width UTC.
    Timestamp(TimestampMicrosecondArray),
    /// Always null (a column the file does not have).
    Null(usize),
}

impl TextColumn {
    /// Wraps an Arrow column; other types are cast to text by Arrow.
    pub fn new(array: &ArrayRef) -> Result<TextColumn> {
        let cast = |to: &DataType| {
            arrow::compute::cast(array, to).map_err(|error| Error::arrow("casting a curated column", error))
        };
        Ok(match array.data_type() {
            DataType::Utf8 => TextColumn::Text(array.as_string::<i32>().clone()),
            DataType::Int64 => TextColumn::Int64(array.as_primitive().clone()),
            DataType::Int32 => TextColumn::Int32(array.as_primitive().clone()),
            DataType::Float64 => TextColumn::Float64(array.as_primitive().clone()),
            DataType::Boolean => TextColumn::Boolean(array.as_boolean().clone()),
            DataType::Decimal128(_, scale) => TextColumn::Decimal(array.as_primitive().clone(), *scale),
            DataType::Date32 => TextColumn::Date(array.as_primitive().clone()),
            DataType::Timestamp(_, _) => {
                let micros = cast(&DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())))?;
                TextColumn::Timestamp(micros.as_primitive().clone())
            }
            DataType::Null => TextColumn::Null(array.len()),
            _ => TextColumn::Text(cast(&DataType::Utf8)?.as_string::<i32>().clone()),
        })
    }

    /// Whether row `index` is null.
    pub fn is_null(&self, index: usize) -> bool {
        match self {
            TextColumn::Text(array) => array.is_null(index),
            TextColumn::Int64(array) => array.is_null(index),
            TextColumn::Int32(array) => array.is_null(index),
            TextColumn::Float64(array) => array.is_null(index) || !array.value(index).is_finite(),
            TextColumn::Boolean(array) => array.is_null(index),
            TextColumn::Decimal(array, _) => array.is_null(index),
            TextColumn::Date(array) => array.is_null(index),
            TextColumn::Timestamp(array) => array.is_null(index),
            TextColumn::Null(_) => true,
        }
    }

    /// Appends row `index`'s text to `out`; returns false (writing nothing) for a null.
    pub fn write(&self, index: usize, out: &mut String) -> bool {
        if self.is_null(index) {
            return false;
        }
        // Writing to a String cannot fail.
        let _ = match self {
            TextColumn::Text(array) => {
                out.push_str(array.value(index));
                Ok(())
            }
            TextColumn::Int64(array) => {
                out.push_str(itoa::Buffer::new().format(array.value(index)));
                Ok(())
            }
            TextColumn::Int32(array) => {
                out.push_str(itoa::Buffer::new().format(array.value(index)));
                Ok(())
            }
            TextColumn::Float64(array) => write!(out, "{:?}", array.value(index)),
            TextColumn::Boolean(array) => {
                out.push(if array.value(index) { '1' } else { '0' });
                Ok(())
            }
            TextColumn::Decimal(array, scale) => write_decimal(array.value(index), *scale, out),
            TextColumn::Date(array) => match array.value_as_date(index) {
                Some(date) => {
                    push_date(date, out);
                    Ok(())
                }
                None => return false,
            },
            TextColumn::Timestamp(array) => return super::codec::push_micros_text(array.value(index), out),
            TextColumn::Null(_) => return false,
        };
        true
    }

    /// Row `index` as owned text, `None` for a null.
    pub fn text(&self, index: usize) -> Option<String> {
        let mut out = String::new();
        self.write(index, &mut out).then_some(out)
    }

    /// The date of row `index`, for date columns.
    pub fn date(&self, index: usize) -> Option<chrono::NaiveDate> {
        match self {
            TextColumn::Date(array) if !array.is_null(index) => array.value_as_date(index),
            TextColumn::Timestamp(array) if !array.is_null(index) => {
                chrono::DateTime::from_timestamp_micros(array.value(index)).map(|instant| instant.date_naive())
            }
            _ => None,
        }
    }
}

/// Appends `YYYY-MM-DD` (chrono's format for years outside four digits).
fn push_date(date: chrono::NaiveDate, out: &mut String) {
    use chrono::Datelike;
    let year = date.year();
    if !(0..=9999).contains(&year) {
        out.push_str(&date.format("%Y-%m-%d").to_string());
        return;
    }
    let (month, day) = (date.month(), date.day());
    let digits = [
        b'0' + (year / 1000) as u8,
        b'0' + (year / 100 % 10) as u8,
        b'0' + (year / 10 % 10) as u8,
        b'0' + (year % 10) as u8,
        b'-',
        b'0' + (month / 10) as u8,
        b'0' + (month % 10) as u8,
        b'-',
        b'0' + (day / 10) as u8,
        b'0' + (day % 10) as u8,
    ];
    out.extend(digits.iter().map(|&byte| byte as char));
}

fn write_decimal(value: i128, scale: i8, out: &mut String) -> std::fmt::Result {
    if scale <= 0 {
        write!(out, "{value}")?;
        for _ in 0..(-scale) {
            out.push('0');
        }
        return Ok(());
    }
    let scale = scale as u32;
    let divisor = 10i128.pow(scale);
    let sign = if value < 0 { "-" } else { "" };
    let magnitude = value.unsigned_abs();
    let divisor = divisor.unsigned_abs();
    write!(out, "{sign}{}.{:0width$}", magnitude / divisor, magnitude % divisor, width = scale as usize)
}

/// Appends one CSV field for PostgreSQL's `COPY … (FORMAT csv)`: a value always quoted (so an
/// empty string stays a string), a null as nothing at all.
pub fn push_csv_field(value: Option<&str>, out: &mut String) {
    if let Some(value) = value {
        out.push('"');
        if value.contains('"') {
            out.push_str(&value.replace('"', "\"\""));
        } else {
            out.push_str(value);
        }
        out.push('"');
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn values_keep_their_exact_text() {
        let decimals: ArrayRef = Arc::new(
            Decimal128Array::from(vec![Some(1250), Some(-5), None, Some(0)])
                .with_precision_and_scale(10, 2)
                .expect("type"),
        );
        let column = TextColumn::new(&decimals).expect("column");
        let texts: Vec<Option<String>> = (0..4).map(|row| column.text(row)).collect();
        assert_eq!(texts, [Some("12.50".into()), Some("-0.05".into()), None, Some("0.00".into())]);

        let stamps: ArrayRef =
            Arc::new(TimestampMicrosecondArray::from(vec![1_704_067_200_000_001]).with_timezone("UTC"));
        assert_eq!(TextColumn::new(&stamps).expect("column").text(0).as_deref(), Some("2024-01-01T00:00:00.000001Z"));

        let flags: ArrayRef = Arc::new(BooleanArray::from(vec![true, false]));
        let column = TextColumn::new(&flags).expect("column");
        assert_eq!((column.text(0).as_deref(), column.text(1).as_deref()), (Some("1"), Some("0")));

        let floats: ArrayRef = Arc::new(Float64Array::from(vec![0.1, f64::NAN]));
        let column = TextColumn::new(&floats).expect("column");
        assert_eq!((column.text(0).as_deref(), column.text(1)), (Some("0.1"), None));
    }

    #[test]
    fn dates_and_integers_are_written_as_chrono_and_std_would() {
        // 0001-01-01, 1900-02-28, 1970-01-01, 2024-02-29, 9999-12-31 and a year past four digits.
        let days = [-719_162, -25_508, 0, 19_782, 2_932_896, 2_932_897];
        let dates: ArrayRef = Arc::new(Date32Array::from(days.to_vec()));
        let column = TextColumn::new(&dates).expect("column");
        for (row, days) in days.iter().enumerate() {
            let date = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch") + chrono::Days::new(0);
            let date = date.checked_add_signed(chrono::TimeDelta::days(i64::from(*days))).expect("date");
            assert_eq!(column.text(row), Some(date.format("%Y-%m-%d").to_string()), "{days}");
        }
        assert_eq!(column.text(3).as_deref(), Some("2024-02-29"));

        let integers: ArrayRef = Arc::new(Int64Array::from(vec![Some(i64::MIN), Some(0), None, Some(42)]));
        let column = TextColumn::new(&integers).expect("column");
        let texts: Vec<Option<String>> = (0..4).map(|row| column.text(row)).collect();
        assert_eq!(texts, [Some(i64::MIN.to_string()), Some("0".into()), None, Some("42".into())]);
    }

    #[test]
    fn csv_fields_quote_values_and_leave_nulls_empty() {
        let mut out = String::new();
        push_csv_field(Some("say \"hi\",\nbye"), &mut out);
        out.push(',');
        push_csv_field(None, &mut out);
        out.push(',');
        push_csv_field(Some(""), &mut out);
        assert_eq!(out, "\"say \"\"hi\"\",\nbye\",,\"\"");
    }
}
