//! The validate Lambda: raw → processed and quarantine, with the quality gate's verdict.
//! Thin: it parses the state document and calls [`lakestar::validate::validate`].

use lakestar::contract::Contract;
use lakestar::lake::Lake;
use lakestar::state::StageInput;
use lakestar::validate::ValidateOutput;
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::Value;

/// What the function builds once per cold start: the lake client and the contract.
#[derive(Debug, Clone)]
pub struct ValidateFunction {
    lake: Lake,
    contract: Contract,
}

impl ValidateFunction {
    /// Builds the function from its environment (`LAKE_BUCKET`, optional `LAKESTAR_CONFIG`).
    pub async fn from_env() -> lakestar::Result<ValidateFunction> {
        let lake = lakestar::env::lake(lakestar::env::s3_client().await)?;
        let contract = lakestar::env::contract(&lake).await?;
        Ok(ValidateFunction { lake, contract })
    }

    /// A function over an explicit lake and contract (the offline stack and tests).
    pub fn new(lake: Lake, contract: Contract) -> ValidateFunction {
        ValidateFunction { lake, contract }
    }

    /// Handles one invocation: the state document (with its `ingest` section) in, the
    /// `validate` section out. A failed quality gate is not an error here: the state
    /// machine's Choice state fails the execution with `QualityGateFailed` and the cause.
    pub async fn handle(&self, event: LambdaEvent<Value>) -> Result<ValidateOutput, Diagnostic> {
        let input = StageInput::from_value(event.payload)?;
        let output = lakestar::validate::validate(&self.lake, &self.contract, &input.run, input.ingest()?).await?;
        Ok(output)
    }
}
