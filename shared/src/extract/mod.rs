//! Extraction: a contract's `[sources.<name>]` read into `landing/` as gzip NDJSON pages,
//! from which they flow through the trigger and the stages like any dropped file.
//!
//! Exactly once: an extraction first records its range (the watermark it starts after and,
//! for databases, the greatest cursor value in its snapshot) in `state/sources/<name>.json`,
//! then writes its pages under keys named by the source, the range and the page number, each
//! page recorded with its SHA-256 once written, and advances the watermark only after every
//! page is written. An extraction that stopped anywhere is resumed by the next one over the
//! same range into the same keys; a page already written with the same bytes is not written
//! again, so no S3 event repeats and no run is started twice.

mod database;
mod http;
mod pages;

use std::cmp::Ordering;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::contract::source::{Connection, CursorType, Read, Source, SourceKind};
use crate::lake::{Lake, source_state_key};
use crate::{Error, Result};

pub use pages::Page;

/// Extracts sources into one lake.
#[derive(Debug, Clone)]
pub struct Extractor {
    lake: Lake,
    secrets: Option<aws_sdk_secretsmanager::Client>,
}

/// How one extraction runs.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Skip a source whose `every` has not passed since its last extraction (scheduled runs).
    pub due_only: bool,
    /// A testing aid: stop with `SourceUnavailable` right after this many pages were written,
    /// as a crash would.
    pub stop_after_pages: Option<usize>,
}

/// What one extraction did.
#[derive(Debug, Clone, Serialize)]
pub struct Extraction {
    /// The source.
    pub source: String,
    /// `extracted`, `nothing_new` or `not_due`.
    pub outcome: Outcome,
    /// The extraction's name in its keys (`full`, or its cursor range).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub range: Option<String>,
    /// The watermark it started after (exclusive), before the lookback.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The greatest cursor value it read: the new watermark.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Rows written, in all pages.
    pub rows: u64,
    /// Its pages, in order.
    pub pages: Vec<Page>,
    /// How many of them were written by this call (the rest were already, with these bytes).
    pub written: usize,
}

/// The outcome of one extraction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Pages were written (or found written) and the watermark advanced.
    Extracted,
    /// The source has nothing beyond the watermark; nothing was written.
    NothingNew,
    /// The source's `every` has not passed since its last extraction.
    NotDue,
}

/// A source's state in the lake: its watermark, the extraction in progress, the last one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceState {
    /// The source's name.
    pub source: String,
    /// The greatest cursor value of the last complete extraction.
    #[serde(default)]
    pub watermark: Option<String>,
    /// An extraction that started and has not finished: the next one resumes it.
    #[serde(default)]
    pub pending: Option<Batch>,
    /// The last complete extraction.
    #[serde(default)]
    pub last: Option<Batch>,
}

/// One extraction's range and pages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    /// The extraction's name in its keys.
    pub range: String,
    /// The watermark it started after.
    pub from: Option<String>,
    /// The greatest cursor value it reads.
    pub to: Option<String>,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When its last page was written.
    #[serde(default)]
    pub finished_at: Option<DateTime<Utc>>,
    /// Its pages written so far.
    #[serde(default)]
    pub pages: Vec<Page>,
}

impl Batch {
    fn new(range: String, from: Option<String>, to: Option<String>) -> Batch {
        Batch { range, from, to, started_at: Utc::now(), finished_at: None, pages: Vec::new() }
    }
}

impl Extractor {
    /// An extractor writing into `lake`, reading secrets with `secrets` when a source names one.
    pub fn new(lake: Lake, secrets: Option<aws_sdk_secretsmanager::Client>) -> Extractor {
        Extractor { lake, secrets }
    }

    /// The lake it writes into.
    pub fn lake(&self) -> &Lake {
        &self.lake
    }

    /// A source's state; the default when it was never extracted.
    pub async fn state(&self, source: &str) -> Result<SourceState> {
        let key = source_state_key(source);
        match self.lake.get_optional(&key).await? {
            None => Ok(SourceState { source: source.to_string(), ..SourceState::default() }),
            Some(bytes) => serde_json::from_slice(&bytes).map_err(|error| Error::CorruptObject {
                key: key.clone(),
                message: format!("not a source state ({error}); delete it to extract `{source}` from the start"),
            }),
        }
    }

