//! The state document passed between Step Functions states: the run descriptor, and each
//! stage's section under its own key. Data never travels here, only keys and counts.

use serde::{Deserialize, Serialize};

use crate::ingest::IngestOutput;
use crate::load::LoadOutput;
use crate::mask::MaskOutput;
use crate::run::RunDescriptor;
use crate::validate::ValidateOutput;
use crate::{Error, Result};

/// The state a stage receives and extends. Sections of later stages are ignored by earlier ones.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    /// The run.
    pub run: RunDescriptor,
    /// The ingest stage's output, once it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingest: Option<IngestOutput>,
    /// The validate stage's output, once it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validate: Option<ValidateOutput>,
    /// The mask stage's output, once it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask: Option<MaskOutput>,
    /// The load stage's output, once it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<LoadOutput>,
    /// What a Task other than a stage's own asks of the stage's function (the state machine
    /// sets it in a Task's `Payload`); absent for the stage's own work.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
}

/// Work a stage's function does besides its stage, for a Task of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// The validate function evaluates the quality gate again, from the run's counts and the
    /// contract's thresholds as they are now: the `EnforceQualityGate` state, which a re-drive
    /// runs again after the thresholds changed.
    EnforceQualityGate,
    /// The load function records a run the quality gate stopped: its report and metrics.
    RecordRejectedRun,
}

impl State {
    /// The state of a run no stage has seen yet.
    pub fn new(run: RunDescriptor) -> State {
        State { run, ingest: None, validate: None, mask: None, load: None, action: None }
    }

    /// The ingest section, which every stage after ingest needs.
    pub fn ingest(&self) -> Result<&IngestOutput> {
        self.ingest.as_ref().ok_or_else(|| self.missing("ingest"))
    }

    /// The validate section, which mask and load need.
    pub fn validate(&self) -> Result<&ValidateOutput> {
        self.validate.as_ref().ok_or_else(|| self.missing("validate"))
    }

    /// The mask section, which load needs.
    pub fn mask(&self) -> Result<&MaskOutput> {
        self.mask.as_ref().ok_or_else(|| self.missing("mask"))
    }

    fn missing(&self, stage: &str) -> Error {
        Error::InvalidInput(format!(
            "run {}: the state has no `{stage}` section; run the {stage} stage first",
            self.run.id
        ))
    }

    /// Parses a state document, with an error that says what is missing.
    pub fn from_value(value: serde_json::Value) -> Result<State> {
        serde_json::from_value(value).map_err(|error| {
            Error::InvalidInput(format!("{error}; a stage expects the state document `{{\"run\": {{\"id\", \"dataset\", \"bucket\", \"key\", \"size\", \"time\"}}, ...}}`"))
        })
    }
}
