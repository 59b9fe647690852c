//! The curated star tables as tables of the Glue Data Catalog, for Athena (and any engine that
//! reads the catalog): one table per curated table, its columns the Parquet schema the mask
//! stage writes, its fact partitions found by partition projection rather than a crawler.
//!
//! A table's location is `curated/<table>/`; the per-run folders under it (`run=<id>/`) are
//! read as part of the table, not as partitions. A fact's date partition is a partition key
//! of its own name (`<date>_month`, or `<date>_day` for daily folders named `<date>=…`, since a
//! partition key cannot share a column's name), projected as dates between the first and the
//! last date the warehouse's calendar holds.

use std::collections::BTreeMap;

use arrow::datatypes::{DataType as ArrowType, Field};
use chrono::NaiveDate;

use super::schema::{curated_fields, lineage_fields};
use crate::contract::{Contract, Dataset, Partition, TableKind};
use crate::{Error, Result};

/// A column of a catalog table: its name and Glue (Hive) type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogColumn {
    /// The column's name.
    pub name: String,
    /// Its Glue type: `string`, `bigint`, `decimal(12,2)`, …
    pub glue_type: String,
}

/// One curated table as the Glue Data Catalog holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogTable {
    /// The star table's name.
    pub name: String,
    /// `s3://<bucket>/curated/<table>/`.
    pub location: String,
    /// The Parquet columns, in the files' order.
    pub columns: Vec<CatalogColumn>,
    /// The date partition of a partitioned fact; empty otherwise.
    pub partition_keys: Vec<CatalogColumn>,
    /// The table parameters: the classification and, for a partitioned fact, its projection.
    pub parameters: BTreeMap<String, String>,
}

impl CatalogTable {
    /// The Hive input format of Parquet files.
    pub const INPUT_FORMAT: &'static str = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat";
    /// The Hive output format of Parquet files.
    pub const OUTPUT_FORMAT: &'static str = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat";
    /// The Parquet SerDe.
    pub const SERDE: &'static str = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe";
}

/// The date partition of a fact's curated files: the folder's name (`sale_date_month`,
/// `sale_date`), the partition key's, and the projection's date format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatePartition {
    /// The folder's name before `=`.
    pub folder: String,
    /// The catalog's partition key.
    pub key: String,
    /// The projection's date format (`yyyy-MM`, `yyyy-MM-dd`).
    pub format: &'static str,
    /// Months or days.
    pub granularity: Partition,
}

/// The date partition of `dataset`'s curated files, if it is a fact with a date column.
pub fn date_partition(dataset: &Dataset) -> Option<DatePartition> {
    if dataset.table.kind != TableKind::Fact {
        return None;
    }
    let date_column = dataset.table.date_column.as_ref()?;
    let name = dataset.column(date_column).map_or(date_column.as_str(), |column| column.target_name());
    Some(match dataset.table.partition.unwrap_or(Partition::Day) {
        Partition::Month => DatePartition {
            folder: format!("{name}_month"),
            key: format!("{name}_month"),
            format: "yyyy-MM",
            granularity: Partition::Month,
        },
        Partition::Day => DatePartition {
            folder: name.to_string(),
            key: format!("{name}_day"),
            format: "yyyy-MM-dd",
            granularity: Partition::Day,
        },
    })
}

/// The Glue type of a curated column's Arrow type.
pub fn glue_type(data_type: &ArrowType) -> Result<String> {
    Ok(match data_type {
        ArrowType::Utf8 | ArrowType::LargeUtf8 | ArrowType::Utf8View => "string".to_string(),
        ArrowType::Int64 => "bigint".to_string(),
        ArrowType::Int32 => "int".to_string(),
        ArrowType::Float64 => "double".to_string(),
        ArrowType::Float32 => "float".to_string(),
        ArrowType::Boolean => "boolean".to_string(),
        ArrowType::Date32 => "date".to_string(),
        ArrowType::Timestamp(_, _) => "timestamp".to_string(),
        ArrowType::Decimal128(precision, scale) => format!("decimal({precision},{scale})"),
        ArrowType::Binary | ArrowType::LargeBinary => "binary".to_string(),
        other => return Err(Error::Internal(format!("no Glue type for the curated type {other}"))),
    })
}

