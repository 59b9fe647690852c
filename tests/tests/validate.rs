//! The validate stage through its Lambda handler, after the real ingest, against the
//! embedded S3: typed Parquet in processed, every reject with all its reasons in
//! quarantine, the quality gate, and received = valid + rejected.

mod common;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Date32Type, Decimal128Type, TimeUnit, TimestampMicrosecondType};
use common::*;
use lakestar::contract::Contract;
use lakestar::ingest::IngestOutput;
use lakestar::validate::ValidateOutput;
use lakestar_ingest::IngestFunction;
use lakestar_validate::ValidateFunction;
use proptest::prelude::*;

/// Ingests and validates one file through both handlers, as the state machine would.
async fn run_both(
    lake: &TestLake,
    contract: &Contract,
    dataset: &str,
    key: &str,
    bytes: &[u8],
) -> (IngestOutput, ValidateOutput) {
    lake.put(key, bytes).await;
    let run = run_for(dataset, key, bytes.len());
    let mut state = serde_json::json!({ "run": run });
    let ingest = IngestFunction::new(lake.lake.clone(), contract.clone());
    let ingested = ingest
        .handle(lambda_runtime::LambdaEvent::new(state.clone(), Default::default()))
        .await
        .unwrap_or_else(|error| panic!("ingest: {}", error.error_message));
    state["ingest"] = serde_json::to_value(&ingested).expect("JSON");
    let validate = ValidateFunction::new(lake.lake.clone(), contract.clone());
    let validated = validate
        .handle(lambda_runtime::LambdaEvent::new(state, Default::default()))
        .await
        .unwrap_or_else(|error| panic!("validate: {}", error.error_message));
    (ingested, validated)
}

/// Ingests and validates an example landing file under its own key.
async fn run_example(
    lake: &TestLake,
    contract: &Contract,
    dataset: &str,
    relative: &str,
) -> (IngestOutput, ValidateOutput) {
    run_both(lake, contract, dataset, &format!("landing/{relative}"), &example_file(relative)).await
}

/// (line, reasons) of the run's validate quarantine file.
async fn quarantined(lake: &TestLake, output: &ValidateOutput) -> Vec<(i64, String)> {
    let Some(key) = output.quarantine.iter().find(|key| key.ends_with("/rejected.parquet")) else { return Vec::new() };
    let batches = read_parquet(lake.get(key).await);
    int_column(&batches, "_source_line")
        .into_iter()
        .zip(text_column(&batches, "_reasons").into_iter().map(Option::unwrap_or_default))
        .collect()
}

async fn processed_rows(lake: &TestLake, output: &ValidateOutput) -> (usize, Vec<arrow::array::RecordBatch>) {
    let mut batches = Vec::new();
    for key in &output.processed {
        batches.extend(read_parquet(lake.get(key).await));
    }
    (batches.iter().map(|batch| batch.num_rows()).sum(), batches)
}

#[tokio::test]
async fn customers_are_typed_checked_and_deduplicated() {
    let lake = TestLake::start().await;
    let (ingested, output) = run_example(&lake, &retail_contract(), "customers", "2024-01-01/customers.csv").await;
    assert_eq!((output.received, output.valid, output.rejected), (12, 6, 6));
    assert_eq!(output.duplicates, 1);
    assert_eq!(output.gate, "pass");
    assert!(output.cause.is_empty());
    assert_eq!(
        quarantined(&lake, &output).await,
        vec![
            (3, "duplicate".to_string()),
            (7, "email:format".to_string()),
            (8, "date_of_birth:type(date %d/%m/%Y)".to_string()),
            (10, "segment:allowed".to_string()),
            (12, "customer_id:required".to_string()),
        ]
    );
    assert_eq!(output.rejects_per_rule.get("parse"), Some(&1), "ingest's parse reject is counted");
    assert!(output.quarantine.iter().any(|key| key.ends_with("ingest_rejected.parquet")), "{:?}", output.quarantine);
    assert!(output.quarantine.iter().any(|key| key.ends_with("/rejected.csv")));
    assert_eq!(output.nulls_per_column.get("customer_id"), Some(&1));
    assert_eq!(ingested.rows, output.valid + output.rejected);

    let (rows, batches) = processed_rows(&lake, &output).await;
    assert_eq!(rows, 6);
    let schema = batches[0].schema();
    assert_eq!(schema.field_with_name("date_of_birth").expect("column").data_type(), &DataType::Date32);
    assert_eq!(
        schema.field_with_name("updated_at").expect("column").data_type(),
        &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
    );
    let ids = text_column(&batches, "customer_id");
    assert_eq!(ids.iter().filter(|id| id.as_deref() == Some("C1002")).count(), 1, "one C1002 left");
    let c1002 = ids.iter().position(|id| id.as_deref() == Some("C1002")).expect("C1002");
    assert_eq!(text_column(&batches, "loyalty_tier")[c1002].as_deref(), Some("gold"), "the last C1002 won");
    // 29/02/1992 is a real date; Europe/London in January is UTC.
    let isla = ids.iter().position(|id| id.as_deref() == Some("C1003")).expect("C1003");
    let dates = batches[0].column_by_name("date_of_birth").expect("column").as_primitive::<Date32Type>();
    assert_eq!(
        lakestar::validate::cast::days_date(dates.value(isla)).map(|date| date.to_string()).as_deref(),
        Some("1992-02-29")
    );
    let times = batches[0].column_by_name("updated_at").expect("column").as_primitive::<TimestampMicrosecondType>();
    assert_eq!(times.value(0), 1_704_096_000_000_000, "2024-01-01T08:00:00 London = 08:00 UTC");
    assert_eq!(int_column(&batches, "_source_line")[0], 2, "lineage is kept");

    if let Some(dir) = std::env::var_os("LAKESTAR_TEST_EXPORT") {
        let dir = std::path::PathBuf::from(dir);
        std::fs::create_dir_all(&dir).expect("export folder");
        std::fs::write(dir.join("processed_customers.parquet"), lake.get(&output.processed[0]).await).expect("export");
    }
}

