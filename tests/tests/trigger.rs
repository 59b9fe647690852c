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
    let trigger = TriggerFunction::new(client.clone(), &arn, BUCKET, retail_contract());

    let first = trigger.handle(event("s3-put.json")).await.expect("handled");
    assert_eq!(first.started.len(), 1, "{first:?}");
    let run = &first.started[0];
    assert!(run.starts_with("customers-") && run.len() == "customers-".len() + 20, "{run}");
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
    let trigger = TriggerFunction::new(client.clone(), &arn, BUCKET, retail_contract());
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
    let trigger = TriggerFunction::new(client.clone(), &arn, BUCKET, retail_contract());
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
    let trigger = TriggerFunction::new(client, &arn, BUCKET, retail_contract());
    let error = trigger
        .handle(LambdaEvent::new(serde_json::json!({"hello": 1}), Default::default()))
        .await
        .expect_err("refused");
    assert_eq!(error.error_type, "InvalidInput");
}

/// Issue 23.9 and 24.7: one malformed key does not fail the batch, and events of another
/// bucket start nothing; 24.6: the trigger queue's records (a failed invocation's payload, as
/// an SQS message) replay through the same handler; 24.8: a replay with another event time is
/// the same run.
#[tokio::test]
async fn records_are_decided_one_by_one_other_buckets_are_refused_and_queued_events_replay() {
    let moto = Moto::start();
    let (client, arn) = step_functions(&moto).await;
    let trigger = TriggerFunction::new(client.clone(), &arn, BUCKET, retail_contract());
    let mut batch = event("s3-batch.json").payload;
    let records = batch["Records"].as_array_mut().expect("records");
    records[4]["s3"]["object"]["key"] = serde_json::json!("landing/2024-01-02/bad%ZZname.csv");
    let mut foreign = records[0].clone();
    foreign["s3"]["bucket"]["name"] = serde_json::json!("someone-elses-bucket");
    records.push(foreign);
    let output = trigger.handle(LambdaEvent::new(batch, Default::default())).await.expect("handled");
    assert_eq!(output.started.len(), 1, "the good record still starts: {output:?}");
    assert_eq!(output.invalid.len(), 1, "{output:?}");
    assert!(output.invalid[0].contains("record 4") && output.invalid[0].contains("malformed escape"), "{output:?}");
    assert_eq!(output.foreign, 1, "{output:?}");

    // What Lambda's on-failure destination puts on the queue, replayed as an SQS event: the
    // same object a day later is the same run, hence a duplicate.
    let mut put = event("s3-put.json").payload;
    let first = trigger.handle(LambdaEvent::new(put.clone(), Default::default())).await.expect("handled");
    put["Records"][0]["eventTime"] = serde_json::json!("2024-01-02T09:30:00.000Z");
    let destination = serde_json::json!({
        "version": "1.0",
        "requestContext": {"requestId": "r", "functionArn": "arn:aws:lambda:eu-west-2:1:function:trigger", "condition": "RetriesExhausted", "approximateInvokeCount": 3},
        "requestPayload": put,
        "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
    });
    let queued = serde_json::json!({"Records": [{"messageId": "m1", "eventSource": "aws:sqs", "body": destination.to_string()}]});
    let replayed = trigger.handle(LambdaEvent::new(queued, Default::default())).await.expect("handled");
    assert_eq!(replayed.duplicates, first.started, "{replayed:?}");
}
