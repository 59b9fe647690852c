//! The load Lambda: the run's curated star table into the warehouse, with its quality report. Thin: every stage's handler is
//! [`lakestar::function::StageFunction`]; this crate names the stage and its output type.

use std::sync::Arc;

use lakestar::contract::Contract;
use lakestar::function::StageFunction;
use lakestar::lake::Lake;
use lakestar::load::LoadOutput;
use lakestar::stage::{Stage, StageContext};
use lakestar::warehouse::Warehouse;
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::Value;

/// The load function; clones share one function.
#[derive(Debug, Clone)]
pub struct LoadFunction(Arc<StageFunction>);

impl LoadFunction {
    /// A function over an explicit lake and contract and warehouse (the offline stack and tests).
    pub fn new(lake: Lake, contract: Contract, warehouse: Warehouse) -> LoadFunction {
        LoadFunction(Arc::new(StageFunction::new(
            Stage::Load,
            StageContext::new(lake, contract).with_warehouse(warehouse),
        )))
    }

    /// Handles one invocation: the state document in, the `load` section out.
    pub async fn handle(&self, event: LambdaEvent<Value>) -> Result<LoadOutput, Diagnostic> {
        Ok(self.0.handle(event).await?.into_load()?)
    }
}
