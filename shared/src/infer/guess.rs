//! Guesses about one column from its sample values: type (checked with validate's own casts),
//! required, allowed values and case, the observed range, and personal data.

use std::collections::{BTreeMap, BTreeSet};

use crate::mask::scan::{PiiKind, detect};
use crate::types::cast::{Zone, is_email};
use crate::types::{DataType, Reading, Typed};

/// A proposed masking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PiiGuess {
    /// The inline table's fields, e.g. `method = "partial", reveal = 4`.
    pub fields: String,
    /// What it rests on.
    pub why: String,
}

/// What the draft says of one column.
#[derive(Debug, Clone)]
pub struct ColumnGuess {
    /// Its name.
    pub name: String,
    /// Other spellings of its header (those ingest would not match by the name).
    pub aliases: Vec<String>,
    /// Its type.
    pub data_type: DataType,
    /// The date or timestamp format, when not ISO.
    pub format: Option<String>,
    /// The thousands separator of numbers.
    pub thousands: Option<char>,
    /// Whether every file has it and no value is empty.
    pub required: bool,
    /// The values allowed, for low-cardinality text.
    pub allowed: Option<Vec<String>>,
    /// `lower` when the values differ only in case.
    pub case: Option<&'static str>,
    /// Whether every value is an e-mail address.
    pub email: bool,
    /// The masking proposed.
    pub pii: Option<PiiGuess>,
    /// Rows, empty values, distinct values.
    pub rows: usize,
    /// Empty values.
    pub empty: usize,
    /// Distinct values.
    pub distinct: usize,
    /// The smallest and largest value, for numbers and dates (a comment, not a check).
    pub range: Option<(String, String)>,
    /// What the type rests on, and anything to check.
    pub notes: Vec<String>,
}

const UTC: Zone = Zone::Fixed(chrono::FixedOffset::east_opt(0).expect("UTC"));

fn reading(data_type: DataType, format: Option<&str>, thousands: Option<char>) -> Reading {
    Reading { data_type, thousands, format: format.map(str::to_string), zone: UTC }
}

/// How many values a reading rejects, and the parsed ones' smallest and largest.
fn fit<'v>(values: &[&'v str], reading: &Reading) -> (usize, Option<(&'v str, &'v str)>) {
    let mut failures = 0;
    let mut low: Option<(f64, &str)> = None;
    let mut high: Option<(f64, &str)> = None;
    for value in values {
        match reading.parse(value) {
            Ok(typed) => {
                let order = match typed {
                    Typed::Integer(number) => number as f64,
                    Typed::Decimal(number) => number as f64,
                    Typed::Float(number) => number,
                    Typed::Days(days) => f64::from(days),
                    Typed::Micros(micros) => micros as f64,
                    Typed::Boolean(flag) => f64::from(u8::from(flag)),
                };
                if low.is_none_or(|(smallest, _)| order < smallest) {
                    low = Some((order, value));
                }
                if high.is_none_or(|(largest, _)| order > largest) {
                    high = Some((order, value));
                }
            }
            Err(_) => failures += 1,
        }
    }
    (failures, low.zip(high).map(|((_, low), (_, high))| (low, high)))
}

const DATE_FORMATS: [&str; 7] = ["%Y-%m-%d", "%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y", "%Y/%m/%d", "%d-%m-%Y", "%Y%m%d"];
const TIMESTAMP_FORMATS: [&str; 8] = [
    "%d/%m/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%m/%d/%Y %H:%M",
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%Y/%m/%d %H:%M:%S",
    "%Y%m%d%H%M%S",
];

/// Whether a header names a person (their name), a birth date, an address or a postcode.
fn header_kind(name: &str) -> Option<&'static str> {
    let name = name.to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|word| name.contains(word));
    if has(&[
        "first_name",
        "firstname",
        "forename",
        "given_name",
        "last_name",
        "lastname",
        "surname",
        "family_name",
        "full_name",
        "fullname",
        "middle_name",
        "customer_name",
        "contact_name",
        "employee_name",
        "person_name",
    ]) {
        Some("name")
    } else if has(&["email", "e_mail"]) {
        Some("email")
    } else if has(&["date_of_birth", "dob", "birth_date", "birthdate", "birthday"]) {
        Some("birth")
    } else if has(&["postcode", "post_code", "postal_code", "zip"]) {
        Some("postcode")
    } else if has(&["street", "address_line", "addressline", "house_number"]) {
        Some("address")
    } else {
        None
    }
}

