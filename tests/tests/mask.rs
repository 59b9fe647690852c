//! The mask stage through its Lambda handler after the real ingest and validate, against the
//! embedded S3, with the key from a Secrets Manager endpoint that speaks the real protocol.

mod common;

use arrow::array::{Array, AsArray};
use arrow::datatypes::DataType;
use common::*;
use lakestar::contract::Contract;
use lakestar::mask::{MaskOutput, MaskingKey};
use lakestar_ingest::IngestFunction;
use lakestar_mask::MaskFunction;
use lakestar_validate::ValidateFunction;
use lambda_runtime::LambdaEvent;

fn test_key() -> MaskingKey {
    MaskingKey::new(b"test-key-0123456789abcdef-0123456789".to_vec(), "v1").expect("key")
}

/// Ingest, validate and mask one file through the three handlers.
async fn run_three(
    lake: &TestLake,
    contract: &Contract,
    key: &MaskingKey,
    dataset: &str,
    key_name: &str,
    bytes: &[u8],
) -> Result<MaskOutput, lambda_runtime::Diagnostic> {
    let state = run_two(lake, contract, dataset, key_name, bytes).await?;
    MaskFunction::new(lake.lake.clone(), contract.clone(), key.clone())
        .handle(LambdaEvent::new(state, Default::default()))
        .await
}

/// Ingest and validate one file through their handlers: the mask stage's input.
async fn run_two(
    lake: &TestLake,
    contract: &Contract,
    dataset: &str,
    key_name: &str,
    bytes: &[u8],
) -> Result<serde_json::Value, lambda_runtime::Diagnostic> {
    lake.put(key_name, bytes).await;
    let run = run_for(dataset, key_name, bytes.len());
    let mut state = serde_json::json!({ "run": run });
    let ingested = IngestFunction::new(lake.lake.clone(), contract.clone())
        .handle(LambdaEvent::new(state.clone(), Default::default()))
        .await?;
    state["ingest"] = serde_json::to_value(&ingested).expect("JSON");
    let validated = ValidateFunction::new(lake.lake.clone(), contract.clone())
        .handle(LambdaEvent::new(state.clone(), Default::default()))
        .await?;
    state["validate"] = serde_json::to_value(&validated).expect("JSON");
    Ok(state)
}

async fn curated(lake: &TestLake, output: &MaskOutput, table: &str) -> Vec<arrow::array::RecordBatch> {
    let mut batches = Vec::new();
    for key in &output.curated[table] {
        batches.extend(read_parquet(lake.get(key).await));
    }
    batches
}

