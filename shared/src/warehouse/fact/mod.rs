//! Loading a fact run: the dimensions' versions read once, inferred members added for natural
//! keys the dimensions do not have yet, and every row's dimension keys looked up as of the
//! fact's date while the rows stream into the fact table (or, when some facts are there
//! already, into a staging table and one upsert touching only rows that differ).

pub(super) mod index;
pub(crate) mod rows;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs::File;

use super::TableCounts;
use super::bulk;
use super::curated::{batches, reopen, row_count};
use super::ddl::{self, quote, surrogate_key};
use super::sql::{Names, Sql, join_on, quoted};
use super::steps::Steps;
use super::tx::Tx;
use crate::Result;
use crate::contract::{Contract, Dataset};
use index::{DimensionIndex, Reference, add_inferred, dimension_index, named_keys};
use rows::{FactRows, Quarantine};

const STAGE: &str = "lakestar_stage";

/// What a fact load reports: the fact's counts, the inferred members per dimension,
/// `dim_date`'s (the dates its facts fall on, and those that fill the calendar between), and
/// the facts it set aside for a member a `quarantine` reference's dimension lacks.
pub(crate) type FactLoaded = (TableCounts, BTreeMap<String, u64>, TableCounts, Quarantine);

/// Adds the dates the facts fall on to `dim_date` ([`super::dates::insert_dates`]), with
/// `dim_date`'s counts.
async fn add_dates(tx: &mut Tx, contract: &Contract, dates: BTreeSet<chrono::NaiveDate>) -> Result<TableCounts> {
    let dates: Vec<chrono::NaiveDate> = dates.into_iter().collect();
    let (added, filled) = super::dates::insert_dates(tx, &dates, &contract.calendar).await?;
    Ok(TableCounts {
        inserted: added + filled,
        unchanged: (dates.len() as u64).saturating_sub(added),
        ..TableCounts::default()
    })
}

/// Loads a fact run. The dimension versions are read once; natural keys no dimension has get
/// inferred members; then the rows, their dimension keys looked up on a thread of their own,
/// stream to the warehouse. New facts are copied straight into the fact table; when the run
/// holds facts the table has already, the rows go through a staging table and one upsert
/// that touches only rows that differ.
pub(crate) async fn load_fact(
    tx: &mut Tx,
    dataset: &Dataset,
    contract: &Contract,
    run_id: &str,
    files: Vec<File>,
) -> Result<FactLoaded> {
    let mut steps = Steps::new(run_id, &dataset.table.name);
    let sql = Sql { dialect: tx.dialect() };
    let table = quote(&dataset.table.name)?;
    let names = Names::of(dataset);
    let references = references(dataset, contract, sql.dialect)?;
    let (indexes, inferred) = resolve_dimensions(tx, &files, &references, run_id, &mut steps).await?;

    // The rows with their keys, in the fact table's column order.
    let date_column = dataset
        .table
        .date_column
        .as_ref()
        .map(|name| dataset.column(name).map_or(name.clone(), |column| column.target_name().to_string()));
    let mut columns: Vec<String> = references.iter().map(|reference| reference.key.clone()).collect();
    if date_column.is_some() {
        columns.push("\"date_key\"".to_string());
    }
    columns.extend(quoted(&names.data)?);
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
        quarantine: Quarantine::default(),
    };

    // An empty fact table (a first load, a backfill) is copied into with its key set aside.
    let set_aside = bulk::set_aside(tx, &table).await?;
    if !set_aside.is_empty() {
        let (rows, copied) = tx.stage_from_as(&table, &columns, rows, set_aside.copy_options()).await?;
        copied?;
        steps.done("copied the facts into their empty table", rows.rows as usize);
        // The dates first: the foreign key into `dim_date` is checked when it is built again.
        let calendar = add_dates(tx, contract, rows.dates).await?;
        set_aside.rebuild(tx).await?;
        steps.done("built the fact table's keys", rows.rows as usize);
        let counts = TableCounts { inserted: rows.rows, quarantined: rows.quarantine.rows, ..TableCounts::default() };
        return Ok((counts, inferred, calendar, rows.quarantine));
    }

    // A large append sets the foreign keys and key indexes aside, and builds them after.
    let appending = bulk::set_aside_for_append(tx, &table, row_count(&files)?).await?;
    if !appending.is_empty() {
        steps.done("set the fact table's foreign keys and indexes aside", 0);
    }
    // Straight into the fact table, in a savepoint: it succeeds unless a fact is there already.
    tx.execute("opening a savepoint", "SAVEPOINT lakestar_facts".to_string(), None).await?;
    let (rows, direct) = tx.stage_from(&table, &columns, rows).await?;
    if direct.is_ok() {
        tx.execute("releasing a savepoint", "RELEASE SAVEPOINT lakestar_facts".to_string(), None).await?;
        steps.done("copied the facts into their table", rows.rows as usize);
        let calendar = add_dates(tx, contract, rows.dates).await?;
        rebuild(tx, appending, &mut steps, rows.rows).await?;
        let counts = TableCounts { inserted: rows.rows, quarantined: rows.quarantine.rows, ..TableCounts::default() };
        return Ok((counts, inferred, calendar, rows.quarantine));
    }
    let rolled_back =
        tx.execute("rolling back to a savepoint", "ROLLBACK TO SAVEPOINT lakestar_facts".to_string(), None).await;
    match direct {
        // A fact of the run's keys is there already: the upsert below merges them.
        Err(error) if is_duplicate_key(&error) => rolled_back?,
        // Anything else (a full disk, a lost connection) is the load's error, whatever the
        // rollback says (SQLite rolls a transaction back by itself on some errors).
        Err(error) => return Err(error),
        Ok(_) => rolled_back?,
    };
    steps.done("found facts loaded before", 0);

    let natural_key = quoted(&names.natural_key)?;
    let upsert = Upsert { sql: &sql, table: &table, columns: &columns, natural_key: &natural_key };
    let (counts, dates, quarantine) = upsert.run(tx, dataset, contract, rows.restart(&files)?, &mut steps).await?;
    let calendar = add_dates(tx, contract, dates).await?;
    rebuild(tx, appending, &mut steps, counts.inserted + counts.updated).await?;
    Ok((TableCounts { quarantined: quarantine.rows, ..counts }, inferred, calendar, quarantine))
}

