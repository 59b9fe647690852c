//! Issue 29 (marts): the retail contract's marts after the example equal the same aggregates
//! computed another way (from the fact's view, or by natural key from the current view), on
//! SQLite and PostgreSQL; a second sales delivery and a dimension change bring them up to
//! date; a changed definition makes the mart again; an object of a mart's name that Lakestar
//! did not make is refused by name. On PostgreSQL the fact's keys into its dimensions and
//! `dim_date` are foreign keys, validated after the bulk first loads and the appends, and
//! indexed (on SQLite indexed).

mod common;

use std::path::{Path, PathBuf};

use common::{PostgresDatabase, RETAIL_CONTRACT, query_text};
use lakestar::contract::Contract;
use lakestar::mask::MaskingKey;
use lakestar::warehouse::Warehouse;
use lakestar_local::landing::collect_drops;
use lakestar_local::stack::{Stack, StackConfig, timing};

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/retail")
}

async fn open(home: &Path, warehouse: Option<String>) -> Stack {
    let mut config = StackConfig::new(home, example().join("pipeline.toml"));
    config.warehouse = warehouse;
    config.key = Some(MaskingKey::new(b"marts-test-key-0123456789abcdef-01234".to_vec(), "v1").expect("key"));
    config.timing = timing(0.0);
    Stack::open(config).await.expect("stack")
}

/// Drops `files` (key, contents) and runs them, each to SUCCEEDED.
async fn deliver(stack: &Stack, files: &[(String, PathBuf)]) {
    for (key, path) in files {
        stack.drop_file(key, path).await.expect("dropped");
    }
    for record in stack.run_started(|_| {}).await.expect("ran") {
        assert_eq!(record.status, "SUCCEEDED", "{}: {:?} {:?}", record.name, record.error, record.cause);
    }
}

async fn run_example(stack: &Stack) {
    let files: Vec<(String, PathBuf)> =
        collect_drops(&[example()]).expect("files").into_iter().map(|file| (file.key, file.path)).collect();
    deliver(stack, &files).await;
}

/// `sales_by_month` against the same figures from `fact_sales_detail`.
const BY_MONTH: &str = "SELECT CAST(date_year AS TEXT), CAST(date_month AS TEXT), product_category, store_city, \
    CAST(lines AS TEXT), CAST(orders AS TEXT), CAST(units AS TEXT), CAST(ROUND(average_price, 4) AS TEXT) \
    FROM sales_by_month ORDER BY 1, 2, 3, 4";
const BY_MONTH_FROM_VIEW: &str = "SELECT CAST(date_year AS TEXT), CAST(date_month AS TEXT), product_category, store_city, \
    CAST(COUNT(*) AS TEXT), CAST(COUNT(DISTINCT order_id) AS TEXT), CAST(SUM(quantity) AS TEXT), \
    CAST(ROUND(AVG(unit_price), 4) AS TEXT) \
    FROM fact_sales_detail GROUP BY date_year, date_month, product_category, store_city ORDER BY 1, 2, 3, 4";
/// `sales_by_segment` (current segments) against the facts joined to the current view by
/// their natural customer id.
const BY_SEGMENT: &str = "SELECT customer_segment, channel, CAST(customers AS TEXT), CAST(units AS TEXT), \
    CAST(largest_line AS TEXT) FROM sales_by_segment ORDER BY 1, 2";
const BY_SEGMENT_FROM_CURRENT: &str = "SELECT c.segment, f.channel, CAST(COUNT(DISTINCT f.customer_id) AS TEXT), \
    CAST(SUM(f.quantity) AS TEXT), CAST(MAX(f.quantity) AS TEXT) \
    FROM fact_sales f LEFT JOIN dim_customer_current c ON c.customer_id = f.customer_id \
    GROUP BY c.segment, f.channel ORDER BY 1, 2";

async fn assert_marts_agree(warehouse: &Warehouse) {
    let by_month = query_text(warehouse, BY_MONTH).await;
    assert!(!by_month.is_empty(), "the mart has rows");
    assert_eq!(by_month, query_text(warehouse, BY_MONTH_FROM_VIEW).await, "sales_by_month");
    assert_eq!(query_text(warehouse, BY_SEGMENT).await, query_text(warehouse, BY_SEGMENT_FROM_CURRENT).await);
    let lines = query_text(
        warehouse,
        "SELECT CAST((SELECT SUM(lines) FROM sales_by_month) AS TEXT), CAST((SELECT COUNT(*) FROM fact_sales) AS TEXT)",
    )
    .await;
    assert_eq!(lines[0][0], lines[0][1], "every fact is in one group");
}

