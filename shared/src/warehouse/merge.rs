//! Loading one run's curated rows into its star table, set-based: what the merge needs is
//! bulk-staged into temporary tables, then a few statements apply it.
//!
//! Dimensions: every row is keyed and hashed (tracked columns, type 1 columns), the versions
//! of the delivered keys are read once, the SCD merge is planned in memory ([`super::scd`]);
//! versions that change are staged with the plan and applied by a few statements (close,
//! rewrite, overwrite type 1 columns), new versions are copied straight into the table. A row
//! equal to its current version costs two hashes and nothing in the database.
//!
//! Facts: the dimensions' versions are read once, inferred members are added for natural
//! keys the dimensions do not have yet, and every row's dimension keys are looked up as of
//! the fact's date while the rows stream into the fact table (or, when some facts are there
//! already, into a staging table and one upsert touching only rows that differ).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs::File;
use std::time::Instant;

use arrow::array::{Array, RecordBatch};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::bulk;
use super::dates::date_key;
use super::ddl::{self, Dialect, quote, surrogate_key};
use super::scd::{self, INFERRED_FROM, Staged, Version, timestamp_text};
use super::text::TextColumn;
use super::tx::{Cells, Kind, Producer, StageBatch, Tx, Value};
use crate::contract::{Contract, Dataset};
use crate::{Error, Result};

const STAGE: &str = "lakestar_stage";
const KEYS: &str = "lakestar_keys";
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

/// Reopens the curated parts from their start, for another pass.
fn reopen(files: &[File]) -> Result<Vec<File>> {
    files
        .iter()
        .map(|file| {
            let mut file = file.try_clone().map_err(|error| Error::arrow("reopening a curated part", error))?;
            std::io::Seek::rewind(&mut file).map_err(|error| Error::arrow("rewinding a curated part", error))?;
            Ok(file)
        })
        .collect()
}

/// Debug-level timings of a load's steps (`LAKESTAR_LOG=lakestar=debug` offline,
/// `AWS_LAMBDA_LOG_LEVEL=DEBUG` in Lambda).
struct Steps<'a> {
    run: &'a str,
    table: &'a str,
    last: Instant,
}

impl<'a> Steps<'a> {
    fn new(run: &'a str, table: &'a str) -> Steps<'a> {
        Steps { run, table, last: Instant::now() }
    }

    fn done(&mut self, step: &str, rows: usize) {
        let ms = self.last.elapsed().as_millis() as u64;
        tracing::debug!(run = %self.run, table = %self.table, step, rows, ms, "Load step done.");
        self.last = Instant::now();
    }
}

/// Columns of the plan table besides the data columns (named so no contract column clashes).
const PLAN_COLUMNS: [&str; 6] = [
    "lakestar_key",
    "lakestar_row",
    "lakestar_action",
    "lakestar_valid_from",
    "lakestar_valid_to",
    "lakestar_is_current",
];

/// The plan's own cells for `rows`, in [`PLAN_COLUMNS`] order.
fn plan_cells(rows: &[scd::PlanRow]) -> Vec<Cells> {
    let action = |action: &scd::Action| match action {
        scd::Action::Insert => "insert",
        scd::Action::Update => "update",
        scd::Action::Type1 => "type1",
    };
    vec![
        Cells::Integers(rows.iter().map(|row| Some(row.key)).collect()),
        Cells::Integers(rows.iter().map(|row| row.row).collect()),
        Cells::Texts(rows.iter().map(|row| Some(action(&row.action).to_string())).collect()),
        Cells::Texts(rows.iter().map(|row| Some(row.valid_from.clone())).collect()),
        Cells::Texts(rows.iter().map(|row| row.valid_to.clone()).collect()),
        Cells::Texts(rows.iter().map(|row| Some(if row.is_current { "1" } else { "0" }.to_string())).collect()),
    ]
}