#[tokio::test]
async fn customers_are_masked_into_the_customer_dimension() {
    let lake = TestLake::start().await;
    let bytes = example_file("2024-01-01/customers.csv");
    let output =
        run_three(&lake, &retail_contract(), &test_key(), "customers", "landing/2024-01-01/customers.csv", &bytes)
            .await
            .expect("masked");
    let run = run_for("customers", "landing/2024-01-01/customers.csv", bytes.len());
    assert_eq!(output.curated["dim_customer"], vec![format!("curated/dim_customer/run={}/part-00000.parquet", run.id)]);
    assert_eq!(output.rows, 6);
    assert_eq!(output.key_version, "v1");
    assert_eq!(output.masked_columns["email"], "email_hash");
    assert_eq!(output.masked_columns["postcode"], "generalize:postcode_district");

    let batches = curated(&lake, &output, "dim_customer").await;
    let schema = batches[0].schema();
    let metadata = parquet_schema_metadata(lake.get(&output.curated["dim_customer"][0]).await);
    assert_eq!(metadata.get("lakestar.masking_key_version").map(String::as_str), Some("v1"));
    assert_eq!(schema.field_with_name("date_of_birth").expect("column").data_type(), &DataType::Int64, "year");
    let emails = text_column(&batches, "email");
    assert!(emails.iter().flatten().all(|email| email.len() == 32 + 1 + email.split('@').nth(1).map_or(0, str::len)));
    assert!(emails[0].as_deref().is_some_and(|email| email.ends_with("@example.com") && !email.contains("amelia")));
    assert_eq!(text_column(&batches, "phone")[0].as_deref(), Some("*******0101"));
    assert!(text_column(&batches, "first_name").iter().all(Option::is_none), "redacted");
    assert_eq!(text_column(&batches, "postcode")[0].as_deref(), Some("LS1"));
    assert_eq!(text_column(&batches, "customer_id")[0].as_deref(), Some("C1001"), "the natural key is kept");
    let years =
        batches[0].column_by_name("date_of_birth").expect("column").as_primitive::<arrow::datatypes::Int64Type>();
    assert_eq!(years.value(0), 1985);

    // No clear value of a masked column survives anywhere in the curated file.
    let clear = String::from_utf8(bytes).expect("UTF-8");
    for batch in &batches {
        for (index, field) in batch.schema().fields().iter().enumerate() {
            if !["email", "phone", "last_name", "first_name"].contains(&field.name().as_str()) {
                continue;
            }
            let values = batch.column(index).as_string::<i32>();
            for row in 0..values.len() {
                if values.is_valid(row) {
                    let value = values.value(row);
                    assert!(!clear.contains(value), "{} holds a clear value", field.name());
                }
            }
        }
    }
    if let Some(dir) = std::env::var_os("LAKESTAR_TEST_EXPORT") {
        let dir = std::path::PathBuf::from(dir);
        std::fs::create_dir_all(&dir).expect("export folder");
        std::fs::write(dir.join("curated_dim_customer.parquet"), lake.get(&output.curated["dim_customer"][0]).await)
            .expect("export");
    }
}

#[tokio::test]
async fn facts_are_partitioned_by_month_and_cards_partially_revealed() {
    let lake = TestLake::start().await;
    let output = run_three(
        &lake,
        &retail_contract(),
        &test_key(),
        "sales",
        "landing/2024-01-01/sales.csv",
        &example_file("2024-01-01/sales.csv"),
    )
    .await
    .expect("masked");
    let keys = &output.curated["fact_sales"];
    assert_eq!(keys.len(), 1);
    assert!(keys[0].starts_with("curated/fact_sales/sale_date_month=2024-01/run=sales-"), "{}", keys[0]);
    let batches = curated(&lake, &output, "fact_sales").await;
    assert_eq!(text_column(&batches, "card_number")[0].as_deref(), Some("************1111"));
    assert_eq!(
        batches[0].schema().field_with_name("unit_price").expect("column").data_type(),
        &DataType::Decimal128(10, 2)
    );
}

#[tokio::test]
async fn masking_twice_gives_byte_identical_files_and_another_key_other_hashes() {
    let lake = TestLake::start().await;
    let contract = retail_contract();
    let bytes = example_file("2024-01-02/customers.csv");
    let first = run_three(&lake, &contract, &test_key(), "customers", "landing/2024-01-02/customers.csv", &bytes)
        .await
        .expect("masked");
    let before = lake.get(&first.curated["dim_customer"][0]).await;
    let second = run_three(&lake, &contract, &test_key(), "customers", "landing/2024-01-02/customers.csv", &bytes)
        .await
        .expect("masked");
    // The same output but for how long it took.
    assert_eq!(MaskOutput { duration_ms: 0, ..first.clone() }, MaskOutput { duration_ms: 0, ..second.clone() });
    assert_eq!(lake.get(&second.curated["dim_customer"][0]).await, before, "byte-identical");

    let other = MaskingKey::new(b"another-key-0123456789abcdef-0123".to_vec(), "v2").expect("key");
    let rekeyed = run_three(&lake, &contract, &other, "customers", "landing/2024-01-02/customers.csv", &bytes)
        .await
        .expect("masked");
    assert_eq!(rekeyed.key_version, "v2");
    let batches = read_parquet(lake.get(&rekeyed.curated["dim_customer"][0]).await);
    let metadata = parquet_schema_metadata(lake.get(&rekeyed.curated["dim_customer"][0]).await);
    assert_eq!(metadata.get("lakestar.masking_key_version").map(String::as_str), Some("v2"));
    let first_emails = text_column(&read_parquet(before), "email");
    assert_ne!(text_column(&batches, "email"), first_emails, "a new key gives new hashes");
}

