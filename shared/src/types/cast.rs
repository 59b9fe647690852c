//! Text to typed values, one function per contract type. Pure and strict: a value that does
//! not fit exactly is an error (money is never rounded, a date never guessed).

use chrono::{DateTime, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};

/// `str::trim`, settled at once for the usual value, which starts and ends with a visible
/// ASCII character (such a byte is a whole character and not whitespace): every value of
/// every row passes here, and the general trim decodes characters from both ends.
pub fn trim(text: &str) -> &str {
    match text.as_bytes() {
        [first, .., last] if first.is_ascii_graphic() && last.is_ascii_graphic() => text,
        [only] if only.is_ascii_graphic() => text,
        _ => text.trim(),
    }
}

/// Days from 0001-01-01 (chrono's day 1) to 1970-01-01, for Arrow's `Date32`.
const UNIX_EPOCH_DAYS: i32 = 719_163;

/// A time zone for timestamps written without one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Zone {
    /// A fixed offset such as UTC or `+01:00`.
    Fixed(chrono::FixedOffset),
    /// An IANA zone such as `Europe/London`, with its daylight-saving rules.
    Named(chrono_tz::Tz),
}

impl Zone {
    /// Parses `UTC`, `Z`, `±HH:MM` or an IANA name.
    pub fn parse(text: &str) -> Option<Zone> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("utc") || text == "Z" {
            return chrono::FixedOffset::east_opt(0).map(Zone::Fixed);
        }
        if let Ok(offset) = text.parse::<chrono::FixedOffset>() {
            return Some(Zone::Fixed(offset));
        }
        text.parse::<chrono_tz::Tz>().ok().map(Zone::Named)
    }

    /// The UTC instant of a local time. In a daylight-saving gap the time does not exist
    /// (an error); in an overlap the earlier instant is taken.
    fn to_utc(self, local: NaiveDateTime) -> Result<DateTime<Utc>, String> {
        let resolved = match self {
            Zone::Fixed(offset) => offset.from_local_datetime(&local).map(|time| time.with_timezone(&Utc)),
            Zone::Named(zone) => zone.from_local_datetime(&local).map(|time| time.with_timezone(&Utc)),
        };
        match resolved {
            LocalResult::Single(time) => Ok(time),
            LocalResult::Ambiguous(earlier, _) => Ok(earlier),
            LocalResult::None => Err("nonexistent local time (daylight-saving gap)".to_string()),
        }
    }
}

/// Removes a thousands separator, checking that it groups digits by three.
fn strip_thousands(text: &str, separator: Option<char>) -> Result<std::borrow::Cow<'_, str>, String> {
    let Some(separator) = separator.filter(|separator| text.contains(*separator)) else {
        return Ok(std::borrow::Cow::Borrowed(text));
    };
    let unsigned = text.trim_start_matches(['+', '-']);
    let integer = unsigned.split('.').next().unwrap_or("");
    let groups: Vec<&str> = integer.split(separator).collect();
    let grouped = !groups[0].is_empty()
        && groups[0].len() <= 3
        && groups[1..].iter().all(|group| group.len() == 3)
        && groups.iter().all(|group| group.bytes().all(|byte| byte.is_ascii_digit()));
    if !grouped || unsigned.split('.').nth(1).is_some_and(|fraction| fraction.contains(separator)) {
        return Err(format!("misplaced thousands separator `{separator}`"));
    }
    Ok(std::borrow::Cow::Owned(text.replace(separator, "")))
}

/// A 64-bit integer; `+`, `-` and the column's thousands separator allowed.
pub fn integer(text: &str, thousands: Option<char>) -> Result<i64, String> {
    let text = strip_thousands(text, thousands)?;
    text.parse::<i64>().map_err(|_| "not an integer".to_string())
}

