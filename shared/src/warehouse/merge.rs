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

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;

use arrow::array::{Array, RecordBatch};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::ddl::{self, Dialect, quote, surrogate_key};
use super::scd::{self, INFERRED_FROM, Staged, Version, timestamp_text};
use super::text::TextColumn;
use super::tx::{Cells, StageBatch, Tx};
use crate::contract::{Contract, Dataset, TableKind};
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

/// Reads the curated parts batch by batch.
pub(crate) fn batches(files: Vec<File>) -> impl Iterator<Item = Result<RecordBatch>> + Send {
    files.into_iter().flat_map(|file| {
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .and_then(|builder| builder.with_batch_size(16_384).build())
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
        for batch in batches(files) {
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
    tx.analyze(STAGE).await?;

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
    tx.analyze(PLAN).await?;

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

/// Loads a fact run: stage, add inferred members, upsert with keys looked up as of the date.
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
    let types: BTreeMap<String, String> = ddl::table_columns(dataset, contract, sql.dialect)?
        .into_iter()
        .map(|column| (column.name, column.sql_type))
        .collect();
    let mut definitions = Vec::new();
    for (name, quoted_name) in names.data.iter().zip(&data) {
        definitions.push(format!("{quoted_name} {}", types.get(name).map_or("TEXT", String::as_str)));
    }
    definitions.push(format!("\"_asof\" {}", sql.timestamp_type()));
    let mut stage_columns = data.clone();
    stage_columns.push("\"_asof\"".to_string());
    if date_column.is_some() {
        definitions.push(format!("\"date_key\" {}", sql.key_type()));
        stage_columns.push("\"date_key\"".to_string());
    }
    tx.create_temp(STAGE, &definitions).await?;

    let mut dates = BTreeSet::new();
    let mut staged_rows = 0u64;
    {
        let mut stager = tx.stager(STAGE, &stage_columns).await?;
        for batch in batches(files) {
            let batch = batch?;
            let rows = batch.num_rows();
            let mut columns: Vec<Cells> = names.data.iter().map(|name| column(&batch, name)).collect::<Result<_>>()?;
            let date_cells = match &date_column {
                Some(name) => Some(column(&batch, name)?),
                None => None,
            };
            let mut as_of = Vec::with_capacity(rows);
            let mut date_keys = Vec::with_capacity(rows);
            for row in 0..rows {
                let (instant, key) = match &date_cells {
                    Some(Cells::Arrow(column @ TextColumn::Date(_))) => {
                        let date = column.date(row);
                        if let Some(date) = date {
                            dates.insert(date);
                        }
                        // As of the end of the fact's day.
                        let next = date.and_then(|date| date.succ_opt()).and_then(|date| date.and_hms_opt(0, 0, 0));
                        (next.map(|next| timestamp_text(next.and_utc())), date.map(date_key))
                    }
                    Some(Cells::Arrow(column @ TextColumn::Timestamp(array))) => {
                        let instant = (!array.is_null(row))
                            .then(|| chrono::DateTime::from_timestamp_micros(array.value(row) + 1))
                            .flatten();
                        let date = column.date(row);
                        if let Some(date) = date {
                            dates.insert(date);
                        }
                        (instant.map(timestamp_text), date.map(date_key))
                    }
                    _ => (None, None),
                };
                as_of.push(Some(instant.unwrap_or_else(|| "9999-12-31T00:00:00.000000Z".to_string())));
                date_keys.push(key.map(|key| key.to_string()));
            }
            columns.push(Cells::Texts(as_of));
            if date_column.is_some() {
                columns.push(Cells::Texts(date_keys));
            }
            stager.send(&StageBatch { columns, rows }).await?;
            staged_rows += rows as u64;
        }
        stager.finish().await?;
    }
    tx.analyze(STAGE).await?;

    // Inferred members for natural keys a dimension does not have yet.
    let mut inferred = BTreeMap::new();
    let mut key_columns = Vec::new();
    let mut key_values = Vec::new();
    let mut joins = Vec::new();
    let mut references: Vec<_> = dataset
        .table
        .references
        .iter()
        .filter_map(|reference| {
            contract.datasets.iter().find(|other| other.table.name == reference.dimension).map(|dim| (reference, dim))
        })
        .collect();
    references.sort_by(|a, b| a.0.dimension.cmp(&b.0.dimension));
    for (index, (reference, dimension)) in references.iter().enumerate() {
        let dim_table = quote(&dimension.table.name)?;
        let dim_key = quote(&surrogate_key(&dimension.table.name))?;
        let dim_names = Names::of(dimension);
        let dim_natural = quoted(&dim_names.natural_key)?;
        let fact_columns: Vec<String> = reference
            .columns
            .iter()
            .map(|name| quote(dataset.column(name).map_or(name.as_str(), |column| column.target_name())))
            .collect::<Result<_>>()?;
        let pairs = |left: &str, right: &str| {
            join_on(
                dim_natural
                    .iter()
                    .zip(&fact_columns)
                    .map(|(dim, fact)| (format!("{left}.{dim}"), format!("{right}.{fact}"))),
            )
        };
        let present: Vec<String> = fact_columns.iter().map(|column| format!("s.{column} IS NOT NULL")).collect();
        let distinct: Vec<String> =
            fact_columns.iter().zip(&dim_natural).map(|(fact, dim)| format!("s.{fact} AS {dim}")).collect();
        let order: Vec<String> = dim_natural.iter().map(|column| format!("x.{column}")).collect();
        let statement = format!(
            "INSERT INTO {dim_table} ({dim_key}, {natural}, \"row_hash\", \"valid_from\", \"valid_to\", \"is_current\", \"is_inferred\", \"run_id\") \
             SELECT m.top + ROW_NUMBER() OVER (ORDER BY {order}), {order}, NULL, {low}, NULL, TRUE, TRUE, $1 \
             FROM (SELECT DISTINCT {distinct} FROM {STAGE} s WHERE {present} \
                   AND NOT EXISTS (SELECT 1 FROM {dim_table} d WHERE {matches})) x \
             CROSS JOIN (SELECT COALESCE(MAX({dim_key}), 0) AS top FROM {dim_table}) m",
            natural = dim_natural.join(", "),
            order = order.join(", "),
            distinct = distinct.join(", "),
            present = present.join(" AND "),
            matches = pairs("d", "s"),
            low = sql.timestamp_literal(INFERRED_FROM),
        );
        let added = tx.execute("adding inferred members", statement, Some(run_id)).await?;
        if added > 0 {
            tracing::info!(run = %run_id, dimension = %dimension.table.name, inferred = added, "Added inferred members.");
        }
        inferred.insert(dimension.table.name.clone(), added);

        // The version in effect at the end of the fact's day, else the key's first version.
        let alias = format!("d{index}");
        let in_effect = format!(
            "{} AND {alias}.\"valid_from\" < s.\"_asof\" AND ({alias}.\"valid_to\" IS NULL OR {alias}.\"valid_to\" >= s.\"_asof\")",
            pairs(&alias, "s")
        );
        joins.push(format!("LEFT JOIN {dim_table} {alias} ON {in_effect}"));
        key_columns.push(dim_key.clone());
        key_values.push(format!(
            "COALESCE({alias}.{dim_key}, (SELECT f.{dim_key} FROM {dim_table} f WHERE {} ORDER BY f.\"valid_from\" LIMIT 1))",
            pairs("f", "s")
        ));
    }

    let existing = tx
        .fetch_count(
            "counting facts already loaded",
            format!(
                "SELECT CAST(COUNT(*) AS TEXT) FROM {STAGE} s WHERE EXISTS (SELECT 1 FROM {table} t WHERE {})",
                join_on(natural_key.iter().map(|column| (format!("t.{column}"), format!("s.{column}"))))
            ),
        )
        .await? as u64;

    let mut columns = key_columns.clone();
    let mut values = key_values;
    if date_column.is_some() {
        columns.push("\"date_key\"".to_string());
        values.push("s.\"date_key\"".to_string());
    }
    columns.extend(data.iter().cloned());
    values.extend(data.iter().map(|column| format!("s.{column}")));
    let compared: Vec<String> = columns.iter().filter(|column| !natural_key.contains(column)).cloned().collect();
    columns.push("\"run_id\"".to_string());
    values.push("$1".to_string());
    let assignments: Vec<String> = columns
        .iter()
        .filter(|column| !natural_key.contains(column))
        .map(|column| format!("{column} = excluded.{column}"))
        .collect();
    let differs: Vec<String> = compared
        .iter()
        .map(|column| sql.differs(&format!("{table}.{column}"), &format!("excluded.{column}")))
        .collect();
    let changed = tx
        .execute(
            "upserting facts",
            format!(
                "INSERT INTO {table} ({}) SELECT {} FROM {STAGE} s {} WHERE TRUE \
                 ON CONFLICT ({}) DO UPDATE SET {} WHERE {}",
                columns.join(", "),
                values.join(", "),
                joins.join(" "),
                natural_key.join(", "),
                assignments.join(", "),
                if differs.is_empty() { "FALSE".to_string() } else { differs.join(" OR ") }
            ),
            Some(run_id),
        )
        .await?;
    tx.drop_temp(&[STAGE]).await?;
    let inserted = staged_rows.saturating_sub(existing);
    let updated = changed.saturating_sub(inserted);
    Ok((TableCounts { inserted, updated, unchanged: existing.saturating_sub(updated), inferred: 0 }, inferred, dates))
}

/// `YYYYMMDD` of a date, the key of `dim_date`.
pub fn date_key(date: chrono::NaiveDate) -> i32 {
    super::dates::DateRow::of(date).date_key
}

/// Whether a dataset loads as a dimension.
pub(crate) fn is_dimension(dataset: &Dataset) -> bool {
    dataset.table.kind == TableKind::Dimension
}
