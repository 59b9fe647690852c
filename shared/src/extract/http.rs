//! HTTP sources: pages of JSON fetched at a bounded rate, retried with backoff and jitter on
//! 429 and 5xx (honouring `Retry-After`), the records at the source's JSON path written as
//! they came (numbers with their digits), kept when their cursor is past the watermark less
//! the lookback. The pages are spooled and written only when a record is past the watermark
//! itself, so an extraction that finds nothing new writes nothing.

use std::time::{Duration, Instant};

use serde_json::value::RawValue;

use super::pages::Pages;
use super::{
    Batch, CursorValue, Extraction, Extractor, Options, Outcome, SourceState, range_name, refused, shown, unavailable,
};
use crate::contract::source::{Http, PaginationKind, Source};
use crate::{Error, Result};

/// The longest a `Retry-After` or a backoff makes a request wait.
const LONGEST_WAIT: Duration = Duration::from_secs(300);

pub(super) async fn extract(
    extractor: &Extractor,
    source: &Source,
    http: &Http,
    state: &mut SourceState,
    options: &Options,
) -> Result<Extraction> {
    let token = extractor.credential(source).await?;
    let had_pending = state.pending.is_some();
    let from = state.pending.as_ref().map(|pending| pending.from.clone()).unwrap_or_else(|| {
        state.watermark.clone().or_else(|| source.cursor.as_ref().and_then(|cursor| cursor.start.clone()))
    });
    let cursor = source.cursor.as_ref();
    let parse = |text: &str| cursor.and_then(|cursor| CursorValue::parse(cursor.cursor_type, text));
    let from_value =
        match (&from, cursor) {
            (Some(from), Some(_)) => Some(parse(from).ok_or_else(|| {
                refused(source, format!("the watermark `{from}` is not a value of the cursor's type"))
            })?),
            _ => None,
        };
    let lower = from_value.as_ref().map(|from| from.minus(cursor.map_or(0, |cursor| cursor.lookback)));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .user_agent(concat!("lakestar/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|error| Error::Internal(format!("an HTTP client: {error}")))?;
    let mut requests = Requests { client: &client, source, http, token: token.as_deref(), last: None };

    // The range is named after the watermark only: its upper end is known at the end.
    let range = if cursor.is_some() { range_name(from.as_deref(), Some("now")) } else { range_name(None, None) };
    if state.pending.is_none() {
        state.pending = Some(Batch::new(range, from.clone(), None));
    }
    let mut pages = Pages::new(extractor, source, options.stop_after_pages, true);
    let mut greatest: Option<(CursorValue, String)> = None;
    let mut records_seen = 0u64;
    let mut next =
        Some(first_request(http, cursor.and_then(|cursor| cursor.param.as_deref()), lower.as_ref(), source.page_size)?);
    let mut page = 0usize;
    while let Some(url) = next.take() {
        page += 1;
        let (body, link) = requests.get(&url, page).await?;
        let records = records(&body, &http.records)
            .map_err(|why| refused(source, format!("{} page {page}: {why}", shown(url.as_str()))))?;
        let count = records.len();
        for (index, record) in records.iter().enumerate() {
            records_seen += 1;
            if let Some(cursor) = cursor {
                let path: Vec<&str> = cursor.name.split('.').collect();
                let text = field_text(record.get(), &path).ok_or_else(|| {
                    refused(
                        source,
                        format!(
                            "{} page {page}, record {}: no cursor field `{}`",
                            shown(url.as_str()),
                            index + 1,
                            cursor.name
                        ),
                    )
                })?;
                let value = parse(&text).ok_or_else(|| {
                    refused(
                        source,
                        format!(
                            "{} page {page}, record {}: the cursor field `{}` is not a {:?} value",
                            shown(url.as_str()),
                            index + 1,
                            cursor.name,
                            cursor.cursor_type
                        ),
                    )
                })?;
                if lower.as_ref().is_some_and(|lower| value.compare(lower).is_le()) {
                    continue;
                }
                if greatest.as_ref().is_none_or(|(known, _)| value.compare(known).is_gt()) {
                    greatest = Some((value, text));
                }
            }
            pages.push(state, &crate::ingest::compact_json(record.get())).await?;
        }
        next = next_request(http, &url, &body, link.as_deref(), count, records_seen, page)?;
    }
    pages.close(state).await?;

    let new = match (&greatest, &from_value) {
        (_, _) if cursor.is_none() => pages.count() > 0,
        (Some((greatest, _)), Some(from)) => greatest.compare(from).is_gt(),
        (Some(_), None) => true,
        (None, _) => false,
    };
    if !new {
        state.pending = None;
        if had_pending {
            extractor.save(state).await?;
        }
        return Ok(state.outcome(source, Outcome::NothingNew));
    }
    if let Some(pending) = state.pending.as_mut() {
        pending.to = greatest.map(|(_, text)| text);
    }
    pages.commit(state).await?;
    let written = pages.written;
    extractor.finish(source, state, written).await
}

/// Sends requests at the source's rate, retrying what passes.
struct Requests<'a> {
    client: &'a reqwest::Client,
    source: &'a Source,
    http: &'a Http,
    token: Option<&'a str>,
    last: Option<Instant>,
}

impl Requests<'_> {
    /// The body and the `Link` header's next URL of one page.
    async fn get(&mut self, url: &reqwest::Url, page: usize) -> Result<(Vec<u8>, Option<String>)> {
        let interval = Duration::from_secs_f64(1.0 / self.http.rate_limit);
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            if let Some(last) = self.last {
                tokio::time::sleep_until((last + interval).into()).await;
            }
            self.last = Some(Instant::now());
            let mut request = self.client.get(url.clone()).header("Accept", "application/json");
            if let (Some(token), Some((header, bearer))) = (self.token, &self.http.auth) {
                request = request
                    .header(header.as_str(), if *bearer { format!("Bearer {token}") } else { token.to_string() });
            }
            let why = match request.send().await {
                Ok(response) if response.status().is_success() => {
                    let link = response.headers().get("link").and_then(|value| value.to_str().ok()).and_then(next_link);
                    match response.bytes().await {
                        Ok(body) => return Ok((body.to_vec(), link)),
                        Err(error) => (format!("reading the answer: {}", crate::error_chain(&error)), None),
                    }
                }
                Ok(response) if response.status().as_u16() == 429 || response.status().is_server_error() => {
                    (format!("answered {}", response.status()), retry_after(response.headers()))
                }
                Ok(response) => {
                    return Err(refused(
                        self.source,
                        format!(
                            "{} page {page}: answered {}; check the URL, its parameters and the token",
                            shown(url.as_str()),
                            response.status()
                        ),
                    ));
                }
                Err(error) => (crate::error_chain(&error), None),
            };
            let (why, wait) = why;
            if attempt >= self.http.attempts {
                return Err(unavailable(
                    self.source,
                    format!(
                        "{} page {page}: {why}, after {attempt} attempt(s); the watermark did not move",
                        shown(url.as_str())
                    ),
                ));
            }
            let wait = wait.unwrap_or_else(|| backoff(attempt)).min(LONGEST_WAIT);
            tracing::warn!(source = %self.source.name, page, attempt, wait_ms = wait.as_millis() as u64, "{why}: retrying");
            tokio::time::sleep(wait).await;
        }
    }
}

