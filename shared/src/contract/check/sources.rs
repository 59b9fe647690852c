//! The checks of the extraction sources: their kind's fields, the connection, the cursor, and
//! that the dataset they feed matches their files.

use std::collections::BTreeMap;
use std::ops::Range;

use super::Checker;
use crate::contract::source::{self, Connection, Cursor, Http, Pagination, Read, Source};
use crate::contract::*;

impl Checker<'_> {
    /// Compiles every source, recording each problem with the source's line.
    pub(super) fn sources(
        &mut self,
        sources: &BTreeMap<String, toml::Spanned<SourceConfig>>,
        datasets: &[Dataset],
    ) -> Vec<Source> {
        sources
            .iter()
            .filter_map(|(name, config)| self.source(name, config.span(), config.get_ref(), datasets))
            .collect()
    }

    fn source(
        &mut self,
        name: &str,
        span: Range<usize>,
        config: &SourceConfig,
        datasets: &[Dataset],
    ) -> Option<Source> {
        let path = format!("sources.{name}");
        let problems = self.problems.len();
        if !is_identifier(name) {
            self.problem(&span, path.clone(), "a source name must be a lower-case identifier (letters, digits, `_`, starting with a letter, at most 63 characters)");
        }
        let prefix = config.prefix.clone().unwrap_or_else(|| format!("landing/{name}"));
        let prefix = prefix.trim_end_matches('/').to_string();
        if !prefix.starts_with("landing/") || prefix.contains("..") || prefix.contains('*') {
            self.problem(
                &span,
                format!("{path}.prefix"),
                format!(
                    "`{prefix}` must be a folder under `landing/` (no `*`, no `..`): only that prefix starts executions"
                ),
            );
        }
        let database = config.kind != SourceKind::Http;
        let connection = self.connection(&span, &path, config, database);
        let read =
            if database { self.database_read(&span, &path, config) } else { self.http_read(&span, &path, config) };
        let cursor = config.cursor.as_ref().and_then(|cursor| self.cursor(&span, &path, cursor, database));
        if !(1..=10_000_000).contains(&config.page_size) {
            self.problem(
                &span,
                format!("{path}.page_size"),
                format!("{} rows per page: give 1 to 10000000", config.page_size),
            );
        }
        let every = config.every.as_deref().and_then(|every| match source::parse_duration(every) {
            Some(seconds) if seconds > 0 => Some(std::time::Duration::from_secs(seconds)),
            _ => {
                self.problem(
                    &span,
                    format!("{path}.every"),
                    format!("`{every}` is not a duration: write e.g. `15m`, `1h` or `1d`"),
                );
                None
            }
        });
        let source = Source {
            name: name.to_string(),
            kind: config.kind,
            dataset: config.dataset.clone(),
            prefix,
            connection,
            read: read?,
            cursor,
            page_size: config.page_size,
            every,
        };
        self.source_dataset(&span, &path, &source, datasets);
        (self.problems.len() == problems).then_some(source)
    }

    fn connection(&mut self, span: &Range<usize>, path: &str, config: &SourceConfig, database: bool) -> Connection {
        if database {
            let given = [config.url.is_some(), config.url_env.is_some(), config.secret.is_some()];
            if given.iter().filter(|&&given| given).count() != 1 {
                self.problem(span, format!("{path}.url"), "give exactly one of `url` (no password in it), `url_env` (an environment variable holding the URL) and `secret` (a Secrets Manager secret)");
            }
            if config.token_env.is_some() || config.auth.is_some() {
                self.problem(
                    span,
                    format!("{path}.auth"),
                    "`auth` and `token_env` are for HTTP sources: a database's credentials are in its URL or secret",
                );
            }
            if let Some(url) = &config.url {
                let scheme = if config.kind == SourceKind::Postgres {
                    &["postgres://", "postgresql://"][..]
                } else {
                    &["mysql://", "mariadb://"][..]
                };
                if !scheme.iter().any(|scheme| url.starts_with(scheme)) {
                    self.problem(
                        span,
                        format!("{path}.url"),
                        format!("a {} source's URL starts with `{}`", config.kind.name(), scheme[0]),
                    );
                } else if has_password(url) {
                    self.problem(
                        span,
                        format!("{path}.url"),
                        "the URL holds a password: keep it out of the contract, give `url_env` or `secret`",
                    );
                }
            }
            return match (&config.url, &config.url_env, &config.secret) {
                (Some(url), _, _) => Connection::Url(url.clone()),
                (_, Some(env), _) => self.env_name(span, path, "url_env", env),
                (_, _, Some(secret)) => Connection::Secret(secret.clone()),
                _ => Connection::None,
            };
        }
        if config.url_env.is_some() {
            self.problem(
                span,
                format!("{path}.url_env"),
                "an HTTP source's `url` is its endpoint; its token comes from `secret` or `token_env`",
            );
        }
        match (&config.secret, &config.token_env) {
            (Some(_), Some(_)) => {
                self.problem(span, format!("{path}.token_env"), "give one of `secret` and `token_env`, not both");
                Connection::None
            }
            (Some(secret), None) => Connection::Secret(secret.clone()),
            (None, Some(env)) => self.env_name(span, path, "token_env", env),
            (None, None) => {
                if config.auth.is_some() {
                    self.problem(
                        span,
                        format!("{path}.auth"),
                        "`auth` needs a token: give `secret` (in AWS) or `token_env` (offline)",
                    );
                }
                Connection::None
            }
        }
    }

    fn env_name(&mut self, span: &Range<usize>, path: &str, field: &str, env: &str) -> Connection {
        let valid = !env.is_empty()
            && env.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !env.starts_with(|c: char| c.is_ascii_digit());
        if !valid {
            self.problem(
                span,
                format!("{path}.{field}"),
                format!("`{env}` is not an environment variable's name (letters, digits, `_`)"),
            );
        }
        Connection::Env(env.to_string())
    }

    fn database_read(&mut self, span: &Range<usize>, path: &str, config: &SourceConfig) -> Option<Read> {
        let http_only = [
            ("params", !config.params.is_empty()),
            ("records", !config.records.is_empty()),
            ("pagination", config.pagination.is_some()),
        ];
        for (field, given) in http_only {
            if given {
                self.problem(
                    span,
                    format!("{path}.{field}"),
                    format!("`{field}` is for HTTP sources; a database source reads a `table` or a `query`"),
                );
            }
        }
        match (&config.table, &config.query) {
            (Some(table), None) => {
                let parts: Vec<&str> = table.split('.').collect();
                if parts.len() > 2 || !parts.iter().all(|part| is_sql_name(part)) {
                    self.problem(
                        span,
                        format!("{path}.table"),
                        format!(
                            "`{table}` is not a table name: `table` or `schema.table`, each letters, digits and `_`"
                        ),
                    );
                    return None;
                }
                let (schema, table) = match parts.as_slice() {
                    [schema, table] => (Some(schema.to_string()), table.to_string()),
                    _ => (None, parts[0].to_string()),
                };
                Some(Read::Table { schema, table })
            }
            (None, Some(query)) => {
                let query = query.trim().trim_end_matches(';').trim();
                let head = query.split_whitespace().next().unwrap_or("").to_ascii_lowercase();
                if !matches!(head.as_str(), "select" | "with") || query.contains(';') {
                    self.problem(
                        span,
                        format!("{path}.query"),
                        "a query is one `SELECT` (or `WITH … SELECT`) without `;`",
                    );
                    return None;
                }
                Some(Read::Query(query.to_string()))
            }
            _ => {
                self.problem(span, format!("{path}.table"), "give one of `table` and `query`");
                None
            }
        }
    }

    fn http_read(&mut self, span: &Range<usize>, path: &str, config: &SourceConfig) -> Option<Read> {
        if config.table.is_some() || config.query.is_some() {
            self.problem(
                span,
                format!("{path}.table"),
                "an HTTP source reads its `url`: `table` and `query` are for databases",
            );
        }
        let url = match &config.url {
            Some(url) if url.starts_with("http://") || url.starts_with("https://") => url.clone(),
            Some(url) => {
                self.problem(
                    span,
                    format!("{path}.url"),
                    format!("`{url}` is not an HTTP URL: it starts with `https://` or `http://`"),
                );
                return None;
            }
            None => {
                self.problem(span, format!("{path}.url"), "an HTTP source needs its endpoint's `url`");
                return None;
            }
        };
        if !(config.rate_limit > 0.0 && config.rate_limit <= 1000.0) {
            self.problem(
                span,
                format!("{path}.rate_limit"),
                format!("{} requests per second: give more than 0 and at most 1000", config.rate_limit),
            );
        }
        if !(1..=20).contains(&config.attempts) {
            self.problem(span, format!("{path}.attempts"), format!("{} attempts: give 1 to 20", config.attempts));
        }
        let pagination = config.pagination.as_ref().map(|pagination| {
            let param = pagination.param.clone().unwrap_or_else(|| match pagination.kind {
                PaginationKind::PageNumber => "page".to_string(),
                PaginationKind::Offset => "offset".to_string(),
                PaginationKind::Cursor | PaginationKind::Link => "cursor".to_string(),
            });
            let next = pagination.next.as_deref().map(split_path).unwrap_or_default();
            match pagination.kind {
                PaginationKind::Cursor if next.is_empty() => self.problem(span, format!("{path}.pagination.next"), "cursor pagination needs `next`, the path of the next page's cursor in a response, e.g. `meta.next_cursor`"),
                PaginationKind::Cursor => {}
                _ if pagination.next.is_some() => self.problem(span, format!("{path}.pagination.next"), "`next` is for `kind = \"cursor\"`"),
                _ => {}
            }
            Pagination { kind: pagination.kind, param, size_param: pagination.size_param.clone(), start: pagination.start, next }
        });
        let auth = config.auth.as_ref().map(|auth| {
            let header = auth.header.clone().unwrap_or_else(|| "Authorization".to_string());
            let bearer = auth.bearer.unwrap_or(header.eq_ignore_ascii_case("authorization"));
            if header.is_empty()
                || !header.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
            {
                self.problem(span, format!("{path}.auth.header"), format!("`{header}` is not a header name"));
            }
            (header, bearer)
        });
        Some(Read::Http(Http {
            url,
            params: config.params.clone(),
            records: split_path(&config.records),
            pagination,
            auth,
            rate_limit: config.rate_limit,
            attempts: config.attempts,
        }))
    }

    fn cursor(&mut self, span: &Range<usize>, path: &str, cursor: &CursorConfig, database: bool) -> Option<Cursor> {
        let path = format!("{path}.cursor");
        let name = match (database, &cursor.column, &cursor.field) {
            (true, Some(column), None) if is_sql_name(column) => column.clone(),
            (true, Some(column), None) => {
                self.problem(
                    span,
                    format!("{path}.column"),
                    format!("`{column}` is not a column name (letters, digits, `_`)"),
                );
                return None;
            }
            (true, _, _) => {
                self.problem(span, format!("{path}.column"), "a database cursor names its `column` (not `field`)");
                return None;
            }
            (false, None, Some(field)) if !field.is_empty() => field.clone(),
            (false, _, _) => {
                self.problem(
                    span,
                    format!("{path}.field"),
                    "an HTTP cursor names its record `field`, a dotted path (not `column`)",
                );
                return None;
            }
        };
        if database && cursor.param.is_some() {
            self.problem(span, format!("{path}.param"), "`param` is for HTTP cursors");
        }
        let lookback = match (&cursor.lookback, cursor.cursor_type) {
            (None, _) => 0,
            (Some(toml::Value::Integer(number)), CursorType::Integer) if *number >= 0 => *number,
            (Some(toml::Value::String(text)), CursorType::Timestamp) if source::parse_duration(text).is_some() => {
                source::parse_duration(text).unwrap_or(0) as i64
            }
            (Some(toml::Value::String(text)), CursorType::Date)
                if source::parse_duration(text).is_some_and(|seconds| seconds % 86_400 == 0) =>
            {
                (source::parse_duration(text).unwrap_or(0) / 86_400) as i64
            }
            (Some(value), cursor_type) => {
                let expected = match cursor_type {
                    CursorType::Integer => "a number, e.g. `lookback = 100`",
                    CursorType::Timestamp => "a duration, e.g. `lookback = \"10m\"`",
                    CursorType::Date => "whole days, e.g. `lookback = \"2d\"`",
                };
                self.problem(
                    span,
                    format!("{path}.lookback"),
                    format!("`{value}`: a {} cursor's lookback is {expected}", type_name(cursor_type)),
                );
                0
            }
        };
        if let Some(start) = &cursor.start
            && !valid_cursor(cursor.cursor_type, start)
        {
            self.problem(
                span,
                format!("{path}.start"),
                format!("`{start}` is not a {} (e.g. {})", type_name(cursor.cursor_type), example(cursor.cursor_type)),
            );
        }
        Some(Cursor {
            name,
            cursor_type: cursor.cursor_type,
            lookback,
            param: cursor.param.clone(),
            start: cursor.start.clone(),
        })
    }

    fn source_dataset(&mut self, span: &Range<usize>, path: &str, source: &Source, datasets: &[Dataset]) {
        let Some(dataset) = datasets.iter().find(|dataset| dataset.name == source.dataset) else {
            let names: Vec<&str> = datasets.iter().map(|dataset| dataset.name.as_str()).collect();
            self.problem(
                span,
                format!("{path}.dataset"),
                format!("no dataset `{}`; the datasets are: {}", source.dataset, names.join(", ")),
            );
            return;
        };
        let key = source.page_key("full", 1);
        if !dataset.matches(&key) {
            self.problem(span, format!("{path}.dataset"), format!("the dataset `{}` does not match the source's files ({}/…/page-NNNNN.ndjson.gz): add `\"{}/**/*.ndjson.gz\"` to its `match`", dataset.name, source.prefix, source.prefix));
        }
        if !matches!(dataset.config.format, Format::Auto | Format::Ndjson) {
            self.problem(span, format!("{path}.dataset"), format!("the dataset `{}` reads another format: a source writes NDJSON, so its `format` is `auto` or `ndjson`", dataset.name));
        }
        for other in datasets.iter().filter(|other| other.name != dataset.name) {
            if other.matches(&key) {
                self.problem(
                    span,
                    format!("{path}.dataset"),
                    format!("the dataset `{}` matches the source's files too: make the patterns exclusive", other.name),
                );
            }
        }
    }
}

