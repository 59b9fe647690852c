//! Loading a fact run: the dimensions' versions read once, inferred members added for natural
//! keys the dimensions do not have yet, and every row's dimension keys looked up as of the
//! fact's date while the rows stream into the fact table (or, when some facts are there
//! already, into a staging table and one upsert touching only rows that differ).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs::File;

use arrow::array::{Array, RecordBatch};

use super::bulk;
use super::dates::date_key;
use super::ddl::{self, quote, surrogate_key};
use super::merge::{
    Names, Sql, Steps, TableCounts, batches, column, highest_key, join_on, natural_text, quoted, reopen, row_count,
    where_staged,
};
use super::scd::{self, INFERRED_FROM};
use super::text::TextColumn;
use super::tx::{Cells, CopyOptions, Kind, Producer, StageBatch, Tx, Value};
use crate::Result;
use crate::contract::{Contract, Dataset};

const STAGE: &str = "lakestar_stage";
const NAMED: &str = "lakestar_named";

/// Hash maps keyed by natural-key text, looked up once per fact row and reference.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// The versions of one dimension, by natural key, for the facts' as-of lookups: validity in
/// microseconds, so a fact row costs no text formatting or comparison.
struct DimensionIndex {
    versions: FastMap<String, Vec<(i64, Option<i64>, i64)>>,
    max_key: i64,
}

impl DimensionIndex {
    /// The version in effect at `as_of` (exclusive of its end), else the key's first version.
    fn lookup(&self, natural_key: &str, as_of: i64) -> Option<i64> {
        let versions = self.versions.get(natural_key)?;
        versions
            .iter()
            .rev()
            .find(|(from, to, _)| *from < as_of && to.is_none_or(|to| to >= as_of))
            .or(versions.first())
            .map(|(_, _, key)| *key)
    }
}

/// A dimension a fact references: its table, key, natural key, and the fact's columns.
struct Reference {
    table: String,
    key: String,
    natural_key: Vec<String>,
    /// The natural key columns with their SQL types, for staging named keys.
    natural_key_definitions: Vec<String>,
    fact_columns: Vec<String>,
}

/// Natural-key texts.
type FastSet = HashSet<String, foldhash::fast::RandomState>;

/// The distinct natural keys the facts name, per reference (nulls name none).
fn named_keys(files: &[File], references: &[Reference]) -> Result<Vec<FastSet>> {
    let mut named: Vec<FastSet> = references.iter().map(|_| FastSet::default()).collect();
    let columns: Vec<String> = references.iter().flat_map(|reference| reference.fact_columns.iter().cloned()).collect();
    let mut buffer = String::new();
    for batch in batches(reopen(files)?, Some(columns)) {
        let batch = batch?;
        for (reference, named) in references.iter().zip(named.iter_mut()) {
            let cells: Vec<Cells> =
                reference.fact_columns.iter().map(|name| column(&batch, name)).collect::<Result<_>>()?;
            for row in 0..batch.num_rows() {
                if let Some(natural) = reference_key(&cells, row, &mut buffer)
                    && !named.contains(natural)
                {
                    named.insert(natural.to_string());
                }
            }
        }
    }
    Ok(named)
}

