//! Interpreter tests, with inputs and expected outputs from the Amazon States Language
//! specification's examples where it gives them.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use super::*;

/// Tasks by resource name: `echo` returns its parameters, `flaky` fails with `Boom` a given
/// number of times first, `slow` sleeps, `fail` always fails with `Broken`.
struct Fake {
    flaky_failures: u32,
    calls: AtomicU32,
}

impl Fake {
    fn new(flaky_failures: u32) -> Fake {
        Fake { flaky_failures, calls: AtomicU32::new(0) }
    }
}

impl Invoker for Fake {
    fn invoke<'a>(&'a self, resource: &'a str, parameters: Value) -> BoxFuture<'a, Result<Value, Failure>> {
        Box::pin(async move {
            let call = self.calls.fetch_add(1, Ordering::SeqCst);
            match resource {
                "echo" => Ok(parameters),
                "flaky" if call < self.flaky_failures => {
                    Err(Failure { error: "Boom".into(), cause: format!("call {call}") })
                }
                "flaky" => Ok(json!({"calls": call + 1})),
                "slow" => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    Ok(Value::Null)
                }
                _ => Err(Failure { error: "Broken".into(), cause: "always".into() }),
            }
        })
    }
}

const FAST: Timing = Timing { retry_scale: 0.0, wait_scale: 0.0 };

async fn run_with(definition: Value, input: Value, fake: &Fake) -> (Outcome, Vec<Event>) {
    let machine = Machine::parse(&definition).expect("valid definition");
    let interpreter = Interpreter::new(fake, FAST, "test", &input, Vec::new());
    let outcome = interpreter.run(&machine, &machine.start_at, input).await;
    (outcome, interpreter.history())
}

async fn run(definition: Value, input: Value) -> Outcome {
    run_with(definition, input, &Fake::new(0)).await.0
}

fn one(state: Value) -> Value {
    json!({"StartAt": "S", "States": {"S": state}})
}

#[tokio::test]
async fn pass_result_and_result_path() {
    // Specification, "ResultPath": the Result placed under $.coords of the input.
    let definition = one(json!({
        "Type": "Pass",
        "Result": {"x-datum": 0.381018, "y-datum": 622.2269926397355},
        "ResultPath": "$.coords",
        "End": true
    }));
    let outcome = run(definition, json!({"georefOf": "Home"})).await;
    assert_eq!(
        outcome,
        Outcome::Succeeded(json!({"georefOf": "Home", "coords": {"x-datum": 0.381018, "y-datum": 622.2269926397355}}))
    );
    // ResultPath null discards the result.
    let outcome =
        run(one(json!({"Type": "Pass", "Result": 1, "ResultPath": null, "End": true})), json!({"a": 1})).await;
    assert_eq!(outcome, Outcome::Succeeded(json!({"a": 1})));
}

#[tokio::test]
async fn input_path_parameters_and_output_path() {
    // Specification, "Parameters".
    let input = json!({
        "comment": "Example for Parameters.",
        "product": {"details": {"color": "blue", "size": "small", "material": "cotton"}, "availability": "in stock", "sku": "2317", "cost": "$23"}
    });
    let definition = one(json!({
        "Type": "Pass",
        "Parameters": {
            "comment": "Selecting what I care about.",
            "MyDetails": {"size.$": "$.product.details.size", "exists.$": "$.product.availability", "StaticValue": "foo"}
        },
        "End": true
    }));
    assert_eq!(
        run(definition, input.clone()).await,
        Outcome::Succeeded(json!({
            "comment": "Selecting what I care about.",
            "MyDetails": {"size": "small", "exists": "in stock", "StaticValue": "foo"}
        }))
    );
    // InputPath narrows, OutputPath picks, the context object is reachable.
    let definition = one(json!({
        "Type": "Pass",
        "InputPath": "$.product",
        "Parameters": {"sku.$": "$.sku", "run.$": "$$.Execution.Name", "label.$": "States.Format('sku {}', $.sku)"},
        "OutputPath": "$.label",
        "End": true
    }));
    assert_eq!(run(definition, input).await, Outcome::Succeeded(json!("sku 2317")));
    // A path that does not resolve fails the execution with States.Runtime.
    let outcome = run(one(json!({"Type": "Pass", "InputPath": "$.missing", "End": true})), json!({})).await;
    assert!(matches!(outcome, Outcome::Failed { failure, .. } if failure.error == "States.Runtime"));
}

