//! The warehouse's schema management against the machine's real PostgreSQL (a database of
//! its own per test) and SQLite, with the same cases for both.

mod common;

use common::*;
use lakestar::contract::Contract;
use lakestar::warehouse::{CopyFormat, Warehouse};

/// The cases, for either backend.
async fn schema_cases(warehouse: &Warehouse, contract: &Contract) {
    warehouse.ensure_tables(contract).await.expect("tables created");
    warehouse.ensure_tables(contract).await.expect("a second run changes nothing");
    for table in [
        "dim_customer",
        "dim_product",
        "dim_store",
        "fact_sales",
        "dim_date",
        "load_audit",
        "quality_metrics",
        "lakestar_runs",
    ] {
        assert!(!warehouse.existing_columns(table).await.expect("catalog").is_empty(), "{table} exists");
    }
    let customer: Vec<String> =
        warehouse.existing_columns("dim_customer").await.expect("catalog").into_iter().map(|(name, _)| name).collect();
    assert_eq!(customer[0], "customer_key");
    for column in ["customer_id", "email", "valid_from", "valid_to", "is_current", "row_hash"] {
        assert!(customer.contains(&column.to_string()), "{column} in {customer:?}");
    }
    let sales: Vec<String> =
        warehouse.existing_columns("fact_sales").await.expect("catalog").into_iter().map(|(name, _)| name).collect();
    assert!(sales.contains(&"customer_key".to_string()) && sales.contains(&"store_key".to_string()), "{sales:?}");

    // dim_date holds each date once, generated.
    let day = |d| chrono::NaiveDate::from_ymd_opt(2024, 2, d).expect("date");
    assert_eq!(warehouse.ensure_dates(&[day(29), day(28), day(29)], &Default::default()).await.expect("dates"), 2);
    assert_eq!(
        warehouse.ensure_dates(&[day(28), day(27)], &Default::default()).await.expect("dates"),
        1,
        "only the missing one"
    );
    // The calendar has no gaps: a date further back brings every date up to the first.
    assert_eq!(
        warehouse.ensure_dates(&[day(20)], &Default::default()).await.expect("dates"),
        7,
        "the 20th and the 21st to the 26th"
    );
    let calendar = query_text(
        warehouse,
        "SELECT CAST(COUNT(*) AS TEXT), CAST(MIN(date_key) AS TEXT), CAST(MAX(date_key) AS TEXT) FROM dim_date",
    )
    .await;
    assert_eq!(calendar, [vec![Some("10".to_string()), Some("20240220".to_string()), Some("20240229".to_string())]]);

    // A column the contract gains is added.
    let grown = RETAIL_CONTRACT.replacen(
        "[[datasets.customers.columns]]\nname = \"city\"",
        "[[datasets.customers.columns]]\nname = \"country\"\n\n[[datasets.customers.columns]]\nname = \"city\"",
        1,
    );
    let grown = Contract::parse("pipeline.toml", &grown).expect("valid");
    warehouse.ensure_tables(&grown).await.expect("evolved");
    let customer: Vec<String> =
        warehouse.existing_columns("dim_customer").await.expect("catalog").into_iter().map(|(name, _)| name).collect();
    assert!(customer.contains(&"country".to_string()), "{customer:?}");

    // A type change is refused, naming table and column.
    let changed = RETAIL_CONTRACT
        .replacen("name = \"loyalty_tier\"", "name = \"loyalty_tier\"\ntype = \"integer\"", 1)
        .replacen("checks = { allowed = [\"bronze\", \"silver\", \"gold\"] }", "", 1);
    let changed = Contract::parse("pipeline.toml", &changed).expect("valid");
    let error = warehouse.ensure_tables(&changed).await.expect_err("refused");
    assert_eq!(error.error_type(), "WarehouseSchemaConflict");
    assert!(error.to_string().contains("column `loyalty_tier` of `dim_customer`"), "{error}");
}

