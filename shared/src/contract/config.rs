//! The serde types of `pipeline.toml`: what a user writes. Their `///` comments are the
//! contract's reference documentation.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use toml::Spanned;

/// A whole `pipeline.toml`: every dataset the pipeline knows, and masking settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Settings of the masking stage that apply to every dataset.
    #[serde(default)]
    pub masking: MaskingConfig,
    /// The warehouse's calendar, `dim_date`.
    #[serde(default)]
    pub calendar: CalendarConfig,
    /// The datasets, by name (lower-case identifier, e.g. `customers`).
    pub datasets: BTreeMap<String, Spanned<DatasetConfig>>,
    /// The marts, by name (lower-case identifier, e.g. `sales_by_month`): aggregates of one
    /// fact that every load touching it keeps up to date.
    #[serde(default)]
    pub marts: BTreeMap<String, Spanned<MartConfig>>,
    /// The extraction sources, by name (lower-case identifier, e.g. `shop_orders`): databases
    /// and HTTP APIs whose rows `lakestar extract` (the `extract` function in AWS) writes into
    /// `landing/` as files of a dataset.
    #[serde(default)]
    pub sources: BTreeMap<String, Spanned<SourceConfig>>,
}

/// A source to extract from: a PostgreSQL or MySQL table or query, or an HTTP API, written as
/// gzip NDJSON pages under `landing/<prefix>/` that the dataset named by `dataset` matches.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// What the source is, for people.
    #[serde(default)]
    pub description: String,
    /// `postgres`, `mysql` or `http`.
    pub kind: SourceKind,
    /// The dataset its files feed: its `match` must cover the source's landing keys
    /// (`<prefix>/<source>/…/page-NNNNN.ndjson.gz`).
    pub dataset: String,
    /// Where its files land, under `landing/`. Default `landing/<source>`.
    #[serde(default)]
    pub prefix: Option<String>,
    /// The connection: for a database a `postgres://` or `mysql://` URL without a password,
    /// for HTTP the endpoint's URL. A database takes exactly one of `url`, `url_env` and
    /// `secret`.
    #[serde(default)]
    pub url: Option<String>,
    /// An environment variable holding the database's URL (offline).
    #[serde(default)]
    pub url_env: Option<String>,
    /// A Secrets Manager secret (name or ARN): for a database its URL (`{"url": …}`) or an
    /// RDS-style secret (`username`, `password`, `host`, `port`, `dbname`); for HTTP the
    /// token (`{"token": …}` or the secret's string).
    #[serde(default)]
    pub secret: Option<String>,
    /// A database table to read, `table` or `schema.table`.
    #[serde(default)]
    pub table: Option<String>,
    /// A database query to read instead of a table (one `SELECT`, no trailing `;`).
    #[serde(default)]
    pub query: Option<String>,
    /// The incremental cursor; without one every extraction reads everything.
    #[serde(default)]
    pub cursor: Option<CursorConfig>,
    /// Rows per page (per file). Default 50 000.
    #[serde(default = "default_page_size")]
    pub page_size: usize,
    /// How often the extract function extracts it, e.g. `15m`, `1h`, `1d`: a scheduled run
    /// extracts the sources whose last extraction is at least this old. Default: every run.
    #[serde(default)]
    pub every: Option<String>,
    /// HTTP: query parameters sent with every request.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// HTTP: the dotted path of the records' array in each response, e.g. `data.items`;
    /// empty when the response is the array.
    #[serde(default)]
    pub records: String,
    /// HTTP: how the API pages.
    #[serde(default)]
    pub pagination: Option<PaginationConfig>,
    /// HTTP: how to authenticate with the secret's token (or `token_env`'s).
    #[serde(default)]
    pub auth: Option<AuthConfig>,
    /// HTTP: an environment variable holding the token (offline).
    #[serde(default)]
    pub token_env: Option<String>,
    /// HTTP: at most this many requests per second. Default 10.
    #[serde(default = "default_rate_limit")]
    pub rate_limit: f64,
    /// HTTP: attempts per request on 429 and 5xx answers and network errors. Default 5.
    #[serde(default = "default_attempts")]
    pub attempts: u32,
}

