//! Shared helpers of the integration tests: an embedded S3 lake in a temporary folder,
//! invoking handlers with real payloads, and reading Parquet back.

#![allow(dead_code)]

use std::path::Path;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::DataType;
use chrono::{DateTime, Utc};
use lakestar::contract::Contract;
use lakestar::lake::{EmbeddedS3, Lake};
use lakestar::mask::MaskingKey;
use lakestar::run::RunDescriptor;
use lakestar::warehouse::Warehouse;
use lambda_runtime::{Context, LambdaEvent};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// The bucket every test lake uses.
pub const BUCKET: &str = "lakestar-lake";

/// The retail example's contract text.
pub const RETAIL_CONTRACT: &str = include_str!("../../../examples/retail/pipeline.toml");

/// A lake on an embedded S3 endpoint over a temporary folder; both go away on drop.
pub struct TestLake {
    pub s3: EmbeddedS3,
    pub lake: Lake,
    pub dir: tempfile::TempDir,
}

impl TestLake {
    pub async fn start() -> TestLake {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let s3 = EmbeddedS3::start(&dir.path().join("s3")).await.expect("embedded S3 starts");
        s3.create_bucket(BUCKET).await.expect("bucket");
        let lake = Lake::new(s3.client(), BUCKET);
        TestLake { s3, lake, dir }
    }

    pub async fn put(&self, key: &str, bytes: &[u8]) {
        self.lake.put_bytes(key, bytes.to_vec(), "application/octet-stream").await.expect("put object");
    }

    pub async fn get(&self, key: &str) -> Vec<u8> {
        self.lake.get_bytes(key).await.expect("get object")
    }

    /// Every key in the bucket.
    pub async fn keys(&self) -> Vec<String> {
        self.lake.list("").await.expect("list")
    }
}

pub fn retail_contract() -> Contract {
    Contract::parse("pipeline.toml", RETAIL_CONTRACT).expect("the retail contract is valid")
}

pub fn example_file(relative: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/retail/landing").join(relative);
    std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

pub fn run_time() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2024-01-02T03:04:05Z").expect("valid").with_timezone(&Utc)
}

pub fn run_for(dataset: &str, key: &str, size: usize) -> RunDescriptor {
    RunDescriptor::new(dataset, BUCKET, key, None, Some("etag"), size as u64, run_time())
}

/// A Lambda event carrying the state document `{"run": …}`, as Step Functions sends it.
pub fn state_event(run: &RunDescriptor) -> LambdaEvent<serde_json::Value> {
    LambdaEvent::new(serde_json::json!({ "run": run }), Context::default())
}

/// Reads a Parquet object into batches.
pub fn read_parquet(bytes: Vec<u8>) -> Vec<RecordBatch> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))
        .expect("a Parquet file")
        .build()
        .expect("a reader");
    reader.collect::<Result<Vec<_>, _>>().expect("readable batches")
}

/// The column names of the batches' schema.
pub fn column_names(batches: &[RecordBatch]) -> Vec<String> {
    batches[0].schema().fields().iter().map(|field| field.name().clone()).collect()
}

/// One text column of all batches, as optional strings.
pub fn text_column(batches: &[RecordBatch], name: &str) -> Vec<Option<String>> {
    let mut out = Vec::new();
    for batch in batches {
        let column = batch.column_by_name(name).unwrap_or_else(|| panic!("column {name}"));
        assert_eq!(column.data_type(), &DataType::Utf8, "{name} is text");
        let strings = column.as_string::<i32>();
        out.extend((0..strings.len()).map(|index| strings.is_valid(index).then(|| strings.value(index).to_string())));
    }
    out
}

/// One Int64 column of all batches.
pub fn int_column(batches: &[RecordBatch], name: &str) -> Vec<i64> {
    batches
        .iter()
        .flat_map(|batch| {
            let column = batch.column_by_name(name).unwrap_or_else(|| panic!("column {name}"));
            column.as_primitive::<arrow::datatypes::Int64Type>().values().to_vec()
        })
        .collect()
}

/// The Arrow schema metadata stored in a Parquet object.
pub fn parquet_schema_metadata(bytes: Vec<u8>) -> std::collections::HashMap<String, String> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes)).expect("a Parquet file");
    builder.schema().metadata().iter().map(|(key, value)| (key.clone(), value.clone())).collect()
}

/// A `moto_server` (Python, from PyPI) on a free port, speaking the AWS protocols; killed on drop.
pub struct Moto {
    child: std::process::Child,
    pub endpoint: String,
}

impl Moto {
    pub fn start() -> Moto {
        let port =
            std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("address").port();
        let child = std::process::Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("moto_server runs (pip install 'moto[server]')");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "moto_server did not start");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        Moto { child, endpoint: format!("http://127.0.0.1:{port}") }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub const ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A fresh PostgreSQL database, dropped at the end of the test.
pub struct PostgresDatabase {
    name: String,
}

impl PostgresDatabase {
    pub async fn create() -> (PostgresDatabase, String) {
        let name = format!(
            "lakestar_test_{}_{}",
            std::process::id(),
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time").as_nanos()
        );
        let admin =
            sqlx::PgPool::connect(ADMIN_URL).await.expect("PostgreSQL on 127.0.0.1:5432 (bash .ci/run starts it)");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&admin)
            .await
            .expect("create database");
        let url = format!("postgres://postgres@127.0.0.1:5432/{name}");
        (PostgresDatabase { name }, url)
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Drops the database, whoever still holds connections to it.
    pub async fn drop_database_by_name(self) {
        let admin = sqlx::PgPool::connect(ADMIN_URL).await.expect("admin connection");
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name)))
            .execute(&admin)
            .await
            .expect("drop database");
    }

    pub async fn drop_database(self, warehouse: Warehouse) {
        if let Warehouse::Postgres(pool) = warehouse {
            pool.close().await;
        }
        let admin = sqlx::PgPool::connect(ADMIN_URL).await.expect("admin connection");
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name)))
            .execute(&admin)
            .await
            .expect("drop database");
    }
}

