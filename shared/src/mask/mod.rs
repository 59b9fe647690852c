//! The mask stage: processed rows become the star-shaped tables of `curated/`, every PII
//! column masked as the contract says, then checked by the PII leak guard before anything is
//! written.

mod key;
pub mod methods;
pub mod scan;

use std::collections::{BTreeMap, HashMap};
use std::io::{BufReader, BufWriter, Seek};
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{Array, ArrayRef, RecordBatch, StringArray, UInt32Array};
use arrow::compute::take_record_batch;
use arrow::datatypes::{DataType as ArrowType, Field, Schema, SchemaRef};
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use chrono::Datelike;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::{Deserialize, Serialize};
use tokio::runtime::Handle;

pub use key::{KEY_ENV, KEY_FILE, MaskingKey, SECRET_ENV};

use crate::contract::{Contract, Dataset, Partition, TableKind};
use crate::lake::{Lake, PartedWriter, ReadAhead};
use crate::run::RunDescriptor;
use crate::validate::ValidateOutput;
use crate::{Error, Result};

/// Rows per curated part.
const PART_ROWS: u64 = 4 * 1024 * 1024;

/// The schema of held and spilled fact rows: the curated one with its text lineage columns
/// (the same key and run id on every row of a run) dictionary-encoded, which saves about a
/// third of the memory and local disk they take.
fn spill_schema(schema: &Schema) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|field| {
            if spilled_as_dictionary(field) {
                Field::new(field.name(), spill_dictionary(), field.is_nullable())
            } else {
                field.as_ref().clone()
            }
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// Whether a curated column is held and spilled dictionary-encoded: the text lineage columns.
fn spilled_as_dictionary(field: &Field) -> bool {
    crate::lake::LINEAGE.contains(&field.name().as_str()) && field.data_type() == &ArrowType::Utf8
}

fn spill_dictionary() -> ArrowType {
    ArrowType::Dictionary(Box::new(ArrowType::Int32), Box::new(ArrowType::Utf8))
}

/// `batch` as `schema`, each column whose type differs cast to the schema's.
fn recast(batch: &RecordBatch, schema: &SchemaRef) -> std::result::Result<RecordBatch, arrow::error::ArrowError> {
    let columns = schema
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(field, column)| {
            if column.data_type() == field.data_type() {
                Ok(column.clone())
            } else {
                arrow::compute::cast(column, field.data_type())
            }
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    RecordBatch::try_new(schema.clone(), columns)
}

/// The Parquet (Arrow schema) metadata key holding the masking key's version.
pub const KEY_VERSION_METADATA: &str = "lakestar.masking_key_version";

/// What the mask stage reports: the `mask` section of the state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MaskOutput {
    /// The key of the run's curated manifest ([`CuratedManifest`]): the state carries it
    /// instead of every part's key, so that a fact spanning years of daily partitions stays
    /// far below Step Functions' 256 KiB payload.
    #[serde(default)]
    pub manifest: String,
    /// Curated parts per star table.
    #[serde(default)]
    pub tables: BTreeMap<String, usize>,
    /// Curated keys per star table, for the caller of the stage in the same process; the
    /// state carries [`MaskOutput::manifest`] instead.
    #[serde(skip)]
    pub curated: BTreeMap<String, Vec<String>>,
    /// The columns masked (curated names), with their method.
    pub masked_columns: BTreeMap<String, String>,
    /// The version of the masking key used.
    pub key_version: String,
    /// Rows written to curated.
    pub rows: u64,
    /// How long the stage took, in milliseconds (a quality metric; not part of any data).
    #[serde(default)]
    pub duration_ms: u64,
}

/// Runs the mask stage for `run`, whose validate stage reported `validated`, holding at most
/// `held_bytes` of a fact table's masked rows in memory before spilling partitions to local
/// disk ([`crate::config::Environment::mask_held_bytes`]). The curated files are the same
/// whatever the budget.
pub async fn mask_holding(
    lake: &Lake,
    contract: &Contract,
    key: &MaskingKey,
    run: &RunDescriptor,
    validated: &ValidateOutput,
    held_bytes: usize,
) -> Result<MaskOutput> {
    let dataset = contract.dataset(&run.dataset).ok_or_else(|| Error::UnknownDataset { key: run.key.clone() })?.clone();
    let started = Instant::now();
    tracing::info!(run = %run.id, dataset = %run.dataset, parts = validated.processed.len(), "Mask started.");
    let spools = lake.spool(&validated.processed).await?;
    let table = dataset.table.name.clone();
    let job = MaskJob::new(lake.clone(), run.clone(), dataset, key.clone(), Handle::current(), held_bytes)?;
    let masked_columns = job.masked_columns();
    let result = tokio::task::spawn_blocking(move || job.execute(spools))
        .await
        .map_err(|error| Error::Internal(format!("the mask task stopped: {error}")))?;

    // Whatever the outcome, nothing of this run but what was just written stays in curated:
    // after a leak, nothing at all.
    let written = match &result {
        Ok((keys, _)) => keys.clone(),
        Err(_) => Vec::new(),
    };
    let run_marker = format!("/run={}/", run.id);
    let stale: Vec<String> = lake
        .list(&crate::lake::curated_prefix(&table))
        .await?
        .into_iter()
        .filter(|existing| existing.contains(&run_marker) && !written.contains(existing))
        .collect();
    lake.delete(&stale).await?;
    if result.is_err() {
        lake.delete(&[crate::lake::curated_manifest_key(&table, &run.id)]).await?;
    }
    let (keys, rows) = result?;

    let manifest = CuratedManifest { run: run.id.clone(), table: table.clone(), parts: keys.clone() };
    let manifest_key = manifest.write(lake).await?;
    tracing::info!(run = %run.id, rows, parts = keys.len(), seconds = started.elapsed().as_secs_f64(), "Mask finished.");
    Ok(MaskOutput {
        manifest: manifest_key,
        tables: BTreeMap::from([(table.clone(), keys.len())]),
        curated: BTreeMap::from([(table, keys)]),
        masked_columns,
        key_version: key.version().to_string(),
        rows,
        duration_ms: started.elapsed().as_millis() as u64,
    })
}

/// The curated parts a run wrote, one object per run and table (`curated/_manifests/…`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CuratedManifest {
    /// The run.
    pub run: String,
    /// The star table.
    pub table: String,
    /// Every part's key, in the order they were written.
    pub parts: Vec<String>,
}

