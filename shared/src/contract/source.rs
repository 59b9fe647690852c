//! The compiled extraction sources: what `[sources.<name>]` says, checked, in the shapes the
//! extractor uses.

use std::collections::BTreeMap;
use std::time::Duration;

pub use super::config::{CursorType, PaginationKind, SourceKind};

/// A checked source.
#[derive(Debug, Clone)]
pub struct Source {
    /// Its name, a lower-case identifier.
    pub name: String,
    /// Postgres, MySQL or HTTP.
    pub kind: SourceKind,
    /// The dataset its files feed.
    pub dataset: String,
    /// The landing prefix of its files, `landing/…`, without a trailing `/`.
    pub prefix: String,
    /// Where the connection URL (databases) or the token (HTTP) comes from.
    pub connection: Connection,
    /// What is read.
    pub read: Read,
    /// The incremental cursor, if any.
    pub cursor: Option<Cursor>,
    /// Rows per page.
    pub page_size: usize,
    /// How often a scheduled run extracts it; `None`: every run.
    pub every: Option<Duration>,
}

/// Where a source's secret part comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Connection {
    /// Nothing secret: a database URL written in the contract, or an HTTP API without auth.
    None,
    /// A database URL written in the contract (no password in it).
    Url(String),
    /// An environment variable's value.
    Env(String),
    /// A Secrets Manager secret, by name or ARN.
    Secret(String),
}

/// What a source reads.
#[derive(Debug, Clone)]
pub enum Read {
    /// A table, with its schema when given.
    Table {
        /// The schema (`public`), if given.
        schema: Option<String>,
        /// The table.
        table: String,
    },
    /// A query.
    Query(String),
    /// An HTTP endpoint.
    Http(Http),
}

/// An HTTP source's requests.
#[derive(Debug, Clone)]
pub struct Http {
    /// The endpoint.
    pub url: String,
    /// Query parameters of every request.
    pub params: BTreeMap<String, String>,
    /// The path of the records' array in a response; empty: the response is the array.
    pub records: Vec<String>,
    /// How it pages; `None`: one request.
    pub pagination: Option<Pagination>,
    /// The header carrying the token and whether it is `Bearer <token>`.
    pub auth: Option<(String, bool)>,
    /// Requests per second at most.
    pub rate_limit: f64,
    /// Attempts per request.
    pub attempts: u32,
}

/// How an HTTP source pages.
#[derive(Debug, Clone)]
pub struct Pagination {
    /// The scheme.
    pub kind: PaginationKind,
    /// The query parameter of the page number, offset or cursor.
    pub param: String,
    /// The query parameter of the page size, if any.
    pub size_param: Option<String>,
    /// The first page's number.
    pub start: u64,
    /// The path of the next cursor in a response.
    pub next: Vec<String>,
}

/// A checked cursor.
#[derive(Debug, Clone)]
pub struct Cursor {
    /// The column (databases) or the record field's path joined by `.` (HTTP).
    pub name: String,
    /// Its type.
    pub cursor_type: CursorType,
    /// How far behind the watermark to read again: seconds (timestamps), days (dates) or a
    /// number (integers).
    pub lookback: i64,
    /// HTTP: the parameter that carries the lower bound.
    pub param: Option<String>,
    /// The first lower bound (exclusive), if any.
    pub start: Option<String>,
}

impl SourceKind {
    /// The kind as the contract writes it.
    pub fn name(self) -> &'static str {
        match self {
            SourceKind::Postgres => "postgres",
            SourceKind::Mysql => "mysql",
            SourceKind::Http => "http",
        }
    }
}

impl Source {
    /// The landing key of one page of an extraction; `range` names the extraction (its
    /// cursor range, or `full`).
    pub fn page_key(&self, range: &str, page: usize) -> String {
        format!("{}/{}/page-{page:05}.ndjson.gz", self.prefix, range)
    }
}

/// Parses a duration `30s`, `10m`, `2h`, `1d` (also `1w`) into seconds.
pub fn parse_duration(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let unit = match unit.trim() {
        "s" => 1,
        "m" | "min" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return None,
    };
    number.checked_mul(unit)
}