#[tokio::test]
async fn a_row_collects_every_reason_and_rules_compare_columns() {
    let lake = TestLake::start().await;
    let contract = retail_contract();
    let csv = "order_id,line_no,sale_date,ship_date,customer_id,sku,store_id,qty,unit_price,card_number,channel\n\
               O00001,1,2024-01-05,2024-01-04,C1,P1,S1,0,1.999,4111111111111111,fax\n\
               O00002,1,2024-01-05,,C1,P1,S1,\"1,000\",2.00,,STORE\n";
    let (_, output) = run_both(&lake, &contract, "sales", "landing/x/sales.csv", csv.as_bytes()).await;
    assert_eq!(
        quarantined(&lake, &output).await,
        vec![
            (2, "quantity:min(1); unit_price:type(decimal(10,2)); channel:allowed; ship_after_sale".to_string()),
            (3, "quantity:type(integer)".to_string()),
        ]
    );
    assert_eq!(output.rejects_per_rule.get("ship_after_sale"), Some(&1));
    assert_eq!(output.valid, 0);
}

#[tokio::test]
async fn decimals_thousands_and_case_rules() {
    let lake = TestLake::start().await;
    let (_, output) = run_example(&lake, &retail_contract(), "products", "2024-01-01/products_erp.csv").await;
    assert_eq!((output.valid, output.rejected), (5, 3));
    let (_, batches) = processed_rows(&lake, &output).await;
    let prices = batches[0].column_by_name("unit_price").expect("column").as_primitive::<Decimal128Type>();
    assert_eq!(prices.data_type(), &DataType::Decimal128(10, 2));
    let ids = text_column(&batches, "product_id");
    let charger = ids.iter().position(|id| id.as_deref() == Some("P004")).expect("P004");
    assert_eq!(prices.value(charger), 129_900, "\"1,299.00\" with a declared thousands separator");
    assert_eq!(text_column(&batches, "category")[0].as_deref(), Some("grocery"), "`Grocery` lower-cased");
    assert_eq!(
        quarantined(&lake, &output).await,
        vec![
            (7, "category:allowed".to_string()),
            (8, "unit_price:min(0)".to_string()),
            (9, "product_name:required".to_string())
        ]
    );
}

#[tokio::test]
async fn every_example_file_keeps_received_equal_to_valid_plus_quarantined() {
    let lake = TestLake::start().await;
    let contract = retail_contract();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/retail/landing");
    let mut files = Vec::new();
    for day in std::fs::read_dir(&root).expect("landing") {
        for file in std::fs::read_dir(day.expect("entry").path()).expect("day") {
            files.push(file.expect("entry").path());
        }
    }
    files.sort();
    assert_eq!(files.len(), 9);
    for path in files {
        let key = format!("landing/{}", path.strip_prefix(&root).expect("under landing").to_string_lossy());
        let dataset = contract.dataset_for_key(&key).expect("a dataset").name.clone();
        let (ingested, output) = run_both(&lake, &contract, &dataset, &key, &std::fs::read(&path).expect("file")).await;
        let (processed, _) = processed_rows(&lake, &output).await;
        let mut quarantined_rows = 0;
        for key in output.quarantine.iter().filter(|key| key.ends_with(".parquet")) {
            quarantined_rows += read_parquet(lake.get(key).await).iter().map(|batch| batch.num_rows()).sum::<usize>();
        }
        assert_eq!(ingested.rows, output.received, "{key}");
        assert_eq!(output.received, output.valid + output.rejected, "{key}");
        assert_eq!(processed as u64, output.valid, "{key}: processed files hold the valid rows");
        assert_eq!(quarantined_rows as u64, output.rejected, "{key}: quarantine files hold the rejected rows");
        assert_eq!(output.gate, "pass", "{key}: {}", output.cause);
    }
}

