//! PostgreSQL and MySQL sources: one read-only, repeatable-read transaction per extraction,
//! rows streamed as JSON objects the database renders itself (decimals with their digits,
//! timestamps in ISO 8601 with their zone in UTC), ordered by the cursor then the row's text
//! so that a resumed extraction writes the same pages.

use futures_util::TryStreamExt;
use sqlx::{AssertSqlSafe, Column, ConnectOptions, Executor, SqlSafeStr, Statement, TypeInfo};

use super::pages::Pages;
use super::{Batch, Extraction, Extractor, Options, Outcome, SourceState, range_name, refused, shown, unavailable};
use crate::contract::source::{CursorType, Read, Source, SourceKind};
use crate::{Error, Result};

/// One dialect's SQL for a source, each statement with what its parameters are bound to.
struct Plan {
    /// The greatest cursor value beyond the watermark.
    max: Option<(String, Vec<Bind>)>,
    /// The rows in the range.
    rows: (String, Vec<Bind>),
}

/// What a parameter is bound to.
#[derive(Debug, Clone, Copy)]
enum Bind {
    /// The watermark the extraction starts after.
    From,
    /// The watermark less the lookback.
    Lower,
    /// The greatest cursor value the extraction reads.
    Upper,
}

pub(super) async fn extract(
    extractor: &Extractor,
    source: &Source,
    state: &mut SourceState,
    options: &Options,
) -> Result<Extraction> {
    let url = extractor.credential(source).await?.unwrap_or_default();
    match source.kind {
        SourceKind::Postgres => {
            let sql = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET LOCAL TIME ZONE 'UTC'";
            let mut connection = snapshot::<sqlx::postgres::PgConnectOptions>(source, &url, sql).await?;
            let key = postgres_key(source, &mut connection, &url).await?;
            let plan = postgres_plan(source, &key);
            let extraction =
                run::<sqlx::Postgres>(extractor, source, state, options, &url, &plan, &mut connection).await?;
            sqlx::Connection::close(connection).await.map_err(|error| failure(source, &url, "closing", error))?;
            Ok(extraction)
        }
        SourceKind::Mysql => {
            let sql = "SET SESSION time_zone = '+00:00'; SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ; START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY";
            let mut connection = snapshot::<sqlx::mysql::MySqlConnectOptions>(source, &url, sql).await?;
            let key = mysql_key(source, &mut connection, &url).await?;
            let plan = mysql_plan(source, &key, &mut connection, &url).await?;
            let extraction =
                run::<sqlx::MySql>(extractor, source, state, options, &url, &plan, &mut connection).await?;
            sqlx::Connection::close(connection).await.map_err(|error| failure(source, &url, "closing", error))?;
            Ok(extraction)
        }
        SourceKind::Http => Err(Error::Internal("an HTTP source read as a database".to_string())),
    }
}

