//! A draft written as `pipeline.toml`: the fields `lakestar check` reads, each guess with a
//! comment saying what it rests on.

use std::fmt::Write;

use super::Draft;
use crate::types::{DataType, type_name};

/// A TOML basic string.
fn quoted(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

/// Text safe in a comment: one line, control characters as spaces, long values cut.
fn plain(text: &str, limit: usize) -> String {
    let mut out: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).take(limit).collect();
    if text.chars().count() > limit {
        out.push('…');
    }
    out
}

fn list(items: &[String]) -> String {
    let items: Vec<String> = items.iter().map(|item| quoted(item)).collect();
    format!("[{}]", items.join(", "))
}

/// A number with thin grouping for comments: `1 000 000`.
fn count(number: u64) -> String {
    let digits = number.to_string();
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(digit);
    }
    out
}

pub(super) fn write(draft: &Draft) -> String {
    let mut out = String::new();
    let name = &draft.dataset;
    let _ = writeln!(out, "# Drafted by `lakestar infer` from {} file(s):", draft.samples.len());
    for sample in &draft.samples {
        let sampled = if let Some((read, size)) = sample.cut {
            format!(
                "the first {} rows read (the first {} of {} bytes)",
                count(sample.rows_read),
                count(read),
                count(size)
            )
        } else if sample.rows_read < sample.rows_total {
            format!("the first {} of {} rows read", count(sample.rows_read), count(sample.rows_total))
        } else {
            format!("{} rows read", count(sample.rows_read))
        };
        let unparsed = match sample.unparsed {
            0 => String::new(),
            rows => format!(", {} row(s) could not be parsed", count(rows)),
        };
        let gzip = if sample.gzip { ", gzip" } else { "" };
        let _ = writeln!(
            out,
            "#   {} ({}{gzip}, {}): {sampled}{unparsed}",
            plain(&sample.key, 300),
            sample.format,
            sample.encoding
        );
    }
    let _ = writeln!(
        out,
        "# Every guess says what it rests on; check them (a line marked CHECK above all), then\n\
         # `lakestar check` this file and `lakestar validate` a file with it.\n"
    );
    let _ = writeln!(out, "[masking]\nkey_version = \"v1\"\n");
    let _ = writeln!(out, "[datasets.{name}]");
    let files: Vec<&str> =
        draft.samples.iter().map(|sample| sample.key.rsplit('/').next().unwrap_or(&sample.key)).collect();
    let _ = writeln!(out, "description = {}", quoted(&format!("Drafted from {}.", files.join(", "))));
    let _ = writeln!(out, "match = {}", list(&draft.patterns));
    let encodings: std::collections::BTreeSet<&str> = draft.samples.iter().map(|sample| sample.encoding).collect();
    if encodings.contains("windows-1252") {
        let _ = writeln!(out, "encoding = \"windows-1252\"  # not valid UTF-8");
    }
    let _ = writeln!(out);
    let delimiters: std::collections::BTreeSet<u8> =
        draft.samples.iter().filter_map(|sample| sample.delimiter).collect();
    let shown = |byte: u8| if byte == b'\t' { "tab".to_string() } else { (byte as char).to_string() };
    match delimiters.len() {
        0 => {}
        1 => {
            let delimiter = delimiters.iter().next().copied().unwrap_or(b',');
            let _ = writeln!(out, "[datasets.{name}.csv]");
            let _ = writeln!(out, "delimiter = {}  # the header line's", quoted(&shown(delimiter)));
            let _ = writeln!(out, "quote = '\"'\n");
        }
        _ => {
            let seen: Vec<String> = delimiters.iter().map(|byte| format!("`{}`", shown(*byte))).collect();
            let _ = writeln!(
                out,
                "# CSV delimiters differ between the files ({}): each file's is sniffed from its header.\n",
                seen.join(", ")
            );
        }
    }

    let stem = &name[..name.len().min(48)];
    let _ = writeln!(out, "[datasets.{name}.table]");
    let prefix = if draft.kind == "fact" { "fact" } else { "dim" };
    let _ = writeln!(out, "name = \"{prefix}_{stem}\"");
    let why_kind = if draft.kind == "fact" {
        "a date, measures and ids of other things"
    } else {
        "no date with measures and references: a dimension"
    };
    let _ = writeln!(out, "kind = \"{}\"  # {why_kind}", draft.kind);
    let _ = writeln!(out, "natural_key = {}  # {}", list(&draft.natural_key.0), draft.natural_key.1);
    match (draft.kind, &draft.time_column) {
        ("fact", Some(column)) => {
            let _ =
                writeln!(out, "date_column = \"{column}\"  # the facts' date; dimension keys are looked up as of it");
            let ids: Vec<&str> = draft
                .columns
                .iter()
                .filter(|column| !draft.natural_key.0.contains(&column.name) && super::id_like(&column.name))
                .map(|column| column.name.as_str())
                .collect();
            if !ids.is_empty() {
                let _ = writeln!(out, "# references = [");
                for id in ids {
                    let _ = writeln!(out, "#     {{ dimension = \"dim_…\", columns = [\"{id}\"] }},");
                }
                let _ = writeln!(out, "# ]  (the dimensions must be datasets of this contract)");
            }
        }
        (_, Some(column)) => {
            let _ = writeln!(out, "effective_from = \"{column}\"  # its name says when a version begins");
        }
        _ => {}
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "[datasets.{name}.quality]\nmax_reject_ratio = 0.05\nmin_rows = 1\n");

    for column in &draft.columns {
        let mut about = format!(
            "{} rows: {} empty, {} distinct",
            count(column.rows as u64),
            count(column.empty as u64),
            count(column.distinct as u64)
        );
        for note in &column.notes {
            about.push_str("; ");
            about.push_str(note);
        }
        let _ = writeln!(out, "# {}", plain(&about, 600));
        if let Some((low, high)) = &column.range {
            let _ = writeln!(out, "# observed from {} to {}", plain(low, 60), plain(high, 60));
        }
        let _ = writeln!(out, "[[datasets.{name}.columns]]");
        let _ = writeln!(out, "name = \"{}\"", column.name);
        if !column.aliases.is_empty() {
            let _ = writeln!(out, "aliases = {}", list(&column.aliases));
        }
        if column.data_type != DataType::String {
            let _ = writeln!(out, "type = \"{}\"", type_name(column.data_type));
        }
        if let Some(format) = &column.format {
            let _ = writeln!(out, "format = {}", quoted(format));
        }
        if let Some(separator) = column.thousands {
            let _ = writeln!(out, "thousands = {}", quoted(&separator.to_string()));
        }
        if column.required {
            let _ = writeln!(out, "required = true");
        }
        if let Some(case) = column.case {
            let _ = writeln!(out, "case = \"{case}\"  # the values differ only in case");
        }
        if column.email {
            let _ = writeln!(out, "checks = {{ email = true }}");
        } else if let Some(allowed) = &column.allowed {
            let _ = writeln!(out, "checks = {{ allowed = {} }}  # few distinct values", list(allowed));
        }
        if let Some(pii) = &column.pii {
            let _ = writeln!(out, "pii = {{ {} }}  # {}", pii.fields, pii.why);
        }
        let _ = writeln!(out);
    }
    out
}
