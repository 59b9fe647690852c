//! The bad-input corpus (`tests/corpus/`, written by `make_corpus.py`): every file through
//! ingest, validate and mask, with the outcome `expected.json` names — valid and rejected
//! counts and reasons, the quality gate, or the named error and what its message must say.
//! None panics, none loses a row, every error names the file.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::*;
use lakestar::mask::MaskingKey;
use lakestar_ingest::IngestFunction;
use lakestar_mask::MaskFunction;
use lakestar_validate::ValidateFunction;
use lambda_runtime::LambdaEvent;
use serde_json::{Value, json};

/// What happened to one file.
fn outcome(result: Result<Value, lambda_runtime::Diagnostic>) -> Value {
    match result {
        Ok(value) => value,
        Err(error) => json!({"error": error.error_type, "message": error.error_message}),
    }
}

async fn run_file(lake: &TestLake, name: &str, bytes: &[u8]) -> Value {
    let contract = retail_contract();
    let key = format!("landing/corpus/{name}");
    lake.put(&key, bytes).await;
    // The trigger starts nothing for a key no dataset matches; a run that names no dataset of
    // the contract fails with UnknownDataset.
    let dataset =
        contract.dataset_for_key(&key).map(|dataset| dataset.name.clone()).unwrap_or_else(|_| "unknown".to_string());
    let run = run_for(&dataset, &key, bytes.len());
    let mut state = json!({ "run": run });
    let event = |state: &Value| LambdaEvent::new(state.clone(), Default::default());
    let ingested = IngestFunction::new(lake.lake.clone(), contract.clone()).handle(event(&state)).await;
    let ingested = match ingested {
        Ok(output) => serde_json::to_value(output).expect("JSON"),
        Err(error) => return outcome(Err(error)),
    };
    state["ingest"] = ingested.clone();
    let validated = match ValidateFunction::new(lake.lake.clone(), contract.clone()).handle(event(&state)).await {
        Ok(output) => serde_json::to_value(output).expect("JSON"),
        Err(error) => return outcome(Err(error)),
    };
    state["validate"] = validated.clone();
    let mut result = json!({
        "received": validated["received"],
        "valid": validated["valid"],
        "rejected": validated["rejected"],
        "reasons": validated["rejects_per_rule"],
        "gate": validated["gate"],
        "drift": ingested["drift"],
    });
    if validated["gate"] == "pass" {
        let key = MaskingKey::new(b"corpus-key-0123456789abcdef-0123456".to_vec(), "v1").expect("key");
        let masked = MaskFunction::new(lake.lake.clone(), contract, key).handle(event(&state)).await;
        result["masked_rows"] = outcome(masked.map(|output| json!(output.rows)));
    }
    result
}

#[tokio::test]
async fn every_corpus_file_has_its_expected_outcome() {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let expected: BTreeMap<String, Value> =
        serde_json::from_slice(&std::fs::read(folder.join("expected.json")).expect("expected.json")).expect("JSON");
    let mut files: Vec<String> = std::fs::read_dir(&folder)
        .expect("corpus")
        .filter_map(|entry| entry.ok().map(|entry| entry.file_name().to_string_lossy().into_owned()))
        .filter(|name| name != "expected.json" && name != "make_corpus.py")
        .collect();
    files.sort();
    assert!(files.len() >= 40, "the corpus has {} files", files.len());
    let lake = TestLake::start().await;
    let mut actual = BTreeMap::new();
    let mut problems = Vec::new();
    for name in &files {
        let bytes = std::fs::read(folder.join(name)).expect("file");
        let result = run_file(&lake, name, &bytes).await;
        // Nothing is lost: every row received is valid or quarantined.
        if let (Some(received), Some(valid), Some(rejected)) =
            (result["received"].as_u64(), result["valid"].as_u64(), result["rejected"].as_u64())
        {
            if received != valid + rejected {
                problems.push(format!("{name}: received {received} ≠ valid {valid} + rejected {rejected}"));
            }
            if result["gate"] == "pass" && result["masked_rows"] != json!(valid) {
                problems.push(format!("{name}: mask wrote {} rows of {valid}", result["masked_rows"]));
            }
        }
        // An error names the file it is about.
        if let Some(message) = result["message"].as_str().filter(|message| !message.contains(name.as_str())) {
            problems.push(format!("{name}: the error does not name the file: {message}"));
        }
        match expected.get(name) {
            None => problems.push(format!("{name}: no expectation in expected.json")),
            Some(expectation) => {
                for (field, wanted) in expectation.as_object().into_iter().flatten() {
                    if field == "why" {
                        continue;
                    }
                    let got = &result[field.as_str()];
                    let matches = match (field.as_str(), wanted) {
                        ("message", Value::String(fragment)) => {
                            got.as_str().is_some_and(|text| text.contains(fragment.as_str()))
                        }
                        _ => got == wanted,
                    };
                    if !matches {
                        problems.push(format!("{name}: {field} is {got}, expected {wanted}"));
                    }
                }
            }
        }
        actual.insert(name.clone(), result);
    }
    if std::env::var_os("LAKESTAR_CORPUS_REPORT").is_some() {
        for (name, result) in &actual {
            let mut shown = result.clone();
            if let Some(message) = shown.get_mut("message") {
                let text: String = message.as_str().unwrap_or_default().chars().take(300).collect();
                *message = json!(text);
            }
            println!("{name}: {shown}");
        }
    }
    assert!(problems.is_empty(), "{} problem(s):\n{}", problems.len(), problems.join("\n"));
}