/// Loads a dimension run: a first pass keys and hashes every row on a thread of its own while
/// the database yields the versions those keys have (from the whole table when it is at most
/// twice the delivery, else for the staged keys; none from an empty table); the SCD merge is
/// planned in memory; changed versions are staged with their plan and applied by a few
/// statements; new versions are copied straight into the table (an empty table with its keys
/// and indexes set aside). Unchanged rows cost a hash and nothing in the database.
pub(crate) async fn load_dimension(
    tx: &mut Tx,
    dataset: &Dataset,
    contract: &Contract,
    run_id: &str,
    run_time: &str,
    files: Vec<File>,
) -> Result<TableCounts> {
    let mut steps = Steps::new(run_id, &dataset.table.name);
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
    let types: BTreeMap<String, String> = ddl::table_columns(dataset, contract, sql.dialect)?
        .into_iter()
        .map(|column| (column.name, column.sql_type))
        .collect();
    let typed = |name: &String, quoted_name: &String| {
        format!("{quoted_name} {}", types.get(name).map_or("TEXT", String::as_str))
    };
    let position = |name: &String| names.data.iter().position(|candidate| candidate == name);
    let key_positions: Vec<usize> = names.natural_key.iter().filter_map(position).collect();
    let tracked_positions: Vec<usize> = tracked.iter().filter_map(position).collect();
    let type1_positions: Vec<usize> = type1.iter().filter_map(position).collect();

    // Which versions to read: none from an empty table (a first delivery, whose rows are then
    // copied in with the table's keys and indexes set aside); all of them from a table at most
    // twice the delivery's size (one scan costs less than staging the keys and joining them);
    // else the versions of the delivered keys, staged.
    let delivered = row_count(&files)?;
    let limit = delivered.saturating_mul(2).saturating_add(1);
    let holding = bulk::count_up_to(tx, &table, limit).await?;
    let empty = holding == 0;
    let stage_keys = holding >= limit;

    // Every row keyed and hashed on a thread of its own, while the database stages the natural
    // keys or reads the versions of the whole table.
    let keyed = KeyedRows {
        batches: Box::new(batches(reopen(&files)?, None)),
        data: names.data.clone(),
        natural_key: names.natural_key.clone(),
        key_positions,
        tracked_positions,
        type1_positions,
        effective_from,
        run_time: run_time.to_string(),
        staged: Vec::with_capacity(delivered.min(1 << 20) as usize),
    };
    let (staged, existing) = if empty {
        (keyed.drain().await?, scd::Existing::default())
    } else if stage_keys {
        let key_definitions: Vec<String> =
            names.natural_key.iter().zip(&natural_key).map(|(name, quoted_name)| typed(name, quoted_name)).collect();
        tx.create_temp(KEYS, &key_definitions).await?;
        let (keyed, staged) = tx.stage_from(KEYS, &natural_key, keyed).await?;
        staged?;
        // Statistics, so that PostgreSQL joins a large delivery by hash instead of one index
        // probe per key (0.8 s against 0.1 s for 200 000 keys); a small one still probes.
        tx.analyze(KEYS).await?;
        let versions = read_versions(tx, &sql, &table, &key, &natural_key, true).await?;
        tx.drop_temp(&[KEYS]).await?;
        (keyed.staged, versions)
    } else {
        let (staged, versions) =
            tokio::join!(keyed.drain(), read_versions(tx, &sql, &table, &key, &natural_key, false));
        (staged?, versions?)
    };
    let max_key = if empty {
        0
    } else {
        tx.fetch_count(
            "reading the highest surrogate key",
            format!("SELECT CAST(COALESCE(MAX({key}), 0) AS TEXT) FROM {table}"),
        )
        .await?
    };
    steps.done("keyed and hashed the rows, read the versions of their keys", staged.len());

    // The plan; then each staged row's hashes by its number, for the rows the plan writes.
    let scd::Plan { rows: planned, inserted, updated, type1: type1_rows, unchanged } =
        scd::plan(&staged, existing, max_key);
    let mut hashes = vec![(String::new(), String::new()); staged.len()];
    for row in staged {
        if let Some(slot) = hashes.get_mut(row.row as usize) {
            *slot = (row.hash, row.type1_hash);
        }
    }
    let (inserts, changes): (Vec<scd::PlanRow>, Vec<scd::PlanRow>) =
        planned.into_iter().partition(|row| row.action == scd::Action::Insert);
    steps.done("planned the merge", inserts.len() + changes.len());

    // Versions that change in place (closed, rewritten, type 1 overwritten): staged with the
    // columns of the rows they take, and applied by three statements.
    let mut type1_updated = 0;
    if !changes.is_empty() {
        let count = changes.len();
        let mut definitions = vec![
            format!("\"lakestar_key\" {}", sql.key_type()),
            format!("\"lakestar_row\" {}", sql.key_type()),
            "\"lakestar_action\" TEXT".to_string(),
            format!("\"lakestar_valid_from\" {}", sql.timestamp_type()),
            format!("\"lakestar_valid_to\" {}", sql.timestamp_type()),
            format!("\"lakestar_is_current\" {}", sql.boolean_type()),
        ];
        definitions.extend(names.data.iter().zip(&data).map(|(name, quoted_name)| typed(name, quoted_name)));
        definitions.push("\"row_hash\" TEXT".to_string());
        definitions.push("\"type1_hash\" TEXT".to_string());
        tx.create_temp(PLAN, &definitions).await?;
        let mut plan_columns: Vec<String> = PLAN_COLUMNS.iter().map(|name| format!("\"{name}\"")).collect();
        plan_columns.extend(data.iter().cloned());
        plan_columns.push("\"row_hash\"".to_string());
        plan_columns.push("\"type1_hash\"".to_string());
        // Versions whose validity alone changes need no curated columns.
        let (with_rows, validity): (Vec<scd::PlanRow>, Vec<scd::PlanRow>) =
            changes.into_iter().partition(|row| row.row.is_some());
        let validity: Vec<StageBatch> = validity
            .chunks(16_384)
            .map(|chunk| {
                let mut columns = plan_cells(chunk);
                columns.extend((0..data.len() + 2).map(|_| Cells::Constant(None)));
                StageBatch { columns, rows: chunk.len() }
            })
            .collect();
        let producer = PlannedRows::new(&files, with_rows, &mut hashes, Layout::Plan, names.data.clone(), validity)?;
        tx.stage_from(PLAN, &plan_columns, producer).await?.1?;
        if count > 10_000 {
            // Hash joins for the statements below when the plan is large.
            tx.analyze(PLAN).await?;
        }
        steps.done("staged the changes", count);
        type1_updated = apply_changes(tx, &sql, &table, &key, &data, &type1, type1_rows > 0, run_id).await?;
        tx.drop_temp(&[PLAN]).await?;
        steps.done("applied the changes", count);
    }

    // New versions, copied straight into the table (after the closes above, so that the one
    // current version per key holds throughout).
    if !inserts.is_empty() {
        let count = inserts.len();
        let set_aside = if empty { bulk::set_aside(tx, &table).await? } else { bulk::SetAside::default() };
        let mut columns = vec![key.clone()];
        columns.extend(data.iter().cloned());
        columns.extend(
            ["row_hash", "type1_hash", "valid_from", "valid_to", "is_current", "is_inferred", "run_id"]
                .map(|name| format!("\"{name}\"")),
        );
        let layout = Layout::Table { run_id: run_id.to_string() };
        let producer = PlannedRows::new(&files, inserts, &mut hashes, layout, names.data.clone(), Vec::new())?;
        tx.stage_from(&table, &columns, producer).await?.1?;
        steps.done("copied the new versions", count);
        if !set_aside.is_empty() {
            set_aside.rebuild(tx).await?;
            steps.done("built the table's keys and indexes", count);
        }
    }
    Ok(TableCounts {
        inserted,
        updated: updated + type1_updated,
        unchanged: unchanged + type1_rows - type1_updated.min(type1_rows),
        inferred: 0,
    })
}