#[tokio::test]
async fn postgres_tables_are_created_from_the_contract_and_evolved() {
    let (database, url) = PostgresDatabase::create().await;
    let warehouse = Warehouse::connect(&url).await.expect("connected and migrated");
    schema_cases(&warehouse, &retail_contract()).await;
    database.drop_database(warehouse).await;
}

#[tokio::test]
async fn sqlite_tables_are_created_from_the_contract_and_evolved() {
    let dir = tempfile::tempdir().expect("folder");
    let url = format!("sqlite://{}", dir.path().join("warehouse.db").display());
    let warehouse = Warehouse::connect(&url).await.expect("connected and migrated");
    schema_cases(&warehouse, &retail_contract()).await;
}

#[tokio::test]
async fn an_unknown_url_is_a_configuration_error() {
    let error = Warehouse::connect("mysql://x").await.expect_err("refused");
    assert_eq!(error.error_type(), "InvalidConfiguration");
}

/// A Parquet file of every type the load stages, with the values at their edges.
fn every_type_parquet(dir: &std::path::Path) -> std::path::PathBuf {
    use std::sync::Arc;

    use arrow::array::{
        ArrayRef, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int32Array, Int64Array, RecordBatch,
        StringArray, TimestampMicrosecondArray,
    };
    let decimal = |values: Vec<Option<i128>>, precision: u8, scale: i8| -> ArrayRef {
        Arc::new(Decimal128Array::from(values).with_precision_and_scale(precision, scale).expect("decimal type"))
    };
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("id", Arc::new(Int64Array::from((1..=7).collect::<Vec<i64>>()))),
        (
            "label",
            Arc::new(StringArray::from(vec![
                Some("plain"),
                Some(""),
                Some("Zoë, \"quoted\"\nnew line"),
                None,
                Some("\\N"),
                Some("漢字 🚀"),
                Some(" spaced "),
            ])),
        ),
        (
            "big",
            Arc::new(Int64Array::from(vec![Some(i64::MIN), Some(i64::MAX), Some(0), None, Some(-1), Some(7), Some(1)])),
        ),
        (
            "small",
            Arc::new(Int32Array::from(vec![
                Some(i32::MIN),
                Some(i32::MAX),
                Some(0),
                None,
                Some(-32_768),
                Some(32_767),
                Some(5),
            ])),
        ),
        (
            "tiny",
            Arc::new(Int64Array::from(vec![Some(-32_768), Some(32_767), Some(0), None, Some(1), Some(-1), Some(9)])),
        ),
        (
            "ratio",
            Arc::new(Float64Array::from(vec![
                Some(0.1),
                Some(-1e-300),
                Some(1e300),
                None,
                Some(f64::NAN),
                Some(-0.0),
                Some(2.5),
            ])),
        ),
        (
            "flag",
            Arc::new(BooleanArray::from(vec![
                Some(true),
                Some(false),
                None,
                Some(true),
                Some(false),
                Some(true),
                None,
            ])),
        ),
        (
            "price",
            decimal(vec![Some(0), Some(-5), Some(1250), None, Some(99_999_999_999), Some(-100_000), Some(1)], 12, 2),
        ),
        (
            "exact",
            decimal(
                vec![
                    Some(99_999_999_999_999_999_999_999_999_999_999_999_999),
                    Some(-1),
                    Some(10_000_000_000),
                    Some(123_456_789_012_345_678_901),
                    None,
                    Some(-99_990_000_000_000),
                    Some(5_000),
                ],
                38,
                10,
            ),
        ),
        (
            "whole",
            decimal(
                vec![Some(10_000), Some(-9_999), Some(100_000_000), Some(0), None, Some(12_345_678), Some(1)],
                18,
                0,
            ),
        ),
        (
            "day",
            // 0001-01-01, 1969-12-31, 1999-12-31, 2000-01-01, 2024-02-29, null, 9999-12-31.
            Arc::new(Date32Array::from(vec![
                Some(-719_162),
                Some(-1),
                Some(10_956),
                Some(10_957),
                Some(19_782),
                None,
                Some(2_932_896),
            ])),
        ),
        (
            "at",
            Arc::new(
                TimestampMicrosecondArray::from(vec![
                    Some(-2_208_988_800_000_000),
                    Some(0),
                    Some(946_684_799_999_999),
                    Some(946_684_800_000_000),
                    Some(1_704_067_200_000_001),
                    None,
                    Some(-1),
                ])
                .with_timezone("UTC"),
            ),
        ),
        (
            "note",
            Arc::new(StringArray::from(vec![Some("a"), None, Some("b"), Some("c"), Some(""), Some("d"), Some("e")])),
        ),
    ];
    let batch = RecordBatch::try_from_iter(columns).expect("batch");
    let path = dir.join("every_type.parquet");
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(std::fs::File::create(&path).expect("file"), batch.schema(), None)
            .expect("writer");
    writer.write(&batch).expect("write");
    writer.close().expect("close");
    path
}

