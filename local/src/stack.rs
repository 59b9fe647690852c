//! The offline stack: the embedded S3 over `<home>/s3`, the warehouse (SQLite at
//! `<home>/warehouse.db` unless told otherwise), the trigger handler behind real S3 events,
//! and the real state machine run by the local interpreter with every Task dispatched to the
//! function crates' handlers. Executions persist as JSON under `<home>/executions/`, so a
//! later process can list, inspect and re-drive them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use lakestar::contract::Contract;
use lakestar::lake::{EmbeddedS3, Lake};
use lakestar::mask::MaskingKey;
use lakestar::warehouse::Warehouse;
use lakestar_ingest::IngestFunction;
use lakestar_load::LoadFunction;
use lakestar_mask::MaskFunction;
use lakestar_trigger::TriggerFunction;
use lakestar_validate::ValidateFunction;
use lambda_runtime::{Context as LambdaContext, Diagnostic, LambdaEvent};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::asl::{self, BoxFuture, Event, Failure, Interpreter, Invoker, Machine, Outcome, Timing};
use crate::sfn::{LocalStepFunctions, STATE_MACHINE_ARN};

/// One landing file and the key it lands under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drop {
    /// The file.
    pub path: PathBuf,
    /// `landing/<relative path>`.
    pub key: String,
}

/// The lake bucket of the offline stack.
pub const BUCKET: &str = "lakestar-lake";
/// The environment variable that injects a fault into one stage (a testing aid).
pub const FAULT_ENV: &str = "LAKESTAR_FAULT";
/// The state machine definition, as deployed.
pub const DEFINITION: &str = include_str!("../../statemachine/pipeline.asl.json");
/// The SAM template whose `DefinitionSubstitutions` name the functions.
pub const TEMPLATE: &str = include_str!("../../infra/template.yaml");
/// The stages a fault can be injected into.
pub const STAGES: [&str; 4] = ["ingest", "validate", "mask", "load"];

/// How to open a stack.
#[derive(Debug, Clone)]
pub struct StackConfig {
    /// The stack's home.
    pub home: PathBuf,
    /// The contract file.
    pub contract: PathBuf,
    /// `postgres://…` or `sqlite://…`; default SQLite at `<home>/warehouse.db`.
    pub warehouse: Option<String>,
    /// The masking key; default `LAKESTAR_MASKING_KEY` or `<home>/masking.key`.
    pub key: Option<MaskingKey>,
    /// Retry and Wait time scaling.
    pub timing: Timing,
    /// A stage whose handler fails with `InjectedFault` on a run's first attempt.
    pub fault: Option<String>,
}

impl StackConfig {
    /// Defaults for `home` and `contract`: SQLite, the local key, retries 100 times faster,
    /// the fault from `LAKESTAR_FAULT`.
    pub fn new(home: impl Into<PathBuf>, contract: impl Into<PathBuf>) -> StackConfig {
        StackConfig {
            home: home.into(),
            contract: contract.into(),
            warehouse: None,
            key: None,
            timing: Timing { retry_scale: 0.01, wait_scale: 0.01 },
            fault: std::env::var(FAULT_ENV).ok().filter(|stage| !stage.is_empty()),
        }
    }
}

/// One execution, as persisted under `<home>/executions/<name>.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionRecord {
    /// The execution name: the run id.
    pub name: String,
    /// `RUNNING`, `SUCCEEDED` or `FAILED`.
    pub status: String,
    /// The execution's input.
    pub input: Value,
    /// The output, once it succeeded.
    #[serde(default)]
    pub output: Option<Value>,
    /// The error name, once it failed.
    #[serde(default)]
    pub error: Option<String>,
    /// The cause, once it failed.
    #[serde(default)]
    pub cause: Option<String>,
    /// The top-level state that failed: where a re-drive resumes.
    #[serde(default)]
    pub failed_state: Option<String>,
    /// That state's input.
    #[serde(default)]
    pub failed_input: Option<Value>,
    /// How many times it was re-driven.
    #[serde(default)]
    pub redrive_count: u32,
    /// When it started.
    pub start_date: DateTime<Utc>,
    /// When it stopped.
    #[serde(default)]
    pub stop_date: Option<DateTime<Utc>>,
    /// The event history.
    pub history: Vec<Event>,
}