#[tokio::test]
async fn the_quality_gate_fails_with_the_ratio_and_top_rules() {
    let lake = TestLake::start().await;
    let text = common::RETAIL_CONTRACT.replacen(
        "max_reject_ratio = 0.5\nmin_rows = 1",
        "max_reject_ratio = 0.2\nmin_rows = 100",
        1,
    );
    let contract = Contract::parse("pipeline.toml", &text).expect("valid");
    let (_, output) = run_example(&lake, &contract, "customers", "2024-01-01/customers.csv").await;
    assert_eq!(output.gate, "fail");
    assert!(output.cause.contains("6 of 12 rows rejected (50.0%), above max_reject_ratio 20.0%"), "{}", output.cause);
    assert!(output.cause.contains("6 valid rows, below min_rows 100"), "{}", output.cause);
    assert!(output.cause.contains("top rules: customer_id:required 1"), "{}", output.cause);
    assert!(!output.processed.is_empty(), "processed is still written when the gate fails");
}

/// The customers' quality section with DQDL rulesets.
fn with_dqdl(dqdl: &str, warn: &str) -> Contract {
    let text = common::RETAIL_CONTRACT.replacen(
        "max_reject_ratio = 0.5\nmin_rows = 1",
        &format!(
            "max_reject_ratio = 0.7\nmin_rows = 1\ndqdl = \"\"\"\n{dqdl}\n\"\"\"\ndqdl_warn = \"\"\"\n{warn}\n\"\"\"\n"
        ),
        1,
    );
    Contract::parse("pipeline.toml", &text).expect("valid")
}

