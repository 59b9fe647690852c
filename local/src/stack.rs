//! The offline stack: the embedded S3 over `<home>/s3`, the warehouse (SQLite at
//! `<home>/warehouse.db` unless told otherwise), the trigger handler behind real S3 events,
//! and the real state machine run by the local interpreter with every Task dispatched to the
//! function crates' handlers. Executions persist as JSON under `<home>/executions/`, so a
//! later process can list, inspect and re-drive them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, bail};
use chrono::Utc;
use lakestar::contract::Contract;
use lakestar::function::{ContractSource, Resources, StageFunction};
use lakestar::lake::{EmbeddedS3, Lake};
use lakestar::mask::MaskingKey;
use lakestar::stage::{Stage, StageContext};
use lakestar::warehouse::Warehouse;
use lakestar_trigger::TriggerFunction;
use lambda_runtime::{Context as LambdaContext, Diagnostic, LambdaEvent};
use serde_json::{Value, json};

use crate::asl::{self, BoxFuture, Event, Failure, Interpreter, Invoker, Machine, Outcome, Timing};
use crate::home::{HomeLock, HomeSettings};
use crate::landing::event_time;
use crate::sfn::{LocalStepFunctions, STATE_MACHINE_ARN};
use crate::store::{self, ExecutionRecord, list_executions, load_execution};
use crate::template::{DEFINITION, TEMPLATE, machine, substitutions};

/// The lake bucket of the offline stack.
pub const BUCKET: &str = "lakestar-lake";
/// The environment variable that injects a fault into one stage (a testing aid).
pub const FAULT_ENV: &str = lakestar::config::FAULT;

/// How to open a stack.
#[derive(Debug, Clone)]
pub struct StackConfig {
    /// The stack's home.
    pub home: PathBuf,
    /// The contract file.
    pub contract: PathBuf,
    /// `postgres://…` or `sqlite://…`; default the warehouse the home's runs loaded into,
    /// else SQLite at `<home>/warehouse.db`.
    pub warehouse: Option<String>,
    /// Whether `warehouse` may differ from the one the home remembers (then remembered).
    pub switch_warehouse: bool,
    /// The masking key; default `LAKESTAR_MASKING_KEY` or `<home>/masking.key`.
    pub key: Option<MaskingKey>,
    /// Retry and Wait time scaling.
    pub timing: Timing,
    /// A stage whose handler fails with `InjectedFault` on a run's first attempt.
    pub fault: Option<String>,
    /// A Glue Data Catalog database the load keeps the curated tables in (none offline by
    /// default; tests give moto's).
    pub catalog: Option<lakestar::lake::glue::GlueCatalog>,
    /// The Secrets Manager client for sources that name a secret; default one configured
    /// from the environment (`AWS_ENDPOINT_URL` for another endpoint).
    pub secrets: Option<aws_sdk_secretsmanager::Client>,
    /// The embedded S3's port (`lakestar serve`); default any free one.
    pub s3_port: Option<u16>,
}

impl StackConfig {
    /// Defaults for `home` and `contract`: SQLite, the local key, retries 100 times faster,
    /// the fault from `LAKESTAR_FAULT`.
    pub fn new(home: impl Into<PathBuf>, contract: impl Into<PathBuf>) -> StackConfig {
        StackConfig {
            home: home.into(),
            contract: contract.into(),
            warehouse: None,
            switch_warehouse: false,
            key: None,
            timing: Timing { retry_scale: 0.01, wait_scale: 0.01 },
            fault: lakestar::config::Environment::get().fault.clone(),
            catalog: None,
            secrets: None,
            s3_port: None,
        }
    }
}

/// The handlers behind the function ARNs of the definition: each stage's Lambda handler.
struct Functions {
    /// Stage → its function.
    stages: BTreeMap<Stage, StageFunction>,
    /// Function ARN → stage.
    arns: BTreeMap<String, Stage>,
}

/// Dispatches one execution's tasks, injecting the configured fault on a first run.
struct Dispatch<'a> {
    functions: &'a Functions,
    fault: Option<Stage>,
    fired: AtomicBool,
}

