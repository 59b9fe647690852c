//! Loading one run's curated rows into its star table, set-based: the rows are bulk-staged
//! into a temporary table, then a few statements merge them.
//!
//! Dimensions: the versions of the touched natural keys are read once, the SCD merge is
//! planned in memory ([`super::scd`]), the plan is staged too, and four statements apply it
//! (close versions, rewrite versions, insert versions, overwrite type 1 columns).
//!
//! Facts: inferred members are added for natural keys their dimensions do not have yet, then
//! one `INSERT … SELECT … ON CONFLICT DO UPDATE` looks every dimension key up as of the
//! fact's date and upserts on the fact's natural key, touching only rows that differ.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;

use arrow::array::{Array, RecordBatch};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::dates::date_key;
use super::ddl::{self, Dialect, quote, surrogate_key};
use super::scd::{self, INFERRED_FROM, Staged, Version, timestamp_text};
use super::text::TextColumn;
use super::tx::{Cells, StageBatch, Tx};
use crate::contract::{Contract, Dataset};
use crate::{Error, Result};

const STAGE: &str = "lakestar_stage";
const PLAN: &str = "lakestar_plan";

/// What a load did to one table.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableCounts {
    /// Rows with a natural key the table did not have.
    pub inserted: u64,
    /// Rows that changed the table: a new or slotted version, a type 1 overwrite, a completed
    /// inferred member, a changed fact.
    pub updated: u64,
    /// Rows already in the table as they are.
    pub unchanged: u64,
    /// Inferred members created in this table by a fact (dimensions only).
    #[serde(default)]
    pub inferred: u64,
}

/// SQL fragments that differ between the dialects.
struct Sql {
    dialect: Dialect,
}

impl Sql {
    /// An instant column as fixed-width UTC text.
    fn timestamp_text(&self, column: &str) -> String {
        match self.dialect {
            Dialect::Postgres => {
                format!("to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")
            }
            Dialect::Sqlite => column.to_string(),
        }
    }

    /// A constant instant.
    fn timestamp_literal(&self, text: &str) -> String {
        match self.dialect {
            Dialect::Postgres => format!("CAST('{text}' AS TIMESTAMPTZ)"),
            Dialect::Sqlite => format!("'{text}'"),
        }
    }

    /// Null-safe inequality.
    fn differs(&self, left: &str, right: &str) -> String {
        match self.dialect {
            Dialect::Postgres => format!("{left} IS DISTINCT FROM {right}"),
            Dialect::Sqlite => format!("{left} IS NOT {right}"),
        }
    }

    /// A boolean column as `1`/`0` text.
    fn flag_text(&self, column: &str) -> String {
        match self.dialect {
            Dialect::Postgres => format!("CASE WHEN {column} THEN '1' ELSE '0' END"),
            Dialect::Sqlite => format!("CAST({column} AS TEXT)"),
        }
    }

    fn key_type(&self) -> &'static str {
        match self.dialect {
            Dialect::Postgres => "BIGINT",
            Dialect::Sqlite => "INTEGER",
        }
    }

    fn timestamp_type(&self) -> &'static str {
        match self.dialect {
            Dialect::Postgres => "TIMESTAMPTZ",
            Dialect::Sqlite => "TEXT",
        }
    }

    fn boolean_type(&self) -> &'static str {
        match self.dialect {
            Dialect::Postgres => "BOOLEAN",
            Dialect::Sqlite => "INTEGER",
        }
    }
}

/// `a = b AND …` over pairs of qualified columns.
fn join_on(pairs: impl IntoIterator<Item = (String, String)>) -> String {
    pairs.into_iter().map(|(left, right)| format!("{left} = {right}")).collect::<Vec<_>>().join(" AND ")
}

/// Reads the curated parts batch by batch; with `only`, just those columns.
pub(crate) fn batches(files: Vec<File>, only: Option<Vec<String>>) -> impl Iterator<Item = Result<RecordBatch>> + Send {
    files.into_iter().flat_map(move |file| {
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .and_then(|builder| {
                let builder = match &only {
                    Some(names) => {
                        let mask = ProjectionMask::columns(builder.parquet_schema(), names.iter().map(String::as_str));
                        builder.with_projection(mask)
                    }
                    None => builder,
                };
                builder.with_batch_size(16_384).build()
            })
            .map_err(|error| Error::arrow("opening a curated part", error));
        let iterator: Box<dyn Iterator<Item = Result<RecordBatch>> + Send> = match reader {
            Ok(reader) => {
                Box::new(reader.map(|batch| batch.map_err(|error| Error::arrow("reading a curated part", error))))
            }
            Err(error) => Box::new(std::iter::once(Err(error))),
        };
        iterator
    })
}