/// Reads the versions of a dimension (natural key, validity, surrogate key): all of them, or
/// with `named`, those of the natural keys the facts name (staged and joined), so that a small
/// delivery against a large dimension reads a few rows instead of the table.
async fn dimension_index(tx: &mut Tx, reference: &Reference, named: Option<&FastSet>) -> Result<DimensionIndex> {
    let mut select: Vec<String> =
        reference.natural_key.iter().map(|column| format!("CAST(d.{column} AS TEXT)")).collect();
    let width = reference.natural_key.len();
    select.extend([format!("d.{}", reference.key), "d.\"valid_from\"".to_string(), "d.\"valid_to\"".to_string()]);
    let mut kinds = vec![Kind::Text; width];
    kinds.extend([Kind::Integer, Kind::Instant, Kind::Instant]);
    let mut statement = format!("SELECT {} FROM {} d", select.join(", "), reference.table);
    if let Some(named) = named {
        tx.create_temp(NAMED, &reference.natural_key_definitions).await?;
        let mut stager = tx.stager(NAMED, &reference.natural_key, CopyOptions::BINARY).await?;
        let keys: Vec<&String> = named.iter().collect();
        for chunk in keys.chunks(16_384) {
            let mut parts: Vec<Vec<Option<String>>> = vec![Vec::with_capacity(chunk.len()); width];
            for (at, natural) in chunk.iter().enumerate() {
                for (column, part) in parts.iter_mut().zip(natural.splitn(width, '\u{1f}')) {
                    column.push(Some(part.to_string()));
                }
                for column in &mut parts {
                    column.resize(at + 1, None);
                }
            }
            stager
                .send(&StageBatch { columns: parts.into_iter().map(Cells::Texts).collect(), rows: chunk.len() })
                .await?;
        }
        stager.finish().await?;
        if named.len() > 10_000 {
            tx.analyze(NAMED).await?;
        }
        statement.push_str(&where_staged(NAMED, &reference.natural_key));
    }
    let mut versions: FastMap<String, Vec<(i64, Option<i64>, i64)>> = FastMap::default();
    let mut max_key = 0;
    let inferred_from = scd::INFERRED_FROM_MICROS;
    let what = format!("reading the versions of {}", reference.table);
    tx.fetch_each(&what, statement, &kinds, |mut row| {
        let key = row.get(width).and_then(Value::integer).unwrap_or_default();
        max_key = max_key.max(key);
        let from = row.get(width + 1).and_then(Value::micros).unwrap_or(inferred_from);
        let to = row.get(width + 2).and_then(Value::micros);
        row.truncate(width);
        let natural = natural_text(row.into_iter());
        versions.entry(natural).or_default().push((from, to, key));
    })
    .await?;
    if named.is_some() {
        tx.drop_temp(&[NAMED]).await?;
        max_key = max_key.max(highest_key(tx, &reference.table, &reference.key).await?);
    }
    for list in versions.values_mut() {
        list.sort();
    }
    Ok(DimensionIndex { versions, max_key })
}

/// The natural key text of a fact row's reference (parts joined by U+001F, in `buffer` unless
/// it is one text column), `None` when a part is null.
fn reference_key<'a>(cells: &'a [Cells], row: usize, buffer: &'a mut String) -> Option<&'a str> {
    if let [Cells::Arrow(TextColumn::Text(array))] = cells {
        return (!array.is_null(row)).then(|| array.value(row));
    }
    buffer.clear();
    for (index, cell) in cells.iter().enumerate() {
        if index > 0 {
            buffer.push('\u{1f}');
        }
        if !cell.write(row, buffer) {
            return None;
        }
    }
    Some(buffer.as_str())
}

/// The fact rows with their dimension and date keys, in the fact table's column order, made
/// on the staging thread.
struct FactRows {
    batches: Box<dyn Iterator<Item = Result<RecordBatch>> + Send>,
    references: Vec<Reference>,
    indexes: Vec<DimensionIndex>,
    date_column: Option<String>,
    data: Vec<String>,
    run_id: String,
    dates: BTreeSet<chrono::NaiveDate>,
    rows: u64,
}

