//! Issue 29 (views): after the retail example, every dimension has a `<dim>_current` view (its
//! current versions, no history columns) and the fact a `fact_sales_detail` view (each fact
//! with the attributes of the versions in effect at its date, and its calendar), on SQLite and
//! PostgreSQL. A warehouse made before the views (its unique index under the view's name) is
//! brought along; a view a user built on ours does not stop a load that changes ours.

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

/// Runs the whole example into `warehouse` (SQLite in the home when `None`).
async fn run_example(home: &Path, warehouse: Option<String>) -> Stack {
    let mut config = StackConfig::new(home, example().join("pipeline.toml"));
    config.warehouse = warehouse;
    config.key = Some(MaskingKey::new(b"views-test-key-0123456789abcdef-0123".to_vec(), "v1").expect("key"));
    config.timing = timing(0.0);
    let stack = Stack::open(config).await.expect("stack");
    for file in collect_drops(&[example()]).expect("the example's files") {
        stack.drop_file(&file.key, &file.path).await.expect("dropped");
    }
    for record in stack.run_started(|_| {}).await.expect("ran") {
        assert_eq!(record.status, "SUCCEEDED", "{}: {:?} {:?}", record.name, record.error, record.cause);
    }
    stack
}

/// Runs statements outside Lakestar, as a user (or an older Lakestar) would.
async fn execute(warehouse: &Warehouse, statements: &[&str]) {
    for statement in statements {
        let query = sqlx::AssertSqlSafe(statement.to_string());
        match warehouse {
            Warehouse::Postgres(pool) => sqlx::query(query).execute(pool).await.map(|_| ()),
            Warehouse::Sqlite(pool) => sqlx::query(query).execute(pool).await.map(|_| ()),
        }
        .unwrap_or_else(|error| panic!("{statement}: {error}"));
    }
}

fn text(value: &str) -> Option<String> {
    Some(value.to_string())
}