#[tokio::test]
async fn a_contract_that_forgets_to_mask_an_email_fails_with_pii_leak() {
    let lake = TestLake::start().await;
    let text = common::RETAIL_CONTRACT.replace("pii = { method = \"email_hash\" }\n", "");
    let contract = Contract::parse("pipeline.toml", &text).expect("valid");
    let error = run_three(
        &lake,
        &contract,
        &test_key(),
        "customers",
        "landing/2024-01-01/customers.csv",
        &example_file("2024-01-01/customers.csv"),
    )
    .await
    .expect_err("a leak");
    assert_eq!(error.error_type, "PiiLeak");
    assert!(
        error.error_message.contains("column `email` of `dim_customer`") && error.error_message.contains("email"),
        "{}",
        error.error_message
    );
    assert!(!error.error_message.contains("example.com"), "the message never holds a value");
    assert!(lake.keys().await.iter().all(|key| !key.starts_with("curated/")), "nothing left in curated");
}

#[tokio::test]
async fn the_key_comes_from_secrets_manager_with_its_version() {
    let moto = Moto::start();
    let config = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(aws_sdk_secretsmanager::config::BehaviorVersion::latest())
        .region(aws_sdk_secretsmanager::config::Region::new("us-east-1"))
        .endpoint_url(&moto.endpoint)
        .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new("test", "test", None, None, "test"))
        .build();
    let client = aws_sdk_secretsmanager::Client::from_conf(config);
    client
        .create_secret()
        .name("lakestar/masking-key")
        .secret_string(r#"{"key": "from-secrets-manager-0123456789abcdef", "version": "v9"}"#)
        .send()
        .await
        .expect("secret created");
    let key = MaskingKey::from_secrets_manager(&client, "lakestar/masking-key", "v1").await.expect("key read");
    assert_eq!(key.version(), "v9");
    assert!(!format!("{key:?}").contains("from-secrets-manager"), "Debug never shows the key");

    let lake = TestLake::start().await;
    let output = run_three(
        &lake,
        &retail_contract(),
        &key,
        "customers",
        "landing/2024-01-03/customers.csv",
        &example_file("2024-01-03/customers.csv"),
    )
    .await
    .expect("masked");
    assert_eq!(output.key_version, "v9");
    let hashed = text_column(&curated(&lake, &output, "dim_customer").await, "last_name");
    assert_eq!(hashed[0].as_deref(), Some(lakestar::mask::methods::hash(&key, "Ahmed", false).as_str()));

    let missing = MaskingKey::from_secrets_manager(&client, "no/such/secret", "v1").await.expect_err("no secret");
    assert!(missing.to_string().contains("no/such/secret"), "{missing}");
}

/// Sales over 20 months, interleaved as a real delivery's would be: every batch touches
/// every month's partition.
fn sales_over_twenty_months(rows: usize) -> (String, Vec<String>) {
    let mut csv = String::from(
        "order_id,line_no,sale_date,ship_date,customer_id,sku,store_id,qty,unit_price,card_number,channel\n",
    );
    let months: Vec<String> = (0..20).map(|month| format!("{}-{:02}", 2022 + month / 12, month % 12 + 1)).collect();
    for row in 0..rows {
        let month = &months[row * 7 % months.len()];
        let day = row % 28 + 1;
        csv.push_str(&format!(
            "O{row:06},1,{month}-{day:02},{month}-{day:02},C{:04},P001,S01,1,2.50,4111 1111 1111 1111,web\n",
            row % 50
        ));
    }
    (csv, months)
}