impl FactRows {
    fn encode(&mut self, batch: &RecordBatch) -> Result<StageBatch> {
        const DAY: i64 = 86_400_000_000;
        let count = batch.num_rows();
        let date_cells = match &self.date_column {
            Some(name) => Some(column(batch, name)?),
            None => None,
        };
        let mut as_of = Vec::with_capacity(count);
        let mut date_keys = Vec::with_capacity(count);
        let mut previous = None;
        for row in 0..count {
            let (instant, date) = match &date_cells {
                // As of the end of the fact's day.
                Some(Cells::Arrow(column @ TextColumn::Date(array))) => {
                    ((!array.is_null(row)).then(|| i64::from(array.value(row)) * DAY + DAY), column.date(row))
                }
                Some(Cells::Arrow(column @ TextColumn::Timestamp(array))) => {
                    ((!array.is_null(row)).then(|| array.value(row) + 1), column.date(row))
                }
                _ => (None, None),
            };
            if date.is_some() && date != previous {
                self.dates.extend(date);
                previous = date;
            }
            as_of.push(instant.unwrap_or(i64::MAX));
            date_keys.push(date.map(|date| i64::from(date_key(date))));
        }
        let mut cells = Vec::with_capacity(self.references.len() + self.data.len() + 2);
        let mut buffer = String::new();
        for (reference, index) in self.references.iter().zip(&self.indexes) {
            let fact: Vec<Cells> =
                reference.fact_columns.iter().map(|name| column(batch, name)).collect::<Result<_>>()?;
            let keys = (0..count)
                .map(|row| reference_key(&fact, row, &mut buffer).and_then(|natural| index.lookup(natural, as_of[row])))
                .collect();
            cells.push(Cells::Integers(keys));
        }
        if self.date_column.is_some() {
            cells.push(Cells::Integers(date_keys));
        }
        for name in &self.data {
            cells.push(column(batch, name)?);
        }
        cells.push(Cells::Constant(Some(self.run_id.clone())));
        self.rows += count as u64;
        Ok(StageBatch { columns: cells, rows: count })
    }

    /// The same rows again from the start of `files`.
    fn restart(self, files: &[File]) -> Result<FactRows> {
        Ok(FactRows { batches: Box::new(batches(reopen(files)?, None)), dates: BTreeSet::new(), rows: 0, ..self })
    }
}

impl Producer for FactRows {
    fn next_batch(&mut self) -> Option<Result<StageBatch>> {
        let batch = self.batches.next()?;
        Some(batch.and_then(|batch| self.encode(&batch)))
    }
}