/// A decimal with `scale` digits after the point, as the unscaled integer (`12.30` at scale 2
/// is 1230). More digits after the point than `scale` are an error unless they are zeros;
/// more than `precision` digits in all is an overflow.
pub fn decimal(text: &str, precision: u8, scale: u8, thousands: Option<char>) -> Result<i128, String> {
    let text = strip_thousands(text, thousands)?;
    let (negative, unsigned) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, &text[..]),
    };
    let (integer, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let digits = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
    if (integer.is_empty() && fraction.is_empty()) || !digits(integer) || !digits(fraction) {
        return Err("not a decimal number".to_string());
    }
    let fraction = fraction.trim_end_matches('0');
    if fraction.len() > usize::from(scale) {
        return Err(format!("more than {scale} decimal place(s)"));
    }
    let integer = integer.trim_start_matches('0');
    if integer.len() + usize::from(scale) > usize::from(precision) {
        return Err(format!("more than {} digit(s) before the point", precision - scale));
    }
    let mut value: i128 = 0;
    for byte in integer.bytes().chain(fraction.bytes()) {
        value = value * 10 + i128::from(byte - b'0');
    }
    value *= 10i128.pow(u32::from(scale) - fraction.len() as u32);
    Ok(if negative { -value } else { value })
}

/// A finite 64-bit float (`NaN` and infinities are errors).
pub fn float(text: &str, thousands: Option<char>) -> Result<f64, String> {
    let text = strip_thousands(text, thousands)?;
    match text.parse::<f64>() {
        Ok(value) if value.is_finite() => Ok(value),
        Ok(_) => Err("not a finite number".to_string()),
        Err(_) => Err("not a number".to_string()),
    }
}

/// `true/false`, `yes/no`, `y/n`, `t/f`, `1/0`, in any case.
pub fn boolean(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "yes" | "y" | "t" | "1" => Ok(true),
        "false" | "no" | "n" | "f" | "0" => Ok(false),
        _ => Err("not a boolean (true/false, yes/no, y/n, 1/0)".to_string()),
    }
}

/// A date as days since 1970-01-01, by the column's format or ISO `YYYY-MM-DD`.
pub fn date(text: &str, format: Option<&str>) -> Result<i32, String> {
    let format = format.unwrap_or("%Y-%m-%d");
    // The common case without chrono's format interpreter: exactly `YYYY-MM-DD`.
    if format == "%Y-%m-%d"
        && let Some(date) = iso_date(text.as_bytes())
    {
        return Ok(date_days(date));
    }
    let date = NaiveDate::parse_from_str(text, format).map_err(|_| format!("not a date in the form {format}"))?;
    Ok(date_days(date))
}

/// `YYYY-MM-DD` of exactly ten bytes; `None` for anything else (left to chrono).
fn iso_date(bytes: &[u8]) -> Option<NaiveDate> {
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<u32> {
        bytes[range]
            .iter()
            .try_fold(0u32, |total, byte| byte.is_ascii_digit().then(|| total * 10 + u32::from(byte - b'0')))
    };
    NaiveDate::from_ymd_opt(number(0..4)? as i32, number(5..7)?, number(8..10)?)
}

/// Days since 1970-01-01.
pub fn date_days(date: NaiveDate) -> i32 {
    chrono::Datelike::num_days_from_ce(&date) - UNIX_EPOCH_DAYS
}

/// The date of days since 1970-01-01.
pub fn days_date(days: i32) -> Option<NaiveDate> {
    NaiveDate::from_num_days_from_ce_opt(days + UNIX_EPOCH_DAYS)
}

