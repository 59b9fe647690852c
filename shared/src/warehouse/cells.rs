//! The values a load moves: a staged batch's columns ([`Cells`]) on their way into the
//! warehouse, and the typed values ([`Value`]) read back out of it.

use super::codec::{self, Hash};
use super::text::TextColumn;

/// A column of a staged batch: from the curated file, computed per row, or one value.
pub(crate) enum Cells {
    Arrow(TextColumn),
    Texts(Vec<Option<String>>),
    Integers(Vec<Option<i64>>),
    /// Instants in microseconds since the epoch (fixed-width UTC text where text is sent).
    Instants(Vec<Option<i64>>),
    /// Row hashes: their 16 bytes to a `BYTEA` column (PostgreSQL), their 32 hex digits as text
    /// (SQLite; [`codec::push_hash_text`]).
    Hashes(Vec<Hash>),
    Constant(Option<String>),
}

impl Cells {
    pub fn write(&self, row: usize, out: &mut String) -> bool {
        match self {
            Cells::Arrow(column) => column.write(row, out),
            Cells::Integers(values) => match values[row] {
                Some(value) => {
                    out.push_str(itoa::Buffer::new().format(value));
                    true
                }
                None => false,
            },
            Cells::Instants(values) => values[row].is_some_and(|micros| codec::push_micros_text(micros, out)),
            Cells::Hashes(hashes) => {
                codec::push_hash_text(hashes[row], out);
                true
            }
            Cells::Texts(texts) => match &texts[row] {
                Some(text) => {
                    out.push_str(text);
                    true
                }
                None => false,
            },
            Cells::Constant(value) => match value {
                Some(text) => {
                    out.push_str(text);
                    true
                }
                None => false,
            },
        }
    }

    /// Binds a row's value to a SQLite statement: numbers as numbers (no text to write and
    /// for SQLite to read back; the column's affinity stores the same value either way),
    /// everything else as its text.
    pub fn bind_sqlite<'q>(
        &self,
        query: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>,
        row: usize,
    ) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments> {
        match self {
            Cells::Integers(values) => query.bind(values[row]),
            Cells::Arrow(column) if column.is_null(row) => query.bind(None::<i64>),
            Cells::Arrow(TextColumn::Int64(array)) => query.bind(array.value(row)),
            Cells::Arrow(TextColumn::Int32(array)) => query.bind(i64::from(array.value(row))),
            Cells::Arrow(TextColumn::Boolean(array)) => query.bind(i64::from(array.value(row))),
            Cells::Arrow(TextColumn::Float64(array)) => query.bind(array.value(row)),
            other => query.bind(other.text(row)),
        }
    }

    pub fn text(&self, row: usize) -> Option<String> {
        let mut out = String::new();
        self.write(row, &mut out).then_some(out)
    }
}

/// How [`Tx::fetch`] decodes a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Text (the statement casts other types to text).
    Text,
    /// A 64-bit integer.
    Integer,
    /// An instant: `TIMESTAMPTZ` in PostgreSQL, fixed-width UTC text in SQLite.
    Instant,
    /// A row hash as stored ([`codec::stored_hash`]), decoded without a text in between.
    Hash,
}

/// A value read by [`Tx::fetch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    Text(Option<String>),
    Integer(Option<i64>),
    /// Microseconds since the epoch.
    Instant(Option<i64>),
    Hash(Option<Hash>),
}

impl Value {
    pub fn into_text(self) -> Option<String> {
        match self {
            Value::Text(text) => text,
            Value::Integer(value) => value.map(|value| value.to_string()),
            Value::Instant(micros) => {
                micros.and_then(chrono::DateTime::from_timestamp_micros).map(codec::timestamp_text)
            }
            Value::Hash(hash) => hash.map(|hash| {
                let mut text = String::with_capacity(32);
                codec::push_hash_text(hash, &mut text);
                text
            }),
        }
    }

    /// A [`Kind::Hash`] column's value (both dialects decode hashes as they read them).
    pub fn hash(&self) -> Option<Hash> {
        match self {
            Value::Hash(hash) => *hash,
            Value::Text(_) | Value::Integer(_) | Value::Instant(_) => None,
        }
    }

    pub fn integer(&self) -> Option<i64> {
        match self {
            Value::Integer(value) => *value,
            Value::Text(text) => text.as_deref().and_then(|text| text.parse().ok()),
            Value::Instant(_) | Value::Hash(_) => None,
        }
    }

    pub fn micros(&self) -> Option<i64> {
        match self {
            Value::Instant(micros) => *micros,
            Value::Text(text) => text.as_deref().and_then(codec::timestamp_micros),
            Value::Integer(_) | Value::Hash(_) => None,
        }
    }
}

/// Rows to stage: columns in the staging table's order.
pub(crate) struct StageBatch {
    pub columns: Vec<Cells>,
    pub rows: usize,
}
