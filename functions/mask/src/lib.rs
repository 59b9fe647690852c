//! The mask Lambda: processed → curated star tables with PII masked. Thin: it parses the
//! state document and calls [`lakestar::mask::mask`].

use lakestar::contract::Contract;
use lakestar::lake::Lake;
use lakestar::mask::{MaskOutput, MaskingKey};
use lakestar::state::StageInput;
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::Value;

/// What the function builds once per cold start: the lake client, the contract and the key.
#[derive(Debug, Clone)]
pub struct MaskFunction {
    lake: Lake,
    contract: Contract,
    key: MaskingKey,
}

impl MaskFunction {
    /// Builds the function from its environment: `LAKE_BUCKET`, optional `LAKESTAR_CONFIG`,
    /// and the key from the Secrets Manager secret named by `LAKESTAR_MASKING_SECRET` (or,
    /// outside AWS, `LAKESTAR_MASKING_KEY`).
    pub async fn from_env() -> lakestar::Result<MaskFunction> {
        let lake = lakestar::env::lake(lakestar::env::s3_client().await)?;
        let contract = lakestar::env::contract(&lake).await?;
        let version = contract.masking.key_version.clone();
        let key = match std::env::var(lakestar::mask::SECRET_ENV) {
            Ok(secret_id) => {
                let config = aws_config::load_from_env().await;
                let client = aws_sdk_secretsmanager::Client::new(&config);
                MaskingKey::from_secrets_manager(&client, &secret_id, &version).await?
            }
            Err(_) => match std::env::var(lakestar::mask::KEY_ENV) {
                Ok(text) => MaskingKey::from_secret_string(&text, &version)?,
                Err(_) => {
                    return Err(lakestar::Error::Configuration(format!(
                        "set {} to the masking key's secret id (or {} outside AWS)",
                        lakestar::mask::SECRET_ENV,
                        lakestar::mask::KEY_ENV
                    )));
                }
            },
        };
        Ok(MaskFunction { lake, contract, key })
    }

    /// A function over an explicit lake, contract and key (the offline stack and tests).
    pub fn new(lake: Lake, contract: Contract, key: MaskingKey) -> MaskFunction {
        MaskFunction { lake, contract, key }
    }

    /// Handles one invocation: the state document (with its `validate` section) in, the
    /// `mask` section out.
    pub async fn handle(&self, event: LambdaEvent<Value>) -> Result<MaskOutput, Diagnostic> {
        let input = StageInput::from_value(event.payload)?;
        let output = lakestar::mask::mask(&self.lake, &self.contract, &self.key, &input.run, input.validate()?).await?;
        Ok(output)
    }
}
