//! Schema drift under each `schema_contract` mode, through the offline stack (embedded S3,
//! the state machine, the real handlers, SQLite): new columns and values of the wrong type
//! evolve into the warehouse, freeze the run with `SchemaDrift`, quarantine their rows, or are
//! dropped and counted; and every run keeps received = valid + quarantined.

mod common;

use common::{PostgresDatabase, drop_and_run, query_text, stack_on, succeeded};
use lakestar_local::store::ExecutionRecord;

/// A dimension with history and a fact referencing it; `MODE` is the schema contract.
const CONTRACT: &str = r#"
[datasets.customers]
match = ["landing/customers*.csv"]
schema_contract = MODE
quality = { max_reject_ratio = 0.5 }
[datasets.customers.table]
name = "dim_customer"
kind = "dimension"
natural_key = ["customer_id"]
[[datasets.customers.columns]]
name = "customer_id"
required = true
[[datasets.customers.columns]]
name = "tier"
scd = 2
[[datasets.customers.columns]]
name = "signup"
type = "date"
[[datasets.customers.columns]]
name = "visits"
type = "integer"
required = true

[datasets.orders]
match = ["landing/orders*.csv"]
schema_contract = MODE
[datasets.orders.table]
name = "fact_order"
kind = "fact"
natural_key = ["order_id"]
date_column = "ordered"
references = [{ dimension = "dim_customer", columns = ["customer_id"] }]
[[datasets.orders.columns]]
name = "order_id"
required = true
[[datasets.orders.columns]]
name = "customer_id"
required = true
[[datasets.orders.columns]]
name = "ordered"
type = "date"
required = true
[[datasets.orders.columns]]
name = "amount"
type = "decimal(10,2)"
"#;

/// Three customers: a new column `Loyalty Points` (one value empty), a signup that is not a
/// date on line 3, and a `visits` (required) that is not a number on line 4.
const CUSTOMERS: &str = "customer_id,tier,signup,visits,Loyalty Points\n\
C1,gold,2024-01-05,3,120\n\
C2,silver,soon,4,\n\
C3,gold,2024-02-01,many,7\n";

fn contract(mode: &str) -> String {
    CONTRACT.replace("MODE", mode)
}

async fn run_customers(mode: &str) -> (tempfile::TempDir, lakestar_local::stack::Stack, Vec<ExecutionRecord>) {
    run_customers_on(mode, None).await
}

/// [`run_customers`], loading into `warehouse` (SQLite when `None`).
async fn run_customers_on(
    mode: &str,
    warehouse: Option<String>,
) -> (tempfile::TempDir, lakestar_local::stack::Stack, Vec<ExecutionRecord>) {
    let folder = tempfile::tempdir().expect("folder");
    let stack = stack_on(folder.path(), &contract(mode), warehouse).await;
    let records = drop_and_run(&stack, folder.path(), "landing/customers.csv", CUSTOMERS.as_bytes()).await;
    (folder, stack, records)
}

/// The run's quality report in the lake.
async fn report(stack: &lakestar_local::stack::Stack, dataset: &str, run: &str) -> serde_json::Value {
    let key = lakestar::lake::quality_key(dataset, run);
    let bytes = stack.lake().get_optional(&key).await.expect("get").unwrap_or_else(|| panic!("no report {key}"));
    serde_json::from_slice(&bytes).expect("JSON")
}

fn texts(rows: Vec<Vec<Option<String>>>) -> Vec<Vec<String>> {
    rows.into_iter().map(|row| row.into_iter().map(|cell| cell.unwrap_or_else(|| "∅".to_string())).collect()).collect()
}

#[tokio::test]
async fn evolve_carries_new_columns_and_unreadable_values_to_sqlite() {
    evolve_carries_new_columns_and_unreadable_values_to_the_warehouse(None).await;
}