/// The first pass of a dimension load: every row's natural key, hashes and effective time
/// gathered in `staged`; as a [`Producer`], the natural keys to stage.
struct KeyedRows {
    batches: Box<dyn Iterator<Item = Result<RecordBatch>> + Send>,
    data: Vec<String>,
    natural_key: Vec<String>,
    key_positions: Vec<usize>,
    tracked_positions: Vec<usize>,
    type1_positions: Vec<usize>,
    effective_from: Option<String>,
    run_time: String,
    staged: Vec<Staged>,
}

impl KeyedRows {
    /// Keys and hashes `batch`'s rows; returns its natural key columns.
    fn key(&mut self, batch: &RecordBatch) -> Result<StageBatch> {
        let rows = batch.num_rows();
        let cells: Vec<Cells> = self.data.iter().map(|name| column(batch, name)).collect::<Result<_>>()?;
        let effective = match &self.effective_from {
            Some(name) => Some(column(batch, name)?),
            None => None,
        };
        let mut buffer = String::new();
        for row in 0..rows {
            let mut natural = String::new();
            for (part, &index) in self.key_positions.iter().enumerate() {
                if part > 0 {
                    natural.push('\u{1f}');
                }
                cells[index].write(row, &mut natural);
            }
            let when = effective
                .as_ref()
                .and_then(|cells| effective_text(cells, row))
                .unwrap_or_else(|| self.run_time.clone());
            self.staged.push(Staged {
                row: self.staged.len() as i64,
                natural_key: natural,
                hash: row_hash(self.tracked_positions.iter().map(|&index| &cells[index]), row, &mut buffer),
                type1_hash: row_hash(self.type1_positions.iter().map(|&index| &cells[index]), row, &mut buffer),
                effective: when,
            });
        }
        let keys: Vec<Cells> = self.natural_key.iter().map(|name| column(batch, name)).collect::<Result<_>>()?;
        Ok(StageBatch { columns: keys, rows })
    }

