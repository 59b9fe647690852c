//! How the warehouse spells instants and row hashes where it stores them as text (SQLite,
//! and PostgreSQL text columns of tables made before): fixed-width UTC instants that order
//! like the instants they name, and 32 lowercase hex digits. Written and read without
//! chrono's format interpreter, as they pass once or twice per row of a load.

/// The fixed-width text of an instant, as the warehouse stores and compares it.
pub fn timestamp_text(instant: chrono::DateTime<chrono::Utc>) -> String {
    let mut out = String::with_capacity(27);
    push_timestamp_text(instant, &mut out);
    out
}

/// Appends [`timestamp_text`] to `out` without chrono's format interpreter (it runs once per
/// fact row in a load).
pub fn push_timestamp_text(instant: chrono::DateTime<chrono::Utc>, out: &mut String) {
    use chrono::{Datelike, Timelike};
    fn digits(out: &mut String, value: u32, width: usize) {
        let mut buffer = [b'0'; 10];
        let mut rest = value;
        for position in (0..width).rev() {
            buffer[position] = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        out.extend(buffer[..width].iter().map(|&byte| byte as char));
    }
    let year = instant.year();
    if !(0..=9999).contains(&year) {
        // Outside four digits: let chrono say it (never met in practice).
        out.push_str(&instant.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string());
        return;
    }
    digits(out, year as u32, 4);
    out.push('-');
    digits(out, instant.month(), 2);
    out.push('-');
    digits(out, instant.day(), 2);
    out.push('T');
    digits(out, instant.hour(), 2);
    out.push(':');
    digits(out, instant.minute(), 2);
    out.push(':');
    digits(out, instant.second(), 2);
    out.push('.');
    digits(out, instant.nanosecond() / 1000 % 1_000_000, 6);
    out.push('Z');
}

/// Appends [`timestamp_text`] of an instant in microseconds since the epoch; false (writing
/// nothing) when chrono cannot hold it.
pub fn push_micros_text(micros: i64, out: &mut String) -> bool {
    match chrono::DateTime::from_timestamp_micros(micros) {
        Some(instant) => {
            push_timestamp_text(instant, out);
            true
        }
        None => false,
    }
}

/// The instant of a fixed-width text written by [`timestamp_text`] (or PostgreSQL's
/// equivalent), as microseconds since the epoch.
pub fn timestamp_micros(text: &str) -> Option<i64> {
    fixed_width_micros(text).or_else(|| {
        chrono::NaiveDateTime::parse_from_str(text.trim_end_matches('Z'), "%Y-%m-%dT%H:%M:%S%.f")
            .ok()
            .map(|time| time.and_utc().timestamp_micros())
    })
}

/// [`timestamp_micros`] of exactly `YYYY-MM-DDTHH:MM:SS.ffffffZ`, without chrono's format
/// interpreter (a load reads two per new dimension version).
fn fixed_width_micros(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    if bytes.len() != 27 || bytes[26] != b'Z' {
        return None;
    }
    let number = |from: usize, to: usize| {
        bytes[from..to]
            .iter()
            .try_fold(0u32, |sum, &byte| byte.is_ascii_digit().then(|| sum * 10 + u32::from(byte - b'0')))
    };
    let separators = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':'), (19, b'.')];
    if separators.iter().any(|&(at, separator)| bytes[at] != separator) {
        return None;
    }
    let date = chrono::NaiveDate::from_ymd_opt(number(0, 4)? as i32, number(5, 7)?, number(8, 10)?)?;
    let time =
        chrono::NaiveTime::from_hms_micro_opt(number(11, 13)?, number(14, 16)?, number(17, 19)?, number(20, 26)?)?;
    Some(date.and_time(time).and_utc().timestamp_micros())
}

/// A row hash: the first 16 bytes of a SHA-256, stored in PostgreSQL as those bytes (`BYTEA`,
/// big-endian) and in SQLite as 32 lowercase hex digits ([`hash_digits`]), compared here as a
/// number.
pub type Hash = u128;

/// The 32 lowercase hex digits SQLite stores for `hash`.
#[cfg(test)]
pub fn hash_text(hash: Hash) -> String {
    let mut out = String::with_capacity(32);
    push_hash_text(hash, &mut out);
    out
}

/// Appends the 32 lowercase hex digits SQLite stores for `hash` to `out`.
pub fn push_hash_text(hash: Hash, out: &mut String) {
    let mut digits = [0u8; 32];
    hash_digits(hash, &mut digits);
    out.extend(digits.iter().map(|&digit| char::from(digit)));
}

