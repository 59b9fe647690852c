//! One warehouse transaction, whichever the backend: statements, text reads, per-table locks
//! and bulk staging (PostgreSQL `COPY … FROM STDIN`, in binary when every column's type has a
//! binary form in [`super::binary`], else in CSV; SQLite batched multi-row inserts).

use sqlx::postgres::PgCopyIn;
use sqlx::{PgConnection, Postgres, Row, Sqlite, Transaction};

use super::Dialect;
use super::binary::{self, BinaryColumns, BinaryRows, Wire};
use super::text::{TextColumn, push_csv_field};
use crate::{Error, Result};

/// An open transaction.
pub(crate) enum Tx {
    Postgres(Transaction<'static, Postgres>),
    Sqlite(Transaction<'static, Sqlite>),
}

/// A column of a staged batch: from the curated file, computed per row, or one value.
pub(crate) enum Cells {
    Arrow(TextColumn),
    Texts(Vec<Option<String>>),
    Integers(Vec<Option<i64>>),
    /// Instants in microseconds since the epoch (fixed-width UTC text where text is sent).
    Instants(Vec<Option<i64>>),
    /// Row hashes: their 16 bytes to a `BYTEA` column (PostgreSQL), their 32 hex digits as text
    /// (SQLite; [`super::scd::push_hash_text`]).
    Hashes(Vec<super::scd::Hash>),
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
            Cells::Instants(values) => values[row].is_some_and(|micros| super::scd::push_micros_text(micros, out)),
            Cells::Hashes(hashes) => {
                super::scd::push_hash_text(hashes[row], out);
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
    /// A row hash as stored ([`super::scd::stored_hash`]), decoded without a text in between.
    Hash,
}

/// A value read by [`Tx::fetch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    Text(Option<String>),
    Integer(Option<i64>),
    /// Microseconds since the epoch.
    Instant(Option<i64>),
    Hash(Option<super::scd::Hash>),
}

impl Value {
    pub fn into_text(self) -> Option<String> {
        match self {
            Value::Text(text) => text,
            Value::Integer(value) => value.map(|value| value.to_string()),
            Value::Instant(micros) => {
                micros.and_then(chrono::DateTime::from_timestamp_micros).map(super::scd::timestamp_text)
            }
            Value::Hash(hash) => hash.map(|hash| {
                let mut text = String::with_capacity(32);
                super::scd::push_hash_text(hash, &mut text);
                text
            }),
        }
    }

    /// A [`Kind::Hash`] column's value (both dialects decode hashes as they read them).
    pub fn hash(&self) -> Option<super::scd::Hash> {
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
            Value::Text(text) => text.as_deref().and_then(super::scd::timestamp_micros),
            Value::Integer(_) | Value::Hash(_) => None,
        }
    }
}

/// Rows to stage: columns in the staging table's order.
pub(crate) struct StageBatch {
    pub columns: Vec<Cells>,
    pub rows: usize,
}

/// Makes the batches to stage, on a thread of its own ([`Tx::stage_from`]).
pub(crate) trait Producer: Send + 'static {
    /// The next batch, `None` when done.
    fn next_batch(&mut self) -> Option<Result<StageBatch>>;
}

/// What the producing thread hands over: rows encoded for PostgreSQL's `COPY`, rows for SQLite.
enum Chunk {
    Encoded(Vec<u8>, usize),
    Rows(StageBatch),
}

/// The format of PostgreSQL's `COPY … FROM STDIN`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyFormat {
    /// Each value in its column's binary form when every column's type has one here, else CSV.
    Binary,
    /// CSV text, every value quoted, parsed by the server.
    Csv,
}

/// How a `COPY … FROM STDIN` runs: its format, and whether the rows are written frozen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CopyOptions {
    pub format: CopyFormat,
    /// `FREEZE`: the rows are written as if vacuumed, so no later read sets their hint bits
    /// (with `psql`, a tenth of a 200 000-row dimension copy, and a quarter of the first read
    /// after it). PostgreSQL allows it only into a table created or emptied in the same
    /// transaction ([`super::bulk::set_aside`]).
    pub freeze: bool,
}

