//! The trigger's real binary behind the Lambda Runtime API protocol: with `STATE_MACHINE_ARN`
//! unset it still reaches the runtime loop and reports a named error for each event.

use std::time::Duration;

use lakestar::function::runtime_api::{Reported, RuntimeApi};

#[tokio::test]
async fn a_missing_setting_is_reported_by_each_invocation() {
    let api = RuntimeApi::start().await.expect("runtime API");
    api.push(serde_json::from_str(include_str!("../../../events/s3-put.json")).expect("the sample event"));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_lakestar-trigger"))
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", api.address())
        .env("AWS_LAMBDA_FUNCTION_NAME", "lakestar-trigger")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_REGION", "us-east-1")
        .env("LAKE_BUCKET", "lakestar-lake")
        .spawn()
        .expect("the trigger starts");
    let reported = api.wait_for(1, Duration::from_secs(30)).await;
    let _ = child.kill();
    let _ = child.wait();
    match reported.first() {
        Some(Reported::Error { body, .. }) => {
            assert_eq!(body["errorType"], "InvalidConfiguration");
            assert!(
                body["errorMessage"].as_str().is_some_and(|message| message.contains("STATE_MACHINE_ARN")),
                "{body}"
            );
        }
        other => panic!("expected a named invocation error, got {other:?}"),
    }
}