/// The kind of an extraction source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// A PostgreSQL database.
    Postgres,
    /// A MySQL or MariaDB database.
    Mysql,
    /// An HTTP API answering JSON.
    Http,
}

/// An incremental cursor: the column (database) or record field (HTTP) whose greatest value
/// extracted is the watermark the next extraction starts after.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CursorConfig {
    /// The column of the table or query (databases).
    #[serde(default)]
    pub column: Option<String>,
    /// The record field, a dotted path (HTTP).
    #[serde(default)]
    pub field: Option<String>,
    /// `integer`, `timestamp` (with a zone, RFC 3339) or `date`.
    #[serde(rename = "type")]
    pub cursor_type: CursorType,
    /// Read again this far behind the watermark, for late updates: a duration (`10m`, `2h`,
    /// `1d`; whole days for dates) or, for integer cursors, a number.
    #[serde(default)]
    pub lookback: Option<toml::Value>,
    /// HTTP: the query parameter that carries the watermark (less the lookback).
    #[serde(default)]
    pub param: Option<String>,
    /// The first extraction's lower bound (exclusive); default: everything.
    #[serde(default)]
    pub start: Option<String>,
}

/// A cursor's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CursorType {
    /// A whole number.
    Integer,
    /// A timestamp with a zone.
    Timestamp,
    /// A calendar date.
    Date,
}

/// How an HTTP API pages.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaginationConfig {
    /// `page_number`, `offset`, `cursor` (a field of the response names the next page) or
    /// `link` (the `Link: <…>; rel="next"` header).
    pub kind: PaginationKind,
    /// The query parameter of the page number, the offset or the cursor. Defaults `page`,
    /// `offset`, `cursor`.
    #[serde(default)]
    pub param: Option<String>,
    /// The query parameter of the page size (sent as `page_size`), if the API takes one.
    #[serde(default)]
    pub size_param: Option<String>,
    /// `page_number`: the first page's number. Default 1.
    #[serde(default = "default_first_page")]
    pub start: u64,
    /// `cursor`: the dotted path of the next page's cursor in the response.
    #[serde(default)]
    pub next: Option<String>,
}

/// A pagination scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaginationKind {
    /// `?page=1`, `?page=2`, … until a page brings no record.
    PageNumber,
    /// `?offset=0`, `?offset=<records so far>`, … until a page brings no record.
    Offset,
    /// The next page's cursor read from the response, until it is missing or null.
    Cursor,
    /// The `Link` header's `rel="next"` URL, until there is none.
    Link,
}

/// How an HTTP source authenticates.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// The header carrying the token, e.g. `X-Api-Key`. Default `Authorization`.
    #[serde(default)]
    pub header: Option<String>,
    /// Whether the header's value is `Bearer <token>`. Default true for `Authorization`.
    #[serde(default)]
    pub bearer: Option<bool>,
}

fn default_page_size() -> usize {
    50_000
}

fn default_rate_limit() -> f64 {
    10.0
}

fn default_attempts() -> u32 {
    5
}

fn default_first_page() -> u64 {
    1
}

/// A mart: one fact's measures grouped by attributes of the fact, of its dimensions and of
/// its date; a materialized view in PostgreSQL (refreshed concurrently), a table in SQLite
/// (rebuilt), in both by the load's transaction.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MartConfig {
    /// What the mart is for, for people.
    #[serde(default)]
    pub description: String,
    /// The fact table it aggregates, e.g. `fact_sales`.
    pub fact: String,
    /// What it groups by, in order: a column of the fact (`channel`), an attribute of a
    /// dimension the fact references (`dim_product.category`, a column as `product_category`
    /// in the mart), or of the fact's date (`dim_date.month`, as `date_month`).
    pub group_by: Vec<String>,
    /// Which version of a dimension the attributes come from: `fact_date` (the default: the
    /// version in effect at the fact's date, as the fact's view shows) or `current` (the
    /// member's current version, so history is regrouped by today's attributes).
    #[serde(default)]
    pub as_of: AsOf,
    /// The measures, by the column name each gets (the mart shows them after the group-by
    /// columns, by name): `count(*)`, `count(<column>)` (non-null values),
    /// `count_distinct(<column>)`, `sum(<column>)`, `avg(<column>)`, `min(<column>)`,
    /// `max(<column>)` of a fact column; `sum` and `avg` need a number that is not masked.
    pub measures: BTreeMap<String, String>,
}

