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
    pub name: String,
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
    pub const INPUT_FORMAT: &'static str = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat";
    pub const OUTPUT_FORMAT: &'static str = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat";
    pub const SERDE: &'static str = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe";
}

/// The date partition of a fact's curated files: the folder's name (`sale_date_month`,
/// `sale_date`), the partition key's, and the projection's date format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatePartition {
    pub folder: String,
    pub key: String,
    pub format: &'static str,
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
