//! The trigger Lambda with the sample events of `events/`, against a Step Functions endpoint
//! that speaks the real protocol (moto's server).

mod common;

use aws_sdk_sfn::config::{BehaviorVersion, Credentials, Region};
use common::*;
use lakestar_trigger::TriggerFunction;
use lambda_runtime::LambdaEvent;

async fn step_functions(moto: &Moto) -> (aws_sdk_sfn::Client, String) {
    let config = aws_sdk_sfn::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(&moto.endpoint)
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .build();
    let client = aws_sdk_sfn::Client::from_conf(config);
    let definition = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../statemachine/pipeline.asl.json"))
        .expect("the definition");
    let created = client
        .create_state_machine()
        .name("lakestar-pipeline")
        .definition(definition)
        .role_arn("arn:aws:iam::123456789012:role/lakestar-pipeline")
        .send()
        .await
        .expect("state machine created");
    (client, created.state_machine_arn().to_string())
}

fn event(name: &str) -> LambdaEvent<serde_json::Value> {
    let path = format!("{}/../events/{name}", env!("CARGO_MANIFEST_DIR"));
    let payload = serde_json::from_slice(&std::fs::read(&path).expect("event file")).expect("JSON");
    LambdaEvent::new(payload, Default::default())
}

async fn execution_input(client: &aws_sdk_sfn::Client, arn: &str, run: &str) -> serde_json::Value {
    let execution_arn = format!("{}:{run}", arn.replacen(":stateMachine:", ":execution:", 1));
    let described =
        client.describe_execution().execution_arn(execution_arn).send().await.expect("the execution exists");
    serde_json::from_str(described.input().expect("an input")).expect("JSON input")
}

#[tokio::test]
async fn an_s3_put_starts_one_execution_and_a_repeat_starts_none() {
    let moto = Moto::start();
    let (client, arn) = step_functions(&moto).await;
    let trigger = TriggerFunction::new(client.clone(), &arn, retail_contract());

    let first = trigger.handle(event("s3-put.json")).await.expect("handled");
    assert_eq!(first.started.len(), 1, "{first:?}");
    let run = &first.started[0];
    assert!(run.starts_with("customers-20240101T020000-"), "{run}");
    let input = execution_input(&client, &arn, run).await;
    assert_eq!(input["run"]["key"], "landing/2024-01-01/customers.csv");
    assert_eq!(input["run"]["dataset"], "customers");
    assert_eq!(input["run"]["version"], "096fKKXTRTtl3on89fVO.nfljtsv6qko");
    assert_eq!(input["run"]["size"], 1491);
    assert_eq!(input["run"]["time"], "2024-01-01T02:00:00Z");

    let again = trigger.handle(event("s3-put.json")).await.expect("handled");
    assert!(again.started.is_empty(), "{again:?}");
    assert_eq!(again.duplicates, vec![run.clone()]);
}

#[tokio::test]
async fn a_batch_decodes_keys_skips_outputs_and_markers_and_reports_unmatched_keys() {
    let moto = Moto::start();
    let (client, arn) = step_functions(&moto).await;
    let trigger = TriggerFunction::new(client.clone(), &arn, retail_contract());
    let output = trigger.handle(event("s3-batch.json")).await.expect("handled");
    assert_eq!(output.started.len(), 1, "{output:?}");
    assert_eq!(output.duplicates.len(), 1, "the same record twice in one batch");
    assert_eq!(output.ignored, 2, "a raw/ output and a folder marker");
    assert_eq!(output.unmatched, vec!["landing/2024-01-02/invoices.csv".to_string()]);
    let input = execution_input(&client, &arn, &output.started[0]).await;
    assert_eq!(input["run"]["key"], "landing/2024-01-02/sales (café + bar).csv.gz", "+, %2B and UTF-8 decoded");
    assert_eq!(input["run"]["dataset"], "sales");
}

#[tokio::test]
async fn an_eventbridge_object_created_event_starts_its_run() {
    let moto = Moto::start();
    let (client, arn) = step_functions(&moto).await;
    let trigger = TriggerFunction::new(client.clone(), &arn, retail_contract());
    let output = trigger.handle(event("eventbridge-object-created.json")).await.expect("handled");
    assert_eq!(output.started.len(), 1, "{output:?}");
    let input = execution_input(&client, &arn, &output.started[0]).await;
    assert_eq!(input["run"]["dataset"], "stores");
    assert_eq!(input["run"]["version"], "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e");
    assert_eq!(input["run"]["size"], 512);
}

#[tokio::test]
async fn an_event_of_another_shape_is_refused_with_invalid_input() {
    let moto = Moto::start();
    let (client, arn) = step_functions(&moto).await;
    let trigger = TriggerFunction::new(client, &arn, retail_contract());
    let error = trigger
        .handle(LambdaEvent::new(serde_json::json!({"hello": 1}), Default::default()))
        .await
        .expect_err("refused");
    assert_eq!(error.error_type, "InvalidInput");
}
