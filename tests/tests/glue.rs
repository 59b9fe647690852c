//! Issue 29 (lake): the Glue Data Catalog tables built from the retail contract match the
//! Parquet files the mask stage writes for the example (every column's name and type, in
//! order), and each fact's partition projection names the folders the files are in. The load
//! keeps them in a Glue database (moto's server): made by the example's loads, unchanged by
//! another sync, updated when the contract changes (keeping parameters others set), and a
//! missing database is a named error.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::Moto;
use lakestar::contract::Contract;
use lakestar::lake::glue::{CatalogSync, CatalogTable, GlueCatalog, catalog_tables, glue_type};
use lakestar::mask::MaskingKey;
use lakestar_local::landing::collect_drops;
use lakestar_local::stack::{Stack, StackConfig, timing};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/retail")
}

/// Runs the whole example in `home`, its loads keeping the tables in `catalog` if given.
async fn run_example(home: &Path, catalog: Option<GlueCatalog>) -> Stack {
    let mut config = StackConfig::new(home, example().join("pipeline.toml"));
    config.key = Some(MaskingKey::new(b"glue-test-key-0123456789abcdef-0123456".to_vec(), "v1").expect("key"));
    config.timing = timing(0.0);
    config.catalog = catalog;
    let stack = Stack::open(config).await.expect("stack");
    for file in collect_drops(&[example()]).expect("the example's files") {
        stack.drop_file(&file.key, &file.path).await.expect("dropped");
    }
    for record in stack.run_started(|_| {}).await.expect("ran") {
        assert_eq!(record.status, "SUCCEEDED", "{}: {:?} {:?}", record.name, record.error, record.cause);
    }
    stack
}

/// The `(name, Glue type)` of every column of a curated Parquet file, in order.
fn parquet_columns(bytes: Vec<u8>) -> Vec<(String, String)> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes)).expect("a Parquet file");
    reader
        .schema()
        .fields()
        .iter()
        .map(|field| (field.name().clone(), glue_type(field.data_type()).expect("a Glue type")))
        .collect()
}

