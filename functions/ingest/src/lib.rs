//! The ingest Lambda: a landing object becomes raw Parquet. Thin: it parses the state
//! document and calls [`lakestar::ingest::ingest`].

use lakestar::contract::Contract;
use lakestar::ingest::IngestOutput;
use lakestar::lake::Lake;
use lakestar::state::StageInput;
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::Value;

/// What the function builds once per cold start: the lake client and the contract.
#[derive(Debug, Clone)]
pub struct IngestFunction {
    lake: Lake,
    contract: Contract,
}

impl IngestFunction {
    /// Builds the function from its environment (`LAKE_BUCKET`, optional `LAKESTAR_CONFIG`).
    pub async fn from_env() -> lakestar::Result<IngestFunction> {
        let lake = lakestar::env::lake(lakestar::env::s3_client().await)?;
        let contract = lakestar::env::contract(&lake).await?;
        Ok(IngestFunction { lake, contract })
    }

    /// A function over an explicit lake and contract (the offline stack and tests).
    pub fn new(lake: Lake, contract: Contract) -> IngestFunction {
        IngestFunction { lake, contract }
    }

    /// Handles one invocation: the state document in, the `ingest` section out.
    pub async fn handle(&self, event: LambdaEvent<Value>) -> Result<IngestOutput, Diagnostic> {
        let input = StageInput::from_value(event.payload)?;
        let output = lakestar::ingest::ingest(&self.lake, &self.contract, &input.run).await?;
        Ok(output)
    }
}
