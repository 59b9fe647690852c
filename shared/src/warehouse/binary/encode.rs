//! Writing staged rows for `COPY … FROM STDIN (FORMAT binary)`, each value in its column's
//! binary form.

use super::{POSTGRES_EPOCH_DAYS, POSTGRES_EPOCH_FROM_CE, POSTGRES_EPOCH_MICROS, Wire};
use crate::warehouse::cells::{Cells, StageBatch};
use crate::warehouse::text::TextColumn;
use crate::{Error, Result};

/// A staging table's columns as binary `COPY` sends them.
#[derive(Debug, Clone)]
pub(crate) struct BinaryColumns {
    /// The table, for errors.
    pub table: String,
    /// Each column's name (for errors) and binary form, in the `COPY`'s order.
    pub columns: Vec<(String, Wire)>,
}

impl BinaryColumns {
    /// Appends `batch`'s rows to `out`.
    pub(crate) fn encode(&self, batch: &StageBatch, out: &mut Vec<u8>) -> Result<()> {
        if batch.columns.len() != self.columns.len() {
            return Err(Error::Internal(format!(
                "staging rows into {}: {} columns staged where the COPY names {}",
                self.table,
                batch.columns.len(),
                self.columns.len()
            )));
        }
        // A constant is encoded once for the whole batch.
        let mut constants = Vec::with_capacity(self.columns.len());
        let mut text = String::new();
        for (cells, (name, wire)) in batch.columns.iter().zip(&self.columns) {
            constants.push(match cells {
                Cells::Constant(_) => {
                    let mut field = Vec::new();
                    self.field(cells, 0, *wire, name, &mut text, &mut field)?;
                    Some(field)
                }
                _ => None,
            });
        }
        let count = (self.columns.len() as i16).to_be_bytes();
        for row in 0..batch.rows {
            out.extend(count);
            for ((cells, (name, wire)), constant) in batch.columns.iter().zip(&self.columns).zip(&constants) {
                match constant {
                    Some(field) => out.extend_from_slice(field),
                    None => self.field(cells, row, *wire, name, &mut text, out)?,
                }
            }
        }
        Ok(())
    }

    /// Appends row `row` of `cells` as a field of type `wire`: its length, then its bytes.
    fn field(
        &self,
        cells: &Cells,
        row: usize,
        wire: Wire,
        name: &str,
        text: &mut String,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        let out_of_range = || self.unsendable(name, wire, "is out of the column's range");
        if let Cells::Arrow(column) = cells
            && let Some(sent) = typed_field(column, row, wire, out)
        {
            return sent.ok_or_else(out_of_range);
        }
        if let (Cells::Integers(values), true) = (cells, is_integer(wire)) {
            return match values[row] {
                Some(value) => push_integer(value, wire, out).ok_or_else(out_of_range),
                None => {
                    push_null(out);
                    Ok(())
                }
            };
        }
        if let (Cells::Hashes(hashes), Wire::Bytea) = (cells, wire) {
            push_bytes(out, &hashes[row].to_be_bytes());
            return Ok(());
        }
        if let (Cells::Instants(values), Wire::Timestamptz) = (cells, wire) {
            return match values[row] {
                Some(micros) => push_instant(micros, out).ok_or_else(out_of_range),
                None => {
                    push_null(out);
                    Ok(())
                }
            };
        }
        // Anything else travels as its text, read here as PostgreSQL would read it.
        text.clear();
        if !cells.write(row, text) {
            push_null(out);
            return Ok(());
        }
        // Other types' text may be surrounded by spaces, as PostgreSQL's input functions allow.
        let trimmed = text.trim();
        let sent = match wire {
            Wire::Text => push_bytes(out, text.as_bytes()),
            Wire::Int8 | Wire::Int4 | Wire::Int2 => {
                trimmed.parse::<i64>().ok().and_then(|value| push_integer(value, wire, out))
            }
            Wire::Float8 => {
                trimmed.parse::<f64>().ok().and_then(|value| push_bytes(out, &value.to_bits().to_be_bytes()))
            }
            Wire::Bool => boolean(trimmed).and_then(|value| push_bytes(out, &[u8::from(value)])),
            Wire::Numeric => {
                decimal_text(trimmed).and_then(|(negative, digits, scale)| push_numeric(negative, &digits, scale, out))
            }
            Wire::Date => chrono::NaiveDate::parse_from_str(trimmed, "%Y-%m-%d").ok().and_then(|date| {
                let days = chrono::Datelike::num_days_from_ce(&date) - POSTGRES_EPOCH_FROM_CE;
                push_bytes(out, &days.to_be_bytes())
            }),
            Wire::Timestamptz => crate::warehouse::codec::timestamp_micros(trimmed)
                .and_then(|micros| micros.checked_sub(POSTGRES_EPOCH_MICROS))
                .and_then(|since| push_bytes(out, &since.to_be_bytes())),
            // Only row hashes go to bytea columns (above).
            Wire::Bytea => None,
        };
        sent.ok_or_else(|| self.unsendable(name, wire, "is not in a form Lakestar sends"))
    }

