//! The checks of one column: its type, format and zone, its checks and bounds, its masking.

use std::ops::Range;

use regex::Regex;

use super::Checker;
use crate::contract::*;
use crate::types::{Reading, Zone, type_name};

impl Checker<'_> {
    pub(super) fn column(
        &mut self,
        path: &str,
        span: Range<usize>,
        config: ColumnConfig,
        kind: TableKind,
    ) -> Option<Column> {
        // Long on purpose: one check of the column after another, each naming its field; they read
        // best in the order the reference documents the fields.
        let path = format!("{path} ({})", config.name);
        if !is_identifier(&config.name) {
            self.problem(
                &span,
                format!("{path}.name"),
                "a column name must be a lower-case identifier such as `customer_id`",
            );
        }
        if let Some(target) = &config.target
            && !is_identifier(target)
        {
            self.problem(&span, format!("{path}.target"), format!("`{target}` is not a lower-case identifier"));
        }
        let Some(data_type) = DataType::parse(&config.data_type) else {
            self.problem(&span, format!("{path}.type"), format!("unknown type `{}`: expected string, integer, decimal(p,s) with 1 ≤ p ≤ 38 and s ≤ p, float, boolean, date or timestamp", config.data_type));
            return None;
        };
        if (config.format.is_some() || config.timezone.is_some()) && !data_type.is_temporal() {
            self.problem(
                &span,
                format!("{path}.format"),
                "`format` and `timezone` apply only to date and timestamp columns",
            );
        }
        if config.thousands.is_some() && !data_type.is_numeric() {
            self.problem(&span, format!("{path}.thousands"), "`thousands` applies only to numeric columns");
        }
        let checks = &config.checks;
        for (name, value) in [("min", &checks.min), ("max", &checks.max)] {
            let Some(value) = value else { continue };
            let fits = match value {
                toml::Value::Integer(_) | toml::Value::Float(_) => data_type.is_numeric(),
                toml::Value::String(text) => {
                    data_type.is_temporal() && chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").is_ok()
                }
                toml::Value::Datetime(_) => data_type.is_temporal(),
                _ => false,
            };
            if !fits {
                self.problem(&span, format!("{path}.checks.{name}"), "expected a number for a numeric column or an ISO date (`2024-01-31`) for a date or timestamp column");
            }
        }
        if (checks.min_length.is_some() || checks.max_length.is_some() || checks.email) && data_type != DataType::String
        {
            self.problem(
                &span,
                format!("{path}.checks"),
                "`min_length`, `max_length` and `email` apply only to string columns",
            );
        }
        let zone = Zone::parse(config.timezone.as_deref().unwrap_or("UTC")).unwrap_or_else(|| {
            self.problem(
                &span,
                format!("{path}.timezone"),
                "unknown time zone: use UTC, an offset such as +01:00, or an IANA name such as Europe/London",
            );
            Zone::Fixed(chrono::Offset::fix(&chrono::Utc))
        });
        let reading = Reading { data_type, thousands: config.thousands, format: config.format.clone(), zone };
        let mut bound = |which: &str, value: &Option<toml::Value>| {
            let text = match value.as_ref()? {
                toml::Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            match reading.bound(&text) {
                Some(bound) => Some((bound, text)),
                None => {
                    self.problem(
                        &span,
                        format!("{path}.checks.{which}"),
                        format!("`{text}` is not a {} value", type_name(data_type)),
                    );
                    None
                }
            }
        };
        let (min, max) = (bound("min", &checks.min), bound("max", &checks.max));
        let regex = checks.regex.as_ref().and_then(|pattern| match Regex::new(&format!("^(?:{pattern})$")) {
            Ok(regex) => Some(regex),
            Err(error) => {
                self.problem(&span, format!("{path}.checks.regex"), format!("not a valid regular expression: {error}"));
                None
            }
        });
        if let Some(pii) = &config.pii {
            self.pii(&span, &path, pii, data_type);
        }
        if let Some(scd) = config.scd {
            if kind != TableKind::Dimension {
                self.problem(&span, format!("{path}.scd"), "`scd` applies only to columns of a dimension table");
            } else if scd != 1 && scd != 2 {
                self.problem(&span, format!("{path}.scd"), "expected 1 (overwrite) or 2 (keep history)");
            }
        }
        let mut header_keys = vec![normalize_header(&config.name)];
        for alias in &config.aliases {
            let key = normalize_header(alias);
            if key.is_empty() {
                self.problem(&span, format!("{path}.aliases"), format!("alias `{alias}` has no letter or digit"));
            } else if !header_keys.contains(&key) {
                header_keys.push(key);
            }
        }
        Some(Column { name: config.name.clone(), data_type, reading, regex, min, max, config, header_keys })
    }

    fn pii(&mut self, span: &Range<usize>, path: &str, pii: &PiiConfig, data_type: DataType) {
        let field = format!("{path}.pii");
        if let Some(encoding) = &pii.encoding
            && !matches!(encoding.as_str(), "hex" | "base64url")
        {
            self.problem(span, format!("{field}.encoding"), "expected `hex` or `base64url`");
        }
        // A field of another method's would be ignored: refuse it, naming the method it is for.
        let method = serde_json::to_value(pii.method).ok().and_then(|value| value.as_str().map(str::to_string));
        let method = method.unwrap_or_default();
        for (name, given, for_methods) in [
            ("encoding", pii.encoding.is_some(), &[PiiMethod::Hash, PiiMethod::EmailHash][..]),
            ("reveal", pii.reveal.is_some(), &[PiiMethod::Partial][..]),
            ("prefix", pii.prefix.is_some(), &[PiiMethod::Token][..]),
            ("to", pii.to.is_some(), &[PiiMethod::Generalize][..]),
        ] {
            if given && !for_methods.contains(&pii.method) {
                let owners: Vec<String> = for_methods
                    .iter()
                    .filter_map(|owner| serde_json::to_value(owner).ok()?.as_str().map(|text| format!("`{text}`")))
                    .collect();
                self.problem(
                    span,
                    format!("{field}.{name}"),
                    format!(
                        "`{name}` applies to {} only, not to `{method}`: remove it, or use that method",
                        owners.join(" and ")
                    ),
                );
            }
        }
        match pii.method {
            PiiMethod::Hash | PiiMethod::EmailHash | PiiMethod::Redact => {}
            PiiMethod::Partial => {
                if pii.reveal == Some(0) {
                    self.problem(span, format!("{field}.reveal"), "reveal at least one character, or use `redact`");
                }
            }
            PiiMethod::Token => {
                if pii.prefix.as_deref().is_none_or(str::is_empty) {
                    self.problem(span, format!("{field}.prefix"), "a token needs a prefix, e.g. `prefix = \"CUST-\"`");
                }
            }
            PiiMethod::Generalize => match pii.to.as_deref() {
                Some("month" | "year" | "age_band") if data_type.is_temporal() => {}
                Some("postcode_district") if data_type == DataType::String => {}
                Some(other) => self.problem(span, format!("{field}.to"), format!("cannot generalise a {data_type:?} column to `{other}`: use `month`, `year` or `age_band` for dates, `postcode_district` for UK postcodes")),
                None => self.problem(span, format!("{field}.to"), "say what to generalise to: `month`, `year`, `age_band` or `postcode_district`"),
            },
        }
    }
}
