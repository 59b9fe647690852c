//! The PII leak guard: finds values that look like personal data in text columns. It names
//! tables, columns and kinds, never the values.

use arrow::array::{Array, StringArray};
use serde::Serialize;

use crate::validate::cast::is_email;

/// A kind of personal data the scanner recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PiiKind {
    /// An e-mail address.
    Email,
    /// A payment card number (13 to 19 digits passing the Luhn check).
    CardNumber,
    /// A phone number (10 to 15 digits, starting with `0` or `+`).
    Phone,
    /// A UK National Insurance number.
    NationalInsurance,
    /// A US Social Security number.
    Ssn,
}

impl PiiKind {
    /// The kind's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            PiiKind::Email => "email",
            PiiKind::CardNumber => "card_number",
            PiiKind::Phone => "phone",
            PiiKind::NationalInsurance => "national_insurance",
            PiiKind::Ssn => "ssn",
        }
    }
}

/// Whether digits pass the Luhn check.
pub fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(index, digit)| {
            let digit = u32::from(*digit);
            if index % 2 == 1 {
                let doubled = digit * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                digit
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// What personal data a single value looks like, if any. The value is examined whole and
/// word by word, so `contact: a@b.com` is found too.
pub fn detect(value: &str) -> Option<PiiKind> {
    let value = crate::validate::cast::trim(value);
    if value.is_empty() {
        return None;
    }
    // Most text the guard sees (ids, codes, names) has a letter and no `@`: then it holds no
    // e-mail, and no card, phone or SSN (digits and separators only), so only a National
    // Insurance number is left to look for.
    if !value.contains('@') && !value.bytes().all(|byte| byte.is_ascii_digit() || is_separator(byte) || byte == b'+') {
        return is_national_insurance(compact(value)).then_some(PiiKind::NationalInsurance);
    }
    detect_every_way(value)
}

/// The separators people write numbers with, which the checks of a whole value skip.
fn is_separator(byte: u8) -> bool {
    matches!(byte, b' ' | b'-' | b'(' | b')' | b'.')
}

/// The value without its separators; examined without copying (the guard sees every text
/// value of every curated row).
fn compact(value: &str) -> impl Iterator<Item = u8> + '_ {
    value.bytes().filter(|byte| !is_separator(*byte))
}

/// [`detect`] without its shortcut: every kind looked for, of a trimmed, non-empty value.
fn detect_every_way(value: &str) -> Option<PiiKind> {
    if let Some(kind) = detect_whole(value) {
        return Some(kind);
    }
    if value.contains(char::is_whitespace) {
        return value.split(|c: char| c.is_whitespace() || c == ',' || c == ';').find_map(detect_word);
    }
    None
}

fn detect_whole(value: &str) -> Option<PiiKind> {
    let compact = || compact(value);
    let (mut length, mut digits, mut only_digits) = (0usize, 0usize, true);
    for byte in compact() {
        length += 1;
        if byte.is_ascii_digit() {
            digits += 1;
        } else {
            only_digits = false;
        }
    }
    if length > 0 && only_digits && (13..=19).contains(&digits) {
        let mut buffer = [0u8; 19];
        for (slot, byte) in buffer.iter_mut().zip(compact()) {
            *slot = byte - b'0';
        }
        if luhn(&buffer[..digits]) {
            return Some(PiiKind::CardNumber);
        }
    }
    if is_ssn(value) {
        return Some(PiiKind::Ssn);
    }
    if length == 9 && is_national_insurance(compact()) {
        return Some(PiiKind::NationalInsurance);
    }
    let first = compact().next();
    if matches!(first, Some(b'0' | b'+')) {
        let skip = usize::from(first == Some(b'+'));
        if compact().skip(skip).all(|byte| byte.is_ascii_digit()) && (10..=15).contains(&(length - skip)) {
            return Some(PiiKind::Phone);
        }
    }
    detect_word(value)
}

fn detect_word(word: &str) -> Option<PiiKind> {
    let word = word.trim_matches(|c: char| matches!(c, '<' | '>' | '(' | ')' | '"' | '\'' | ':'));
    (word.contains('@') && is_email(word) && !is_masked_email(word)).then_some(PiiKind::Email)
}

/// Lakestar's own `email_hash` output: 32 lower-case hex digits, then the domain. A 128-bit
/// keyed hash in place of the local part identifies no one.
fn is_masked_email(word: &str) -> bool {
    word.split_once('@').is_some_and(|(local, _)| {
        local.len() == 32 && local.bytes().all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
    })
}

fn is_ssn(value: &str) -> bool {
    let bytes = value.as_bytes();
    bytes.len() == 11
        && bytes[3] == b'-'
        && bytes[6] == b'-'
        && bytes.iter().enumerate().all(|(index, byte)| index == 3 || index == 6 || byte.is_ascii_digit())
        && &value[..3] != "000"
        && &value[..3] != "666"
}

/// Nine bytes (the compact value): two prefix letters, six digits, a suffix A to D.
fn is_national_insurance(compact: impl Iterator<Item = u8>) -> bool {
    let mut bytes = [0u8; 9];
    let mut length = 0;
    for byte in compact {
        if length == bytes.len() {
            return false;
        }
        bytes[length] = byte.to_ascii_uppercase();
        length += 1;
    }
    length == 9
        && bytes[..2].iter().all(u8::is_ascii_alphabetic)
        && !matches!(bytes[0], b'D' | b'F' | b'I' | b'Q' | b'U' | b'V')
        && !matches!(bytes[1], b'D' | b'F' | b'I' | b'O' | b'Q' | b'U' | b'V')
        && bytes[2..8].iter().all(u8::is_ascii_digit)
        && matches!(bytes[8], b'A'..=b'D')
}

/// Counts values of each kind in a text column; the first kind found per value counts.
pub fn scan_column(array: &StringArray) -> Vec<(PiiKind, u64)> {
    let mut counts: std::collections::BTreeMap<PiiKind, u64> = std::collections::BTreeMap::new();
    for row in 0..array.len() {
        if array.is_valid(row)
            && let Some(kind) = detect(array.value(row))
        {
            *counts.entry(kind).or_default() += 1;
        }
    }
    counts.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_personal_data() {
        assert_eq!(detect("amelia.hughes@example.com"), Some(PiiKind::Email));
        assert_eq!(detect("write to Amelia <amelia@example.com> today"), Some(PiiKind::Email));
        assert_eq!(detect("4111 1111 1111 1111"), Some(PiiKind::CardNumber));
        assert_eq!(detect("5555555555554444"), Some(PiiKind::CardNumber));
        assert_eq!(detect("378282246310005"), Some(PiiKind::CardNumber));
        assert_eq!(detect("07700 900101"), Some(PiiKind::Phone));
        assert_eq!(detect("+44 7700 900101"), Some(PiiKind::Phone));
        assert_eq!(detect("QQ 12 34 56 C"), None, "QQ is not a valid prefix");
        assert_eq!(detect("AB 12 34 56 C"), Some(PiiKind::NationalInsurance));
        assert_eq!(detect("123-45-6789"), Some(PiiKind::Ssn));
    }

    #[test]
    fn masked_and_ordinary_values_pass() {
        for value in [
            "************1111",
            "*******0101",
            "C1001",
            "O00001",
            "2024-01-01",
            "1299.00",
            "4111111111111112",
            "LS1",
            "Leeds Briggate",
            "12345",
            "CUST-9F3A0C1B2D3E4F5A",
        ] {
            assert_eq!(detect(value), None, "{value}");
        }
    }

    proptest::proptest! {
        /// The shortcut for values with a letter and no `@` never changes an answer: values
        /// of digits, letters, separators, `@`, `+`, tabs and a non-ASCII letter, in any mix.
        #[test]
        fn the_shortcut_agrees_with_every_check(value in "[0-9A-Dabz .()+@\té-]{0,20}") {
            let trimmed = value.trim();
            let expected = if trimmed.is_empty() { None } else { detect_every_way(trimmed) };
            proptest::prop_assert_eq!(detect(&value), expected);
        }

        /// The same for the shapes the kinds have, where the shortcut must not hide one.
        #[test]
        fn the_shortcut_keeps_every_kind(value in "(AB|QQ|ZX)[ ]?[0-9]{2} ?[0-9]{2} ?[0-9]{2} ?[A-E]|\\+?[0-9 -]{9,20}|[0-9]{3}-[0-9]{2}-[0-9]{4}|[a-z.]{1,8}@[a-z]{1,5}\\.com") {
            proptest::prop_assert_eq!(detect(&value), detect_every_way(value.trim()));
        }
    }

    #[test]
    fn lakestar_email_hashes_are_not_addresses_but_short_hex_locals_are() {
        assert_eq!(detect("6b046514a8686ddb660eab211d83c6bd@example.com"), None);
        assert_eq!(detect("0a1b@example.com"), Some(PiiKind::Email));
        assert_eq!(detect("6B046514A8686DDB660EAB211D83C6BD@example.com"), Some(PiiKind::Email));
    }
}

/// Personal data found in one column of a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The column.
    pub column: String,
    /// What it looks like.
    pub kind: PiiKind,
    /// How many values.
    pub count: u64,
}