impl CopyOptions {
    pub(crate) const BINARY: CopyOptions = CopyOptions { format: CopyFormat::Binary, freeze: false };
}

/// How one `COPY`'s rows are encoded.
#[derive(Debug, Clone)]
pub(crate) enum Encoding {
    Csv,
    Binary(std::sync::Arc<BinaryColumns>),
}

impl Encoding {
    /// Appends `batch`'s rows to `out`.
    fn encode(&self, batch: &StageBatch, out: &mut Vec<u8>) -> Result<()> {
        match self {
            Encoding::Csv => {
                encode_csv(batch, out);
                Ok(())
            }
            Encoding::Binary(columns) => columns.encode(batch, out),
        }
    }
}

/// Appends `batch` as CSV rows (every value quoted, nulls empty) to `out`. Row hashes go to
/// `BYTEA` columns, in its hex input form (`\x` and the digits).
fn encode_csv(batch: &StageBatch, out: &mut Vec<u8>) {
    let mut value = String::new();
    let mut text = String::new();
    for row in 0..batch.rows {
        for (index, column) in batch.columns.iter().enumerate() {
            if index > 0 {
                text.push(',');
            }
            value.clear();
            if let Cells::Hashes(_) = column {
                value.push_str("\\x");
            }
            if column.write(row, &mut value) {
                push_csv_field(Some(&value), &mut text);
            }
        }
        text.push('\n');
    }
    out.extend_from_slice(text.as_bytes());
}

/// An open bulk load into a staging table.
pub(crate) enum Stager<'a> {
    Postgres { copy: PgCopyIn<&'a mut PgConnection>, encoding: Encoding, buffer: Vec<u8> },
    Sqlite { tx: &'a mut Transaction<'static, Sqlite>, table: String, columns: Vec<String>, staged: u64 },
}

/// SQLite's limit on bound parameters per statement is 32 766.
const SQLITE_BINDS: usize = 30_000;

impl Stager<'_> {
    /// Sends one batch.
    pub async fn send(&mut self, batch: &StageBatch) -> Result<()> {
        match self {
            Stager::Postgres { copy, encoding, buffer } => {
                buffer.clear();
                encoding.encode(batch, buffer)?;
                copy.send(buffer.as_slice()).await.map_err(|error| Error::database("staging rows with COPY", error))?;
                Ok(())
            }
            Stager::Sqlite { tx, table, columns, staged } => {
                let per_statement = (SQLITE_BINDS / columns.len().max(1)).clamp(1, 2_000);
                let names = columns.join(", ");
                let mut start = 0;
                while start < batch.rows {
                    let end = (start + per_statement).min(batch.rows);
                    let placeholder = format!("({})", vec!["?"; columns.len()].join(", "));
                    let statement = format!(
                        "INSERT INTO {table} ({names}) VALUES {}",
                        vec![placeholder.as_str(); end - start].join(", ")
                    );
                    let mut query = sqlx::query(sqlx::AssertSqlSafe(statement));
                    for row in start..end {
                        for column in &batch.columns {
                            query = query.bind(column.text(row));
                        }
                    }
                    query.execute(&mut ***tx).await.map_err(|error| Error::database("staging rows", error))?;
                    *staged += (end - start) as u64;
                    start = end;
                }
                Ok(())
            }
        }
    }

    /// How this load's rows are encoded (`None` for SQLite, which binds them).
    fn encoding(&self) -> Option<Encoding> {
        match self {
            Stager::Postgres { encoding, .. } => Some(encoding.clone()),
            Stager::Sqlite { .. } => None,
        }
    }

    /// Sends rows already encoded by [`Stager::encoding`] (PostgreSQL only).
    async fn send_encoded(&mut self, rows: &[u8]) -> Result<()> {
        match self {
            Stager::Postgres { copy, .. } => {
                copy.send(rows).await.map(|_| ()).map_err(|error| Error::database("staging rows with COPY", error))
            }
            Stager::Sqlite { .. } => Err(Error::WarehouseLoad("encoded rows cannot be staged into SQLite".to_string())),
        }
    }

    /// Abandons the load (the transaction is rolled back to its savepoint by the caller).
    pub async fn abort(self) {
        if let Stager::Postgres { copy, .. } = self {
            let _ = copy.abort("Lakestar abandons this COPY").await;
        }
    }

    /// Ends the load; returns the rows staged.
    pub async fn finish(self) -> Result<u64> {
        match self {
            Stager::Postgres { mut copy, encoding, .. } => {
                if let Encoding::Binary(_) = encoding {
                    copy.send(binary::TRAILER.as_slice())
                        .await
                        .map_err(|error| Error::database("ending COPY into staging", error))?;
                }
                copy.finish().await.map_err(|error| Error::database("finishing COPY into staging", error))
            }
            Stager::Sqlite { staged, .. } => Ok(staged),
        }
    }
}