impl ExecutionRecord {
    /// The dataset of the run.
    pub fn dataset(&self) -> &str {
        self.input["run"]["dataset"].as_str().unwrap_or("-")
    }

    /// The landed key of the run.
    pub fn key(&self) -> &str {
        self.input["run"]["key"].as_str().unwrap_or("-")
    }

    /// The state as it stands: the output, or the failed state's input.
    fn state(&self) -> Option<&Value> {
        self.output.as_ref().or(self.failed_input.as_ref())
    }

    /// Rows received, valid and quarantined, when validate ran.
    pub fn rows(&self) -> Option<(u64, u64, u64)> {
        let validate = self.state()?.get("validate")?;
        let number = |key: &str| validate.get(key).and_then(Value::as_u64).unwrap_or(0);
        let received = self.state()?.get("ingest").and_then(|ingest| ingest.get("rows")).and_then(Value::as_u64);
        Some((received.unwrap_or(number("received")), number("valid"), number("rejected")))
    }

    /// Inserted / updated per table, when load ran.
    pub fn tables(&self) -> BTreeMap<String, (u64, u64)> {
        let mut tables = BTreeMap::new();
        if let Some(Value::Object(load)) =
            self.state().and_then(|state| state.get("load")).and_then(|load| load.get("tables"))
        {
            for (table, counts) in load {
                let number = |key: &str| counts.get(key).and_then(Value::as_u64).unwrap_or(0);
                if number("inserted") + number("updated") > 0 {
                    tables.insert(table.clone(), (number("inserted"), number("updated")));
                }
            }
        }
        tables
    }
}

/// The handlers behind the function ARNs of the definition.
struct Functions {
    ingest: IngestFunction,
    validate: ValidateFunction,
    mask: MaskFunction,
    load: LoadFunction,
    /// Function ARN → stage.
    arns: BTreeMap<String, &'static str>,
}

/// Dispatches one execution's tasks, injecting the configured fault on a first run.
struct Dispatch<'a> {
    functions: &'a Functions,
    fault: Option<&'a str>,
    fired: AtomicBool,
}

fn lambda_failure(diagnostic: Diagnostic) -> Failure {
    // As Lambda reports a function error to Step Functions: the error type is the error's
    // name, the cause the JSON of the error.
    let cause = json!({"errorType": diagnostic.error_type, "errorMessage": diagnostic.error_message}).to_string();
    Failure { error: diagnostic.error_type, cause }
}

impl Invoker for Dispatch<'_> {
    fn invoke<'a>(&'a self, resource: &'a str, parameters: Value) -> BoxFuture<'a, Result<Value, Failure>> {
        Box::pin(async move {
            let (function, payload, wrapped) = if resource == "arn:aws:states:::lambda:invoke" {
                let function = parameters["FunctionName"].as_str().unwrap_or_default().to_string();
                (function, parameters.get("Payload").cloned().unwrap_or(json!({})), true)
            } else if resource.starts_with("arn:aws:lambda:") {
                (resource.to_string(), parameters, false)
            } else {
                return Err(Failure {
                    error: "States.TaskFailed".to_string(),
                    cause: format!("the local stack cannot run the resource `{resource}`"),
                });
            };
            let stage = *self.functions.arns.get(&function).ok_or_else(|| Failure {
                error: "Lambda.ResourceNotFoundException".to_string(),
                cause: format!("no local function for `{function}`"),
            })?;
            if self.fault == Some(stage) && !self.fired.swap(true, Ordering::SeqCst) {
                return Err(Failure {
                    error: "InjectedFault".to_string(),
                    cause: format!(
                        "{FAULT_ENV}={stage}: the {stage} handler failed on purpose on this run's first attempt"
                    ),
                });
            }
            let event = LambdaEvent::new(payload, LambdaContext::default());
            let output = match stage {
                "ingest" => self.functions.ingest.handle(event).await.map(serde_json::to_value),
                "validate" => self.functions.validate.handle(event).await.map(serde_json::to_value),
                "mask" => self.functions.mask.handle(event).await.map(serde_json::to_value),
                _ => self.functions.load.handle(event).await.map(serde_json::to_value),
            }
            .map_err(lambda_failure)?
            .map_err(|error| Failure::runtime(format!("the {stage} output is not JSON: {error}")))?;
            Ok(if wrapped {
                json!({"ExecutedVersion": "$LATEST", "Payload": output, "StatusCode": 200})
            } else {
                output
            })
        })
    }
}