#[tokio::test]
async fn evolve_carries_new_columns_and_unreadable_values_to_postgres() {
    let (database, url) = PostgresDatabase::create().await;
    evolve_carries_new_columns_and_unreadable_values_to_the_warehouse(Some(url)).await;
    database.drop_database_by_name().await;
}

async fn evolve_carries_new_columns_and_unreadable_values_to_the_warehouse(warehouse: Option<String>) {
    let (folder, stack, records) = run_customers_on(r#""evolve""#, warehouse).await;
    succeeded(&records);
    let run = &records[0].name;
    // The new column and the variant of `signup` are columns of the dimension; `visits` is
    // required, so its unreadable value still quarantines the row.
    let rows = query_text(
        stack.warehouse(),
        "SELECT customer_id, tier, CAST(signup AS TEXT), loyalty_points, signup__v_text FROM dim_customer ORDER BY customer_id",
    )
    .await;
    assert_eq!(
        texts(rows),
        [["C1", "gold", "2024-01-05", "120", "∅"], ["C2", "silver", "∅", "∅", "soon"]],
        "C3 is quarantined for its visits"
    );
    let report = report(&stack, "customers", run).await;
    assert_eq!(report["received"], 3);
    assert_eq!(report["valid"], 2);
    assert_eq!(report["rejected"], 1);
    assert_eq!(report["rejects_per_rule"]["visits:type(integer)"], 1);
    assert_eq!(report["drift"]["added"], serde_json::json!(["loyalty_points"]));
    assert_eq!(report["schema_contract"]["evolved"], serde_json::json!(["loyalty_points", "signup__v_text"]));
    assert_eq!(report["schema_contract"]["unreadable_values"], serde_json::json!({ "signup": 1 }));
    let metrics = query_text(
        stack.warehouse(),
        "SELECT metric, dimension, CAST(CAST(value AS INTEGER) AS TEXT) FROM quality_metrics WHERE metric IN ('drift_added', 'drift_evolved', 'drift_unreadable') ORDER BY metric",
    )
    .await;
    assert_eq!(
        texts(metrics),
        [["drift_added", "", "1"], ["drift_evolved", "", "2"], ["drift_unreadable", "signup", "1"]]
    );

    // The curated Parquet carries them too, read back by pyarrow.
    let keys = stack.lake().list("curated/dim_customer/").await.expect("list");
    let key = keys.iter().find(|key| key.ends_with(".parquet")).expect("a curated part");
    let bytes = stack.lake().get_optional(key).await.expect("get").expect("part");
    let path = folder.path().join("part.parquet");
    std::fs::write(&path, bytes).expect("write");
    let script = "import pyarrow.parquet as pq, sys\nt = pq.read_table(sys.argv[1])\nprint(sorted(t.column_names))\nprint(t.column('loyalty_points').to_pylist())";
    let output = std::process::Command::new("python3").args(["-c", script]).arg(&path).output().expect("python3");
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(printed.contains("'loyalty_points'") && printed.contains("'signup__v_text'"), "{printed}");

    // A later file without the new column loads beside it; the column stays, null for it,
    // and changing an evolved (type 1) column adds no version.
    let later = "customer_id,tier,signup,visits,Loyalty Points\nC1,gold,2024-01-05,3,150\nC4,bronze,2024-03-01,1,\n";
    succeeded(&drop_and_run(&stack, folder.path(), "landing/customers_2.csv", later.as_bytes()).await);
    let rows = query_text(
        stack.warehouse(),
        "SELECT customer_id, loyalty_points, CAST(COUNT(*) OVER (PARTITION BY customer_id) AS TEXT) FROM dim_customer WHERE is_current = TRUE ORDER BY customer_id",
    )
    .await;
    assert_eq!(texts(rows), [["C1", "150", "1"], ["C2", "∅", "1"], ["C4", "∅", "1"]]);
    let versions = query_text(stack.warehouse(), "SELECT CAST(COUNT(*) AS TEXT) FROM dim_customer").await;
    assert_eq!(texts(versions), [["3"]], "no new version for an evolved column's change");

    // A fact evolves the same way, beside its references.
    let orders =
        "order_id,customer_id,ordered,amount,Channel\nO1,C1,2024-04-01,10.50,web\nO2,C2,2024-04-02,oops,store\n";
    succeeded(&drop_and_run(&stack, folder.path(), "landing/orders.csv", orders.as_bytes()).await);
    let rows = query_text(
        stack.warehouse(),
        "SELECT order_id, CAST(CAST(amount * 100 AS INTEGER) AS TEXT), channel, amount__v_text FROM fact_order ORDER BY order_id",
    )
    .await;
    assert_eq!(texts(rows), [["O1", "1050", "web", "∅"], ["O2", "∅", "store", "oops"]]);

    // A file without the new columns: the tables keep them, and so do their views.
    let without = "customer_id,tier,signup,visits\nC5,gold,2024-04-01,2\n";
    succeeded(&drop_and_run(&stack, folder.path(), "landing/customers_3.csv", without.as_bytes()).await);
    let rows = query_text(
        stack.warehouse(),
        "SELECT customer_id, loyalty_points, signup__v_text FROM dim_customer_current WHERE customer_id IN ('C1', 'C2', 'C5') ORDER BY customer_id",
    )
    .await;
    assert_eq!(texts(rows), [["C1", "150", "∅"], ["C2", "∅", "soon"], ["C5", "∅", "∅"]]);
    let rows = query_text(
        stack.warehouse(),
        "SELECT order_id, channel, amount__v_text FROM fact_order_detail ORDER BY order_id",
    )
    .await;
    assert_eq!(texts(rows), [["O1", "web", "∅"], ["O2", "store", "oops"]]);
}

#[tokio::test]
async fn freeze_fails_a_new_column_at_ingest_and_an_unreadable_value_at_validate_then_a_redrive_obeys_the_fix() {
    let (folder, stack, records) = run_customers(r#""freeze""#).await;
    let record = &records[0];
    assert_eq!(record.status, "FAILED");
    assert_eq!(record.error.as_deref(), Some("SchemaDrift"), "{:?}", record.cause);
    assert_eq!(record.failed_state.as_deref(), Some("Ingest"));
    let cause = record.cause.as_deref().unwrap_or_default();
    assert!(cause.contains("loyalty_points") && cause.contains("schema_contract.columns"), "{cause}");
    assert!(!cause.contains("120"), "values never appear in a cause: {cause}");

    // Without the new column, the unreadable values fail validate, naming columns and lines.
    let typed = "customer_id,tier,signup,visits\nC1,gold,2024-01-05,3\nC2,silver,soon,4\nC3,gold,2024-02-01,many\n";
    let records = drop_and_run(&stack, folder.path(), "landing/customers_typed.csv", typed.as_bytes()).await;
    let record = &records[0];
    assert_eq!(record.error.as_deref(), Some("SchemaDrift"), "{:?}", record.cause);
    assert_eq!(record.failed_state.as_deref(), Some("Validate"));
    let cause = record.cause.as_deref().unwrap_or_default();
    assert!(cause.contains("signup (1 value(s) not of type date, the first at line 3)"), "{cause}");
    assert!(cause.contains("visits (1 value(s) not of type integer, the first at line 4)"), "{cause}");
    assert!(!cause.contains("soon") && !cause.contains("many"), "values never appear in a cause: {cause}");
    let curated = stack.lake().list("curated/dim_customer/").await.expect("list");
    assert!(curated.is_empty(), "nothing masked or loaded: {curated:?}");

    // The contract relaxed in the bucket: the re-drive quarantines the two rows and loads one.
    let relaxed = contract(r#"{ columns = "freeze", data_type = "discard_row" }"#)
        .replace("max_reject_ratio = 0.5", "max_reject_ratio = 0.7");
    stack.lake().put_bytes(lakestar::lake::CONFIG_KEY, relaxed.into_bytes(), "application/toml").await.expect("put");
    let redriven = stack.redrive(&record.name).await.expect("re-driven");
    succeeded(std::slice::from_ref(&redriven));
    let report = report(&stack, "customers", &record.name).await;
    assert_eq!(
        (report["received"].as_u64(), report["valid"].as_u64(), report["rejected"].as_u64()),
        (Some(3), Some(1), Some(2))
    );
}

#[tokio::test]
async fn discard_row_quarantines_rows_carrying_a_new_column_or_an_unreadable_value() {
    let (_folder, stack, records) = run_customers(r#""discard_row""#).await;
    // Two of three rows rejected is above the default max_reject_ratio: the gate fails, and
    // the quarantine says why each row went.
    let record = &records[0];
    assert_eq!(record.error.as_deref(), Some("QualityGateFailed"), "{:?}", record.cause);
    let report = report(&stack, "customers", &record.name).await;
    assert_eq!(report["received"], 3);
    assert_eq!(report["valid"], 0);
    assert_eq!(report["rejected"], 3);
    let rules = &report["rejects_per_rule"];
    // C1 and C3 have loyalty points; C2's signup is not a date; C3's visits not a number.
    assert_eq!(rules["loyalty_points:undeclared"], 2, "{rules}");
    assert_eq!(rules["signup:type(date)"], 1, "{rules}");
    assert_eq!(rules["visits:type(integer)"], 1, "{rules}");
    assert!(report["schema_contract"]["evolved"].as_array().is_some_and(Vec::is_empty));
}

#[tokio::test]
async fn discard_value_keeps_the_row_with_the_value_null_counts_it_and_keeps_new_columns_in_raw_only() {
    let (_folder, stack, records) = run_customers(r#""discard_value""#).await;
    succeeded(&records);
    let rows = query_text(
        stack.warehouse(),
        "SELECT customer_id, CAST(signup AS TEXT) FROM dim_customer ORDER BY customer_id",
    )
    .await;
    assert_eq!(texts(rows), [["C1", "2024-01-05"], ["C2", "∅"]], "C3's visits is required: quarantined");
    let columns = stack.warehouse().existing_columns("dim_customer").await.expect("columns");
    assert!(!columns.iter().any(|(name, _)| name.contains("loyalty") || name.ends_with("__v_text")), "{columns:?}");
    let report = report(&stack, "customers", &records[0].name).await;
    assert_eq!(report["schema_contract"]["unreadable_values"], serde_json::json!({ "signup": 1 }));
    assert_eq!(report["rejects_per_rule"], serde_json::json!({ "visits:type(integer)": 1 }));
    // The original text stays in raw.
    let raw = stack.lake().list("raw/customers/").await.expect("list");
    assert!(!raw.is_empty());
}

#[test]
fn a_schema_contract_mode_is_checked_with_the_modes_it_may_be() {
    let bad = contract(r#""grow""#);
    let error = lakestar::contract::Contract::parse("pipeline.toml", &bad).expect_err("refused").to_string();
    assert!(error.contains("grow") && error.contains("discard_value"), "{error}");
    let bad = contract(r#"{ column = "evolve" }"#);
    let error = lakestar::contract::Contract::parse("pipeline.toml", &bad).expect_err("refused").to_string();
    assert!(error.contains("column") && error.contains("data_type"), "{error}");
    let good = contract(r#"{ data_type = "evolve" }"#);
    let parsed = lakestar::contract::Contract::parse("pipeline.toml", &good).expect("parsed");
    let mode = parsed.dataset("customers").expect("customers").config.schema_contract;
    assert_eq!(
        (mode.columns, mode.data_type),
        (lakestar::contract::DriftMode::DiscardValue, lakestar::contract::DriftMode::Evolve)
    );
}