impl CuratedManifest {
    /// Writes the manifest; returns its key.
    pub async fn write(&self, lake: &Lake) -> Result<String> {
        let key = crate::lake::curated_manifest_key(&self.table, &self.run);
        let json = serde_json::to_vec_pretty(self)
            .map_err(|error| Error::Internal(format!("serialising the curated manifest: {error}")))?;
        lake.put_bytes(&key, json, "application/json").await?;
        Ok(key)
    }

    /// Reads the manifest at `key`.
    pub async fn read(lake: &Lake, key: &str) -> Result<CuratedManifest> {
        let bytes = lake.get_bytes(key).await?;
        serde_json::from_slice(&bytes).map_err(|error| Error::CorruptObject {
            key: key.to_string(),
            message: format!("not a curated manifest ({error}); re-run the mask stage"),
        })
    }
}

/// One column of the curated table: where it comes from and how it is masked.
struct CuratedColumn {
    source: String,
    pii: Option<crate::contract::PiiConfig>,
}

struct MaskJob {
    lake: Lake,
    run: RunDescriptor,
    dataset: Dataset,
    key: MaskingKey,
    handle: Handle,
    columns: Vec<CuratedColumn>,
    schema: SchemaRef,
    /// The schema of held and spilled rows (see [`spill_schema`]).
    spill_schema: SchemaRef,
    /// The curated name of the partition column, and the granularity, for facts.
    partition: Option<(usize, String, Partition)>,
    /// How many bytes of partitioned rows may be held in memory before spilling.
    held_budget: usize,
}