/// A UK postcode (`LS1 4AP`, `m1 2ab`).
fn is_uk_postcode(value: &str) -> bool {
    let compact: Vec<u8> = value.bytes().filter(|byte| *byte != b' ').map(|byte| byte.to_ascii_uppercase()).collect();
    let (outward, inward) = match compact.len() {
        5..=7 => compact.split_at(compact.len() - 3),
        _ => return false,
    };
    inward[0].is_ascii_digit()
        && inward[1..].iter().all(u8::is_ascii_alphabetic)
        && outward.first().is_some_and(u8::is_ascii_alphabetic)
        && outward.iter().all(u8::is_ascii_alphanumeric)
        && outward.iter().any(u8::is_ascii_digit)
}

/// The masking the values or the header call for.
fn pii(name: &str, values: &[&str], data_type: DataType) -> Option<PiiGuess> {
    let n = values.len();
    if n > 0 {
        let mut kinds: BTreeMap<&'static str, (PiiKind, usize)> = BTreeMap::new();
        for value in values {
            if let Some(kind) = detect(value) {
                kinds.entry(kind.name()).or_insert((kind, 0)).1 += 1;
            }
        }
        if let Some((kind, count)) = kinds.values().max_by_key(|(_, count)| *count).copied()
            && count + tolerated(n) >= n
        {
            let why = format!("{count} of {n} values look like {}", kind.name());
            let fields = match kind {
                PiiKind::Email => "method = \"email_hash\"",
                PiiKind::CardNumber | PiiKind::Phone => "method = \"partial\", reveal = 4",
                PiiKind::NationalInsurance | PiiKind::Ssn => "method = \"hash\"",
            };
            return Some(PiiGuess { fields: fields.to_string(), why });
        }
    }
    match header_kind(name) {
        Some("name") => Some(PiiGuess { fields: "method = \"hash\"".into(), why: "the header names a person".into() }),
        Some("email") => Some(PiiGuess {
            fields: "method = \"email_hash\"".into(),
            why: "the header names an e-mail address".into(),
        }),
        Some("birth") if data_type == DataType::Date => Some(PiiGuess {
            fields: "method = \"generalize\", to = \"year\"".into(),
            why: "the header names a date of birth".into(),
        }),
        Some("birth") => {
            Some(PiiGuess { fields: "method = \"redact\"".into(), why: "the header names a date of birth".into() })
        }
        Some("address") => {
            Some(PiiGuess { fields: "method = \"redact\"".into(), why: "the header names an address".into() })
        }
        Some("postcode") if n > 0 && values.iter().filter(|value| is_uk_postcode(value)).count() * 5 >= n * 4 => {
            Some(PiiGuess {
                fields: "method = \"generalize\", to = \"postcode_district\"".into(),
                why: "UK postcodes".into(),
            })
        }
        Some("postcode") => {
            Some(PiiGuess { fields: "method = \"hash\"".into(), why: "the header names a postcode".into() })
        }
        _ => None,
    }
}

/// Whether numbers in the column look like codes rather than quantities (`007`, `+44…`).
fn looks_like_codes(values: &[&str]) -> bool {
    values.iter().any(|value| {
        let digits = value.trim_start_matches('-');
        value.starts_with('+') || digits.len() > 1 && digits.starts_with('0') && !digits.starts_with("0.")
    })
}

/// A type guess: the type, its date format, its thousands separator, the observed range.
type Typing = (DataType, Option<String>, Option<char>, Option<(String, String)>);

/// A date format and how it fits: values it rejects, the smallest and largest it reads.
type DateFit<'v> = (&'static str, usize, Option<(&'v str, &'v str)>);

/// How many of `n` values may be odd ones out of a guess (and be quarantined): none of fewer
/// than ten, an eighth of a small sample (at most five), 1 % of a large one.
pub(super) fn tolerated(n: usize) -> usize {
    if n < 10 { 0 } else { (n / 100).max((n / 8).min(5)) }
}

