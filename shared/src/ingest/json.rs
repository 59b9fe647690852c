//! JSON and NDJSON landing files: objects flattened to `parent_child` columns, arrays kept
//! as JSON text, rows that are not objects quarantined. Numbers keep the digits they were
//! written with (a decimal of 30 digits stays exact): values are read as raw JSON text.

use std::io::BufRead;

use serde::Deserialize;
use serde::de::{MapAccess, Visitor};
use serde_json::value::RawValue;

use super::headers::HeaderMapper;
use super::raw::{ParseReject, RawWriter, RejectWriter};
use super::{Ingested, Progress};
use crate::contract::Dataset;
use crate::{Error, Result};

/// An object's flattened columns: `(column, text)` pairs in the object's order.
pub type Flat = Vec<(String, Option<String>)>;

/// Flattens a JSON object's text into `(column, text)` pairs: nested objects join their keys
/// with `_`, arrays become compact JSON text, `null` becomes no value, scalars their literal
/// text (numbers as written). `None` when the text is valid JSON but not an object.
pub fn flatten(text: &str) -> serde_json::Result<Option<Flat>> {
    if !text.trim_start().starts_with('{') {
        return Ok(None);
    }
    let mut out = Vec::new();
    flatten_into("", &serde_json::from_str::<Members>(text)?, &mut out)?;
    Ok(Some(out))
}

/// An object's members in order, each value as its raw text.
struct Members(Vec<(String, Box<RawValue>)>);

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct MembersVisitor;
        impl<'de> Visitor<'de> for MembersVisitor {
            type Value = Members;
            fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
                formatter.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Members, A::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some((key, value)) = map.next_entry::<String, Box<RawValue>>()? {
                    members.push((key, value));
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(MembersVisitor)
    }
}

fn flatten_into(prefix: &str, members: &Members, out: &mut Vec<(String, Option<String>)>) -> serde_json::Result<()> {
    for (key, value) in &members.0 {
        let name = if prefix.is_empty() { key.clone() } else { format!("{prefix}_{key}") };
        let text = value.get().trim();
        match text.as_bytes().first() {
            Some(b'{') => {
                let inner = serde_json::from_str::<Members>(text)?;
                if inner.0.is_empty() {
                    out.push((name, None));
                } else {
                    flatten_into(&name, &inner, out)?;
                }
            }
            Some(b'n') => out.push((name, None)),
            Some(b'"') => out.push((name, Some(serde_json::from_str::<String>(text)?))),
            Some(b'[') => out.push((name, Some(compact(text)))),
            _ => out.push((name, Some(text.to_string()))),
        }
    }
    Ok(())
}

/// JSON text without the whitespace between its tokens (strings untouched).
pub fn compact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in text.chars() {
        if in_string {
            out.push(c);
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !c.is_whitespace() {
            out.push(c);
        }
    }
    out
}

/// Feeds JSON rows to the raw writer.
struct JsonSink<'a, 'd> {
    mapper: HeaderMapper<'d>,
    raw: &'a mut RawWriter,
    rejects: &'a mut RejectWriter,
    progress: &'a mut Progress,
    slots: Vec<Option<String>>,
}

impl JsonSink<'_, '_> {
    fn value(&mut self, line: u64, value: &RawValue) -> Result<()> {
        self.progress.row();
        let flat = match flatten(value.get()) {
            Ok(Some(flat)) => flat,
            // Valid JSON (the raw value was), but not an object.
            Ok(None) | Err(_) => {
                return self.rejects.push(ParseReject {
                    line,
                    reason: "parse:not_an_object".to_string(),
                    raw: compact(value.get()),
                });
            }
        };
        self.slots.iter_mut().for_each(|slot| *slot = None);
        for (column, text) in flat {
            let known = self.mapper.names().len();
            let index = self.mapper.index(&column);
            if index == known {
                self.raw.add_column(&self.mapper.names()[index])?;
                self.slots.push(None);
            }
            self.slots[index] = text;
        }
        self.raw.push(line, self.slots.iter().map(Option::as_deref))
    }
}

/// Reads NDJSON: one object per line; a line that is not JSON is quarantined.
pub fn read_ndjson(
    mut reader: Box<dyn BufRead + Send>,
    dataset: &Dataset,
    key: &str,
    raw: &mut RawWriter,
    rejects: &mut RejectWriter,
    progress: &mut Progress,
) -> Result<Ingested> {
    let mut sink = JsonSink { mapper: HeaderMapper::new(dataset), raw, rejects, progress, slots: Vec::new() };
    let mut line = Vec::new();
    let mut number = 0u64;
    loop {
        line.clear();
        let read = reader.read_until(b'\n', &mut line).map_err(|error| Error::UnreadableFile {
            key: key.to_string(),
            message: format!("line {}: {error}; the file may be truncated", number + 1),
        })?;
        if read == 0 {
            break;
        }
        number += 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<&RawValue>(&line) {
            Ok(value) => sink.value(number, value)?,
            Err(error) => {
                sink.progress.row();
                let text = String::from_utf8_lossy(&line).trim_end().to_string();
                let what = if std::str::from_utf8(&line).is_err() {
                    "encoding(invalid UTF-8)".to_string()
                } else {
                    format!("json({})", in_file(&error, number))
                };
                sink.rejects.push(ParseReject { line: number, reason: format!("parse:{what}"), raw: text })?;
            }
        }
    }
    finish(sink, key)
}