/// Which version of a dimension a mart groups by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AsOf {
    /// The version in effect at the fact's date.
    #[default]
    FactDate,
    /// The member's current version.
    Current,
}

/// Masking settings shared by all datasets.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaskingConfig {
    /// The version of the masking key in use; written into curated metadata so that a later
    /// re-key is traceable. Default `v1`.
    #[serde(default = "default_key_version")]
    pub key_version: String,
}

/// The calendar dimension `dim_date`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarConfig {
    /// Days added before the earliest and after the latest date the facts use. Default 0.
    #[serde(default)]
    pub margin_days: u32,
    /// The month (1–12) a fiscal year starts in; a fiscal year is named by the calendar year it
    /// ends in. Default 1 (fiscal years are calendar years).
    #[serde(default = "default_fiscal_start")]
    pub fiscal_year_start_month: u32,
}

fn default_fiscal_start() -> u32 {
    1
}

impl Default for CalendarConfig {
    fn default() -> Self {
        CalendarConfig { margin_days: 0, fiscal_year_start_month: default_fiscal_start() }
    }
}

impl Default for MaskingConfig {
    fn default() -> Self {
        MaskingConfig { key_version: default_key_version() }
    }
}

fn default_key_version() -> String {
    "v1".to_string()
}

/// One dataset: which files it covers, how to read them, what each column means, and the
/// star-schema table it feeds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetConfig {
    /// What the dataset is, for people.
    #[serde(default)]
    pub description: String,
    /// Glob patterns of the landing keys this dataset covers, e.g.
    /// `landing/*/customers*.csv`. `*` stays within one path segment, `**` crosses them;
    /// matching ignores case. Every pattern starts with `landing/`.
    #[serde(rename = "match")]
    pub patterns: Vec<String>,
    /// The file format. `auto` (the default) decides by the key's extension; a gzip or
    /// Parquet file is recognised by its first bytes whatever its name says.
    #[serde(default)]
    pub format: Format,
    /// The text encoding of CSV and JSON files: `utf-8` (default; a byte-order mark is
    /// skipped) or any WHATWG label such as `windows-1252` or `latin1`.
    #[serde(default = "default_encoding")]
    pub encoding: String,
    /// The CSV dialect.
    #[serde(default)]
    pub csv: CsvConfig,
    /// The columns, in the order the star table shows them.
    pub columns: Vec<Spanned<ColumnConfig>>,
    /// The star-schema table this dataset feeds.
    pub table: Spanned<TableConfig>,
    /// Thresholds that fail a run.
    #[serde(default)]
    pub quality: QualityConfig,
    /// Rules across columns, e.g. `ship_date >= order_date`.
    #[serde(default)]
    pub rules: Vec<Spanned<RuleConfig>>,
    /// What schema drift does, as dlt's schema contracts: one mode for both kinds
    /// (`schema_contract = "freeze"`) or one each (`{ columns = "evolve", data_type =
    /// "discard_value" }`). Default: new columns stay in raw only, unreadable values quarantine
    /// their row.
    #[serde(default)]
    pub schema_contract: SchemaContract,
}

/// What a run does with schema drift: columns the contract does not declare, and values their
/// column's type cannot read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SchemaContract {
    /// For a column the contract does not declare. Default `discard_value`.
    pub columns: DriftMode,
    /// For a value its column's type cannot read. Default `discard_row`.
    pub data_type: DriftMode,
}

impl Default for SchemaContract {
    fn default() -> Self {
        SchemaContract { columns: DriftMode::DiscardValue, data_type: DriftMode::DiscardRow }
    }
}

