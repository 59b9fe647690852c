//! Issue 32.3: the warehouse does not depend on the order deliveries arrive in. The retail
//! example's files are loaded one execution at a time in every order of its three delivery
//! days and in shuffled orders of all nine files (facts before their dimensions included),
//! into SQLite and PostgreSQL, and each warehouse is compared with the one key order gives.
//! Surrogate keys are handed out in arrival order, so the comparison follows each fact's keys
//! to the natural key and validity of the version they name.

mod common;

use std::path::{Path, PathBuf};

use common::{PostgresDatabase, instant_text, query_text};
use lakestar::mask::MaskingKey;
use lakestar::warehouse::Warehouse;
use lakestar_local::landing::{LandingFile, collect_drops};
use lakestar_local::stack::{Stack, StackConfig, timing};

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/retail")
}

/// The retail example's dimensions: table, surrogate key, natural key.
const DIMENSIONS: [(&str, &str, &str); 3] = [
    ("dim_customer", "customer_key", "customer_id"),
    ("dim_product", "product_key", "product_id"),
    ("dim_store", "store_key", "store_id"),
];

/// Loads `files` one execution at a time in the order given; returns the warehouse's content
/// without surrogate keys.
async fn load_in_order(files: &[LandingFile], warehouse: Option<String>) -> Vec<Vec<Vec<Option<String>>>> {
    let home = tempfile::tempdir().expect("home");
    let mut config = StackConfig::new(home.path(), example().join("pipeline.toml"));
    config.warehouse = warehouse;
    config.key = Some(MaskingKey::new(b"order-test-key-0123456789abcdef-0123".to_vec(), "v1").expect("key"));
    config.timing = timing(0.0);
    let stack = Stack::open(config).await.expect("stack");
    for file in files {
        stack.drop_file(&file.key, &file.path).await.expect("dropped");
        for record in stack.run_started(|_| {}).await.expect("ran") {
            assert_eq!(record.status, "SUCCEEDED", "{}: {:?} {:?}", record.name, record.error, record.cause);
        }
    }
    let content = content(stack.warehouse()).await;
    if let Warehouse::Sqlite(pool) = stack.warehouse() {
        pool.close().await;
    }
    content
}

/// Every dimension version and fact as text, surrogate keys replaced by what they name.
async fn content(warehouse: &Warehouse) -> Vec<Vec<Vec<Option<String>>>> {
    let mut tables = Vec::new();
    for (table, key, natural) in DIMENSIONS {
        let columns: Vec<String> = warehouse
            .existing_columns(table)
            .await
            .expect("catalog")
            .into_iter()
            .map(|(name, _)| name)
            .filter(|name| name != key)
            .map(|name| match name.as_str() {
                "valid_from" | "valid_to" | "type1_from" => instant_text(warehouse, &format!("\"{name}\"")),
                _ => format!("CAST(\"{name}\" AS TEXT)"),
            })
            .collect();
        tables.push(
            query_text(
                warehouse,
                &format!("SELECT {} FROM {table} ORDER BY {natural}, valid_from", columns.join(", ")),
            )
            .await,
        );
    }
    let mut select = vec!["CAST(f.order_id AS TEXT)".to_string(), "CAST(f.line AS TEXT)".to_string()];
    let mut joins = Vec::new();
    for (index, (table, key, natural)) in DIMENSIONS.iter().enumerate() {
        select.push(format!("CAST(d{index}.{natural} AS TEXT)"));
        select.push(instant_text(warehouse, &format!("d{index}.valid_from")));
        select.push(format!("CAST(d{index}.is_inferred AS TEXT)"));
        joins.push(format!("LEFT JOIN {table} d{index} ON d{index}.{key} = f.{key}"));
    }
    for column in ["date_key", "quantity", "unit_price", "card_number", "channel", "run_id"] {
        select.push(format!("CAST(f.{column} AS TEXT)"));
    }
    tables.push(
        query_text(
            warehouse,
            &format!("SELECT {} FROM fact_sales f {} ORDER BY f.order_id, f.line", select.join(", "), joins.join(" ")),
        )
        .await,
    );
    tables.push(query_text(warehouse, "SELECT CAST(date_key AS TEXT) FROM dim_date ORDER BY date_key").await);
    tables
}

/// The example's files by delivery day, each day's in key order.
fn days() -> Vec<Vec<LandingFile>> {
    let mut days: Vec<Vec<LandingFile>> = Vec::new();
    for file in collect_drops(&[example()]).expect("landing files") {
        let day = file.key.split('/').nth(1).unwrap_or_default().to_string();
        match days.last_mut() {
            Some(last) if last[0].key.split('/').nth(1) == Some(day.as_str()) => last.push(file),
            _ => days.push(vec![file]),
        }
    }
    days
}

/// The orders to try: every order of the three days, and shuffles of all nine files.
fn orders() -> Vec<Vec<LandingFile>> {
    let days = days();
    assert_eq!(days.len(), 3, "the example has three delivery days");
    let mut orders = Vec::new();
    for order in [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]] {
        orders.push(order.iter().flat_map(|&day| days[day].clone()).collect());
    }
    let files: Vec<LandingFile> = days.concat();
    let mut seed: u64 = 0x5eed;
    for _ in 0..4 {
        let mut shuffled = files.clone();
        for index in (1..shuffled.len()).rev() {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            shuffled.swap(index, (seed >> 33) as usize % (index + 1));
        }
        orders.push(shuffled);
    }
    orders
}

fn names(files: &[LandingFile]) -> Vec<&str> {
    files.iter().map(|file| file.key.as_str()).collect()
}

#[tokio::test]
async fn every_arrival_order_gives_the_warehouse_of_key_order_in_sqlite() {
    let expected = load_in_order(&days().concat(), None).await;
    for order in orders() {
        let actual = load_in_order(&order, None).await;
        for (table, (actual, expected)) in actual.iter().zip(&expected).enumerate() {
            assert_eq!(actual, expected, "table {table} after {:?}", names(&order));
        }
    }
}

#[tokio::test]
async fn every_arrival_order_gives_the_warehouse_of_key_order_in_postgresql() {
    let (database, url) = PostgresDatabase::create().await;
    let expected = load_in_order(&days().concat(), Some(url)).await;
    database.drop_database_by_name().await;
    for order in orders() {
        let (database, url) = PostgresDatabase::create().await;
        let actual = load_in_order(&order, Some(url)).await;
        database.drop_database_by_name().await;
        for (table, (actual, expected)) in actual.iter().zip(&expected).enumerate() {
            assert_eq!(actual, expected, "table {table} after {:?}", names(&order));
        }
    }
}