/// Function ARN → the stage it runs.
pub type FunctionStages = BTreeMap<String, &'static str>;

/// Reads the template's `DefinitionSubstitutions` and each function's binary: the
/// substitution name → the function ARN, and the ARN → the stage.
pub fn substitutions(template: &str) -> anyhow::Result<(BTreeMap<String, String>, FunctionStages)> {
    let lines: Vec<&str> = template.lines().collect();
    let indent = |line: &str| line.len() - line.trim_start().len();
    let start = lines
        .iter()
        .position(|line| line.trim() == "DefinitionSubstitutions:")
        .context("the template has no DefinitionSubstitutions")?;
    let base = indent(lines[start]);
    let mut names = BTreeMap::new();
    let mut stages = BTreeMap::new();
    for line in lines[start + 1..].iter().take_while(|line| line.trim().is_empty() || indent(line) > base) {
        let Some((name, value)) = line.trim().split_once(':') else { continue };
        let logical = value
            .trim()
            .strip_prefix("!GetAtt ")
            .and_then(|target| target.strip_suffix(".Arn"))
            .with_context(|| format!("substitution {name}: only `!GetAtt <Function>.Arn` is supported locally"))?;
        let header = lines
            .iter()
            .position(|line| line.trim_end() == format!("  {logical}:"))
            .with_context(|| format!("substitution {name}: no resource {logical} in the template"))?;
        let binary = lines[header + 1..]
            .iter()
            .take_while(|line| line.trim().is_empty() || indent(line) > 2)
            .find_map(|line| line.trim().strip_prefix("Binary:"))
            .map(str::trim)
            .with_context(|| format!("resource {logical} names no Binary"))?;
        let stage = STAGES
            .iter()
            .find(|stage| binary == format!("lakestar-{stage}"))
            .with_context(|| format!("resource {logical}: `{binary}` is not a stage function"))?;
        let arn = format!("arn:aws:lambda:us-east-1:000000000000:function:{binary}");
        names.insert(name.trim().to_string(), arn.clone());
        stages.insert(arn, *stage);
    }
    Ok((names, stages))
}

/// The definition with `${Name}` substituted, parsed and checked.
pub fn machine(definition: &str, names: &BTreeMap<String, String>) -> anyhow::Result<Machine> {
    let mut text = definition.to_string();
    for (name, value) in names {
        text = text.replace(&format!("${{{name}}}"), value);
    }
    if let Some(position) = text.find("${") {
        let rest: String = text[position..].chars().take(40).collect();
        bail!("the definition uses a substitution the template does not define: {rest}");
    }
    let value: Value = serde_json::from_str(&text).context("the state machine definition is not JSON")?;
    Machine::parse(&value).map_err(|error| anyhow::anyhow!("statemachine/pipeline.asl.json: {error}"))
}

/// The time of a local drop's event: the delivery date when the key's folder names one
/// (`landing/2024-01-02/sales.csv` → 2024-01-02T00:00:00Z), else the file's modification time
/// to the second. Either way the same file dropped again is the same object at the same
/// time, hence the same run id, and an example replays identically on any machine.
pub fn event_time(key: &str, path: &Path) -> DateTime<Utc> {
    let folder_date = key
        .strip_prefix(lakestar::trigger::LANDING)
        .and_then(|rest| rest.split('/').next())
        .and_then(|folder| chrono::NaiveDate::parse_from_str(folder, "%Y-%m-%d").ok())
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .map(|midnight| midnight.and_utc());
    folder_date.unwrap_or_else(|| {
        let modified = std::fs::metadata(path).and_then(|metadata| metadata.modified()).ok();
        let time: DateTime<Utc> = modified.map(DateTime::<Utc>::from).unwrap_or_else(Utc::now);
        DateTime::from_timestamp(time.timestamp(), 0).unwrap_or(time)
    })
}

