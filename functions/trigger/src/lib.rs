//! The trigger Lambda: S3 notifications and EventBridge events in, one Step Functions
//! execution per landed object out, named by its run id so that a repeated event starts
//! nothing new.

use aws_sdk_sfn::Client;
use aws_sdk_sfn::error::{DisplayErrorContext, SdkError};
use lakestar::contract::Contract;
use lakestar::trigger::{Decision, TriggerOutput, decide, landed_objects};
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::Value;

/// The environment variable holding the state machine's ARN.
pub const STATE_MACHINE_ENV: &str = "STATE_MACHINE_ARN";

/// What the function builds once per cold start.
#[derive(Debug, Clone)]
pub struct TriggerFunction {
    sfn: Client,
    state_machine_arn: String,
    contract: Contract,
}

impl TriggerFunction {
    /// Builds the function from its environment: `LAKE_BUCKET` (for the contract),
    /// `STATE_MACHINE_ARN`, optional `LAKESTAR_CONFIG`. Throttled calls are retried by the
    /// SDK (standard mode, 5 attempts, exponential backoff with jitter).
    pub async fn from_env() -> lakestar::Result<TriggerFunction> {
        let lake = lakestar::env::lake(lakestar::env::s3_client().await)?;
        let contract = lakestar::env::contract(&lake).await?;
        let state_machine_arn = std::env::var(STATE_MACHINE_ENV).map_err(|_| {
            lakestar::Error::Configuration(format!("set {STATE_MACHINE_ENV} to the state machine's ARN"))
        })?;
        let config = aws_config::load_from_env().await;
        let sfn = Client::from_conf(
            aws_sdk_sfn::config::Builder::from(&config)
                .retry_config(aws_sdk_sfn::config::retry::RetryConfig::standard().with_max_attempts(5))
                .build(),
        );
        Ok(TriggerFunction { sfn, state_machine_arn, contract })
    }

    /// A function over an explicit client, state machine and contract (tests, offline stack).
    pub fn new(sfn: Client, state_machine_arn: impl Into<String>, contract: Contract) -> TriggerFunction {
        TriggerFunction { sfn, state_machine_arn: state_machine_arn.into(), contract }
    }

    /// Handles one event: every record is decided and, when it is a run, started.
    pub async fn handle(&self, event: LambdaEvent<Value>) -> Result<TriggerOutput, Diagnostic> {
        let objects = landed_objects(event.payload)?;
        let mut output = TriggerOutput::default();
        for object in objects {
            match decide(&self.contract, &object) {
                Decision::Ignore(why) => {
                    tracing::info!(key = %object.key, why = %why, "Object ignored.");
                    output.ignored += 1;
                }
                Decision::Unmatched(why) => {
                    tracing::warn!(key = %object.key, why = %why, "No dataset matches the landed object; no execution started.");
                    output.unmatched.push(object.key);
                }
                Decision::Start(run) => {
                    // A repeated event names an execution that exists: count it, start nothing.
                    // (StartExecution alone would answer a same-input repeat with the running
                    // execution's ARN, indistinguishable from a start.)
                    let execution_arn =
                        format!("{}:{}", self.state_machine_arn.replacen(":stateMachine:", ":execution:", 1), run.id);
                    match self.sfn.describe_execution().execution_arn(&execution_arn).send().await {
                        Ok(_) => {
                            tracing::info!(run = %run.id, key = %run.key, "Duplicate event: the execution exists already.");
                            output.duplicates.push(run.id);
                            continue;
                        }
                        Err(SdkError::ServiceError(error)) if error.err().is_execution_does_not_exist() => {}
                        Err(error) => {
                            return Err(Diagnostic {
                                error_type: "StartExecutionFailed".to_string(),
                                error_message: format!("looking up run {}: {}", run.id, DisplayErrorContext(error)),
                            });
                        }
                    }
                    let input = serde_json::json!({ "run": run }).to_string();
                    let started = self
                        .sfn
                        .start_execution()
                        .state_machine_arn(&self.state_machine_arn)
                        .name(&run.id)
                        .input(input)
                        .send()
                        .await;
                    match started {
                        Ok(_) => {
                            tracing::info!(run = %run.id, dataset = %run.dataset, key = %run.key, "Execution started.");
                            output.started.push(run.id);
                        }
                        Err(SdkError::ServiceError(error)) if error.err().is_execution_already_exists() => {
                            tracing::info!(run = %run.id, key = %run.key, "Duplicate event: the execution exists already.");
                            output.duplicates.push(run.id);
                        }
                        Err(error) => {
                            return Err(Diagnostic {
                                error_type: "StartExecutionFailed".to_string(),
                                error_message: format!(
                                    "starting run {} for s3://{}/{}: {}",
                                    run.id,
                                    run.bucket,
                                    run.key,
                                    DisplayErrorContext(error)
                                ),
                            });
                        }
                    }
                }
            }
        }
        lakestar::metrics::emit(
            &[("Stage", "trigger")],
            &[
                ("ExecutionsStarted", output.started.len() as f64, "Count"),
                ("DuplicateEvents", output.duplicates.len() as f64, "Count"),
                ("UnmatchedObjects", output.unmatched.len() as f64, "Count"),
                ("IgnoredObjects", output.ignored as f64, "Count"),
            ],
        );
        Ok(output)
    }
}
