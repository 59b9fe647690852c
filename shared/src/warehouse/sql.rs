//! The SQL a load builds: what differs between the dialects, join conditions, the star-table
//! names of a dataset's columns, natural keys read back, and the highest surrogate key.

use super::cells::Value;
use super::ddl::{Dialect, quote};
use super::tx::Tx;
use crate::Result;
use crate::contract::Dataset;

/// SQL fragments that differ between the dialects.
pub(super) struct Sql {
    pub(super) dialect: Dialect,
}

impl Sql {
    /// Null-safe inequality.
    pub(super) fn differs(&self, left: &str, right: &str) -> String {
        match self.dialect {
            Dialect::Postgres => format!("{left} IS DISTINCT FROM {right}"),
            Dialect::Sqlite => format!("{left} IS NOT {right}"),
        }
    }

    /// A boolean column as the integer 1 or 0.
    pub(super) fn flag_integer(&self, column: &str) -> String {
        match self.dialect {
            Dialect::Postgres => format!("CASE WHEN {column} THEN 1 ELSE 0 END"),
            Dialect::Sqlite => format!("CAST({column} AS INTEGER)"),
        }
    }

    pub(super) fn key_type(&self) -> &'static str {
        match self.dialect {
            Dialect::Postgres => "BIGINT",
            Dialect::Sqlite => "INTEGER",
        }
    }

    pub(super) fn timestamp_type(&self) -> &'static str {
        match self.dialect {
            Dialect::Postgres => "TIMESTAMPTZ",
            Dialect::Sqlite => "TEXT",
        }
    }

    pub(super) fn boolean_type(&self) -> &'static str {
        match self.dialect {
            Dialect::Postgres => "BOOLEAN",
            Dialect::Sqlite => "INTEGER",
        }
    }
}

/// `a = b AND …` over pairs of qualified columns.
pub(super) fn join_on(pairs: impl IntoIterator<Item = (String, String)>) -> String {
    pairs.into_iter().map(|(left, right)| format!("{left} = {right}")).collect::<Vec<_>>().join(" AND ")
}

/// The star-table names of the dataset's columns, and the natural key's.
pub(super) struct Names {
    pub(super) data: Vec<String>,
    pub(super) natural_key: Vec<String>,
}

impl Names {
    pub(super) fn of(dataset: &Dataset) -> Names {
        let data = dataset.columns.iter().map(|column| column.target_name().to_string()).collect();
        let natural_key = dataset
            .table
            .natural_key
            .iter()
            .map(|name| dataset.column(name).map_or(name.clone(), |column| column.target_name().to_string()))
            .collect();
        Names { data, natural_key }
    }
}

pub(super) fn quoted(names: &[String]) -> Result<Vec<String>> {
    names.iter().map(|name| quote(name)).collect()
}

/// ` WHERE EXISTS …`: the rows of `d` whose natural key (quoted columns) is in `staged`.
pub(super) fn where_staged(staged: &str, natural_key: &[String]) -> String {
    let matches = join_on(natural_key.iter().map(|column| (format!("s.{column}"), format!("d.{column}"))));
    format!(" WHERE EXISTS (SELECT 1 FROM {staged} s WHERE {matches})")
}

/// The natural key text of values read back (parts joined by U+001F, null parts empty).
pub(super) fn natural_text(parts: impl Iterator<Item = Value>) -> String {
    let mut parts = parts.map(|part| part.into_text().unwrap_or_default());
    // The first part is taken as it is: a one-column key costs no copy.
    let mut natural = parts.next().unwrap_or_default();
    for part in parts {
        natural.push('\u{1f}');
        natural.push_str(&part);
    }
    natural
}

/// The highest surrogate key (quoted `key`) of `table`, 0 when it is empty.
pub(super) async fn highest_key(tx: &mut Tx, table: &str, key: &str) -> Result<i64> {
    tx.fetch_count(
        &format!("reading the highest key of {table}"),
        format!("SELECT CAST(COALESCE(MAX({key}), 0) AS TEXT) FROM {table}"),
    )
    .await
}
