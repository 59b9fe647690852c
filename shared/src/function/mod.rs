//! The Lambda side of every function: built in `main` from the environment with no network
//! call, served by the Lambda runtime, each invocation fetching what it needs (the contract,
//! checked by ETag every time; the masking key and the warehouse on first use) so that every
//! failure is a named error the state machine can retry or report. The function crates'
//! `main` is one call: [`serve_stage`].

#[cfg(feature = "embedded-s3")]
pub mod check;
#[cfg(feature = "extract")]
pub mod extract;
#[cfg(feature = "embedded-s3")]
pub mod runtime_api;
mod sources;

use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::Value;

pub use sources::{ContractSource, KeySource, WarehouseSource};

use crate::config::Environment;
use crate::lake::Lake;
use crate::stage::{Stage, StageContext, StageOutput};
use crate::{Error, Result};

/// An S3 client from the standard AWS configuration chain (no call is made). The SDK reads
/// `AWS_ENDPOINT_URL_S3` for another endpoint; [`crate::config::S3_PATH_STYLE`] forces
/// path-style addressing.
pub async fn s3_client(environment: &Environment) -> aws_sdk_s3::Client {
    s3_client_of(&aws_config::load_from_env().await, environment)
}

/// [`s3_client`] from a configuration loaded already.
fn s3_client_of(shared: &aws_config::SdkConfig, environment: &Environment) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(shared).force_path_style(environment.s3_path_style).build(),
    )
}

/// The lake the environment names ([`crate::config::LAKE_BUCKET`]).
pub fn lake(client: aws_sdk_s3::Client, environment: &Environment) -> Result<Lake> {
    let bucket = environment
        .lake_bucket
        .clone()
        .ok_or_else(|| Error::Configuration(format!("set {} to the lake bucket's name", crate::config::LAKE_BUCKET)))?;
    Ok(Lake::new(client, bucket))
}

/// What a stage function runs with, before the invocation that needs it.
#[derive(Debug)]
pub struct Resources {
    lake: Lake,
    contract: ContractSource,
    masking_key: KeySource,
    warehouse: WarehouseSource,
    held_bytes: usize,
    catalog: Option<crate::lake::glue::GlueCatalog>,
}

impl Resources {
    /// Resources over a lake whose contract comes from `contract` (checked at every
    /// invocation), with the key and warehouse given (the offline stack).
    pub fn new(lake: Lake, contract: ContractSource, context: &StageContext) -> Resources {
        Resources {
            lake,
            contract,
            masking_key: context.masking_key.clone().map_or(KeySource::None, KeySource::Fixed),
            warehouse: context.warehouse.clone().map_or(WarehouseSource::None, WarehouseSource::Fixed),
            held_bytes: context.held_bytes,
            catalog: context.catalog.clone(),
        }
    }

    /// The same resources with the warehouse from `warehouse` (a secret, a URL).
    pub fn with_warehouse(mut self, warehouse: WarehouseSource) -> Resources {
        self.warehouse = warehouse;
        self
    }

    /// Resources given outright (the offline stack and tests).
    pub fn fixed(context: StageContext) -> Resources {
        Resources {
            lake: context.lake,
            contract: ContractSource::Fixed(context.contract),
            masking_key: context.masking_key.map_or(KeySource::None, KeySource::Fixed),
            warehouse: context.warehouse.map_or(WarehouseSource::None, WarehouseSource::Fixed),
            held_bytes: context.held_bytes,
            catalog: context.catalog,
        }
    }

    /// The resources `stage` needs, from the environment: clients are built, nothing is
    /// fetched. A missing setting is an error here, which [`StageFunction`] reports on every
    /// invocation rather than failing the cold start.
    pub async fn from_env(stage: Stage, environment: &Environment) -> Result<Resources> {
        // One configuration for every client (loading it reads the environment and files).
        let shared = aws_config::load_from_env().await;
        let client = s3_client_of(&shared, environment);
        let lake = lake(client.clone(), environment)?;
        let contract = ContractSource::at(&environment.contract_location(lake.bucket()), &client)?;
        let secrets = || async { aws_sdk_secretsmanager::Client::new(&shared) };
        let masking_key = match (stage, &environment.masking_secret, &environment.masking_key) {
            (Stage::Mask, Some(secret_id), _) => {
                KeySource::Secret { client: secrets().await, secret_id: secret_id.clone(), cached: Default::default() }
            }
            (Stage::Mask, None, Some(text)) => KeySource::Text(text.clone()),
            (Stage::Mask, None, None) => {
                return Err(Error::Configuration(format!(
                    "set {} to the masking key's secret id (or {} outside AWS)",
                    crate::config::MASKING_SECRET,
                    crate::config::MASKING_KEY
                )));
            }
            _ => KeySource::None,
        };
        let warehouse = match (stage, &environment.database_secret, &environment.warehouse_url) {
            (Stage::Load, Some(secret_id), _) => WarehouseSource::Secret {
                client: secrets().await,
                secret_id: secret_id.clone(),
                environment: Box::new(environment.clone()),
                cached: Default::default(),
            },
            (Stage::Load, None, Some(url)) => WarehouseSource::Url { url: url.clone(), cached: Default::default() },
            (Stage::Load, None, None) => {
                return Err(Error::Configuration(format!(
                    "set {} to the RDS secret's id (or {} outside AWS)",
                    crate::config::DATABASE_SECRET,
                    crate::config::WAREHOUSE_URL
                )));
            }
            _ => WarehouseSource::None,
        };
        let catalog = match (stage, &environment.glue_database) {
            (Stage::Load, Some(database)) => {
                Some(crate::lake::glue::GlueCatalog::new(aws_sdk_glue::Client::new(&shared), database.clone()))
            }
            _ => None,
        };
        Ok(Resources { lake, contract, masking_key, warehouse, held_bytes: environment.mask_held_bytes(), catalog })
    }

