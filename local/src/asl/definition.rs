//! A state machine definition parsed and checked: every state, field and path the
//! interpreter supports, anything else refused at load naming the state and the field.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::path::Path;
use super::{choice, intrinsics};

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
    pub(super) input_path: Selector,
    pub(super) output_path: Selector,
    pub(super) result_path: ResultPath,
    pub(super) parameters: Option<Value>,
    pub(super) result_selector: Option<Value>,
    pub(super) retry: Vec<Retrier>,
    pub(super) catch: Vec<Catcher>,
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
pub(super) enum Selector {
    All,
    Path(Path),
    /// `null`: an empty object.
    Nothing,
}

#[derive(Debug, Clone)]
pub(super) enum ResultPath {
    Path(Path),
    /// `null`: the result is discarded, the input passes on.
    Discard,
}

#[derive(Debug, Clone)]
pub(super) struct Retrier {
    pub(super) error_equals: Vec<String>,
    pub(super) interval: f64,
    pub(super) max_attempts: u32,
    pub(super) backoff_rate: f64,
    pub(super) max_delay: Option<f64>,
    pub(super) full_jitter: bool,
}

#[derive(Debug, Clone)]
pub(super) struct Catcher {
    pub(super) error_equals: Vec<String>,
    pub(super) next: String,
    pub(super) result_path: ResultPath,
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
        // Long on purpose: one arm per state type, each checking that type's fields in the order the
        // specification lists them; apart, the fields a type allows would be in two places.
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
