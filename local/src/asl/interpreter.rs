//! Running a parsed definition: states entered and exited, tasks invoked with their retries
//! and catchers, Parallel and Map branches, the execution's event history.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::definition::{Kind, Machine, ResultPath, Selector, Source, State, WaitFor};
use super::path::Path;
use super::{BoxFuture, Failure, Invoker, choice, intrinsics};

/// One entry of an execution's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Its number, from 1.
    pub id: u64,
    /// When it happened.
    pub timestamp: DateTime<Utc>,
    /// `ExecutionStarted`, `StateEntered`, `TaskScheduled`, `TaskFailed`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// The state it concerns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Error, cause, resource, attempt: what the event says.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub detail: Value,
}

/// How an execution run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// With this output.
    Succeeded(Value),
    /// In `state` (a top-level state), whose input was `input`: what a re-drive resumes from.
    Failed {
        /// The failed top-level state.
        state: String,
        /// Its input.
        input: Value,
        /// The error.
        failure: Failure,
    },
}

/// Local time scaling: retry intervals and waits are multiplied by these.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Factor of retry intervals (1.0 as in the cloud).
    pub retry_scale: f64,
    /// Factor of Wait states.
    pub wait_scale: f64,
}

/// Runs one execution (or a re-drive of it), recording its history.
pub struct Interpreter<'a> {
    invoker: &'a dyn Invoker,
    timing: Timing,
    context: Value,
    history: Arc<Mutex<Vec<Event>>>,
    checkpoint: Option<&'a Checkpoint<'a>>,
}

/// What an interpreter reports as it enters each top-level state: the state, its input, the
/// history so far.
pub type Checkpoint<'a> = dyn Fn(&str, &Value, &[Event]) + Send + Sync + 'a;

fn apply_template(template: &Value, input: &Value, context: &Value) -> Result<Value, Failure> {
    match template {
        Value::Object(object) => {
            let mut out = Map::new();
            for (key, value) in object {
                if let Some(name) = key.strip_suffix(".$") {
                    let text = value.as_str().unwrap_or_default();
                    let resolved = if text.starts_with('$') {
                        Path::parse(text).map_err(Failure::runtime)?.read(input, context)?
                    } else {
                        let expr = intrinsics::parse(text).map_err(Failure::runtime)?;
                        intrinsics::evaluate(&expr, input, context)?
                    };
                    out.insert(name.to_string(), resolved);
                } else {
                    out.insert(key.clone(), apply_template(value, input, context)?);
                }
            }
            Ok(Value::Object(out))
        }
        Value::Array(items) => items
            .iter()
            .map(|item| apply_template(item, input, context))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        other => Ok(other.clone()),
    }
}

fn select(selector: &Selector, input: &Value, context: &Value) -> Result<Value, Failure> {
    match selector {
        Selector::All => Ok(input.clone()),
        Selector::Nothing => Ok(json!({})),
        Selector::Path(path) => path.read(input, context),
    }
}

fn place(result_path: &ResultPath, raw: &Value, result: Value) -> Result<Value, Failure> {
    match result_path {
        ResultPath::Discard => Ok(raw.clone()),
        ResultPath::Path(path) => path.write(raw.clone(), result),
    }
}