fn text(value: &str) -> Option<String> {
    Some(value.to_string())
}

async fn mart_cases(stack: &Stack, folder: &Path) {
    let warehouse = stack.warehouse();
    run_example(stack).await;
    assert_marts_agree(warehouse).await;
    let february = "SELECT CAST(lines AS TEXT), CAST(units AS TEXT) FROM sales_by_month WHERE date_month = 2";
    assert!(query_text(warehouse, february).await.is_empty(), "the example sells in January only");

    // A second delivery of sales, one in February: the mart follows the load.
    let sales = folder.join("sales.csv");
    std::fs::write(
        &sales,
        "order_id,line_no,sale_date,ship_date,customer_id,sku,store_id,qty,unit_price,card_number,channel\n\
         O00900,1,2024-02-10,2024-02-11,C1001,P001,S01,7,1.85,4111 1111 1111 1111,web\n\
         O00900,2,2024-02-10,2024-02-11,C1001,P002,S01,3,3.20,4111 1111 1111 1111,web\n",
    )
    .expect("written");
    deliver(stack, &[("landing/2024-02-10/sales.csv".to_string(), sales)]).await;
    assert_marts_agree(warehouse).await;
    assert_eq!(query_text(warehouse, february).await, [vec![text("2"), text("10")]]);

    // C1001 becomes a business customer: a dimension load, and the current-segment mart
    // counts all of C1001's history under `business`.
    let customers = folder.join("customers.csv");
    std::fs::write(
        &customers,
        "customer_id,first_name,last_name,email,phone,dob,postcode,city,segment,tier,updated_at\n\
         C1001,Amelia,Hughes,amelia.hughes@example.com,07700 900101,14/03/1985,LS1 4AP,York,business,gold,2024-02-12T08:00:00\n",
    )
    .expect("written");
    let business_web =
        "SELECT CAST(units AS TEXT) FROM sales_by_segment WHERE customer_segment = 'business' AND channel = 'web'";
    let before = query_text(warehouse, business_web).await;
    deliver(stack, &[("landing/2024-02-12/customers.csv".to_string(), customers)]).await;
    assert_marts_agree(warehouse).await;
    let after = query_text(warehouse, business_web).await;
    let units = |rows: &[Vec<Option<String>>]| -> i64 {
        rows.first().and_then(|row| row[0].as_deref()).map_or(0, |units| units.parse().expect("a number"))
    };
    assert!(units(&after) >= units(&before) + 10, "C1001's web units move to business: {before:?} → {after:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_marts_follow_every_load() {
    let home = tempfile::tempdir().expect("home");
    let stack = open(home.path(), None).await;
    mart_cases(&stack, home.path()).await;
    assert_fact_indexes(stack.warehouse()).await;
}

/// The fact is indexed on each of its keys into a dimension and `dim_date`.
async fn assert_fact_indexes(warehouse: &Warehouse) {
    let statement = match warehouse {
        Warehouse::Postgres(_) => {
            "SELECT CAST(indexname AS TEXT) FROM pg_indexes WHERE tablename = 'fact_sales' AND indexname LIKE '%\\_idx' ORDER BY 1"
        }
        Warehouse::Sqlite(_) => {
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'fact_sales' AND name LIKE '%\\_idx' ESCAPE '\\' ORDER BY 1"
        }
    };
    let expected: Vec<Vec<Option<String>>> =
        ["customer", "date", "product", "store"].map(|key| vec![text(&format!("fact_sales_{key}_key_idx"))]).to_vec();
    assert_eq!(query_text(warehouse, statement).await, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_marts_follow_every_load() {
    let (database, url) = PostgresDatabase::create().await;
    let home = tempfile::tempdir().expect("home");
    let stack = open(home.path(), Some(url.clone())).await;
    mart_cases(&stack, home.path()).await;
    let kind =
        query_text(stack.warehouse(), "SELECT relkind::text FROM pg_class WHERE relname = 'sales_by_month'").await;
    assert_eq!(kind, [vec![text("m")]], "a materialized view");
    let foreign_keys = query_text(
        stack.warehouse(),
        "SELECT CAST(conname AS TEXT), CAST(convalidated AS TEXT), pg_get_constraintdef(oid) FROM pg_constraint \
         WHERE conrelid = CAST('fact_sales' AS regclass) AND contype = 'f' ORDER BY 1",
    )
    .await;
    let expected: Vec<Vec<Option<String>>> = [
        ("fact_sales_customer_key_fk", "FOREIGN KEY (customer_key) REFERENCES dim_customer(customer_key)"),
        (
            "fact_sales_date_key_fk",
            "FOREIGN KEY (date_key) REFERENCES dim_date(date_key) DEFERRABLE INITIALLY DEFERRED",
        ),
        ("fact_sales_product_key_fk", "FOREIGN KEY (product_key) REFERENCES dim_product(product_key)"),
        ("fact_sales_store_key_fk", "FOREIGN KEY (store_key) REFERENCES dim_store(store_key)"),
    ]
    .iter()
    .map(|(name, definition)| vec![text(name), text("true"), text(definition)])
    .collect();
    assert_eq!(foreign_keys, expected, "declared and validated after the bulk loads and the appends");
    let Warehouse::Postgres(pool) = stack.warehouse() else { panic!("a PostgreSQL warehouse") };
    let orphan =
        sqlx::query("UPDATE fact_sales SET customer_key = -1 WHERE order_id = (SELECT MIN(order_id) FROM fact_sales)")
            .execute(pool)
            .await
            .expect_err("a fact cannot name a member that does not exist");
    assert_eq!(orphan.as_database_error().and_then(|error| error.code()).as_deref(), Some("23503"), "{orphan}");
    assert_fact_indexes(stack.warehouse()).await;
    drop(stack);
    database.drop_database_by_name().await;
}

/// A changed definition makes the mart again; a user's object under a mart's name is refused.
async fn definition_cases(warehouse: &Warehouse) {
    let contract = Contract::parse("pipeline.toml", RETAIL_CONTRACT).expect("contract");
    warehouse.ensure_tables(&contract).await.expect("tables");
    let empty = query_text(warehouse, "SELECT CAST(COUNT(*) AS TEXT) FROM sales_by_month").await;
    assert_eq!(empty, [vec![text("0")]], "made with the tables");
    let changed = RETAIL_CONTRACT.replacen(
        "units = \"sum(quantity)\", average_price",
        "units = \"sum(quantity)\", cheapest = \"min(unit_price)\", average_price",
        1,
    );
    assert_ne!(changed, RETAIL_CONTRACT);
    let changed = Contract::parse("pipeline.toml", &changed).expect("contract");
    warehouse.ensure_tables(&changed).await.expect("made again");
    let rows = query_text(warehouse, "SELECT CAST(COUNT(cheapest) AS TEXT) FROM sales_by_month").await;
    assert_eq!(rows, [vec![text("0")]], "the new measure is there");

    let renamed = RETAIL_CONTRACT.replacen("[marts.sales_by_segment]", "[marts.my_report]", 1);
    let renamed = Contract::parse("pipeline.toml", &renamed).expect("contract");
    let statement = sqlx::AssertSqlSafe("CREATE TABLE my_report (x INTEGER)".to_string());
    match warehouse {
        Warehouse::Postgres(pool) => sqlx::query(statement).execute(pool).await.map(|_| ()),
        Warehouse::Sqlite(pool) => sqlx::query(statement).execute(pool).await.map(|_| ()),
    }
    .expect("a user's table");
    let error = warehouse.ensure_tables(&renamed).await.expect_err("not ours").to_string();
    assert!(error.contains("my_report") && error.contains("not a mart Lakestar made"), "{error}");
}

#[tokio::test]
async fn sqlite_a_changed_mart_is_made_again_and_a_users_table_is_kept() {
    let dir = tempfile::tempdir().expect("folder");
    let warehouse = Warehouse::connect(&format!("sqlite://{}", dir.path().join("warehouse.db").display()))
        .await
        .expect("connected");
    definition_cases(&warehouse).await;
}

#[tokio::test]
async fn postgres_a_changed_mart_is_made_again_and_a_users_table_is_kept() {
    let (database, url) = PostgresDatabase::create().await;
    let warehouse = Warehouse::connect(&url).await.expect("connected");
    definition_cases(&warehouse).await;
    database.drop_database(warehouse).await;
}