/// A timestamp as UTC microseconds. With a format: that format (with `%z` the offset comes
/// from the value, otherwise from `zone`). Without: RFC 3339 / ISO 8601 with or without an
/// offset (`T` or space between date and time, fractions allowed), or a bare date (midnight).
pub fn timestamp(text: &str, format: Option<&str>, zone: Zone) -> Result<i64, String> {
    let instant = match format {
        Some(format) if format.contains("%z") || format.contains("%:z") => DateTime::parse_from_str(text, format)
            .map(|time| time.with_timezone(&Utc))
            .map_err(|_| format!("not a timestamp in the form {format}"))?,
        Some(format) => {
            let local = NaiveDateTime::parse_from_str(text, format)
                .or_else(|_| NaiveDate::parse_from_str(text, format).map(|date| date.and_time(NaiveTime::MIN)))
                .map_err(|_| format!("not a timestamp in the form {format}"))?;
            zone.to_utc(local)?
        }
        None => {
            if let Ok(time) = DateTime::parse_from_rfc3339(text) {
                time.with_timezone(&Utc)
            } else if let Ok(time) = DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f%:z") {
                time.with_timezone(&Utc)
            } else {
                let local = ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"]
                    .iter()
                    .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
                    .or_else(|| {
                        NaiveDate::parse_from_str(text, "%Y-%m-%d").ok().map(|date| date.and_time(NaiveTime::MIN))
                    })
                    .ok_or_else(|| "not an ISO 8601 timestamp".to_string())?;
                zone.to_utc(local)?
            }
        }
    };
    Ok(instant.timestamp_micros())
}