/// Loads a fact run. The dimension versions are read once; natural keys no dimension has get
/// inferred members; each row's dimension keys are looked up as of its date while the rows
/// stream to the warehouse. New facts are copied straight into the fact table; when the run
/// holds facts the table has already, the rows go through a staging table and one upsert
/// that touches only rows that differ.
/// Returns the fact's counts, the inferred members per dimension, and the dates used.
pub(crate) async fn load_fact(
    tx: &mut Tx,
    dataset: &Dataset,
    contract: &Contract,
    run_id: &str,
    files: Vec<File>,
) -> Result<(TableCounts, BTreeMap<String, u64>, BTreeSet<chrono::NaiveDate>)> {
    let mut steps = Steps::new(run_id, &dataset.table.name);
    let sql = Sql { dialect: tx.dialect() };
    let table = quote(&dataset.table.name)?;
    let names = Names::of(dataset);
    let data = quoted(&names.data)?;
    let natural_key = quoted(&names.natural_key)?;
    let date_column = dataset
        .table
        .date_column
        .as_ref()
        .map(|name| dataset.column(name).map_or(name.clone(), |column| column.target_name().to_string()));
    let mut references = Vec::new();
    for reference in &dataset.table.references {
        let Some(dimension) = contract.datasets.iter().find(|other| other.table.name == reference.dimension) else {
            continue;
        };
        let dimension_names = Names::of(dimension);
        let types: BTreeMap<String, String> = ddl::table_columns(dimension, contract, sql.dialect)?
            .into_iter()
            .map(|column| (column.name, column.sql_type))
            .collect();
        let natural_key = quoted(&dimension_names.natural_key)?;
        let natural_key_definitions = dimension_names
            .natural_key
            .iter()
            .zip(&natural_key)
            .map(|(name, quoted_name)| format!("{quoted_name} {}", types.get(name).map_or("TEXT", String::as_str)))
            .collect();
        references.push(Reference {
            table: quote(&dimension.table.name)?,
            key: quote(&surrogate_key(&dimension.table.name))?,
            natural_key,
            natural_key_definitions,
            fact_columns: reference
                .columns
                .iter()
                .map(|name| dataset.column(name).map_or(name.clone(), |column| column.target_name().to_string()))
                .collect(),
        });
    }
    references.sort_by(|a, b| a.table.cmp(&b.table));

    // The natural keys the facts name; the dimensions' versions of them (all of a dimension
    // at most twice the delivery's size, else only those of the named keys); inferred members
    // for the keys the dimensions do not have.
    let named = named_keys(&files, &references)?;
    steps.done("gathered the natural keys the facts name", named.iter().map(HashSet::len).sum());
    let limit = row_count(&files)?.saturating_mul(2).saturating_add(1);
    let mut indexes = Vec::with_capacity(references.len());
    for (reference, named) in references.iter().zip(&named) {
        let whole = bulk::count_up_to(tx, &reference.table, limit).await? < limit;
        indexes.push(dimension_index(tx, reference, (!whole).then_some(named)).await?);
    }
    steps.done("read the dimensions' versions", indexes.iter().map(|index| index.versions.len()).sum());
    let missing: Vec<BTreeSet<String>> = named
        .into_iter()
        .zip(&indexes)
        .map(|(named, index)| named.into_iter().filter(|natural| !index.versions.contains_key(natural)).collect())
        .collect();
    let mut inferred = BTreeMap::new();
    for ((reference, index), missing) in references.iter().zip(indexes.iter_mut()).zip(missing) {
        let added = missing.len() as u64;
        if added > 0 {
            add_inferred(tx, reference, index, missing, run_id).await?;
            tracing::info!(run = %run_id, dimension = %reference.table, inferred = added, "Added inferred members.");
        }
        inferred.insert(reference.table.trim_matches('"').to_string(), added);
    }
    steps.done("added inferred members", inferred.values().sum::<u64>() as usize);

    // The rows with their keys, in the fact table's column order.
    let mut columns: Vec<String> = references.iter().map(|reference| reference.key.clone()).collect();
    if date_column.is_some() {
        columns.push("\"date_key\"".to_string());
    }
    columns.extend(data.iter().cloned());
    columns.push("\"run_id\"".to_string());
    let rows = FactRows {
        batches: Box::new(batches(reopen(&files)?, None)),
        references,
        indexes,
        date_column,
        data: names.data.clone(),
        run_id: run_id.to_string(),
        dates: BTreeSet::new(),
        rows: 0,
    };

    // An empty fact table (a first load, a backfill) is copied into with its key set aside.
    let set_aside = bulk::set_aside(tx, &table).await?;
    if !set_aside.is_empty() {
        let (rows, copied) = tx.stage_from_as(&table, &columns, rows, set_aside.copy_options()).await?;
        copied?;
        steps.done("copied the facts into their empty table", rows.rows as usize);
        set_aside.rebuild(tx).await?;
        steps.done("built the fact table's key", rows.rows as usize);
        return Ok((TableCounts { inserted: rows.rows, ..TableCounts::default() }, inferred, rows.dates));
    }

    // Straight into the fact table, in a savepoint: it succeeds unless a fact is there already.
    tx.execute("opening a savepoint", "SAVEPOINT lakestar_facts".to_string(), None).await?;
    let (rows, direct) = tx.stage_from(&table, &columns, rows).await?;
    if direct.is_ok() {
        tx.execute("releasing a savepoint", "RELEASE SAVEPOINT lakestar_facts".to_string(), None).await?;
        steps.done("copied the facts into their table", rows.rows as usize);
        return Ok((TableCounts { inserted: rows.rows, ..TableCounts::default() }, inferred, rows.dates));
    }
    tx.execute("rolling back to a savepoint", "ROLLBACK TO SAVEPOINT lakestar_facts".to_string(), None).await?;
    steps.done("found facts loaded before", 0);

    // Some facts exist: stage, then upsert what differs.
    let types: BTreeMap<String, String> = ddl::table_columns(dataset, contract, sql.dialect)?
        .into_iter()
        .map(|column| (format!("\"{}\"", column.name), column.sql_type))
        .collect();
    let definitions: Vec<String> =
        columns.iter().map(|column| format!("{column} {}", types.get(column).map_or("TEXT", String::as_str))).collect();
    tx.create_temp(STAGE, &definitions).await?;
    let (rows, staged) = tx.stage_from(STAGE, &columns, rows.restart(&files)?).await?;
    staged?;
    let FactRows { rows, dates, .. } = rows;
    tx.analyze(STAGE).await?;
    steps.done("staged the facts", rows as usize);
    let existing = tx
        .fetch_count(
            "counting facts already loaded",
            format!(
                "SELECT CAST(COUNT(*) AS TEXT) FROM {STAGE} s WHERE EXISTS (SELECT 1 FROM {table} t WHERE {})",
                join_on(natural_key.iter().map(|column| (format!("t.{column}"), format!("s.{column}"))))
            ),
        )
        .await? as u64;
    let updatable: Vec<&String> = columns.iter().filter(|column| !natural_key.contains(column)).collect();
    let assignments: Vec<String> = updatable.iter().map(|column| format!("{column} = excluded.{column}")).collect();
    let differs: Vec<String> = updatable
        .iter()
        .filter(|column| column.as_str() != "\"run_id\"")
        .map(|column| sql.differs(&format!("{table}.{column}"), &format!("excluded.{column}")))
        .collect();
    let changed = tx
        .execute(
            "upserting facts",
            format!(
                "INSERT INTO {table} ({names}) SELECT {names} FROM {STAGE} WHERE TRUE \
                 ON CONFLICT ({}) DO UPDATE SET {} WHERE {}",
                natural_key.join(", "),
                assignments.join(", "),
                if differs.is_empty() { "FALSE".to_string() } else { differs.join(" OR ") },
                names = columns.join(", "),
            ),
            None,
        )
        .await?;
    tx.drop_temp(&[STAGE]).await?;
    let inserted = rows.saturating_sub(existing);
    let updated = changed.saturating_sub(inserted);
    Ok((TableCounts { inserted, updated, unchanged: existing.saturating_sub(updated), inferred: 0 }, inferred, dates))
}