const EVERY_TYPE: &str = "id BIGINT, label TEXT, big BIGINT, small INTEGER, tiny SMALLINT, ratio DOUBLE PRECISION, \
     flag BOOLEAN, price NUMERIC(12,2), exact NUMERIC(38,10), whole NUMERIC, day DATE, at TIMESTAMPTZ, note VARCHAR(4)";

/// The every-type file and a fresh PostgreSQL database to copy it into.
struct EveryType {
    _dir: tempfile::TempDir,
    file: std::path::PathBuf,
    database: PostgresDatabase,
    warehouse: Warehouse,
}

impl EveryType {
    async fn new() -> EveryType {
        let dir = tempfile::tempdir().expect("dir");
        let file = every_type_parquet(dir.path());
        let (database, url) = PostgresDatabase::create().await;
        let warehouse = Warehouse::connect(&url).await.expect("connect");
        EveryType { _dir: dir, file, database, warehouse }
    }

    /// The file, opened afresh for one copy.
    fn open(&self) -> Vec<std::fs::File> {
        vec![std::fs::File::open(&self.file).expect("parquet")]
    }

    /// `statement`'s rows as text.
    async fn run(&self, statement: String) -> Vec<Vec<Option<String>>> {
        query_text(&self.warehouse, &statement).await
    }
}

#[tokio::test]
async fn postgres_binary_copy_stores_every_value_as_the_csv_copy_does() {
    let every_type = EveryType::new().await;
    let warehouse = &every_type.warehouse;
    for table in ["as_csv", "as_binary"] {
        every_type.run(format!("CREATE TABLE {table} ({EVERY_TYPE})")).await;
    }
    // These types all travel in binary (the next test shows it: a value out of a column's
    // range is Lakestar's own encoding error there, not the server's CSV parsing error).
    assert_eq!(warehouse.bulk_copy("as_csv", every_type.open(), CopyFormat::Csv).await.expect("CSV copy"), 7);
    assert_eq!(warehouse.bulk_copy("as_binary", every_type.open(), CopyFormat::Binary).await.expect("binary copy"), 7);

    let every = "id::text, label, big::text, small::text, tiny::text, ratio::text, flag::text, price::text, \
                 exact::text, whole::text, day::text, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'), note";
    let csv = every_type.run(format!("SELECT {every} FROM as_csv ORDER BY id")).await;
    let binary = every_type.run(format!("SELECT {every} FROM as_binary ORDER BY id")).await;
    assert_eq!(binary, csv);
    // And the values are the file's, not merely the same wrong ones.
    let text = |value: &str| Some(value.to_string());
    assert_eq!(
        binary[2],
        vec![
            text("3"),
            text("Zoë, \"quoted\"\nnew line"),
            text("0"),
            text("0"),
            text("0"),
            text("1e+300"),
            None,
            text("12.50"),
            text("1.0000000000"),
            text("100000000"),
            text("1999-12-31"),
            text("1999-12-31 23:59:59.999999"),
            text("b"),
        ]
    );
    assert_eq!(binary[0][8], text("9999999999999999999999999999.9999999999"));
    assert_eq!(binary[3][8], text("12345678901.2345678901"));
    assert_eq!(binary[4][1], text("\\N"), "a backslash-N is text, not a null");
    assert_eq!(binary[4][5], None, "NaN is stored as a null in both forms");
    assert_eq!(binary[1][1], text(""), "an empty string stays a string");
    assert_eq!(binary[6][11], text("1969-12-31 23:59:59.999999"));

    // Floats into a numeric column (a bulk copy into a table of one's own): their shortest
    // text, exponents included, reads as PostgreSQL's own parser reads it.
    let numeric = EVERY_TYPE.replace("ratio DOUBLE PRECISION", "ratio NUMERIC");
    for table in ["numeric_csv", "numeric_binary"] {
        every_type.run(format!("CREATE TABLE {table} ({numeric})")).await;
    }
    warehouse.bulk_copy("numeric_csv", every_type.open(), CopyFormat::Csv).await.expect("CSV copy");
    warehouse.bulk_copy("numeric_binary", every_type.open(), CopyFormat::Binary).await.expect("binary copy");
    let ratios = |table: &str| format!("SELECT ratio::text FROM {table} ORDER BY id");
    let from_csv = every_type.run(ratios("numeric_csv")).await;
    assert_eq!(every_type.run(ratios("numeric_binary")).await, from_csv);
    assert_eq!(from_csv[0], vec![text("0.1")]);
    assert!(from_csv[2][0].as_deref().is_some_and(|big| big.len() == 301 && big.starts_with("10")), "{from_csv:?}");
    every_type.database.drop_database(every_type.warehouse).await;
}