    async fn save(&self, state: &SourceState) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(state).map_err(|error| Error::Internal(error.to_string()))?;
        self.lake.put_bytes(&source_state_key(&state.source), bytes, "application/json").await
    }

    /// Extracts one source: resumes its pending extraction, or starts one after its watermark.
    pub async fn extract(&self, source: &Source, options: &Options) -> Result<Extraction> {
        let mut state = self.state(&source.name).await?;
        if options.due_only && state.pending.is_none() {
            let last = state.last.as_ref().and_then(|last| last.finished_at);
            if let (Some(every), Some(last)) = (source.every, last)
                && Utc::now().signed_duration_since(last).to_std().unwrap_or_default() < every
            {
                return Ok(state.outcome(source, Outcome::NotDue));
            }
        }
        let started = std::time::Instant::now();
        let extraction = match &source.read {
            Read::Http(http) => http::extract(self, source, http, &mut state, options).await?,
            Read::Table { .. } | Read::Query(_) => database::extract(self, source, &mut state, options).await?,
        };
        tracing::info!(
            source = %source.name,
            outcome = ?extraction.outcome,
            rows = extraction.rows,
            pages = extraction.pages.len(),
            written = extraction.written,
            ms = started.elapsed().as_millis() as u64,
            "extraction finished"
        );
        Ok(extraction)
    }

    /// Marks the pending extraction complete: its greatest cursor value is the watermark.
    async fn finish(&self, source: &Source, state: &mut SourceState, written: usize) -> Result<Extraction> {
        let mut batch = state.pending.take().ok_or_else(|| Error::Internal("no pending extraction".to_string()))?;
        batch.finished_at = Some(Utc::now());
        if source.cursor.is_some() {
            state.watermark = batch.to.clone().or(state.watermark.take());
        }
        state.last = Some(batch);
        self.save(state).await?;
        let mut extraction = state.outcome(source, Outcome::Extracted);
        extraction.written = written;
        Ok(extraction)
    }

    /// The secret's string.
    async fn secret(&self, source: &Source, secret_id: &str) -> Result<String> {
        let Some(client) = &self.secrets else {
            return Err(refused(
                source,
                format!(
                    "the source names the secret `{secret_id}` but no Secrets Manager client is configured: give `url_env` or `token_env` offline"
                ),
            ));
        };
        let output = client.get_secret_value().secret_id(secret_id).send().await.map_err(|error| {
            let message = crate::error_chain(&error);
            let transient = !(message.contains("ResourceNotFound") || message.contains("AccessDenied"));
            Error::Source {
                source_name: source.name.clone(),
                transient,
                message: format!("reading the secret `{secret_id}`: {message}"),
            }
        })?;
        output
            .secret_string()
            .map(str::to_string)
            .ok_or_else(|| refused(source, format!("the secret `{secret_id}` has no SecretString")))
    }

    /// The database URL or the HTTP token, from where the contract says.
    async fn credential(&self, source: &Source) -> Result<Option<String>> {
        match &source.connection {
            Connection::None => Ok(None),
            Connection::Url(url) => Ok(Some(url.clone())),
            Connection::Env(name) => crate::config::named_variable(name).map(Some).ok_or_else(|| {
                refused(
                    source,
                    format!(
                        "the environment variable `{name}` is not set: export it (the {} of the source)",
                        if source.kind == SourceKind::Http { "token" } else { "database URL" }
                    ),
                )
            }),
            Connection::Secret(id) => {
                let text = self.secret(source, id).await?;
                if source.kind == SourceKind::Http {
                    Ok(Some(token_of_secret(&text)))
                } else {
                    url_of_secret(source, &text).map(Some)
                }
            }
        }
    }
}

impl SourceState {
    fn outcome(&self, source: &Source, outcome: Outcome) -> Extraction {
        let batch = match outcome {
            Outcome::Extracted => self.last.as_ref(),
            Outcome::NothingNew | Outcome::NotDue => None,
        };
        Extraction {
            source: source.name.clone(),
            outcome,
            range: batch.map(|batch| batch.range.clone()),
            from: batch.and_then(|batch| batch.from.clone()),
            to: batch.and_then(|batch| batch.to.clone()).or_else(|| self.watermark.clone()),
            rows: batch.map_or(0, |batch| batch.pages.iter().map(|page| page.rows).sum()),
            pages: batch.map(|batch| batch.pages.clone()).unwrap_or_default(),
            written: 0,
        }
    }