impl<'a> Interpreter<'a> {
    /// An interpreter for the execution named `name` with `input`, continuing `history`.
    pub fn new(
        invoker: &'a dyn Invoker,
        timing: Timing,
        name: &str,
        input: &Value,
        history: Vec<Event>,
    ) -> Interpreter<'a> {
        let context = json!({
            "Execution": {"Id": format!("arn:aws:states:local:000000000000:execution:lakestar:{name}"), "Name": name, "Input": input},
            "StateMachine": {"Id": "arn:aws:states:local:000000000000:stateMachine:lakestar", "Name": "lakestar"},
        });
        Interpreter { invoker, timing, context, history: Arc::new(Mutex::new(history)), checkpoint: None }
    }

    /// Calls `checkpoint` with each top-level state's name and input as the state is entered,
    /// and the history up to then: where a run interrupted there resumes.
    pub fn with_checkpoint(mut self, checkpoint: &'a Checkpoint<'a>) -> Interpreter<'a> {
        self.checkpoint = Some(checkpoint);
        self
    }

    /// The history so far.
    pub fn history(&self) -> Vec<Event> {
        self.history.lock().map(|history| history.clone()).unwrap_or_default()
    }

    /// Appends an event.
    pub fn record(&self, kind: &str, state: Option<&str>, detail: Value) {
        if let Ok(mut history) = self.history.lock() {
            let id = history.len() as u64 + 1;
            history.push(Event {
                id,
                timestamp: Utc::now(),
                kind: kind.to_string(),
                state: state.map(str::to_string),
                detail,
            });
        }
    }

    /// Runs `machine` from `from` (its start for a new execution, the failed state for a
    /// re-drive) with that state's `input`.
    pub async fn run(&self, machine: &Machine, from: &str, input: Value) -> Outcome {
        match self.run_machine(machine, from.to_string(), input, true).await {
            Ok(output) => Outcome::Succeeded(output),
            Err((state, input, failure)) => Outcome::Failed { state, input, failure },
        }
    }

    fn run_machine<'b>(
        &'b self,
        machine: &'b Machine,
        from: String,
        input: Value,
        top_level: bool,
    ) -> BoxFuture<'b, Result<Value, (String, Value, Failure)>> {
        Box::pin(async move {
            let mut current = from;
            let mut input = input;
            loop {
                let Some(state) = machine.states.get(&current) else {
                    return Err((current.clone(), input, Failure::runtime(format!("no state named `{current}`"))));
                };
                self.record("StateEntered", Some(&state.name), json!({"input": input}));
                if let (true, Some(checkpoint)) = (top_level, self.checkpoint) {
                    checkpoint(&state.name, &input, &self.history());
                }
                match self.run_state(state, &input).await {
                    Ok((output, next)) => {
                        self.record("StateExited", Some(&state.name), json!({"output": output}));
                        match next {
                            Some(next) => {
                                current = next;
                                input = output;
                            }
                            None => return Ok(output),
                        }
                    }
                    Err(failure) => return Err((state.name.clone(), input, failure)),
                }
            }
        })
    }

    async fn run_state(&self, state: &State, raw: &Value) -> Result<(Value, Option<String>), Failure> {
        let context = &self.context;
        match &state.kind {
            Kind::Pass { result } => {
                let effective = select(&state.input_path, raw, context)?;
                let effective = match &state.parameters {
                    Some(template) => apply_template(template, &effective, context)?,
                    None => effective,
                };
                let result = result.clone().unwrap_or(effective);
                let output = select(&state.output_path, &place(&state.result_path, raw, result)?, context)?;
                Ok((output, state.next.clone()))
            }
            Kind::Choice { choices, default } => {
                let effective = select(&state.input_path, raw, context)?;
                let mut next = None;
                for (rule, target) in choices {
                    if choice::evaluate(rule, &effective, context)? {
                        next = Some(target.clone());
                        break;
                    }
                }
                let next = next.or_else(|| default.clone()).ok_or_else(|| Failure {
                    error: "States.NoChoiceMatched".to_string(),
                    cause: format!("no choice rule of `{}` matched and it has no Default", state.name),
                })?;
                Ok((select(&state.output_path, &effective, context)?, Some(next)))
            }
            Kind::Wait(wait) => {
                let effective = select(&state.input_path, raw, context)?;
                let seconds = match wait {
                    WaitFor::Seconds(seconds) => *seconds,
                    WaitFor::SecondsPath(path) => path
                        .read(&effective, context)?
                        .as_f64()
                        .ok_or_else(|| Failure::runtime("SecondsPath does not point to a number"))?,
                    WaitFor::Timestamp(text) => until(text)?,
                    WaitFor::TimestampPath(path) => {
                        let value = path.read(&effective, context)?;
                        until(
                            value
                                .as_str()
                                .ok_or_else(|| Failure::runtime("TimestampPath does not point to a string"))?,
                        )?
                    }
                };
                tokio::time::sleep(Duration::from_secs_f64((seconds * self.timing.wait_scale).max(0.0))).await;
                Ok((select(&state.output_path, &effective, context)?, state.next.clone()))
            }
            Kind::Succeed => {
                let effective = select(&state.input_path, raw, context)?;
                Ok((select(&state.output_path, &effective, context)?, None))
            }
            Kind::Fail { error, cause } => {
                let text = |source: &Option<Source>| -> Result<String, Failure> {
                    Ok(match source {
                        None => String::new(),
                        Some(Source::Literal(text)) => text.clone(),
                        Some(Source::Path(path)) => match path.read(raw, context)? {
                            Value::String(text) => text,
                            other => other.to_string(),
                        },
                    })
                };
                Err(Failure { error: text(error)?, cause: text(cause)? })
            }
            Kind::Task { .. } | Kind::Parallel { .. } | Kind::Map { .. } => self.run_with_retries(state, raw).await,
        }
    }

    /// Task, Parallel and Map: input processing, the work, result processing; Retry, then
    /// Catch, on an error.
    async fn run_with_retries(&self, state: &State, raw: &Value) -> Result<(Value, Option<String>), Failure> {
        let mut attempts = vec![0u32; state.retry.len()];
        loop {
            let failure = match self.attempt(state, raw).await {
                Ok(output) => return Ok((output, state.next.clone())),
                Err(failure) => failure,
            };
            if let Some(index) = state.retry.iter().position(|retrier| failure.matches(&retrier.error_equals)) {
                let retrier = &state.retry[index];
                if attempts[index] < retrier.max_attempts {
                    let mut delay = retrier.interval * retrier.backoff_rate.powi(attempts[index] as i32);
                    if let Some(max) = retrier.max_delay {
                        delay = delay.min(max);
                    }
                    if retrier.full_jitter {
                        delay *= random_fraction();
                    }
                    attempts[index] += 1;
                    self.record(
                        "TaskRetryScheduled",
                        Some(&state.name),
                        json!({"error": failure.error, "attempt": attempts[index], "delaySeconds": delay}),
                    );
                    tokio::time::sleep(Duration::from_secs_f64((delay * self.timing.retry_scale).max(0.0))).await;
                    continue;
                }
            }
            if let Some(catcher) = state.catch.iter().find(|catcher| failure.matches(&catcher.error_equals)) {
                let error_output = json!({"Error": failure.error, "Cause": failure.cause});
                let output = place(&catcher.result_path, raw, error_output)?;
                self.record("CatchTaken", Some(&state.name), json!({"error": failure.error, "next": catcher.next}));
                return Ok((output, Some(catcher.next.clone())));
            }
            return Err(failure);
        }
    }

    async fn attempt(&self, state: &State, raw: &Value) -> Result<Value, Failure> {
        let context = &self.context;
        let effective = select(&state.input_path, raw, context)?;
        let result = match &state.kind {
            Kind::Task { resource, timeout } => {
                let parameters = match &state.parameters {
                    Some(template) => apply_template(template, &effective, context)?,
                    None => effective,
                };
                self.record("TaskScheduled", Some(&state.name), json!({"resource": resource}));
                let invocation = self.invoker.invoke(resource, parameters);
                let result = match timeout {
                    Some(seconds) => match tokio::time::timeout(Duration::from_secs_f64(*seconds), invocation).await {
                        Ok(result) => result,
                        Err(_) => Err(Failure {
                            error: "States.Timeout".to_string(),
                            cause: format!("the task ran longer than {seconds} s"),
                        }),
                    },
                    None => invocation.await,
                };
                match &result {
                    Ok(_) => self.record("TaskSucceeded", Some(&state.name), Value::Null),
                    Err(failure) => self.record(
                        "TaskFailed",
                        Some(&state.name),
                        json!({"error": failure.error, "cause": failure.cause}),
                    ),
                }
                result?
            }
            Kind::Parallel { branches } => {
                let effective = match &state.parameters {
                    Some(template) => apply_template(template, &effective, context)?,
                    None => effective,
                };
                let runs = branches
                    .iter()
                    .map(|branch| self.run_machine(branch, branch.start_at.clone(), effective.clone(), false));
                let results = futures_join_all(runs.collect()).await;
                let mut outputs = Vec::with_capacity(results.len());
                for result in results {
                    outputs.push(result.map_err(|(_, _, failure)| failure)?);
                }
                Value::Array(outputs)
            }
            Kind::Map { processor, items_path, item_selector, max_concurrency } => {
                let items = match items_path.read(&effective, context)? {
                    Value::Array(items) => items,
                    _ => {
                        return Err(Failure::runtime(format!(
                            "ItemsPath of `{}` does not point to an array",
                            state.name
                        )));
                    }
                };
                let mut inputs = Vec::with_capacity(items.len());
                for (index, item) in items.into_iter().enumerate() {
                    inputs.push(match item_selector {
                        Some(template) => {
                            let mut item_context = context.clone();
                            item_context["Map"] = json!({"Item": {"Index": index, "Value": item}});
                            apply_template(template, &effective, &item_context)?
                        }
                        None => item,
                    });
                }
                let limit = if *max_concurrency == 0 { inputs.len().max(1) } else { *max_concurrency };
                let mut outputs = Vec::with_capacity(inputs.len());
                for chunk in inputs.chunks(limit) {
                    let runs = chunk
                        .iter()
                        .map(|input| self.run_machine(processor, processor.start_at.clone(), input.clone(), false));
                    for result in futures_join_all(runs.collect()).await {
                        outputs.push(result.map_err(|(_, _, failure)| failure)?);
                    }
                }
                Value::Array(outputs)
            }
            _ => return Err(Failure::runtime("not a task-like state")),
        };
        let result = match &state.result_selector {
            Some(template) => apply_template(template, &result, context)?,
            None => result,
        };
        select(&state.output_path, &place(&state.result_path, raw, result)?, context)
    }
}

/// Runs futures concurrently and returns their results in order.
async fn futures_join_all<T>(futures: Vec<BoxFuture<'_, T>>) -> Vec<T> {
    let mut pending: Vec<Option<BoxFuture<'_, T>>> = futures.into_iter().map(Some).collect();
    let mut results: Vec<Option<T>> = (0..pending.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        for (slot, result) in pending.iter_mut().zip(results.iter_mut()) {
            if let Some(future) = slot {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => {
                        *result = Some(value);
                        *slot = None;
                    }
                    std::task::Poll::Pending => done = false,
                }
            }
        }
        if done { std::task::Poll::Ready(()) } else { std::task::Poll::Pending }
    })
    .await;
    results.into_iter().flatten().collect()
}

/// Seconds until an RFC 3339 instant (negative means now).
fn until(text: &str) -> Result<f64, Failure> {
    let instant = DateTime::parse_from_rfc3339(text)
        .map_err(|_| Failure::runtime(format!("`{text}` is not an RFC 3339 timestamp")))?;
    Ok((instant.with_timezone(&Utc) - Utc::now()).num_milliseconds() as f64 / 1000.0)
}

/// A fraction in [0, 1) for FULL jitter.
fn random_fraction() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(0);
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}
