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
pub mod intrinsics;
pub mod path;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use path::Path;

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

/// A parsed, checked state machine.
#[derive(Debug, Clone)]
pub struct Machine {
    /// The first state.
    pub start_at: String,
    /// The states by name.
    pub states: BTreeMap<String, State>,
}

/// One state.
#[derive(Debug, Clone)]
pub struct State {
    /// Its name.
    pub name: String,
    /// What it does.
    pub kind: Kind,
    input_path: Selector,
    output_path: Selector,
    result_path: ResultPath,
    parameters: Option<Value>,
    result_selector: Option<Value>,
    retry: Vec<Retrier>,
    catch: Vec<Catcher>,
    /// The next state; `None` for an end.
    pub next: Option<String>,
}

/// The kinds of state.
#[derive(Debug, Clone)]
pub enum Kind {
    /// Invokes a resource.
    Task {
        /// The resource ARN.
        resource: String,
        /// `TimeoutSeconds`.
        timeout: Option<f64>,
    },
    /// Passes its input (or `Result`) on.
    Pass {
        /// `Result`.
        result: Option<Value>,
    },
    /// Branches on rules.
    Choice {
        /// Rules and their next state.
        choices: Vec<(choice::Rule, String)>,
        /// `Default`.
        default: Option<String>,
    },
    /// Waits.
    Wait(WaitFor),
    /// Ends the execution successfully.
    Succeed,
    /// Ends it with an error.
    Fail {
        /// `Error` or `ErrorPath`.
        error: Option<Source>,
        /// `Cause` or `CausePath`.
        cause: Option<Source>,
    },
    /// Runs branches concurrently.
    Parallel {
        /// The branches.
        branches: Vec<Machine>,
    },
    /// Runs a machine per item.
    Map {
        /// `ItemProcessor` (or `Iterator`).
        processor: Box<Machine>,
        /// `ItemsPath`.
        items_path: Path,
        /// `ItemSelector` (or `Parameters`).
        item_selector: Option<Value>,
        /// `MaxConcurrency` (0: unbounded).
        max_concurrency: usize,
    },
}

/// A literal or a path to read a value from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A literal.
    Literal(String),
    /// A path into the state's input.
    Path(Path),
}

/// What a Wait state waits for.
#[derive(Debug, Clone)]
pub enum WaitFor {
    /// `Seconds`.
    Seconds(f64),
    /// `SecondsPath`.
    SecondsPath(Path),
    /// `Timestamp`.
    Timestamp(String),
    /// `TimestampPath`.
    TimestampPath(Path),
}

#[derive(Debug, Clone)]
enum Selector {
    All,
    Path(Path),
    /// `null`: an empty object.
    Nothing,
}

#[derive(Debug, Clone)]
enum ResultPath {
    Path(Path),
    /// `null`: the result is discarded, the input passes on.
    Discard,
}

#[derive(Debug, Clone)]
struct Retrier {
    error_equals: Vec<String>,
    interval: f64,
    max_attempts: u32,
    backoff_rate: f64,
    max_delay: Option<f64>,
    full_jitter: bool,
}

#[derive(Debug, Clone)]
struct Catcher {
    error_equals: Vec<String>,
    next: String,
    result_path: ResultPath,
}

// ---------------------------------------------------------------------------------------
// Loading.

const COMMON: [&str; 6] = ["Type", "Comment", "Next", "End", "InputPath", "OutputPath"];

fn allowed(kind: &str) -> &'static [&'static str] {
    match kind {
        "Task" => &["Resource", "Parameters", "ResultSelector", "ResultPath", "Retry", "Catch", "TimeoutSeconds"],
        "Pass" => &["Result", "ResultPath", "Parameters"],
        "Choice" => &["Choices", "Default"],
        "Wait" => &["Seconds", "SecondsPath", "Timestamp", "TimestampPath"],
        "Succeed" => &[],
        "Fail" => &["Error", "ErrorPath", "Cause", "CausePath"],
        "Parallel" => &["Branches", "Parameters", "ResultSelector", "ResultPath", "Retry", "Catch"],
        "Map" => &[
            "ItemProcessor",
            "Iterator",
            "ItemsPath",
            "ItemSelector",
            "Parameters",
            "MaxConcurrency",
            "ResultSelector",
            "ResultPath",
            "Retry",
            "Catch",
        ],
        _ => &[],
    }
}

