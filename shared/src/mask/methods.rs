//! The masking methods, as pure functions of a value and the key, and their application to
//! whole Arrow columns.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Int64Builder, StringArray, StringBuilder};
use arrow::compute::cast;
use arrow::datatypes::DataType as ArrowType;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::MaskingKey;
use crate::contract::{PiiConfig, PiiMethod};
use crate::validate::cast::days_date;
use crate::{Error, Result};

/// Keyed HMAC-SHA-256 of `message`, domain-separated by `purpose` so that a token and a
/// hash of the same value do not match.
pub fn hmac(key: &MaskingKey, purpose: &str, message: &str) -> [u8; 32] {
    Keyed::new(key, purpose).digest(message)
}

/// HMAC-SHA-256 under one key and purpose, with the key's pads and the purpose hashed once:
/// each value then costs only its own bytes and the finalisation, not the key again.
pub struct Keyed {
    mac: Hmac<Sha256>,
}

impl Keyed {
    /// The state after the key and `purpose` (and its separator).
    pub fn new(key: &MaskingKey, purpose: &str) -> Keyed {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key.secret()).expect("HMAC takes keys of any length");
        mac.update(purpose.as_bytes());
        mac.update(&[0]);
        Keyed { mac }
    }

    /// The keyed hash of `message`.
    pub fn digest(&self, message: &str) -> [u8; 32] {
        let mut mac = self.mac.clone();
        mac.update(message.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

/// The purpose a keyed method's hashes are separated by (the other methods use no key).
fn purpose(method: PiiMethod) -> &'static str {
    match method {
        PiiMethod::EmailHash => "email",
        PiiMethod::Token => "token",
        _ => "hash",
    }
}

/// Appends `bytes` as hex digits.
fn push_hex(out: &mut String, bytes: &[u8], upper: bool) {
    let digits: &[u8; 16] = if upper { b"0123456789ABCDEF" } else { b"0123456789abcdef" };
    for byte in bytes {
        out.push(char::from(digits[usize::from(byte >> 4)]));
        out.push(char::from(digits[usize::from(byte & 0x0f)]));
    }
}

/// `hash`: the keyed hash of the value, hex (64 characters) or base64url (43).
pub fn hash(key: &MaskingKey, value: &str, base64url: bool) -> String {
    let mut out = String::new();
    write_hash(&Keyed::new(key, purpose(PiiMethod::Hash)), value, base64url, &mut out);
    out
}

fn write_hash(keyed: &Keyed, value: &str, base64url: bool, out: &mut String) {
    let digest = keyed.digest(value);
    if base64url {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode_string(digest, out);
    } else {
        push_hex(out, &digest, false);
    }
}

/// `email_hash`: the keyed hash of the whole (lower-cased) address in place of the local
/// part, the domain kept: `3f9a…@example.com`. Not an address: the domain alone is kept.
pub fn email_hash(key: &MaskingKey, value: &str) -> String {
    let mut out = String::new();
    write_email_hash(&Keyed::new(key, purpose(PiiMethod::EmailHash)), value, &mut out);
    out
}

fn write_email_hash(keyed: &Keyed, value: &str, out: &mut String) {
    let lower = value.trim().to_lowercase();
    push_hex(out, &keyed.digest(&lower)[..16], false);
    if let Some((_, domain)) = lower.rsplit_once('@')
        && !domain.is_empty()
    {
        out.push('@');
        out.push_str(domain);
    }
}

/// `partial`: every character but the last `reveal` (spaces and dashes removed first)
/// becomes `*`: `4111 1111 1111 1111` → `************1111`. A value no longer than `reveal`
/// is starred whole.
pub fn partial(value: &str, reveal: usize) -> String {
    let mut out = String::with_capacity(value.len());
    write_partial(value, reveal, &mut out);
    out
}

/// Appends [`partial`] of `value` without collecting its characters first (every card
/// number of a run passes here).
fn write_partial(value: &str, reveal: usize, out: &mut String) {
    let kept = |c: &char| !c.is_whitespace() && *c != '-';
    let count = value.chars().filter(kept).count();
    let hidden = if count <= reveal { count } else { count - reveal };
    for (index, c) in value.chars().filter(kept).enumerate() {
        out.push(if index < hidden { '*' } else { c });
    }
}

/// `token`: the prefix and 16 upper-case hex digits of the keyed hash: `CUST-9F3A…`.
pub fn token(key: &MaskingKey, value: &str, prefix: &str) -> String {
    let mut out = String::new();
    write_token(&Keyed::new(key, purpose(PiiMethod::Token)), value, prefix, &mut out);
    out
}

fn write_token(keyed: &Keyed, value: &str, prefix: &str, out: &mut String) {
    out.push_str(prefix);
    push_hex(out, &keyed.digest(value)[..8], true);
}

/// `generalize` to `postcode_district`: the outward code of a UK postcode
/// (`LS1 4AP` → `LS1`, `sw1a1aa` → `SW1A`).
pub fn postcode_district(value: &str) -> String {
    let upper = value.trim().to_uppercase();
    if let Some((outward, _)) = upper.split_once(char::is_whitespace) {
        return outward.to_string();
    }
    let compact: String = upper.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    if compact.len() > 3 { compact[..compact.len() - 3].to_string() } else { compact }
}

/// `generalize` to `age_band`: the ten-year band of an age at `on` (`30-39`, `90+`).
pub fn age_band(born: chrono::NaiveDate, on: chrono::NaiveDate) -> String {
    let age = on.years_since(born).unwrap_or(0);
    if age >= 90 {
        "90+".to_string()
    } else {
        let low = age / 10 * 10;
        format!("{low}-{}", low + 9)
    }
}

pub use crate::lake::schema::masked_type;

/// Masks a whole column. `on` is the run's date, for age bands.
pub fn mask_array(key: &MaskingKey, pii: &PiiConfig, array: &ArrayRef, on: chrono::NaiveDate) -> Result<ArrayRef> {
    let rows = array.len();
    if pii.method == PiiMethod::Redact {
        return Ok(arrow::array::new_null_array(array.data_type(), rows));
    }
    if pii.method == PiiMethod::Generalize && matches!(pii.to.as_deref(), Some("month" | "year" | "age_band")) {
        return generalize_date(pii.to.as_deref().unwrap_or_default(), array, on);
    }
    let text = cast(array, &ArrowType::Utf8).map_err(|error| Error::arrow("masking a column", error))?;
    let text = text
        .as_any()
        .downcast_ref::<StringArray>()
        .ok_or_else(|| Error::Internal("a masked column did not cast to text".to_string()))?;
    let base64url = pii.encoding.as_deref() == Some("base64url");
    let reveal = pii.reveal.unwrap_or(4);
    let prefix = pii.prefix.as_deref().unwrap_or("");
    let keyed = Keyed::new(key, purpose(pii.method));
    let mut builder = StringBuilder::with_capacity(rows, rows * 32);
    let mut masked = String::with_capacity(80);
    for row in 0..rows {
        if text.is_null(row) {
            builder.append_null();
            continue;
        }
        let value = text.value(row);
        masked.clear();
        match pii.method {
            PiiMethod::Hash => write_hash(&keyed, value, base64url, &mut masked),
            PiiMethod::EmailHash => write_email_hash(&keyed, value, &mut masked),
            PiiMethod::Partial => write_partial(value, reveal, &mut masked),
            PiiMethod::Token => write_token(&keyed, value, prefix, &mut masked),
            PiiMethod::Generalize => masked.push_str(&postcode_district(value)),
            PiiMethod::Redact => {}
        }
        builder.append_value(&masked);
    }
    Ok(Arc::new(builder.finish()))
}

/// Dates (or timestamps) to month (`YYYY-MM` text), year (integer) or age band (text).
fn generalize_date(to: &str, array: &ArrayRef, on: chrono::NaiveDate) -> Result<ArrayRef> {
    let days = cast(array, &ArrowType::Date32).map_err(|error| Error::arrow("generalising a date column", error))?;
    let days = days
        .as_any()
        .downcast_ref::<arrow::array::Date32Array>()
        .ok_or_else(|| Error::Internal("a generalised column did not cast to dates".to_string()))?;
    let dates = (0..days.len()).map(|row| if days.is_null(row) { None } else { days_date(days.value(row)) });
    if to == "year" {
        let mut builder = Int64Builder::with_capacity(days.len());
        for date in dates {
            builder.append_option(date.map(|date| i64::from(chrono::Datelike::year(&date))));
        }
        return Ok(Arc::new(builder.finish()));
    }
    let mut builder = StringBuilder::with_capacity(days.len(), days.len() * 8);
    for date in dates {
        builder.append_option(date.map(|date| match to {
            "month" => date.format("%Y-%m").to_string(),
            _ => age_band(date, on),
        }));
    }
    Ok(Arc::new(builder.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        let mut out = String::with_capacity(bytes.len() * 2);
        push_hex(&mut out, bytes, false);
        out
    }

    fn key(secret: &str) -> MaskingKey {
        MaskingKey::new(secret.as_bytes().to_vec(), "v1").expect("key")
    }

    #[test]
    fn keyed_hashes_are_deterministic_keyed_and_not_plain_sha256() {
        let a = key("0123456789abcdef-first");
        let b = key("0123456789abcdef-second");
        let value = "amelia.hughes@example.com";
        assert_eq!(hash(&a, value, false), hash(&a, value, false));
        assert_ne!(hash(&a, value, false), hash(&b, value, false), "another key, another hash");
        assert_eq!(hash(&a, value, false).len(), 64);
        assert_eq!(hash(&a, value, true).len(), 43);
        assert!(!hash(&a, value, true).contains(['+', '/', '=']));
        // An unkeyed SHA-256 of the value is what a dictionary attack reverses: not ours.
        use sha2::Digest;
        let plain = hex(&sha2::Sha256::digest(value.as_bytes()));
        assert_ne!(hash(&a, value, false), plain);
        assert_ne!(hash(&a, value, false), hex(&hmac(&a, "token", value)), "purposes are separated");
    }

    #[test]
    fn masked_values_are_those_of_an_independent_hmac() {
        // Python's hmac.new(key, purpose + b"\0" + value, sha256): masked values must never
        // change between versions, or a run's tokens would stop joining an earlier run's.
        let k = key("0123456789abcdef-first");
        assert_eq!(hash(&k, "C1001", false), "8e959843cda87ae4a5a56942deb3d7f232ecaf2e461fe7f37ffa998fe778971e");
        assert_eq!(hash(&k, "C1001", true), "jpWYQ82oeuSlpWlC3rPX8jLsry5GH-fzf_qZj-d4lx4");
        assert_eq!(email_hash(&k, " Amelia.Hughes@EXAMPLE.com"), "709e3d817a1fb27e2728180403daa419@example.com");
        assert_eq!(token(&k, "C1001", "CUST-"), "CUST-E7020EA9958B995C");
        let pii =
            |method| PiiConfig { method, encoding: None, reveal: None, prefix: Some("CUST-".to_string()), to: None };
        let values: ArrayRef = Arc::new(StringArray::from(vec![Some("C1001"), None, Some("C1001")]));
        let tokens = mask_array(&k, &pii(PiiMethod::Token), &values, chrono::NaiveDate::MIN).expect("masked");
        let tokens = tokens.as_any().downcast_ref::<StringArray>().expect("text");
        assert_eq!(
            tokens.iter().collect::<Vec<_>>(),
            [Some("CUST-E7020EA9958B995C"), None, Some("CUST-E7020EA9958B995C")]
        );
        let hashes = mask_array(&k, &pii(PiiMethod::Hash), &values, chrono::NaiveDate::MIN).expect("masked");
        let hashes = hashes.as_any().downcast_ref::<StringArray>().expect("text");
        assert_eq!(hashes.value(2), hash(&k, "C1001", false));
    }

    #[test]
    fn email_hash_keeps_the_domain_only() {
        let k = key("0123456789abcdef-first");
        let masked = email_hash(&k, "Amelia.Hughes@Example.com");
        assert!(masked.ends_with("@example.com"), "{masked}");
        assert!(!masked.contains("amelia"));
        assert_eq!(masked, email_hash(&k, "amelia.hughes@example.com"), "case does not matter");
        assert_eq!(masked.split('@').next().map(str::len), Some(32));
    }

    #[test]
    fn partial_reveals_the_last_characters() {
        assert_eq!(partial("4111 1111 1111 1234", 4), "************1234");
        assert_eq!(partial("07700 900101", 4), "*******0101");
        assert_eq!(partial("123", 4), "***");
        assert_eq!(partial("", 4), "");
        assert_eq!(partial("12-34", 4), "****", "no longer than `reveal`: starred whole");
        assert_eq!(partial("12345", 4), "*2345");
        assert_eq!(partial("€1 234 5678", 4), "*****5678", "characters, not bytes");
    }

    #[test]
    fn tokens_are_prefixed_and_deterministic() {
        let k = key("0123456789abcdef-first");
        let t = token(&k, "C1001", "CUST-");
        assert!(t.starts_with("CUST-") && t.len() == 21, "{t}");
        assert_eq!(t, token(&k, "C1001", "CUST-"));
        assert_ne!(t, token(&k, "C1002", "CUST-"));
    }

    #[test]
    fn generalisations() {
        assert_eq!(postcode_district("LS1 4AP"), "LS1");
        assert_eq!(postcode_district("sw1a1aa"), "SW1A");
        assert_eq!(postcode_district("M1 2AB"), "M1");
        let on = chrono::NaiveDate::from_ymd_opt(2024, 1, 1).expect("date");
        let born = |y, m, d| chrono::NaiveDate::from_ymd_opt(y, m, d).expect("date");
        assert_eq!(age_band(born(1985, 3, 14), on), "30-39");
        assert_eq!(age_band(born(1984, 1, 1), on), "40-49", "the birthday itself counts");
        assert_eq!(age_band(born(1930, 6, 1), on), "90+");
        let dates: ArrayRef = Arc::new(arrow::array::Date32Array::from(vec![Some(5_551), None]));
        let pii = |to: &str| PiiConfig {
            method: PiiMethod::Generalize,
            encoding: None,
            reveal: None,
            prefix: None,
            to: Some(to.to_string()),
        };
        let months = mask_array(&key("0123456789abcdef-x"), &pii("month"), &dates, on).expect("masked");
        let months = months.as_any().downcast_ref::<StringArray>().expect("text");
        assert_eq!(months.value(0), "1985-03");
        assert!(months.is_null(1));
        let years = mask_array(&key("0123456789abcdef-x"), &pii("year"), &dates, on).expect("masked");
        assert_eq!(years.data_type(), &ArrowType::Int64);
    }
}
