//! Bulk staging into a transaction: PostgreSQL `COPY … FROM STDIN`, in binary when every
//! column's type has a binary form in [`super::binary`], else in CSV; SQLite batched
//! multi-row inserts. Rows are made on a producing thread one batch ahead of the database.

use sqlx::postgres::PgCopyIn;
use sqlx::{PgConnection, Sqlite, Transaction};

use super::Dialect;
use super::binary::{self, BinaryColumns, Wire};
use super::cells::{Cells, StageBatch};
use super::text::push_csv_field;
use super::tx::Tx;
use crate::{Error, Result};

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
                            query = column.bind_sqlite(query, row);
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
            Stager::Sqlite { .. } => Err(Error::Internal("encoded rows cannot be staged into SQLite".to_string())),
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
        let producer = worker.await.map_err(|error| Error::Internal(format!("the staging thread failed: {error}")))?;
        let result = match outcome {
            Ok(()) => stager.finish().await.map(|_| staged),
            Err(error) => {
                stager.abort().await;
                Err(error)
            }
        };
        Ok((producer, result))
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