/// Builds again what a large append set aside (after the dates, which its foreign key into
/// `dim_date` checks).
async fn rebuild(tx: &mut Tx, appending: bulk::SetAside, steps: &mut Steps<'_>, rows: u64) -> Result<()> {
    if appending.is_empty() {
        return Ok(());
    }
    appending.rebuild(tx).await?;
    steps.done("built the fact table's foreign keys and indexes again", rows as usize);
    Ok(())
}

/// A unique-key violation: PostgreSQL's SQLSTATE 23505, SQLite's primary key or unique
/// constraint (1555, 2067).
fn is_duplicate_key(error: &crate::Error) -> bool {
    matches!(error, crate::Error::WarehouseLoad { sqlstate: Some(code), .. } if ["23505", "1555", "2067"].contains(&code.as_str()))
}

/// The dimensions `dataset` references, sorted by table (the order their locks are taken).
fn references(dataset: &Dataset, contract: &Contract, dialect: ddl::Dialect) -> Result<Vec<Reference>> {
    let mut references = Vec::new();
    for reference in &dataset.table.references {
        let Some(dimension) = contract.datasets.iter().find(|other| other.table.name == reference.dimension) else {
            continue;
        };
        let dimension_names = Names::of(dimension);
        let types: BTreeMap<String, String> = ddl::table_columns(dimension, contract, dialect)?
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
            on_missing: reference.on_missing,
            named_columns: reference.columns.clone(),
        });
    }
    references.sort_by(|a, b| a.table.cmp(&b.table));
    Ok(references)
}

/// The natural keys the facts name; the dimensions' versions of them (all of a dimension at
/// most twice the delivery's size, else only those of the named keys); inferred members for
/// the keys the dimensions do not have. Returns the indexes and the inferred members per
/// dimension.
async fn resolve_dimensions(
    tx: &mut Tx,
    files: &[File],
    references: &[Reference],
    run_id: &str,
    steps: &mut Steps<'_>,
) -> Result<(Vec<DimensionIndex>, BTreeMap<String, u64>)> {
    let named = named_keys(files, references)?;
    steps.done("gathered the natural keys the facts name", named.iter().map(HashSet::len).sum());
    let limit = row_count(files)?.saturating_mul(2).saturating_add(1);
    let mut indexes = Vec::with_capacity(references.len());
    for (reference, named) in references.iter().zip(&named) {
        let whole = tx.count_up_to(&reference.table, limit).await? < limit;
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
        if added > 0 && reference.on_missing == crate::contract::OnMissing::Fail {
            // Counts only: natural keys can be personal data.
            return Err(crate::Error::QualityGateFailed {
                run: run_id.to_string(),
                cause: format!(
                    "{run_id}: the facts name {added} {} value(s) that {} lacks (on_missing = \"fail\"); the load was rolled back. Load the dimension's file first and re-drive the load, or set on_missing = \"infer\"",
                    reference.named_columns.join(", "),
                    reference.table.trim_matches('"'),
                ),
            });
        }
        if reference.on_missing == crate::contract::OnMissing::Quarantine {
            // Its facts naming a missing member are set aside as they stream.
            continue;
        }
        if added > 0 {
            add_inferred(tx, reference, index, missing, run_id).await?;
            tracing::info!(run = %run_id, dimension = %reference.table, inferred = added, "Added inferred members.");
        }
        inferred.insert(reference.table.trim_matches('"').to_string(), added);
    }
    steps.done("added inferred members", inferred.values().sum::<u64>() as usize);
    Ok((indexes, inferred))
}

/// The upsert of facts some of which the table has already: staged, then one
/// `INSERT … ON CONFLICT DO UPDATE` that touches only rows that differ.
struct Upsert<'a> {
    sql: &'a Sql,
    table: &'a str,
    /// The fact table's columns, quoted, in staging order.
    columns: &'a [String],
    natural_key: &'a [String],
}

impl Upsert<'_> {
    async fn run(
        &self,
        tx: &mut Tx,
        dataset: &Dataset,
        contract: &Contract,
        rows: FactRows,
        steps: &mut Steps<'_>,
    ) -> Result<(TableCounts, BTreeSet<chrono::NaiveDate>, Quarantine)> {
        let Upsert { sql, table, columns, natural_key } = *self;
        let types: BTreeMap<String, String> = ddl::table_columns(dataset, contract, sql.dialect)?
            .into_iter()
            .map(|column| (format!("\"{}\"", column.name), column.sql_type))
            .collect();
        let definitions: Vec<String> = columns
            .iter()
            .map(|column| format!("{column} {}", types.get(column).map_or("TEXT", String::as_str)))
            .collect();
        tx.create_temp(STAGE, &definitions).await?;
        let (rows, staged) = tx.stage_from(STAGE, columns, rows).await?;
        staged?;
        let FactRows { rows, dates, quarantine, .. } = rows;
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
        let counts =
            TableCounts { inserted, updated, unchanged: existing.saturating_sub(updated), ..TableCounts::default() };
        Ok((counts, dates, quarantine))
    }
}