    /// Keys and hashes every row on a blocking thread, staging nothing.
    async fn drain(mut self) -> Result<Vec<Staged>> {
        tokio::task::spawn_blocking(move || {
            while let Some(batch) = self.next_batch() {
                batch?;
            }
            Ok(self.staged)
        })
        .await
        .map_err(|error| Error::WarehouseLoad(format!("the keying thread failed: {error}")))?
    }
}

impl Producer for KeyedRows {
    fn next_batch(&mut self) -> Option<Result<StageBatch>> {
        let batch = self.batches.next()?;
        Some(batch.and_then(|batch| self.key(&batch)))
    }
}

/// The rows of the curated parts, from their footers.
fn row_count(files: &[File]) -> Result<u64> {
    let mut rows = 0;
    for file in reopen(files)? {
        let builder = ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(|error| Error::arrow("reading a curated part's footer", error))?;
        rows += builder.metadata().file_metadata().num_rows().max(0) as u64;
    }
    Ok(rows)
}

/// Where [`PlannedRows`] go, which decides their columns.
enum Layout {
    /// The plan table: [`PLAN_COLUMNS`], the data columns, the hashes.
    Plan,
    /// The dimension itself: key, data columns, hashes, validity, flags, run.
    Table { run_id: String },
}

/// Plan rows with the curated columns of the staged rows they take, made on the staging
/// thread in one more pass over the curated parts; `then` follows (rows without columns).
struct PlannedRows {
    batches: Box<dyn Iterator<Item = Result<RecordBatch>> + Send>,
    /// Staged row number → index in `rows`.
    picked: Vec<Option<u32>>,
    rows: Vec<(scd::PlanRow, String, String)>,
    offset: usize,
    layout: Layout,
    data: Vec<String>,
    then: std::vec::IntoIter<StageBatch>,
}

impl PlannedRows {
    /// `rows` (each with its staged row) take their hashes out of `hashes`.
    fn new(
        files: &[File],
        rows: Vec<scd::PlanRow>,
        hashes: &mut [(String, String)],
        layout: Layout,
        data: Vec<String>,
        then: Vec<StageBatch>,
    ) -> Result<PlannedRows> {
        let mut picked = vec![None; hashes.len()];
        let mut with_hashes = Vec::with_capacity(rows.len());
        for planned in rows {
            let Some(row) = planned.row.map(|row| row as usize).filter(|&row| row < hashes.len()) else {
                continue;
            };
            picked[row] = Some(with_hashes.len() as u32);
            let (hash, type1_hash) = std::mem::take(&mut hashes[row]);
            with_hashes.push((planned, hash, type1_hash));
        }
        let batches = if with_hashes.is_empty() {
            Box::new(std::iter::empty()) as Box<dyn Iterator<Item = Result<RecordBatch>> + Send>
        } else {
            Box::new(batches(reopen(files)?, None))
        };
        Ok(PlannedRows { batches, picked, rows: with_hashes, offset: 0, layout, data, then: then.into_iter() })
    }