/// A running offline stack.
pub struct Stack {
    home: PathBuf,
    s3: EmbeddedS3,
    lake: Lake,
    warehouse: Warehouse,
    warehouse_url: String,
    machine: Machine,
    functions: Functions,
    sfn: LocalStepFunctions,
    trigger: TriggerFunction,
    timing: Timing,
    fault: Option<String>,
}

impl Stack {
    /// Starts the embedded S3, uploads the contract, connects the warehouse, loads the state
    /// machine and starts the local Step Functions endpoint.
    pub async fn open(config: StackConfig) -> anyhow::Result<Stack> {
        if let Some(stage) = config.fault.as_ref().filter(|stage| !STAGES.contains(&stage.as_str())) {
            bail!("{FAULT_ENV}={stage}: use one of {}", STAGES.join(", "));
        }
        let contract = Contract::load(&config.contract)?;
        std::fs::create_dir_all(config.home.join("executions"))
            .with_context(|| format!("creating {}", config.home.join("executions").display()))?;
        let s3 = EmbeddedS3::start(&config.home.join("s3")).await?;
        s3.create_bucket(BUCKET).await?;
        let lake = Lake::new(s3.client(), BUCKET);
        let text = std::fs::read(&config.contract).with_context(|| format!("reading {}", config.contract.display()))?;
        lake.put_bytes(lakestar::env::CONFIG_KEY, text, "application/toml").await?;
        let warehouse_url = config
            .warehouse
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", config.home.join("warehouse.db").display()));
        let warehouse = Warehouse::connect(&warehouse_url).await?;
        let key = match config.key {
            Some(key) => key,
            None => MaskingKey::local(&config.home, &contract.masking.key_version)?,
        };
        let (names, arns) = substitutions(TEMPLATE)?;
        let machine = machine(DEFINITION, &names)?;
        let functions = Functions {
            ingest: IngestFunction::new(lake.clone(), contract.clone()),
            validate: ValidateFunction::new(lake.clone(), contract.clone()),
            mask: MaskFunction::new(lake.clone(), contract.clone(), key),
            load: LoadFunction::new(lake.clone(), contract.clone(), warehouse.clone()),
            arns,
        };
        let known: BTreeSet<String> = list_executions(&config.home)?.into_iter().map(|record| record.name).collect();
        let sfn = LocalStepFunctions::start(known).await.context("starting the local Step Functions endpoint")?;
        let trigger = TriggerFunction::new(sfn.client(), STATE_MACHINE_ARN, contract.clone());
        Ok(Stack {
            home: config.home,
            s3,
            lake,
            warehouse,
            warehouse_url,
            machine,
            functions,
            sfn,
            trigger,
            timing: config.timing,
            fault: config.fault,
        })
    }

    /// The embedded S3 endpoint.
    pub fn s3(&self) -> &EmbeddedS3 {
        &self.s3
    }

    /// The lake.
    pub fn lake(&self) -> &Lake {
        &self.lake
    }

    /// The warehouse.
    pub fn warehouse(&self) -> &Warehouse {
        &self.warehouse
    }

    /// The warehouse's URL.
    pub fn warehouse_url(&self) -> &str {
        &self.warehouse_url
    }

