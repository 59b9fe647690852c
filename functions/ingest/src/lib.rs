//! The ingest Lambda: a landing object becomes raw Parquet. Thin: every stage's handler is
//! [`lakestar::function::StageFunction`]; this crate names the stage and its output type.

use std::sync::Arc;

use lakestar::contract::Contract;
use lakestar::function::StageFunction;
use lakestar::ingest::IngestOutput;
use lakestar::lake::Lake;
use lakestar::stage::{Stage, StageContext};

use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::Value;

/// The ingest function; clones share one function.
#[derive(Debug, Clone)]
pub struct IngestFunction(Arc<StageFunction>);

impl IngestFunction {
    /// A function over an explicit lake and contract (the offline stack and tests).
    pub fn new(lake: Lake, contract: Contract) -> IngestFunction {
        IngestFunction(Arc::new(StageFunction::new(Stage::Ingest, StageContext::new(lake, contract))))
    }

    /// Handles one invocation: the state document in, the `ingest` section out.
    pub async fn handle(&self, event: LambdaEvent<Value>) -> Result<IngestOutput, Diagnostic> {
        Ok(self.0.handle(event).await?.into_ingest()?)
    }
}
