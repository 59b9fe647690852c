//! Bulk loads into an empty table, as bulk loaders do: the table's keys and indexes are set
//! aside, the rows copied in, and the keys and indexes built again afterwards: one sort each
//! instead of an index insertion per row (PostgreSQL; a first load, a backfill, the inferred
//! members a first fact delivery creates).
//!
//! All of it runs inside the load's transaction: a failure anywhere restores the table as it
//! was, and the rebuilt keys check the copied rows (a duplicate fails the load by name).

use super::cells::{Cells, StageBatch};
use super::ddl::{self, Dialect, quote};
use super::staging::{CopyFormat, CopyOptions, Producer};
use super::text::TextColumn;
use super::tx::Tx;
use super::{Warehouse, catalog, curated};
use crate::{Error, Result};

/// What to run to build a table's keys and indexes again after a bulk copy, and how to copy.
#[derive(Debug, Default)]
pub(crate) struct SetAside {
    /// The key's or index's name, and the statement that builds it.
    rebuild: Vec<(String, String)>,
    /// The same for foreign keys, built after the keys they point at.
    foreign_keys: Vec<(String, String)>,
    /// Emptied (`TRUNCATE`) in this transaction, so the copy may write its rows frozen.
    truncated: bool,
}

impl SetAside {
    /// How to copy into the table: binary, and frozen when it was emptied in this transaction.
    pub(crate) fn copy_options(&self) -> CopyOptions {
        CopyOptions { freeze: self.truncated, ..CopyOptions::BINARY }
    }

    /// Nothing was set aside (the table holds rows, or has no key or index to set aside).
    pub(crate) fn is_empty(&self) -> bool {
        self.rebuild.is_empty() && self.foreign_keys.is_empty()
    }

    /// Builds the keys and indexes again, then the foreign keys.
    pub(crate) async fn rebuild(self, tx: &mut Tx) -> Result<()> {
        for (name, statement) in self.rebuild.into_iter().chain(self.foreign_keys) {
            let what = format!("building {name} again after copying into the empty table");
            tx.execute(&what, statement, None).await?;
        }
        Ok(())
    }

    /// Drops the constraints `rows` lists (their table as the catalog renders it, quoted where
    /// it needs it; name; definition), noting how to add them again.
    async fn constraints(&mut self, tx: &mut Tx, rows: Vec<Vec<Option<String>>>, foreign: bool) -> Result<()> {
        for row in rows {
            if let [Some(owner), Some(name), Some(definition)] = row.as_slice() {
                let name = quote(name)?;
                let drop = format!("ALTER TABLE {owner} DROP CONSTRAINT {name}");
                tx.execute("setting a key aside for a bulk copy", drop, None).await?;
                let add = (name.clone(), format!("ALTER TABLE {owner} ADD CONSTRAINT {name} {definition}"));
                if foreign { self.foreign_keys.push(add) } else { self.rebuild.push(add) }
            }
        }
        Ok(())
    }

    /// Drops the indexes `rows` lists (name as the catalog renders it; definition), noting
    /// how to build them again.
    async fn indexes(&mut self, tx: &mut Tx, rows: Vec<Vec<Option<String>>>) -> Result<()> {
        for row in rows {
            if let [Some(name), Some(definition)] = row.as_slice() {
                tx.execute("setting an index aside for a bulk copy", format!("DROP INDEX {name}"), None).await?;
                self.rebuild.push((name.clone(), definition.clone()));
            }
        }
        Ok(())
    }
}

/// `table` (quoted) as a `regclass` in a catalog query.
fn relation(table: &str) -> String {
    format!("CAST('{}' AS regclass)", table.replace('\'', "''"))
}

/// The foreign keys of `relation` and, with `into`, those of other tables into it, as
/// (owning table, name, definition).
async fn foreign_keys(tx: &mut Tx, relation: &str, into: bool) -> Result<Vec<Vec<Option<String>>>> {
    let into = if into { format!(" OR c.confrelid = {relation}") } else { String::new() };
    tx.fetch_text(
        "reading the table's foreign keys",
        format!(
            "SELECT CAST(CAST(c.conrelid AS regclass) AS TEXT), CAST(c.conname AS TEXT), pg_get_constraintdef(c.oid) \
             FROM pg_constraint c WHERE c.contype = 'f' AND (c.conrelid = {relation}{into}) ORDER BY 1, 2"
        ),
    )
    .await
}