#[tokio::test]
async fn task_result_selector_and_lambda_style_result() {
    let definition = one(json!({
        "Type": "Task",
        "Resource": "echo",
        "Parameters": {"Payload": {"rows": 3, "keys": ["a"]}, "StatusCode": 200},
        "ResultSelector": {"rows.$": "$.Payload.rows", "first.$": "$.Payload.keys[0]"},
        "ResultPath": "$.stage",
        "End": true
    }));
    assert_eq!(
        run(definition, json!({"run": 1})).await,
        Outcome::Succeeded(json!({"run": 1, "stage": {"rows": 3, "first": "a"}}))
    );
}

#[tokio::test]
async fn retry_backs_off_then_succeeds_and_catch_takes_over_when_attempts_run_out() {
    let retrying = |max_attempts: u32| {
        json!({
            "StartAt": "T",
            "States": {
                "T": {
                    "Type": "Task",
                    "Resource": "flaky",
                    "Retry": [{"ErrorEquals": ["Other"], "MaxAttempts": 5}, {"ErrorEquals": ["Boom"], "IntervalSeconds": 1, "MaxAttempts": max_attempts, "BackoffRate": 2.0, "MaxDelaySeconds": 3, "JitterStrategy": "FULL"}],
                    "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Recover"}],
                    "End": true
                },
                "Recover": {"Type": "Pass", "End": true}
            }
        })
    };
    let fake = Fake::new(2);
    let (outcome, history) = run_with(retrying(2), json!({"in": 1}), &fake).await;
    assert_eq!(outcome, Outcome::Succeeded(json!({"calls": 3})));
    let retries: Vec<_> = history.iter().filter(|event| event.kind == "TaskRetryScheduled").collect();
    assert_eq!(retries.len(), 2);
    assert!(retries.iter().all(|event| event.detail["delaySeconds"].as_f64().is_some_and(|delay| delay <= 3.0)));

    let fake = Fake::new(5);
    let (outcome, history) = run_with(retrying(2), json!({"in": 1}), &fake).await;
    assert_eq!(outcome, Outcome::Succeeded(json!({"in": 1, "error": {"Error": "Boom", "Cause": "call 2"}})));
    assert_eq!(fake.calls.load(Ordering::SeqCst), 3, "one call and two retries");
    assert!(history.iter().any(|event| event.kind == "CatchTaken"));
}

#[tokio::test]
async fn task_failed_timeout_and_uncaught_errors() {
    // States.TaskFailed catches a task's error…
    let caught = one(json!({
        "Type": "Task", "Resource": "fail",
        "Catch": [{"ErrorEquals": ["States.TaskFailed"], "Next": "S"}],
        "End": true
    }));
    let caught = json!({"StartAt": "T", "States": {"T": caught["States"]["S"].clone(), "S": {"Type": "Succeed"}}});
    assert_eq!(run(caught, json!({"x": 1})).await, Outcome::Succeeded(json!({"Error": "Broken", "Cause": "always"})));
    // …but not a timeout, which States.Timeout names.
    let timeout = json!({"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": "slow", "TimeoutSeconds": 0.05,
              "Catch": [{"ErrorEquals": ["States.TaskFailed"], "Next": "Wrong"}, {"ErrorEquals": ["States.Timeout"], "Next": "Right"}], "End": true},
        "Wrong": {"Type": "Fail", "Error": "Wrong"},
        "Right": {"Type": "Succeed"}
    }});
    assert!(matches!(run(timeout, json!({})).await, Outcome::Succeeded(_)));
    // Uncaught: the execution fails in that state with the handler's error name.
    let outcome = run(one(json!({"Type": "Task", "Resource": "fail", "End": true})), json!({"x": 1})).await;
    assert_eq!(
        outcome,
        Outcome::Failed {
            state: "S".into(),
            input: json!({"x": 1}),
            failure: Failure { error: "Broken".into(), cause: "always".into() }
        }
    );
}