impl Tx {
    pub fn dialect(&self) -> Dialect {
        match self {
            Tx::Postgres(_) => Dialect::Postgres,
            Tx::Sqlite(_) => Dialect::Sqlite,
        }
    }

    /// Serialises this transaction against every other load of the same tables (PostgreSQL
    /// advisory transaction locks, taken in name order so two loads cannot deadlock). SQLite
    /// transactions begin `IMMEDIATE`, which already holds the database's write lock.
    pub async fn lock(&mut self, tables: &[&str]) -> Result<()> {
        let mut names: Vec<String> = tables.iter().map(|table| format!("lakestar:{table}")).collect();
        names.sort();
        names.dedup();
        if let Tx::Postgres(tx) = self {
            // Room for the merge's hash joins and sorts, and no JIT: the merge's correlated
            // fallbacks inflate the estimated cost, and compiling the plan took longer than
            // running it (half of a 100 000-row fact load). For this transaction only.
            for setting in ["SET LOCAL work_mem = '128MB'", "SET LOCAL jit = off"] {
                sqlx::query(setting)
                    .execute(&mut **tx)
                    .await
                    .map_err(|error| Error::database("tuning the load's session", error))?;
            }
            for name in names {
                sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
                    .bind(&name)
                    .execute(&mut **tx)
                    .await
                    .map_err(|error| Error::database(format!("waiting for the lock on {name}"), error))?;
            }
        }
        Ok(())
    }

    /// Runs a statement built from quoted contract identifiers and constants; `run_id` is
    /// bound wherever the statement says `$1`. Returns the rows affected.
    pub async fn execute(&mut self, what: &str, statement: String, run_id: Option<&str>) -> Result<u64> {
        let context = |error| Error::database(what, error);
        match self {
            Tx::Postgres(tx) => {
                let mut query = sqlx::query(sqlx::AssertSqlSafe(statement));
                if let Some(run_id) = run_id {
                    query = query.bind(run_id);
                }
                query.execute(&mut **tx).await.map(|done| done.rows_affected()).map_err(context)
            }
            Tx::Sqlite(tx) => {
                let mut query = sqlx::query(sqlx::AssertSqlSafe(statement));
                if let Some(run_id) = run_id {
                    query = query.bind(run_id);
                }
                query.execute(&mut **tx).await.map(|done| done.rows_affected()).map_err(context)
            }
        }
    }

