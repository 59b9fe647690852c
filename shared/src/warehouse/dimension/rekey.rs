//! Facts keyed again after their dimension's history changed: a change back-dated below
//! facts loaded earlier (or any new version whose validity covers their date) moves those
//! facts to the version in effect at their date, in the dimension load's transaction, as if
//! the facts had been loaded after the change.

use std::collections::BTreeMap;

use crate::Result;
use crate::contract::{Contract, DataType, Dataset};
use crate::warehouse::cells::{Cells, Kind, StageBatch, Value};
use crate::warehouse::ddl::{self, quote, surrogate_key};
use crate::warehouse::fact::index::{FastSet, Reference, dimension_index};
use crate::warehouse::sql::{Names, quoted};
use crate::warehouse::staging::CopyOptions;
use crate::warehouse::tx::Tx;

const CHANGED: &str = "lakestar_changed_keys";
const REKEYED: &str = "lakestar_rekeyed";

/// A day in microseconds.
const DAY: i64 = 86_400_000_000;

/// The fact tables that reference `dimension`: their datasets, sorted by table.
pub(crate) fn referencing_facts<'a>(contract: &'a Contract, dimension: &str) -> Vec<&'a Dataset> {
    let mut facts: Vec<&Dataset> = contract
        .datasets
        .iter()
        .filter(|dataset| dataset.table.references.iter().any(|reference| reference.dimension == dimension))
        .collect();
    facts.sort_by(|a, b| a.table.name.cmp(&b.table.name));
    facts
}

/// Keys again every fact of every table referencing `dimension` whose reference names one
/// of the `changed` natural keys (texts, parts joined by U+001F): each takes the version in
/// effect at its date, looked up as a fact load does. Returns the facts re-keyed per table.
pub(crate) async fn rekey_facts(
    tx: &mut Tx,
    contract: &Contract,
    dimension: &Dataset,
    changed: &FastSet,
) -> Result<BTreeMap<String, u64>> {
    let mut rekeyed = BTreeMap::new();
    if changed.is_empty() {
        return Ok(rekeyed);
    }
    for fact in referencing_facts(contract, &dimension.table.name) {
        if super::super::catalog::existing_columns(tx, &fact.table.name).await?.is_empty() {
            continue;
        }
        let count = rekey_table(tx, contract, dimension, fact, changed).await?;
        if count > 0 {
            tracing::info!(table = %fact.table.name, dimension = %dimension.table.name, rekeyed = count, "Facts keyed again after the dimension's history changed.");
        }
        rekeyed.insert(fact.table.name.clone(), count);
    }
    Ok(rekeyed)
}