    /// The staging batch of `batch`'s rows at `indexes`, taking the plan rows `planned`.
    fn encode(&self, batch: RecordBatch, indexes: Vec<u32>, planned: &[u32]) -> Result<StageBatch> {
        // A first delivery picks every row: no copy of the batch.
        let taken = if indexes.len() == batch.num_rows() {
            batch
        } else {
            arrow::compute::take_record_batch(&batch, &arrow::array::UInt32Array::from(indexes))
                .map_err(|error| Error::arrow("picking the rows the merge writes", error))?
        };
        let rows: Vec<&(scd::PlanRow, String, String)> =
            planned.iter().map(|&index| &self.rows[index as usize]).collect();
        let text = |pick: fn(&(scd::PlanRow, String, String)) -> Option<String>| {
            Cells::Texts(rows.iter().map(|row| pick(row)).collect())
        };
        let mut columns = Vec::with_capacity(self.data.len() + 10);
        if let Layout::Plan = self.layout {
            columns.extend(plan_cells(&rows.iter().map(|row| row.0.clone()).collect::<Vec<_>>()));
        } else {
            columns.push(Cells::Integers(rows.iter().map(|row| Some(row.0.key)).collect()));
        }
        for name in &self.data {
            columns.push(column(&taken, name)?);
        }
        columns.push(text(|row| Some(row.1.clone())));
        columns.push(text(|row| Some(row.2.clone())));
        if let Layout::Table { run_id } = &self.layout {
            columns.extend([
                text(|row| Some(row.0.valid_from.clone())),
                text(|row| row.0.valid_to.clone()),
                text(|row| Some(if row.0.is_current { "1" } else { "0" }.to_string())),
                Cells::Constant(Some("0".to_string())),
                Cells::Constant(Some(run_id.clone())),
            ]);
        }
        Ok(StageBatch { columns, rows: rows.len() })
    }
}

impl Producer for PlannedRows {
    fn next_batch(&mut self) -> Option<Result<StageBatch>> {
        loop {
            let batch = match self.batches.next() {
                Some(Ok(batch)) => batch,
                Some(Err(error)) => return Some(Err(error)),
                None => return self.then.next().map(Ok),
            };
            let count = batch.num_rows();
            let (indexes, planned): (Vec<u32>, Vec<u32>) = (0..count)
                .filter_map(|row| {
                    self.picked.get(self.offset + row).copied().flatten().map(|index| (row as u32, index))
                })
                .unzip();
            self.offset += count;
            if !indexes.is_empty() {
                return Some(self.encode(batch, indexes, &planned));
            }
        }
    }
}

/// Reads every version of the keys staged in [`KEYS`] (`staged`), or of the whole table, by
/// natural key text.
async fn read_versions(
    tx: &mut Tx,
    sql: &Sql,
    table: &str,
    key: &str,
    natural_key: &[String],
    staged: bool,
) -> Result<scd::Existing> {
    let width = natural_key.len();
    let mut select = vec![format!("d.{key}")];
    select.extend(natural_key.iter().map(|column| format!("CAST(d.{column} AS TEXT)")));
    select.extend(["d.\"row_hash\"", "d.\"type1_hash\"", "d.\"valid_from\"", "d.\"valid_to\""].map(str::to_string));
    select.push(sql.flag_text("d.\"is_current\""));
    select.push(sql.flag_text("d.\"is_inferred\""));
    let mut kinds = vec![Kind::Integer];
    kinds.extend(std::iter::repeat_n(Kind::Text, width + 2));
    kinds.extend([Kind::Instant, Kind::Instant, Kind::Text, Kind::Text]);
    let mut statement = format!("SELECT {} FROM {table} d", select.join(", "));
    if staged {
        let matches = join_on(natural_key.iter().map(|column| (format!("s.{column}"), format!("d.{column}"))));
        statement.push_str(&format!(" WHERE EXISTS (SELECT 1 FROM {KEYS} s WHERE {matches})"));
    }
    let rows = tx.fetch("reading the versions of the delivered keys", statement, &kinds).await?;
    let mut existing = scd::Existing::with_capacity_and_hasher(rows.len(), Default::default());
    for row in rows {
        let mut values = row.into_iter();
        let mut next = || values.next().unwrap_or(Value::Text(None));
        let key = next().integer().unwrap_or_default();
        let mut natural = next().into_text().unwrap_or_default();
        for _ in 1..width {
            natural.push('\u{1f}');
            natural.push_str(&next().into_text().unwrap_or_default());
        }
        let version = Version {
            key,
            hash: next().into_text(),
            type1_hash: next().into_text(),
            valid_from: next().into_text().unwrap_or_else(|| INFERRED_FROM.to_string()),
            valid_to: next().into_text(),
            is_current: next().into_text().as_deref() == Some("1"),
            is_inferred: next().into_text().as_deref() == Some("1"),
        };
        existing.entry(natural).or_default().push(version);
    }
    Ok(existing)
}

