//! The extract function: invoked by EventBridge Scheduler (or by hand), it extracts the
//! contract's sources into the lake's `landing/`, whose S3 events start the executions. Its
//! input names what to extract: `{}` (every source that is due, as the schedule sends),
//! `{"sources": ["shop"]}`, `{"due": false}` to extract whether due or not.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::extract::{Extractor, Options};
use crate::function::ContractSource;
use crate::{Error, Result};

/// What an invocation asks.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtractRequest {
    /// The sources; default every source of the contract.
    #[serde(default)]
    pub sources: Vec<String>,
    /// Only those whose `every` has passed since their last extraction. Default true.
    #[serde(default)]
    pub due: Option<bool>,
}

/// The extract function: the extractor over the lake and where the contract is.
#[derive(Debug)]
pub struct ExtractFunction {
    extractor: Extractor,
    contract: ContractSource,
}

impl ExtractFunction {
    /// A function over `extractor`'s lake, reading the contract from `contract`.
    pub fn new(extractor: Extractor, contract: ContractSource) -> ExtractFunction {
        ExtractFunction { extractor, contract }
    }

    /// Extracts what `payload` asks; every named source is tried, and the first failure is
    /// the invocation's error (its type `SourceUnavailable` or `SourceFailed`), naming all.
    pub async fn handle(&self, payload: &Value) -> Result<Value> {
        let request: ExtractRequest = if payload.is_null() {
            ExtractRequest::default()
        } else {
            serde_json::from_value(payload.clone()).map_err(|error| {
                Error::InvalidInput(format!(
                    "{error}; the extract function takes `{{\"sources\": [\"<name>\"], \"due\": true}}` (both optional)"
                ))
            })?
        };
        let contract = self.contract.current().await?;
        let sources = contract.sources_named(&request.sources)?;
        let options = Options { due_only: request.due.unwrap_or(true), stop_after_pages: None };
        let mut extractions = Vec::new();
        let mut failures: Vec<Error> = Vec::new();
        for source in sources {
            match self.extractor.extract(source, &options).await {
                Ok(extraction) => extractions.push(extraction),
                Err(error) => {
                    tracing::error!(source = %source.name, error = error.error_type(), "extraction failed: {error}");
                    failures.push(error);
                }
            }
        }
        if let Some(first) = failures.first() {
            let messages: Vec<String> = failures.iter().map(ToString::to_string).collect();
            let transient = failures.iter().all(Error::is_transient);
            let name = match first {
                Error::Source { source_name, .. } => source_name.clone(),
                _ => String::new(),
            };
            return Err(Error::Source { source_name: name, transient, message: messages.join("; ") });
        }
        Ok(json!({ "extractions": extractions }))
    }
}

/// The function the environment describes: the lake bucket, the contract's location, the
/// Secrets Manager client for sources that name a secret. No call is made.
pub async fn from_env(environment: &crate::config::Environment) -> Result<ExtractFunction> {
    let shared = aws_config::load_from_env().await;
    let client = super::s3_client_of(&shared, environment);
    let lake = super::lake(client.clone(), environment)?;
    let contract = ContractSource::at(&environment.contract_location(lake.bucket()), &client)?;
    let secrets = aws_sdk_secretsmanager::Client::new(&shared);
    Ok(ExtractFunction::new(Extractor::new(lake, Some(secrets)), contract))
}
