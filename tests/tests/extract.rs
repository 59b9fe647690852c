//! Issue 28 (sources): PostgreSQL (the machine's), MySQL (MariaDB, as `.ci/run` installs it)
//! and an HTTP API (a server in this test that paginates four ways and answers 429 and 500)
//! extracted into `landing/` and run through the stack into the warehouse: a first full
//! extraction, an incremental one that picks up exactly the rows changed since, a re-run that
//! writes nothing, a crash after some pages then a re-run with no gap and no duplicate, and
//! the values (decimals, timestamps with zones, dates) as the source holds them.

mod common;

use std::collections::{BTreeMap, VecDeque};
use std::io::Read;
use std::path::Path;
use std::sync::{Arc, Mutex};

use common::{Moto, PostgresDatabase, TestLake, query_text, stack_on, succeeded};
use lakestar::contract::Contract;
use lakestar::extract::{Extraction, Extractor, Options, Outcome, SourceState};
use lakestar_local::stack::Stack;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The contract: a fact of orders from a database source, a dimension of products from HTTP.
fn contract(database: &str, url: &str, api: &str, pagination: &str) -> String {
    format!(
        r#"
[datasets.orders]
match = ["landing/shop/**/*.ndjson.gz"]
[datasets.orders.table]
name = "fact_orders"
kind = "fact"
natural_key = ["order_id"]
date_column = "order_date"
[datasets.orders.quality]
max_reject_ratio = 0.0
[[datasets.orders.columns]]
name = "order_id"
type = "integer"
required = true
[[datasets.orders.columns]]
name = "customer"
[[datasets.orders.columns]]
name = "amount"
type = "decimal(20,4)"
[[datasets.orders.columns]]
name = "placed_at"
type = "timestamp"
[[datasets.orders.columns]]
name = "order_date"
type = "date"
required = true
[[datasets.orders.columns]]
name = "updated_at"
type = "timestamp"

[datasets.products]
match = ["landing/catalog/**/*.ndjson.gz"]
[datasets.products.table]
name = "dim_product"
kind = "dimension"
natural_key = ["sku"]
[[datasets.products.columns]]
name = "sku"
required = true
[[datasets.products.columns]]
name = "name"
[[datasets.products.columns]]
name = "price"
type = "decimal(30,10)"
[[datasets.products.columns]]
name = "updated_at"
type = "timestamp"

[sources.shop]
kind = "{database}"
dataset = "orders"
url = "{url}"
table = "orders"
page_size = 10
cursor = {{ column = "updated_at", type = "timestamp" }}

[sources.catalog]
kind = "http"
dataset = "products"
url = "{api}/items"
records = "items"
page_size = 100
rate_limit = 200
secret = "catalog-token"
auth = {{ header = "Authorization" }}
cursor = {{ field = "updated_at", type = "timestamp", param = "since" }}
{pagination}
"#
    )
}

const PAGE_NUMBER: &str = r#"pagination = { kind = "page_number", param = "page", size_param = "per_page" }"#;

/// A row of the `orders` table as the test inserts it: id, customer, amount, placed at, day.
fn order_row(id: i64) -> (i64, String, String, String, String) {
    (
        id,
        format!("customer {id} \"quoted\" é"),
        format!("{}.{:04}", 12_345_678_901_234i64 + id, id % 10_000),
        format!("2024-03-{:02}T{:02}:{:02}:07.250000Z", 1 + id % 28, id % 24, id % 60),
        format!("2024-03-{:02}", 1 + id % 28),
    )
}

/// The `updated_at` of a row written at `minute`.
fn updated(minute: i64) -> String {
    format!("2024-04-01T{:02}:{:02}:00Z", minute / 60, minute % 60)
}

/// A database source under test: PostgreSQL or MariaDB.
enum Database {
    Postgres(sqlx::PgPool, PostgresDatabase),
    Mysql(sqlx::MySqlPool, String),
}

impl Database {
    async fn postgres() -> (Database, String) {
        let (database, url) = PostgresDatabase::create().await;
        let pool = sqlx::PgPool::connect(&url).await.expect("the source database");
        sqlx::raw_sql(
            "CREATE TABLE orders (order_id bigint PRIMARY KEY, customer text, amount numeric(20,4), \
             placed_at timestamptz, order_date date, updated_at timestamptz NOT NULL)",
        )
        .execute(&pool)
        .await
        .expect("the orders table");
        (Database::Postgres(pool, database), url)
    }