/// One schema contract mode (dlt's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftMode {
    /// New columns flow on as text columns; an unreadable value is kept in a variant column
    /// `<column>__v_text`.
    Evolve,
    /// Drift fails the run with `SchemaDrift`.
    Freeze,
    /// The row is quarantined with the drift as its reason.
    DiscardRow,
    /// The value is dropped (null downstream; the original stays in raw) and counted.
    DiscardValue,
}

impl DriftMode {
    /// The mode as the contract spells it.
    pub fn name(self) -> &'static str {
        match self {
            DriftMode::Evolve => "evolve",
            DriftMode::Freeze => "freeze",
            DriftMode::DiscardRow => "discard_row",
            DriftMode::DiscardValue => "discard_value",
        }
    }
}

impl<'de> Deserialize<'de> for SchemaContract {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = SchemaContract;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a mode (\"evolve\", \"freeze\", \"discard_row\" or \"discard_value\") or a table { columns = …, data_type = … }")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<SchemaContract, E> {
                let mode = DriftMode::deserialize(serde::de::value::StrDeserializer::<E>::new(text))?;
                Ok(SchemaContract { columns: mode, data_type: mode })
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<SchemaContract, A::Error> {
                let mut contract = SchemaContract::default();
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "columns" => contract.columns = map.next_value()?,
                        "data_type" => contract.data_type = map.next_value()?,
                        other => return Err(serde::de::Error::unknown_field(other, &["columns", "data_type"])),
                    }
                }
                Ok(contract)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

fn default_encoding() -> String {
    "utf-8".to_string()
}

/// The format of a landing file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Decide by extension: `.csv`, `.tsv`, `.txt` → CSV; `.json` → JSON; `.ndjson`,
    /// `.jsonl` → NDJSON; `.parquet` → Parquet (a trailing `.gz` is ignored).
    #[default]
    Auto,
    /// Delimited text with a header line.
    Csv,
    /// One JSON array of objects (or a single object); nested objects are flattened.
    Json,
    /// One JSON object per line; nested objects are flattened.
    Ndjson,
    /// Apache Parquet.
    Parquet,
}

/// How CSV files of a dataset are written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsvConfig {
    /// The field delimiter, one character (`","`, `";"`, `"\t"`, `"|"`), or `auto` (the
    /// default) to sniff it from the header line.
    #[serde(default = "default_delimiter")]
    pub delimiter: String,
    /// The quote character. Default `"`; quoted fields may hold delimiters and newlines, and
    /// a doubled quote inside them is one quote.
    #[serde(default = "default_quote")]
    pub quote: char,
    /// An escape character used instead of doubled quotes, if the source writes `\"`.
    #[serde(default)]
    pub escape: Option<char>,
    /// Lines that start with this character are skipped.
    #[serde(default)]
    pub comment: Option<char>,
}

impl Default for CsvConfig {
    fn default() -> Self {
        CsvConfig { delimiter: default_delimiter(), quote: default_quote(), escape: None, comment: None }
    }
}

fn default_delimiter() -> String {
    "auto".to_string()
}

fn default_quote() -> char {
    '"'
}

/// One column of a dataset.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnConfig {
    /// The column's name in Lakestar: a lower-case identifier such as `customer_id`.
    pub name: String,
    /// The type: `string` (default), `integer` (64-bit), `decimal(p,s)`, `float`, `boolean`,
    /// `date` or `timestamp`.
    #[serde(rename = "type", default = "default_type")]
    pub data_type: String,
    /// Other spellings of the header in source files. Matching ignores case, spaces and
    /// punctuation, so `Customer ID`, `customer-id` and `CUSTOMERID` are all `customer_id`.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// A required column must be present in every file and non-empty in every row.
    #[serde(default)]
    pub required: bool,
    /// For `date` and `timestamp`: the strftime format of the source, e.g. `%d/%m/%Y`.
    /// ISO 8601 when absent.
    #[serde(default)]
    pub format: Option<String>,
    /// For `timestamp`: the time zone of values written without one (`UTC`, `+01:00`, or an
    /// IANA name such as `Europe/London`). Default `UTC`.
    #[serde(default)]
    pub timezone: Option<String>,
    /// For numbers: the thousands separator the source uses, e.g. `","`, removed before parsing.
    #[serde(default)]
    pub thousands: Option<char>,
    /// Case rule applied before checks: `upper`, `lower` or `title`.
    #[serde(default)]
    pub case: Option<CaseRule>,
    /// Checks a value must pass; a failing row is quarantined with the check's name.
    #[serde(default)]
    pub checks: ChecksConfig,
    /// How the column is masked before it leaves `processed/`.
    #[serde(default)]
    pub pii: Option<PiiConfig>,
    /// For a dimension column: `2` keeps history (SCD type 2), `1` (default) overwrites.
    #[serde(default)]
    pub scd: Option<u8>,
    /// The column's name in the star table, when it differs from `name`.
    #[serde(default)]
    pub target: Option<String>,
}