/// The 32 lowercase hex digits SQLite stores for `hash`, into `digits`.
fn hash_digits(hash: Hash, digits: &mut [u8; 32]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (place, digit) in digits.iter_mut().rev().enumerate() {
        *digit = HEX[(hash >> (place * 4)) as usize & 15];
    }
}

/// The hash whose stored text is `text`; `None` unless it is 32 lowercase hex digits (a hash
/// Lakestar did not write then equals no row's, as its text would).
pub fn hash_value(text: &str) -> Option<Hash> {
    let digits = text.as_bytes();
    if digits.len() != 32 || !digits.iter().all(|&digit| matches!(digit, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    Hash::from_str_radix(text, 16).ok()
}

/// The hash whose stored bytes are `bytes`: the 16 bytes of a `BYTEA` hash (big-endian), or
/// the 32 hex digits of a text one ([`hash_value`]); `None` for anything else.
pub fn stored_hash(bytes: &[u8]) -> Option<Hash> {
    match <[u8; 16]>::try_from(bytes) {
        Ok(bytes) => Some(Hash::from_be_bytes(bytes)),
        Err(_) => std::str::from_utf8(bytes).ok().and_then(hash_value),
    }
}

#[cfg(test)]
mod tests {
    use super::super::scd::{INFERRED_FROM, INFERRED_FROM_MICROS};
    use super::*;

    #[test]
    fn instants_are_written_fixed_width_and_read_back() {
        let instant = chrono::DateTime::from_timestamp_micros(1_704_067_200_000_001).expect("instant");
        assert_eq!(timestamp_text(instant), "2024-01-01T00:00:00.000001Z");
        assert_eq!(timestamp_text(instant), instant.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string());
        assert_eq!(timestamp_micros("2024-01-01T00:00:00.000001Z"), Some(1_704_067_200_000_001));
        assert_eq!(timestamp_micros(INFERRED_FROM), Some(INFERRED_FROM_MICROS));
        let early = chrono::DateTime::from_timestamp_micros(INFERRED_FROM_MICROS).expect("1900");
        assert_eq!(timestamp_text(early), INFERRED_FROM);
    }
    #[test]
    fn the_fixed_width_reader_agrees_with_chrono() {
        let chrono_micros = |text: &str| {
            chrono::NaiveDateTime::parse_from_str(text.trim_end_matches('Z'), "%Y-%m-%dT%H:%M:%S%.f")
                .ok()
                .map(|time| time.and_utc().timestamp_micros())
        };
        let mut micros = -62_135_596_800_000_000i64; // 0001-01-01
        while micros < 253_402_300_799_999_999 {
            let text = timestamp_text(chrono::DateTime::from_timestamp_micros(micros).expect("instant"));
            assert_eq!(fixed_width_micros(&text), Some(micros), "{text}");
            assert_eq!(chrono_micros(&text), Some(micros), "{text}");
            micros += 7_777_777_777_777;
        }
        for text in ["2024-02-30T00:00:00.000000Z", "2024-01-01T24:00:00.000000Z", "2024-01-01 00:00:00.000000Z"] {
            assert_eq!(fixed_width_micros(text), None, "{text}");
            assert_eq!(timestamp_micros(text), chrono_micros(text), "{text}");
        }
        // Other widths go to chrono.
        assert_eq!(timestamp_micros("2024-01-01T00:00:00.5Z"), Some(1_704_067_200_500_000));
    }
    #[test]
    fn hashes_are_stored_as_32_hex_digits_and_read_back() {
        let hash: Hash = 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210;
        assert_eq!(hash_text(hash), "0123456789abcdeffedcba9876543210");
        assert_eq!(hash_value(&hash_text(hash)), Some(hash));
        assert_eq!(hash_text(1), format!("{}1", "0".repeat(31)));
        // Anything else is no hash of Lakestar's: it equals no row's.
        for text in ["", "0123456789ABCDEFFEDCBA9876543210", "+123456789abcdeffedcba9876543210", "abc", &"0".repeat(64)]
        {
            assert_eq!(hash_value(text), None, "{text}");
        }
    }
    #[test]
    fn a_stored_hash_is_its_16_bytes_or_its_32_hex_digits() {
        let hash: Hash = 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210;
        assert_eq!(stored_hash(&hash.to_be_bytes()), Some(hash));
        assert_eq!(stored_hash(hash_text(hash).as_bytes()), Some(hash));
        for bytes in [&b""[..], &[0u8; 15], &[0u8; 17], &[0xff; 32], b"0123456789ABCDEFFEDCBA9876543210"] {
            assert_eq!(stored_hash(bytes), None, "{bytes:?}");
        }
    }
}