    /// Reads rows whose every column the statement casts to text.
    pub async fn fetch_text(&mut self, what: &str, statement: String) -> Result<Vec<Vec<Option<String>>>> {
        let context = |error| Error::database(what, error);
        macro_rules! texts {
            ($rows:expr) => {{
                let mut out = Vec::with_capacity($rows.len());
                for row in $rows {
                    let mut values = Vec::with_capacity(row.len());
                    for index in 0..row.len() {
                        values.push(row.try_get::<Option<String>, _>(index).map_err(context)?);
                    }
                    out.push(values);
                }
                out
            }};
        }
        Ok(match self {
            Tx::Postgres(tx) => {
                let rows = sqlx::query(sqlx::AssertSqlSafe(statement)).fetch_all(&mut **tx).await.map_err(context)?;
                texts!(rows)
            }
            Tx::Sqlite(tx) => {
                let rows = sqlx::query(sqlx::AssertSqlSafe(statement)).fetch_all(&mut **tx).await.map_err(context)?;
                texts!(rows)
            }
        })
    }

    /// Reads rows whose columns are decoded as `kinds` say: instants and integers in their
    /// own types, without the server formatting them as text. `Text` columns must be text
    /// (the statement casts others). Each row goes to `each` as soon as its bytes arrive, so
    /// the caller builds its own structure while the server still sends, and the rows are
    /// never all held twice.
    pub async fn fetch_each(
        &mut self,
        what: &str,
        statement: String,
        kinds: &[Kind],
        mut each: impl FnMut(Vec<Value>) + Send,
    ) -> Result<()> {
        let context = |error| Error::database(what, error);
        match self {
            Tx::Postgres(tx) => {
                // Binary COPY: no text formatting on the server, no row objects here.
                let copy = format!("COPY ({statement}) TO STDOUT (FORMAT binary)");
                let mut stream = tx.copy_out_raw(&copy).await.map_err(context)?;
                let mut rows = BinaryRows::new(what, kinds);
                while let Some(chunk) = std::future::poll_fn(|cx| stream.as_mut().poll_next(cx)).await {
                    rows.push(&chunk.map_err(context)?)?;
                    rows.drain().for_each(&mut each);
                }
                rows.finish()?.into_iter().for_each(each);
                Ok(())
            }
            Tx::Sqlite(tx) => {
                let rows = sqlx::query(sqlx::AssertSqlSafe(statement)).fetch_all(&mut **tx).await.map_err(context)?;
                for row in rows {
                    let mut values = Vec::with_capacity(kinds.len());
                    for (index, kind) in kinds.iter().enumerate() {
                        values.push(match kind {
                            Kind::Text => Value::Text(row.try_get(index).map_err(context)?),
                            Kind::Integer => Value::Integer(row.try_get(index).map_err(context)?),
                            Kind::Instant => {
                                let text: Option<String> = row.try_get(index).map_err(context)?;
                                Value::Instant(text.as_deref().and_then(super::scd::timestamp_micros))
                            }
                            Kind::Hash => {
                                let text: Option<String> = row.try_get(index).map_err(context)?;
                                Value::Hash(text.as_deref().and_then(super::scd::hash_value))
                            }
                        });
                    }
                    each(values);
                }
                Ok(())
            }
        }
    }

    /// Reads one integer (cast to text by the statement).
    pub async fn fetch_count(&mut self, what: &str, statement: String) -> Result<i64> {
        let rows = self.fetch_text(what, statement).await?;
        rows.first()
            .and_then(|row| row.first().cloned().flatten())
            .and_then(|text| text.parse().ok())
            .ok_or_else(|| Error::WarehouseLoad(format!("{what}: the warehouse returned no number")))
    }