/// Adds inferred members for `missing` natural keys (new surrogate keys in key order), and
/// records them in the index.
async fn add_inferred(
    tx: &mut Tx,
    reference: &Reference,
    index: &mut DimensionIndex,
    missing: BTreeSet<String>,
    run_id: &str,
) -> Result<()> {
    // Straight into the dimension (its lock is held): key, natural key, validity, flags.
    let mut columns = vec![reference.key.clone()];
    columns.extend(reference.natural_key.iter().cloned());
    columns.extend(["valid_from", "is_current", "is_inferred", "run_id"].map(|name| format!("\"{name}\"")));
    let inferred_from = scd::INFERRED_FROM_MICROS;
    let missing: Vec<String> = missing.into_iter().collect();
    // Into an empty dimension (a first fact delivery) with its keys and indexes set aside.
    let set_aside = if index.versions.is_empty() {
        bulk::set_aside(tx, &reference.table).await?
    } else {
        bulk::SetAside::default()
    };
    let mut stager = tx.stager(&reference.table, &columns, set_aside.copy_options()).await?;
    for chunk in missing.chunks(16_384) {
        let mut keys = Vec::with_capacity(chunk.len());
        let mut parts: Vec<Vec<Option<String>>> = vec![Vec::with_capacity(chunk.len()); reference.natural_key.len()];
        for natural in chunk {
            index.max_key += 1;
            keys.push(Some(index.max_key));
            for (position, part) in natural.split('\u{1f}').enumerate() {
                if let Some(column) = parts.get_mut(position) {
                    column.push(Some(part.to_string()));
                }
            }
            index.versions.insert(natural.clone(), vec![(inferred_from, None, index.max_key)]);
        }
        let mut cells = vec![Cells::Integers(keys)];
        cells.extend(parts.into_iter().map(Cells::Texts));
        cells.extend([
            Cells::Constant(Some(INFERRED_FROM.to_string())),
            Cells::Constant(Some("1".to_string())),
            Cells::Constant(Some("1".to_string())),
            Cells::Constant(Some(run_id.to_string())),
        ]);
        stager.send(&StageBatch { columns: cells, rows: chunk.len() }).await?;
    }
    stager.finish().await?;
    set_aside.rebuild(tx).await
}