/// The indexes of `relation` that back no constraint (with `unique`, unique ones too), as
/// (name, definition).
async fn indexes(tx: &mut Tx, relation: &str, unique: bool) -> Result<Vec<Vec<Option<String>>>> {
    let unique = if unique { "" } else { "AND NOT i.indisunique " };
    tx.fetch_text(
        "reading the table's indexes",
        format!(
            "SELECT CAST(CAST(i.indexrelid AS regclass) AS TEXT), pg_get_indexdef(i.indexrelid) FROM pg_index i \
             WHERE i.indrelid = {relation} {unique}\
             AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid) ORDER BY 1"
        ),
    )
    .await
}

/// Sets aside the keys and indexes of `table` (quoted) when it is empty on PostgreSQL: the
/// foreign keys into it and its own (checked row by row they make a copy nine times slower,
/// built again they are one join), its primary key and unique constraints, and every other
/// index. An ordinary table is also emptied again (`TRUNCATE`, instant on an empty table,
/// under the same exclusive lock the dropped keys take), which lets the copy write its rows
/// frozen. Returns what builds the keys and indexes again and how to copy.
pub(crate) async fn set_aside(tx: &mut Tx, table: &str) -> Result<SetAside> {
    if tx.count_up_to(table, 1).await? > 0 {
        return Ok(SetAside::default());
    }
    if tx.dialect() == Dialect::Sqlite {
        return set_aside_sqlite_indexes(tx, table, true).await;
    }
    let relation = relation(table);
    let mut set_aside = SetAside::default();
    // The foreign keys first: the keys they point at cannot be dropped under them.
    let foreign = foreign_keys(tx, &relation, true).await?;
    set_aside.constraints(tx, foreign, true).await?;
    let keys = tx
        .fetch_text(
            "reading the table's keys",
            format!(
                "SELECT CAST(CAST(c.conrelid AS regclass) AS TEXT), CAST(c.conname AS TEXT), pg_get_constraintdef(c.oid) \
                 FROM pg_constraint c WHERE c.conrelid = {relation} AND c.contype IN ('p', 'u') \
                 AND NOT EXISTS (SELECT 1 FROM pg_constraint f WHERE f.confrelid = c.conrelid) \
                 ORDER BY c.conname"
            ),
        )
        .await?;
    set_aside.constraints(tx, keys, false).await?;
    let indexes = indexes(tx, &relation, true).await?;
    set_aside.indexes(tx, indexes).await?;
    let truncatable = tx
        .fetch_count(
            "reading whether the table can be emptied",
            format!(
                "SELECT CAST(COUNT(*) AS TEXT) FROM pg_class r WHERE r.oid = {relation} AND r.relkind = 'r' \
                 AND NOT EXISTS (SELECT 1 FROM pg_constraint f WHERE f.confrelid = r.oid)"
            ),
        )
        .await?;
    if truncatable == 1 {
        tx.execute("emptying the table for a frozen copy", format!("TRUNCATE {table}"), None).await?;
        set_aside.truncated = true;
    }
    Ok(set_aside)
}

/// A SQLite table's indexes (with `unique`, its natural key's too; else only those into the
/// dimensions), dropped to be built again once the rows are in: SQLite's keys are indexes,
/// and one sort each is cheaper than an index insertion per row. A table's own `UNIQUE` and
/// `PRIMARY KEY` (indexes without a statement) stay.
async fn set_aside_sqlite_indexes(tx: &mut Tx, table: &str, unique: bool) -> Result<SetAside> {
    let name = table.trim_matches('"').replace('\'', "''");
    let unique = if unique { "" } else { " AND sql NOT LIKE 'CREATE UNIQUE %'" };
    let rows = tx
        .fetch_text(
            "reading the table's indexes",
            format!(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = '{name}' AND sql IS NOT NULL{unique} ORDER BY name"
            ),
        )
        .await?;
    let mut quoted = Vec::with_capacity(rows.len());
    for row in rows {
        if let [Some(index), Some(definition)] = row.as_slice() {
            quoted.push(vec![Some(quote(index)?), Some(definition.clone())]);
        }
    }
    let mut set_aside = SetAside::default();
    set_aside.indexes(tx, quoted).await?;
    Ok(set_aside)
}