async fn view_cases(warehouse: &Warehouse) {
    for (dimension, key) in [("dim_customer", "customer_id"), ("dim_product", "product_id"), ("dim_store", "store_id")]
    {
        let current = query_text(warehouse, &format!("SELECT CAST(COUNT(*) AS TEXT) FROM {dimension}_current")).await;
        let expected = query_text(
            warehouse,
            &format!("SELECT CAST(COUNT(DISTINCT {key}) AS TEXT) FROM {dimension} WHERE is_current = (1 = 1)"),
        )
        .await;
        assert_eq!(current, expected, "{dimension}_current holds one row per current key");
        let columns: Vec<String> = warehouse
            .existing_columns(&format!("{dimension}_current"))
            .await
            .expect("catalog")
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        assert!(columns.contains(&key.to_string()), "{columns:?}");
        for hidden in ["valid_from", "valid_to", "is_current", "row_hash", "type1_from", "run_id"] {
            assert!(!columns.contains(&hidden.to_string()), "{dimension}_current shows no {hidden}: {columns:?}");
        }
    }
    // C1001 moved from Leeds to York on 2024-01-02: the current view says York, and the sale
    // of 2024-01-01 keeps Leeds, the city in effect at its date.
    let current = query_text(warehouse, "SELECT city FROM dim_customer_current WHERE customer_id = 'C1001'").await;
    assert_eq!(current, [vec![text("York")]]);
    let sold = query_text(
        warehouse,
        "SELECT customer_city, product_name, store_name, date_day_name, CAST(date_year AS TEXT), \
         CAST(date_fiscal_year AS TEXT), CAST(date_fiscal_quarter AS TEXT) \
         FROM fact_sales_detail WHERE order_id = 'O00001' AND line = 1",
    )
    .await;
    assert_eq!(
        sold,
        [vec![
            text("Leeds"),
            text("Organic Oat Milk 1L"),
            text("Leeds Briggate"),
            text("Monday"),
            text("2024"),
            text("2024"),
            text("1")
        ]]
    );
    let counts = query_text(
        warehouse,
        "SELECT CAST((SELECT COUNT(*) FROM fact_sales_detail) AS TEXT), CAST((SELECT COUNT(*) FROM fact_sales) AS TEXT)",
    )
    .await;
    assert_eq!(counts[0][0], counts[0][1], "one row per fact");
    let columns: Vec<String> = warehouse
        .existing_columns("fact_sales_detail")
        .await
        .expect("catalog")
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert!(!columns.iter().any(|name| name.ends_with("_key") || name == "run_id"), "no surrogate keys: {columns:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_dimensions_have_current_views_and_facts_a_detail_view() {
    let home = tempfile::tempdir().expect("home");
    let stack = run_example(home.path(), None).await;
    view_cases(stack.warehouse()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_dimensions_have_current_views_and_facts_a_detail_view() {
    let (database, url) = PostgresDatabase::create().await;
    let home = tempfile::tempdir().expect("home");
    let stack = run_example(home.path(), Some(url)).await;
    view_cases(stack.warehouse()).await;
    drop(stack);
    database.drop_database_by_name().await;
}

/// A warehouse from before the views: its current-version index has the view's name. The
/// next set-up renames it and makes the view; a user's view over ours survives a change of
/// ours that it blocks (PostgreSQL), and the tables still evolve.
async fn legacy_cases(warehouse: &Warehouse, postgres: bool) {
    let contract = Contract::parse("pipeline.toml", RETAIL_CONTRACT).expect("contract");
    warehouse.ensure_tables(&contract).await.expect("tables");
    // Back to the old layout: no view, the index under the view's name.
    if postgres {
        execute(
            warehouse,
            &["DROP VIEW dim_customer_current", "ALTER INDEX dim_customer_cur RENAME TO dim_customer_current"],
        )
        .await;
    } else {
        execute(
            warehouse,
            &[
                "DROP VIEW dim_customer_current",
                "DROP INDEX dim_customer_cur",
                "CREATE UNIQUE INDEX dim_customer_current ON dim_customer (customer_id) WHERE is_current = 1",
            ],
        )
        .await;
    }

    warehouse.ensure_tables(&contract).await.expect("brought along");
    let city = query_text(warehouse, "SELECT CAST(COUNT(*) AS TEXT) FROM dim_customer_current").await;
    assert_eq!(city, [vec![text("0")]], "the view exists");
    let kind = if postgres {
        "SELECT relkind::text FROM pg_class WHERE relname = 'dim_customer_cur'"
    } else {
        "SELECT type FROM sqlite_master WHERE name = 'dim_customer_cur'"
    };
    assert_eq!(query_text(warehouse, kind).await, [vec![text(if postgres { "i" } else { "index" })]]);

    // A user's view over ours, then a column the contract gains before `city`.
    execute(warehouse, &["CREATE VIEW my_customers AS SELECT * FROM dim_customer_current"]).await;
    let grown = RETAIL_CONTRACT.replacen(
        "[[datasets.customers.columns]]\nname = \"city\"",
        "[[datasets.customers.columns]]\nname = \"country\"\n\n[[datasets.customers.columns]]\nname = \"city\"",
        1,
    );
    let grown = Contract::parse("pipeline.toml", &grown).expect("valid");
    warehouse.ensure_tables(&grown).await.expect("a view never fails the set-up");
    let columns: Vec<String> =
        warehouse.existing_columns("dim_customer").await.expect("catalog").into_iter().map(|(name, _)| name).collect();
    assert!(columns.contains(&"country".to_string()), "the table evolved: {columns:?}");
    assert_eq!(
        query_text(warehouse, "SELECT CAST(COUNT(*) AS TEXT) FROM my_customers").await,
        [vec![text("0")]],
        "theirs still works"
    );
}

#[tokio::test]
async fn postgres_a_warehouse_from_before_the_views_is_brought_along() {
    let (database, url) = PostgresDatabase::create().await;
    let warehouse = Warehouse::connect(&url).await.expect("connected");
    legacy_cases(&warehouse, true).await;
    database.drop_database(warehouse).await;
}

#[tokio::test]
async fn sqlite_a_warehouse_from_before_the_views_is_brought_along() {
    let dir = tempfile::tempdir().expect("folder");
    let warehouse = Warehouse::connect(&format!("sqlite://{}", dir.path().join("warehouse.db").display()))
        .await
        .expect("connected");
    legacy_cases(&warehouse, false).await;
}

/// `dim_date` is a calendar without gaps, widened by `calendar.margin_days`, with the fiscal
/// year (named by the year it ends in) and quarter of `calendar.fiscal_year_start_month`,
/// computed again when the fiscal start changes.
async fn calendar_cases(warehouse: &Warehouse) {
    let april = RETAIL_CONTRACT.replacen(
        "[masking]",
        "[calendar]\nmargin_days = 2\nfiscal_year_start_month = 4\n\n[masking]",
        1,
    );
    let contract = Contract::parse("pipeline.toml", &april).expect("contract");
    assert_eq!((contract.calendar.margin_days, contract.calendar.fiscal_year_start_month), (2, 4));
    warehouse.ensure_tables(&contract).await.expect("tables");
    let day = |month, day| chrono::NaiveDate::from_ymd_opt(2024, month, day).expect("date");
    let added = warehouse.ensure_dates(&[day(3, 31), day(4, 1)], &contract.calendar).await.expect("dates");
    assert_eq!(added, 6, "the two dates and two days either side");
    let fiscal = "SELECT CAST(date_key AS TEXT), CAST(fiscal_year AS TEXT), CAST(fiscal_quarter AS TEXT) FROM dim_date ORDER BY 1";
    let rows = query_text(warehouse, fiscal).await;
    let row = |key: &str, year: &str, quarter: &str| vec![text(key), text(year), text(quarter)];
    assert_eq!(
        rows,
        [
            row("20240329", "2024", "4"),
            row("20240330", "2024", "4"),
            row("20240331", "2024", "4"),
            row("20240401", "2025", "1"),
            row("20240402", "2025", "1"),
            row("20240403", "2025", "1"),
        ]
    );
    // Calendar years again: every row follows.
    let calendar_years = Contract::parse("pipeline.toml", RETAIL_CONTRACT).expect("contract");
    warehouse.ensure_tables(&calendar_years).await.expect("tables");
    let rows = query_text(warehouse, fiscal).await;
    assert_eq!((rows[0][1].as_deref(), rows[0][2].as_deref()), (Some("2024"), Some("1")));
    assert_eq!((rows[3][1].as_deref(), rows[3][2].as_deref()), (Some("2024"), Some("2")));
}

#[tokio::test]
async fn sqlite_the_calendar_has_a_margin_and_fiscal_years() {
    let dir = tempfile::tempdir().expect("folder");
    let warehouse = Warehouse::connect(&format!("sqlite://{}", dir.path().join("warehouse.db").display()))
        .await
        .expect("connected");
    calendar_cases(&warehouse).await;
}

#[tokio::test]
async fn postgres_the_calendar_has_a_margin_and_fiscal_years() {
    let (database, url) = PostgresDatabase::create().await;
    let warehouse = Warehouse::connect(&url).await.expect("connected");
    calendar_cases(&warehouse).await;
    database.drop_database(warehouse).await;
}