fn add(findings: &mut Vec<Finding>, column: &str, kind: PiiKind, count: u64) {
    match findings.iter_mut().find(|finding| finding.column == column && finding.kind == kind) {
        Some(finding) => finding.count += count,
        None => findings.push(Finding { column: column.to_string(), kind, count }),
    }
}

/// Scans every text column of a Parquet file.
pub fn scan_parquet(file: std::fs::File) -> Result<Vec<Finding>, String> {
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|error| format!("not a readable Parquet file: {error}"))?
        .build()
        .map_err(|error| format!("not a readable Parquet file: {error}"))?;
    let mut findings = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|error| error.to_string())?;
        for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
            let Ok(text) = arrow::compute::cast(column, &arrow::datatypes::DataType::Utf8) else { continue };
            if let Some(text) = text.as_any().downcast_ref::<StringArray>() {
                for (kind, count) in scan_column(text) {
                    add(&mut findings, field.name(), kind, count);
                }
            }
        }
    }
    Ok(findings)
}

/// Scans every column of a CSV file with a header line (its delimiter sniffed).
pub fn scan_csv(reader: impl std::io::Read) -> Result<Vec<Finding>, String> {
    let mut reader = std::io::BufReader::new(reader);
    let head = std::io::BufRead::fill_buf(&mut reader).map_err(|error| error.to_string())?.to_vec();
    let delimiter = crate::ingest::sniff_delimiter(&head, b'"');
    let mut csv = csv::ReaderBuilder::new().flexible(true).delimiter(delimiter).from_reader(reader);
    let headers: Vec<String> = csv.headers().map_err(|error| error.to_string())?.iter().map(str::to_string).collect();
    let mut findings = Vec::new();
    for record in csv.records() {
        let record = record.map_err(|error| error.to_string())?;
        for (index, value) in record.iter().enumerate() {
            if let Some(kind) = detect(value) {
                let column = headers.get(index).cloned().unwrap_or_else(|| format!("column_{}", index + 1));
                add(&mut findings, &column, kind, 1);
            }
        }
    }
    Ok(findings)
}

