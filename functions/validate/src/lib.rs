//! The validate Lambda: raw → processed and quarantine, with the quality gate's verdict. Thin: every stage's handler is
//! [`lakestar::function::StageFunction`]; this crate names the stage and its output type.

use std::sync::Arc;

use lakestar::contract::Contract;
use lakestar::function::StageFunction;
use lakestar::lake::Lake;
use lakestar::stage::{Stage, StageContext};
use lakestar::validate::ValidateOutput;

use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::Value;

/// The validate function; clones share one function.
#[derive(Debug, Clone)]
pub struct ValidateFunction(Arc<StageFunction>);

impl ValidateFunction {
    /// A function over an explicit lake and contract (the offline stack and tests).
    pub fn new(lake: Lake, contract: Contract) -> ValidateFunction {
        ValidateFunction(Arc::new(StageFunction::new(Stage::Validate, StageContext::new(lake, contract))))
    }

    /// Handles one invocation: the state document in, the `validate` section out.
    pub async fn handle(&self, event: LambdaEvent<Value>) -> Result<ValidateOutput, Diagnostic> {
        Ok(self.0.handle(event).await?.into_validate()?)
    }
}