/// The type and format of the values: the first candidate validate's casts read all of with
/// at most [`tolerated`] exceptions.
fn data_type(values: &[&str], notes: &mut Vec<String>) -> Typing {
    let n = values.len();
    let tolerated = tolerated(n);
    let mut accept = |what: &str, failures: usize| {
        if failures > tolerated {
            return false;
        }
        if failures == 0 {
            notes.push(format!("{what} in {n} of {n} values"));
        } else {
            notes.push(format!("{what} in {} of {n} values; the other {failures} would be quarantined", n - failures));
        }
        true
    };
    let range = |range: Option<(&str, &str)>| range.map(|(low, high)| (low.to_string(), high.to_string()));
    if n == 0 {
        notes.push("no values in the sample".to_string());
        return (DataType::String, None, None, None);
    }
    let words = ["true", "false", "yes", "no", "y", "n", "t", "f"];
    let not_words = values.iter().filter(|value| !words.contains(&value.to_ascii_lowercase().as_str())).count();
    if accept("boolean", not_words) {
        return (DataType::Boolean, None, None, None);
    }
    let codes = looks_like_codes(values);
    if !codes {
        for thousands in [None, Some(',')] {
            let (failures, observed) = fit(values, &reading(DataType::Integer, None, thousands));
            if accept("integer", failures) {
                return (DataType::Integer, None, thousands, range(observed));
            }
        }
        let scale = values
            .iter()
            .filter_map(|value| value.split_once('.').map(|(_, fraction)| fraction.len()))
            .filter(|digits| *digits <= 18)
            .max()
            .unwrap_or(0);
        let exponent = values.iter().any(|value| value.contains(['e', 'E']));
        if scale > 0 && !exponent {
            let whole = values
                .iter()
                .map(|value| {
                    value.split('.').next().unwrap_or("").trim_start_matches(['-', '+']).replace(',', "").len()
                })
                .max()
                .unwrap_or(1);
            let precision = (whole + scale).clamp(18, 38) as u8;
            let decimal = DataType::Decimal { precision, scale: scale as u8 };
            for thousands in [None, Some(',')] {
                let (failures, observed) = fit(values, &reading(decimal, None, thousands));
                if accept(&format!("decimal({precision},{scale})"), failures) {
                    return (decimal, None, thousands, range(observed));
                }
            }
        }
        let (failures, observed) = fit(values, &reading(DataType::Float, None, None));
        if accept("float", failures) {
            return (DataType::Float, None, None, range(observed));
        }
    }
    let dates: Vec<DateFit> = DATE_FORMATS
        .iter()
        .map(|format| {
            let (failures, observed) = fit(values, &reading(DataType::Date, Some(format), None));
            (*format, failures, observed)
        })
        .collect();
    if let Some(&(format, failures, observed)) =
        dates.iter().filter(|(_, failures, _)| *failures <= tolerated).min_by_key(|(_, failures, _)| *failures)
    {
        let ambiguous =
            format == "%d/%m/%Y" && dates.iter().any(|(other, others, _)| *other == "%m/%d/%Y" && *others <= failures);
        accept(&format!("date {format}"), failures);
        if ambiguous {
            notes.push("CHECK: every value reads both day-first and month-first; day-first chosen".to_string());
        }
        let format = (format != "%Y-%m-%d").then(|| format.to_string());
        return (DataType::Date, format, None, range(observed));
    }
    let (failures, observed) = fit(values, &reading(DataType::Timestamp, None, None));
    if failures <= tolerated {
        accept("ISO 8601 timestamp", failures);
        let offsets = values.iter().filter(|value| has_offset(value)).count();
        if offsets == 0 {
            notes.push("no offset in the values: read as UTC; set `timezone` if they are local times".to_string());
        } else if offsets < n {
            notes.push(format!("{offsets} of {n} values carry an offset; the others are read in `timezone` (UTC)"));
        }
        return (DataType::Timestamp, None, None, range(observed));
    }
    for format in TIMESTAMP_FORMATS {
        let (failures, observed) = fit(values, &reading(DataType::Timestamp, Some(format), None));
        if accept(&format!("timestamp {format}"), failures) {
            notes.push("no offset in the values: read as UTC; set `timezone` if they are local times".to_string());
            return (DataType::Timestamp, Some(format.to_string()), None, range(observed));
        }
    }
    if codes {
        notes.push("text: numbers with leading zeros or signs are codes, not quantities".to_string());
    } else {
        notes.push("text".to_string());
    }
    if let Some((what, fitting)) = nearest_type(values)
        && fitting * 2 >= n
    {
        notes.push(format!("CHECK: {what} in {fitting} of {n} values; text chosen, as too many others are not"));
    }
    (DataType::String, None, None, None)
}