    /// Each of `columns` (quoted) of `table` with its binary form; `None` when one of them
    /// has a type Lakestar does not encode.
    async fn binary_columns(&mut self, table: &str, columns: &[String]) -> Result<Option<BinaryColumns>> {
        let types: std::collections::HashMap<String, String> = self
            .fetch_text(
                "reading the column types of a table to copy into",
                format!(
                    "SELECT CAST(a.attname AS TEXT), CAST(t.typname AS TEXT) FROM pg_attribute a \
                     JOIN pg_type t ON t.oid = a.atttypid \
                     WHERE a.attrelid = CAST('{}' AS regclass) AND a.attnum > 0 AND NOT a.attisdropped",
                    table.replace('\'', "''")
                ),
            )
            .await?
            .into_iter()
            .filter_map(|row| match row.as_slice() {
                [Some(name), Some(type_name)] => Some((name.clone(), type_name.clone())),
                _ => None,
            })
            .collect();
        let mut wires = Vec::with_capacity(columns.len());
        for column in columns {
            let name = column.trim_matches('"');
            let type_name = types.get(name).map_or("(unknown)", String::as_str);
            let Some(wire) = Wire::of(type_name) else {
                tracing::debug!(table = %table, column = %name, r#type = %type_name, "Copying as CSV: a column's type has no binary form here.");
                return Ok(None);
            };
            wires.push((name.to_string(), wire));
        }
        Ok(Some(BinaryColumns { table: table.to_string(), columns: wires }))
    }

    /// Starts a bulk load of `columns` (quoted) into the staging table `table`, in binary
    /// form when `options` ask for it and every column's type has one.
    pub async fn stager(&mut self, table: &str, columns: &[String], options: CopyOptions) -> Result<Stager<'_>> {
        let binary = match (self.dialect(), options.format) {
            (Dialect::Postgres, CopyFormat::Binary) => self.binary_columns(table, columns).await?,
            _ => None,
        };
        match self {
            Tx::Postgres(tx) => {
                let (encoding, name) = match binary {
                    Some(columns) => (Encoding::Binary(std::sync::Arc::new(columns)), "binary"),
                    None => (Encoding::Csv, "csv"),
                };
                let freeze = if options.freeze { ", FREEZE" } else { "" };
                let statement =
                    format!("COPY {table} ({}) FROM STDIN WITH (FORMAT {name}{freeze})", columns.join(", "));
                let mut copy = tx
                    .copy_in_raw(&statement)
                    .await
                    .map_err(|error| Error::database("starting COPY into staging", error))?;
                if let Encoding::Binary(_) = encoding {
                    copy.send(binary::header())
                        .await
                        .map_err(|error| Error::database("starting COPY into staging", error))?;
                }
                Ok(Stager::Postgres { copy, encoding, buffer: Vec::new() })
            }
            Tx::Sqlite(tx) => Ok(Stager::Sqlite { tx, table: table.to_string(), columns: columns.to_vec(), staged: 0 }),
        }
    }

    /// Stages what `producer` makes into `table` (`columns` quoted). The producer runs on a
    /// blocking thread, which also encodes the rows for PostgreSQL's `COPY`, one batch ahead of
    /// the one travelling: reading Parquet, looking keys up and the database's work overlap.
    /// Returns the producer (with whatever it gathered) and the rows staged or the error that
    /// stopped the staging; an `Err` only when the producing thread itself failed.
    pub async fn stage_from<P: Producer>(
        &mut self,
        table: &str,
        columns: &[String],
        producer: P,
    ) -> Result<(P, Result<u64>)> {
        self.stage_from_as(table, columns, producer, CopyOptions::BINARY).await
    }