/// Runs a query whose every column is cast to text, on either backend.
pub async fn query_text(warehouse: &Warehouse, statement: &str) -> Vec<Vec<Option<String>>> {
    use sqlx::Row;
    fn texts<R: Row>(rows: Vec<R>) -> Vec<Vec<Option<String>>>
    where
        for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        usize: sqlx::ColumnIndex<R>,
    {
        rows.into_iter()
            .map(|row| (0..row.len()).map(|index| row.try_get::<Option<String>, _>(index).expect("text")).collect())
            .collect()
    }
    let statement = sqlx::AssertSqlSafe(statement.to_string());
    match warehouse {
        Warehouse::Postgres(pool) => texts(sqlx::query(statement).fetch_all(pool).await.expect("query")),
        Warehouse::Sqlite(pool) => texts(sqlx::query(statement).fetch_all(pool).await.expect("query")),
    }
}

/// An instant column as fixed-width UTC text in either backend's SQL.
pub fn instant_text(warehouse: &Warehouse, column: &str) -> String {
    match warehouse {
        Warehouse::Postgres(_) => format!("to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"),
        Warehouse::Sqlite(_) => column.to_string(),
    }
}

/// A boolean column as `1`/`0` text in either backend's SQL.
pub fn flag_text(warehouse: &Warehouse, column: &str) -> String {
    match warehouse {
        Warehouse::Postgres(_) => format!("CASE WHEN {column} THEN '1' ELSE '0' END"),
        Warehouse::Sqlite(_) => format!("CAST({column} AS TEXT)"),
    }
}

/// Every star table of the retail example, whole, as text, in key order: to compare two
/// warehouses or one before and after.
pub async fn snapshot(warehouse: &Warehouse) -> Vec<Vec<Vec<Option<String>>>> {
    let mut tables = Vec::new();
    for (table, order) in [
        ("dim_customer", "customer_key"),
        ("dim_product", "product_key"),
        ("dim_store", "store_key"),
        ("fact_sales", "order_id, line"),
        ("dim_date", "date_key"),
    ] {
        let columns: Vec<String> = warehouse
            .existing_columns(table)
            .await
            .expect("catalog")
            .into_iter()
            .map(|(name, _)| format!("CAST(\"{name}\" AS TEXT)"))
            .collect();
        if columns.is_empty() {
            // A table no load has made yet (a load makes only its own tables).
            tables.push(Vec::new());
            continue;
        }
        tables
            .push(query_text(warehouse, &format!("SELECT {} FROM {table} ORDER BY {order}", columns.join(", "))).await);
    }
    tables
}

/// Facts of `fact_sales` whose customer, product, store or date key resolves to no row.
pub async fn dangling_fact_keys(warehouse: &Warehouse) -> Vec<Vec<Option<String>>> {
    query_text(
        warehouse,
        "SELECT CAST(COUNT(*) AS TEXT) FROM fact_sales f \
         LEFT JOIN dim_customer c ON c.customer_key = f.customer_key \
         LEFT JOIN dim_product p ON p.product_key = f.product_key \
         LEFT JOIN dim_store s ON s.store_key = f.store_key \
         LEFT JOIN dim_date d ON d.date_key = f.date_key \
         WHERE c.customer_key IS NULL OR p.product_key IS NULL OR s.store_key IS NULL OR d.date_key IS NULL",
    )
    .await
}

/// A stack over `home` with the contract `text` (written next to it).
pub async fn stack_with(home: &Path, text: &str) -> lakestar_local::stack::Stack {
    stack_on(home, text, None).await
}

/// [`stack_with`], loading into `warehouse` (SQLite in the home when `None`).
pub async fn stack_on(home: &Path, text: &str, warehouse: Option<String>) -> lakestar_local::stack::Stack {
    let contract = home.join("pipeline.toml");
    std::fs::write(&contract, text).expect("contract");
    let mut config = lakestar_local::stack::StackConfig::new(home.join("home"), &contract);
    config.warehouse = warehouse;
    config.key = Some(MaskingKey::new(b"new-user-test-key-0123456789abcdef".to_vec(), "v1").expect("key"));
    config.timing = lakestar_local::stack::timing(0.0);
    lakestar_local::stack::Stack::open(config).await.expect("stack")
}

/// Drops `bytes` under `key` and runs what it started.
pub async fn drop_and_run(
    stack: &lakestar_local::stack::Stack,
    folder: &Path,
    key: &str,
    bytes: &[u8],
) -> Vec<lakestar_local::store::ExecutionRecord> {
    let path = folder.join(key.replace('/', "_"));
    std::fs::write(&path, bytes).expect("file");
    stack.drop_file(key, &path).await.expect("dropped");
    stack.run_started(|_| {}).await.expect("ran")
}

pub fn succeeded(records: &[lakestar_local::store::ExecutionRecord]) {
    for record in records {
        assert_eq!(record.status, "SUCCEEDED", "{}: {:?} {:?}", record.name, record.error, record.cause);
    }
}
