//! The warehouse's schema management against the machine's real PostgreSQL (a database of
//! its own per test) and SQLite, with the same cases for both.

mod common;

use common::*;
use lakestar::contract::Contract;
use lakestar::warehouse::Warehouse;

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
    assert_eq!(warehouse.ensure_dates(&[day(29), day(28), day(29)]).await.expect("dates"), 2);
    assert_eq!(warehouse.ensure_dates(&[day(28), day(27)]).await.expect("dates"), 1, "only the missing one");

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