async fn rekey_table(
    tx: &mut Tx,
    contract: &Contract,
    dimension: &Dataset,
    fact: &Dataset,
    changed: &FastSet,
) -> Result<u64> {
    let dialect = tx.dialect();
    let dimension_names = Names::of(dimension);
    let dimension_types: BTreeMap<String, String> = ddl::table_columns(dimension, contract, dialect)?
        .into_iter()
        .map(|column| (column.name, column.sql_type))
        .collect();
    let natural_key = quoted(&dimension_names.natural_key)?;
    let definitions: Vec<String> = dimension_names
        .natural_key
        .iter()
        .zip(&natural_key)
        .map(|(name, quoted_name)| {
            format!("{quoted_name} {}", dimension_types.get(name).map_or("TEXT", String::as_str))
        })
        .collect();
    let Some(reference) = fact.table.references.iter().find(|reference| reference.dimension == dimension.table.name)
    else {
        return Ok(0);
    };
    let target = |name: &String| fact.column(name).map_or(name.clone(), |column| column.target_name().to_string());
    let fact_columns = quoted(&reference.columns.iter().map(target).collect::<Vec<_>>())?;
    let dimension_reference = Reference {
        table: quote(&dimension.table.name)?,
        key: quote(&surrogate_key(&dimension.table.name))?,
        natural_key: natural_key.clone(),
        natural_key_definitions: definitions.clone(),
        fact_columns: Vec::new(),
        on_missing: reference.on_missing,
        named_columns: reference.columns.clone(),
    };
    // The versions of the changed keys, as they are now.
    let index = dimension_index(tx, &dimension_reference, Some(changed)).await?;

    // The facts naming them, with their date and the dimension key they hold.
    let fact_table = quote(&fact.table.name)?;
    let fact_names = Names::of(fact);
    let fact_key = quoted(&fact_names.natural_key)?;
    let key = &dimension_reference.key;
    let mut select: Vec<String> = fact_key.iter().map(|column| format!("CAST(f.{column} AS TEXT)")).collect();
    select.extend(fact_columns.iter().map(|column| format!("CAST(f.{column} AS TEXT)")));
    let mut kinds = vec![Kind::Text; fact_key.len() + fact_columns.len()];
    let date = fact.table.date_column.as_ref().and_then(|name| fact.column(name));
    match date {
        Some(column) if column.data_type == DataType::Timestamp => {
            select.push(format!("f.{}", quote(column.target_name())?));
            kinds.push(Kind::Instant);
        }
        Some(column) => {
            select.push(format!("CAST(f.{} AS TEXT)", quote(column.target_name())?));
            kinds.push(Kind::Text);
        }
        None => {
            select.push("NULL".to_string());
            kinds.push(Kind::Text);
        }
    }
    select.push(format!("f.{key}"));
    kinds.push(Kind::Integer);
    let joined: Vec<String> = natural_key
        .iter()
        .zip(&fact_columns)
        .map(|(dimension_column, fact_column)| {
            format!("CAST(s.{dimension_column} AS TEXT) = CAST(f.{fact_column} AS TEXT)")
        })
        .collect();
    tx.create_temp(CHANGED, &definitions).await?;
    stage_keys(tx, changed, &natural_key).await?;
    let statement = format!(
        "SELECT {} FROM {fact_table} f WHERE EXISTS (SELECT 1 FROM {CHANGED} s WHERE {})",
        select.join(", "),
        joined.join(" AND ")
    );
    let (width, parts) = (fact_key.len(), fact_columns.len());
    let mut moved: Vec<(Vec<Option<String>>, i64)> = Vec::new();
    tx.fetch_each(&format!("reading the facts of {fact_table} to key again"), statement, &kinds, |row| {
        let mut values = row.into_iter();
        let key_parts: Vec<Option<String>> = (0..width).map(|_| values.next().and_then(Value::into_text)).collect();
        let natural: Vec<String> =
            (0..parts).map(|_| values.next().and_then(Value::into_text).unwrap_or_default()).collect();
        let as_of = match values.next() {
            // As of the fact's instant, or the end of its day: as a fact load looks keys up.
            Some(Value::Instant(Some(micros))) => micros.saturating_add(1),
            Some(Value::Text(Some(text))) => date_micros(&text).map_or(i64::MAX, |midnight| midnight + DAY),
            _ => i64::MAX,
        };
        let held = values.next().and_then(|value| value.integer());
        if let Some(wanted) = index.lookup(&natural.join("\u{1f}"), as_of)
            && held != Some(wanted)
        {
            moved.push((key_parts, wanted));
        }
    })
    .await?;
    tx.drop_temp(&[CHANGED]).await?;
    if moved.is_empty() {
        return Ok(0);
    }

    // Their new keys, staged, then set by one statement.
    let fact_types: BTreeMap<String, String> =
        ddl::table_columns(fact, contract, dialect)?.into_iter().map(|column| (column.name, column.sql_type)).collect();
    let mut staging: Vec<String> = fact_names
        .natural_key
        .iter()
        .zip(&fact_key)
        .map(|(name, quoted_name)| format!("{quoted_name} {}", fact_types.get(name).map_or("TEXT", String::as_str)))
        .collect();
    staging.push(format!("\"lakestar_key\" {}", if dialect == ddl::Dialect::Postgres { "BIGINT" } else { "INTEGER" }));
    tx.create_temp(REKEYED, &staging).await?;
    let mut columns = fact_key.clone();
    columns.push("\"lakestar_key\"".to_string());
    let mut stager = tx.stager(REKEYED, &columns, CopyOptions::BINARY).await?;
    for chunk in moved.chunks(16_384) {
        let mut cells: Vec<Cells> =
            (0..width).map(|part| Cells::Texts(chunk.iter().map(|(parts, _)| parts[part].clone()).collect())).collect();
        cells.push(Cells::Integers(chunk.iter().map(|(_, key)| Some(*key)).collect()));
        stager.send(&StageBatch { columns: cells, rows: chunk.len() }).await?;
    }
    stager.finish().await?;
    let matches: Vec<String> = fact_key.iter().map(|column| format!("{fact_table}.{column} = s.{column}")).collect();
    tx.execute(
        "keying facts again",
        format!("UPDATE {fact_table} SET {key} = s.\"lakestar_key\" FROM {REKEYED} s WHERE {}", matches.join(" AND ")),
        None,
    )
    .await?;
    tx.drop_temp(&[REKEYED]).await?;
    Ok(moved.len() as u64)
}

/// Midnight UTC of an ISO date's text (`YYYY-MM-DD…`), in microseconds since the epoch.
fn date_micros(text: &str) -> Option<i64> {
    let date = chrono::NaiveDate::parse_from_str(text.get(..10)?, "%Y-%m-%d").ok()?;
    Some(date.and_hms_opt(0, 0, 0)?.and_utc().timestamp_micros())
}

/// Stages the changed natural keys into [`CHANGED`] (`natural_key` quoted).
async fn stage_keys(tx: &mut Tx, changed: &FastSet, natural_key: &[String]) -> Result<()> {
    let width = natural_key.len();
    let mut stager = tx.stager(CHANGED, natural_key, CopyOptions::BINARY).await?;
    let keys: Vec<&String> = changed.iter().collect();
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
        stager.send(&StageBatch { columns: parts.into_iter().map(Cells::Texts).collect(), rows: chunk.len() }).await?;
    }
    stager.finish().await?;
    Ok(())
}