/// A fact partition's masked rows until they are written: held in memory, and spilled to a
/// local Arrow IPC file whenever the rows held for all partitions pass the stage's budget.
#[derive(Default)]
struct Pending {
    spill: Option<StreamWriter<BufWriter<std::fs::File>>>,
    held: Vec<RecordBatch>,
    held_bytes: usize,
}

impl Pending {
    /// Holds `batch`; returns its size in memory.
    fn hold(&mut self, batch: RecordBatch) -> usize {
        let bytes = batch.get_array_memory_size();
        self.held.push(batch);
        self.held_bytes += bytes;
        bytes
    }
}

impl MaskJob {
    fn new(
        lake: Lake,
        run: RunDescriptor,
        dataset: Dataset,
        key: MaskingKey,
        handle: Handle,
        held_budget: usize,
    ) -> Result<MaskJob> {
        let processed = crate::lake::schema::processed_schema(&dataset);
        let mut fields = crate::lake::schema::curated_fields(&dataset);
        let mut columns: Vec<CuratedColumn> = dataset
            .columns
            .iter()
            .map(|column| CuratedColumn { source: column.name.clone(), pii: column.config.pii.clone() })
            .collect();
        for name in crate::lake::LINEAGE {
            let field = processed.field_with_name(name).map_err(|error| Error::arrow("the processed schema", error))?;
            fields.push(field.clone());
            columns.push(CuratedColumn { source: name.to_string(), pii: None });
        }
        let metadata = HashMap::from([(KEY_VERSION_METADATA.to_string(), key.version().to_string())]);
        let schema = Arc::new(Schema::new(fields).with_metadata(metadata));
        let partition = match (dataset.table.kind, &dataset.table.date_column) {
            (TableKind::Fact, Some(date_column)) => {
                let index = dataset.columns.iter().position(|column| &column.name == date_column).unwrap_or(0);
                let name = dataset.columns[index].target_name().to_string();
                Some((index, name, dataset.table.partition.unwrap_or(Partition::Day)))
            }
            _ => None,
        };
        let spill_schema = spill_schema(&schema);
        Ok(MaskJob { lake, run, dataset, key, handle, columns, schema, spill_schema, partition, held_budget })
    }

    fn masked_columns(&self) -> BTreeMap<String, String> {
        self.dataset
            .columns
            .iter()
            .filter_map(|column| {
                let pii = column.config.pii.as_ref()?;
                let method = serde_json::to_value(pii.method).ok()?.as_str()?.to_string();
                let method = match &pii.to {
                    Some(to) => format!("{method}:{to}"),
                    None => method,
                };
                Some((column.target_name().to_string(), method))
            })
            .collect()
    }

    fn read_error(&self, key: &str, error: impl std::error::Error + Send + Sync + 'static) -> Error {
        Error::corrupt_part(key, format!("not a readable processed part ({})", crate::error_chain(&error)))
    }

