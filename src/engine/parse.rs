//! The values of file fields as every reader of files takes them (detection, the record
//! converter, the Arrow builder): one parser per type, so that what detection calls a type
//! always reads as that type.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime};

const TIMESTAMP_FORMATS: &[&str] = &[
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M",
];
const ZONED_FORMATS: &[&str] = &[
    "%Y-%m-%d %H:%M:%S%.f%:z",
    "%Y-%m-%dT%H:%M:%S%.f%:z",
    "%Y-%m-%d %H:%M:%S%.f%z",
    "%Y-%m-%dT%H:%M:%S%.f%z",
    "%Y-%m-%d %H:%M:%S%.f%#z",
    "%Y-%m-%dT%H:%M:%S%.f%#z",
];

/// A `date`: `YYYY-MM-DD`.
pub fn parse_date(text: &str) -> Option<NaiveDate> {
    let b = text.as_bytes();
    if b.len() == 10 && b[4] == b'-' && b[7] == b'-' {
        if let (Some(y), Some(m), Some(d)) = (digits(b, 4), digits(&b[5..], 2), digits(&b[8..], 2))
        {
            return NaiveDate::from_ymd_opt(y as i32, m, d);
        }
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

/// A `boolean`: `true` or `false`, or PostgreSQL's `t` and `f`, in any case.
pub fn parse_bool(text: &str) -> Option<bool> {
    match text.len() {
        1 | 4 | 5 => match text.to_ascii_lowercase().as_str() {
            "true" | "t" => Some(true),
            "false" | "f" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// `bytes`: base64 (as Sluice writes them), or PostgreSQL's hex form `\x00ff…`.
pub fn parse_bytes(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let Some(hex) = text.strip_prefix("\\x") else {
        return base64::engine::general_purpose::STANDARD.decode(text).ok();
    };
    if hex.len() % 2 != 0 {
        return None;
    }
    hex.as_bytes()
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok())
        .collect()
}

/// A `time` of day: `HH:MM`, `HH:MM:SS` or `HH:MM:SS.ffffff` (up to microseconds; more digits
/// only as zeros), `24:00:00` included as the end of a day; microseconds since midnight.
pub fn parse_time(text: &str) -> Option<i64> {
    let (clock, fraction) = text.split_once('.').unwrap_or((text, ""));
    let b = clock.as_bytes();
    let (h, m, s) = match b.len() {
        5 if b[2] == b':' && fraction.is_empty() && !text.ends_with('.') => {
            (digits(b, 2)?, digits(&b[3..], 2)?, 0)
        }
        8 if b[2] == b':' && b[5] == b':' => {
            (digits(b, 2)?, digits(&b[3..], 2)?, digits(&b[6..], 2)?)
        }
        _ => return None,
    };
    if m > 59 || s > 59 || text.ends_with('.') {
        return None;
    }
    // Up to microseconds; more digits only as zeros.
    let (kept, rest) = fraction.split_at(fraction.len().min(6));
    if rest.bytes().any(|d| d != b'0') {
        return None;
    }
    let micros = i64::from(digits(kept.as_bytes(), kept.len())?) * 10i64.pow(6 - kept.len() as u32);
    let total = ((i64::from(h) * 60 + i64::from(m)) * 60 + i64::from(s)) * 1_000_000 + micros;
    (total <= 86_400_000_000).then_some(total)
}

/// A `float`: a decimal or exponent number, or the words `NaN`, `Infinity` and `-Infinity`
/// (as Sluice and PostgreSQL write the values that are not finite).
pub fn parse_float(text: &str) -> Option<f64> {
    match text {
        "NaN" => Some(f64::NAN),
        "Infinity" | "+Infinity" => Some(f64::INFINITY),
        "-Infinity" => Some(f64::NEG_INFINITY),
        _ => text.parse::<f64>().ok().filter(|v| v.is_finite()),
    }
}

/// `n` ASCII digits at the start of `b`, as a number.
fn digits(b: &[u8], n: usize) -> Option<u32> {
    let part = b.get(..n)?;
    part.iter().try_fold(0u32, |acc, &d| {
        d.is_ascii_digit().then(|| acc * 10 + u32::from(d - b'0'))
    })
}

/// The common spellings of dates and timestamps, read without a format parser (millions of
/// values a file): `YYYY-MM-DD`, then ` ` or `T`, `HH:MM`, `:SS`, `.` and 1 to 6 digits, then
/// (`zoned`) `Z`, `±HH`, `±HHMM` or `±HH:MM`. The date, the time of day (with its microseconds)
/// and the zone's offset in seconds; `None` for anything else, which the format parsers then
/// read (they accept everything this does, and more).
fn fast_datetime(text: &str, zoned: bool) -> Option<(NaiveDateTime, Option<i32>)> {
    let b = text.as_bytes();
    if b.len() < 16
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b' ' | b'T')
        || b[13] != b':'
    {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(
        digits(b, 4)? as i32,
        digits(&b[5..], 2)?,
        digits(&b[8..], 2)?,
    )?;
    let (hour, minute) = (digits(&b[11..], 2)?, digits(&b[14..], 2)?);
    let mut at = 16;
    let (mut second, mut micros) = (0, 0);
    if b.get(at) == Some(&b':') {
        second = digits(&b[at + 1..], 2)?;
        at += 3;
        if b.get(at) == Some(&b'.') {
            let run = b[at + 1..]
                .iter()
                .take_while(|d| d.is_ascii_digit())
                .count();
            if !(1..=6).contains(&run) {
                return None;
            }
            micros = digits(&b[at + 1..], run)? * 10u32.pow(6 - run as u32);
            at += 1 + run;
        }
    } else if zoned {
        return None;
    }
    let time = NaiveTime::from_hms_micro_opt(hour, minute, second, micros)?;
    let rest = &b[at..];
    let offset = match rest {
        [] if !zoned => None,
        [b'Z'] if zoned => Some(0),
        [sign @ (b'+' | b'-'), zone @ ..] if zoned => {
            let (h, m) = match zone.len() {
                2 => (digits(zone, 2)?, 0),
                4 => (digits(zone, 2)?, digits(&zone[2..], 2)?),
                5 if zone[2] == b':' => (digits(zone, 2)?, digits(&zone[3..], 2)?),
                _ => return None,
            };
            if h > 23 || m > 59 {
                return None;
            }
            let seconds = (h * 3600 + m * 60) as i32;
            Some(if *sign == b'-' { -seconds } else { seconds })
        }
        _ => return None,
    };
    Some((date.and_time(time), offset))
}

/// A `timestamp` (no zone): date and time, `T` or a space between, seconds optional.
pub fn parse_timestamp(text: &str) -> Option<NaiveDateTime> {
    if let Some((t, None)) = fast_datetime(text, false) {
        return Some(t);
    }
    TIMESTAMP_FORMATS
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
}

/// A `timestamptz`: a timestamp with `Z` or an offset (`+02:00`, `+0200`, `+02`); the instant
/// in microseconds since the epoch.
pub fn parse_timestamptz(text: &str) -> Option<i64> {
    if let Some((t, Some(offset))) = fast_datetime(text, true) {
        return Some(t.and_utc().timestamp_micros() - i64::from(offset) * 1_000_000);
    }
    if let Some(utc) = text.strip_suffix('Z') {
        if let Some(t) = parse_timestamp(utc) {
            return Some(t.and_utc().timestamp_micros());
        }
    }
    ZONED_FORMATS
        .iter()
        .find_map(|f| DateTime::parse_from_str(text, f).ok())
        .map(|t| t.timestamp_micros())
}

/// A `decimal(precision, scale)`: plain decimal text (`-12.50`, `+7`) as the integer of
/// `scale` digits after the point, when its digits fit.
pub fn parse_decimal(text: &str, precision: u32, scale: u32) -> Option<i128> {
    let negative = text.starts_with('-');
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let numeric = !int.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit());
    let int = int.trim_start_matches('0');
    if !numeric || frac.len() as u32 > scale || int.len() as u32 > precision - scale {
        return None;
    }
    let mut value: i128 = 0;
    for b in int.bytes().chain(frac.bytes()) {
        value = value * 10 + i128::from(b - b'0');
    }
    value *= 10i128.pow(scale - frac.len() as u32);
    Some(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_of_day_read_to_the_microsecond_up_to_the_end_of_the_day() {
        assert_eq!(parse_time("00:00"), Some(0));
        assert_eq!(parse_time("13:45:01"), Some(49_501_000_000));
        assert_eq!(parse_time("23:59:59.999999"), Some(86_399_999_999));
        assert_eq!(parse_time("12:34:56.5"), Some(45_296_500_000));
        assert_eq!(parse_time("12:34:56.500000000"), Some(45_296_500_000));
        assert_eq!(parse_time("24:00:00"), Some(86_400_000_000));
        for bad in [
            "24:00:01",
            "25:00",
            "12:60",
            "1:02:03",
            "12:34:56.",
            "12:34:56.1234567",
            "12:34.5",
            "12:34:56:00",
            "noon",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_fast_date_and_timestamp_readers_agree_with_the_format_parsers() {
        for text in [
            "2024-02-29 23:59:59.999999",
            "2024-02-29T10:11:12.5",
            "2024-02-29 10:11",
            "2023-02-29 10:11:12",
            "2024-13-01 00:00:00",
            "2024-01-01 24:00:00",
            "2024-01-01 10:60:00",
            "2024-01-01 10:00:00.",
            "2024-01-01 10:00:00.1234567",
            "2024-01-01 10:00:00x",
            "0001-01-01 00:00:00",
            "9999-12-31 23:59:59.000001",
        ] {
            let slow = TIMESTAMP_FORMATS
                .iter()
                .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok());
            assert_eq!(parse_timestamp(text), slow, "{text}");
        }
        for text in [
            "2020-01-01 00:01:00+00",
            "2020-01-01 00:01:00.25-05:30",
            "2020-01-01T00:01:00+0530",
            "2020-01-01 00:01:00Z",
            "2020-01-01 00:01+02",
            "2020-01-01 00:01:00+24",
            "2020-01-01 00:01:00+02:60",
            "2020-01-01 00:01:00+2",
            "2020-01-01 00:01:00",
        ] {
            let slow = ZONED_FORMATS
                .iter()
                .find_map(|f| DateTime::parse_from_str(text, f).ok())
                .map(|t| t.timestamp_micros())
                .or_else(|| {
                    let utc = text.strip_suffix('Z')?;
                    NaiveDateTime::parse_from_str(utc, "%Y-%m-%d %H:%M:%S%.f")
                        .ok()
                        .map(|t| t.and_utc().timestamp_micros())
                });
            assert_eq!(parse_timestamptz(text), slow, "{text}");
        }
        for text in [
            "2024-02-29",
            "2023-02-29",
            "2024-00-10",
            "0001-01-01",
            "2024-1-05",
        ] {
            assert_eq!(
                parse_date(text),
                NaiveDate::parse_from_str(text, "%Y-%m-%d").ok(),
                "{text}"
            );
        }
    }

    #[test]
    fn floats_read_the_words_for_values_that_are_not_finite() {
        assert_eq!(parse_float("-2.5e3"), Some(-2500.0));
        assert_eq!(parse_float("Infinity"), Some(f64::INFINITY));
        assert_eq!(parse_float("-Infinity"), Some(f64::NEG_INFINITY));
        assert!(parse_float("NaN").unwrap().is_nan());
        assert_eq!(parse_float("inf"), None);
        assert_eq!(parse_float("1e999"), None);
    }

    #[test]
    fn booleans_and_bytes_read_postgresqls_forms_too() {
        assert_eq!(parse_bytes("\\x00FF10"), Some(vec![0, 255, 16]));
        assert_eq!(parse_bytes("AP8Q"), Some(vec![0, 255, 16]));
        assert_eq!(parse_bytes("\\x0"), None);
        assert_eq!(parse_bool("FALSE"), Some(false));
        assert_eq!(parse_bool("yes"), None);
    }
}