/// A connection to the source's database with the snapshot `sql` opens. Its statements are not
/// logged: a long read is the point, not a slow statement to warn of.
async fn snapshot<O>(source: &Source, url: &str, sql: &'static str) -> Result<O::Connection>
where
    O: ConnectOptions + std::str::FromStr<Err = sqlx::Error>,
    O::Connection: Sized,
    for<'c> &'c mut O::Connection: Executor<'c>,
{
    let connect = url.parse::<O>().map_err(|error| failure(source, url, "reading the URL", error))?;
    let mut connection = connect
        .disable_statement_logging()
        .connect()
        .await
        .map_err(|error| failure(source, url, "connecting", error))?;
    sqlx::raw_sql(sql)
        .execute(&mut connection)
        .await
        .map_err(|error| failure(source, url, "opening a snapshot", error))?;
    Ok(connection)
}

/// Plans the range, streams its rows into pages, and finishes the extraction.
async fn run<DB>(
    extractor: &Extractor,
    source: &Source,
    state: &mut SourceState,
    options: &Options,
    url: &str,
    plan: &Plan,
    connection: &mut DB::Connection,
) -> Result<Extraction>
where
    DB: sqlx::Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> <DB as sqlx::Database>::Arguments: sqlx::IntoArguments<DB>,
    String: for<'r> sqlx::Decode<'r, DB> + sqlx::Type<DB> + for<'q> sqlx::Encode<'q, DB>,
    Option<String>: for<'q> sqlx::Encode<'q, DB> + for<'r> sqlx::Decode<'r, DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
{
    if state.pending.is_none() {
        let from = state.watermark.clone().or_else(|| source.cursor.as_ref().and_then(|cursor| cursor.start.clone()));
        let to = match &plan.max {
            None => None,
            Some((max, binds)) => {
                let mut query = sqlx::query_scalar::<DB, Option<String>>(AssertSqlSafe(max.clone()));
                for _ in binds {
                    query = query.bind(bound(source, from.as_deref()));
                }
                let to = query
                    .fetch_one(&mut *connection)
                    .await
                    .map_err(|error| failure(source, url, "reading the cursor's greatest value", error))?;
                let Some(to) = to else {
                    return Ok(state.outcome(source, Outcome::NothingNew));
                };
                Some(to)
            }
        };
        let range = range_name(from.as_deref(), to.as_deref());
        state.pending = Some(Batch::new(range, from, to));
        extractor.save(state).await?;
    }
    let (from, to) = {
        let pending = state.pending.as_ref().ok_or_else(|| Error::Internal("no pending extraction".to_string()))?;
        (pending.from.clone(), pending.to.clone())
    };
    let lower = from.as_deref().map(|from| lowered(source, from));
    let mut pages = Pages::new(extractor, source, options.stop_after_pages, false);
    {
        let (sql, binds) = &plan.rows;
        let mut query = sqlx::query_scalar::<DB, String>(AssertSqlSafe(sql.clone()));
        for bind in binds {
            let value = match bind {
                Bind::From => from.as_deref(),
                Bind::Lower => lower.as_deref(),
                Bind::Upper => to.as_deref(),
            };
            query = query.bind(bound(source, value));
        }
        let mut rows = query.fetch(&mut *connection);
        while let Some(row) = rows.try_next().await.map_err(|error| failure(source, url, "reading rows", error))? {
            pages.push(state, &row).await?;
        }
    }
    pages.close(state).await?;
    let written = pages.written;
    extractor.finish(source, state, written).await
}

/// The lower bound less the lookback, as the cursor's text (the database subtracts nothing).
fn lowered(source: &Source, from: &str) -> String {
    let Some(cursor) = &source.cursor else { return from.to_string() };
    if cursor.lookback == 0 {
        return from.to_string();
    }
    match super::CursorValue::parse(cursor.cursor_type, from) {
        Some(value) => value.minus(cursor.lookback).text(),
        None => from.to_string(),
    }
}

/// A bound as the database is given it: MySQL takes timestamps without a zone (its session is
/// in UTC), PostgreSQL RFC 3339.
fn bound(source: &Source, value: Option<&str>) -> Option<String> {
    let value = value?;
    let timestamp = source.cursor.as_ref().is_some_and(|cursor| cursor.cursor_type == CursorType::Timestamp);
    if source.kind == SourceKind::Mysql
        && timestamp
        && let Ok(time) = chrono::DateTime::parse_from_rfc3339(value)
    {
        return Some(time.with_timezone(&chrono::Utc).format("%Y-%m-%d %H:%M:%S%.6f").to_string());
    }
    Some(value.to_string())
}

fn quote(name: &str, quote: char) -> String {
    format!("{quote}{name}{quote}")
}

fn body(source: &Source, quote_char: char) -> String {
    match &source.read {
        Read::Table { schema: Some(schema), table } => {
            format!("SELECT * FROM {}.{}", quote(schema, quote_char), quote(table, quote_char))
        }
        Read::Table { schema: None, table } => format!("SELECT * FROM {}", quote(table, quote_char)),
        Read::Query(query) => query.clone(),
        Read::Http(_) => String::new(),
    }
}

/// The order that makes pages the same on every read: the table's primary key when it has
/// one (an index scan, no sort), else the row's own text.
fn tie_break(key: &[String], quote_char: char) -> String {
    if key.is_empty() {
        "1".to_string()
    } else {
        key.iter()
            .map(|column| format!("q.{}", quote(&column.replace(quote_char, ""), quote_char)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A table source's primary key columns, in order; none for a query or a table without one.
async fn postgres_key(source: &Source, connection: &mut sqlx::PgConnection, url: &str) -> Result<Vec<String>> {
    let Read::Table { schema, table } = &source.read else { return Ok(Vec::new()) };
    let name = match schema {
        Some(schema) => format!("{}.{}", quote(schema, '"'), quote(table, '"')),
        None => quote(table, '"'),
    };
    let sql = "SELECT a.attname::text FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) \
               WHERE i.indrelid = CAST($1 AS regclass) AND i.indisprimary ORDER BY array_position(i.indkey, a.attnum)";
    sqlx::query_scalar::<_, String>(sql)
        .bind(name)
        .fetch_all(connection)
        .await
        .map_err(|error| failure(source, url, "reading the table's primary key", error))
}

/// [`postgres_key`] for MySQL.
async fn mysql_key(source: &Source, connection: &mut sqlx::MySqlConnection, url: &str) -> Result<Vec<String>> {
    let Read::Table { schema, table } = &source.read else { return Ok(Vec::new()) };
    let sql = "SELECT CAST(COLUMN_NAME AS CHAR) FROM information_schema.KEY_COLUMN_USAGE \
               WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ? AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY ORDINAL_POSITION";
    sqlx::query_scalar::<_, String>(sql)
        .bind(schema.clone())
        .bind(table.clone())
        .fetch_all(connection)
        .await
        .map_err(|error| failure(source, url, "reading the table's primary key", error))
}

fn postgres_plan(source: &Source, key: &[String]) -> Plan {
    let body = body(source, '"');
    let row = "row_to_json(q)::text";
    let order = tie_break(key, '"');
    let Some(cursor) = &source.cursor else {
        return Plan { max: None, rows: (format!("SELECT {row} FROM ({body}) q ORDER BY {order}"), Vec::new()) };
    };
    let column = format!("q.{}", quote(&cursor.name, '"'));
    let cast = match cursor.cursor_type {
        CursorType::Integer => "bigint",
        CursorType::Timestamp => "timestamptz",
        CursorType::Date => "date",
    };
    Plan {
        max: Some((
            format!(
                "SELECT to_json(max({column}))#>>'{{}}' FROM ({body}) q WHERE $1::text IS NULL OR {column} > CAST($1 AS {cast})"
            ),
            vec![Bind::From],
        )),
        rows: (
            format!(
                "SELECT {row} FROM ({body}) q WHERE ($1::text IS NULL OR {column} > CAST($1 AS {cast})) AND {column} <= CAST($2 AS {cast}) ORDER BY {column}, {order}"
            ),
            vec![Bind::Lower, Bind::Upper],
        ),
    }
}

/// MySQL has no `row_to_json`: the columns are read from the prepared query, then each is
/// rendered into `JSON_OBJECT` (timestamps formatted as ISO 8601, `TIMESTAMP`s with `Z`).
async fn mysql_plan(
    source: &Source,
    key: &[String],
    connection: &mut sqlx::MySqlConnection,
    url: &str,
) -> Result<Plan> {
    let body = body(source, '`');
    let order = tie_break(key, '`');
    let probe = AssertSqlSafe(format!("SELECT * FROM ({body}) q LIMIT 0")).into_sql_str();
    let statement =
        connection.prepare(probe).await.map_err(|error| failure(source, url, "reading the columns", error))?;
    let mut members = Vec::new();
    for column in statement.columns() {
        let name = column.name();
        let reference = format!("q.{}", quote(&name.replace('`', "``"), '`'));
        let value = match column.type_info().name() {
            "TIMESTAMP" => format!("DATE_FORMAT({reference}, '%Y-%m-%dT%H:%i:%s.%fZ')"),
            "DATETIME" => format!("DATE_FORMAT({reference}, '%Y-%m-%dT%H:%i:%s.%f')"),
            _ => reference,
        };
        members.push(format!("'{}', {value}", name.replace('\\', "\\\\").replace('\'', "''")));
    }
    if members.is_empty() {
        return Err(refused(source, format!("{}: the query has no columns", shown(url))));
    }
    let row = format!("CAST(JSON_OBJECT({}) AS CHAR)", members.join(", "));
    let Some(cursor) = &source.cursor else {
        return Ok(Plan { max: None, rows: (format!("SELECT {row} FROM ({body}) q ORDER BY {order}"), Vec::new()) });
    };
    let column = format!("q.{}", quote(&cursor.name, '`'));
    let cast = match cursor.cursor_type {
        CursorType::Integer => "SIGNED",
        CursorType::Timestamp => "DATETIME(6)",
        CursorType::Date => "DATE",
    };
    let greatest = match cursor.cursor_type {
        CursorType::Timestamp => format!("DATE_FORMAT(MAX({column}), '%Y-%m-%d %H:%i:%s.%f')"),
        _ => format!("CAST(MAX({column}) AS CHAR)"),
    };
    Ok(Plan {
        max: Some((
            format!("SELECT {greatest} FROM ({body}) q WHERE ? IS NULL OR {column} > CAST(? AS {cast})"),
            vec![Bind::From, Bind::From],
        )),
        rows: (
            format!(
                "SELECT {row} FROM ({body}) q WHERE (? IS NULL OR {column} > CAST(? AS {cast})) AND {column} <= CAST(? AS {cast}) ORDER BY {column}, {order}"
            ),
            vec![Bind::Lower, Bind::Lower, Bind::Upper],
        ),
    })
}

/// A database error as the source's: passing (the network, a server starting, a conflict)
/// or refused (credentials, a missing table, SQL the database rejects).
fn failure(source: &Source, url: &str, step: &str, error: sqlx::Error) -> Error {
    let transient = match &error {
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolTimedOut | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(database) => {
            database
                .code()
                .is_some_and(|code| ["08", "40", "53", "57", "HY"].iter().any(|class| code.starts_with(class)))
                && !database.message().contains("denied")
        }
        _ => false,
    };
    let message = format!("{} ({step}): {}", shown(url), crate::error_chain(&error));
    if transient { unavailable(source, message) } else { refused(source, message) }
}