#[tokio::test]
async fn postgres_binary_copy_falls_back_to_csv_for_other_types_and_names_a_value_out_of_range() {
    let every_type = EveryType::new().await;
    let warehouse = &every_type.warehouse;
    // A type Lakestar does not encode (here the label as `citext`-like `name`): the copy goes as CSV.
    let other = EVERY_TYPE.replace("label TEXT", "label NAME");
    query_text(warehouse, &format!("CREATE TABLE other_types ({other})")).await;
    assert_eq!(
        warehouse.bulk_copy("other_types", every_type.open(), CopyFormat::Binary).await.expect("CSV fallback"),
        7
    );
    let labels = query_text(warehouse, "SELECT label::text FROM other_types WHERE id = 6").await;
    assert_eq!(labels, vec![vec![Some("漢字 🚀".to_string())]]);

    // A 64-bit value into a narrower column: an error naming the table and the column, never the value.
    let narrow = EVERY_TYPE.replace("big BIGINT", "big INTEGER");
    query_text(warehouse, &format!("CREATE TABLE narrow ({narrow})")).await;
    let error = warehouse
        .bulk_copy("narrow", every_type.open(), CopyFormat::Binary)
        .await
        .expect_err("out of range")
        .to_string();
    assert!(error.contains("narrow") && error.contains("`big`") && error.contains("integer"), "{error}");
    assert!(!error.contains(&i64::MIN.to_string()), "{error}");
    let left = query_text(warehouse, "SELECT COUNT(*)::text FROM narrow").await;
    assert_eq!(left, vec![vec![Some("0".to_string())]], "nothing of the failed copy stays");
    every_type.database.drop_database(every_type.warehouse).await;
}

/// Issue 32.5: a warehouse that is down fails the attempt quickly, naming the target (never
/// the password), as WarehouseUnavailable, which the state machine retries with backoff.
#[tokio::test]
async fn a_warehouse_that_is_down_fails_fast_naming_its_target() {
    let started = std::time::Instant::now();
    let error = Warehouse::connect("postgres://loader:s3cret@127.0.0.1:1/lakestar").await.expect_err("down");
    assert!(started.elapsed() < std::time::Duration::from_secs(15), "took {:?}", started.elapsed());
    assert_eq!(error.error_type(), "WarehouseUnavailable");
    let message = error.to_string();
    assert!(message.contains("postgres://127.0.0.1:1/lakestar"), "{message}");
    assert!(!message.contains("s3cret"), "{message}");
}