/// The type that reads most of the values, and how many.
fn nearest_type(values: &[&str]) -> Option<(String, usize)> {
    let mut candidates: Vec<(String, Reading)> = vec![
        ("integer".to_string(), reading(DataType::Integer, None, Some(','))),
        ("decimal(38,10)".to_string(), reading(DataType::Decimal { precision: 38, scale: 10 }, None, Some(','))),
        ("an ISO 8601 timestamp".to_string(), reading(DataType::Timestamp, None, None)),
    ];
    for format in DATE_FORMATS {
        candidates.push((format!("date {format}"), reading(DataType::Date, Some(format), None)));
    }
    candidates
        .into_iter()
        .map(|(what, reading)| (what, values.len() - fit(values, &reading).0))
        .max_by_key(|(_, fitting)| *fitting)
        .filter(|(_, fitting)| *fitting > 0)
}

/// Whether a timestamp's text ends with a zone (`Z`, `+01:00`, `-0500`).
fn has_offset(value: &str) -> bool {
    let bytes = value.as_bytes();
    if value.ends_with(['Z', 'z']) {
        return true;
    }
    let tail = |length: usize| bytes.len() > length + 10 && matches!(bytes[bytes.len() - length], b'+' | b'-');
    tail(6) || tail(5) || tail(3)
}

/// Everything the draft says of one column.
pub(super) fn column(
    name: String,
    spellings: Vec<String>,
    values: &[Option<String>],
    in_every_file: bool,
) -> ColumnGuess {
    let present: Vec<&str> = values.iter().flatten().map(String::as_str).collect();
    let rows = values.len();
    let empty = rows - present.len();
    let distinct = present.iter().collect::<BTreeSet<_>>().len();
    let mut notes = Vec::new();
    let (mut data_type, mut format, mut thousands, mut range) = data_type(&present, &mut notes);
    let pii = pii(&name, &present, data_type);
    // Card numbers, phone numbers and the like stay text, to be masked as text.
    if pii.as_ref().is_some_and(|pii| {
        pii.fields.contains("partial") || pii.fields.contains("email") || pii.fields.contains("\"hash\"")
    }) && data_type != DataType::String
        && data_type != DataType::Date
    {
        notes.clear();
        notes.push("text, to be masked".to_string());
        (data_type, format, thousands, range) = (DataType::String, None, None, None);
    }
    let not_email = present.iter().filter(|value| !is_email(value)).count();
    let email = data_type == DataType::String && !present.is_empty() && not_email <= tolerated(present.len());
    if email && not_email > 0 {
        notes.push(format!("{not_email} value(s) not an e-mail address would be quarantined"));
    }
    let (allowed, case) = if data_type == DataType::String && pii.is_none() && !email && !super::id_like(&name) {
        allowed_values(&present, distinct)
    } else {
        (None, None)
    };
    let key = crate::contract::normalize_header(&name);
    let aliases = spellings.into_iter().filter(|spelling| crate::contract::normalize_header(spelling) != key).collect();
    ColumnGuess {
        name,
        aliases,
        data_type,
        format,
        thousands,
        required: in_every_file && empty == 0 && rows > 0,
        allowed,
        case,
        email,
        pii,
        rows,
        empty,
        distinct,
        range,
        notes,
    }
}