fn catalog_columns(table: &CatalogTable) -> Vec<(String, String)> {
    table.columns.iter().map(|column| (column.name.clone(), column.glue_type.clone())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_glue_tables_match_the_curated_parquet_files() {
    let home = tempfile::tempdir().expect("home");
    let stack = run_example(home.path(), None).await;
    let contract = Contract::load(&example().join("pipeline.toml")).expect("contract");
    let first = chrono::NaiveDate::from_ymd_opt(2024, 1, 1).expect("date");
    let last = chrono::NaiveDate::from_ymd_opt(2024, 3, 31).expect("date");
    let tables = catalog_tables(&contract, "lakestar-lake", Some((first, last))).expect("catalog tables");
    let names: BTreeSet<&str> = tables.iter().map(|table| table.name.as_str()).collect();
    assert_eq!(names, BTreeSet::from(["dim_customer", "dim_product", "dim_store", "fact_sales"]));

    let keys = stack.lake().list("curated/").await.expect("list");
    for table in &tables {
        let prefix = format!("curated/{}/", table.name);
        assert_eq!(table.location, format!("s3://lakestar-lake/{prefix}"));
        let parts: Vec<&String> =
            keys.iter().filter(|key| key.starts_with(&prefix) && key.ends_with(".parquet")).collect();
        assert!(!parts.is_empty(), "{}: curated parts", table.name);
        for key in &parts {
            let bytes = stack.lake().get_bytes(key).await.expect("get");
            assert_eq!(parquet_columns(bytes), catalog_columns(table), "{key}: the catalog's columns");
            // Below the table's folder: the partition folder (facts), then the run's.
            let folders: Vec<&str> = key[prefix.len()..].split('/').collect();
            match table.partition_keys.as_slice() {
                [] => {
                    assert_eq!(folders.len(), 2, "{key}");
                    assert!(folders[0].starts_with("run="), "{key}");
                }
                [partition] => {
                    assert_eq!(partition.glue_type, "string");
                    let template = &table.parameters["storage.location.template"];
                    let placeholder = format!("${{{}}}", partition.name);
                    let (before, after) = template.split_once(&placeholder).expect("the key in the template");
                    let folder = format!("s3://lakestar-lake/{prefix}{}/", folders[0]);
                    let value = folder
                        .strip_prefix(before)
                        .and_then(|rest| rest.strip_suffix(after))
                        .unwrap_or_else(|| panic!("{key} is not under {template}"));
                    let format = &table.parameters[&format!("projection.{}.format", partition.name)];
                    let date = if format == "yyyy-MM" { format!("{value}-01") } else { value.to_string() };
                    let date = chrono::NaiveDate::parse_from_str(&date, "%Y-%m-%d")
                        .unwrap_or_else(|_| panic!("{key}: `{value}` is a date of the projection's format {format}"));
                    assert!(first <= date && date <= last, "{key}: {date} within the projection's range");
                    assert!(folders[1].starts_with("run="), "{key}");
                }
                more => panic!("one date partition at most: {more:?}"),
            }
        }
    }
    let fact = tables.iter().find(|table| table.name == "fact_sales").expect("fact_sales");
    let projected: Vec<(&str, &str)> = fact
        .parameters
        .iter()
        .filter(|(name, _)| name.starts_with("projection."))
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    assert_eq!(
        projected,
        [
            ("projection.enabled", "true"),
            ("projection.sale_date_month.format", "yyyy-MM"),
            ("projection.sale_date_month.interval", "1"),
            ("projection.sale_date_month.interval.unit", "MONTHS"),
            ("projection.sale_date_month.range", "2024-01,2024-03"),
            ("projection.sale_date_month.type", "date"),
        ]
    );
}

#[test]
fn a_daily_partition_is_projected_under_a_key_of_its_own_and_without_dates_from_1970() {
    let text = std::fs::read_to_string(example().join("pipeline.toml")).expect("contract");
    let daily = text.replace("partition = \"month\"", "partition = \"day\"");
    let contract = Contract::parse("pipeline.toml", &daily).expect("contract");
    let tables = catalog_tables(&contract, "other-bucket", None).expect("catalog tables");
    let fact = tables.iter().find(|table| table.name == "fact_sales").expect("fact_sales");
    // `sale_date` is a column, so the partition key is `sale_date_day`; the folders stay
    // `sale_date=YYYY-MM-DD`.
    assert_eq!(fact.partition_keys.len(), 1);
    assert_eq!(fact.partition_keys[0].name, "sale_date_day");
    assert!(fact.columns.iter().any(|column| column.name == "sale_date" && column.glue_type == "date"));
    assert_eq!(
        fact.parameters["storage.location.template"],
        "s3://other-bucket/curated/fact_sales/sale_date=${sale_date_day}/"
    );
    assert_eq!(fact.parameters["projection.sale_date_day.format"], "yyyy-MM-dd");
    assert_eq!(fact.parameters["projection.sale_date_day.range"], "1970-01-01,NOW");
    assert_eq!(fact.parameters["projection.sale_date_day.interval.unit"], "DAYS");
    let customers = tables.iter().find(|table| table.name == "dim_customer").expect("dim_customer");
    assert!(customers.partition_keys.is_empty());
    assert!(!customers.parameters.contains_key("projection.enabled"));
    assert_eq!(customers.location, "s3://other-bucket/curated/dim_customer/");
}

fn glue_client(moto: &Moto) -> aws_sdk_glue::Client {
    let config = aws_sdk_glue::Config::builder()
        .behavior_version(aws_sdk_glue::config::BehaviorVersion::latest())
        .region(aws_sdk_glue::config::Region::new("us-east-1"))
        .endpoint_url(&moto.endpoint)
        .credentials_provider(aws_sdk_glue::config::Credentials::new("t", "t", None, None, "t"))
        .build();
    aws_sdk_glue::Client::from_conf(config)
}

/// The catalog's table as (columns, partition keys, parameters).
async fn stored(glue: &aws_sdk_glue::Client, name: &str) -> aws_sdk_glue::types::Table {
    glue.get_table()
        .database_name("lakestar")
        .name(name)
        .send()
        .await
        .expect("get table")
        .table()
        .cloned()
        .expect("a table")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_load_keeps_the_glue_tables_in_step_with_the_contract() {
    let moto = Moto::start();
    let glue = glue_client(&moto);
    let database = aws_sdk_glue::types::DatabaseInput::builder().name("lakestar").build().expect("input");
    glue.create_database().database_input(database).send().await.expect("a database");
    let catalog = GlueCatalog::new(glue.clone(), "lakestar");

    let home = tempfile::tempdir().expect("home");
    let stack = run_example(home.path(), Some(catalog.clone())).await;

    // What the loads left in the catalog is the contract's definition, over the calendar.
    let contract = Contract::load(&example().join("pipeline.toml")).expect("contract");
    let dates = stack.warehouse().calendar_range().await.expect("calendar").expect("dates");
    let definitions = catalog_tables(&contract, "lakestar-lake", Some(dates)).expect("definitions");
    let listed = glue.get_tables().database_name("lakestar").send().await.expect("tables");
    let names: BTreeSet<&str> = listed.table_list().iter().map(|table| table.name()).collect();
    assert_eq!(names, BTreeSet::from(["dim_customer", "dim_product", "dim_store", "fact_sales"]));
    for definition in &definitions {
        let table = stored(&glue, &definition.name).await;
        let storage = table.storage_descriptor().expect("storage");
        let columns: Vec<(String, String)> = storage
            .columns()
            .iter()
            .map(|column| (column.name().to_string(), column.r#type().unwrap_or_default().to_string()))
            .collect();
        assert_eq!(columns, catalog_columns(definition), "{}", definition.name);
        let keys: Vec<&str> = table.partition_keys().iter().map(|column| column.name()).collect();
        let expected: Vec<&str> = definition.partition_keys.iter().map(|column| column.name.as_str()).collect();
        assert_eq!(keys, expected, "{}", definition.name);
        assert_eq!(storage.location(), Some(definition.location.as_str()));
        assert_eq!(storage.input_format(), Some(CatalogTable::INPUT_FORMAT));
        assert_eq!(table.table_type(), Some("EXTERNAL_TABLE"));
        let parameters = table.parameters().expect("parameters");
        for (name, value) in &definition.parameters {
            assert_eq!(parameters.get(name), Some(value), "{}: {name}", definition.name);
        }
    }
    let fact = stored(&glue, "fact_sales").await;
    let range = &fact.parameters().expect("parameters")["projection.sale_date_month.range"];
    assert_eq!(range, &format!("{},{}", dates.0.format("%Y-%m"), dates.1.format("%Y-%m")));

    // Again: nothing to do. A parameter someone else set does not count as a difference.
    assert_eq!(catalog.sync(&definitions).await.expect("sync"), CatalogSync { unchanged: 4, ..CatalogSync::default() });
    let mut input = aws_sdk_glue::types::TableInput::builder()
        .name("fact_sales")
        .table_type("EXTERNAL_TABLE")
        .set_partition_keys(Some(fact.partition_keys().to_vec()))
        .set_storage_descriptor(fact.storage_descriptor().cloned());
    for (name, value) in fact.parameters().expect("parameters") {
        input = input.parameters(name, value);
    }
    let input = input.parameters("owner.team", "analytics").build().expect("input");
    glue.update_table().database_name("lakestar").table_input(input).send().await.expect("a user's parameter");
    assert_eq!(catalog.sync(&definitions).await.expect("sync"), CatalogSync { unchanged: 4, ..CatalogSync::default() });

    // The contract now partitions by day: the fact's table is updated, its monthly
    // projection gone, the user's parameter kept.
    let text = std::fs::read_to_string(example().join("pipeline.toml")).expect("contract");
    let daily = Contract::parse("pipeline.toml", &text.replace("partition = \"month\"", "partition = \"day\""))
        .expect("contract");
    let daily = catalog_tables(&daily, "lakestar-lake", Some(dates)).expect("definitions");
    assert_eq!(
        catalog.sync(&daily).await.expect("sync"),
        CatalogSync { updated: 1, unchanged: 3, ..CatalogSync::default() }
    );
    let fact = stored(&glue, "fact_sales").await;
    let parameters = fact.parameters().expect("parameters");
    let keys: Vec<&str> = fact.partition_keys().iter().map(|column| column.name()).collect();
    assert_eq!(keys, ["sale_date_day"]);
    assert!(parameters.keys().all(|name| !name.starts_with("projection.sale_date_month")), "{parameters:?}");
    assert_eq!(parameters.get("projection.sale_date_day.format").map(String::as_str), Some("yyyy-MM-dd"));
    assert_eq!(parameters.get("owner.team").map(String::as_str), Some("analytics"));

    // A database that is not there: refused, by name.
    let error = GlueCatalog::new(glue.clone(), "no_such_database").sync(&definitions).await.expect_err("refused");
    assert_eq!(error.error_type(), "CatalogRefused", "{error}");
    assert!(error.to_string().contains("no_such_database"), "{error}");
}
