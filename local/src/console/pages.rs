//! Each page of the console, and its actions.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use arrow::util::display::array_value_to_string;
use lakestar::contract::TableKind;
use lakestar::load::QualityReport;
use lakestar::warehouse::{Warehouse, ddl};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::Value;

use super::html::{action, badge, encode, escape, number, page, table};
use super::{Asked, Console, Reply, Visit, not_found};
use crate::store::{self, ExecutionRecord, list_executions, load_execution};

/// Rejected rows per quarantine page.
const PAGE_ROWS: usize = 50;

/// An execution's status as the summary shows it: `SUCCEEDED_WITH_WARNINGS` when a warn rule
/// or check did not pass.
fn status_of(record: &ExecutionRecord) -> String {
    if record.status == store::SUCCEEDED && !record.warnings().is_empty() {
        "SUCCEEDED_WITH_WARNINGS".to_string()
    } else {
        record.status.clone()
    }
}

/// How long it ran, in words.
fn duration_of(record: &ExecutionRecord) -> String {
    let Some(stop) = record.stop_date else { return "running".to_string() };
    let millis = (stop - record.start_date).num_milliseconds().max(0);
    if millis < 60_000 {
        format!("{:.1} s", millis as f64 / 1000.0)
    } else {
        format!("{} min {} s", millis / 60_000, millis % 60_000 / 1000)
    }
}

fn run_link(name: &str) -> String {
    format!("<a href=\"/executions/{}\">{}</a>", encode(name), escape(name))
}

fn options(name: &str, label: &str, choices: &[String], chosen: Option<&str>) -> String {
    let mut out =
        format!("<label>{label} <select name=\"{name}\" id=\"filter-{name}\"><option value=\"\">all</option>");
    for choice in choices {
        let selected = if Some(choice.as_str()) == chosen { " selected" } else { "" };
        let _ = write!(out, "<option{selected}>{}</option>", escape(choice));
    }
    out.push_str("</select></label> ");
    out
}

impl Console {
    /// `/`: every execution, newest first, filtered by status and dataset.
    pub(super) fn executions(&self, asked: &Asked) -> anyhow::Result<Reply> {
        let mut records = list_executions(&self.home)?;
        records.reverse();
        let running = records.iter().any(|record| record.status == store::RUNNING);
        let statuses: BTreeSet<String> = records.iter().map(status_of).collect();
        let datasets: BTreeSet<String> = records.iter().map(|record| record.dataset().to_string()).collect();
        let (status, dataset) = (asked.query("status"), asked.query("dataset"));
        let rows: Vec<Vec<String>> = records
            .iter()
            .filter(|record| status.is_none_or(|wanted| status_of(record) == wanted))
            .filter(|record| dataset.is_none_or(|wanted| record.dataset() == wanted))
            .map(|record| {
                let (received, valid, quarantined) = record
                    .rows()
                    .map(|(received, valid, quarantined)| (number(received), number(valid), number(quarantined)))
                    .unwrap_or_else(|| (number("-"), number("-"), number("-")));
                vec![
                    badge(&status_of(record)),
                    run_link(&record.name),
                    escape(record.dataset()),
                    escape(record.key().trim_start_matches("landing/")),
                    received,
                    valid,
                    quarantined,
                    escape(&duration_of(record)),
                    number(record.redrive_count),
                ]
            })
            .collect();
        let mut body = String::from("<form method=\"get\" action=\"/\" class=\"panel\">");
        body.push_str(&options("status", "Status", &statuses.into_iter().collect::<Vec<_>>(), status));
        body.push_str(&options("dataset", "Dataset", &datasets.into_iter().collect::<Vec<_>>(), dataset));
        body.push_str("<button id=\"filter\">Filter</button></form>");
        if records.is_empty() {
            body.push_str(&format!(
                "<div class=\"panel notice\">No executions under {} yet: <code>lakestar run examples/retail{}</code> runs the example.</div>",
                escape(&self.home.display().to_string()),
                escape(&crate::home::home_flag(&self.home))
            ));
        }
        if running {
            body.push_str("<p id=\"refreshing\">Executions are running: this page reloads every two seconds.</p>");
        }
        body.push_str(&table(
            "executions",
            &["Status", "Run", "Dataset", "File", "Received", "Valid", "Quarantined", "Duration", "Re-drives"],
            &rows,
        ));
        Ok(Reply::html(200, page("Executions", "/", &body, running)))
    }