fn type_name(cursor_type: CursorType) -> &'static str {
    match cursor_type {
        CursorType::Integer => "integer",
        CursorType::Timestamp => "timestamp",
        CursorType::Date => "date",
    }
}

fn example(cursor_type: CursorType) -> &'static str {
    match cursor_type {
        CursorType::Integer => "`0`",
        CursorType::Timestamp => "`2024-01-01T00:00:00Z`",
        CursorType::Date => "`2024-01-01`",
    }
}

/// Whether `text` is a value of the cursor's type as the extractor writes watermarks.
pub(crate) fn valid_cursor(cursor_type: CursorType, text: &str) -> bool {
    match cursor_type {
        CursorType::Integer => text.parse::<i64>().is_ok(),
        CursorType::Timestamp => chrono::DateTime::parse_from_rfc3339(text).is_ok(),
        CursorType::Date => chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").is_ok(),
    }
}

/// A plain SQL name: letters, digits and `_`, not starting with a digit.
fn is_sql_name(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 63
        && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !text.starts_with(|c: char| c.is_ascii_digit())
}

fn split_path(text: &str) -> Vec<String> {
    text.split('.').filter(|part| !part.is_empty()).map(str::to_string).collect()
}

/// Whether a URL holds a password (`scheme://user:password@host`).
fn has_password(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    authority.rsplit_once('@').is_some_and(|(credentials, _)| credentials.contains(':'))
}