impl Machine {
    /// Parses and checks a definition; every unsupported construct is an error naming where.
    pub fn parse(definition: &Value) -> Result<Machine, String> {
        let object = definition.as_object().ok_or("the definition must be a JSON object")?;
        for key in object.keys() {
            match key.as_str() {
                "StartAt" | "States" | "Comment" | "Version" | "TimeoutSeconds" => {}
                "QueryLanguage" if object.get(key) == Some(&json!("JSONPath")) => {}
                other => return Err(format!("top-level field `{other}` is not supported by the local interpreter")),
            }
        }
        Machine::parse_states(definition, "the definition")
    }

    fn parse_states(definition: &Value, at: &str) -> Result<Machine, String> {
        let start_at = definition
            .get("StartAt")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{at}: `StartAt` is missing"))?
            .to_string();
        let states_object =
            definition.get("States").and_then(Value::as_object).ok_or_else(|| format!("{at}: `States` is missing"))?;
        let mut states = BTreeMap::new();
        for (name, state) in states_object {
            states.insert(name.clone(), State::parse(name, state)?);
        }
        if !states.contains_key(&start_at) {
            return Err(format!("{at}: StartAt `{start_at}` is not a state"));
        }
        for state in states.values() {
            let mut targets: Vec<&String> = state.next.iter().collect();
            targets.extend(state.catch.iter().map(|catcher| &catcher.next));
            if let Kind::Choice { choices, default } = &state.kind {
                targets.extend(choices.iter().map(|(_, next)| next));
                targets.extend(default.iter());
            }
            for target in targets {
                if !states.contains_key(target) {
                    return Err(format!("state `{}`: the next state `{target}` does not exist", state.name));
                }
            }
        }
        Ok(Machine { start_at, states })
    }
}

fn check_template(template: &Value, at: &str) -> Result<(), String> {
    match template {
        Value::Object(object) => {
            for (key, value) in object {
                if key.ends_with(".$") {
                    let text = value.as_str().ok_or_else(|| format!("{at}: `{key}` must be a path or an intrinsic"))?;
                    if text.starts_with('$') {
                        Path::parse(text).map_err(|error| format!("{at}: {error}"))?;
                    } else {
                        intrinsics::parse(text).map_err(|error| format!("{at}: {error}"))?;
                    }
                } else {
                    check_template(value, at)?;
                }
            }
            Ok(())
        }
        Value::Array(items) => items.iter().try_for_each(|item| check_template(item, at)),
        _ => Ok(()),
    }
}

