//! What recovers a failed execution, through the offline stack (the real state machine and
//! handlers): the quality gate is evaluated again by a re-drive after the threshold changed
//! and fails closed; a contract fixed in the bucket is what the re-drive uses; a run the gate
//! stopped is in the quality record all the same.

mod common;

use common::{drop_and_run, query_text, stack_with, succeeded};

const PEOPLE: &str = r#"
[datasets.people]
match = ["landing/people*.csv"]
[datasets.people.table]
name = "dim_person"
kind = "dimension"
natural_key = ["person_id"]
[datasets.people.quality]
max_reject_ratio = 0.1
[[datasets.people.columns]]
name = "person_id"
required = true
[[datasets.people.columns]]
name = "age"
type = "integer"
checks = { min = 0, max = 130 }
[[datasets.people.columns]]
name = "email"
pii = { method = "email_hash" }
"#;

/// Two bad rows of four: half rejected, above the 10 % threshold.
const FILE: &[u8] =
    b"person_id,age,email\nP1,34,ann@example.com\nP2,-1,bob@example.com\nP3,41,cy@example.com\nP4,old,di@example.com\n";

/// Issue 24.4 and 23.6.
#[tokio::test]
async fn a_gate_failure_is_recorded_fails_at_a_task_and_a_redrive_after_the_threshold_changed_loads() {
    let folder = tempfile::tempdir().expect("folder");
    let stack = stack_with(folder.path(), PEOPLE).await;
    let records = drop_and_run(&stack, folder.path(), "landing/people.csv", FILE).await;
    let record = &records[0];
    assert_eq!(record.status, "FAILED");
    assert_eq!(record.error.as_deref(), Some("QualityGateFailed"));
    assert_eq!(record.failed_state.as_deref(), Some("EnforceQualityGate"), "a Task a re-drive runs again");
    assert!(record.cause.as_deref().is_some_and(|cause| cause.contains("above max_reject_ratio 10.0%")), "{record:?}");

    // The stopped run is in the quality record: its report and its metrics, with a time.
    let report_key = lakestar::lake::quality_key("people", &record.name);
    let report: serde_json::Value =
        serde_json::from_slice(&stack.lake().get_bytes(&report_key).await.expect("the report")).expect("JSON");
    assert_eq!(report["outcome"], "gate_failed");
    assert_eq!((report["received"].as_u64(), report["rejected"].as_u64()), (Some(4), Some(2)));
    let metrics = query_text(
        stack.warehouse(),
        &format!(
            "SELECT CAST(value AS TEXT), recorded_at FROM quality_metrics WHERE run_id = '{}' AND metric = 'gate_failed'",
            record.name
        ),
    )
    .await;
    assert_eq!(metrics.len(), 1);
    assert_eq!(metrics[0][0].as_deref().and_then(|value| value.parse::<f64>().ok()), Some(1.0));
    assert!(metrics[0][1].as_deref().is_some_and(|time| time.starts_with("20")), "{metrics:?}");
    let registered = format!("SELECT CAST(COUNT(*) AS TEXT) FROM lakestar_runs WHERE run_id = '{}'", record.name);
    assert_eq!(query_text(stack.warehouse(), &registered).await, [vec![Some("0".to_string())]], "nothing loaded");

    // A re-drive with the same contract fails again, at the same Task.
    let again = stack.redrive(&record.name).await.expect("re-driven");
    assert_eq!((again.status.as_str(), again.failed_state.as_deref()), ("FAILED", Some("EnforceQualityGate")));

    // The threshold relaxed in the bucket's contract: the re-drive evaluates the gate again and loads.
    let relaxed = PEOPLE.replace("max_reject_ratio = 0.1", "max_reject_ratio = 0.6");
    stack.lake().put_bytes(lakestar::lake::CONFIG_KEY, relaxed.into_bytes(), "application/toml").await.expect("put");
    let redriven = stack.redrive(&record.name).await.expect("re-driven");
    succeeded(std::slice::from_ref(&redriven));
    let loaded = query_text(stack.warehouse(), "SELECT CAST(COUNT(*) AS TEXT) FROM dim_person").await;
    assert_eq!(loaded, [vec![Some("2".to_string())]]);
    let metrics = query_text(
        stack.warehouse(),
        &format!(
            "SELECT CAST(value AS TEXT) FROM quality_metrics WHERE run_id = '{}' AND metric = 'gate_failed'",
            record.name
        ),
    )
    .await;
    assert_eq!(metrics[0][0].as_deref().and_then(|value| value.parse::<f64>().ok()), Some(0.0), "one set of figures");
}

