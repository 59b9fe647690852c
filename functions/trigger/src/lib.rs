//! The trigger Lambda: S3 notifications and EventBridge events in, one Step Functions
//! execution per landed object out, named by its run id so that a repeated event starts
//! nothing new.

use aws_sdk_sfn::Client;
use aws_sdk_sfn::error::{ProvideErrorMetadata, SdkError};
use lakestar::Error;
use lakestar::config::Environment;
use lakestar::contract::Contract;
use lakestar::function::ContractSource;
use lakestar::trigger::{Decision, TriggerOutput, decide, landed_objects};
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::Value;

/// The environment variable holding the state machine's ARN.
pub const STATE_MACHINE_ENV: &str = lakestar::config::STATE_MACHINE_ARN;

/// What the function builds once per cold start: clients only, no network call.
#[derive(Debug)]
pub struct TriggerFunction {
    sfn: Client,
    state_machine_arn: String,
    /// The lake bucket: events of any other bucket are refused.
    lake_bucket: String,
    contract: ContractSource,
}

impl TriggerFunction {
    /// Builds the function from its environment: `LAKE_BUCKET` (for the contract),
    /// `STATE_MACHINE_ARN`, optional `LAKESTAR_CONFIG`. Throttled calls are retried by the
    /// SDK (standard mode, 5 attempts, exponential backoff with jitter).
    pub async fn from_env() -> lakestar::Result<TriggerFunction> {
        let environment = Environment::get();
        let client = lakestar::function::s3_client(environment).await;
        let lake = lakestar::function::lake(client.clone(), environment)?;
        let contract = ContractSource::at(&environment.contract_location(lake.bucket()), &client)?;
        let state_machine_arn = environment
            .state_machine_arn
            .clone()
            .ok_or_else(|| Error::Configuration(format!("set {STATE_MACHINE_ENV} to the state machine's ARN")))?;
        let config = aws_config::load_from_env().await;
        let sfn = Client::from_conf(
            aws_sdk_sfn::config::Builder::from(&config)
                .retry_config(aws_sdk_sfn::config::retry::RetryConfig::standard().with_max_attempts(5))
                .build(),
        );
        Ok(TriggerFunction { sfn, state_machine_arn, lake_bucket: lake.bucket().to_string(), contract })
    }

    /// A function over an explicit client, state machine, lake bucket and contract (tests,
    /// the offline stack).
    pub fn new(
        sfn: Client,
        state_machine_arn: impl Into<String>,
        lake_bucket: impl Into<String>,
        contract: Contract,
    ) -> TriggerFunction {
        TriggerFunction {
            sfn,
            state_machine_arn: state_machine_arn.into(),
            lake_bucket: lake_bucket.into(),
            contract: ContractSource::Fixed(contract),
        }
    }

    /// Handles one event: every record is decided on its own and, when it is a run, started.
    /// A record that cannot be read is reported in the output (and logged); the others still
    /// start. Only a failure to start a run fails the invocation, so that Lambda retries it
    /// (starting an execution again is a counted duplicate, never a second run).
    pub async fn handle(&self, event: LambdaEvent<Value>) -> Result<TriggerOutput, Diagnostic> {
        let records = landed_objects(event.payload)?;
        let contract = self.contract.current().await?;
        let mut output = TriggerOutput::default();
        for record in records {
            let object = match record {
                Ok(object) => object,
                Err(why) => {
                    tracing::warn!(why = %why, "An event record cannot be read; the others are decided on their own.");
                    output.invalid.push(why);
                    continue;
                }
            };
            match decide(&contract, &self.lake_bucket, &object) {
                Decision::Foreign(why) => {
                    tracing::warn!(bucket = %object.bucket, key = %object.key, why = %why, "Event of another bucket refused.");
                    output.foreign += 1;
                }
                Decision::Ignore(why) => {
                    tracing::info!(key = %object.key, why = %why, "Object ignored.");
                    output.ignored += 1;
                }
                Decision::Unmatched(why) => {
                    tracing::warn!(key = %object.key, why = %why, "No dataset matches the landed object; no execution started.");
                    output.unmatched.push(object.key);
                }
                Decision::Start(run) => {
                    if self.start(&run).await? {
                        tracing::info!(run = %run.id, dataset = %run.dataset, key = %run.key, "Execution started.");
                        output.started.push(run.id);
                    } else {
                        tracing::info!(run = %run.id, key = %run.key, "Duplicate event: the execution exists already.");
                        output.duplicates.push(run.id);
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
                ("ForeignObjects", output.foreign as f64, "Count"),
                ("InvalidRecords", output.invalid.len() as f64, "Count"),
            ],
        );
        Ok(output)
    }

    /// Starts the run's execution; `false` when it exists already (a repeated event names an
    /// execution that exists: StartExecution alone would answer a same-input repeat with the
    /// running execution's ARN, indistinguishable from a start).
    async fn start(&self, run: &lakestar::run::RunDescriptor) -> lakestar::Result<bool> {
        let execution_arn =
            format!("{}:{}", self.state_machine_arn.replacen(":stateMachine:", ":execution:", 1), run.id);
        match self.sfn.describe_execution().execution_arn(&execution_arn).send().await {
            Ok(_) => return Ok(false),
            Err(SdkError::ServiceError(error)) if error.err().is_execution_does_not_exist() => {}
            Err(error) => return Err(step_functions_error("DescribeExecution", &run.id, error)),
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
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(error)) if error.err().is_execution_already_exists() => Ok(false),
            Err(error) => Err(step_functions_error("StartExecution", &run.id, error)),
        }
    }
}

/// A Step Functions call that failed: throttling, a service fault or the network is worth a
/// retry; a refusal (access denied, no such state machine, an invalid name) is not.
fn step_functions_error<E: ProvideErrorMetadata + std::error::Error + 'static>(
    operation: &'static str,
    run: &str,
    error: SdkError<E>,
) -> Error {
    let transient = match &error {
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or_default();
            code.contains("Throttl")
                || code.contains("ServiceUnavailable")
                || code.contains("InternalServer")
                || service.raw().status().is_server_error()
        }
        _ => true,
    };
    Error::StepFunctions { operation, run: run.to_string(), transient, message: lakestar::error_chain(&error) }
}