    /// Puts a file's bytes under `key` and sends the S3 event the bucket's notification would:
    /// through the trigger handler, which starts an execution unless one exists for the same
    /// object. The event time is [`event_time`]'s, so the same file dropped again is the same
    /// run. Returns the trigger's output.
    pub async fn drop_file(&self, key: &str, path: &Path) -> anyhow::Result<lakestar::trigger::TriggerOutput> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let time = event_time(key, path);
        self.lake.put_bytes(key, bytes, "application/octet-stream").await?;
        let head = self
            .s3
            .client()
            .head_object()
            .bucket(BUCKET)
            .key(key)
            .send()
            .await
            .context("reading the dropped object")?;
        let event = json!({"Records": [{
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": "us-east-1",
            "eventTime": time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "eventName": "ObjectCreated:Put",
            "userIdentity": {"principalId": "local"},
            "requestParameters": {"sourceIPAddress": "127.0.0.1"},
            "responseElements": {"x-amz-request-id": "local", "x-amz-id-2": "local"},
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "landing",
                "bucket": {"name": BUCKET, "ownerIdentity": {"principalId": "local"}, "arn": format!("arn:aws:s3:::{BUCKET}")},
                "object": {
                    "key": lakestar::trigger::encode_key(key),
                    "size": head.content_length().unwrap_or(0),
                    "eTag": head.e_tag().unwrap_or_default().trim_matches('"'),
                    "sequencer": format!("{:016X}", time.timestamp_millis()),
                }
            }
        }]});
        let output = self
            .trigger
            .handle(LambdaEvent::new(event, LambdaContext::default()))
            .await
            .map_err(|error| anyhow::anyhow!("trigger: {}: {}", error.error_type, error.error_message))?;
        Ok(output)
    }

    /// Runs every execution the trigger started since the last call, in order.
    pub async fn run_started(
        &self,
        mut progress: impl FnMut(&ExecutionRecord),
    ) -> anyhow::Result<Vec<ExecutionRecord>> {
        let mut records = Vec::new();
        for started in self.sfn.take_pending() {
            let record = self.execute(&started.name, started.input).await?;
            progress(&record);
            records.push(record);
        }
        Ok(records)
    }

    /// Runs a new execution from the start.
    pub async fn execute(&self, name: &str, input: Value) -> anyhow::Result<ExecutionRecord> {
        let mut record = ExecutionRecord {
            name: name.to_string(),
            status: "RUNNING".to_string(),
            input: input.clone(),
            output: None,
            error: None,
            cause: None,
            failed_state: None,
            failed_input: None,
            redrive_count: 0,
            start_date: Utc::now(),
            stop_date: None,
            history: Vec::new(),
        };
        self.save(&record)?;
        let history = vec![Event {
            id: 1,
            timestamp: record.start_date,
            kind: "ExecutionStarted".to_string(),
            state: None,
            detail: json!({"input": input}),
        }];
        let start = self.machine.start_at.clone();
        self.continue_run(&mut record, history, &start, input, true).await?;
        Ok(record)
    }

    /// Re-drives a failed execution from its failed state with that state's input, keeping
    /// what the states before it produced, as Step Functions' `RedriveExecution` does.
    pub async fn redrive(&self, name: &str) -> anyhow::Result<ExecutionRecord> {
        let mut record = load_execution(&self.home, name)?;
        if record.status != "FAILED" {
            bail!("execution {name} is {}; only a FAILED execution can be re-driven", record.status);
        }
        let (Some(state), Some(input)) = (record.failed_state.clone(), record.failed_input.clone()) else {
            bail!("execution {name} records no failed state to resume from");
        };
        record.redrive_count += 1;
        record.status = "RUNNING".to_string();
        record.stop_date = None;
        let mut history = std::mem::take(&mut record.history);
        let id = history.len() as u64 + 1;
        history.push(Event {
            id,
            timestamp: Utc::now(),
            kind: "ExecutionRedriven".to_string(),
            state: Some(state.clone()),
            detail: json!({"redriveCount": record.redrive_count}),
        });
        self.continue_run(&mut record, history, &state, input, false).await?;
        Ok(record)
    }

    async fn continue_run(
        &self,
        record: &mut ExecutionRecord,
        history: Vec<Event>,
        from: &str,
        input: Value,
        first_run: bool,
    ) -> anyhow::Result<()> {
        let dispatch = Dispatch {
            functions: &self.functions,
            fault: if first_run { self.fault.as_deref() } else { None },
            fired: AtomicBool::new(false),
        };
        let interpreter = Interpreter::new(&dispatch, self.timing, &record.name, &record.input, history);
        let outcome = interpreter.run(&self.machine, from, input).await;
        match outcome {
            Outcome::Succeeded(output) => {
                interpreter.record("ExecutionSucceeded", None, Value::Null);
                record.status = "SUCCEEDED".to_string();
                record.output = Some(output);
                record.error = None;
                record.cause = None;
                record.failed_state = None;
                record.failed_input = None;
            }
            Outcome::Failed { state, input, failure } => {
                interpreter.record(
                    "ExecutionFailed",
                    Some(&state),
                    json!({"error": failure.error, "cause": failure.cause}),
                );
                record.status = "FAILED".to_string();
                record.error = Some(failure.error);
                record.cause = Some(failure.cause);
                record.failed_state = Some(state);
                record.failed_input = Some(input);
            }
        }
        record.stop_date = Some(Utc::now());
        record.history = interpreter.history();
        self.save(record)
    }

    fn save(&self, record: &ExecutionRecord) -> anyhow::Result<()> {
        let path = execution_path(&self.home, &record.name);
        let text = serde_json::to_vec_pretty(record)?;
        let temporary = path.with_extension("json.tmp");
        std::fs::write(&temporary, text).with_context(|| format!("writing {}", temporary.display()))?;
        std::fs::rename(&temporary, &path).with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }
}