/// The catalog tables of every curated table of `contract` in `bucket`. `dates` is the first
/// and last date the facts cover (the warehouse's calendar), which bounds the projection of
/// date partitions; without it, from 1970 to now.
pub fn catalog_tables(
    contract: &Contract,
    bucket: &str,
    dates: Option<(NaiveDate, NaiveDate)>,
) -> Result<Vec<CatalogTable>> {
    contract.datasets.iter().map(|dataset| catalog_table(dataset, bucket, dates)).collect()
}

fn catalog_table(dataset: &Dataset, bucket: &str, dates: Option<(NaiveDate, NaiveDate)>) -> Result<CatalogTable> {
    let name = dataset.table.name.clone();
    let location = format!("s3://{bucket}/{}", super::curated_prefix(&name));
    let fields: Vec<Field> = curated_fields(dataset).into_iter().chain(lineage_fields()).collect();
    let columns = fields
        .iter()
        .map(|field| Ok(CatalogColumn { name: field.name().clone(), glue_type: glue_type(field.data_type())? }))
        .collect::<Result<Vec<_>>>()?;
    let mut parameters = BTreeMap::from([
        ("classification".to_string(), "parquet".to_string()),
        ("EXTERNAL".to_string(), "TRUE".to_string()),
        ("lakestar.table".to_string(), name.clone()),
    ]);
    let mut partition_keys = Vec::new();
    if let Some(partition) = date_partition(dataset) {
        let (chrono_format, unit) = match partition.granularity {
            Partition::Month => ("%Y-%m", "MONTHS"),
            Partition::Day => ("%Y-%m-%d", "DAYS"),
        };
        let range = match dates {
            Some((first, last)) => format!("{},{}", first.format(chrono_format), last.format(chrono_format)),
            None if partition.granularity == Partition::Month => "1970-01,NOW".to_string(),
            None => "1970-01-01,NOW".to_string(),
        };
        let key = &partition.key;
        parameters.extend([
            ("projection.enabled".to_string(), "true".to_string()),
            (format!("projection.{key}.type"), "date".to_string()),
            (format!("projection.{key}.format"), partition.format.to_string()),
            (format!("projection.{key}.range"), range),
            (format!("projection.{key}.interval"), "1".to_string()),
            (format!("projection.{key}.interval.unit"), unit.to_string()),
            ("storage.location.template".to_string(), format!("{location}{}=${{{key}}}/", partition.folder)),
        ]);
        partition_keys.push(CatalogColumn { name: key.clone(), glue_type: "string".to_string() });
    }
    Ok(CatalogTable { name, location, columns, partition_keys, parameters })
}

/// What a catalog sync did to the tables.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CatalogSync {
    /// Tables the database did not have.
    pub created: usize,
    /// Tables whose definition differed.
    pub updated: usize,
    /// Tables as Lakestar makes them already.
    pub unchanged: usize,
}

/// A Glue Data Catalog database that holds the curated tables.
#[derive(Debug, Clone)]
pub struct GlueCatalog {
    client: aws_sdk_glue::Client,
    database: String,
}

impl GlueCatalog {
    /// The catalog database `database`, through `client`.
    pub fn new(client: aws_sdk_glue::Client, database: impl Into<String>) -> GlueCatalog {
        GlueCatalog { client, database: database.into() }
    }

    /// The database's name.
    pub fn database(&self) -> &str {
        &self.database
    }

    /// Creates the tables the database lacks and updates those whose columns, partition keys,
    /// location, formats or Lakestar's parameters differ (parameters others set are kept);
    /// idempotent.
    pub async fn sync(&self, tables: &[CatalogTable]) -> Result<CatalogSync> {
        let mut sync = CatalogSync::default();
        for table in tables {
            let existing = match self.client.get_table().database_name(&self.database).name(&table.name).send().await {
                Ok(output) => output.table().cloned(),
                Err(error) if error.as_service_error().is_some_and(|error| error.is_entity_not_found_exception()) => {
                    None
                }
                Err(error) => return Err(self.error("GetTable", &table.name, error)),
            };
            match existing {
                None => {
                    let input = table_input(table, None)?;
                    self.client
                        .create_table()
                        .database_name(&self.database)
                        .table_input(input)
                        .send()
                        .await
                        .map_err(|error| self.error("CreateTable", &table.name, error))?;
                    tracing::info!(database = %self.database, table = %table.name, "Created the catalog table.");
                    sync.created += 1;
                }
                Some(existing) if matches(&existing, table) => sync.unchanged += 1,
                Some(existing) => {
                    let input = table_input(table, existing.parameters())?;
                    self.client
                        .update_table()
                        .database_name(&self.database)
                        .table_input(input)
                        .send()
                        .await
                        .map_err(|error| self.error("UpdateTable", &table.name, error))?;
                    tracing::info!(database = %self.database, table = %table.name, "Updated the catalog table.");
                    sync.updated += 1;
                }
            }
        }
        Ok(sync)
    }