#[tokio::test]
async fn choice_default_wait_succeed_and_fail() {
    let definition = json!({"StartAt": "C", "States": {
        "C": {"Type": "Choice", "Choices": [
            {"Variable": "$.gate", "StringEquals": "fail", "Next": "Stop"},
            {"And": [{"Variable": "$.n", "IsPresent": true}, {"Variable": "$.n", "NumericGreaterThan": 10}], "Next": "Big"}
        ], "Default": "Small"},
        "Stop": {"Type": "Fail", "Error": "QualityGateFailed", "CausePath": "$.cause"},
        "Big": {"Type": "Wait", "Seconds": 3600, "Next": "Done"},
        "Small": {"Type": "Wait", "SecondsPath": "$.n", "Next": "Done"},
        "Done": {"Type": "Succeed", "OutputPath": "$.n"}
    }});
    assert_eq!(run(definition.clone(), json!({"gate": "pass", "n": 11})).await, Outcome::Succeeded(json!(11)));
    assert_eq!(run(definition.clone(), json!({"gate": "pass", "n": 2})).await, Outcome::Succeeded(json!(2)));
    assert_eq!(
        run(definition, json!({"gate": "fail", "cause": "42 % rejected"})).await,
        Outcome::Failed {
            state: "Stop".into(),
            input: json!({"gate": "fail", "cause": "42 % rejected"}),
            failure: Failure { error: "QualityGateFailed".into(), cause: "42 % rejected".into() }
        }
    );
    let no_match = json!({"StartAt": "C", "States": {"C": {"Type": "Choice", "Choices": [{"Variable": "$.a", "BooleanEquals": true, "Next": "D"}]}, "D": {"Type": "Succeed"}}});
    assert!(
        matches!(run(no_match, json!({"a": false})).await, Outcome::Failed { failure, .. } if failure.error == "States.NoChoiceMatched")
    );
}

#[tokio::test]
async fn parallel_and_map() {
    // Parallel: each branch gets the input; the output is the array of branch outputs.
    let definition = one(json!({
        "Type": "Parallel",
        "Branches": [
            {"StartAt": "A", "States": {"A": {"Type": "Pass", "InputPath": "$.a", "End": true}}},
            {"StartAt": "B", "States": {"B": {"Type": "Task", "Resource": "echo", "Parameters": {"b.$": "$.b"}, "End": true}}}
        ],
        "ResultPath": "$.both",
        "End": true
    }));
    assert_eq!(
        run(definition, json!({"a": 1, "b": 2})).await,
        Outcome::Succeeded(json!({"a": 1, "b": 2, "both": [1, {"b": 2}]}))
    );

    // Map (specification, "Map State"): ItemsPath and ItemSelector with the context's item.
    let definition = one(json!({
        "Type": "Map",
        "ItemsPath": "$.shipped",
        "MaxConcurrency": 1,
        "ItemSelector": {"parcel.$": "$$.Map.Item.Value", "index.$": "$$.Map.Item.Index", "courier.$": "$.delivery-partner"},
        "ItemProcessor": {"StartAt": "Ship", "States": {"Ship": {"Type": "Task", "Resource": "echo", "End": true}}},
        "ResultPath": "$.labels",
        "OutputPath": "$.labels",
        "End": true
    }));
    let input = json!({"delivery-partner": "UQS", "shipped": [{"prod": "R31", "dest-code": 9511, "quantity": 1344}, {"prod": "S39", "dest-code": 9511, "quantity": 40}]});
    assert_eq!(
        run(definition, input).await,
        Outcome::Succeeded(json!([
            {"parcel": {"prod": "R31", "dest-code": 9511, "quantity": 1344}, "index": 0, "courier": "UQS"},
            {"parcel": {"prod": "S39", "dest-code": 9511, "quantity": 40}, "index": 1, "courier": "UQS"}
        ]))
    );
    // A failing iteration fails the Map with the iteration's error.
    let failing = one(
        json!({"Type": "Map", "ItemProcessor": {"StartAt": "X", "States": {"X": {"Type": "Task", "Resource": "fail", "End": true}}}, "End": true}),
    );
    assert!(matches!(run(failing, json!([1, 2])).await, Outcome::Failed { failure, .. } if failure.error == "Broken"));
}