fn execution_path(home: &Path, name: &str) -> PathBuf {
    home.join("executions").join(format!("{name}.json"))
}

/// One persisted execution.
pub fn load_execution(home: &Path, name: &str) -> anyhow::Result<ExecutionRecord> {
    let path = execution_path(home, name);
    let text = std::fs::read(&path)
        .with_context(|| format!("no execution {name} under {}", home.join("executions").display()))?;
    serde_json::from_slice(&text).with_context(|| format!("reading {}", path.display()))
}

/// Every persisted execution, oldest first.
pub fn list_executions(home: &Path) -> anyhow::Result<Vec<ExecutionRecord>> {
    let folder = home.join("executions");
    let mut records = Vec::new();
    let Ok(entries) = std::fs::read_dir(&folder) else { return Ok(records) };
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_some_and(|extension| extension == "json") {
            let text = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            records.push(
                serde_json::from_slice::<ExecutionRecord>(&text)
                    .with_context(|| format!("reading {}", path.display()))?,
            );
        }
    }
    records.sort_by(|a, b| a.start_date.cmp(&b.start_date).then(a.name.cmp(&b.name)));
    Ok(records)
}

/// Every file under each input's `landing/` folder (or the file itself), keyed
/// `landing/<relative path>`, in key order as a delivery would land.
pub fn collect_drops(inputs: &[PathBuf]) -> anyhow::Result<Vec<Drop>> {
    let mut drops = Vec::new();
    for input in inputs {
        if input.is_file() {
            let name = input.file_name().context("a file name")?.to_string_lossy();
            drops.push(Drop { path: input.clone(), key: format!("landing/{name}") });
            continue;
        }
        let landing = input.join("landing");
        let root = if landing.is_dir() { landing } else { input.clone() };
        walk(&root, &root, &mut drops)?;
    }
    drops.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(drops)
}

fn walk(root: &Path, dir: &Path, drops: &mut Vec<Drop>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            walk(root, &path, drops)?;
        } else if !path.file_name().is_some_and(|name| {
            let name = name.to_string_lossy();
            name.starts_with('.') || name == "pipeline.toml"
        }) {
            let relative = path.strip_prefix(root).context("a path under the landing folder")?;
            let key = relative
                .components()
                .map(|part| part.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            drops.push(Drop { path, key: format!("landing/{key}") });
        }
    }
    Ok(())
}

/// The interpreter's time scaling used by `lakestar` (exposed for tests).
pub fn timing(scale: f64) -> Timing {
    asl::Timing { retry_scale: scale, wait_scale: scale }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_names_every_function_of_the_definition() {
        let (names, arns) = substitutions(TEMPLATE).expect("substitutions");
        assert_eq!(names.len(), 4);
        assert_eq!(
            names.get("LoadFunctionArn").map(String::as_str),
            Some("arn:aws:lambda:us-east-1:000000000000:function:lakestar-load")
        );
        assert_eq!(arns.values().copied().collect::<BTreeSet<_>>(), STAGES.into_iter().collect());
        let machine = machine(DEFINITION, &names).expect("the deployed definition runs locally");
        assert_eq!(machine.start_at, "Ingest");
        assert!(super::machine(DEFINITION, &BTreeMap::new()).is_err(), "an unresolved ${{…}} is refused");
    }

    #[test]
    fn keys_are_encoded_as_s3_events_encode_them() {
        let encoded = lakestar::trigger::encode_key("landing/red flower+café.csv");
        assert_eq!(encoded, "landing/red+flower%2Bcaf%C3%A9.csv");
        assert_eq!(lakestar::trigger::decode_key(&encoded).ok().as_deref(), Some("landing/red flower+café.csv"));
    }
}