    /// `/executions/<name>`: the state graph, the failure and what to do, the actions, each
    /// stage's output and the event history.
    pub(super) fn execution(&self, name: &str) -> anyhow::Result<Reply> {
        let Ok(record) = load_execution(&self.home, name) else {
            return Ok(not_found(&format!("There is no execution {name} under {}.", self.home.display())));
        };
        let entered: BTreeSet<&str> = record
            .history
            .iter()
            .filter(|event| event.kind == "StateEntered")
            .filter_map(|event| event.state.as_deref())
            .collect();
        let stopped = record.is_redrivable();
        let visit = |state: &str| {
            if record.status == store::RUNNING && record.resume_state.as_deref() == Some(state) {
                Visit::Running
            } else if stopped && record.failed_state.as_deref() == Some(state) {
                Visit::Failed
            } else if entered.contains(state) {
                Visit::Succeeded
            } else {
                Visit::NotReached
            }
        };
        let status = status_of(&record);
        let mut body = format!(
            "<div class=\"panel\"><p>{} <strong id=\"run\">{}</strong></p><p>Dataset {} · file <code>{}</code> · started {} · {} · re-driven {} time(s)</p>",
            badge(&status),
            escape(&record.name),
            escape(record.dataset()),
            escape(record.key()),
            record.start_date.format("%Y-%m-%d %H:%M:%S UTC"),
            escape(&duration_of(&record)),
            record.redrive_count
        );
        if let Some((received, valid, quarantined)) = record.rows() {
            let _ = write!(body, "<p id=\"rows\">{received} rows received, {valid} valid, {quarantined} quarantined");
            if quarantined > 0 {
                let _ = write!(
                    body,
                    " · <a href=\"/executions/{}/quarantine\">the quarantined rows</a>",
                    encode(&record.name)
                );
            }
            body.push_str("</p>");
        }
        for warning in record.warnings() {
            let _ = write!(body, "<p class=\"warning\">Warning: {}</p>", escape(&warning));
        }
        body.push_str("</div>");
        if stopped {
            let error = record.error.clone().unwrap_or_default();
            let advice = crate::advice::what_to_do(&error, &record.name, &crate::home::home_flag(&self.home));
            let _ = write!(
                body,
                "<div class=\"panel failure\" id=\"failure\"><p><strong>{}</strong> in <strong>{}</strong></p><pre>{}</pre><p>What to do: {}</p></div>",
                escape(&error),
                escape(record.failed_state.as_deref().unwrap_or("the first state")),
                escape(&record.failure_message()),
                escape(&advice)
            );
        }
        if self.stack.is_some() {
            let base = format!("/executions/{}", encode(&record.name));
            body.push_str("<div class=\"panel\" id=\"actions\">");
            if stopped {
                body.push_str(&action(&format!("{base}/redrive"), "Re-drive", "redrive", true));
                body.push_str(&action(&format!("{base}/abandon"), "Abandon", "abandon", false));
            }
            if record.status != store::RUNNING {
                body.push_str(&action(&format!("{base}/reprocess"), "Process again", "reprocess", false));
            }
            body.push_str("<span> (as <code>lakestar redrive</code>, <code>abandon</code> and <code>reprocess</code> do)</span></div>");
        }
        body.push_str("<h2>State machine</h2>");
        body.push_str(&self.graph.svg(visit));
        let state = record.output.as_ref().or(record.failed_input.as_ref()).or(record.resume_input.as_ref());
        body.push_str("<h2>Stage outputs</h2>");
        for section in ["ingest", "validate", "mask", "load"] {
            if let Some(output) = state.and_then(|state| state.get(section)) {
                let _ = write!(
                    body,
                    "<details id=\"output-{section}\"><summary>{section}</summary><pre>{}</pre></details>",
                    escape(&serde_json::to_string_pretty(output).unwrap_or_default())
                );
            }
        }
        let events: Vec<Vec<String>> = record
            .history
            .iter()
            .map(|event| {
                let detail = match (&event.detail["error"], &event.detail["cause"]) {
                    (Value::String(error), cause) => format!("{error}: {}", cause.as_str().unwrap_or_default()),
                    _ => String::new(),
                };
                vec![
                    number(event.id),
                    escape(&event.timestamp.format("%H:%M:%S%.3f").to_string()),
                    escape(&event.kind),
                    escape(event.state.as_deref().unwrap_or("")),
                    escape(&detail),
                ]
            })
            .collect();
        body.push_str("<h2>Event history</h2>");
        body.push_str(&table("history", &["#", "Time", "Event", "State", "Error"], &events));
        Ok(Reply::html(200, page(&format!("Execution {}", record.name), "/", &body, record.status == store::RUNNING)))
    }

    /// `POST /executions/<name>/<action>`: re-drive, process again or abandon, then the
    /// execution's page (the new run's, for process again). Re-drive and process again run
    /// in the background, one action at a time; the page shows them running.
    pub(super) async fn act(self: &Arc<Self>, name: &str, verb: &str) -> anyhow::Result<Reply> {
        let Some(stack) = &self.stack else {
            return Ok(Reply::html(
                409,
                page(
                    "No stack",
                    "/",
                    "<p>This console was started without a contract, so it cannot run executions: <code>lakestar serve --config pipeline.toml</code>.</p>",
                    false,
                ),
            ));
        };
        let refused = |error: anyhow::Error| {
            Reply::html(
                409,
                page(
                    "Not done",
                    "/",
                    &format!(
                        "<div class=\"panel failure\"><pre>{}</pre></div><p><a href=\"/executions/{}\">Back to the execution</a></p>",
                        escape(&format!("{error:#}")),
                        encode(name)
                    ),
                    false,
                ),
            )
        };
        let shown = match verb {
            "abandon" => {
                let _acting = self.acting.lock().await;
                match stack.abandon(name) {
                    Ok(record) => record.name,
                    Err(error) => return Ok(refused(error)),
                }
            }
            "redrive" => {
                let before = match stack.redrivable(name) {
                    Ok(record) => record.redrive_count,
                    Err(error) => return Ok(refused(error)),
                };
                let (console, run) = (Arc::clone(self), name.to_string());
                let acting = Arc::clone(&self.acting).lock_owned().await;
                tokio::spawn(async move {
                    let _acting = acting;
                    if let Some(stack) = &console.stack
                        && let Err(error) = stack.redrive(&run).await
                    {
                        tracing::warn!(run = %run, "The console's re-drive did not finish: {error:#}");
                    }
                });
                self.started(name, |record| record.redrive_count > before).await;
                name.to_string()
            }
            "reprocess" => {
                let acting = Arc::clone(&self.acting).lock_owned().await;
                let triggered = match stack.reprocess(name).await {
                    Ok(triggered) => triggered,
                    Err(error) => return Ok(refused(error)),
                };
                let console = Arc::clone(self);
                tokio::spawn(async move {
                    let _acting = acting;
                    if let Some(stack) = &console.stack
                        && let Err(error) = stack.run_started(|_| {}).await
                    {
                        tracing::warn!("The console's new run did not finish: {error:#}");
                    }
                });
                let Some(new_run) = triggered.started.first() else {
                    return Ok(Reply::redirect("/".to_string()));
                };
                self.started(new_run, |_| true).await;
                new_run.clone()
            }
            _ => return Ok(not_found(&format!("There is no action {verb}."))),
        };
        Ok(Reply::redirect(format!("/executions/{}", encode(&shown))))
    }