#[tokio::test]
async fn a_redrive_resumes_at_the_failed_state_with_its_input() {
    let definition = json!({"StartAt": "First", "States": {
        "First": {"Type": "Task", "Resource": "echo", "Parameters": {"first": true}, "ResultPath": "$.first", "Next": "Second"},
        "Second": {"Type": "Task", "Resource": "flaky", "ResultPath": "$.second", "End": true}
    }});
    let machine = Machine::parse(&definition).expect("valid");
    // Call 0 is First; Second fails on calls 1 and 2 (the first re-drive) and succeeds on 3.
    let fake = Fake::new(3);
    let interpreter = Interpreter::new(&fake, FAST, "run", &json!({}), Vec::new());
    let Outcome::Failed { state, input, .. } = interpreter.run(&machine, &machine.start_at, json!({"x": 1})).await
    else {
        panic!("the first attempt fails");
    };
    assert_eq!((state.as_str(), &input), ("Second", &json!({"x": 1, "first": {"first": true}})));
    let calls = fake.calls.load(Ordering::SeqCst);
    assert!(matches!(interpreter.run(&machine, &state, input.clone()).await, Outcome::Failed { .. }));
    let outcome = interpreter.run(&machine, &state, input).await;
    assert_eq!(outcome, Outcome::Succeeded(json!({"x": 1, "first": {"first": true}, "second": {"calls": 4}})));
    assert_eq!(fake.calls.load(Ordering::SeqCst), calls + 2, "First is not run again");
}

#[test]
fn unsupported_constructs_are_refused_up_front() {
    let cases = [
        (one(json!({"Type": "Task", "Resource": "x", "HeartbeatSeconds": 5, "End": true})), "HeartbeatSeconds"),
        (
            one(
                json!({"Type": "Map", "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED"}, "StartAt": "A", "States": {"A": {"Type": "Succeed"}}}, "End": true}),
            ),
            "INLINE",
        ),
        (one(json!({"Type": "Pass", "Parameters": {"h.$": "States.Hash($.a, 'SHA-1')"}, "End": true})), "States.Hash"),
        (one(json!({"Type": "Magic", "End": true})), "Magic"),
        (one(json!({"Type": "Pass", "Next": "Nowhere"})), "Nowhere"),
        (one(json!({"Type": "Pass"})), "End"),
        (json!({"StartAt": "S", "QueryLanguage": "JSONata", "States": {"S": {"Type": "Succeed"}}}), "QueryLanguage"),
    ];
    for (definition, named) in cases {
        let error = Machine::parse(&definition).expect_err("refused");
        assert!(error.contains(named), "{error} should name {named}");
    }
}

#[test]
fn the_pipeline_definition_loads() {
    let text = include_str!("../../../statemachine/pipeline.asl.json");
    let machine = Machine::parse(&serde_json::from_str(text).expect("JSON")).expect("supported");
    assert_eq!(machine.start_at, "Ingest");
    assert!(machine.states.contains_key("Load"));
}
