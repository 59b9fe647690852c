//! The one stage interface: the four stages by name, what they run with ([`StageContext`]),
//! and the one dispatch table ([`Stage::run`]) that the Lambda handlers, the offline stack
//! and the benchmark all call.

use serde::Serialize;

use crate::contract::Contract;
use crate::ingest::IngestOutput;
use crate::lake::Lake;
use crate::load::LoadOutput;
use crate::mask::{MaskOutput, MaskingKey};
use crate::state::{Action, State};
use crate::validate::ValidateOutput;
use crate::warehouse::Warehouse;
use crate::{Error, Result};

/// The Lambda service's errors a Task retries: a service fault, throttling, the invoke call
/// failing or timing out on the client.
pub const LAMBDA_SERVICE_ERRORS: [&str; 5] = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "Lambda.ClientExecutionTimeoutException",
];

/// A stage of the pipeline, as the state machine's Task states run them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stage {
    /// Landing object → raw Parquet, archive, parse rejects.
    Ingest,
    /// Raw → processed and quarantine, with the quality gate's verdict.
    Validate,
    /// Processed → curated star tables, PII masked.
    Mask,
    /// Curated → the warehouse, with the quality report.
    Load,
}

impl Stage {
    /// Every stage, in pipeline order.
    pub const ALL: [Stage; 4] = [Stage::Ingest, Stage::Validate, Stage::Mask, Stage::Load];