fn default_type() -> String {
    "string".to_string()
}

/// A case rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CaseRule {
    /// `ABC`
    Upper,
    /// `abc`
    Lower,
    /// `Abc Def`
    Title,
}

/// The checks of one column.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChecksConfig {
    /// The value must be an e-mail address.
    #[serde(default)]
    pub email: bool,
    /// The whole value must match this regular expression.
    #[serde(default)]
    pub regex: Option<String>,
    /// Smallest allowed value (a number, or an ISO date for dates and timestamps).
    #[serde(default)]
    pub min: Option<toml::Value>,
    /// Largest allowed value (a number, or an ISO date for dates and timestamps).
    #[serde(default)]
    pub max: Option<toml::Value>,
    /// Shortest allowed text, in characters.
    #[serde(default)]
    pub min_length: Option<usize>,
    /// Longest allowed text, in characters.
    #[serde(default)]
    pub max_length: Option<usize>,
    /// The only values allowed (compared after the case rule).
    #[serde(default)]
    pub allowed: Vec<String>,
    /// No two rows of a run may share this value.
    #[serde(default)]
    pub unique: bool,
}

/// How one column is masked.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PiiConfig {
    /// `hash` (keyed HMAC-SHA-256), `email_hash` (keyed hash keeping the domain),
    /// `partial` (reveal the last `reveal` characters), `token` (deterministic token with
    /// `prefix`), `generalize` (to `to`), or `redact` (null).
    pub method: PiiMethod,
    /// For `hash` and `email_hash`: `hex` (default) or `base64url`.
    #[serde(default)]
    pub encoding: Option<String>,
    /// For `partial`: how many trailing characters stay visible. Default 4.
    #[serde(default)]
    pub reveal: Option<usize>,
    /// For `token`: the token's prefix, e.g. `CUST-`.
    #[serde(default)]
    pub prefix: Option<String>,
    /// For `generalize`: `month`, `year` (dates), `postcode_district` (UK postcodes), or
    /// `age_band` (dates of birth).
    #[serde(default)]
    pub to: Option<String>,
}

/// A masking method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PiiMethod {
    /// Keyed HMAC-SHA-256.
    Hash,
    /// Keyed hash of the local part, domain kept.
    EmailHash,
    /// Last N characters kept, the rest starred.
    Partial,
    /// Deterministic token with a prefix.
    Token,
    /// Less precise value (month, year, district, age band).
    Generalize,
    /// Null.
    Redact,
}

/// The star-schema table a dataset feeds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableConfig {
    /// The table's name: `dim_<stem>` for a dimension, `fact_<stem>` for a fact.
    pub name: String,
    /// `dimension` or `fact`.
    pub kind: TableKind,
    /// The columns that identify a row in the source system.
    pub natural_key: Vec<String>,
    /// When several rows of one run share a natural key: `keep_last` (default, by source
    /// line), `keep_first`, or `reject_all`. The others are quarantined as `duplicate`.
    #[serde(default)]
    pub dedupe: Dedupe,
    /// For a dimension: the date or timestamp column a version is valid from. The run's
    /// time when absent.
    #[serde(default)]
    pub effective_from: Option<String>,
    /// For a fact: the date or timestamp column the fact happened on; dimension keys are
    /// looked up as of it, and curated files are partitioned by it.
    #[serde(default)]
    pub date_column: Option<String>,
    /// For a fact: `day` (default) or `month` partitions of the curated files.
    #[serde(default)]
    pub partition: Option<Partition>,
    /// For a fact: the dimensions it references.
    #[serde(default)]
    pub references: Vec<ReferenceConfig>,
}

