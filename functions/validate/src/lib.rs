//! The validate Lambda. Not built yet: it fails every invocation with the error
//! `NotImplemented`, so a state machine that reaches it stops with a clear cause.

use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::Value;

/// Handles one invocation.
pub async fn handle(_event: LambdaEvent<Value>) -> Result<Value, Diagnostic> {
    Err(lakestar::Error::NotImplemented("validate").into())
}
