//! The check function's real binary behind the Lambda Runtime API protocol, answering function
//! URL events (payload format 2.0) against the embedded S3 as its lake bucket: an object under
//! `landing/` and a file sent as the body are checked as `lakestar validate --json` checks
//! them, nothing is written to the lake, and bad requests are answered with their status.

use std::time::Duration;

use base64::Engine;
use lakestar::function::runtime_api::{Reported, RuntimeApi};
use lakestar::lake::{EmbeddedS3, Lake};
use serde_json::{Value, json};

const CONTRACT: &str = include_str!("../../../examples/retail/pipeline.toml");
const SALES: &[u8] = include_bytes!("../../../examples/retail/landing/2024-01-01/sales.csv");

/// A function URL event.
fn request(query: Value, body: &[u8]) -> Value {
    json!({
        "version": "2.0",
        "rawPath": "/",
        "queryStringParameters": query,
        "requestContext": {"http": {"method": "POST", "path": "/"}},
        "body": base64::engine::general_purpose::STANDARD.encode(body),
        "isBase64Encoded": true,
    })
}

/// The binary's answers to `events`, in order.
async fn invoke(s3: &EmbeddedS3, events: Vec<Value>) -> Vec<(u64, Value)> {
    let api = RuntimeApi::start().await.expect("runtime API");
    let count = events.len();
    for event in events {
        api.push(event);
    }
    let (access, secret) = s3.credentials();
    let scratch = tempfile::tempdir().expect("the function's /tmp");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_lakestar-check"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TMPDIR", scratch.path())
        .env("AWS_LAMBDA_RUNTIME_API", api.address())
        .env("AWS_LAMBDA_FUNCTION_NAME", "lakestar-check")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_REGION", "us-east-1")
        .env("LAKE_BUCKET", "lakestar-lake")
        .env("AWS_ENDPOINT_URL_S3", s3.endpoint())
        .env("LAKESTAR_S3_PATH_STYLE", "true")
        .env("AWS_ACCESS_KEY_ID", access)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .spawn()
        .expect("the function starts");
    let reported = api.wait_for(count, Duration::from_secs(60)).await;
    let _ = child.kill();
    let _ = child.wait();
    reported
        .into_iter()
        .map(|reported| match reported {
            Reported::Response { body, .. } => {
                let status = body["statusCode"].as_u64().expect("a status");
                let answer = serde_json::from_str(body["body"].as_str().expect("a body")).expect("JSON");
                (status, answer)
            }
            other => panic!("a function URL response, not {other:?}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_or_an_object_is_checked_through_the_runtime_protocol_and_nothing_is_written() {
    let folder = tempfile::tempdir().expect("folder");
    let s3 = EmbeddedS3::start(&folder.path().join("s3")).await.expect("embedded S3");
    s3.create_bucket("lakestar-lake").await.expect("bucket");
    let lake = Lake::new(s3.client(), "lakestar-lake");
    lake.put_bytes(lakestar::lake::CONFIG_KEY, CONTRACT.as_bytes().to_vec(), "application/toml")
        .await
        .expect("contract");
    lake.put_bytes("landing/2024-01-01/sales.csv", SALES.to_vec(), "text/csv").await.expect("a landed file");
    let before = lake.list("").await.expect("listed");

    let answers = invoke(
        &s3,
        vec![
            request(json!({}), br#"{"key": "landing/2024-01-01/sales.csv"}"#),
            request(json!({"name": "2024-01-01/sales.csv", "rows": "2", "show_values": "true"}), SALES),
            request(json!({"name": "sales.csv"}), SALES),
            request(json!({}), br#"{"key": "curated/fact_sales/x.parquet"}"#),
            request(json!({}), br#"{"key": "landing/none.csv"}"#),
            request(json!({}), b"not json"),
            request(json!({"name": "other.csv"}), b"a,b\n1,2\n"),
        ],
    )
    .await;
    let (status, report) = &answers[0];
    assert_eq!(*status, 200, "{report}");
    assert_eq!(
        (report["dataset"].as_str(), report["received"].as_u64(), report["valid"].as_u64()),
        (Some("sales"), Some(11), Some(6))
    );
    assert_eq!(report["gate"], "pass");
    assert!(report["rejected_rows"][0].get("values").is_none(), "no values unless asked for");
    let (status, sent) = &answers[1];
    assert_eq!(*status, 200, "{sent}");
    assert_eq!(sent["rejects_per_rule"], report["rejects_per_rule"], "the body checks as the object does");
    assert_eq!(sent["rejected_rows"].as_array().map(Vec::len), Some(2));
    assert!(sent["rejected_rows"][0]["values"]["order_id"].is_string());
    assert_eq!(answers[2].0, 200, "a bare name is checked in a delivery folder: {}", answers[2].1);
    assert_eq!((answers[3].0, answers[3].1["error"].as_str()), (403, Some("Forbidden")));
    assert_eq!((answers[4].0, answers[4].1["error"].as_str()), (404, Some("NoSuchKey")));
    assert_eq!(answers[5].0, 400);
    assert_eq!((answers[6].0, answers[6].1["error"].as_str()), (422, Some("UnknownDataset")));
    assert_eq!(lake.list("").await.expect("listed"), before, "nothing written to the lake");
}
