//! The mask Lambda: processed → curated star tables with PII masked. Thin: every stage's handler is
//! [`lakestar::function::StageFunction`]; this crate names the stage and its output type.

use std::sync::Arc;

use lakestar::contract::Contract;
use lakestar::function::StageFunction;
use lakestar::lake::Lake;
use lakestar::mask::MaskOutput;
use lakestar::mask::MaskingKey;
use lakestar::stage::{Stage, StageContext};
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::Value;

/// The mask function; clones share one function.
#[derive(Debug, Clone)]
pub struct MaskFunction(Arc<StageFunction>);

impl MaskFunction {
    /// A function over an explicit lake and contract and key (the offline stack and tests).
    pub fn new(lake: Lake, contract: Contract, key: MaskingKey) -> MaskFunction {
        MaskFunction(Arc::new(StageFunction::new(Stage::Mask, StageContext::new(lake, contract).with_masking_key(key))))
    }

    /// Handles one invocation: the state document in, the `mask` section out.
    pub async fn handle(&self, event: LambdaEvent<Value>) -> Result<MaskOutput, Diagnostic> {
        Ok(self.0.handle(event).await?.into_mask()?)
    }
}