    async fn mysql() -> (Database, String) {
        let name = format!("lakestar_test_{}_{}", std::process::id(), chrono::Utc::now().timestamp_micros());
        let admin = sqlx::MySqlPool::connect("mysql://root@127.0.0.1:3306/mysql")
            .await
            .expect("MariaDB on 127.0.0.1:3306 (bash .ci/run installs and starts it)");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE `{name}`")))
            .execute(&admin)
            .await
            .expect("a database");
        let url = format!("mysql://root@127.0.0.1:3306/{name}");
        let pool = sqlx::MySqlPool::connect(&url).await.expect("the source database");
        sqlx::raw_sql(
            "CREATE TABLE orders (order_id BIGINT PRIMARY KEY, customer TEXT, amount DECIMAL(20,4), \
             placed_at TIMESTAMP(6) NULL, order_date DATE, updated_at DATETIME(6) NOT NULL)",
        )
        .execute(&pool)
        .await
        .expect("the orders table");
        (Database::Mysql(pool, name), url)
    }

    fn kind(&self) -> &'static str {
        match self {
            Database::Postgres(..) => "postgres",
            Database::Mysql(..) => "mysql",
        }
    }

    /// Inserts or updates rows, each with `updated_at` at `minute`.
    async fn upsert(&self, ids: impl IntoIterator<Item = i64>, minute: i64) {
        for id in ids {
            let (id, customer, amount, placed, day) = order_row(id);
            let stamp = updated(minute);
            match self {
                Database::Postgres(pool, _) => {
                    sqlx::query(
                        "INSERT INTO orders VALUES ($1, $2, CAST($3 AS numeric), CAST($4 AS timestamptz), CAST($5 AS date), CAST($6 AS timestamptz)) \
                         ON CONFLICT (order_id) DO UPDATE SET customer = EXCLUDED.customer || ' (changed)', updated_at = EXCLUDED.updated_at",
                    )
                    .bind(id)
                    .bind(customer)
                    .bind(amount)
                    .bind(placed)
                    .bind(day)
                    .bind(stamp)
                    .execute(pool)
                    .await
                    .expect("upsert");
                }
                Database::Mysql(pool, _) => {
                    let mysql_time = |text: &str| text.trim_end_matches('Z').replace('T', " ");
                    sqlx::query(
                        "INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?) \
                         ON DUPLICATE KEY UPDATE customer = CONCAT(VALUES(customer), ' (changed)'), updated_at = VALUES(updated_at)",
                    )
                    .bind(id)
                    .bind(customer)
                    .bind(amount)
                    .bind(mysql_time(&placed))
                    .bind(day)
                    .bind(mysql_time(&stamp))
                    .execute(pool)
                    .await
                    .expect("upsert");
                }
            }
        }
    }

    async fn drop(self) {
        match self {
            Database::Postgres(pool, database) => {
                pool.close().await;
                database.drop_database_by_name().await;
            }
            Database::Mysql(pool, name) => {
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE `{name}`")))
                    .execute(&pool)
                    .await
                    .expect("drop");
                pool.close().await;
            }
        }
    }
}

/// The order ids in an extraction's pages, in page order.
async fn page_ids(lake: &lakestar::lake::Lake, extraction: &Extraction, field: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for page in &extraction.pages {
        let bytes = lake.get_bytes(&page.key).await.expect("a page");
        let mut text = String::new();
        flate2::read::GzDecoder::new(bytes.as_slice()).read_to_string(&mut text).expect("gzip NDJSON");
        for line in text.lines() {
            let record: Value = serde_json::from_str(line).expect("a JSON line");
            ids.push(record[field].to_string().trim_matches('"').to_string());
        }
    }
    ids
}

async fn extract(stack: &Stack, source: &str, options: &Options) -> Extraction {
    let mut done = stack.extract(&[source.to_string()], options).await.expect("extracted");
    let extraction = done.remove(0);
    extraction.extraction
}