fn error_list(value: &Value, at: &str) -> Result<Vec<String>, String> {
    value
        .get("ErrorEquals")
        .and_then(Value::as_array)
        .map(|names| names.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .ok_or_else(|| format!("{at}: `ErrorEquals` is missing"))
}

fn result_path(value: Option<&Value>, at: &str) -> Result<ResultPath, String> {
    match value {
        None => Ok(ResultPath::Path(Path { context: false, steps: Vec::new() })),
        Some(Value::Null) => Ok(ResultPath::Discard),
        Some(Value::String(text)) => Path::parse(text).map(ResultPath::Path).map_err(|error| format!("{at}: {error}")),
        Some(_) => Err(format!("{at}: ResultPath must be a path or null")),
    }
}

fn selector(value: Option<&Value>, at: &str) -> Result<Selector, String> {
    match value {
        None => Ok(Selector::All),
        Some(Value::Null) => Ok(Selector::Nothing),
        Some(Value::String(text)) => Path::parse(text).map(Selector::Path).map_err(|error| format!("{at}: {error}")),
        Some(_) => Err(format!("{at}: InputPath/OutputPath must be a path or null")),
    }
}

impl State {
    fn parse(name: &str, value: &Value) -> Result<State, String> {
        let at = format!("state `{name}`");
        let object = value.as_object().ok_or_else(|| format!("{at}: must be an object"))?;
        let kind_name = object.get("Type").and_then(Value::as_str).ok_or_else(|| format!("{at}: `Type` is missing"))?;
        if allowed(kind_name).is_empty() && !matches!(kind_name, "Succeed") {
            return Err(format!("{at}: type `{kind_name}` is not supported by the local interpreter"));
        }
        for key in object.keys() {
            if !COMMON.contains(&key.as_str()) && !allowed(kind_name).contains(&key.as_str()) {
                return Err(format!(
                    "{at}: field `{key}` is not supported by the local interpreter for a {kind_name} state"
                ));
            }
        }
        let text = |key: &str| object.get(key).and_then(Value::as_str).map(str::to_string);
        let path_field = |key: &str| -> Result<Option<Path>, String> {
            text(key).map(|text| Path::parse(&text).map_err(|error| format!("{at}: {error}"))).transpose()
        };
        for key in ["Parameters", "ResultSelector", "ItemSelector"] {
            if let Some(template) = object.get(key) {
                check_template(template, &format!("{at} {key}"))?;
            }
        }
        let kind = match kind_name {
            "Task" => Kind::Task {
                resource: text("Resource").ok_or_else(|| format!("{at}: `Resource` is missing"))?,
                timeout: object.get("TimeoutSeconds").and_then(Value::as_f64),
            },
            "Pass" => Kind::Pass { result: object.get("Result").cloned() },
            "Choice" => {
                let rules = object
                    .get("Choices")
                    .and_then(Value::as_array)
                    .ok_or_else(|| format!("{at}: `Choices` is missing"))?;
                let mut choices = Vec::new();
                for rule in rules {
                    let next = rule
                        .get("Next")
                        .and_then(Value::as_str)
                        .ok_or_else(|| format!("{at}: a choice has no `Next`"))?;
                    choices.push((choice::compile(rule, &at)?, next.to_string()));
                }
                Kind::Choice { choices, default: text("Default") }
            }
            "Wait" => Kind::Wait(if let Some(seconds) = object.get("Seconds").and_then(Value::as_f64) {
                WaitFor::Seconds(seconds)
            } else if let Some(path) = path_field("SecondsPath")? {
                WaitFor::SecondsPath(path)
            } else if let Some(timestamp) = text("Timestamp") {
                WaitFor::Timestamp(timestamp)
            } else if let Some(path) = path_field("TimestampPath")? {
                WaitFor::TimestampPath(path)
            } else {
                return Err(format!("{at}: a Wait state needs Seconds, SecondsPath, Timestamp or TimestampPath"));
            }),
            "Succeed" => Kind::Succeed,
            "Fail" => {
                let source = |literal: &str, path: &str| -> Result<Option<Source>, String> {
                    Ok(match (text(literal), path_field(path)?) {
                        (Some(value), _) => Some(Source::Literal(value)),
                        (None, Some(path)) => Some(Source::Path(path)),
                        _ => None,
                    })
                };
                Kind::Fail { error: source("Error", "ErrorPath")?, cause: source("Cause", "CausePath")? }
            }
            "Parallel" => {
                let branches = object
                    .get("Branches")
                    .and_then(Value::as_array)
                    .ok_or_else(|| format!("{at}: `Branches` is missing"))?;
                let branches = branches
                    .iter()
                    .enumerate()
                    .map(|(index, branch)| Machine::parse_states(branch, &format!("{at} branch {index}")))
                    .collect::<Result<_, _>>()?;
                Kind::Parallel { branches }
            }
            "Map" => {
                let processor = object
                    .get("ItemProcessor")
                    .or_else(|| object.get("Iterator"))
                    .ok_or_else(|| format!("{at}: `ItemProcessor` is missing"))?;
                let mode =
                    processor.get("ProcessorConfig").and_then(|config| config.get("Mode")).and_then(Value::as_str);
                if mode.is_some_and(|mode| mode != "INLINE") {
                    return Err(format!("{at}: only INLINE Map states are supported by the local interpreter"));
                }
                Kind::Map {
                    processor: Box::new(Machine::parse_states(processor, &format!("{at} ItemProcessor"))?),
                    items_path: path_field("ItemsPath")?.unwrap_or(Path { context: false, steps: Vec::new() }),
                    item_selector: object.get("ItemSelector").or_else(|| object.get("Parameters")).cloned(),
                    max_concurrency: object.get("MaxConcurrency").and_then(Value::as_u64).unwrap_or(0) as usize,
                }
            }
            other => return Err(format!("{at}: type `{other}` is not supported")),
        };
        let mut retry = Vec::new();
        for retrier in object.get("Retry").and_then(Value::as_array).into_iter().flatten() {
            let jitter = retrier.get("JitterStrategy").and_then(Value::as_str).unwrap_or("NONE");
            if !matches!(jitter, "FULL" | "NONE") {
                return Err(format!("{at}: JitterStrategy `{jitter}` is not FULL or NONE"));
            }
            retry.push(Retrier {
                error_equals: error_list(retrier, &at)?,
                interval: retrier.get("IntervalSeconds").and_then(Value::as_f64).unwrap_or(1.0),
                max_attempts: retrier.get("MaxAttempts").and_then(Value::as_u64).unwrap_or(3) as u32,
                backoff_rate: retrier.get("BackoffRate").and_then(Value::as_f64).unwrap_or(2.0),
                max_delay: retrier.get("MaxDelaySeconds").and_then(Value::as_f64),
                full_jitter: jitter == "FULL",
            });
        }
        let mut catch = Vec::new();
        for catcher in object.get("Catch").and_then(Value::as_array).into_iter().flatten() {
            catch.push(Catcher {
                error_equals: error_list(catcher, &at)?,
                next: catcher
                    .get("Next")
                    .and_then(Value::as_str)
                    .ok_or_else(|| format!("{at}: a Catch has no `Next`"))?
                    .to_string(),
                result_path: result_path(catcher.get("ResultPath"), &at)?,
            });
        }
        let terminal = matches!(kind, Kind::Succeed | Kind::Fail { .. } | Kind::Choice { .. });
        let next = text("Next");
        let end = object.get("End").and_then(Value::as_bool).unwrap_or(false);
        if !terminal && next.is_none() && !end {
            return Err(format!("{at}: needs `Next` or `\"End\": true`"));
        }
        Ok(State {
            name: name.to_string(),
            kind,
            input_path: selector(object.get("InputPath"), &at)?,
            output_path: selector(object.get("OutputPath"), &at)?,
            result_path: result_path(object.get("ResultPath"), &at)?,
            parameters: object.get("Parameters").cloned(),
            result_selector: object.get("ResultSelector").cloned(),
            retry,
            catch,
            next,
        })
    }
}

// ---------------------------------------------------------------------------------------
// Running.

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
}

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
        Interpreter { invoker, timing, context, history: Arc::new(Mutex::new(history)) }
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
        match self.run_machine(machine, from.to_string(), input).await {
            Ok(output) => Outcome::Succeeded(output),
            Err((state, input, failure)) => Outcome::Failed { state, input, failure },
        }
    }

    fn run_machine<'b>(
        &'b self,
        machine: &'b Machine,
        from: String,
        input: Value,
    ) -> BoxFuture<'b, Result<Value, (String, Value, Failure)>> {
        Box::pin(async move {
            let mut current = from;
            let mut input = input;
            loop {
                let Some(state) = machine.states.get(&current) else {
                    return Err((current.clone(), input, Failure::runtime(format!("no state named `{current}`"))));
                };
                self.record("StateEntered", Some(&state.name), json!({"input": input}));
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
                let runs =
                    branches.iter().map(|branch| self.run_machine(branch, branch.start_at.clone(), effective.clone()));
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
                        .map(|input| self.run_machine(processor, processor.start_at.clone(), input.clone()));
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

#[cfg(test)]
mod tests;