/// Issue 24.4: the gate fails closed: a verdict that is not an explicit pass goes to the
/// enforcing Task, which computes the verdict from the counts.
#[tokio::test]
async fn a_gate_verdict_other_than_pass_is_evaluated_from_the_counts() {
    let folder = tempfile::tempdir().expect("folder");
    let stack = stack_with(folder.path(), &PEOPLE.replace("max_reject_ratio = 0.1", "max_reject_ratio = 0.6")).await;
    let contract = lakestar::contract::Contract::parse("pipeline.toml", PEOPLE).expect("contract");
    let run = lakestar::run::RunDescriptor::new(
        "people",
        "lakestar-lake",
        "landing/people.csv",
        None,
        Some("e"),
        1,
        chrono::Utc::now(),
    );
    let mut validated: lakestar::validate::ValidateOutput = serde_json::from_value(serde_json::json!({
        "processed": [], "quarantine": [], "received": 4, "valid": 2, "rejected": 2, "rejects_per_rule": {},
        "nulls_per_column": {}, "duplicates": 0, "gate": "pss", "cause": ""
    }))
    .expect("a validate section");
    let error = lakestar::validate::enforce_gate(&contract, &run, &validated).expect_err("a typo does not pass");
    assert_eq!(error.error_type(), "QualityGateFailed");
    validated.received = 40;
    validated.valid = 38;
    let passed = lakestar::validate::enforce_gate(&contract, &run, &validated).expect("within the threshold");
    assert_eq!(passed.gate, "pass");
    drop(stack);
}

/// Issue 24.3: a run fails with PiiLeak; the contract is fixed in the bucket; a re-drive uses it.
#[tokio::test]
async fn a_redrive_after_a_contract_fix_in_the_bucket_uses_the_fixed_contract() {
    let folder = tempfile::tempdir().expect("folder");
    let leaky = PEOPLE
        .replace("pii = { method = \"email_hash\" }", "")
        .replace("max_reject_ratio = 0.1", "max_reject_ratio = 0.6");
    let stack = stack_with(folder.path(), &leaky).await;
    let records = drop_and_run(&stack, folder.path(), "landing/people.csv", FILE).await;
    assert_eq!(records[0].error.as_deref(), Some("PiiLeak"), "{:?}", records[0].cause);
    assert_eq!(records[0].failed_state.as_deref(), Some("Mask"));
    let fixed = PEOPLE.replace("max_reject_ratio = 0.1", "max_reject_ratio = 0.6");
    stack.lake().put_bytes(lakestar::lake::CONFIG_KEY, fixed.into_bytes(), "application/toml").await.expect("put");
    let redriven = stack.redrive(&records[0].name).await.expect("re-driven");
    succeeded(std::slice::from_ref(&redriven));
    let emails = query_text(stack.warehouse(), "SELECT email FROM dim_person ORDER BY person_id").await;
    assert!(emails.iter().flatten().flatten().all(|email| !email.starts_with("ann@")), "masked: {emails:?}");
}

/// Issue 24.12: the state carries a manifest key, not every part's key: a fact spanning
/// 1 500 daily partitions keeps the whole execution's state far below Step Functions'
/// 256 KiB payload limit.
#[tokio::test]
async fn a_fact_over_1500_daily_partitions_keeps_the_state_small() {
    const DAYS: &str = r#"
[datasets.readings]
match = ["landing/readings*.csv"]
[datasets.readings.table]
name = "fact_reading"
kind = "fact"
natural_key = ["reading_id"]
date_column = "day"
partition = "day"
[[datasets.readings.columns]]
name = "reading_id"
required = true
[[datasets.readings.columns]]
name = "day"
type = "date"
[[datasets.readings.columns]]
name = "value"
type = "float"
"#;
    let folder = tempfile::tempdir().expect("folder");
    let stack = stack_with(folder.path(), DAYS).await;
    let start = chrono::NaiveDate::from_ymd_opt(2020, 1, 1).expect("date");
    let mut file = String::from("reading_id,day,value\n");
    for day in 0..1500 {
        let date = start + chrono::Duration::days(day);
        file.push_str(&format!("R{day},{date},{day}.5\n"));
    }
    let records = drop_and_run(&stack, folder.path(), "landing/readings.csv", file.as_bytes()).await;
    succeeded(&records);
    let state = serde_json::to_vec(records[0].output.as_ref().expect("an output")).expect("JSON");
    assert!(state.len() < 16 * 1024, "the final state is {} bytes", state.len());
    let parts = stack.lake().list("curated/fact_reading/").await.expect("list");
    assert_eq!(parts.len(), 1500, "one part per day");
    let loaded = query_text(stack.warehouse(), "SELECT CAST(COUNT(*) AS TEXT) FROM fact_reading").await;
    assert_eq!(loaded, [vec![Some("1500".to_string())]]);
}