fn lambda_failure(diagnostic: Diagnostic) -> Failure {
    // As Lambda reports a function error to Step Functions: the error type is the error's
    // name, the cause the JSON of the error.
    let cause = json!({"errorType": diagnostic.error_type, "errorMessage": diagnostic.error_message}).to_string();
    Failure { error: diagnostic.error_type, cause }
}

/// The fault tests' hook ([`lakestar::config::TEST_PAUSE_IN`]): at `point` (a state as the
/// stage begins, `<state>:after` once its handler returned and before the state machine
/// records it), says so on stderr and waits for the test's signal.
async fn test_pause(pause: Option<&str>, point: &str) {
    if pause == Some(point) {
        eprintln!("lakestar test: paused at {point}");
        tokio::time::sleep(std::time::Duration::from_secs(60)).await;
    }
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
            let pause = lakestar::config::Environment::get().test_pause_in.as_deref();
            test_pause(pause, stage.state_name()).await;
            if self.fault == Some(stage) && !self.fired.swap(true, Ordering::SeqCst) {
                return Err(Failure {
                    error: "InjectedFault".to_string(),
                    cause: format!(
                        "{FAULT_ENV}={stage}: the {stage} handler failed on purpose on this run's first attempt"
                    ),
                });
            }
            let function = self.functions.stages.get(&stage).ok_or_else(|| Failure {
                error: "Lambda.ResourceNotFoundException".to_string(),
                cause: format!("no local function for the {stage} stage"),
            })?;
            let event = LambdaEvent::new(payload, LambdaContext::default());
            let output = function.handle(event).await.map_err(lambda_failure)?;
            test_pause(pause, &format!("{}:after", stage.state_name())).await;
            let output = output.to_value().map_err(|error| Failure::runtime(error.to_string()))?;
            Ok(if wrapped {
                json!({"ExecutedVersion": "$LATEST", "Payload": output, "StatusCode": 200})
            } else {
                output
            })
        })
    }
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
    fault: Option<Stage>,
    /// The execution being run, for [`Stack::abort_running`].
    running: std::sync::Mutex<Option<String>>,
    /// Executions found interrupted when the stack opened.
    interrupted: Vec<String>,
    /// The contract's star tables, dimensions first.
    tables: Vec<String>,
    /// The contract, for its sources.
    contract: Contract,
    /// The Secrets Manager client sources use: given, or configured on first use.
    secrets: tokio::sync::OnceCell<aws_sdk_secretsmanager::Client>,
    _lock: HomeLock,
}

/// One source's extraction and what its pages' S3 events started.
#[derive(Debug)]
pub struct Extracted {
    /// The extraction.
    pub extraction: lakestar::extract::Extraction,
    /// The trigger's output for each page, in order.
    pub triggered: Vec<(String, lakestar::trigger::TriggerOutput)>,
}

