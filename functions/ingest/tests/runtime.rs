//! The ingest function's real binary behind the Lambda Runtime API protocol: nothing it
//! needs is fetched at cold start, so a missing or broken contract, an unset variable or an
//! unreachable S3 endpoint is an invocation's named error (which the state machine can retry
//! or report), never a process that exits before asking for its first event.

use std::time::Duration;

use lakestar::function::runtime_api::{Reported, RuntimeApi};
use lakestar::lake::EmbeddedS3;

/// Starts the binary against `api` with `env`, hands it one state document, and returns what
/// it reported (after checking it asked for the event at all).
async fn invoke(api: &RuntimeApi, env: &[(&str, String)]) -> Reported {
    api.push(serde_json::from_str(include_str!("../../../events/ingest.json")).expect("the sample event"));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_lakestar-ingest"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_LAMBDA_RUNTIME_API", api.address())
        .env("AWS_LAMBDA_FUNCTION_NAME", "lakestar-ingest")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_REGION", "us-east-1")
        .envs(env.iter().map(|(name, value)| (*name, value.clone())))
        .spawn()
        .expect("the function starts");
    let before = api.reported().len();
    // A deadline, not a timing assertion: a loaded CI machine retries slowly.
    let reported = api.wait_for(before + 1, Duration::from_secs(120)).await;
    assert!(api.next_calls() > 0, "the function reached the runtime loop");
    let _ = child.kill();
    let _ = child.wait();
    reported.get(before).cloned().expect("the function reported on its invocation")
}

fn error_type(reported: &Reported) -> String {
    match reported {
        Reported::Error { body, .. } => body["errorType"].as_str().unwrap_or_default().to_string(),
        other => panic!("expected an invocation error, got {other:?}"),
    }
}

fn error_message(reported: &Reported) -> String {
    match reported {
        Reported::Error { body, .. } => body["errorMessage"].as_str().unwrap_or_default().to_string(),
        other => panic!("expected an invocation error, got {other:?}"),
    }
}

#[tokio::test]
async fn cold_start_failures_are_named_errors_of_the_invocation() {
    let api = RuntimeApi::start().await.expect("runtime API");
    let folder = tempfile::tempdir().expect("folder");
    let s3 = EmbeddedS3::start(&folder.path().join("s3")).await.expect("embedded S3");
    s3.create_bucket("lakestar-lake").await.expect("bucket");
    let (access, secret) = s3.credentials();
    let lake_env = |bucket: &str| {
        vec![
            ("LAKE_BUCKET", bucket.to_string()),
            ("AWS_ENDPOINT_URL_S3", s3.endpoint()),
            ("LAKESTAR_S3_PATH_STYLE", "true".to_string()),
            ("AWS_ACCESS_KEY_ID", access.to_string()),
            ("AWS_SECRET_ACCESS_KEY", secret.to_string()),
        ]
    };

    // An unset variable: reported by the invocation, not an exit at start.
    let reported = invoke(&api, &[]).await;
    assert_eq!(error_type(&reported), "InvalidConfiguration");
    assert!(error_message(&reported).contains("LAKE_BUCKET"), "{reported:?}");

    // No contract in the bucket yet: a configuration error saying what to upload.
    let reported = invoke(&api, &lake_env("lakestar-lake")).await;
    assert_eq!(error_type(&reported), "InvalidConfiguration");
    assert!(error_message(&reported).contains("config/pipeline.toml"), "{reported:?}");

    // A broken contract: every problem, named.
    let lake = lakestar::lake::Lake::new(s3.client(), "lakestar-lake");
    lake.put_bytes(lakestar::lake::CONFIG_KEY, b"[datasets.x]\nmatch = 3\n".to_vec(), "application/toml")
        .await
        .expect("put");
    let reported = invoke(&api, &lake_env("lakestar-lake")).await;
    assert_eq!(error_type(&reported), "InvalidContract");

    // An unreachable endpoint: S3Unavailable, which the state machine retries. The port was
    // bound and released here, so nothing listens on it and a connection is refused at once.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").and_then(|listener| listener.local_addr()).expect("a port");
    let mut unreachable = lake_env("lakestar-lake");
    unreachable[1].1 = format!("http://{closed}");
    let reported = invoke(&api, &unreachable).await;
    assert_eq!(error_type(&reported), "S3Unavailable");
    assert!(!error_message(&reported).contains("Error {"), "no Debug dump: {reported:?}");

    // No init error in any case: the runtime was reached every time.
    assert!(api.reported().iter().all(|reported| !matches!(reported, Reported::InitError(_))));
}