/// The formats [`scan_file`] reads, as file name endings (each also gzipped, `.gz`).
pub const SCANNED: [&str; 7] = [".csv", ".tsv", ".txt", ".json", ".ndjson", ".jsonl", ".parquet"];

/// Scans a file of any format ingest reads: Parquet (recognised by its first bytes), CSV, a
/// JSON array or sequence of objects, NDJSON, each possibly gzipped; nested JSON objects as
/// their `parent_child` columns. A file of another format, or one that cannot be read, is an
/// error: a check of personal data that could not read a file must not pass it.
pub fn scan_file(name: &str, mut file: std::fs::File) -> Result<Vec<Finding>, String> {
    use std::io::{Read, Seek};
    let mut magic = [0u8; 4];
    let read = file.read(&mut magic).map_err(|error| error.to_string())?;
    file.rewind().map_err(|error| error.to_string())?;
    let lowered = name.to_ascii_lowercase();
    let plain = lowered.strip_suffix(".gz").unwrap_or(&lowered);
    if read >= 2 && magic[..2] == [0x1f, 0x8b] {
        // Decompressed to a scratch file: Parquet needs to seek.
        let mut scratch = tempfile::tempfile().map_err(|error| error.to_string())?;
        std::io::copy(&mut flate2::read::MultiGzDecoder::new(file), &mut scratch)
            .map_err(|error| format!("not a readable gzip stream: {error}"))?;
        scratch.rewind().map_err(|error| error.to_string())?;
        return scan_file(plain, scratch);
    }
    if read == 4 && &magic == b"PAR1" {
        return scan_parquet(file);
    }
    if plain.ends_with(".parquet") {
        return Err("named .parquet but not a Parquet file".to_string());
    }
    if plain.ends_with(".ndjson") || plain.ends_with(".jsonl") {
        return scan_json_values(std::io::BufRead::lines(std::io::BufReader::new(file)).enumerate().filter_map(
            |(index, line)| match line {
                Ok(line) if line.trim().is_empty() => None,
                Ok(line) => Some(serde_json::from_str(&line).map_err(|error| format!("line {}: {error}", index + 1))),
                Err(error) => Some(Err(error.to_string())),
            },
        ));
    }
    if plain.ends_with(".json") {
        let mut stream =
            serde_json::Deserializer::from_reader(std::io::BufReader::new(file)).into_iter::<serde_json::Value>();
        let values = std::iter::from_fn(move || stream.next().map(|value| value.map_err(|error| error.to_string())));
        return scan_json_values(values.flat_map(|value| match value {
            Ok(serde_json::Value::Array(elements)) => elements.into_iter().map(Ok).collect::<Vec<_>>(),
            other => vec![other],
        }));
    }
    if plain.ends_with(".csv") || plain.ends_with(".tsv") || plain.ends_with(".txt") {
        return scan_csv(file);
    }
    Err(format!("not a format scan reads: use one of {}, optionally gzipped", SCANNED.join(" ")))
}

/// Scans JSON values: each object's fields (nested ones flattened), arrays of strings too.
fn scan_json_values(values: impl Iterator<Item = Result<serde_json::Value, String>>) -> Result<Vec<Finding>, String> {
    let mut findings = Vec::new();
    for value in values {
        let value = value?;
        let Ok(Some(flat)) = crate::ingest::flatten(&value.to_string()) else { continue };
        for (column, text) in flat {
            let Some(text) = text else { continue };
            let candidates: Vec<String> = match serde_json::from_str::<serde_json::Value>(&text) {
                Ok(serde_json::Value::Array(items)) => {
                    items.into_iter().filter_map(|item| item.as_str().map(str::to_string)).collect()
                }
                _ => vec![text],
            };
            for candidate in candidates {
                if let Some(kind) = detect(&candidate) {
                    add(&mut findings, &column, kind, 1);
                }
            }
        }
    }
    Ok(findings)
}