/// Applies the staged changes in [`PLAN`]: validity first (closing current versions before
/// new ones open), then rewritten versions, then type 1 overwrites where a column differs.
/// Returns the rows whose type 1 columns changed.
#[allow(clippy::too_many_arguments)]
async fn apply_changes(
    tx: &mut Tx,
    sql: &Sql,
    table: &str,
    key: &str,
    data: &[String],
    type1: &[String],
    any_type1: bool,
    run_id: &str,
) -> Result<u64> {
    let target = |column: &str| format!("{table}.{column}");
    let is_key = format!("{} = p.\"lakestar_key\"", target(key));
    tx.execute(
        "closing versions",
        format!(
            "UPDATE {table} SET \"valid_to\" = p.\"lakestar_valid_to\", \"is_current\" = p.\"lakestar_is_current\" \
             FROM {PLAN} p WHERE {is_key} AND p.\"lakestar_action\" = 'update' AND p.\"lakestar_row\" IS NULL"
        ),
        None,
    )
    .await?;
    let mut assignments: Vec<String> = data.iter().map(|column| format!("{column} = p.{column}")).collect();
    assignments.extend([
        "\"row_hash\" = p.\"row_hash\"".to_string(),
        "\"type1_hash\" = p.\"type1_hash\"".to_string(),
        "\"valid_from\" = p.\"lakestar_valid_from\"".to_string(),
        "\"valid_to\" = p.\"lakestar_valid_to\"".to_string(),
        "\"is_current\" = p.\"lakestar_is_current\"".to_string(),
        "\"is_inferred\" = FALSE".to_string(),
        "\"run_id\" = $1".to_string(),
    ]);
    tx.execute(
        "rewriting versions",
        format!(
            "UPDATE {table} SET {} FROM {PLAN} p \
             WHERE {is_key} AND p.\"lakestar_action\" = 'update' AND p.\"lakestar_row\" IS NOT NULL",
            assignments.join(", "),
        ),
        Some(run_id),
    )
    .await?;
    if !any_type1 {
        return Ok(0);
    }
    let mut type1_updated = 0;
    let is_type1 = format!("{is_key} AND p.\"lakestar_action\" = 'type1'");
    if !type1.is_empty() {
        let type1 = quoted(type1)?;
        let mut assignments: Vec<String> = type1.iter().map(|column| format!("{column} = p.{column}")).collect();
        assignments.push("\"type1_hash\" = p.\"type1_hash\"".to_string());
        assignments.push("\"run_id\" = $1".to_string());
        let differs: Vec<String> =
            type1.iter().map(|column| sql.differs(&target(column), &format!("p.{column}"))).collect();
        type1_updated = tx
            .execute(
                "overwriting type 1 columns",
                format!(
                    "UPDATE {table} SET {} FROM {PLAN} p WHERE {is_type1} AND ({})",
                    assignments.join(", "),
                    differs.join(" OR ")
                ),
                Some(run_id),
            )
            .await?;
    }
    // Rows written before the warehouse kept the type 1 hash, equal in every column.
    tx.execute(
        "recording type 1 hashes",
        format!(
            "UPDATE {table} SET \"type1_hash\" = p.\"type1_hash\" FROM {PLAN} p WHERE {is_type1} AND {}",
            sql.differs(&target("\"type1_hash\""), "p.\"type1_hash\"")
        ),
        None,
    )
    .await?;
    Ok(type1_updated)
}

/// The hash of some columns' text for one row, nulls distinct from empty text.
fn row_hash<'a>(cells: impl Iterator<Item = &'a Cells>, row: usize, buffer: &mut String) -> String {
    let mut hasher = Sha256::new();
    for cell in cells {
        buffer.clear();
        if cell.write(row, buffer) {
            hasher.update([1u8]);
            hasher.update((buffer.len() as u64).to_le_bytes());
            hasher.update(buffer.as_bytes());
        } else {
            hasher.update([0u8]);
        }
    }
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = hasher.finalize();
    let mut text = String::with_capacity(32);
    for byte in &digest[..16] {
        text.push(HEX[usize::from(byte >> 4)] as char);
        text.push(HEX[usize::from(byte & 15)] as char);
    }
    text
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
    fact_columns: Vec<String>,
}