    /// Waits (up to five seconds) until the execution's record shows the action began, so
    /// that the page the browser is sent to shows it.
    async fn started(&self, name: &str, began: impl Fn(&ExecutionRecord) -> bool) {
        for _ in 0..100 {
            if load_execution(&self.home, name).is_ok_and(|record| began(&record)) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// `/executions/<name>/quarantine`: the run's rejected rows, each stage's, with their line
    /// and reasons, a page at a time; values only when asked for (`?values=1`).
    pub(super) fn quarantine(&self, name: &str, asked: &Asked) -> anyhow::Result<Reply> {
        let Ok(record) = load_execution(&self.home, name) else {
            return Ok(not_found(&format!("There is no execution {name}.")));
        };
        let folder: PathBuf = self.home.join("s3").join(crate::stack::BUCKET).join(format!(
            "quarantine/{}/run={}",
            record.dataset(),
            record.name
        ));
        let show_values = asked.query("values") == Some("1");
        let wanted_page: usize = asked.query("page").and_then(|page| page.parse().ok()).unwrap_or(1).max(1);
        let files = [
            ("ingest", "ingest_rejected.parquet"),
            ("validate", "rejected.parquet"),
            ("load", "load_rejected.parquet"),
        ];
        let mut total = 0usize;
        let mut skip = (wanted_page - 1) * PAGE_ROWS;
        let mut rows: Vec<Vec<String>> = Vec::new();
        for (stage, file) in files {
            let path = folder.join(file);
            let Ok(opened) = File::open(&path) else { continue };
            let builder = ParquetRecordBatchReaderBuilder::try_new(opened)
                .with_context(|| format!("reading {}", path.display()))?;
            let count = usize::try_from(builder.metadata().file_metadata().num_rows()).unwrap_or(0);
            total += count;
            if skip >= count {
                skip -= count;
                continue;
            }
            let room = PAGE_ROWS - rows.len();
            if room == 0 {
                continue;
            }
            let reader = builder.with_offset(skip).with_limit(room).build()?;
            skip = 0;
            for batch in reader {
                let batch = batch?;
                let schema = batch.schema();
                let text = |name: &str, row: usize| {
                    batch
                        .column_by_name(name)
                        .and_then(|column| array_value_to_string(column, row).ok())
                        .unwrap_or_default()
                };
                for row in 0..batch.num_rows() {
                    let mut cells = vec![
                        escape(stage),
                        number(escape(&text("_source_line", row))),
                        escape(&text("_reasons", row).replace("; ", "\n")),
                    ];
                    if show_values {
                        let values: Vec<String> = schema
                            .fields()
                            .iter()
                            .filter(|field| !field.name().starts_with('_'))
                            .map(|field| format!("{}={}", field.name(), text(field.name(), row)))
                            .collect();
                        cells.push(escape(&values.join("\n")));
                    }
                    rows.push(cells);
                }
            }
        }
        let pages = total.div_ceil(PAGE_ROWS).max(1);
        let base = format!("/executions/{}/quarantine", encode(&record.name));
        let values_flag = if show_values { "&values=1" } else { "" };
        let mut body = format!(
            "<p>{total} quarantined row(s) of {} · page <span id=\"page\">{wanted_page}</span> of {pages}",
            run_link(&record.name)
        );
        if wanted_page > 1 {
            let _ = write!(
                body,
                " · <a id=\"previous\" href=\"{base}?page={}{values_flag}\">previous</a>",
                wanted_page - 1
            );
        }
        if wanted_page < pages {
            let _ = write!(body, " · <a id=\"next\" href=\"{base}?page={}{values_flag}\">next</a>", wanted_page + 1);
        }
        body.push_str("</p>");
        if show_values {
            let _ = write!(
                body,
                "<div class=\"panel notice\">The rows' values are shown: they may be personal data. <a id=\"hide-values\" href=\"{base}?page={wanted_page}\">Hide them</a></div>"
            );
        } else {
            let _ = write!(
                body,
                "<p>Values are hidden: they may be personal data. <a id=\"show-values\" href=\"{base}?page={wanted_page}&values=1\">Show the values</a></p>"
            );
        }
        let mut headers = vec!["Stage", "Line", "Reasons"];
        if show_values {
            headers.push("Values");
        }
        body.push_str(
            &table("quarantine", &headers, &rows).replace("<td>", "<td><pre>").replace("</td>", "</pre></td>"),
        );
        Ok(Reply::html(200, page(&format!("Quarantine of {}", record.name), "/", &body, false)))
    }

    /// `/quality`: per dataset, its runs over time as charts and a table; `?run=` one run's
    /// rejects per rule and nulls per column.
    pub(super) fn quality(&self, asked: &Asked) -> anyhow::Result<Reply> {
        let reports = crate::reports::reports(&self.home, None)?;
        let datasets: BTreeSet<&str> = reports.iter().map(|report| report.dataset.as_str()).collect();
        let chosen = asked.query("dataset").or_else(|| datasets.iter().next().copied());
        let mut body = String::from("<p>Datasets: ");
        for dataset in &datasets {
            let here = if Some(*dataset) == chosen { " class=\"here\"" } else { "" };
            let _ = write!(body, "<a{here} href=\"/quality?dataset={}\">{}</a> ", encode(dataset), escape(dataset));
        }
        body.push_str("</p>");
        let Some(chosen) = chosen else {
            body.push_str("<div class=\"panel notice\">No quality reports yet: each run's load writes one.</div>");
            return Ok(Reply::html(200, page("Quality", "/quality", &body, false)));
        };
        let runs: Vec<&QualityReport> = reports.iter().filter(|report| report.dataset == chosen).collect();
        if let Some(run) = asked.query("run") {
            let Some(report) = runs.iter().find(|report| report.run == run) else {
                return Ok(not_found(&format!("There is no quality report of run {run} in dataset {chosen}.")));
            };
            return Ok(Reply::html(200, page(&format!("Quality of {run}"), "/quality", &run_quality(report), false)));
        }
        let _ = write!(body, "<h2>{}</h2>", escape(chosen));
        body.push_str(&charts(&runs));
        let rows: Vec<Vec<String>> = runs
            .iter()
            .map(|report| {
                vec![
                    escape(
                        &report
                            .landed_at
                            .map_or_else(|| "-".to_string(), |time| time.format("%Y-%m-%d %H:%M:%S").to_string()),
                    ),
                    format!(
                        "<a href=\"/quality?dataset={}&run={}\">{}</a>",
                        encode(&report.dataset),
                        encode(&report.run),
                        escape(&report.run)
                    ),
                    escape(if report.status.is_empty() { "-" } else { &report.status }),
                    number(report.received),
                    number(report.valid),
                    number(format!("{:.1}%", report.reject_ratio * 100.0)),
                    number(report.rules.iter().filter(|rule| rule.failed()).count()),
                    number(report.rules.iter().filter(|rule| rule.warned()).count()),
                    number(crate::reports::drift_count(report)),
                ]
            })
            .collect();
        body.push_str(&table(
            "runs",
            &["Landed", "Run", "Status", "Rows", "Valid", "Rejected", "Rules failed", "Rules warned", "Drift"],
            &rows,
        ));
        Ok(Reply::html(200, page("Quality", "/quality", &body, false)))
    }

    /// `/warehouse`: each star table's rows (and current rows of a dimension), with a search
    /// for a natural key's history.
    pub(super) async fn warehouse(&self) -> anyhow::Result<Reply> {
        let Some(stack) = &self.stack else {
            return Ok(Reply::html(
                200,
                page(
                    "Warehouse",
                    "/warehouse",
                    "<div class=\"panel notice\">No warehouse: this console was started without a contract (<code>lakestar serve --contract pipeline.toml</code>).</div>",
                    false,
                ),
            ));
        };
        let warehouse = stack.warehouse();
        let mut rows = Vec::new();
        for name in stack.contract_tables() {
            let dataset = stack.contract().datasets.iter().find(|dataset| &dataset.table.name == name);
            let quoted = ddl::quote(name)?;
            let count = scalar(warehouse, &format!("SELECT CAST(COUNT(*) AS TEXT) FROM {quoted}")).await;
            let dimension = dataset.is_some_and(|dataset| dataset.table.kind == TableKind::Dimension);
            let current = if dimension {
                let current =
                    if warehouse.dialect() == ddl::Dialect::Postgres { "is_current" } else { "is_current = 1" };
                scalar(warehouse, &format!("SELECT CAST(COUNT(*) AS TEXT) FROM {quoted} WHERE {current}")).await
            } else {
                None
            };
            let history = match dataset {
                Some(dataset) if dimension => format!(
                    "<form method=\"get\" action=\"/warehouse/{}\"><input name=\"key\" id=\"key-{}\" placeholder=\"{}\"> <button id=\"history-{}\">History</button></form>",
                    encode(name),
                    escape(name),
                    escape(&dataset.table.natural_key.join(" | ")),
                    escape(name)
                ),
                _ => String::new(),
            };
            rows.push(vec![
                escape(name),
                escape(if dimension { "dimension" } else { "fact" }),
                number(count.as_deref().unwrap_or("not loaded yet")),
                number(current.as_deref().unwrap_or("")),
                history,
            ]);
        }
        let body = format!(
            "<p>Warehouse <code>{}</code></p>{}",
            escape(&crate::home::redact_url(stack.warehouse_url())),
            table("tables", &["Table", "Kind", "Rows", "Current rows", "A natural key's history"], &rows)
        );
        Ok(Reply::html(200, page("Warehouse", "/warehouse", &body, false)))
    }

    /// `/warehouse/<dimension>?key=…`: the SCD2 versions of one natural key as a timeline.
    pub(super) async fn history(&self, table_name: &str, asked: &Asked) -> anyhow::Result<Reply> {
        let Some(stack) = &self.stack else { return Ok(not_found("This console has no warehouse.")) };
        let contract = stack.contract();
        let Some(dataset) = contract
            .datasets
            .iter()
            .find(|dataset| dataset.table.name == table_name && dataset.table.kind == TableKind::Dimension)
        else {
            return Ok(not_found(&format!("There is no dimension {table_name}.")));
        };
        let Some(key) = asked.query("key") else {
            return Ok(Reply::redirect("/warehouse".to_string()));
        };
        let parts: Vec<&str> = key.split('|').map(str::trim).collect();
        if parts.len() != dataset.table.natural_key.len() {
            return Ok(Reply::html(
                400,
                page(
                    "History",
                    "/warehouse",
                    &format!(
                        "<p>{table_name}'s natural key has {} part(s) ({}): give them apart by <code>|</code>.</p>",
                        dataset.table.natural_key.len(),
                        escape(&dataset.table.natural_key.join(", "))
                    ),
                    false,
                ),
            ));
        }
        let warehouse = stack.warehouse();
        let dialect = warehouse.dialect();
        let columns: Vec<String> = ddl::table_columns(dataset, contract, dialect)?
            .into_iter()
            .map(|column| column.name)
            .filter(|name| !matches!(name.as_str(), "row_hash" | "type1_hash"))
            .collect();
        let select: Vec<String> = columns
            .iter()
            .map(|name| ddl::quote(name).map(|quoted| format!("CAST({quoted} AS TEXT)")))
            .collect::<lakestar::Result<_>>()?;
        let mut filters = Vec::new();
        for (index, column) in ddl::natural_key_columns(dataset)?.iter().enumerate() {
            let placeholder =
                if dialect == ddl::Dialect::Postgres { format!("${}", index + 1) } else { "?".to_string() };
            filters.push(format!("CAST({column} AS TEXT) = {placeholder}"));
        }
        let statement = format!(
            "SELECT {} FROM {} WHERE {} ORDER BY {}",
            select.join(", "),
            ddl::quote(table_name)?,
            filters.join(" AND "),
            ddl::quote("valid_from")?
        );
        let versions = texts(warehouse, &statement, &parts).await?;
        let position = |name: &str| columns.iter().position(|column| column == name);
        let (from, to, current) = (position("valid_from"), position("valid_to"), position("is_current"));
        let tracked: Vec<usize> = dataset
            .columns
            .iter()
            .filter(|column| column.config.scd == Some(2))
            .filter_map(|column| position(column.target_name()))
            .collect();
        let cell = |row: &Vec<Option<String>>, index: Option<usize>| {
            index.and_then(|index| row.get(index).cloned().flatten()).unwrap_or_default()
        };
        let mut body = format!("<p>{} version(s) of {table_name} {}</p>", versions.len(), escape(key));
        body.push_str(&timeline(
            &versions
                .iter()
                .map(|row| {
                    let label: Vec<String> = tracked
                        .iter()
                        .map(|index| format!("{}={}", columns[*index], cell(row, Some(*index))))
                        .collect();
                    (cell(row, from), cell(row, to), cell(row, current), label.join(", "))
                })
                .collect::<Vec<_>>(),
        ));
        let rows: Vec<Vec<String>> = versions
            .iter()
            .map(|row| row.iter().map(|value| escape(value.as_deref().unwrap_or("NULL"))).collect())
            .collect();
        body.push_str(&table("versions", &columns.iter().map(String::as_str).collect::<Vec<_>>(), &rows));
        Ok(Reply::html(200, page(&format!("History of {table_name} {key}"), "/warehouse", &body, false)))
    }

    /// `GET /check`: the form; with a report, the form and the report.
    pub(super) fn check_form(&self, report: Option<String>) -> Reply {
        let mut body = String::from(
            "<form method=\"post\" action=\"/check\" enctype=\"multipart/form-data\" class=\"panel\"><p>A file as it would land: the check runs ingest and validate on a scratch lake and loads nothing.</p><input type=\"file\" name=\"file\" id=\"file\"> <label><input type=\"checkbox\" name=\"show_values\" value=\"1\" id=\"show_values\"> show the rejected rows' values</label> <button class=\"primary\" id=\"check\">Check</button></form>",
        );
        if self.check.is_none() {
            body.push_str("<div class=\"panel notice\">This console has no contract to check against.</div>");
        }
        body.push_str(&report.unwrap_or_default());
        Reply::html(200, page("Check a file", "/check", &body, false))
    }

    /// `POST /check`: the uploaded file checked by the check function, its report shown.
    pub(super) async fn check_file(&self, asked: &Asked) -> anyhow::Result<Reply> {
        let Some(check) = &self.check else { return Ok(self.check_form(None)) };
        let Some(form) = multipart(&asked.content_type, &asked.body) else {
            return Ok(Reply::html(
                400,
                page("Check a file", "/check", "<p>Send the file from the form (multipart/form-data).</p>", false),
            ));
        };
        let Some((file_name, bytes)) = form
            .iter()
            .find_map(|part| part.file.clone().map(|name| (name, part.body.clone())))
            .filter(|(name, _)| !name.is_empty())
        else {
            let mut reply =
                self.check_form(Some("<div class=\"panel failure\">Choose a file first.</div>".to_string()));
            reply.status = 400;
            return Ok(reply);
        };
        let show_values = form.iter().any(|part| part.name == "show_values" && part.body == b"1");
        let query = format!("name={}{}", encode(&file_name), if show_values { "&show_values=1" } else { "" });
        let answered = check.handle(&crate::check_api::event("POST", "/check", Some(&query), &bytes)).await;
        let status = answered["statusCode"].as_u64().unwrap_or(500);
        let report: Value = serde_json::from_str(answered["body"].as_str().unwrap_or("{}")).unwrap_or(Value::Null);
        let mut shown = String::from("<div class=\"panel\" id=\"report\">");
        if status == 200 {
            let _ = write!(
                shown,
                "<p><strong>{}</strong> → dataset <strong>{}</strong>: {} rows received, <span id=\"valid\">{}</span> valid, <span id=\"rejected\">{}</span> rejected; gate <strong id=\"gate\">{}</strong></p>",
                escape(&file_name),
                escape(report["dataset"].as_str().unwrap_or("")),
                report["received"],
                report["valid"],
                report["rejected"],
                escape(report["gate"].as_str().unwrap_or(""))
            );
            if let Some(cause) = report["cause"].as_str().filter(|cause| !cause.is_empty()) {
                let _ = write!(shown, "<p>{}</p>", escape(cause));
            }
            for warning in report["warnings"].as_array().into_iter().flatten().filter_map(Value::as_str) {
                let _ = write!(shown, "<p class=\"warning\">Warning: {}</p>", escape(warning));
            }
            let per_rule: Vec<Vec<String>> = report["rejects_per_rule"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(rule, count)| vec![escape(rule), number(count)])
                .collect();
            shown.push_str(&table("rejects", &["Rule", "Rows"], &per_rule));
            let rejected: Vec<Vec<String>> = report["rejected_rows"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|row| {
                    let reasons: Vec<&str> =
                        row["reasons"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
                    let values = row["values"].as_object().map_or_else(String::new, |values| {
                        values
                            .iter()
                            .map(|(name, value)| format!("{name}={}", value.as_str().unwrap_or("")))
                            .collect::<Vec<_>>()
                            .join(", ")
                    });
                    vec![number(&row["line"]), escape(&reasons.join("; ")), escape(&values)]
                })
                .collect();
            shown.push_str("<h3>First rejected rows</h3>");
            shown.push_str(&table("rejected-rows", &["Line", "Reasons", "Values"], &rejected));
        } else {
            let _ = write!(
                shown,
                "<p class=\"failure\"><strong>{}</strong>: {}</p>",
                escape(report["error"].as_str().unwrap_or("Refused")),
                escape(report["message"].as_str().unwrap_or(""))
            );
        }
        shown.push_str("</div>");
        let mut reply = self.check_form(Some(shown));
        reply.status = if status == 200 { 200 } else { u16::try_from(status).unwrap_or(500) };
        Ok(reply)
    }
}

/// One run's rejects per rule, nulls per column and rules.
fn run_quality(report: &QualityReport) -> String {
    let mut body = format!(
        "<p>{} of dataset {} · {} rows, {} valid, {} rejected ({:.1}%) · {}</p>",
        run_link(&report.run),
        escape(&report.dataset),
        report.received,
        report.valid,
        report.rejected,
        report.reject_ratio * 100.0,
        escape(&report.status)
    );
    let per_rule: Vec<Vec<String>> =
        report.rejects_per_rule.iter().map(|(rule, count)| vec![escape(rule), number(count)]).collect();
    body.push_str("<h2>Rejects per rule</h2>");
    body.push_str(&table("rejects-per-rule", &["Rule", "Rows"], &per_rule));
    let nulls: Vec<Vec<String>> =
        report.nulls_per_column.iter().map(|(column, count)| vec![escape(column), number(count)]).collect();
    body.push_str("<h2>Nulls per column</h2>");
    body.push_str(&table("nulls-per-column", &["Column", "Nulls"], &nulls));
    let rules: Vec<Vec<String>> = report
        .rules
        .iter()
        .map(|rule| {
            vec![
                escape(&rule.rule),
                escape(&format!("{:?}", rule.severity).to_lowercase()),
                escape(&rule.outcome),
                escape(&rule.message),
            ]
        })
        .collect();
    body.push_str("<h2>Rules</h2>");
    body.push_str(&table("rules", &["Rule", "Severity", "Outcome", "Message"], &rules));
    body
}

/// Rows per run (valid and rejected, stacked) and the reject ratio per run, as inline SVG.
fn charts(runs: &[&QualityReport]) -> String {
    const HEIGHT: f64 = 140.0;
    let step = 46.0;
    let width = 60.0 + step * runs.len().max(1) as f64;
    let most = runs.iter().map(|report| report.received).max().unwrap_or(0).max(1) as f64;
    let mut rows = format!(
        "<h3>Rows per run</h3><svg id=\"rows-chart\" width=\"{width}\" height=\"{}\" role=\"img\" aria-label=\"rows per run\">",
        HEIGHT + 30.0
    );
    let _ = write!(
        rows,
        "<line x1=\"40\" y1=\"{HEIGHT}\" x2=\"{width}\" y2=\"{HEIGHT}\" stroke=\"#545b64\"/><text x=\"2\" y=\"14\" font-size=\"11\">{}</text>",
        most as u64
    );
    let ceiling = runs.iter().map(|report| report.reject_ratio).fold(0.05f64, f64::max);
    let mut ratio = format!(
        "<h3>Reject ratio per run</h3><svg id=\"ratio-chart\" width=\"{width}\" height=\"{}\" role=\"img\" aria-label=\"reject ratio per run\">",
        HEIGHT + 30.0
    );
    let _ = write!(
        ratio,
        "<line x1=\"40\" y1=\"{HEIGHT}\" x2=\"{width}\" y2=\"{HEIGHT}\" stroke=\"#545b64\"/><text x=\"2\" y=\"14\" font-size=\"11\">{:.0}%</text>",
        ceiling * 100.0
    );
    let mut points = Vec::new();
    for (index, report) in runs.iter().enumerate() {
        let x = 48.0 + step * index as f64;
        let valid = report.valid as f64 / most * (HEIGHT - 10.0);
        let rejected = report.rejected as f64 / most * (HEIGHT - 10.0);
        let _ = write!(
            rows,
            "<g><title>{run}: {valid_rows} valid, {rejected_rows} rejected</title><rect x=\"{x}\" y=\"{}\" width=\"30\" height=\"{valid}\" fill=\"#1d8102\"/><rect x=\"{x}\" y=\"{}\" width=\"30\" height=\"{rejected}\" fill=\"#d13212\"/></g>",
            HEIGHT - valid,
            HEIGHT - valid - rejected,
            run = escape(&report.run),
            valid_rows = report.valid,
            rejected_rows = report.rejected,
        );
        let day = report.landed_at.map_or_else(|| format!("#{}", index + 1), |time| time.format("%m-%d").to_string());
        let _ = write!(rows, "<text x=\"{x}\" y=\"{}\" font-size=\"10\">{day}</text>", HEIGHT + 14.0);
        let _ = write!(ratio, "<text x=\"{x}\" y=\"{}\" font-size=\"10\">{day}</text>", HEIGHT + 14.0);
        let y = HEIGHT - report.reject_ratio / ceiling * (HEIGHT - 10.0);
        points.push(format!("{:.1},{y:.1}", x + 15.0));
        let _ = write!(
            ratio,
            "<circle class=\"ratio\" data-run=\"{run}\" data-ratio=\"{value:.6}\" cx=\"{:.1}\" cy=\"{y:.1}\" r=\"4\" fill=\"#0073bb\"><title>{run}: {percent:.1}% rejected</title></circle>",
            x + 15.0,
            run = escape(&report.run),
            value = report.reject_ratio,
            percent = report.reject_ratio * 100.0,
        );
    }
    let _ = write!(
        ratio,
        "<polyline points=\"{}\" fill=\"none\" stroke=\"#0073bb\" stroke-width=\"1.5\"/>",
        points.join(" ")
    );
    rows.push_str(
        "</svg><p><span style=\"color:#1d8102\">■</span> valid <span style=\"color:#d13212\">■</span> rejected</p>",
    );
    ratio.push_str("</svg>");
    format!("{rows}{ratio}{}", findings(runs, step, width))
}

/// Rules failed, rules warned and drift per run, side by side.
fn findings(runs: &[&QualityReport], step: f64, width: f64) -> String {
    const HEIGHT: f64 = 100.0;
    let counts: Vec<[u64; 3]> = runs
        .iter()
        .map(|report| {
            [
                report.rules.iter().filter(|rule| rule.failed()).count() as u64,
                report.rules.iter().filter(|rule| rule.warned()).count() as u64,
                crate::reports::drift_count(report),
            ]
        })
        .collect();
    let most = counts.iter().flatten().copied().max().unwrap_or(0).max(1) as f64;
    let mut out = format!(
        "<h3>Rules failed, rules warned and drift per run</h3><svg id=\"findings-chart\" width=\"{width}\" height=\"{}\" role=\"img\" aria-label=\"rules failed, warned and drift per run\">",
        HEIGHT + 30.0
    );
    let _ = write!(
        out,
        "<line x1=\"40\" y1=\"{HEIGHT}\" x2=\"{width}\" y2=\"{HEIGHT}\" stroke=\"#545b64\"/><text x=\"2\" y=\"14\" font-size=\"11\">{}</text>",
        most as u64
    );
    for (index, (report, counts)) in runs.iter().zip(&counts).enumerate() {
        let x = 48.0 + step * index as f64;
        for (offset, (count, (what, colour))) in
            counts.iter().zip([("failed", "#d13212"), ("warned", "#8d6605"), ("drift", "#0073bb")]).enumerate()
        {
            let height = *count as f64 / most * (HEIGHT - 10.0);
            let _ = write!(
                out,
                "<rect class=\"{what}\" data-run=\"{run}\" data-count=\"{count}\" x=\"{:.1}\" y=\"{:.1}\" width=\"9\" height=\"{height:.1}\" fill=\"{colour}\"><title>{run}: {count} {what}</title></rect>",
                x + offset as f64 * 10.0,
                HEIGHT - height,
                run = escape(&report.run),
            );
        }
    }
    out.push_str("</svg><p><span style=\"color:#d13212\">■</span> rules failed <span style=\"color:#8d6605\">■</span> rules warned <span style=\"color:#0073bb\">■</span> drift</p>");
    out
}

/// An instant as the warehouse writes it (RFC 3339, or PostgreSQL's text of a timestamptz).
fn instant(text: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(text)
        .or_else(|_| chrono::DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f%#z"))
        .ok()
        .map(|time| time.with_timezone(&chrono::Utc))
}

/// SCD2 versions (from, to, current, what it held) as bars along time.
fn timeline(versions: &[(String, String, String, String)]) -> String {
    let spans: Vec<(chrono::DateTime<chrono::Utc>, Option<chrono::DateTime<chrono::Utc>>)> =
        versions.iter().filter_map(|(from, to, ..)| Some((instant(from)?, instant(to)))).collect();
    let (Some(first), Some(last)) =
        (spans.iter().map(|(from, _)| *from).min(), spans.iter().map(|(from, to)| to.unwrap_or(*from)).max())
    else {
        return String::new();
    };
    let end = last.max(first) + chrono::Duration::days(1);
    let span = (end - first).num_seconds().max(1) as f64;
    let width = 720.0;
    let x = |time: chrono::DateTime<chrono::Utc>| 10.0 + (time - first).num_seconds() as f64 / span * (width - 20.0);
    let mut out = format!(
        "<svg id=\"timeline\" width=\"{width}\" height=\"{}\" role=\"img\" aria-label=\"versions over time\">",
        20 + versions.len() * 34
    );
    for (index, ((from, to), (from_text, _, current, label))) in spans.iter().zip(versions).enumerate() {
        let (left, right) = (x(*from), to.map_or(width - 10.0, x));
        let y = 10 + index * 34;
        let is_current = current == "1" || current == "true" || current == "t";
        let _ = write!(
            out,
            "<g class=\"version\" data-current=\"{is_current}\"><title>from {from}{}: {label}</title><rect x=\"{left:.1}\" y=\"{y}\" width=\"{:.1}\" height=\"24\" rx=\"4\" fill=\"{}\"/><text x=\"{:.1}\" y=\"{}\" font-size=\"12\">{} → {}: {label}</text></g>",
            if is_current { " (current)" } else { "" },
            (right - left).max(3.0),
            if is_current { "#1d8102" } else { "#879596" },
            left + 4.0,
            y + 16,
            from.format("%Y-%m-%d %H:%M"),
            if is_current {
                "now".to_string()
            } else {
                to.map_or_else(|| "-".to_string(), |to| to.format("%Y-%m-%d %H:%M").to_string())
            },
            from = escape(from_text),
            label = escape(label),
        );
    }
    out.push_str("</svg>");
    out
}

/// The first column of a one-row answer, as text; `None` when the statement fails (a table
/// not made yet).
async fn scalar(warehouse: &Warehouse, statement: &str) -> Option<String> {
    texts(warehouse, statement, &[]).await.ok()?.into_iter().next()?.into_iter().next().flatten()
}

/// Every row of a statement whose columns are all text, with text parameters.
async fn texts(
    warehouse: &Warehouse,
    statement: &str,
    parameters: &[&str],
) -> anyhow::Result<Vec<Vec<Option<String>>>> {
    let statement = sqlx::AssertSqlSafe(statement.to_string());
    Ok(match warehouse {
        Warehouse::Postgres(pool) => {
            let query = parameters.iter().fold(sqlx::query(statement), |query, parameter| query.bind(*parameter));
            row_texts(query.fetch_all(pool).await?)
        }
        Warehouse::Sqlite(pool) => {
            let query = parameters.iter().fold(sqlx::query(statement), |query, parameter| query.bind(*parameter));
            row_texts(query.fetch_all(pool).await?)
        }
    })
}

/// Each row's columns as text, in either backend.
fn row_texts<R: sqlx::Row>(rows: Vec<R>) -> Vec<Vec<Option<String>>>
where
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    usize: sqlx::ColumnIndex<R>,
{
    rows.iter()
        .map(|row| (0..row.len()).map(|index| row.try_get::<Option<String>, _>(index).ok().flatten()).collect())
        .collect()
}

/// One part of a `multipart/form-data` body.
struct Part {
    name: String,
    file: Option<String>,
    body: Vec<u8>,
}

/// The parts of a `multipart/form-data` body (RFC 7578); `None` when it is not one.
fn multipart(content_type: &str, body: &[u8]) -> Option<Vec<Part>> {
    let boundary = content_type
        .split(';')
        .map(str::trim)
        .find_map(|parameter| parameter.strip_prefix("boundary="))?
        .trim_matches('"');
    if !content_type.trim_start().starts_with("multipart/form-data") || boundary.is_empty() {
        return None;
    }
    let delimiter = format!("--{boundary}").into_bytes();
    let find = |haystack: &[u8], needle: &[u8], from: usize| {
        haystack.get(from..)?.windows(needle.len()).position(|window| window == needle).map(|at| at + from)
    };
    let mut parts = Vec::new();
    let mut at = find(body, &delimiter, 0)? + delimiter.len();
    loop {
        if body.get(at..at + 2) == Some(b"--") {
            break;
        }
        let headers_start = at + 2;
        let headers_end = find(body, b"\r\n\r\n", headers_start)?;
        let headers = String::from_utf8_lossy(&body[headers_start..headers_end]).into_owned();
        let content_start = headers_end + 4;
        let next = find(body, &delimiter, content_start)?;
        let content_end = next.saturating_sub(2).max(content_start);
        let disposition = headers.lines().find(|line| line.to_ascii_lowercase().starts_with("content-disposition"))?;
        let parameter = |name: &str| {
            disposition.split(';').map(str::trim).find_map(|item| {
                item.strip_prefix(&format!("{name}=")).map(|value| value.trim_matches('"').to_string())
            })
        };
        parts.push(Part {
            name: parameter("name").unwrap_or_default(),
            file: parameter("filename"),
            body: body[content_start..content_end].to_vec(),
        });
        at = next + delimiter.len();
    }
    Some(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_s_parts_are_read() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"sales.csv\"\r\nContent-Type: text/csv\r\n\r\na,b\r\n1,2\r\n\r\n--XyZ\r\nContent-Disposition: form-data; name=\"show_values\"\r\n\r\n1\r\n--XyZ--\r\n";
        let parts = multipart("multipart/form-data; boundary=XyZ", body).expect("a form");
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].file.as_deref(), Some("sales.csv"));
        assert_eq!(parts[0].body, b"a,b\r\n1,2\r\n");
        assert_eq!((parts[1].name.as_str(), parts[1].body.as_slice()), ("show_values", b"1".as_slice()));
        assert!(multipart("text/plain", body).is_none());
    }

    #[test]
    fn instants_of_both_warehouses_are_read() {
        assert!(instant("2024-01-01T08:00:00Z").is_some());
        assert!(instant("2024-01-01 08:00:00+00").is_some());
        assert!(instant("9999-12-31T00:00:00.000000Z").is_some());
    }
}