#[tokio::test]
async fn fact_partitions_spilled_to_disk_give_the_same_files_as_partitions_held_in_memory() {
    // Three batches of rows, each split over 20 partitions: with no budget every piece spills
    // at once; with a small one some partitions spill (the largest first) while others stay
    // held, so a partition's file is written from its spill and then from memory.
    let (csv, _) = sales_over_twenty_months(20_000);
    let lake = TestLake::start().await;
    let contract = retail_contract();
    let state =
        run_two(&lake, &contract, "sales", "landing/2024-02-01/sales.csv", csv.as_bytes()).await.expect("validated");
    let input = lakestar::state::State::from_value(state).expect("state");
    let mut outcomes = Vec::new();
    for budget in [usize::MAX, 0, 200_000] {
        let output = lakestar::mask::mask_holding(
            &lake.lake,
            &contract,
            &test_key(),
            &input.run,
            input.validate().expect("validated"),
            budget,
        )
        .await
        .expect("masked");
        assert_eq!(output.rows, 20_000);
        let mut files = Vec::new();
        for key in &output.curated["fact_sales"] {
            files.push((key.clone(), lake.get(key).await));
        }
        outcomes.push(files);
    }
    assert_eq!(outcomes[0].len(), 20, "one part per month");
    let rows: usize =
        outcomes[0].iter().flat_map(|(_, bytes)| read_parquet(bytes.clone())).map(|batch| batch.num_rows()).sum();
    assert_eq!(rows, 20_000, "every row in a partition");
    assert!(outcomes[1] == outcomes[0], "every partition spilled: the same keys and bytes as none");
    assert!(outcomes[2] == outcomes[0], "some partitions spilled: the same keys and bytes as none");
}

#[tokio::test]
async fn facts_over_many_months_land_whole_in_their_partitions_and_the_same_twice() {
    let (csv, months) = sales_over_twenty_months(600);
    let lake = TestLake::start().await;
    let contract = retail_contract();
    let key_name = "landing/2024-02-01/sales.csv";
    let output = run_three(&lake, &contract, &test_key(), "sales", key_name, csv.as_bytes()).await.expect("masked");
    assert_eq!(output.rows, 600);
    let keys = output.curated["fact_sales"].clone();
    let partitions: Vec<&str> = keys.iter().filter_map(|key| key.split('/').nth(2)).collect();
    let expected: Vec<String> = months.iter().map(|month| format!("sale_date_month={month}")).collect();
    assert_eq!(partitions, expected, "one part per month, in order");
    let mut total = 0;
    let mut files = Vec::new();
    for (key, month) in keys.iter().zip(&months) {
        let bytes = lake.get(key).await;
        let batches = read_parquet(bytes.clone());
        let dates: Vec<i32> = batches
            .iter()
            .flat_map(|batch| {
                let dates = batch
                    .column_by_name("sale_date")
                    .expect("sale_date")
                    .as_primitive::<arrow::datatypes::Date32Type>();
                dates.values().to_vec()
            })
            .collect();
        let first = chrono::NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d").expect("date");
        for days in &dates {
            let date = chrono::NaiveDate::from_num_days_from_ce_opt(days + 719_163).expect("date");
            assert_eq!((date.format("%Y-%m").to_string()), *month, "{key} holds a row of another month");
            assert!(date >= first);
        }
        total += dates.len();
        // The lineage columns come through the spill (dictionary-encoded there) unchanged.
        let run = run_for("sales", key_name, csv.len());
        assert!(text_column(&batches, "_source_key").iter().all(|value| value.as_deref() == Some(key_name)));
        assert!(text_column(&batches, "_run_id").iter().all(|value| value.as_deref() == Some(run.id.as_str())));
        assert_eq!(
            batches[0].schema().field_with_name("_run_id").map(|field| field.data_type().clone()).ok(),
            Some(DataType::Utf8)
        );
        files.push(bytes);
    }
    assert_eq!(total, 600, "every row in exactly one partition");

    let again = run_three(&lake, &contract, &test_key(), "sales", key_name, csv.as_bytes()).await.expect("masked");
    assert_eq!(again.curated["fact_sales"], keys);
    for (key, before) in keys.iter().zip(&files) {
        assert_eq!(&lake.get(key).await, before, "{key} is byte-identical the second time");
    }
}