/// Exponential backoff from a quarter second, capped at 30 s, with full jitter in its upper half.
fn backoff(attempt: u32) -> Duration {
    let ceiling = (0.25 * 2f64.powi(attempt.saturating_sub(1) as i32)).min(30.0);
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |time| time.subsec_nanos());
    let jitter = 0.5 + f64::from(nanos % 1000) / 2000.0;
    Duration::from_secs_f64(ceiling * jitter)
}

/// `Retry-After`: seconds, or an HTTP date.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get("retry-after")?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    Some((when.with_timezone(&chrono::Utc) - chrono::Utc::now()).to_std().unwrap_or_default())
}

/// The `rel="next"` URL of a `Link` header.
fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let next = params.split(';').any(|param| {
            let param = param.trim().replace(' ', "");
            param.eq_ignore_ascii_case("rel=\"next\"") || param.eq_ignore_ascii_case("rel=next")
        });
        next.then(|| target.trim().trim_start_matches('<').trim_end_matches('>').to_string())
    })
}

fn first_request(
    http: &Http,
    cursor_param: Option<&str>,
    lower: Option<&CursorValue>,
    page_size: usize,
) -> Result<reqwest::Url> {
    let mut url = reqwest::Url::parse(&http.url)
        .map_err(|error| Error::Configuration(format!("`{}` is not a URL: {error}", http.url)))?;
    {
        let mut query = url.query_pairs_mut();
        for (name, value) in &http.params {
            query.append_pair(name, value);
        }
        if let (Some(param), Some(lower)) = (cursor_param, lower) {
            query.append_pair(param, &lower.text());
        }
        if let Some(pagination) = &http.pagination {
            if let Some(size) = &pagination.size_param {
                query.append_pair(size, &page_size.min(10_000).to_string());
            }
            match pagination.kind {
                PaginationKind::PageNumber => {
                    query.append_pair(&pagination.param, &pagination.start.to_string());
                }
                PaginationKind::Offset => {
                    query.append_pair(&pagination.param, "0");
                }
                PaginationKind::Cursor | PaginationKind::Link => {}
            }
        }
    }
    if url.query() == Some("") {
        url.set_query(None);
    }
    Ok(url)
}