/// Reads a JSON document: an array of objects, or one or more objects one after another.
/// Row numbers are the element's position. A syntax error stops the file, since nothing after
/// it can be trusted; it names the element.
pub fn read_json(
    mut reader: Box<dyn BufRead + Send>,
    dataset: &Dataset,
    key: &str,
    raw: &mut RawWriter,
    rejects: &mut RejectWriter,
    progress: &mut Progress,
) -> Result<Ingested> {
    let mut sink = JsonSink { mapper: HeaderMapper::new(dataset), raw, rejects, progress, slots: Vec::new() };
    let io_error = |error: std::io::Error| Error::UnreadableFile {
        key: key.to_string(),
        message: format!("{error}; the file may be truncated"),
    };
    let syntax = |element: u64, error: serde_json::Error| Error::UnreadableFile {
        key: key.to_string(),
        message: format!("element {element}: invalid JSON ({error}); fix the file and drop it again"),
    };

    let first = skip_whitespace(&mut reader).map_err(io_error)?;
    let mut element = 0u64;
    match first {
        None => {}
        Some(b'[') => {
            reader.consume(1);
            loop {
                match skip_whitespace(&mut reader).map_err(io_error)? {
                    None => {
                        return Err(syntax(element + 1, serde::de::Error::custom("the array is not closed with `]`")));
                    }
                    Some(b']') => break,
                    Some(b',') => reader.consume(1),
                    Some(_) => {
                        element += 1;
                        let mut deserializer = serde_json::Deserializer::from_reader(&mut reader);
                        let value =
                            Box::<RawValue>::deserialize(&mut deserializer).map_err(|error| syntax(element, error))?;
                        sink.value(element, &value)?;
                    }
                }
            }
        }
        Some(_) => {
            for value in serde_json::Deserializer::from_reader(&mut reader).into_iter::<Box<RawValue>>() {
                element += 1;
                sink.value(element, &value.map_err(|error| syntax(element, error))?)?;
            }
        }
    }
    finish(sink, key)
}

fn finish(sink: JsonSink<'_, '_>, key: &str) -> Result<Ingested> {
    let missing = sink.mapper.missing_required();
    if sink.raw.rows() > 0 && !missing.is_empty() {
        return Err(Error::SchemaMismatch {
            key: key.to_string(),
            message: format!(
                "required field(s) {} appear in no object of the file; add them, or add the file's spelling to the column's `aliases` in pipeline.toml (nested fields are named parent_child)",
                missing.join(", ")
            ),
        });
    }
    Ok(Ingested { columns: sink.mapper.names().to_vec(), drift: sink.mapper.drift() })
}

/// Skips whitespace and returns the next byte without consuming it.
fn skip_whitespace(reader: &mut Box<dyn BufRead + Send>) -> std::io::Result<Option<u8>> {
    loop {
        let buffer = reader.fill_buf()?;
        if buffer.is_empty() {
            return Ok(None);
        }
        match buffer.iter().position(|byte| !byte.is_ascii_whitespace()) {
            Some(position) => {
                let byte = buffer[position];
                reader.consume(position);
                return Ok(Some(byte));
            }
            None => {
                let length = buffer.len();
                reader.consume(length);
            }
        }
    }
}

/// A JSON error of one NDJSON line, its position given in the file (serde's is within the
/// line: `line 2 column 0` for a line cut short at its end).
fn in_file(error: &serde_json::Error, line: u64) -> String {
    let text = error.to_string();
    let message = text.rsplit_once(" at line ").map_or(text.as_str(), |(message, _)| message);
    let what = match error.classify() {
        serde_json::error::Category::Eof => "the line ends before its JSON does (a truncated line?)",
        _ => message,
    };
    format!("{what} at line {line} column {}", error.column().max(1))
}

#[cfg(test)]
mod tests {
    use super::flatten;

    #[test]
    fn nested_objects_flatten_and_arrays_stay_json() {
        let text = r#"{"id": 7, "address": {"city": "Leeds", "geo": {"lat": 53.8}}, "tags": [ "a", "b" ], "open": true, "note": null, "empty": {}, "amount": 12345678901234567890.125, "e": 1.50E+3}"#;
        let mut flat = flatten(text).expect("valid JSON").expect("an object");
        flat.sort();
        assert_eq!(
            flat,
            vec![
                ("address_city".to_string(), Some("Leeds".to_string())),
                ("address_geo_lat".to_string(), Some("53.8".to_string())),
                ("amount".to_string(), Some("12345678901234567890.125".to_string())),
                ("e".to_string(), Some("1.50E+3".to_string())),
                ("empty".to_string(), None),
                ("id".to_string(), Some("7".to_string())),
                ("note".to_string(), None),
                ("open".to_string(), Some("true".to_string())),
                ("tags".to_string(), Some("[\"a\",\"b\"]".to_string())),
            ]
        );
        assert_eq!(flatten("[1, 2]").expect("valid JSON"), None);
        assert_eq!(
            flatten(r#"{"s": "a \" b\\", "n": [ {"x" : "y z"} ]}"#).expect("valid").expect("object")[1].1.as_deref(),
            Some(r#"[{"x":"y z"}]"#)
        );
    }
}