/// A curated column of the batch by its star-table name; absent (all null) when an older
/// curated file predates it.
fn column(batch: &RecordBatch, name: &str) -> Result<Cells> {
    match batch.column_by_name(name) {
        Some(array) => Ok(Cells::Arrow(TextColumn::new(array)?)),
        None => Ok(Cells::Texts(vec![None; batch.num_rows()])),
    }
}

/// The star-table names of the dataset's columns, and the natural key's.
struct Names {
    data: Vec<String>,
    natural_key: Vec<String>,
}

impl Names {
    fn of(dataset: &Dataset) -> Names {
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

fn quoted(names: &[String]) -> Result<Vec<String>> {
    names.iter().map(|name| quote(name)).collect()
}

/// Loads a dimension run: stage, plan the SCD merge, apply it.
pub(crate) async fn load_dimension(
    tx: &mut Tx,
    dataset: &Dataset,
    contract: &Contract,
    run_id: &str,
    run_time: &str,
    files: Vec<File>,
) -> Result<TableCounts> {
    let sql = Sql { dialect: tx.dialect() };
    let table = quote(&dataset.table.name)?;
    let key = quote(&surrogate_key(&dataset.table.name))?;
    let names = Names::of(dataset);
    let data = quoted(&names.data)?;
    let natural_key = quoted(&names.natural_key)?;
    let tracked: Vec<String> = dataset
        .columns
        .iter()
        .filter(|column| column.config.scd == Some(2))
        .map(|column| column.target_name().to_string())
        .collect();
    let type1: Vec<String> = names
        .data
        .iter()
        .filter(|name| !tracked.contains(name) && !names.natural_key.contains(name))
        .cloned()
        .collect();
    let effective_from = dataset
        .table
        .effective_from
        .as_ref()
        .map(|name| dataset.column(name).map_or(name.clone(), |column| column.target_name().to_string()));

    // The staging table: the row number, the data columns with their warehouse types, the
    // tracked hash and the effective time.
    let types: BTreeMap<String, String> = ddl::table_columns(dataset, contract, sql.dialect)?
        .into_iter()
        .map(|column| (column.name, column.sql_type))
        .collect();
    let mut definitions = vec![format!("\"_row\" {}", sql.key_type())];
    for (name, quoted_name) in names.data.iter().zip(&data) {
        definitions.push(format!("{quoted_name} {}", types.get(name).map_or("TEXT", String::as_str)));
    }
    definitions.push("\"row_hash\" TEXT".to_string());
    definitions.push(format!("\"_effective\" {}", sql.timestamp_type()));
    tx.create_temp(STAGE, &definitions).await?;
    let mut stage_columns = vec!["\"_row\"".to_string()];
    stage_columns.extend(data.iter().cloned());
    stage_columns.push("\"row_hash\"".to_string());
    stage_columns.push("\"_effective\"".to_string());

    let mut staged: Vec<Staged> = Vec::new();
    {
        let mut stager = tx.stager(STAGE, &stage_columns).await?;
        for batch in batches(files, None) {
            let batch = batch?;
            let rows = batch.num_rows();
            let mut columns = Vec::with_capacity(stage_columns.len());
            columns.push(Cells::Texts((0..rows).map(|row| Some((staged.len() + row).to_string())).collect()));
            let data_cells: Vec<Cells> = names.data.iter().map(|name| column(&batch, name)).collect::<Result<_>>()?;
            let position = |name: &String| names.data.iter().position(|candidate| candidate == name);
            let key_positions: Vec<usize> = names.natural_key.iter().filter_map(position).collect();
            let tracked_positions: Vec<usize> = tracked.iter().filter_map(position).collect();
            let effective = match &effective_from {
                Some(name) => Some(column(&batch, name)?),
                None => None,
            };
            let mut hashes = Vec::with_capacity(rows);
            let mut effectives = Vec::with_capacity(rows);
            for row in 0..rows {
                let natural: Vec<String> =
                    key_positions.iter().map(|&index| data_cells[index].text(row).unwrap_or_default()).collect();
                let hash = row_hash(tracked_positions.iter().map(|&index| data_cells[index].text(row)));
                let when = effective
                    .as_ref()
                    .and_then(|cells| effective_text(cells, row))
                    .unwrap_or_else(|| run_time.to_string());
                staged.push(Staged {
                    row: (staged.len()) as i64,
                    natural_key: natural.join("\u{1f}"),
                    hash: hash.clone(),
                    effective: when.clone(),
                });
                hashes.push(Some(hash));
                effectives.push(Some(when));
            }
            columns.extend(data_cells);
            columns.push(Cells::Texts(hashes));
            columns.push(Cells::Texts(effectives));
            stager.send(&StageBatch { columns, rows }).await?;
        }
        stager.finish().await?;
    }

    // The versions of the touched keys, and the highest surrogate key.
    let mut select = vec![format!("CAST(d.{key} AS TEXT)")];
    select.extend(natural_key.iter().map(|column| format!("CAST(d.{column} AS TEXT)")));
    select.push("d.\"row_hash\"".to_string());
    select.push(sql.timestamp_text("d.\"valid_from\""));
    select.push(sql.timestamp_text("d.\"valid_to\""));
    select.push(sql.flag_text("d.\"is_current\""));
    select.push(sql.flag_text("d.\"is_inferred\""));
    let matches = join_on(natural_key.iter().map(|column| (format!("s.{column}"), format!("d.{column}"))));
    let rows = tx
        .fetch_text(
            "reading the current versions",
            format!(
                "SELECT {} FROM {table} d WHERE EXISTS (SELECT 1 FROM {STAGE} s WHERE {matches})",
                select.join(", ")
            ),
        )
        .await?;
    let mut existing: BTreeMap<String, Vec<Version>> = BTreeMap::new();
    let width = natural_key.len();
    for row in rows {
        let text = |index: usize| row.get(index).cloned().flatten();
        let version = Version {
            key: text(0).and_then(|key| key.parse().ok()).unwrap_or_default(),
            hash: text(width + 1),
            valid_from: text(width + 2).unwrap_or_else(|| INFERRED_FROM.to_string()),
            valid_to: text(width + 3),
            is_current: text(width + 4).as_deref() == Some("1"),
            is_inferred: text(width + 5).as_deref() == Some("1"),
        };
        let natural: Vec<String> = (1..=width).map(|index| text(index).unwrap_or_default()).collect();
        existing.entry(natural.join("\u{1f}")).or_default().push(version);
    }
    let max_key = tx
        .fetch_count(
            "reading the highest surrogate key",
            format!("SELECT CAST(COALESCE(MAX({key}), 0) AS TEXT) FROM {table}"),
        )
        .await?;
    staged
        .sort_by(|a, b| a.natural_key.cmp(&b.natural_key).then(a.effective.cmp(&b.effective)).then(a.row.cmp(&b.row)));
    let plan = scd::plan(&staged, existing, max_key);

    // The plan, staged.
    let plan_definitions = [
        format!("\"key\" {}", sql.key_type()),
        format!("\"_row\" {}", sql.key_type()),
        "\"action\" TEXT".to_string(),
        format!("\"valid_from\" {}", sql.timestamp_type()),
        format!("\"valid_to\" {}", sql.timestamp_type()),
        format!("\"is_current\" {}", sql.boolean_type()),
    ];
    tx.create_temp(PLAN, &plan_definitions).await?;
    let plan_columns: Vec<String> = ["key", "_row", "action", "valid_from", "valid_to", "is_current"]
        .iter()
        .map(|name| format!("\"{name}\""))
        .collect();
    {
        let mut stager = tx.stager(PLAN, &plan_columns).await?;
        for chunk in plan.rows.chunks(16_384) {
            let columns = vec![
                Cells::Texts(chunk.iter().map(|row| Some(row.key.to_string())).collect()),
                Cells::Texts(chunk.iter().map(|row| row.row.map(|row| row.to_string())).collect()),
                Cells::Texts(
                    chunk
                        .iter()
                        .map(|row| {
                            Some(
                                match row.action {
                                    scd::Action::Insert => "insert",
                                    scd::Action::Update => "update",
                                    scd::Action::Type1 => "type1",
                                }
                                .to_string(),
                            )
                        })
                        .collect(),
                ),
                Cells::Texts(chunk.iter().map(|row| Some(row.valid_from.clone())).collect()),
                Cells::Texts(chunk.iter().map(|row| row.valid_to.clone()).collect()),
                Cells::Texts(
                    chunk.iter().map(|row| Some(if row.is_current { "1" } else { "0" }.to_string())).collect(),
                ),
            ];
            stager.send(&StageBatch { columns, rows: chunk.len() }).await?;
        }
        stager.finish().await?;
    }

    // Apply: validity first (closing current versions before new ones open), then columns.
    let target = |column: &str| format!("{table}.{column}");
    tx.execute(
        "closing versions",
        format!(
            "UPDATE {table} SET \"valid_to\" = p.\"valid_to\", \"is_current\" = p.\"is_current\" \
             FROM {PLAN} p WHERE {} = p.\"key\" AND p.\"action\" = 'update' AND p.\"_row\" IS NULL",
            target(&key)
        ),
        None,
    )
    .await?;
    let mut assignments: Vec<String> = data.iter().map(|column| format!("{column} = s.{column}")).collect();
    assignments.extend([
        "\"row_hash\" = s.\"row_hash\"".to_string(),
        "\"valid_from\" = p.\"valid_from\"".to_string(),
        "\"valid_to\" = p.\"valid_to\"".to_string(),
        "\"is_current\" = p.\"is_current\"".to_string(),
        "\"is_inferred\" = FALSE".to_string(),
        "\"run_id\" = $1".to_string(),
    ]);
    tx.execute(
        "rewriting versions",
        format!(
            "UPDATE {table} SET {} FROM {PLAN} p JOIN {STAGE} s ON s.\"_row\" = p.\"_row\" \
             WHERE {} = p.\"key\" AND p.\"action\" = 'update'",
            assignments.join(", "),
            target(&key)
        ),
        Some(run_id),
    )
    .await?;
    let mut columns = vec![key.clone()];
    columns.extend(data.iter().cloned());
    columns.extend(
        ["row_hash", "valid_from", "valid_to", "is_current", "is_inferred", "run_id"].map(|name| format!("\"{name}\"")),
    );
    let mut values = vec!["p.\"key\"".to_string()];
    values.extend(data.iter().map(|column| format!("s.{column}")));
    values.extend(
        ["s.\"row_hash\"", "p.\"valid_from\"", "p.\"valid_to\"", "p.\"is_current\"", "FALSE", "$1"].map(str::to_string),
    );
    tx.execute(
        "inserting versions",
        format!(
            "INSERT INTO {table} ({}) SELECT {} FROM {PLAN} p JOIN {STAGE} s ON s.\"_row\" = p.\"_row\" \
             WHERE p.\"action\" = 'insert' ORDER BY p.\"key\"",
            columns.join(", "),
            values.join(", ")
        ),
        Some(run_id),
    )
    .await?;
    let mut type1_updated = 0;
    if !type1.is_empty() && plan.type1 > 0 {
        let type1 = quoted(&type1)?;
        let mut assignments: Vec<String> = type1.iter().map(|column| format!("{column} = s.{column}")).collect();
        assignments.push("\"run_id\" = $1".to_string());
        let differs: Vec<String> =
            type1.iter().map(|column| sql.differs(&target(column), &format!("s.{column}"))).collect();
        type1_updated = tx
            .execute(
                "overwriting type 1 columns",
                format!(
                    "UPDATE {table} SET {} FROM {PLAN} p JOIN {STAGE} s ON s.\"_row\" = p.\"_row\" \
                     WHERE {} = p.\"key\" AND p.\"action\" = 'type1' AND ({})",
                    assignments.join(", "),
                    target(&key),
                    differs.join(" OR ")
                ),
                Some(run_id),
            )
            .await?;
    }
    tx.drop_temp(&[STAGE, PLAN]).await?;
    Ok(TableCounts {
        inserted: plan.inserted,
        updated: plan.updated + type1_updated,
        unchanged: plan.unchanged + plan.type1 - type1_updated.min(plan.type1),
        inferred: 0,
    })
}

/// The hash of the tracked columns' text, nulls distinct from empty text.
fn row_hash(values: impl Iterator<Item = Option<String>>) -> String {
    let mut hasher = Sha256::new();
    for value in values {
        match value {
            Some(text) => {
                hasher.update([1u8]);
                hasher.update((text.len() as u64).to_le_bytes());
                hasher.update(text.as_bytes());
            }
            None => hasher.update([0u8]),
        }
    }
    hasher.finalize()[..16].iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The instant a date or timestamp cell names, as fixed-width text.
fn effective_text(cells: &Cells, row: usize) -> Option<String> {
    match cells {
        Cells::Arrow(column @ TextColumn::Date(_)) => column
            .date(row)
            .and_then(|date| date.and_hms_opt(0, 0, 0))
            .map(|midnight| timestamp_text(midnight.and_utc())),
        Cells::Arrow(column @ TextColumn::Timestamp(_)) => column.text(row),
        _ => None,
    }
}

/// The versions of one dimension, by natural key, for the facts' as-of lookups: validity in
/// microseconds, so a fact row costs no text formatting or comparison.
struct DimensionIndex {
    versions: HashMap<String, Vec<(i64, Option<i64>, i64)>>,
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
    natural_types: Vec<String>,
    fact_columns: Vec<String>,
}

/// Reads every version of a dimension (natural key, validity, surrogate key).
async fn dimension_index(tx: &mut Tx, sql: &Sql, reference: &Reference) -> Result<DimensionIndex> {
    let mut select: Vec<String> =
        reference.natural_key.iter().map(|column| format!("CAST({column} AS TEXT)")).collect();
    select.push(format!("CAST({} AS TEXT)", reference.key));
    select.push(sql.timestamp_text("\"valid_from\""));
    select.push(sql.timestamp_text("\"valid_to\""));
    let rows = tx
        .fetch_text(
            &format!("reading the versions of {}", reference.table),
            format!("SELECT {} FROM {}", select.join(", "), reference.table),
        )
        .await?;
    let width = reference.natural_key.len();
    let mut versions: HashMap<String, Vec<(i64, Option<i64>, i64)>> = HashMap::with_capacity(rows.len());
    let mut max_key = 0;
    let inferred_from = scd::timestamp_micros(INFERRED_FROM).unwrap_or(i64::MIN);
    for row in rows {
        let natural: Vec<String> = row[..width].iter().map(|value| value.clone().unwrap_or_default()).collect();
        let key: i64 = row[width].as_deref().and_then(|key| key.parse().ok()).unwrap_or_default();
        max_key = max_key.max(key);
        let from = row[width + 1].as_deref().and_then(scd::timestamp_micros).unwrap_or(inferred_from);
        let to = row[width + 2].as_deref().and_then(scd::timestamp_micros);
        versions.entry(natural.join("\u{1f}")).or_default().push((from, to, key));
    }
    for list in versions.values_mut() {
        list.sort();
    }
    Ok(DimensionIndex { versions, max_key })
}

/// The natural key text of a fact row's reference, `None` when a part is null.
fn reference_text(cells: &[Cells], row: usize) -> Option<String> {
    if let [single] = cells {
        return single.text(row);
    }
    let mut parts = Vec::with_capacity(cells.len());
    for cell in cells {
        parts.push(cell.text(row)?);
    }
    Some(parts.join("\u{1f}"))
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
        let dimension_types: BTreeMap<String, String> = ddl::table_columns(dimension, contract, sql.dialect)?
            .into_iter()
            .map(|column| (column.name, column.sql_type))
            .collect();
        references.push(Reference {
            table: quote(&dimension.table.name)?,
            key: quote(&surrogate_key(&dimension.table.name))?,
            natural_key: quoted(&dimension_names.natural_key)?,
            natural_types: dimension_names
                .natural_key
                .iter()
                .map(|name| dimension_types.get(name).cloned().unwrap_or_else(|| "TEXT".to_string()))
                .collect(),
            fact_columns: reference
                .columns
                .iter()
                .map(|name| dataset.column(name).map_or(name.clone(), |column| column.target_name().to_string()))
                .collect(),
        });
    }
    references.sort_by(|a, b| a.table.cmp(&b.table));
    let reopen = |files: &[File]| -> Result<Vec<File>> {
        files
            .iter()
            .map(|file| {
                let mut file = file.try_clone().map_err(|error| Error::arrow("reopening a curated part", error))?;
                std::io::Seek::rewind(&mut file).map_err(|error| Error::arrow("rewinding a curated part", error))?;
                Ok(file)
            })
            .collect()
    };

    // The dimensions, and inferred members for natural keys they do not have.
    let mut indexes = Vec::with_capacity(references.len());
    for reference in &references {
        indexes.push(dimension_index(tx, &sql, reference).await?);
    }
    let mut missing: Vec<BTreeSet<String>> = vec![BTreeSet::new(); references.len()];
    let reference_columns: Vec<String> =
        references.iter().flat_map(|reference| reference.fact_columns.iter().cloned()).collect();
    for batch in batches(reopen(&files)?, Some(reference_columns)) {
        let batch = batch?;
        for ((reference, index), missing) in references.iter().zip(&indexes).zip(missing.iter_mut()) {
            let cells: Vec<Cells> =
                reference.fact_columns.iter().map(|name| column(&batch, name)).collect::<Result<_>>()?;
            for row in 0..batch.num_rows() {
                if let Some(natural) =
                    reference_text(&cells, row).filter(|natural| !index.versions.contains_key(natural))
                {
                    missing.insert(natural);
                }
            }
        }
    }
    let mut inferred = BTreeMap::new();
    for ((reference, index), missing) in references.iter().zip(indexes.iter_mut()).zip(missing) {
        let added = missing.len() as u64;
        if added > 0 {
            add_inferred(tx, &sql, reference, index, missing, run_id).await?;
            tracing::info!(run = %run_id, dimension = %reference.table, inferred = added, "Added inferred members.");
        }
        inferred.insert(reference.table.trim_matches('"').to_string(), added);
    }

    // The rows with their keys, in the fact table's column order.
    let mut columns: Vec<String> = references.iter().map(|reference| reference.key.clone()).collect();
    if date_column.is_some() {
        columns.push("\"date_key\"".to_string());
    }
    columns.extend(data.iter().cloned());
    columns.push("\"run_id\"".to_string());
    let mut dates = BTreeSet::new();
    let mut rows = 0u64;
    let encode = |batch: &RecordBatch, dates: &mut BTreeSet<chrono::NaiveDate>| -> Result<StageBatch> {
        let count = batch.num_rows();
        let date_cells = match &date_column {
            Some(name) => Some(column(batch, name)?),
            None => None,
        };
        let mut as_of = Vec::with_capacity(count);
        let mut date_keys = Vec::with_capacity(count);
        const DAY: i64 = 86_400_000_000;
        for row in 0..count {
            let (instant, key) = match &date_cells {
                Some(Cells::Arrow(column @ TextColumn::Date(array))) => {
                    let date = column.date(row);
                    dates.extend(date);
                    // As of the end of the fact's day.
                    let next = (!array.is_null(row)).then(|| i64::from(array.value(row)) * DAY + DAY);
                    (next, date.map(date_key))
                }
                Some(Cells::Arrow(column @ TextColumn::Timestamp(array))) => {
                    let instant = (!array.is_null(row)).then(|| array.value(row) + 1);
                    let date = column.date(row);
                    dates.extend(date);
                    (instant, date.map(date_key))
                }
                _ => (None, None),
            };
            as_of.push(instant.unwrap_or(i64::MAX));
            date_keys.push(key.map(|key| key.to_string()));
        }
        let mut cells = Vec::with_capacity(columns.len());
        for (reference, index) in references.iter().zip(&indexes) {
            let fact: Vec<Cells> =
                reference.fact_columns.iter().map(|name| column(batch, name)).collect::<Result<_>>()?;
            let keys = (0..count)
                .map(|row| {
                    reference_text(&fact, row)
                        .and_then(|natural| index.lookup(&natural, as_of[row]))
                        .map(|key| key.to_string())
                })
                .collect();
            cells.push(Cells::Texts(keys));
        }
        if date_column.is_some() {
            cells.push(Cells::Texts(date_keys));
        }
        for name in &names.data {
            cells.push(column(batch, name)?);
        }
        cells.push(Cells::Constant(Some(run_id.to_string())));
        Ok(StageBatch { columns: cells, rows: count })
    };

    // Straight into the fact table, in a savepoint: it succeeds unless a fact is there already.
    tx.execute("opening a savepoint", "SAVEPOINT lakestar_facts".to_string(), None).await?;
    let direct = async {
        let mut stager = tx.stager(&table, &columns).await?;
        for batch in batches(reopen(&files)?, None) {
            let batch = batch?;
            let encoded = encode(&batch, &mut dates)?;
            if let Err(error) = stager.send(&encoded).await {
                stager.abort().await;
                return Err(error);
            }
            rows += encoded.rows as u64;
        }
        stager.finish().await
    }
    .await;
    if direct.is_ok() {
        tx.execute("releasing a savepoint", "RELEASE SAVEPOINT lakestar_facts".to_string(), None).await?;
        return Ok((TableCounts { inserted: rows, ..TableCounts::default() }, inferred, dates));
    }
    tx.execute("rolling back to a savepoint", "ROLLBACK TO SAVEPOINT lakestar_facts".to_string(), None).await?;
    dates.clear();
    rows = 0;

    // Some facts exist: stage, then upsert what differs.
    let types: BTreeMap<String, String> = ddl::table_columns(dataset, contract, sql.dialect)?
        .into_iter()
        .map(|column| (format!("\"{}\"", column.name), column.sql_type))
        .collect();
    let definitions: Vec<String> =
        columns.iter().map(|column| format!("{column} {}", types.get(column).map_or("TEXT", String::as_str))).collect();
    tx.create_temp(STAGE, &definitions).await?;
    {
        let mut stager = tx.stager(STAGE, &columns).await?;
        for batch in batches(reopen(&files)?, None) {
            let encoded = encode(&batch?, &mut dates)?;
            stager.send(&encoded).await?;
            rows += encoded.rows as u64;
        }
        stager.finish().await?;
    }
    tx.analyze(STAGE).await?;
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
    sql: &Sql,
    reference: &Reference,
    index: &mut DimensionIndex,
    missing: BTreeSet<String>,
    run_id: &str,
) -> Result<()> {
    const INFERRED: &str = "lakestar_inferred";
    let mut definitions = vec![format!("\"key\" {}", sql.key_type())];
    definitions.extend(
        reference
            .natural_key
            .iter()
            .zip(&reference.natural_types)
            .map(|(column, sql_type)| format!("{column} {sql_type}")),
    );
    tx.create_temp(INFERRED, &definitions).await?;
    let mut keys = Vec::with_capacity(missing.len());
    let mut parts: Vec<Vec<Option<String>>> = vec![Vec::with_capacity(missing.len()); reference.natural_key.len()];
    for natural in &missing {
        index.max_key += 1;
        keys.push(Some(index.max_key.to_string()));
        for (position, part) in natural.split('\u{1f}').enumerate() {
            if let Some(column) = parts.get_mut(position) {
                column.push(Some(part.to_string()));
            }
        }
        index.versions.insert(
            natural.clone(),
            vec![(scd::timestamp_micros(INFERRED_FROM).unwrap_or(i64::MIN), None, index.max_key)],
        );
    }
    let mut columns = vec!["\"key\"".to_string()];
    columns.extend(reference.natural_key.iter().cloned());
    let mut cells = vec![Cells::Texts(keys)];
    cells.extend(parts.into_iter().map(Cells::Texts));
    {
        let mut stager = tx.stager(INFERRED, &columns).await?;
        stager.send(&StageBatch { columns: cells, rows: missing.len() }).await?;
        stager.finish().await?;
    }
    let natural = reference.natural_key.join(", ");
    let values: Vec<String> = reference.natural_key.iter().map(|column| format!("i.{column}")).collect();
    tx.execute(
        "adding inferred members",
        format!(
            "INSERT INTO {table} ({key}, {natural}, \"row_hash\", \"valid_from\", \"valid_to\", \"is_current\", \"is_inferred\", \"run_id\") \
             SELECT i.\"key\", {values}, NULL, {low}, NULL, TRUE, TRUE, $1 FROM {INFERRED} i ORDER BY i.\"key\"",
            table = reference.table,
            key = reference.key,
            values = values.join(", "),
            low = sql.timestamp_literal(INFERRED_FROM),
        ),
        Some(run_id),
    )
    .await?;
    tx.drop_temp(&[INFERRED]).await
}