    /// The stage's name: its section of the state and its fault-injection name (`ingest`).
    pub fn name(self) -> &'static str {
        match self {
            Stage::Ingest => "ingest",
            Stage::Validate => "validate",
            Stage::Mask => "mask",
            Stage::Load => "load",
        }
    }

    /// The stage's Task state in `statemachine/pipeline.asl.json` (`Ingest`).
    pub fn state_name(self) -> &'static str {
        match self {
            Stage::Ingest => "Ingest",
            Stage::Validate => "Validate",
            Stage::Mask => "Mask",
            Stage::Load => "Load",
        }
    }

    /// The stage's function binary (`lakestar-ingest`), as the template names it.
    pub fn binary(self) -> &'static str {
        match self {
            Stage::Ingest => "lakestar-ingest",
            Stage::Validate => "lakestar-validate",
            Stage::Mask => "lakestar-mask",
            Stage::Load => "lakestar-load",
        }
    }

    /// The error types its Task state retries: the Lambda service's own
    /// ([`LAMBDA_SERVICE_ERRORS`]), then the transient errors ([`Error::TRANSIENT`]) this stage
    /// can raise. `statemachine/pipeline.asl.json` lists exactly these (a test holds it).
    pub fn retried_errors(self) -> Vec<&'static str> {
        let raises = |error_type: &str| match error_type {
            "WarehouseUnavailable" | "CatalogUnavailable" => self == Stage::Load,
            // The trigger's and the extract function's, never a stage's.
            "StepFunctionsUnavailable" | "SourceUnavailable" => false,
            _ => true,
        };
        LAMBDA_SERVICE_ERRORS
            .iter()
            .copied()
            .chain(Error::TRANSIENT.iter().copied().filter(|kind| raises(kind)))
            .collect()
    }

    /// The stage of that name (`ingest`, …).
    pub fn parse(name: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|stage| stage.name() == name)
    }

    /// Runs this stage on `state`: the one dispatch from a stage (and the state's
    /// [`Action`], for the Tasks its function serves besides) to its code.
    pub async fn run(self, context: &StageContext, state: &State) -> Result<StageOutput> {
        let (lake, contract, run) = (&context.lake, &context.contract, &state.run);
        Ok(match (self, state.action) {
            (Stage::Ingest, None) => StageOutput::Ingest(crate::ingest::ingest(lake, contract, run).await?),
            (Stage::Validate, None) => {
                StageOutput::Validate(crate::validate::validate(lake, contract, run, state.ingest()?).await?)
            }
            (Stage::Validate, Some(Action::EnforceQualityGate)) => {
                StageOutput::Validate(crate::validate::enforce_gate(contract, run, state.validate()?)?)
            }
            (Stage::Mask, None) => {
                let key = context.masking_key.as_ref().ok_or_else(|| context.missing("a masking key", self))?;
                let validated = state.validate()?;
                // Columns the run evolved travel on as if the contract declared them.
                let contract = &contract.evolved(&run.dataset, &validated.drift.evolved);
                StageOutput::Mask(
                    crate::mask::mask_holding(lake, contract, key, run, validated, context.held_bytes).await?,
                )
            }
            (Stage::Load, None) => {
                let warehouse = context.warehouse.as_ref().ok_or_else(|| context.missing("a warehouse", self))?;
                let upstream = crate::load::Upstream {
                    ingest: state.ingest.as_ref(),
                    validated: state.validate()?,
                    masked: state.mask()?,
                };
                let catalog = context.catalog.as_ref();
                let contract = &contract.evolved(&run.dataset, &upstream.validated.drift.evolved);
                StageOutput::Load(crate::load::load(lake, contract, warehouse, catalog, run, upstream).await?)
            }
            (Stage::Load, Some(Action::RecordRejectedRun)) => {
                let warehouse = context.warehouse.as_ref().ok_or_else(|| context.missing("a warehouse", self))?;
                let validated = state.validate()?;
                StageOutput::Load(
                    crate::load::record_rejected_run(lake, warehouse, run, state.ingest.as_ref(), validated).await?,
                )
            }
            (stage, Some(action)) => {
                return Err(Error::InvalidInput(format!(
                    "run {}: the {stage} function does not do `{action:?}`; the state machine's Task sends it to the wrong function",
                    run.id
                )));
            }
        })
    }

    /// Runs this stage on a state document and returns its section as JSON: what a Lambda
    /// invocation does.
    pub async fn invoke(self, context: &StageContext, payload: serde_json::Value) -> Result<serde_json::Value> {
        let state = State::from_value(payload)?;
        self.run(context, &state).await?.to_value()
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What a stage reports: its section of the state.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum StageOutput {
    /// The `ingest` section.
    Ingest(IngestOutput),
    /// The `validate` section.
    Validate(ValidateOutput),
    /// The `mask` section.
    Mask(MaskOutput),
    /// The `load` section.
    Load(LoadOutput),
}

impl StageOutput {
    /// The section as JSON.
    pub fn to_value(&self) -> Result<serde_json::Value> {
        serde_json::to_value(self).map_err(|error| Error::Internal(format!("serialising a stage's output: {error}")))
    }

    /// The `ingest` section, or an error naming what came instead.
    pub fn into_ingest(self) -> Result<IngestOutput> {
        match self {
            StageOutput::Ingest(output) => Ok(output),
            other => Err(other.unexpected("ingest")),
        }
    }

    /// The `validate` section, or an error naming what came instead.
    pub fn into_validate(self) -> Result<ValidateOutput> {
        match self {
            StageOutput::Validate(output) => Ok(output),
            other => Err(other.unexpected("validate")),
        }
    }

    /// The `mask` section, or an error naming what came instead.
    pub fn into_mask(self) -> Result<MaskOutput> {
        match self {
            StageOutput::Mask(output) => Ok(output),
            other => Err(other.unexpected("mask")),
        }
    }

    /// The `load` section, or an error naming what came instead.
    pub fn into_load(self) -> Result<LoadOutput> {
        match self {
            StageOutput::Load(output) => Ok(output),
            other => Err(other.unexpected("load")),
        }
    }

    fn unexpected(&self, wanted: &str) -> Error {
        Error::Internal(format!("a stage answered {:?} where the {wanted} section was expected", self.stage()))
    }

    /// The stage whose section this is.
    pub fn stage(&self) -> Stage {
        match self {
            StageOutput::Ingest(_) => Stage::Ingest,
            StageOutput::Validate(_) => Stage::Validate,
            StageOutput::Mask(_) => Stage::Mask,
            StageOutput::Load(_) => Stage::Load,
        }
    }

    /// Sets the section into `state`.
    pub fn record(self, state: &mut State) {
        match self {
            StageOutput::Ingest(output) => state.ingest = Some(output),
            StageOutput::Validate(output) => state.validate = Some(output),
            StageOutput::Mask(output) => state.mask = Some(output),
            StageOutput::Load(output) => state.load = Some(output),
        }
    }
}

/// What the stages run with: the lake, the contract, and what mask and load need besides.
#[derive(Debug, Clone)]
pub struct StageContext {
    /// The lake bucket.
    pub lake: Lake,
    /// The contract.
    pub contract: Contract,
    /// The masking key (mask only).
    pub masking_key: Option<MaskingKey>,
    /// The warehouse (load only).
    pub warehouse: Option<Warehouse>,
    /// How many bytes of masked fact rows mask may hold in memory.
    pub held_bytes: usize,
    /// The Glue Data Catalog database the load keeps the curated tables in, if any.
    pub catalog: Option<crate::lake::glue::GlueCatalog>,
}

impl StageContext {
    /// A context over a lake and a contract, holding what the environment allows in memory.
    pub fn new(lake: Lake, contract: Contract) -> StageContext {
        StageContext {
            lake,
            contract,
            masking_key: None,
            warehouse: None,
            held_bytes: crate::config::Environment::get().mask_held_bytes(),
            catalog: None,
        }
    }

    /// With a Glue Data Catalog database for the curated tables.
    pub fn with_catalog(mut self, catalog: crate::lake::glue::GlueCatalog) -> StageContext {
        self.catalog = Some(catalog);
        self
    }

    /// With the masking key.
    pub fn with_masking_key(mut self, key: MaskingKey) -> StageContext {
        self.masking_key = Some(key);
        self
    }

    /// With the warehouse.
    pub fn with_warehouse(mut self, warehouse: Warehouse) -> StageContext {
        self.warehouse = Some(warehouse);
        self
    }

    fn missing(&self, what: &str, stage: Stage) -> Error {
        Error::Configuration(format!("the {stage} stage needs {what}, and this function was built without one"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_machine_retries_exactly_what_the_code_calls_transient() {
        let definition: serde_json::Value =
            serde_json::from_str(include_str!("../../statemachine/pipeline.asl.json")).expect("the definition is JSON");
        let functions = [
            ("${IngestFunctionArn}", Stage::Ingest),
            ("${ValidateFunctionArn}", Stage::Validate),
            ("${MaskFunctionArn}", Stage::Mask),
            ("${LoadFunctionArn}", Stage::Load),
        ];
        let states = definition["States"].as_object().expect("states");
        let tasks: Vec<(&String, &serde_json::Value)> =
            states.iter().filter(|(_, state)| state["Type"] == "Task").collect();
        assert!(tasks.len() >= Stage::ALL.len(), "every stage has its Task");
        for (name, state) in tasks {
            let function = state["Parameters"]["FunctionName"].as_str().expect("a Lambda Task");
            let stage = functions
                .iter()
                .find(|(arn, _)| *arn == function)
                .map(|(_, stage)| *stage)
                .expect("a stage's function");
            assert!(state["TimeoutSeconds"].as_u64().is_some_and(|seconds| seconds <= 900), "{name}: TimeoutSeconds");
            let retry = &state["Retry"];
            let listed: Vec<&str> = retry
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|retrier| retrier["ErrorEquals"].as_array().into_iter().flatten())
                .filter_map(serde_json::Value::as_str)
                .collect();
            assert_eq!(listed, stage.retried_errors(), "the {name} Task's Retry lists ({stage}'s function)");
        }
    }
}