    /// The page recorded under `key` by the pending or the last extraction.
    fn recorded(&self, key: &str) -> Option<&Page> {
        self.pending.iter().chain(self.last.iter()).flat_map(|batch| &batch.pages).find(|page| page.key == key)
    }
}

/// An extraction's name in its keys: `full`, or its cursor range made key-safe, with a short
/// hash of the exact bounds so that two ranges never share keys.
pub fn range_name(from: Option<&str>, to: Option<&str>) -> String {
    let (Some(to), from) = (to, from) else {
        return "full".to_string();
    };
    let slug = |text: &str| -> String {
        text.chars()
            .filter_map(|c| match c {
                'a'..='z' | 'A'..='Z' | '0'..='9' | '-' => Some(c),
                '+' => Some('p'),
                '.' => Some('_'),
                _ => None,
            })
            .take(40)
            .collect()
    };
    let digest = sha2::Sha256::digest(format!("{}\u{0}{to}", from.unwrap_or("")).as_bytes());
    let hash: String = digest.iter().take(4).map(|byte| format!("{byte:02x}")).collect();
    format!("from-{}_to-{}_{hash}", from.map_or_else(|| "start".to_string(), slug), slug(to))
}

/// A cursor value, typed for comparison.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
enum CursorValue {
    Integer(i64),
    Timestamp(DateTime<Utc>),
    Date(chrono::NaiveDate),
}

impl CursorValue {
    fn parse(cursor_type: CursorType, text: &str) -> Option<CursorValue> {
        let text = text.trim();
        match cursor_type {
            CursorType::Integer => text.parse().ok().map(CursorValue::Integer),
            CursorType::Timestamp => DateTime::parse_from_rfc3339(text)
                .map(|time| time.with_timezone(&Utc))
                .or_else(|_| {
                    chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f").map(|naive| naive.and_utc())
                })
                .ok()
                .map(CursorValue::Timestamp),
            CursorType::Date => chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok().map(CursorValue::Date),
        }
    }

    /// The value `lookback` units earlier (seconds, days or a number, by type).
    fn minus(&self, lookback: i64) -> CursorValue {
        match self {
            CursorValue::Integer(value) => CursorValue::Integer(value.saturating_sub(lookback)),
            CursorValue::Timestamp(time) => CursorValue::Timestamp(*time - chrono::Duration::seconds(lookback)),
            CursorValue::Date(date) => CursorValue::Date(*date - chrono::Duration::days(lookback)),
        }
    }

    fn text(&self) -> String {
        match self {
            CursorValue::Integer(value) => value.to_string(),
            CursorValue::Timestamp(time) => time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            CursorValue::Date(date) => date.format("%Y-%m-%d").to_string(),
        }
    }

    fn compare(&self, other: &CursorValue) -> Ordering {
        self.partial_cmp(other).unwrap_or(Ordering::Equal)
    }
}

fn refused(source: &Source, message: String) -> Error {
    Error::Source { source_name: source.name.clone(), transient: false, message }
}

fn unavailable(source: &Source, message: String) -> Error {
    Error::Source { source_name: source.name.clone(), transient: true, message }
}

/// An HTTP token from a secret: `{"token": …}` (or `api_key`, `access_token`), else the string.
fn token_of_secret(text: &str) -> String {
    if let Ok(serde_json::Value::Object(object)) = serde_json::from_str::<serde_json::Value>(text) {
        for field in ["token", "api_key", "access_token"] {
            if let Some(serde_json::Value::String(token)) = object.get(field) {
                return token.clone();
            }
        }
    }
    text.trim().to_string()
}

/// A database URL from a secret: `{"url": …}`, or RDS-style fields, or the string itself.
fn url_of_secret(source: &Source, text: &str) -> Result<String> {
    let Ok(serde_json::Value::Object(object)) = serde_json::from_str::<serde_json::Value>(text) else {
        return Ok(text.trim().to_string());
    };
    let field = |name: &str| match object.get(name) {
        Some(serde_json::Value::String(text)) => Some(text.clone()),
        Some(serde_json::Value::Number(number)) => Some(number.to_string()),
        _ => None,
    };
    if let Some(url) = field("url") {
        return Ok(url);
    }
    let (Some(username), Some(password), Some(host)) = (field("username"), field("password"), field("host")) else {
        return Err(refused(
            source,
            "the secret is neither `{\"url\": …}` nor has `username`, `password` and `host`".to_string(),
        ));
    };
    let (scheme, port) = if source.kind == SourceKind::Mysql { ("mysql", "3306") } else { ("postgres", "5432") };
    let port = field("port").unwrap_or_else(|| port.to_string());
    let database = field("dbname").or_else(|| field("database")).unwrap_or_default();
    Ok(format!("{scheme}://{}:{}@{host}:{port}/{}", percent(&username), percent(&password), percent(&database)))
}