/// The allowed values of low-cardinality text (at most 12 values, each seen on average at
/// least twice), and `lower` when the values differ only in case.
fn allowed_values(values: &[&str], distinct: usize) -> (Option<Vec<String>>, Option<&'static str>) {
    let lowered: BTreeSet<String> = values.iter().map(|value| value.to_lowercase()).collect();
    let folded = lowered.len() < distinct;
    let count = lowered.len();
    if count == 0 || count > 12 || values.len() < 2 * count || values.len() < 6 {
        return (None, None);
    }
    if folded {
        (Some(lowered.into_iter().collect()), Some("lower"))
    } else {
        let exact: BTreeSet<&str> = values.iter().copied().collect();
        (Some(exact.into_iter().map(str::to_string).collect()), None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guess(values: &[&str]) -> ColumnGuess {
        let values: Vec<Option<String>> =
            values.iter().map(|value| (!value.is_empty()).then(|| value.to_string())).collect();
        column("c".to_string(), vec!["c".to_string()], &values, true)
    }

    #[test]
    fn types_are_the_first_that_validate_reads_every_value_with() {
        assert_eq!(guess(&["1", "-20", "300"]).data_type, DataType::Integer);
        let thousands = guess(&["1,200", "35", "2,000,000"]);
        assert_eq!((thousands.data_type, thousands.thousands), (DataType::Integer, Some(',')));
        assert_eq!(guess(&["1.85", "3.2", "12"]).data_type, DataType::Decimal { precision: 18, scale: 2 });
        assert_eq!(guess(&["1e5", "2.5"]).data_type, DataType::Float);
        assert_eq!(guess(&["yes", "No", "y"]).data_type, DataType::Boolean);
        assert_eq!(guess(&["007", "12"]).data_type, DataType::String, "codes keep their zeros");
        let iso = guess(&["2024-01-31", "2023-12-01"]);
        assert_eq!((iso.data_type, iso.format), (DataType::Date, None));
        let dotted = guess(&["31.01.2024", "01.12.2023"]);
        assert_eq!(dotted.format.as_deref(), Some("%d.%m.%Y"));
        let us = guess(&["01/31/2024", "12/01/2023"]);
        assert_eq!(us.format.as_deref(), Some("%m/%d/%Y"), "a 31 settles the order");
        let ambiguous = guess(&["01/02/2024", "03/04/2023"]);
        assert_eq!(ambiguous.format.as_deref(), Some("%d/%m/%Y"));
        assert!(ambiguous.notes.iter().any(|note| note.starts_with("CHECK")), "{:?}", ambiguous.notes);
        let stamped = guess(&["2024-01-01T08:00:00+01:00", "2024-01-02T09:30:00Z"]);
        assert_eq!((stamped.data_type, stamped.format), (DataType::Timestamp, None));
        let local = guess(&["31/01/2024 08:00", "01/02/2024 17:45"]);
        assert_eq!((local.data_type, local.format.as_deref()), (DataType::Timestamp, Some("%d/%m/%Y %H:%M")));
        assert!(!guess(&["1", ""]).required);
    }

    #[test]
    fn personal_data_is_proposed_a_masking_and_stays_text() {
        let card = guess(&["4111 1111 1111 1111", "5500 0000 0000 0004"]);
        assert_eq!(card.data_type, DataType::String);
        assert!(card.pii.is_some_and(|pii| pii.fields.contains("partial")));
        let mail = guess(&["a@example.com", "b.c@example.co.uk"]);
        assert!(mail.email && mail.pii.is_some_and(|pii| pii.fields.contains("email_hash")));
        let values: Vec<Option<String>> = ["LS1 4AP", "m1 2ab"].iter().map(|value| Some(value.to_string())).collect();
        let postcode = column("post_code".into(), vec!["Post Code".into()], &values, true);
        assert!(postcode.pii.is_some_and(|pii| pii.fields.contains("postcode_district")));
    }

    #[test]
    fn low_cardinality_text_is_allowed_values_and_case_differences_are_folded() {
        let channel = guess(&["store", "web", "store", "Web", "store", "web"]);
        assert_eq!(channel.allowed, Some(vec!["store".to_string(), "web".to_string()]));
        assert_eq!(channel.case, Some("lower"));
        assert_eq!(guess(&["a", "b", "c", "d", "e", "f"]).allowed, None, "all distinct: not a category");
    }
}