#[tokio::test]
async fn dqdl_rules_quarantine_with_the_rule_fail_the_gate_and_warn() {
    let lake = TestLake::start().await;
    let contract = with_dqdl(
        "Rules = [\n  ColumnValues \"city\" != \"London\",\n  RowCount > 100\n]",
        "Rules = [ ColumnValues \"segment\" = \"consumer\" with threshold > 0.9 ]",
    );
    let (ingested, output) = run_example(&lake, &contract, "customers", "2024-01-01/customers.csv").await;
    // C1010 lives in London: quarantined by the rule as written; the ghost row has both reasons.
    let rejected = quarantined(&lake, &output).await;
    assert!(rejected.contains(&(11, r#"ColumnValues "city" != "London""#.to_string())), "{rejected:?}");
    assert!(
        rejected.contains(&(12, r#"customer_id:required; ColumnValues "city" != "London""#.to_string())),
        "{rejected:?}"
    );
    assert_eq!((output.received, output.valid, output.rejected), (12, 5, 7));
    assert_eq!(ingested.rows, output.valid + output.rejected);
    assert_eq!(output.rejects_per_rule.get(r#"ColumnValues "city" != "London""#), Some(&2));
    // The dataset rule fails the gate, naming itself and what it measured on the kept rows.
    assert_eq!(output.gate, "fail");
    assert!(output.cause.contains("rule `RowCount > 100` (line 3 of quality.dqdl) failed: rows 5"), "{}", output.cause);
    let outcomes: Vec<(&str, &str)> =
        output.rules.iter().map(|outcome| (outcome.rule.as_str(), outcome.outcome.as_str())).collect();
    assert_eq!(
        outcomes,
        [
            (r#"ColumnValues "city" != "London""#, "quarantined"),
            ("RowCount > 100", "failed"),
            (r#"ColumnValues "segment" = "consumer" with threshold > 0.9"#, "failed"),
        ]
    );
    assert_eq!(output.warnings.len(), 1, "{:?}", output.warnings);
    assert!(output.warnings[0].starts_with(r#"ColumnValues "segment" = "consumer" with threshold > 0.9: "#));

    // The rule moved to the warnings: evaluating the gate again passes, and the rule warns.
    let moved = with_dqdl(
        "Rules = [\n  ColumnValues \"city\" != \"London\"\n]",
        "Rules = [ ColumnValues \"segment\" = \"consumer\" with threshold > 0.9, RowCount > 100 ]",
    );
    let key = "landing/2024-01-01/customers.csv";
    let run = run_for("customers", key, example_file("2024-01-01/customers.csv").len());
    let again = lakestar::validate::enforce_gate(&moved, &run, &output).expect("the gate passes");
    assert_eq!(again.gate, "pass");
    assert_eq!(again.warnings.len(), 2, "{:?}", again.warnings);
    assert!(again.warnings.iter().any(|warning| warning == "RowCount > 100: rows 5"), "{:?}", again.warnings);
    // And with the original contract it fails again, naming the rule.
    let error = lakestar::validate::enforce_gate(&contract, &run, &output).expect_err("the gate fails");
    assert!(error.to_string().contains("RowCount > 100"), "{error}");
}

#[tokio::test]
async fn validating_twice_gives_the_same_keys_and_bytes() {
    let lake = TestLake::start().await;
    let contract = retail_contract();
    let bytes = example_file("2024-01-02/sales.csv.gz");
    let (_, first) = run_both(&lake, &contract, "sales", "landing/2024-01-02/sales.csv.gz", &bytes).await;
    let mut snapshot = Vec::new();
    for key in first.processed.iter().chain(&first.quarantine) {
        snapshot.push(lake.get(key).await);
    }
    let (_, second) = run_both(&lake, &contract, "sales", "landing/2024-01-02/sales.csv.gz", &bytes).await;
    // The same output but for how long it took.
    assert_eq!(ValidateOutput { duration_ms: 0, ..first.clone() }, ValidateOutput { duration_ms: 0, ..second.clone() });
    for (key, before) in second.processed.iter().chain(&second.quarantine).zip(snapshot) {
        assert_eq!(lake.get(key).await, before, "{key}");
    }
}

/// A row of the property test: good, or bad in one known way.
#[derive(Debug, Clone, Copy)]
enum Row {
    Good,
    BadEmail,
    BadAmount,
    TooManyPlaces,
    BadDate,
    MissingId,
    TooFewFields,
    Duplicate,
}

fn row_strategy() -> impl Strategy<Value = Row> {
    prop_oneof![
        6 => Just(Row::Good),
        1 => Just(Row::BadEmail),
        1 => Just(Row::BadAmount),
        1 => Just(Row::TooManyPlaces),
        1 => Just(Row::BadDate),
        1 => Just(Row::MissingId),
        1 => Just(Row::TooFewFields),
        1 => Just(Row::Duplicate),
    ]
}

const PROPERTY_CONTRACT: &str = r#"
[datasets.accounts]
match = ["landing/**"]
[datasets.accounts.table]
name = "dim_account"
kind = "dimension"
natural_key = ["id"]
[[datasets.accounts.columns]]
name = "id"
type = "integer"
required = true
[[datasets.accounts.columns]]
name = "email"
checks = { email = true }
[[datasets.accounts.columns]]
name = "amount"
type = "decimal(8,2)"
checks = { min = 0 }
[[datasets.accounts.columns]]
name = "opened"
type = "date"
"#;

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// For any mix of good and bad rows: received = valid + rejected, every bad row is
    /// rejected with its reason, every good row is kept.
    #[test]
    fn the_invariant_holds_for_any_mix_of_rows(rows in proptest::collection::vec(row_strategy(), 0..60)) {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        runtime.block_on(async {
            let lake = TestLake::start().await;
            let contract = Contract::parse("accounts.toml", PROPERTY_CONTRACT).expect("valid");
            let mut csv = String::from("id,email,amount,opened\n");
            let mut expected_valid = 0u64;
            for (index, row) in rows.iter().enumerate() {
                let (id, email, amount, opened, reason) = match row {
                    Row::Good => (index.to_string(), format!("u{index}@example.com"), "12.50".to_string(), "2024-02-29".to_string(), None),
                    Row::BadEmail => (index.to_string(), "nobody".to_string(), "1".to_string(), String::new(), Some("email:format")),
                    Row::BadAmount => (index.to_string(), String::new(), "-3".to_string(), String::new(), Some("amount:min(0)")),
                    Row::TooManyPlaces => (index.to_string(), String::new(), "1.005".to_string(), String::new(), Some("amount:type(decimal(8,2))")),
                    Row::BadDate => (index.to_string(), String::new(), String::new(), "2023-02-29".to_string(), Some("opened:type(date)")),
                    Row::MissingId => (String::new(), String::new(), String::new(), String::new(), Some("id:required")),
                    Row::TooFewFields => {
                        csv.push_str(&format!("{index},short\n"));
                        continue;
                    }
                    Row::Duplicate => {
                        // The same id twice: the earlier line loses.
                        csv.push_str(&format!("{},,,\n", 100_000 + index));
                        (format!("{}", 100_000 + index), String::new(), String::new(), String::new(), None)
                    }
                };
                csv.push_str(&format!("{id},{email},{amount},{opened}\n"));
                if reason.is_none() {
                    expected_valid += 1;
                }
            }
            let (ingested, output) = run_both(&lake, &contract, "accounts", "landing/accounts.csv", csv.as_bytes()).await;
            let shorts = rows.iter().filter(|row| matches!(row, Row::TooFewFields)).count() as u64;
            let duplicates = rows.iter().filter(|row| matches!(row, Row::Duplicate)).count() as u64;
            prop_assert_eq!(ingested.rows, rows.len() as u64 + duplicates);
            prop_assert_eq!(output.received, output.valid + output.rejected);
            prop_assert_eq!(output.valid, expected_valid);
            prop_assert_eq!(ingested.rejected, shorts);
            prop_assert_eq!(output.duplicates, duplicates);
            let reasons = quarantined(&lake, &output).await;
            for kind in ["email:format", "amount:min(0)", "amount:type(decimal(8,2))", "opened:type(date)", "id:required"] {
                let wanted = rows.iter().filter(|row| match row {
                    Row::BadEmail => kind == "email:format",
                    Row::BadAmount => kind == "amount:min(0)",
                    Row::TooManyPlaces => kind == "amount:type(decimal(8,2))",
                    Row::BadDate => kind == "opened:type(date)",
                    Row::MissingId => kind == "id:required",
                    _ => false,
                }).count();
                prop_assert_eq!(reasons.iter().filter(|(_, reason)| reason == kind).count(), wanted, "{}", kind);
            }
            let (processed, _) = processed_rows(&lake, &output).await;
            prop_assert_eq!(processed as u64, output.valid);
            Ok(())
        })?;
    }
}

#[tokio::test]
async fn a_fixed_quarantine_csv_dropped_back_into_landing_is_validated_again() {
    let lake = TestLake::start().await;
    let contract = retail_contract();
    let (_, first) = run_example(&lake, &contract, "customers", "2024-01-01/customers.csv").await;
    let csv_key = first.quarantine.iter().find(|key| key.ends_with("/rejected.csv")).expect("rejected.csv");
    let rejected = String::from_utf8(lake.get(csv_key).await).expect("UTF-8");
    assert!(rejected.starts_with("customer_id,first_name,last_name,email,"), "{rejected}");
    let fixed = rejected.replace("jack.brown(at)example.com", "jack.brown@example.com");

    let (ingested, second) =
        run_both(&lake, &contract, "customers", "landing/2024-01-05/customers_fixes.csv", fixed.as_bytes()).await;
    assert_eq!(ingested.drift.added, ["reasons", "source_line"], "the two extra columns are drift, nothing more");
    assert_eq!((second.received, second.valid, second.rejected), (5, 2, 3));
    let (_, batches) = processed_rows(&lake, &second).await;
    let ids: Vec<String> = text_column(&batches, "customer_id").into_iter().flatten().collect();
    assert_eq!(ids, ["C1002", "C1006"], "the fixed row and the one that was only a duplicate");
    let reasons: Vec<String> = quarantined(&lake, &second).await.into_iter().map(|(_, reason)| reason).collect();
    assert_eq!(reasons, ["date_of_birth:type(date %d/%m/%Y)", "segment:allowed", "customer_id:required"]);
}

const DQDL_CONTRACT: &str = r#"
[datasets.things]
match = ["landing/**"]
[datasets.things.table]
name = "dim_thing"
kind = "dimension"
natural_key = ["id"]
[[datasets.things.columns]]
name = "id"
type = "integer"
[[datasets.things.columns]]
name = "name"
[[datasets.things.columns]]
name = "country"
[[datasets.things.columns]]
name = "amount"
type = "decimal(10,2)"
[[datasets.things.columns]]
name = "qty"
type = "integer"
[[datasets.things.columns]]
name = "sold_on"
type = "date"
[[datasets.things.columns]]
name = "code"
[datasets.things.quality]
max_reject_ratio = 1.0
"#;

/// A generated row: each value present or missing.
#[derive(Debug, Clone)]
struct Thing {
    name: Option<String>,
    country: Option<&'static str>,
    amount: Option<(i32, u8)>,
    qty: Option<i32>,
    day: Option<u8>,
    code: Option<&'static str>,
}

fn thing_strategy() -> impl Strategy<Value = Thing> {
    (
        proptest::option::weighted(0.85, "[a-f]{1,8}"),
        proptest::option::weighted(0.9, proptest::sample::select(vec!["UK", "US", "FR", "DE"])),
        proptest::option::weighted(0.9, (-5i32..40, proptest::sample::select(vec![0u8, 0, 50, 99]))),
        proptest::option::weighted(0.9, -5i32..40),
        proptest::option::weighted(0.9, 1u8..29),
        proptest::option::weighted(0.9, proptest::sample::select(vec!["12", "-3", "ab", "x1", "007", "99999"])),
    )
        .prop_map(|(name, country, amount, qty, day, code)| Thing { name, country, amount, qty, day, code })
}

/// Each rule, and the SQL condition under which DuckDB says a row fails it: written from
/// DQDL's definitions, independently of Lakestar's evaluator.
fn rules_and_duckdb(k: i32, low: i32, high: i32, d: u8) -> Vec<(String, String)> {
    let date = format!("2024-01-{d:02}");
    vec![
        (r#"IsComplete "name""#.to_string(), "name IS NULL".to_string()),
        (format!(r#"ColumnValues "amount" > {k}"#), format!("NOT coalesce(amount > {k}, false)")),
        (
            format!(r#"ColumnValues "amount" between {low} and {high}"#),
            format!("NOT coalesce(amount > {low} AND amount < {high}, false)"),
        ),
        (
            r#"ColumnValues "country" in ["UK", "US"]"#.to_string(),
            "NOT coalesce(country IN ('UK', 'US'), false)".to_string(),
        ),
        (r#"ColumnValues "country" not in ["FR", NULL]"#.to_string(), "country IS NULL OR country = 'FR'".to_string()),
        (
            format!(r#"ColumnValues "qty" <= {k} where "country = 'UK'""#),
            format!("country = 'UK' AND NOT coalesce(qty <= {k}, false)"),
        ),
        (
            r#"ColumnLength "name" between 2 and 6"#.to_string(),
            "NOT coalesce(length(name) > 2 AND length(name) < 6, false)".to_string(),
        ),
        (format!(r#"ColumnValues "sold_on" >= "{date}""#), format!("NOT coalesce(sold_on >= DATE '{date}', false)")),
        (
            r#"ColumnValues "name" matches "[a-c].*""#.to_string(),
            "NOT coalesce(regexp_full_match(name, '[a-c].*'), false)".to_string(),
        ),
        (
            format!(r#"CustomSql "select id from primary where qty > {k} or country is null""#),
            format!("NOT coalesce(qty > {k} OR country IS NULL, false)"),
        ),
        (
            format!(r#"(IsComplete "code") or (ColumnValues "qty" > {low})"#),
            format!("code IS NULL AND NOT coalesce(qty > {low}, false)"),
        ),
        (
            format!(r#"(ColumnValues "amount" <= {high}) and (ColumnValues "country" != "DE")"#),
            format!("NOT coalesce(amount <= {high}, false) OR country IS NOT DISTINCT FROM 'DE'"),
        ),
        (
            r#"ColumnDataType "code" = "INTEGER""#.to_string(),
            "code IS NOT NULL AND TRY_CAST(code AS BIGINT) IS NULL".to_string(),
        ),
        (
            format!(r#"ColumnValues "amount" >= {low} where "qty between {low} and {high} and name like '%a%'""#),
            format!("(qty BETWEEN {low} AND {high} AND name LIKE '%a%') AND NOT coalesce(amount >= {low}, false)"),
        ),
    ]
}

/// The ids DuckDB finds failing each condition, over the CSV.
fn duckdb_failures(csv: &std::path::Path, conditions: &[String]) -> Vec<Vec<i64>> {
    let script = r#"
import duckdb, json, sys
path, conditions = sys.argv[1], json.loads(sys.argv[2])
db = duckdb.connect()
db.execute(f"""CREATE TABLE t AS SELECT CAST(id AS BIGINT) id, name, country, CAST(amount AS DECIMAL(10,2)) amount,
    CAST(qty AS BIGINT) qty, CAST(sold_on AS DATE) sold_on, code FROM read_csv('{path}', all_varchar = true, header = true)""")
print(json.dumps([[row[0] for row in db.execute(f"SELECT id FROM t WHERE {c} ORDER BY id").fetchall()] for c in conditions]))
"#;
    let output = std::process::Command::new("python3")
        .args(["-c", script, &csv.display().to_string(), &serde_json::to_string(conditions).expect("JSON")])
        .output()
        .expect("python3 runs (DuckDB is installed by .ci/run)");
    assert!(output.status.success(), "DuckDB: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("DuckDB's answer")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// On random data, the rows each row-level DQDL rule quarantines are exactly those an
    /// independent evaluation of the same rule in DuckDB SQL finds failing.
    #[test]
    fn row_level_dqdl_rules_quarantine_what_duckdb_says_fails(
        things in proptest::collection::vec(thing_strategy(), 1..80),
        // Narrow ranges: values often equal the bounds, where `>` and `>=` differ.
        k in -5i32..40,
        low in -5i32..20,
        span in 1i32..30,
        d in 1u8..29,
    ) {
        let high = low + span;
        let rules = rules_and_duckdb(k, low, high, d);
        let ruleset = format!(
            "Rules = [\n{}\n]",
            rules.iter().map(|(rule, _)| format!("  {rule}")).collect::<Vec<_>>().join(",\n")
        );
        let text = format!("{DQDL_CONTRACT}dqdl = '''\n{ruleset}\n'''\n");
        let contract = Contract::parse("things.toml", &text).unwrap_or_else(|error| panic!("{error}"));
        let mut csv = String::from("id,name,country,amount,qty,sold_on,code\n");
        for (id, thing) in things.iter().enumerate() {
            let amount = thing.amount.map(|(units, cents)| {
                let sign = if units < 0 { "-" } else { "" };
                format!("{sign}{}.{cents:02}", units.abs())
            });
            csv.push_str(&format!(
                "{id},{},{},{},{},{},{}\n",
                thing.name.clone().unwrap_or_default(),
                thing.country.unwrap_or_default(),
                amount.unwrap_or_default(),
                thing.qty.map(|qty| qty.to_string()).unwrap_or_default(),
                thing.day.map(|day| format!("2024-01-{day:02}")).unwrap_or_default(),
                thing.code.unwrap_or_default(),
            ));
        }
        let folder = tempfile::tempdir().expect("a folder");
        let path = folder.path().join("things.csv");
        std::fs::write(&path, &csv).expect("the CSV");
        let conditions: Vec<String> = rules.iter().map(|(_, condition)| condition.clone()).collect();
        let expected = duckdb_failures(&path, &conditions);

        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        runtime.block_on(async {
            let lake = TestLake::start().await;
            let (_, output) = run_both(&lake, &contract, "things", "landing/things.csv", csv.as_bytes()).await;
            prop_assert_eq!(output.received, things.len() as u64);
            prop_assert_eq!(output.received, output.valid + output.rejected);
            let reasons = quarantined(&lake, &output).await;
            for ((rule, condition), wanted) in rules.iter().zip(&expected) {
                // The header is line 1: id n is on line n + 2.
                let found: Vec<i64> = reasons
                    .iter()
                    .filter(|(_, reasons)| reasons.split("; ").any(|reason| reason == rule))
                    .map(|(line, _)| line - 2)
                    .collect();
                prop_assert_eq!(&found, wanted, "{} (DuckDB: {})", rule, condition);
            }
            // A row is kept exactly when DuckDB finds it failing none of the rules.
            let failing: std::collections::BTreeSet<i64> = expected.iter().flatten().copied().collect();
            prop_assert_eq!(output.rejected, failing.len() as u64);
            Ok(())
        })?;
    }
}

/// `RowCountMatch "previous"` compares the run's kept rows with those of the dataset's latest
/// earlier run, read from its quality report in the lake.
#[tokio::test]
async fn row_count_match_compares_with_the_previous_run_s_report() {
    let lake = TestLake::start().await;
    let contract = with_dqdl("Rules = [ RowCountMatch \"previous\" >= 0.9 ]", "Rules = [ RowCount > 0 ]");
    // The first run: nothing earlier to compare with.
    let (_, first) = run_example(&lake, &contract, "customers", "2024-01-01/customers.csv").await;
    assert_eq!((first.gate.as_str(), first.rules[0].outcome.as_str()), ("pass", "passed"), "{:?}", first.rules);
    assert!(first.rules[0].message.contains("no previous run"), "{:?}", first.rules);
    // Its report, as the load writes it, a day before the next file.
    let run = run_for("customers", "landing/2024-01-01/customers.csv", 1);
    let mut report = lakestar::load::QualityReport::new(&run, None, &first, lakestar::load::LOADED);
    report.landed_at = Some(run.time - chrono::Duration::days(1));
    report.write(&lake.lake).await.expect("the report");
    // The next file keeps 4 rows against the first's 6.
    let (_, second) = run_example(&lake, &contract, "customers", "2024-01-02/customers.csv").await;
    assert_eq!(second.valid, 4);
    assert_eq!(second.gate, "fail");
    assert!(
        second.cause.contains("rule `RowCountMatch \"previous\" >= 0.9` (line 1 of quality.dqdl) failed: 4 rows against the previous run's 6: ratio 0.666667"),
        "{}",
        second.cause
    );
}

/// `ReferentialIntegrity` looks the run's keys up in another dataset's processed rows in the
/// lake: failing (and saying why) before the reference was validated, then measuring the
/// share found; on the dataset itself a re-drive judges as the clean run did.
#[tokio::test]
async fn referential_integrity_reads_the_other_dataset_s_processed_rows() {
    let lake = TestLake::start().await;
    let text = common::RETAIL_CONTRACT.replacen(
        "    IsPrimaryKey \"order_id\" \"line\",\n",
        "    IsPrimaryKey \"order_id\" \"line\",\n    ReferentialIntegrity \"customer_id\" \"customers.customer_id\" = 1.0,\n",
        1,
    );
    assert_ne!(text, common::RETAIL_CONTRACT, "the rule was added");
    let contract = Contract::parse("pipeline.toml", &text).expect("valid");
    let rule = |output: &ValidateOutput| {
        output
            .rules
            .iter()
            .find(|outcome| outcome.rule.starts_with("ReferentialIntegrity"))
            .cloned()
            .expect("the rule's outcome")
    };

    // Sales before any customer: no key is found, and the message says why.
    let (_, early) = run_example(&lake, &contract, "sales", "2024-01-01/sales.csv").await;
    let outcome = rule(&early);
    assert_eq!((early.gate.as_str(), outcome.outcome.as_str()), ("fail", "failed"), "{outcome:?}");
    assert!(outcome.message.contains("`customers` has no processed rows yet"), "{}", outcome.message);

    // The customers validated, the same sales again: the share of kept sales whose customer
    // the customers' processed rows hold, computed here from the Parquet both wrote.
    let (_, customers) = run_example(&lake, &contract, "customers", "2024-01-01/customers.csv").await;
    let (_, customer_batches) = processed_rows(&lake, &customers).await;
    let known: std::collections::HashSet<String> =
        text_column(&customer_batches, "customer_id").into_iter().flatten().collect();
    let (_, sales) = run_example(&lake, &contract, "sales", "2024-01-01/sales.csv").await;
    let (_, sale_batches) = processed_rows(&lake, &sales).await;
    let keys: Vec<String> = text_column(&sale_batches, "customer_id").into_iter().flatten().collect();
    let found = keys.iter().filter(|key| known.contains(*key)).count();
    assert!(found > 0 && !keys.is_empty());
    let outcome = rule(&sales);
    assert!(
        outcome.message.contains(&format!("{found} of {} key(s) found in `customers`", keys.len())),
        "{}",
        outcome.message
    );
    assert!((outcome.measure.unwrap_or(-1.0) - found as f64 / keys.len() as f64).abs() < 1e-9, "{outcome:?}");
    assert_eq!(outcome.outcome == "passed", found == keys.len(), "{outcome:?}");

    // On the dataset itself: the run's own processed parts are left out, so validating the
    // same file again (a re-drive) finds what the first attempt found.
    let own = with_dqdl(
        "Rules = [ ReferentialIntegrity \"customer_id\" \"customers.customer_id\" >= 0.0 ]",
        "Rules = [ RowCount > 0 ]",
    );
    let second_day = TestLake::start().await;
    let (_, first) = run_example(&second_day, &own, "customers", "2024-01-01/customers.csv").await;
    let (_, again) = run_example(&second_day, &own, "customers", "2024-01-01/customers.csv").await;
    assert_eq!(first.rules, again.rules);
    assert!(first.rules[0].message.contains("has no processed rows yet"), "{:?}", first.rules);
    // The next day's file finds the first day's customers.
    let (_, next) = run_example(&second_day, &own, "customers", "2024-01-02/customers.csv").await;
    assert!(next.rules[0].measure.unwrap_or(0.0) > 0.0, "{:?}", next.rules);
    assert!(!next.rules[0].message.contains("no processed rows"), "{:?}", next.rules);
}
