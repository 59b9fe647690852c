//! A local interpreter of the Amazon States Language: the same definition the cloud runs
//! (`statemachine/pipeline.asl.json`), executed in process with tasks dispatched to the
//! function crates' handlers.
//!
//! Supported: Task, Choice, Pass, Wait, Succeed, Fail, Parallel, Map (inline); `InputPath`,
//! `Parameters`, `ResultSelector`, `ResultPath`, `OutputPath`; Retry (with `BackoffRate`,
//! `MaxDelaySeconds`, `JitterStrategy`) and Catch; `States.ALL`, `States.TaskFailed`,
//! `States.Timeout`; the intrinsics of [`intrinsics::SUPPORTED`]. Anything else in a
//! definition is refused when it is loaded, naming the state and the field.

pub mod choice;
mod definition;
mod interpreter;
pub mod intrinsics;
pub mod path;

pub use definition::{Kind, Machine, Source, State, WaitFor};
pub use interpreter::{Checkpoint, Event, Interpreter, Outcome, Timing};

use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An error as Step Functions names it: `error` (e.g. `States.Timeout`, `S3Unavailable`) and
/// a human-readable `cause`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// The error name that Retry and Catch match.
    pub error: String,
    /// What happened.
    pub cause: String,
}

impl Failure {
    /// A `States.Runtime` error (a path that does not resolve, a bad input to a state).
    pub fn runtime(cause: impl Into<String>) -> Failure {
        Failure { error: "States.Runtime".to_string(), cause: cause.into() }
    }

    /// Whether an `ErrorEquals` list matches this error.
    fn matches(&self, names: &[String]) -> bool {
        names.iter().any(|name| match name.as_str() {
            // Neither catches a runtime error of the definition itself.
            "States.ALL" => self.error != "States.Runtime",
            "States.TaskFailed" => !matches!(self.error.as_str(), "States.Runtime" | "States.Timeout"),
            other => other == self.error,
        })
    }
}

/// A boxed future, for the recursion of Parallel and Map.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Runs Task states: the resource ARN and the effective parameters in, the result out.
pub trait Invoker: Send + Sync {
    /// Invokes `resource` with `parameters`.
    fn invoke<'a>(&'a self, resource: &'a str, parameters: Value) -> BoxFuture<'a, Result<Value, Failure>>;
}

#[cfg(test)]
mod tests;