    /// [`Tx::stage_from`] with chosen `COPY` options.
    pub async fn stage_from_as<P: Producer>(
        &mut self,
        table: &str,
        columns: &[String],
        mut producer: P,
        options: CopyOptions,
    ) -> Result<(P, Result<u64>)> {
        let mut stager = match self.stager(table, columns, options).await {
            Ok(stager) => stager,
            Err(error) => return Ok((producer, Err(error))),
        };
        let encoding = stager.encoding();
        let (sender, mut receiver) = tokio::sync::mpsc::channel::<Result<Chunk>>(2);
        let worker = tokio::task::spawn_blocking(move || {
            // Each batch's buffer is sized from the last one's bytes per row, so it is not
            // grown (and copied) a few times over as it fills.
            let mut row_bytes = 64;
            while let Some(next) = producer.next_batch() {
                let chunk = next.and_then(|batch| match &encoding {
                    Some(encoding) => {
                        let mut out = Vec::with_capacity(batch.rows * row_bytes + row_bytes);
                        encoding.encode(&batch, &mut out)?;
                        row_bytes = row_bytes.max(out.len() / batch.rows.max(1) + 8);
                        Ok(Chunk::Encoded(out, batch.rows))
                    }
                    None => Ok(Chunk::Rows(batch)),
                });
                let failed = chunk.is_err();
                if sender.blocking_send(chunk).is_err() || failed {
                    break;
                }
            }
            producer
        });
        let mut staged = 0u64;
        let mut outcome = Ok(());
        while let Some(chunk) = receiver.recv().await {
            let sent = match chunk {
                Ok(Chunk::Encoded(bytes, rows)) => stager.send_encoded(&bytes).await.map(|()| rows),
                Ok(Chunk::Rows(batch)) => stager.send(&batch).await.map(|()| batch.rows),
                Err(error) => Err(error),
            };
            match sent {
                Ok(rows) => staged += rows as u64,
                Err(error) => {
                    outcome = Err(error);
                    break;
                }
            }
        }
        // A producer still running stops at its next hand-over.
        drop(receiver);
        let producer =
            worker.await.map_err(|error| Error::WarehouseLoad(format!("the staging thread failed: {error}")))?;
        let result = match outcome {
            Ok(()) => stager.finish().await.map(|_| staged),
            Err(error) => {
                stager.abort().await;
                Err(error)
            }
        };
        Ok((producer, result))
    }

    /// Gives the planner the staged table's statistics (temporary tables get none on their
    /// own), so the merge joins hash instead of looping.
    pub async fn analyze(&mut self, table: &str) -> Result<()> {
        self.execute("analysing a staging table", format!("ANALYZE {table}"), None).await.map(|_| ())
    }

    /// Creates a temporary table for this transaction only.
    pub async fn create_temp(&mut self, table: &str, definitions: &[String]) -> Result<()> {
        let statement = match self.dialect() {
            Dialect::Postgres => format!("CREATE TEMP TABLE {table} ({}) ON COMMIT DROP", definitions.join(", ")),
            Dialect::Sqlite => {
                self.execute("dropping a leftover staging table", format!("DROP TABLE IF EXISTS temp.{table}"), None)
                    .await?;
                format!("CREATE TEMP TABLE {table} ({})", definitions.join(", "))
            }
        };
        self.execute("creating a staging table", statement, None).await.map(|_| ())
    }

    /// Drops temporary tables once a step is done with them (PostgreSQL would only at commit).
    pub async fn drop_temp(&mut self, tables: &[&str]) -> Result<()> {
        for table in tables {
            let statement = match self.dialect() {
                Dialect::Postgres => format!("DROP TABLE IF EXISTS pg_temp.{table}"),
                Dialect::Sqlite => format!("DROP TABLE IF EXISTS temp.{table}"),
            };
            self.execute("dropping a staging table", statement, None).await?;
        }
        Ok(())
    }

    /// Commits.
    pub async fn commit(self) -> Result<()> {
        match self {
            Tx::Postgres(tx) => tx.commit().await,
            Tx::Sqlite(tx) => tx.commit().await,
        }
        .map_err(|error| Error::database("committing the load", error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows_quote_every_value_and_spell_hashes_as_bytea_hex() {
        let batch = StageBatch {
            columns: vec![Cells::Texts(vec![Some("a \"b\"".to_string()), None]), Cells::Hashes(vec![0xabc, u128::MAX])],
            rows: 2,
        };
        let mut out = Vec::new();
        encode_csv(&batch, &mut out);
        let expected = format!("\"a \"\"b\"\"\",\"\\x{}abc\"\n,\"\\x{}\"\n", "0".repeat(29), "f".repeat(32));
        assert_eq!(String::from_utf8(out).expect("UTF-8"), expected);
    }
}