/// Whether `text` looks like an e-mail address: one `@`, a plausible local part, and a
/// domain of at least two dot-separated labels.
pub fn is_email(text: &str) -> bool {
    let Some((local, domain)) = text.split_once('@') else { return false };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local.chars().all(|c| c.is_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && domain.len() <= 253
        && labels.iter().all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
        && labels.last().is_some_and(|tld| tld.chars().count() >= 2 && tld.chars().all(char::is_alphabetic));
    local_ok && domain_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The shortcut trims exactly as `str::trim` does, whatever the characters.
        #[test]
        fn trim_is_str_trim(text in "[ \t\u{a0}\u{3000}a-c0-9é\n-]{0,8}") {
            proptest::prop_assert_eq!(trim(&text), text.trim());
        }
    }

    fn utc() -> Zone {
        Zone::parse("UTC").expect("UTC")
    }

    #[test]
    fn integers() {
        assert_eq!(integer("42", None), Ok(42));
        assert_eq!(integer("-7", None), Ok(-7));
        assert_eq!(integer("+7", None), Ok(7));
        assert_eq!(integer("1,234,567", Some(',')), Ok(1_234_567));
        assert!(integer("1,23", Some(',')).is_err(), "bad grouping");
        assert!(integer("1,234", None).is_err(), "no separator declared");
        assert!(integer("4.0", None).is_err());
        assert!(integer("9223372036854775808", None).is_err(), "overflow");
        assert!(integer("abc", None).is_err());
    }

    #[test]
    fn decimals_are_exact() {
        assert_eq!(decimal("12.3", 10, 2, None), Ok(1230));
        assert_eq!(decimal("-0.05", 10, 2, None), Ok(-5));
        assert_eq!(decimal("1,299.00", 10, 2, Some(',')), Ok(129_900));
        assert_eq!(decimal("7", 10, 2, None), Ok(700));
        assert_eq!(decimal(".5", 10, 2, None), Ok(50));
        assert_eq!(decimal("1.500", 10, 2, None), Ok(150), "trailing zeros are not extra places");
        assert_eq!(decimal("1.855", 10, 2, None), Err("more than 2 decimal place(s)".to_string()));
        assert_eq!(decimal("123456789.00", 10, 2, None), Err("more than 8 digit(s) before the point".to_string()));
        assert_eq!(decimal("99999999.99", 10, 2, None), Ok(9_999_999_999));
        assert!(decimal("1e3", 10, 2, None).is_err());
        assert!(decimal("", 10, 2, None).is_err());
        assert!(decimal(".", 10, 2, None).is_err());
        assert!(decimal("NaN", 10, 2, None).is_err());
        assert!(decimal("1.2.3", 10, 2, None).is_err());
        assert_eq!(
            decimal("99999999999999999999999999999999999999", 38, 0, None),
            Ok(99_999_999_999_999_999_999_999_999_999_999_999_999)
        );
    }

    #[test]
    fn floats_must_be_finite() {
        assert_eq!(float("1.5e3", None), Ok(1500.0));
        assert!(float("NaN", None).is_err());
        assert!(float("inf", None).is_err());
        assert_eq!(float("1,000.5", Some(',')), Ok(1000.5));
    }

    #[test]
    fn booleans() {
        for text in ["true", "YES", "y", "1", "T"] {
            assert_eq!(boolean(text), Ok(true), "{text}");
        }
        for text in ["false", "No", "n", "0", "f"] {
            assert_eq!(boolean(text), Ok(false), "{text}");
        }
        assert!(boolean("maybe").is_err());
    }

    #[test]
    fn dates_with_formats_and_leap_days() {
        assert_eq!(date("1970-01-01", None), Ok(0));
        assert_eq!(date("2024-02-29", None), Ok(19_782));
        assert!(date("2023-02-29", None).is_err(), "not a leap year");
        assert!(date("1900-02-29", None).is_err(), "1900 was not a leap year");
        assert_eq!(date("2000-02-29", None), Ok(11_016), "2000 was");
        assert_eq!(date("29/02/2024", Some("%d/%m/%Y")), Ok(19_782));
        assert!(date("31/04/1988", Some("%d/%m/%Y")).is_err());
        assert!(date("01/01/2024", None).is_err());
        assert_eq!(days_date(19_782), NaiveDate::from_ymd_opt(2024, 2, 29));
    }

    #[test]
    fn timestamps_in_zones_and_across_daylight_saving() {
        let london = Zone::parse("Europe/London").expect("IANA zone");
        // Winter: London is UTC.
        assert_eq!(timestamp("2024-01-15T12:00:00", None, london), timestamp("2024-01-15T12:00:00Z", None, utc()));
        // Summer: London is UTC+1.
        assert_eq!(timestamp("2024-07-01 12:00:00", None, london), timestamp("2024-07-01T11:00:00Z", None, utc()));
        // 01:30 on 31 March 2024 does not exist in London (clocks jump from 01:00 to 02:00).
        assert!(timestamp("2024-03-31T01:30:00", None, london).expect_err("a gap").contains("gap"));
        // 01:30 on 27 October 2024 happens twice; the earlier (BST, UTC+1) is taken.
        assert_eq!(timestamp("2024-10-27T01:30:00", None, london), timestamp("2024-10-27T00:30:00Z", None, utc()));
        // An explicit offset wins over the column's zone.
        assert_eq!(
            timestamp("2024-07-01T12:00:00+02:00", None, london),
            timestamp("2024-07-01T10:00:00Z", None, utc())
        );
        assert_eq!(timestamp("2024-07-01T10:00:00.123456Z", None, utc()), Ok(1_719_828_000_123_456));
        assert_eq!(timestamp("01/07/2024 10:00", Some("%d/%m/%Y %H:%M"), utc()), Ok(1_719_828_000_000_000));
        assert_eq!(timestamp("2024-07-01", None, utc()), Ok(1_719_792_000_000_000));
        let fixed = Zone::parse("+05:30").expect("offset");
        assert_eq!(timestamp("2024-07-01T05:30:00", None, fixed), Ok(1_719_792_000_000_000));
        assert!(timestamp("yesterday", None, utc()).is_err());
        assert!(Zone::parse("Mars/Olympus").is_none());
    }

    #[test]
    fn emails() {
        for good in ["a@example.com", "first.last+tag@sub.example.co.uk", "o'brien@example.ie", "jörg@exämple.de"] {
            assert!(is_email(good), "{good}");
        }
        for bad in [
            "plain",
            "a@b",
            "a@@b.com",
            "@example.com",
            "a@example",
            "a b@example.com",
            "a..b@example.com",
            "a@-x.com",
            "jack.brown(at)example.com",
            "a@example.c0m",
        ] {
            assert!(!is_email(bad), "{bad}");
        }
    }
}