/// The next page's URL, or `None` after the last page.
fn next_request(
    http: &Http,
    url: &reqwest::Url,
    body: &[u8],
    link: Option<&str>,
    count: usize,
    seen: u64,
    page: usize,
) -> Result<Option<reqwest::Url>> {
    let Some(pagination) = &http.pagination else { return Ok(None) };
    let with = |value: String| {
        let mut next = url.clone();
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(name, _)| name != &pagination.param)
            .map(|(name, value)| (name.into_owned(), value.into_owned()))
            .collect();
        next.query_pairs_mut().clear().extend_pairs(pairs).append_pair(&pagination.param, &value);
        next
    };
    Ok(match pagination.kind {
        PaginationKind::PageNumber if count > 0 => Some(with((pagination.start + page as u64).to_string())),
        PaginationKind::Offset if count > 0 => Some(with(seen.to_string())),
        PaginationKind::PageNumber | PaginationKind::Offset => None,
        PaginationKind::Cursor => {
            let path: Vec<&str> = pagination.next.iter().map(String::as_str).collect();
            let text = std::str::from_utf8(body).ok().and_then(|body| field_text(body, &path));
            text.filter(|text| !text.is_empty()).map(with)
        }
        PaginationKind::Link => match link {
            Some(link) => Some(
                url.join(link)
                    .map_err(|error| Error::Configuration(format!("the `Link` header's next URL `{link}`: {error}")))?,
            ),
            None => None,
        },
    })
}

/// The records at `path` in a response, each as its raw JSON text.
fn records(body: &[u8], path: &[String]) -> Result<Vec<Box<RawValue>>, String> {
    let text = std::str::from_utf8(body).map_err(|_| "the answer is not UTF-8 text".to_string())?;
    let mut current: Box<RawValue> =
        serde_json::from_str(text).map_err(|error| format!("the answer is not JSON ({error})"))?;
    for (depth, name) in path.iter().enumerate() {
        let inner = serde_json::from_str::<std::collections::BTreeMap<String, Box<RawValue>>>(current.get())
            .ok()
            .and_then(|mut members| members.remove(name));
        match inner {
            Some(inner) => current = inner,
            None => {
                return Err(format!(
                    "no `{}` in the answer: set `records` to the path of its records' array",
                    path[..=depth].join(".")
                ));
            }
        }
    }
    serde_json::from_str::<Vec<Box<RawValue>>>(current.get()).map_err(|_| {
        format!(
            "`{}` is not an array of records",
            if path.is_empty() { "the answer".to_string() } else { path.join(".") }
        )
    })
}

/// A field's text at a dotted path of a JSON object: a string's value, or a number's literal.
fn field_text(json: &str, path: &[&str]) -> Option<String> {
    let mut current: Box<RawValue> = serde_json::from_str(json).ok()?;
    for name in path {
        let mut members: std::collections::BTreeMap<String, Box<RawValue>> =
            serde_json::from_str(current.get()).ok()?;
        current = members.remove(*name)?;
    }
    let text = current.get().trim();
    match text.as_bytes().first() {
        Some(b'"') => serde_json::from_str::<String>(text).ok(),
        Some(b'n') | Some(b'{') | Some(b'[') | None => None,
        _ => Some(text.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_headers_give_the_next_page() {
        let header =
            r#"<https://api.example.com/items?page=3>; rel="next", <https://api.example.com/items?page=9>; rel="last""#;
        assert_eq!(next_link(header).as_deref(), Some("https://api.example.com/items?page=3"));
        assert_eq!(next_link(r#"<https://a/items?page=1>; rel="prev""#), None);
    }

    #[test]
    fn records_and_fields_are_found_at_their_paths() {
        let body = br#"{"data": {"items": [{"id": 1, "price": 12345678901234567890.10}, {"id": 2}]}, "meta": {"next": "abc"}}"#;
        let found = records(body, &["data".to_string(), "items".to_string()]).expect("records");
        assert_eq!(found.len(), 2);
        assert_eq!(field_text(found[0].get(), &["price"]).as_deref(), Some("12345678901234567890.10"));
        assert_eq!(field_text(std::str::from_utf8(body).expect("text"), &["meta", "next"]).as_deref(), Some("abc"));
        assert!(records(body, &["items".to_string()]).expect_err("missing").contains("no `items`"));
        assert!(records(b"[1, 2]", &[]).is_ok());
        assert!(records(b"{}", &[]).is_err());
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("retry-after", "7".parse().expect("a header value"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT".parse().expect("a header value"));
        assert_eq!(retry_after(&headers), Some(Duration::ZERO));
        assert!(backoff(1) <= Duration::from_millis(250) && backoff(10) <= Duration::from_secs(30));
    }
}