impl Stack {
    /// Starts the embedded S3, uploads the contract, connects the warehouse, loads the state
    /// machine and starts the local Step Functions endpoint.
    pub async fn open(config: StackConfig) -> anyhow::Result<Stack> {
        let fault = match config.fault.as_deref() {
            None => None,
            Some(name) => Some(Stage::parse(name).with_context(|| {
                let names: Vec<&str> = Stage::ALL.iter().map(|stage| stage.name()).collect();
                format!("{FAULT_ENV}={name}: use one of {}", names.join(", "))
            })?),
        };
        let contract = Contract::load(&config.contract)?;
        let lock = HomeLock::acquire(&config.home)?;
        std::fs::create_dir_all(config.home.join("executions"))
            .with_context(|| format!("creating {}", config.home.join("executions").display()))?;
        let interrupted = store::recover_interrupted(&config.home)?;
        let s3 = match config.s3_port {
            Some(port) => EmbeddedS3::start_on(&config.home.join("s3"), port).await?,
            None => EmbeddedS3::start(&config.home.join("s3")).await?,
        };
        s3.create_bucket(BUCKET).await?;
        let lake = Lake::new(s3.client(), BUCKET);
        let text = std::fs::read(&config.contract).with_context(|| format!("reading {}", config.contract.display()))?;
        lake.put_bytes(lakestar::lake::CONFIG_KEY, text, "application/toml").await?;
        let mut settings = HomeSettings::read(&config.home)?;
        let warehouse_url =
            settings.warehouse_for(&config.home, config.warehouse.as_deref(), config.switch_warehouse)?;
        let warehouse = Warehouse::connect(&warehouse_url).await?;
        settings.warehouse = Some(warehouse_url.clone());
        settings.contract = std::fs::canonicalize(&config.contract).ok();
        settings.write(&config.home)?;
        let key = match config.key {
            Some(key) => key,
            None => MaskingKey::local(&config.home, &contract.masking.key_version)?,
        };
        let (names, arns) = substitutions(TEMPLATE)?;
        let machine = machine(DEFINITION, &names)?;
        let mut context =
            StageContext::new(lake.clone(), contract.clone()).with_masking_key(key).with_warehouse(warehouse.clone());
        if let Some(catalog) = config.catalog {
            context = context.with_catalog(catalog);
        }
        // The functions read the contract from the lake bucket and check its ETag at every
        // invocation, as in the cloud: a contract fixed in the bucket (or uploaded by the next
        // `lakestar` command) is what a re-drive uses.
        let stages = Stage::ALL
            .into_iter()
            .map(|stage| {
                let source = ContractSource::S3 {
                    lake: lake.clone(),
                    key: lakestar::lake::CONFIG_KEY.to_string(),
                    cached: Default::default(),
                };
                (stage, StageFunction::with_resources(stage, Resources::new(lake.clone(), source, &context)))
            })
            .collect();
        let functions = Functions { stages, arns };
        let known: BTreeSet<String> = list_executions(&config.home)?.into_iter().map(|record| record.name).collect();
        let sfn = LocalStepFunctions::start(known).await.context("starting the local Step Functions endpoint")?;
        let trigger = TriggerFunction::new(sfn.client(), STATE_MACHINE_ARN, BUCKET, contract.clone());
        let sources = contract.clone();
        let secrets = tokio::sync::OnceCell::new_with(config.secrets);
        let mut tables: Vec<(bool, String)> = contract
            .datasets
            .iter()
            .map(|dataset| (dataset.table.kind != lakestar::contract::TableKind::Dimension, dataset.table.name.clone()))
            .collect();
        tables.sort();
        let tables = tables.into_iter().map(|(_, name)| name).collect();
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
            fault,
            running: std::sync::Mutex::new(None),
            interrupted,
            tables,
            contract: sources,
            secrets,
            _lock: lock,
        })
    }

    /// The contract's extraction sources, by name.
    pub fn sources(&self) -> Vec<String> {
        self.contract.sources.iter().map(|source| source.name.clone()).collect()
    }

    /// Extracts sources (those named, else all the contract's) into the lake's `landing/`,
    /// then sends each page's S3 event to the trigger as the bucket's notification would; a
    /// page whose run exists already (an extraction resumed after a crash) is a duplicate.
    /// Secrets named by sources are read from Secrets Manager (`AWS_ENDPOINT_URL` to use
    /// another endpoint).
    pub async fn extract(
        &self,
        names: &[String],
        options: &lakestar::extract::Options,
    ) -> anyhow::Result<Vec<Extracted>> {
        let sources = self.contract.sources_named(names)?;
        let needs_secrets =
            sources.iter().any(|source| matches!(source.connection, lakestar::contract::source::Connection::Secret(_)));
        // Configured once per stack, on the first extraction that needs it.
        let secrets = if needs_secrets {
            let client = self
                .secrets
                .get_or_init(|| async {
                    let config = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
                    aws_sdk_secretsmanager::Client::new(&config)
                })
                .await;
            Some(client.clone())
        } else {
            None
        };
        let extractor = lakestar::extract::Extractor::new(self.lake.clone(), secrets);
        let mut done = Vec::new();
        for source in sources {
            let extraction = extractor.extract(source, options).await?;
            let mut triggered = Vec::new();
            for page in &extraction.pages {
                triggered.push((page.key.clone(), self.notify(&page.key, Utc::now(), None).await?));
            }
            done.push(Extracted { extraction, triggered });
        }
        Ok(done)
    }

    /// The contract the stack opened with.
    pub fn contract(&self) -> &Contract {
        &self.contract
    }

    /// The home.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// The star tables of the contract, dimensions first.
    pub fn contract_tables(&self) -> &[String] {
        &self.tables
    }

    /// Executions the stack found interrupted when it opened (now `FAILED` with
    /// `Interrupted`, resumed by a re-drive).
    pub fn interrupted(&self) -> &[String] {
        &self.interrupted
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
        self.lake.put_bytes(key, bytes, "application/octet-stream").await?;
        self.notify(key, event_time(key, path), None).await
    }

    /// Sends the S3 event of the object under `key` to the trigger. `generation` processes
    /// it again as a new run: the event names a new version of the object, as an object
    /// written again in a versioned bucket would.
    async fn notify(
        &self,
        key: &str,
        time: chrono::DateTime<Utc>,
        generation: Option<u32>,
    ) -> anyhow::Result<lakestar::trigger::TriggerOutput> {
        let head = self
            .s3
            .client()
            .head_object()
            .bucket(BUCKET)
            .key(key)
            .send()
            .await
            .with_context(|| format!("reading the object {key} (it is no longer in the lake's landing/)"))?;
        let etag = head.e_tag().unwrap_or_default().trim_matches('"').to_string();
        let mut object = json!({
            "key": lakestar::trigger::encode_key(key),
            "size": head.content_length().unwrap_or(0),
            "eTag": etag,
            "sequencer": format!("{:016X}", time.timestamp_millis()),
        });
        if let Some(generation) = generation {
            object["eTag"] = json!(format!("{etag}-reprocess-{generation}"));
        }
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
                "object": object,
            }
        }]});
        let output = self
            .trigger
            .handle(LambdaEvent::new(event, LambdaContext::default()))
            .await
            .map_err(|error| anyhow::anyhow!("trigger: {}: {}", error.error_type, error.error_message))?;
        Ok(output)
    }

    /// Processes the object of execution `name` again as a new run (its file, as it is now
    /// in the lake's `landing/`): what a new object version does in the cloud. The new run is
    /// started; [`Stack::run_started`] runs it.
    pub async fn reprocess(&self, name: &str) -> anyhow::Result<lakestar::trigger::TriggerOutput> {
        let record = load_execution(&self.home, name)?;
        let key = record.key().to_string();
        let earlier = list_executions(&self.home)?.iter().filter(|other| other.key() == key).count();
        let time = record.input["run"]["time"]
            .as_str()
            .and_then(|text| chrono::DateTime::parse_from_rfc3339(text).ok())
            .map_or_else(Utc::now, |time| time.with_timezone(&Utc));
        self.notify(&key, time, Some(earlier as u32)).await
    }

    /// Gives up a failed execution: `ABANDONED`, left out of `redrive --all-failed`.
    pub fn abandon(&self, name: &str) -> anyhow::Result<ExecutionRecord> {
        let mut record = load_execution(&self.home, name)?;
        if !record.is_redrivable() {
            bail!("execution {name} is {}; only a FAILED or ABORTED execution can be abandoned", record.status);
        }
        record.status = store::ABANDONED.to_string();
        record.stop_date = Some(Utc::now());
        self.save(&record)?;
        Ok(record)
    }

    /// Records the execution being run as stopped by `signal` (`ABORTED`, resumable from the
    /// state it was in), before the process exits. Returns its name, if one was running.
    pub fn abort_running(&self, signal: &str) -> anyhow::Result<Option<String>> {
        let Some(name) = self.running.lock().ok().and_then(|running| running.clone()) else { return Ok(None) };
        let mut record = load_execution(&self.home, &name)?;
        if record.status != store::RUNNING {
            return Ok(None);
        }
        let state = record.resume_state.clone().unwrap_or_else(|| self.machine.start_at.clone());
        record.status = store::ABORTED.to_string();
        record.error = Some("Aborted".to_string());
        record.cause = Some(format!(
            "{signal} stopped the execution in {state}; `lakestar redrive {name} --home {}` resumes it there",
            self.home.display()
        ));
        record.failed_state = Some(state);
        record.failed_input = record.resume_input.clone().or_else(|| Some(record.input.clone()));
        record.owner_pid = None;
        record.stop_date = Some(Utc::now());
        self.save(&record)?;
        Ok(Some(name))
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
            status: store::RUNNING.to_string(),
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
            owner_pid: Some(std::process::id()),
            resume_state: None,
            resume_input: None,
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
        let mut record = self.redrivable(name)?;
        // An execution interrupted before its first state resumes from the start.
        let state = record.failed_state.clone().unwrap_or_else(|| self.machine.start_at.clone());
        let input = record.failed_input.clone().unwrap_or_else(|| record.input.clone());
        record.redrive_count += 1;
        record.status = store::RUNNING.to_string();
        record.owner_pid = Some(std::process::id());
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

    /// The execution `name` if a re-drive would resume it, else why not.
    pub fn redrivable(&self, name: &str) -> anyhow::Result<ExecutionRecord> {
        let record = load_execution(&self.home, name)?;
        if !record.is_redrivable() {
            bail!(
                "execution {name} is {}; only a FAILED or ABORTED execution can be re-driven{}",
                record.status,
                if record.status == store::SUCCEEDED {
                    format!(" (`lakestar reprocess {name}` processes its file again as a new run)")
                } else {
                    String::new()
                }
            );
        }
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
            fault: if first_run { self.fault } else { None },
            fired: AtomicBool::new(false),
        };
        if let Ok(mut running) = self.running.lock() {
            *running = Some(record.name.clone());
        }
        // Each top-level state entered is saved as where the run resumes if its process stops.
        let progress = std::sync::Mutex::new(record.clone());
        let checkpoint = |state: &str, input: &Value, history: &[Event]| {
            let Ok(mut saved) = progress.lock() else { return };
            saved.resume_state = Some(state.to_string());
            saved.resume_input = Some(input.clone());
            saved.history = history.to_vec();
            if let Err(error) = store::save(&self.home, &saved) {
                tracing::warn!(run = %saved.name, state, "Could not save the execution's progress: {error:#}");
            }
        };
        let (outcome, history) = {
            let interpreter = Interpreter::new(&dispatch, self.timing, &record.name, &record.input, history)
                .with_checkpoint(&checkpoint);
            let outcome = interpreter.run(&self.machine, from, input).await;
            match &outcome {
                Outcome::Succeeded(_) => interpreter.record("ExecutionSucceeded", None, Value::Null),
                Outcome::Failed { state, failure, .. } => interpreter.record(
                    "ExecutionFailed",
                    Some(state),
                    json!({"error": failure.error, "cause": failure.cause}),
                ),
            }
            (outcome, interpreter.history())
        };
        if let Ok(saved) = progress.into_inner() {
            record.resume_state = saved.resume_state;
            record.resume_input = saved.resume_input;
        }
        if let Ok(mut running) = self.running.lock() {
            *running = None;
        }
        match outcome {
            Outcome::Succeeded(output) => {
                record.status = store::SUCCEEDED.to_string();
                record.output = Some(output);
                record.error = None;
                record.cause = None;
                record.failed_state = None;
                record.failed_input = None;
            }
            Outcome::Failed { state, input, failure } => {
                record.status = store::FAILED.to_string();
                record.error = Some(failure.error);
                record.cause = Some(failure.cause);
                record.failed_state = Some(state);
                record.failed_input = Some(input);
            }
        }
        record.stop_date = Some(Utc::now());
        record.owner_pid = None;
        record.history = history;
        // A record that cannot be saved (a full disk) must not lose the execution's outcome:
        // the error says both.
        self.save(record).with_context(|| {
            let outcome = match (&record.error, &record.failed_state) {
                (Some(error), Some(state)) => {
                    format!("execution {} failed in {state} with {error}: {}", record.name, record.failure_message())
                }
                _ => format!("execution {} {}", record.name, record.status),
            };
            format!(
                "{outcome}; and its record could not be saved under {} (it shows as interrupted: free space, then `lakestar redrive --all-failed` resumes it)",
                self.home.join("executions").display()
            )
        })
    }

    fn save(&self, record: &ExecutionRecord) -> anyhow::Result<()> {
        store::save(&self.home, record)
    }
}

/// The interpreter's time scaling used by `lakestar` (exposed for tests).
pub fn timing(scale: f64) -> Timing {
    asl::Timing { retry_scale: scale, wait_scale: scale }
}