    /// The error for a value of column `name` that cannot be sent as `wire` (the value itself
    /// is never named: it may be personal data).
    fn unsendable(&self, name: &str, wire: Wire, problem: &str) -> Error {
        Error::WarehouseLoad {
            step: "staging rows".to_string(),
            table: Some(self.table.trim_matches('"').to_string()),
            sqlstate: None,
            message: format!(
                "a value of column `{name}` {problem} for {} (the warehouse column's type); \
                 make the column's type match the contract",
                wire.name()
            ),
        }
    }
}

/// Appends the field of an Arrow column's row `row` when its type goes straight to `wire`'s
/// binary form: `Some(None)` when the value does not fit the column, `None` when the pair
/// has no direct form (the value then travels as its text).
fn typed_field(column: &TextColumn, row: usize, wire: Wire, out: &mut Vec<u8>) -> Option<Option<()>> {
    if column.is_null(row) {
        return Some(push_null(out));
    }
    Some(match (column, wire) {
        (TextColumn::Text(array), Wire::Text) => push_bytes(out, array.value(row).as_bytes()),
        (TextColumn::Int64(array), _) if is_integer(wire) => push_integer(array.value(row), wire, out),
        (TextColumn::Int32(array), _) if is_integer(wire) => push_integer(i64::from(array.value(row)), wire, out),
        (TextColumn::Float64(array), Wire::Float8) => push_bytes(out, &array.value(row).to_bits().to_be_bytes()),
        (TextColumn::Boolean(array), Wire::Bool) => push_bytes(out, &[u8::from(array.value(row))]),
        (TextColumn::Decimal(array, scale), Wire::Numeric) => {
            let value = array.value(row);
            push_numeric(value < 0, itoa::Buffer::new().format(value.unsigned_abs()), i32::from(*scale), out)
        }
        // A date or an instant chrono cannot hold is a null, as in the CSV form.
        (TextColumn::Date(array), Wire::Date) => match array.value_as_date(row) {
            Some(_) => {
                array.value(row).checked_sub(POSTGRES_EPOCH_DAYS).and_then(|days| push_bytes(out, &days.to_be_bytes()))
            }
            None => push_null(out),
        },
        (TextColumn::Timestamp(array), Wire::Timestamptz) => push_instant(array.value(row), out),
        _ => return None,
    })
}

/// Appends a field of `bytes`: its length, then the bytes. Always `Some`, like the other
/// field writers, which are `None` for a value that does not fit.
fn push_bytes(out: &mut Vec<u8>, bytes: &[u8]) -> Option<()> {
    out.extend((bytes.len() as i32).to_be_bytes());
    out.extend_from_slice(bytes);
    Some(())
}

/// Appends the field of an instant (microseconds since the Unix epoch): a null when chrono
/// cannot hold it, as in the text form; `None` when PostgreSQL's epoch cannot be subtracted.
fn push_instant(micros: i64, out: &mut Vec<u8>) -> Option<()> {
    if chrono::DateTime::from_timestamp_micros(micros).is_none() {
        return push_null(out);
    }
    micros.checked_sub(POSTGRES_EPOCH_MICROS).and_then(|since| push_bytes(out, &since.to_be_bytes()))
}

/// Appends a null field (always `Some`).
fn push_null(out: &mut Vec<u8>) -> Option<()> {
    out.extend((-1i32).to_be_bytes());
    Some(())
}

/// A boolean's text as PostgreSQL reads it (`1`, `t`, `true`, `yes`, `on`, and their opposites).
fn boolean(text: &str) -> Option<bool> {
    let is = |words: &[&str]| words.iter().any(|word| text.eq_ignore_ascii_case(word));
    if is(&["1", "t", "true", "y", "yes", "on"]) {
        Some(true)
    } else if is(&["0", "f", "false", "n", "no", "off"]) {
        Some(false)
    } else {
        None
    }
}

fn is_integer(wire: Wire) -> bool {
    matches!(wire, Wire::Int8 | Wire::Int4 | Wire::Int2)
}