/// Percent-encodes a URL's user, password or database name: everything but RFC 3986's
/// unreserved characters (the lake's key encoding, with `/` encoded too).
fn percent(text: &str) -> String {
    crate::lake::percent_encode_key(text, "%20").replace('/', "%2F")
}

/// A URL as it may be shown: without credentials or query.
fn shown(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let rest = rest.split('?').next().unwrap_or(rest);
    let rest = match rest.split_once('/') {
        Some((authority, path)) => format!("{}/{path}", authority.rsplit_once('@').map_or(authority, |(_, host)| host)),
        None => rest.rsplit_once('@').map_or(rest, |(_, host)| host).to_string(),
    };
    if scheme.is_empty() { rest } else { format!("{scheme}://{rest}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_named_from_their_bounds_and_never_collide() {
        assert_eq!(range_name(None, None), "full");
        let first = range_name(None, Some("2024-01-01T10:00:00+00:00"));
        assert!(first.starts_with("from-start_to-2024-01-01T100000p0000_"), "{first}");
        assert_ne!(range_name(Some("1"), Some("2")), range_name(Some("1"), Some("2.")));
        assert_ne!(range_name(Some("+1"), Some("2")), range_name(Some("p1"), Some("2")));
        assert_eq!(range_name(Some("5"), Some("9")), range_name(Some("5"), Some("9")));
    }

    #[test]
    fn cursor_values_compare_by_type_not_by_text() {
        let a = CursorValue::parse(CursorType::Timestamp, "2024-01-01T10:00:00+02:00").expect("a timestamp");
        let b = CursorValue::parse(CursorType::Timestamp, "2024-01-01T09:00:00Z").expect("a timestamp");
        assert_eq!(a.compare(&b), Ordering::Less);
        assert_eq!(a.minus(3600).text(), "2024-01-01T07:00:00Z");
        let nine = CursorValue::parse(CursorType::Integer, "9").expect("a number");
        assert_eq!(nine.compare(&CursorValue::Integer(10)), Ordering::Less);
        assert_eq!(CursorValue::parse(CursorType::Date, "2024-03-01").expect("a date").minus(1).text(), "2024-02-29");
        assert_eq!(CursorValue::parse(CursorType::Integer, "x"), None);
    }

    #[test]
    fn shown_urls_carry_no_credentials_and_no_query() {
        assert_eq!(
            shown("postgres://app:s3cret@db.internal:5432/shop?sslmode=require"),
            "postgres://db.internal:5432/shop"
        );
        assert_eq!(shown("https://api.example.com/v1/items?api_key=abc"), "https://api.example.com/v1/items");
        assert_eq!(shown("mysql://root@localhost"), "mysql://localhost");
    }

    #[test]
    fn secrets_give_urls_and_tokens() {
        let source = crate::contract::Contract::parse("t.toml", TEST_CONTRACT).expect("valid").sources.remove(0);
        let url = url_of_secret(
            &source,
            r#"{"username": "app", "password": "p@ss:w/rd", "host": "db", "port": 5433, "dbname": "shop"}"#,
        )
        .expect("a URL");
        assert_eq!(url, "postgres://app:p%40ss%3Aw%2Frd@db:5433/shop");
        assert_eq!(url_of_secret(&source, r#"{"url": "postgres://x@y/z"}"#).expect("a URL"), "postgres://x@y/z");
        assert!(url_of_secret(&source, r#"{"user": "x"}"#).is_err());
        assert_eq!(token_of_secret(r#"{"token": "t0k"}"#), "t0k");
        assert_eq!(token_of_secret("plain\n"), "plain");
    }

    const TEST_CONTRACT: &str = r#"
[datasets.orders]
match = ["landing/shop/**/*.ndjson.gz"]
[datasets.orders.table]
name = "fact_orders"
kind = "fact"
natural_key = ["id"]
[[datasets.orders.columns]]
name = "id"
[sources.shop]
kind = "postgres"
dataset = "orders"
secret = "shop"
table = "orders"
"#;
}