/// Reads every version of a dimension (natural key, validity, surrogate key).
async fn dimension_index(tx: &mut Tx, reference: &Reference) -> Result<DimensionIndex> {
    let mut select: Vec<String> =
        reference.natural_key.iter().map(|column| format!("CAST({column} AS TEXT)")).collect();
    let width = reference.natural_key.len();
    select.extend([reference.key.clone(), "\"valid_from\"".to_string(), "\"valid_to\"".to_string()]);
    let mut kinds = vec![Kind::Text; width];
    kinds.extend([Kind::Integer, Kind::Instant, Kind::Instant]);
    let rows = tx
        .fetch(
            &format!("reading the versions of {}", reference.table),
            format!("SELECT {} FROM {}", select.join(", "), reference.table),
            &kinds,
        )
        .await?;
    let mut versions: FastMap<String, Vec<(i64, Option<i64>, i64)>> =
        FastMap::with_capacity_and_hasher(rows.len(), Default::default());
    let mut max_key = 0;
    let inferred_from = scd::timestamp_micros(INFERRED_FROM).unwrap_or(i64::MIN);
    for mut row in rows {
        let key = row[width].integer().unwrap_or_default();
        max_key = max_key.max(key);
        let from = row[width + 1].micros().unwrap_or(inferred_from);
        let to = row[width + 2].micros();
        row.truncate(width);
        let natural = if width == 1 {
            row.pop().and_then(Value::into_text).unwrap_or_default()
        } else {
            row.into_iter().map(|value| value.into_text().unwrap_or_default()).collect::<Vec<_>>().join("\u{1f}")
        };
        versions.entry(natural).or_default().push((from, to, key));
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
        references.push(Reference {
            table: quote(&dimension.table.name)?,
            key: quote(&surrogate_key(&dimension.table.name))?,
            natural_key: quoted(&dimension_names.natural_key)?,
            fact_columns: reference
                .columns
                .iter()
                .map(|name| dataset.column(name).map_or(name.clone(), |column| column.target_name().to_string()))
                .collect(),
        });
    }
    references.sort_by(|a, b| a.table.cmp(&b.table));

    // The dimensions, and inferred members for natural keys they do not have.
    let mut indexes = Vec::with_capacity(references.len());
    for reference in &references {
        indexes.push(dimension_index(tx, reference).await?);
    }
    steps.done("read the dimensions' versions", indexes.iter().map(|index| index.versions.len()).sum());
    let mut missing: Vec<HashSet<String, foldhash::fast::RandomState>> =
        (0..references.len()).map(|_| HashSet::default()).collect();
    let reference_columns: Vec<String> =
        references.iter().flat_map(|reference| reference.fact_columns.iter().cloned()).collect();
    let mut buffer = String::new();
    for batch in batches(reopen(&files)?, Some(reference_columns)) {
        let batch = batch?;
        for ((reference, index), missing) in references.iter().zip(&indexes).zip(missing.iter_mut()) {
            let cells: Vec<Cells> =
                reference.fact_columns.iter().map(|name| column(&batch, name)).collect::<Result<_>>()?;
            for row in 0..batch.num_rows() {
                if let Some(natural) = reference_key(&cells, row, &mut buffer)
                    && !index.versions.contains_key(natural)
                    && !missing.contains(natural)
                {
                    missing.insert(natural.to_string());
                }
            }
        }
    }
    steps.done("found the unknown natural keys", missing.iter().map(HashSet::len).sum());
    let mut inferred = BTreeMap::new();
    for ((reference, index), missing) in references.iter().zip(indexes.iter_mut()).zip(missing) {
        let added = missing.len() as u64;
        if added > 0 {
            add_inferred(tx, reference, index, missing.into_iter().collect(), run_id).await?;
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
        let (rows, copied) = tx.stage_from(&table, &columns, rows).await?;
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
    let inferred_from = scd::timestamp_micros(INFERRED_FROM).unwrap_or(i64::MIN);
    let missing: Vec<String> = missing.into_iter().collect();
    // Into an empty dimension (a first fact delivery) with its keys and indexes set aside.
    let set_aside = if index.versions.is_empty() {
        bulk::set_aside(tx, &reference.table).await?
    } else {
        bulk::SetAside::default()
    };
    let mut stager = tx.stager(&reference.table, &columns).await?;
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