    /// The context of one invocation: the contract as it stands now, the key and the
    /// warehouse once fetched.
    pub async fn context(&self) -> Result<StageContext> {
        let contract = self.contract.current().await?;
        let masking_key = self.masking_key.current(&contract.masking.key_version).await?;
        let warehouse = self.warehouse.current().await?;
        Ok(StageContext {
            lake: self.lake.clone(),
            contract,
            masking_key,
            warehouse,
            held_bytes: self.held_bytes,
            catalog: self.catalog.clone(),
        })
    }
}

/// One stage's Lambda function.
#[derive(Debug)]
pub struct StageFunction {
    stage: Stage,
    /// The resources, or why the environment does not describe them (reported by every
    /// invocation, as the error type and message Lambda shows).
    resources: Result<Resources, (String, String)>,
}

impl StageFunction {
    /// A function over given resources.
    pub fn new(stage: Stage, context: StageContext) -> StageFunction {
        StageFunction { stage, resources: Ok(Resources::fixed(context)) }
    }

    /// A function over resources of its own (the offline stack reads the contract from the
    /// lake bucket, as the cloud does).
    pub fn with_resources(stage: Stage, resources: Resources) -> StageFunction {
        StageFunction { stage, resources: Ok(resources) }
    }

    /// The function the environment describes (no network call; a missing setting is
    /// reported by each invocation).
    pub async fn from_env(stage: Stage) -> StageFunction {
        let resources = Resources::from_env(stage, Environment::get()).await.map_err(|error| {
            tracing::error!(stage = %stage, error_type = error.error_type(), "{error}");
            (error.error_type().to_string(), error.to_string())
        });
        StageFunction { stage, resources }
    }

    /// The stage it runs.
    pub fn stage(&self) -> Stage {
        self.stage
    }

    /// Handles one invocation: the state document in, the stage's section out.
    pub async fn handle(&self, event: LambdaEvent<Value>) -> Result<StageOutput, Diagnostic> {
        let resources = self.resources.as_ref().map_err(|(error_type, error_message)| Diagnostic {
            error_type: error_type.clone(),
            error_message: error_message.clone(),
        })?;
        let state = crate::state::State::from_value(event.payload).map_err(diagnostic)?;
        let outcome = match resources.context().await {
            Ok(context) => self.stage.run(&context, &state).await,
            Err(error) => Err(error),
        };
        match outcome {
            // The warehouse refused the credentials: the managed secret rotated since it was
            // read. Read it again, connect again, and try once more (the stage is idempotent).
            Err(error) if error.is_authentication_failure() => {
                tracing::warn!(stage = %self.stage, run = %state.run.id, "The warehouse refused the credentials; reading the secret again.");
                resources.warehouse.invalidate().await;
                let context = resources.context().await.map_err(diagnostic)?;
                self.stage.run(&context, &state).await.map_err(diagnostic)
            }
            outcome => outcome.map_err(diagnostic),
        }
    }
}

/// A Lambda error report: the stable error type and the message.
pub fn diagnostic(error: Error) -> Diagnostic {
    Diagnostic::from(error)
}

/// Initialises logging as Lambda expects: the level from `AWS_LAMBDA_LOG_LEVEL` (else
/// `RUST_LOG`, else info), JSON lines when `AWS_LAMBDA_LOG_FORMAT` is `JSON`, and in text
/// format no colour codes (CloudWatch shows them as garbage).
pub fn init_logging() {
    let environment = Environment::get();
    let level = environment.function_log_level.clone().unwrap_or_else(|| "info".to_string());
    let filter = tracing_subscriber::EnvFilter::try_new(level.to_ascii_lowercase())
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_target(false).without_time().with_ansi(false).with_env_filter(filter);
    let _ = if environment.function_log_json { builder.json().try_init() } else { builder.try_init() };
}

/// A stage function's whole `main`: logging, the function from the environment, the runtime.
pub async fn serve_stage(stage: Stage) -> Result<(), lambda_runtime::Error> {
    init_logging();
    let function = StageFunction::from_env(stage).await;
    let function = &function;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move { function.handle(event).await })).await
}