async fn state(stack: &Stack, source: &str) -> SourceState {
    Extractor::new(stack.lake().clone(), None).state(source).await.expect("state")
}

fn ids(range: std::ops::RangeInclusive<i64>) -> Vec<String> {
    range.map(|id| id.to_string()).collect()
}

/// Every case a database source must pass, through the stack into SQLite.
async fn database_source(database: Database, url: String) {
    let home = tempfile::tempdir().expect("home");
    // PostgreSQL keeps every digit of a decimal (SQLite 15 significant ones).
    let (warehouse_database, warehouse_url) = PostgresDatabase::create().await;
    let text = contract(database.kind(), &url, "http://127.0.0.1:9", PAGE_NUMBER);
    let stack = stack_on(home.path(), &text, Some(warehouse_url)).await;
    let none = Options::default();

    // A first extraction: everything, in pages of 10, every page an execution.
    database.upsert(1..=25, 1).await;
    let first = extract(&stack, "shop", &none).await;
    assert_eq!(first.outcome, Outcome::Extracted);
    assert_eq!((first.rows, first.pages.len(), first.written), (25, 3, 3));
    assert!(first.pages.iter().all(|page| page.key.starts_with("landing/shop/from-start_to-")), "{:?}", first.pages);
    succeeded(&stack.run_started(|_| {}).await.expect("ran"));
    let mut sorted = page_ids(stack.lake(), &first, "order_id").await;
    sorted.sort_by_key(|id| id.parse::<i64>().unwrap_or(0));
    assert_eq!(sorted, ids(1..=25));

    // The values as the source holds them, end to end.
    let rows = query_text(
        stack.warehouse(),
        "SELECT CAST(order_id AS TEXT), customer, CAST(amount AS TEXT), CAST(placed_at AS TEXT), CAST(order_date AS TEXT) \
         FROM fact_orders WHERE order_id = 7",
    )
    .await;
    let (_, customer, amount, _, day) = order_row(7);
    assert_eq!(rows[0][1].as_deref(), Some(customer.as_str()));
    assert_eq!(rows[0][2].as_deref(), Some(amount.as_str()), "the decimal exactly");
    assert_eq!(rows[0][4].as_deref(), Some(day.as_str()));
    let placed = rows[0][3].clone().unwrap_or_default();
    assert!(placed.starts_with("2024-03-08") && placed.contains("07:07:07.25"), "the instant in UTC: {placed}");

    // Nothing changed: nothing written, nothing started, the state as it was.
    let before = state(&stack, "shop").await;
    let again = extract(&stack, "shop", &none).await;
    assert_eq!((again.outcome, again.pages.len()), (Outcome::NothingNew, 0));
    assert!(stack.run_started(|_| {}).await.expect("ran").is_empty());
    assert_eq!(state(&stack, "shop").await, before);

    // Two rows changed and three new: exactly those five.
    database.upsert([4, 9, 26, 27, 28], 2).await;
    let second = extract(&stack, "shop", &none).await;
    assert_eq!((second.rows, second.pages.len()), (5, 1));
    assert_eq!(second.from, before.watermark);
    let mut changed = page_ids(stack.lake(), &second, "order_id").await;
    changed.sort();
    assert_eq!(changed, ["26", "27", "28", "4", "9"]);
    succeeded(&stack.run_started(|_| {}).await.expect("ran"));

    // A crash after the first of three pages, then rows arriving; the re-run resumes the same
    // range into the same keys (the first page is not written again, its run not repeated),
    // and the next extraction takes the late rows.
    database.upsert(29..=50, 3).await;
    let crashed =
        stack.extract(&["shop".to_string()], &Options { stop_after_pages: Some(1), ..Options::default() }).await;
    let error = crashed.expect_err("stopped after a page");
    assert!(format!("{error:#}").contains("stopped after 1 page"), "{error:#}");
    let pending = state(&stack, "shop").await.pending.expect("the extraction is pending");
    assert_eq!(pending.pages.len(), 1);
    database.upsert(51..=53, 4).await;
    let resumed = extract(&stack, "shop", &none).await;
    assert_eq!((resumed.rows, resumed.pages.len(), resumed.written), (22, 3, 2));
    assert_eq!(resumed.pages[0], pending.pages[0], "the same first page, same key, same bytes");
    let mut resumed_ids = page_ids(stack.lake(), &resumed, "order_id").await;
    resumed_ids.sort_by_key(|id| id.parse::<i64>().unwrap_or(0));
    assert_eq!(resumed_ids, ids(29..=50), "no gap, no duplicate");
    let records = stack.run_started(|_| {}).await.expect("ran");
    assert_eq!(records.len(), 3, "the first page's run was started once, before the crash's re-run");
    succeeded(&records);
    let late = extract(&stack, "shop", &none).await;
    let mut late_ids = page_ids(stack.lake(), &late, "order_id").await;
    late_ids.sort();
    assert_eq!(late_ids, ["51", "52", "53"]);
    succeeded(&stack.run_started(|_| {}).await.expect("ran"));

    let count = query_text(
        stack.warehouse(),
        "SELECT CAST(COUNT(*) AS TEXT), CAST(COUNT(DISTINCT order_id) AS TEXT) FROM fact_orders",
    )
    .await;
    assert_eq!(count[0], [Some("53".to_string()), Some("53".to_string())]);
    let changed = query_text(stack.warehouse(), "SELECT customer FROM fact_orders WHERE order_id = 9").await;
    assert!(changed[0][0].as_deref().is_some_and(|name| name.ends_with("(changed)")), "{changed:?}");
    drop(stack);
    database.drop().await;
    warehouse_database.drop_database_by_name().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_source_extracts_fully_then_incrementally_exactly_once() {
    let (database, url) = Database::postgres().await;
    database_source(database, url).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mysql_source_extracts_fully_then_incrementally_exactly_once() {
    let (database, url) = Database::mysql().await;
    database_source(database, url).await;
}

/// A product of the HTTP API: its price a decimal with more digits than a double holds.
#[derive(Clone)]
struct Product {
    sku: String,
    price: String,
    updated_at: String,
}

impl Product {
    fn new(index: usize, minute: i64) -> Product {
        Product {
            sku: format!("SKU-{index:03}"),
            price: format!("{}.{:010}", 1_000_000_000_000_000_000u128 + index as u128, index),
            updated_at: updated(minute),
        }
    }

    /// Pretty-printed on purpose (the pages must still come out one record per line), the
    /// price unquoted.
    fn json(&self) -> String {
        format!(
            "{{\n    \"sku\": \"{}\",\n    \"name\": \"Product {}\",\n    \"price\": {},\n    \"updated_at\": \"{}\"\n  }}",
            self.sku, self.sku, self.price, self.updated_at
        )
    }
}

/// The HTTP API under test: products, paginated by page number, offset, cursor or `Link`, the
/// `since` parameter inclusive (as many APIs are); answers the queued faults first, and 401
/// without the bearer token.
#[derive(Default)]
struct Api {
    products: Vec<Product>,
    faults: VecDeque<(u16, Option<&'static str>)>,
    requests: Vec<String>,
    token: String,
}

async fn serve(api: Arc<Mutex<Api>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else { return };
            let api = api.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buffer = [0u8; 4096];
                while !head.windows(4).any(|window| window == b"\r\n\r\n") {
                    let Ok(read) = socket.read(&mut buffer).await else { return };
                    if read == 0 {
                        return;
                    }
                    head.extend_from_slice(&buffer[..read]);
                }
                let (status, headers, body) = answer(&api, &String::from_utf8_lossy(&head));
                let response = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n{headers}\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    format!("http://{address}")
}

/// Decodes a query value (`%XX`, `+`) as S3 event keys are decoded.
fn decode(text: &str) -> String {
    lakestar::trigger::decode_key(text).unwrap_or_else(|_| text.to_string())
}

fn answer(api: &Mutex<Api>, head: &str) -> (u16, String, String) {
    let mut api = api.lock().expect("the API");
    let line = head.lines().next().unwrap_or("");
    let target = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    api.requests.push(target.clone());
    let expected = format!("authorization: bearer {}", api.token).to_lowercase();
    if !api.token.is_empty() && !head.lines().any(|line| line.to_lowercase() == expected) {
        return (401, String::new(), r#"{"error": "unauthorised"}"#.to_string());
    }
    if let Some((status, retry_after)) = api.faults.pop_front() {
        let headers = retry_after.map(|after| format!("Retry-After: {after}\r\n")).unwrap_or_default();
        return (status, headers, r#"{"error": "try again"}"#.to_string());
    }
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let params: BTreeMap<String, String> =
        query.split('&').filter_map(|pair| pair.split_once('=')).map(|(k, v)| (k.to_string(), decode(v))).collect();
    let since = params.get("since").and_then(|since| chrono::DateTime::parse_from_rfc3339(since).ok());
    let kept: Vec<&Product> = api
        .products
        .iter()
        .filter(|product| {
            let at = chrono::DateTime::parse_from_rfc3339(&product.updated_at).ok();
            since.is_none_or(|since| at.is_some_and(|at| at >= since))
        })
        .collect();
    let size: usize = params.get("per_page").and_then(|size| size.parse().ok()).unwrap_or(3);
    let start = match path {
        "/items" | "/link" => {
            params.get("page").and_then(|page| page.parse::<usize>().ok()).unwrap_or(1).saturating_sub(1) * size
        }
        "/offset" => params.get("offset").and_then(|offset| offset.parse().ok()).unwrap_or(0),
        "/cursor" => params.get("cursor").and_then(|cursor| cursor.strip_prefix('c')?.parse().ok()).unwrap_or(0),
        _ => return (404, String::new(), "{}".to_string()),
    };
    let page: Vec<String> = kept.iter().skip(start).take(size).map(|product| product.json()).collect();
    let more = start + size < kept.len();
    let next = if path == "/cursor" && more { format!("\"c{}\"", start + size) } else { "null".to_string() };
    let mut headers = String::new();
    if path == "/link" && more {
        let rest: Vec<String> =
            query.split('&').filter(|pair| !pair.starts_with("page=")).map(str::to_string).collect();
        let page_number = start / size + 2;
        headers = format!(
            "Link: </link?page=1>; rel=\"first\", </link?page={page_number}&{}>; rel=\"next\"\r\n",
            rest.join("&")
        );
    }
    let body = format!("{{\n  \"items\": [\n  {}\n  ],\n  \"meta\": {{\"next\": {next}}}\n}}", page.join(",\n  "));
    (200, headers, body)
}

async fn aws_config_for(moto: &Moto) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&moto.endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new("test", "test", None, None, "test"))
        .load()
        .await
}

/// A stack whose sources read their secrets from moto's Secrets Manager.
async fn api_stack(home: &Path, moto: &Moto, text: &str, warehouse: Option<String>) -> Stack {
    let config = aws_config_for(moto).await;
    let secrets = aws_sdk_secretsmanager::Client::new(&config);
    let _ = secrets.create_secret().name("catalog-token").secret_string(r#"{"token": "s3cr3t"}"#).send().await;
    let contract = home.join("pipeline.toml");
    std::fs::write(&contract, text).expect("contract");
    let mut config = lakestar_local::stack::StackConfig::new(home.join("home"), &contract);
    config.key =
        Some(lakestar::mask::MaskingKey::new(b"extract-test-key-0123456789abcdef".to_vec(), "v1").expect("key"));
    config.timing = lakestar_local::stack::timing(0.0);
    config.secrets = Some(secrets);
    config.warehouse = warehouse;
    Stack::open(config).await.expect("stack")
}

fn skus(range: std::ops::RangeInclusive<usize>) -> Vec<String> {
    range.map(|index| format!("SKU-{index:03}")).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn http_source_pages_four_ways_retries_and_resumes() {
    let moto = Moto::start();
    let api = Arc::new(Mutex::new(Api { token: "s3cr3t".to_string(), ..Api::default() }));
    let url = serve(api.clone()).await;
    api.lock().expect("api").products = (1..=8).map(|index| Product::new(index, 1)).collect();

    for (pagination, path) in [
        (PAGE_NUMBER, "items"),
        (r#"pagination = { kind = "offset", param = "offset", size_param = "per_page" }"#, "offset"),
        (r#"pagination = { kind = "cursor", next = "meta.next" }"#, "cursor"),
        (r#"pagination = { kind = "link", size_param = "per_page" }"#, "link"),
    ] {
        let home = tempfile::tempdir().expect("home");
        let text = contract("postgres", "postgres://postgres@127.0.0.1:5432/unused", &url, pagination)
            .replace("/items\"", &format!("/{path}\""))
            .replace("page_size = 100", "page_size = 3");
        let stack = api_stack(home.path(), &moto, &text, None).await;
        api.lock().expect("api").faults = VecDeque::from([(429, Some("1")), (500, None), (503, Some("0"))]);
        let requests = api.lock().expect("api").requests.len();
        let first = extract(&stack, "catalog", &Options::default()).await;
        assert_eq!((first.outcome, first.rows, first.pages.len()), (Outcome::Extracted, 8, 3), "{path}");
        let served = api.lock().expect("api").requests.len() - requests;
        assert!(served >= 3 + 3, "{path}: the three faults were retried ({served} requests)");
        assert_eq!(page_ids(stack.lake(), &first, "sku").await, skus(1..=8), "{path}: every record once, in order");
        succeeded(&stack.run_started(|_| {}).await.expect("ran"));

        // Nothing new: the API still answers the last record (its `since` is inclusive), which
        // is not past the watermark: nothing is written, nothing started.
        let again = extract(&stack, "catalog", &Options::default()).await;
        assert_eq!(again.outcome, Outcome::NothingNew, "{path}");
        assert!(stack.run_started(|_| {}).await.expect("ran").is_empty());
    }

    // Into the warehouse with the decimals exact; then changes, extracted after a crash.
    let home = tempfile::tempdir().expect("home");
    let text = contract("postgres", "postgres://postgres@127.0.0.1:5432/unused", &url, PAGE_NUMBER);
    let (warehouse_database, warehouse_url) = PostgresDatabase::create().await;
    let stack = api_stack(home.path(), &moto, &text, Some(warehouse_url)).await;
    let first = extract(&stack, "catalog", &Options::default()).await;
    assert_eq!(first.rows, 8);
    succeeded(&stack.run_started(|_| {}).await.expect("ran"));
    let price =
        query_text(stack.warehouse(), "SELECT CAST(price AS TEXT) FROM dim_product_current WHERE sku = 'SKU-007'")
            .await;
    assert_eq!(price[0][0].as_deref(), Some("1000000000000000007.0000000007"), "the decimal exactly");

    {
        let mut api = api.lock().expect("api");
        api.products.truncate(4);
        api.products.extend((5..=12).map(|index| Product::new(index, 2)));
    }
    let stopped = Options { stop_after_pages: Some(1), ..Options::default() };
    let error = stack.extract(&["catalog".to_string()], &stopped).await.expect_err("stopped");
    assert!(
        format!("{error:#}").contains("SourceUnavailable") || format!("{error:#}").contains("stopped after 1 page"),
        "{error:#}"
    );
    let resumed = extract(&stack, "catalog", &Options::default()).await;
    assert_eq!((resumed.rows, resumed.written), (8, 0), "the one page was written before the stop");
    assert_eq!(page_ids(stack.lake(), &resumed, "sku").await, skus(5..=12));
    let last = api.lock().expect("api").requests.last().cloned().unwrap_or_default();
    assert!(last.contains("since=2024-04-01T00%3A01%3A00Z"), "the watermark is sent: {last}");
    succeeded(&stack.run_started(|_| {}).await.expect("ran"));
    let versions = query_text(stack.warehouse(), "SELECT CAST(COUNT(*) AS TEXT) FROM dim_product_current").await;
    assert_eq!(versions[0][0].as_deref(), Some("12"));

    // A wrong token is refused, named, and moves nothing.
    api.lock().expect("api").token = "other".to_string();
    let before = state(&stack, "catalog").await;
    let refused = stack.extract(&["catalog".to_string()], &Options::default()).await.expect_err("refused");
    let message = format!("{refused:#}");
    assert!(message.contains("401") && !message.contains("s3cr3t"), "{message}");
    assert_eq!(state(&stack, "catalog").await, before);
    drop(stack);
    warehouse_database.drop_database_by_name().await;
}

#[tokio::test]
async fn http_source_gives_up_after_its_attempts_and_names_the_page() {
    let api = Arc::new(Mutex::new(Api::default()));
    api.lock().expect("api").faults = VecDeque::from(vec![(500, None); 10]);
    let url = serve(api.clone()).await;
    let lake = TestLake::start().await;
    let text = contract("postgres", "postgres://postgres@127.0.0.1:5432/unused", &url, PAGE_NUMBER)
        .replace("secret = \"catalog-token\"\nauth = { header = \"Authorization\" }\n", "attempts = 2\n");
    let catalog =
        Contract::parse("pipeline.toml", &text).expect("valid").source("catalog").expect("the source").clone();
    let extractor = Extractor::new(lake.lake.clone(), None);
    let error = extractor.extract(&catalog, &Options::default()).await.expect_err("gave up");
    assert_eq!(error.error_type(), "SourceUnavailable");
    assert!(error.to_string().contains("page 1") && error.to_string().contains("2 attempt"), "{error}");
    assert!(lake.keys().await.iter().all(|key| !key.starts_with("landing/")), "nothing landed");
}

#[test]
fn contract_check_names_each_source_problem() {
    let good = contract("postgres", "postgres://app@db/shop", "https://api.example.com", PAGE_NUMBER);
    assert!(Contract::parse("pipeline.toml", &good).is_ok());
    let bad = good
        .replace("url = \"postgres://app@db/shop\"", "url = \"postgres://app:secret@db/shop\"")
        .replace("dataset = \"products\"", "dataset = \"nothing\"")
        .replace(
            "cursor = { column = \"updated_at\", type = \"timestamp\" }",
            "cursor = { column = \"updated at\", type = \"timestamp\", lookback = 5 }",
        );
    let error = Contract::parse("pipeline.toml", &bad).expect_err("invalid").to_string();
    for expected in [
        "sources.shop.url",
        "holds a password",
        "sources.shop.cursor.column",
        "sources.catalog.dataset",
        "no dataset `nothing`",
    ] {
        assert!(error.contains(expected), "{expected}: {error}");
    }
    let unmatched = good.replace("match = [\"landing/shop/**/*.ndjson.gz\"]", "match = [\"landing/shop/*.csv\"]");
    let error = Contract::parse("pipeline.toml", &unmatched).expect_err("invalid").to_string();
    assert!(
        error.contains("does not match the source's files") && error.contains("landing/shop/**/*.ndjson.gz"),
        "{error}"
    );
    let lookback = good.replace(
        "type = \"timestamp\" }\n\n[sources.catalog]",
        "type = \"timestamp\", lookback = \"10 minutes\" }\n\n[sources.catalog]",
    );
    let error = Contract::parse("pipeline.toml", &lookback).expect_err("invalid").to_string();
    assert!(error.contains("sources.shop.cursor.lookback") && error.contains("a duration"), "{error}");
}

#[tokio::test]
async fn http_source_keeps_to_its_rate_limit() {
    let api = Arc::new(Mutex::new(Api::default()));
    api.lock().expect("api").products = (1..=6).map(|index| Product::new(index, 1)).collect();
    let url = serve(api.clone()).await;
    let lake = TestLake::start().await;
    let text = contract("postgres", "postgres://postgres@127.0.0.1:5432/unused", &url, PAGE_NUMBER)
        .replace("secret = \"catalog-token\"\nauth = { header = \"Authorization\" }\n", "")
        .replace("rate_limit = 200", "rate_limit = 10")
        .replace("page_size = 100", "page_size = 1");
    let catalog =
        Contract::parse("pipeline.toml", &text).expect("valid").source("catalog").expect("the source").clone();
    let started = std::time::Instant::now();
    let extraction =
        Extractor::new(lake.lake.clone(), None).extract(&catalog, &Options::default()).await.expect("extracted");
    let elapsed = started.elapsed();
    // Six pages of one record and the empty seventh: six intervals of a tenth of a second at
    // least between seven requests (a lower bound, which a slow machine cannot break).
    assert_eq!((extraction.rows, api.lock().expect("api").requests.len()), (6, 7));
    assert!(elapsed >= std::time::Duration::from_millis(600), "{elapsed:?}");
}