/// How many of a table's rows an append must bring, per row the table holds, for its foreign
/// keys and secondary indexes to be set aside and built again rather than kept: a foreign key
/// checked per row and four key indexes made a million appended facts 3.5 times slower, and
/// building them again costs about a fifth of that per row of the whole table (measured with
/// `lakestar-bench load`).
const APPEND_SET_ASIDE_SHARE: u64 = 4;

/// Sets aside the foreign keys and the secondary indexes (not the primary key or unique
/// constraints, which find facts loaded before) of `table` (quoted; in SQLite its non-unique
/// indexes) when the
/// `incoming` rows are a quarter of what it holds or more ([`APPEND_SET_ASIDE_SHARE`]).
/// Readers of the table then wait for the load's commit, as for a first load.
pub(crate) async fn set_aside_for_append(tx: &mut Tx, table: &str, incoming: u64) -> Result<SetAside> {
    if incoming == 0 {
        return Ok(SetAside::default());
    }
    let limit = incoming.saturating_mul(APPEND_SET_ASIDE_SHARE).saturating_add(1);
    if tx.count_up_to(table, limit).await? >= limit {
        return Ok(SetAside::default());
    }
    // SQLite: the indexes into the dimensions; its natural key's index finds facts loaded before.
    if tx.dialect() == Dialect::Sqlite {
        return set_aside_sqlite_indexes(tx, table, false).await;
    }
    let relation = relation(table);
    let mut set_aside = SetAside::default();
    let indexes = indexes(tx, &relation, false).await?;
    set_aside.indexes(tx, indexes).await?;
    let foreign = foreign_keys(tx, &relation, false).await?;
    set_aside.constraints(tx, foreign, true).await?;
    Ok(set_aside)
}

impl Warehouse {
    /// A bare bulk copy of Parquet files into an existing table, matching columns by name:
    /// `COPY` in `format` on PostgreSQL, batched inserts on SQLite, one transaction, no merge.
    /// The load benchmark's baseline, and a quick way to pull a curated table into a scratch
    /// table.
    pub async fn bulk_copy(&self, table: &str, files: Vec<std::fs::File>, format: CopyFormat) -> Result<u64> {
        let mut tx = self.begin().await?;
        let columns: Vec<String> =
            catalog::existing_columns(&mut tx, table).await?.into_iter().map(|(name, _)| name).collect();
        if columns.is_empty() {
            return Err(Error::WarehouseSchema {
                table: table.to_string(),
                column: None,
                message: "does not exist, so nothing can be bulk-copied into it".to_string(),
            });
        }
        let quoted: Vec<String> = columns.iter().map(|name| ddl::quote(name)).collect::<Result<_>>()?;
        let rows = CopiedRows { batches: Box::new(curated::batches(files, None)), columns };
        let options = CopyOptions { format, freeze: false };
        let (_, copied) = tx.stage_from_as(&ddl::quote(table)?, &quoted, rows, options).await?;
        let copied = copied?;
        tx.commit().await?;
        Ok(copied)
    }
}

/// Curated rows as they are, for [`Warehouse::bulk_copy`].
struct CopiedRows {
    batches: Box<dyn Iterator<Item = Result<arrow::array::RecordBatch>> + Send>,
    columns: Vec<String>,
}

impl Producer for CopiedRows {
    fn next_batch(&mut self) -> Option<Result<StageBatch>> {
        let batch = self.batches.next()?;
        Some(batch.and_then(|batch| {
            let columns = self
                .columns
                .iter()
                .map(|name| match batch.column_by_name(name) {
                    Some(array) => TextColumn::new(array).map(Cells::Arrow),
                    None => Ok(Cells::Constant(None)),
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(StageBatch { columns, rows: batch.num_rows() })
        }))
    }
}