    /// Masks every batch, checks it, and writes its rows: an unpartitioned table (a
    /// dimension) straight to its Parquet parts; a partitioned one (facts) held per partition
    /// in memory, the largest partitions spilled to local Arrow IPC files while the held rows
    /// pass the budget, and each partition's Parquet objects written one after the other at
    /// the end (its spilled rows, then its held rows: the order they came in). Only one Parquet
    /// writer is open at a time, however many partitions the run touches (a dozen open writers
    /// measured slower on one core and three times the memory).
    fn execute(self, spools: Vec<(String, std::fs::File)>) -> Result<(Vec<String>, u64)> {
        let on = self.run.time.date_naive();
        let mut direct = self.partition.is_none().then(|| self.partition_writer(""));
        let mut pending: BTreeMap<String, Pending> = BTreeMap::new();
        let mut held_total = 0usize;
        let mut rows = 0u64;
        for (part, spool) in spools {
            let reader = ParquetRecordBatchReaderBuilder::try_new(spool)
                .map_err(|error| self.read_error(&part, error))?
                .with_batch_size(8192)
                .build()
                .map_err(|error| self.read_error(&part, error))?;
            for batch in ReadAhead::new(reader, &part)? {
                let batch = batch.map_err(|error| self.read_error(&part, error))?;
                let mut arrays: Vec<ArrayRef> = Vec::with_capacity(self.columns.len());
                for column in &self.columns {
                    let source = batch.column_by_name(&column.source).ok_or_else(|| Error::CorruptObject {
                        key: part.to_string(),
                        message: format!(
                            "lacks column {}: it is not a processed part of this dataset; re-run the validate stage",
                            column.source
                        ),
                    })?;
                    arrays.push(match &column.pii {
                        Some(pii) => methods::mask_array(&self.key, pii, source, on)?,
                        None => source.clone(),
                    });
                }
                let curated = RecordBatch::try_new(self.schema.clone(), arrays)
                    .map_err(|error| Error::arrow("building a curated batch", error))?;
                self.guard(&curated)?;
                rows += curated.num_rows() as u64;
                for (partition, partition_rows) in self.partitions(&curated)? {
                    if let Some(writer) = &mut direct {
                        writer.write(&partition_rows)?;
                        continue;
                    }
                    held_total += pending.entry(partition).or_default().hold(self.spilled(&partition_rows)?);
                    while held_total > self.held_budget {
                        let Some(largest) = pending.values_mut().max_by_key(|partition| partition.held_bytes) else {
                            break;
                        };
                        held_total -= largest.held_bytes;
                        self.spill(largest)?;
                    }
                }
            }
        }
        let mut keys = Vec::new();
        if let Some(writer) = direct {
            keys.extend(writer.finish()?);
        }
        for (partition, pending) in pending {
            keys.extend(self.write_partition(&partition, pending)?);
        }
        keys.sort();
        Ok((keys, rows))
    }

    /// Writes a fact partition's parts: its spilled rows, then its held rows (the order they
    /// came in); returns their keys.
    fn write_partition(&self, partition: &str, pending: Pending) -> Result<Vec<String>> {
        let mut writer = self.partition_writer(partition);
        if let Some(spill) = pending.spill {
            let mut file = spill
                .into_inner()
                .map_err(|error| Error::arrow("spilling a partition", error))?
                .into_inner()
                .map_err(|error| Error::temp_io(error.into_error()))?;
            file.rewind().map_err(Error::temp_io)?;
            let reader = StreamReader::try_new(BufReader::with_capacity(64 * 1024, file), None)
                .map_err(|error| Error::arrow("reading a spilled partition", error))?;
            for batch in ReadAhead::new(reader, partition)? {
                let batch = batch.map_err(|error| Error::arrow("reading a spilled partition", error))?;
                writer.write(&self.unspilled(&batch)?)?;
            }
        }
        for batch in pending.held {
            writer.write(&self.unspilled(&batch)?)?;
        }
        writer.finish()
    }

    /// Appends a partition's held rows to its spill file (opened on its first spill).
    fn spill(&self, partition: &mut Pending) -> Result<()> {
        let spill = match &mut partition.spill {
            Some(spill) => spill,
            None => {
                let file = tempfile::tempfile().map_err(Error::temp_io)?;
                let writer = StreamWriter::try_new(BufWriter::with_capacity(64 * 1024, file), &self.spill_schema)
                    .map_err(|error| Error::arrow("spilling a partition", error))?;
                partition.spill.insert(writer)
            }
        };
        for batch in partition.held.drain(..) {
            spill.write(&batch).map_err(|error| Error::arrow("spilling a partition", error))?;
        }
        partition.held_bytes = 0;
        Ok(())
    }