/// A kind of star-schema table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TableKind {
    /// A dimension: surrogate key, history.
    Dimension,
    /// A fact: measures and references to dimensions.
    Fact,
}

/// What to do with rows of one run that share a natural key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dedupe {
    /// Keep the row with the highest source line.
    #[default]
    KeepLast,
    /// Keep the row with the lowest source line.
    KeepFirst,
    /// Reject every row of the key.
    RejectAll,
}

/// How curated fact files are partitioned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Partition {
    /// `<date_column>=YYYY-MM-DD`
    Day,
    /// `<date_column>_month=YYYY-MM`
    Month,
}

/// A fact's reference to a dimension.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferenceConfig {
    /// The dimension table, e.g. `dim_customer`.
    pub dimension: String,
    /// The fact's columns holding the dimension's natural key, in the key's order.
    pub columns: Vec<String>,
    /// What a fact naming a key the dimension lacks does: `infer` (default) adds an inferred
    /// member its real row completes later; `fail` rolls the load back and fails the run
    /// naming the dimension and how many keys it lacks.
    #[serde(default)]
    pub on_missing: OnMissing,
}

/// What a fact naming a key its dimension lacks does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnMissing {
    /// An inferred member is added.
    #[default]
    Infer,
    /// The load is rolled back and the run fails.
    Fail,
    /// The fact is quarantined by the load, the missing key in its reason.
    Quarantine,
}

/// Thresholds that fail a run at the quality gate.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QualityConfig {
    /// The run fails when more than this fraction of its rows is rejected. Default 0.1.
    #[serde(default = "default_max_reject_ratio")]
    pub max_reject_ratio: f64,
    /// The run fails when fewer valid rows than this arrive. Default 0.
    #[serde(default)]
    pub min_rows: u64,
    /// A ruleset in AWS Glue Data Quality's DQDL, as written for Glue: `"""Rules = [ … ]"""`.
    /// Its failing row-level rules quarantine rows; its failing dataset-level rules fail the
    /// gate (docs/quality.md).
    #[serde(default)]
    pub dqdl: Option<Spanned<String>>,
    /// A second DQDL ruleset whose rules only warn: reported, counted and alerted, never
    /// rejecting a row or failing the run.
    #[serde(default)]
    pub dqdl_warn: Option<Spanned<String>>,
    /// Checks against the warehouse after the load, inside its transaction: each query counts
    /// offending rows; a count above zero rolls the load back and fails the run.
    #[serde(default)]
    pub warehouse: Vec<WarehouseCheckConfig>,
}

/// A check of the warehouse after a load.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WarehouseCheckConfig {
    /// The check's name, in the failure's cause.
    pub name: String,
    /// A `SELECT` returning one number, the offending rows: `SELECT count(*) FROM fact_sales
    /// WHERE quantity * unit_price > 100000`. It sees the load's rows.
    pub sql: String,
    /// `fail` (default): a count above zero rolls the load back and fails the run; `warn`: the
    /// load stands and the run ends `SUCCEEDED_WITH_WARNINGS`, the check among its warnings.
    #[serde(default)]
    pub severity: crate::quality::rules::Severity,
}

impl Default for QualityConfig {
    fn default() -> Self {
        QualityConfig {
            max_reject_ratio: default_max_reject_ratio(),
            min_rows: 0,
            dqdl: None,
            dqdl_warn: None,
            warehouse: Vec::new(),
        }
    }
}

fn default_max_reject_ratio() -> f64 {
    0.1
}

/// A rule across columns.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// The rule's name, used as the reject reason.
    pub name: String,
    /// A comparison `<column> <op> <column or literal>`, op one of `= != < <= > >=`, e.g.
    /// `ship_date >= order_date`. A row where either side is null passes.
    pub check: String,
}