/// Appends `value` as an integer field of `wire`'s width; `None` when it does not fit.
fn push_integer(value: i64, wire: Wire, out: &mut Vec<u8>) -> Option<()> {
    match wire {
        Wire::Int4 => push_bytes(out, &i32::try_from(value).ok()?.to_be_bytes()),
        Wire::Int2 => push_bytes(out, &i16::try_from(value).ok()?.to_be_bytes()),
        _ => push_bytes(out, &value.to_be_bytes()),
    }
}

/// A decimal literal (`-12.50`, `7`, `+.5`, `1.5e-7`) as its sign, its digits and how many
/// places the point stands left of their end (negative: zeros to append); `None` for anything
/// else (`NaN`, `Infinity`, a scale beyond PostgreSQL's 1 000 digits).
pub(super) fn decimal_text(text: &str) -> Option<(bool, String, i32)> {
    let (negative, unsigned) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
        Some((mantissa, exponent)) => (mantissa, exponent.parse::<i32>().ok()?),
        None => (unsigned, 0),
    };
    let (integer, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all_digits = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
    if integer.len() + fraction.len() == 0 || !all_digits(integer) || !all_digits(fraction) {
        return None;
    }
    let scale = i32::try_from(fraction.len()).ok()?.checked_sub(exponent)?;
    (-MAX_SCALE..=MAX_SCALE).contains(&scale).then(|| (negative, format!("{integer}{fraction}"), scale))
}

/// The most places a numeric's point may move in [`decimal_text`] (PostgreSQL's display
/// scale stops at 1 000).
const MAX_SCALE: i32 = 1_000;

/// Appends a numeric field: the value `digits` (decimal, unsigned) × 10^-`scale`, negated when
/// `negative`. `None` when it has more digits than PostgreSQL's binary form carries.
pub(super) fn push_numeric(negative: bool, digits: &str, scale: i32, out: &mut Vec<u8>) -> Option<()> {
    let digits = digits.as_bytes();
    if scale <= 0 {
        // A negative scale appends zeros to the integer.
        let mut integer = digits.to_vec();
        integer.extend(std::iter::repeat_n(b'0', usize::try_from(scale.unsigned_abs()).ok()?));
        return push_groups(negative, &integer, &[], 0, out);
    }
    let display_scale = u16::try_from(scale).ok()?;
    let scale = usize::from(display_scale);
    let mut padded = vec![b'0'; scale.saturating_sub(digits.len())];
    padded.extend_from_slice(digits);
    let (integer, fraction) = padded.split_at(padded.len() - scale);
    push_groups(negative, integer, fraction, display_scale, out)
}

/// Appends a numeric field from its integer and fraction digits (decimal ASCII).
fn push_groups(negative: bool, integer: &[u8], fraction: &[u8], display_scale: u16, out: &mut Vec<u8>) -> Option<()> {
    let value = |group: &[u8]| group.iter().fold(0i16, |sum, digit| sum * 10 + i16::from(digit - b'0'));
    let mut groups: Vec<i16> = Vec::with_capacity((integer.len() + fraction.len()) / 4 + 2);
    // Integer digits grouped by four from the point leftwards, fraction digits rightwards.
    let lead = integer.len() % 4;
    if lead > 0 {
        groups.push(value(&integer[..lead]));
    }
    groups.extend(integer[lead..].chunks(4).map(value));
    let integer_groups = groups.len();
    for chunk in fraction.chunks(4) {
        let mut group = value(chunk);
        for _ in chunk.len()..4 {
            group *= 10;
        }
        groups.push(group);
    }
    let mut weight = integer_groups as i32 - 1;
    let leading = groups.iter().take_while(|&&group| group == 0).count();
    weight -= leading as i32;
    let trailing = groups[leading..].iter().rev().take_while(|&&group| group == 0).count();
    let significant = &groups[leading..groups.len() - trailing];
    let count = i16::try_from(significant.len()).ok()?;
    let (weight, sign) = if significant.is_empty() {
        (0, 0u16)
    } else {
        (i16::try_from(weight).ok()?, if negative { 0x4000 } else { 0 })
    };
    out.extend((8 + 2 * i32::from(count)).to_be_bytes());
    out.extend(count.to_be_bytes());
    out.extend(weight.to_be_bytes());
    out.extend(sign.to_be_bytes());
    out.extend(display_scale.to_be_bytes());
    for group in significant {
        out.extend(group.to_be_bytes());
    }
    Some(())
}