    fn error<E, R>(&self, operation: &'static str, table: &str, error: aws_sdk_glue::error::SdkError<E, R>) -> Error
    where
        E: aws_sdk_glue::error::ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        use aws_sdk_glue::error::SdkError;
        let transient = match &error {
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => true,
            SdkError::ServiceError(service) => {
                let code = service.err().code().unwrap_or_default();
                // Two loads at once may race on a table: the retry finds it made or updated.
                code.contains("Throttl")
                    || [
                        "InternalServiceException",
                        "OperationTimeoutException",
                        "ConcurrentModificationException",
                        "AlreadyExistsException",
                    ]
                    .contains(&code)
            }
            _ => false,
        };
        let message = match error.as_service_error() {
            Some(service) => {
                format!("{}: {}", service.code().unwrap_or("error"), service.message().unwrap_or_default())
            }
            None => aws_sdk_glue::error::DisplayErrorContext(&error).to_string(),
        };
        Error::Catalog { operation, database: self.database.clone(), table: table.to_string(), transient, message }
    }
}

/// Whether the catalog's table is `table` as Lakestar makes it.
fn matches(existing: &aws_sdk_glue::types::Table, table: &CatalogTable) -> bool {
    let columns = |columns: &[aws_sdk_glue::types::Column]| -> Vec<CatalogColumn> {
        columns
            .iter()
            .map(|column| CatalogColumn {
                name: column.name().to_string(),
                glue_type: column.r#type().unwrap_or_default().to_string(),
            })
            .collect()
    };
    let Some(storage) = existing.storage_descriptor() else { return false };
    let parameters = existing.parameters();
    columns(storage.columns()) == table.columns
        && columns(existing.partition_keys()) == table.partition_keys
        && storage.location() == Some(table.location.as_str())
        && storage.input_format() == Some(CatalogTable::INPUT_FORMAT)
        && storage.serde_info().and_then(|serde| serde.serialization_library()) == Some(CatalogTable::SERDE)
        && existing.table_type() == Some("EXTERNAL_TABLE")
        && table.parameters.iter().all(|(name, value)| parameters.and_then(|have| have.get(name)) == Some(value))
        && parameters.is_none_or(|have| {
            // A projection Lakestar no longer makes (a partition dropped) is stale.
            have.keys().filter(|name| name.starts_with("projection.")).all(|name| table.parameters.contains_key(name))
        })
}

/// The `TableInput` of `table`, keeping the parameters of `existing` that are not Lakestar's.
fn table_input(
    table: &CatalogTable,
    existing: Option<&std::collections::HashMap<String, String>>,
) -> Result<aws_sdk_glue::types::TableInput> {
    use aws_sdk_glue::types::{Column, SerDeInfo, StorageDescriptor, TableInput};
    let column = |column: &CatalogColumn| {
        Column::builder()
            .name(&column.name)
            .r#type(&column.glue_type)
            .build()
            .map_err(|error| Error::Internal(format!("a catalog column of {}: {error}", table.name)))
    };
    let mut storage = StorageDescriptor::builder()
        .location(&table.location)
        .input_format(CatalogTable::INPUT_FORMAT)
        .output_format(CatalogTable::OUTPUT_FORMAT)
        .serde_info(SerDeInfo::builder().serialization_library(CatalogTable::SERDE).build());
    for catalog_column in &table.columns {
        storage = storage.columns(column(catalog_column)?);
    }
    let mut input = TableInput::builder()
        .name(&table.name)
        .description(format!("Lakestar's curated {} (s3 {}).", table.name, table.location))
        .table_type("EXTERNAL_TABLE")
        .storage_descriptor(storage.build());
    for key in &table.partition_keys {
        input = input.partition_keys(column(key)?);
    }
    let kept = existing.into_iter().flatten().filter(|(name, _)| {
        !name.starts_with("projection.")
            && !table.parameters.contains_key(*name)
            && *name != "storage.location.template"
    });
    for (name, value) in kept.chain(table.parameters.iter()) {
        input = input.parameters(name, value);
    }
    input.build().map_err(|error| Error::Internal(format!("the catalog table {}: {error}", table.name)))
}