    fn spilled(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        recast(batch, &self.spill_schema).map_err(|error| Error::arrow("spilling a partition", error))
    }

    fn unspilled(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        recast(batch, &self.schema).map_err(|error| Error::arrow("reading a spilled partition", error))
    }

    /// The writer of a partition's parts: `curated/<table>/<partition>/run=<run>/`.
    fn partition_writer(&self, partition: &str) -> PartedWriter {
        let prefix = crate::lake::curated_run_prefix(&self.dataset.table.name, partition, &self.run.id);
        PartedWriter::new(&self.lake, &prefix, self.schema.clone(), PART_ROWS, self.handle.clone())
    }

    /// The PII leak guard: no column that the contract does not declare as masked may hold
    /// values that look like personal data.
    fn guard(&self, batch: &RecordBatch) -> Result<()> {
        for (field, column) in self.schema.fields().iter().zip(&self.columns) {
            if column.pii.is_some() || column.source.starts_with('_') || field.data_type() != &ArrowType::Utf8 {
                continue;
            }
            let Some(values) =
                batch.column_by_name(field.name()).and_then(|array| array.as_any().downcast_ref::<StringArray>())
            else {
                continue;
            };
            let found = scan::scan_column(values);
            if let Some((kind, count)) = found.first() {
                return Err(Error::PiiLeak {
                    table: self.dataset.table.name.clone(),
                    column: field.name().clone(),
                    kind: kind.name(),
                    count: *count,
                });
            }
        }
        Ok(())
    }

    /// Splits a batch by its Hive partition (`sale_date_month=2024-01`); one empty-named
    /// partition for dimensions.
    fn partitions(&self, batch: &RecordBatch) -> Result<Vec<(String, RecordBatch)>> {
        let Some((index, name, granularity)) = &self.partition else {
            return Ok(vec![(String::new(), batch.clone())]);
        };
        let dates = arrow::compute::cast(batch.column(*index), &ArrowType::Date32)
            .map_err(|error| Error::arrow("partitioning by date", error))?;
        let dates = dates
            .as_any()
            .downcast_ref::<arrow::array::Date32Array>()
            .ok_or_else(|| Error::Internal("the partition column did not cast to dates".to_string()))?;
        // Group by a number (days, or months since year 0) and name each group once.
        let mut groups: BTreeMap<Option<i32>, Vec<u32>> = BTreeMap::new();
        for row in 0..batch.num_rows() {
            let group = (!dates.is_null(row)).then(|| dates.value(row)).map(|days| match granularity {
                Partition::Day => days,
                Partition::Month => crate::validate::cast::days_date(days)
                    .map_or(i32::MIN, |date| date.year() * 12 + date.month0() as i32),
            });
            groups.entry(group).or_default().push(row as u32);
        }
        let groups: BTreeMap<String, Vec<u32>> = groups
            .into_iter()
            .map(|(group, rows)| {
                let value = match (group, granularity) {
                    (None, _) | (Some(i32::MIN), Partition::Month) => "__HIVE_DEFAULT_PARTITION__".to_string(),
                    (Some(days), Partition::Day) => crate::validate::cast::days_date(days).map_or_else(
                        || "__HIVE_DEFAULT_PARTITION__".to_string(),
                        |date| date.format("%Y-%m-%d").to_string(),
                    ),
                    (Some(months), Partition::Month) => {
                        format!("{:04}-{:02}", months.div_euclid(12), months.rem_euclid(12) + 1)
                    }
                };
                let key = match granularity {
                    Partition::Day => format!("{name}={value}"),
                    Partition::Month => format!("{name}_month={value}"),
                };
                (key, rows)
            })
            .collect();
        let mut out = Vec::with_capacity(groups.len());
        for (key, rows) in groups {
            let indices = UInt32Array::from(rows);
            out.push((
                key,
                take_record_batch(batch, &indices).map_err(|error| Error::arrow("partitioning rows", error))?,
            ));
        }
        Ok(out)
    }
}
