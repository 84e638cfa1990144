//! The value forms every dialect writes alike: time units, the calendar, exact decimal text,
//! times of day and UUIDs, into a caller's byte buffer (no allocation per value). Each dialect
//! keeps only what is its own (ranges, signs of years, escaping).

use std::borrow::Cow;

pub const MICROS_PER_SECOND: i64 = 1_000_000;
pub const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SECOND;

/// The shortest text that reads back as the same finite float (`f64` or `f32`), plain where
/// that is short and with an exponent where the plain form would run to hundreds of digits:
/// `0.1`, `-2500`, `1.7976931348623157e308`, `5e-324`.
pub fn float_text<F>(v: F) -> String
where
    F: std::fmt::Display + std::fmt::LowerExp + Into<f64> + Copy,
{
    let magnitude = v.into().abs();
    if magnitude != 0.0 && !(1e-5..1e16).contains(&magnitude) {
        format!("{v:e}")
    } else {
        v.to_string()
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (astronomical years; H. Hinnant's
/// `days_from_civil`). The one calendar routine every dialect uses.
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = month as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date (astronomical year, month, day) of a day count since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `value` in decimal, left-padded with zeros to `width` digits.
pub fn write_padded(buf: &mut Vec<u8>, mut value: u128, width: usize) {
    let mut digits = [0u8; 40];
    let mut n = 0;
    loop {
        digits[n] = b'0' + (value % 10) as u8;
        n += 1;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    for _ in n..width {
        buf.push(b'0');
    }
    buf.extend(digits[..n].iter().rev());
}

/// An integer at `scale` decimal places as exact decimal text ("-12.3400"); a negative scale
/// appends zeros.
pub fn write_decimal(buf: &mut Vec<u8>, value: i128, scale: i8) {
    if value < 0 {
        buf.push(b'-');
    }
    let magnitude = value.unsigned_abs();
    if scale <= 0 {
        write_padded(buf, magnitude, 1);
        buf.extend(std::iter::repeat_n(b'0', scale.unsigned_abs() as usize));
        return;
    }
    let pow = 10u128.pow(scale as u32);
    write_padded(buf, magnitude / pow, 1);
    buf.push(b'.');
    write_padded(buf, magnitude % pow, scale as usize);
}

/// "YYYY-MM-DD" for a year the caller has checked is 0..=9999.
pub fn write_ymd(buf: &mut Vec<u8>, year: u32, month: u32, day: u32) {
    write_padded(buf, year.into(), 4);
    buf.push(b'-');
    write_padded(buf, month.into(), 2);
    buf.push(b'-');
    write_padded(buf, day.into(), 2);
}

/// How a time of day writes its microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fraction {
    /// Always `.ffffff`.
    Always,
    /// `.ffffff` unless zero.
    WhenNonZero,
    /// Without trailing zeros, and none at all when zero (`.5`, `.1234`).
    Trimmed,
}

/// "HH:MM:SS" and the fraction as asked, for microseconds since midnight (0 to 24:00:00).
pub fn write_time(buf: &mut Vec<u8>, micros: i64, fraction: Fraction) {
    let secs = micros.div_euclid(MICROS_PER_SECOND);
    let frac = micros.rem_euclid(MICROS_PER_SECOND) as u32;
    write_padded(buf, (secs / 3600) as u128, 2);
    buf.push(b':');
    write_padded(buf, (secs / 60 % 60) as u128, 2);
    buf.push(b':');
    write_padded(buf, (secs % 60) as u128, 2);
    match fraction {
        Fraction::Always => {
            buf.push(b'.');
            write_padded(buf, frac.into(), 6);
        }
        Fraction::WhenNonZero if frac != 0 => {
            buf.push(b'.');
            write_padded(buf, frac.into(), 6);
        }
        Fraction::Trimmed => write_fraction(buf, frac),
        Fraction::WhenNonZero => {}
    }
}

/// ".ffffff" of microseconds without trailing zeros (".5", ".1234"); nothing for zero.
pub fn write_fraction(buf: &mut Vec<u8>, micros: u32) {
    if micros == 0 {
        return;
    }
    let (mut digits, mut width) = (micros, 6);
    while digits % 10 == 0 {
        digits /= 10;
        width -= 1;
    }
    buf.push(b'.');
    write_padded(buf, digits.into(), width);
}

/// Lowercase hyphenated UUID text.
pub fn write_uuid(buf: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            buf.push(b'-');
        }
        buf.push(HEX[(b >> 4) as usize]);
        buf.push(HEX[(b & 15) as usize]);
    }
}

/// The bytes one of these writers made, appended to a `String` (they only write ASCII).
pub fn push_ascii(out: &mut String, write: impl FnOnce(&mut Vec<u8>)) {
    let mut bytes = Vec::with_capacity(40);
    write(&mut bytes);
    out.push_str(std::str::from_utf8(&bytes).expect("the value writers write ASCII"));
}

/// A JSON number's text without an exponent (`-1e-6` → `-0.000001`, `1.5e3` → `1500`), as
/// decimal fields read it. (JSON readers print small and large doubles with exponents.)
pub fn plain_number(text: &str) -> Cow<'_, str> {
    let Some((mantissa, exponent)) = text.split_once(['e', 'E']) else {
        return Cow::Borrowed(text);
    };
    let Ok(exponent) = exponent.parse::<i64>() else {
        return Cow::Borrowed(text);
    };
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", mantissa.strip_prefix('+').unwrap_or(mantissa)),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = format!("{int}{frac}");
    let point = int.len() as i64 + exponent;
    if !(-400..=400).contains(&point) {
        return Cow::Borrowed(text);
    }
    let plain = if point <= 0 {
        format!("0.{}{digits}", "0".repeat((-point) as usize))
    } else if point as usize >= digits.len() {
        format!("{digits}{}", "0".repeat(point as usize - digits.len()))
    } else {
        format!(
            "{}.{}",
            &digits[..point as usize],
            &digits[point as usize..]
        )
    };
    let plain = plain.trim_start_matches('0');
    let plain = if plain.is_empty() || plain.starts_with('.') {
        format!("0{plain}")
    } else {
        plain.to_string()
    };
    let plain = match plain.split_once('.') {
        Some((int, frac)) if frac.trim_end_matches('0').is_empty() => int.to_string(),
        Some((int, frac)) => format!("{int}.{}", frac.trim_end_matches('0')),
        None => plain,
    };
    Cow::Owned(format!("{sign}{plain}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_are_written_short_and_read_back_the_same() {
        for (v, text) in [
            (0.1, "0.1"),
            (-2500.0, "-2500"),
            (0.0, "0"),
            (f64::MAX, "1.7976931348623157e308"),
            (f64::from_bits(1), "5e-324"),
            (1e16, "1e16"),
            (123456789012345.6, "123456789012345.6"),
        ] {
            assert_eq!(float_text(v), text);
            assert_eq!(text.parse::<f64>().unwrap().to_bits(), v.to_bits());
        }
        assert_eq!(float_text(f32::MAX), "3.4028235e38");
    }

    #[test]
    fn exponents_of_json_numbers_are_written_out() {
        assert_eq!(plain_number("-1e-6"), "-0.000001");
        assert_eq!(plain_number("1.5e3"), "1500");
        assert_eq!(plain_number("1.25E+1"), "12.5");
        assert_eq!(plain_number("12.50"), "12.50");
        assert_eq!(plain_number("1e300").len(), 301);
    }

    fn text(write: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut s = String::new();
        push_ascii(&mut s, write);
        s
    }

    #[test]
    fn calendar_days_round_trip_across_eras() {
        for days in [-719_162, -1, 0, 10_957, 2_932_896, -1_000_000, 5_000_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-719_162), (1, 1, 1));
        assert_eq!(days_from_civil(9999, 12, 31), 2_932_896);
    }

    #[test]
    fn decimals_times_and_uuids_have_one_text_form() {
        assert_eq!(text(|b| write_decimal(b, -123_400, 4)), "-12.3400");
        assert_eq!(text(|b| write_decimal(b, 5, 3)), "0.005");
        assert_eq!(text(|b| write_decimal(b, -7, 0)), "-7");
        assert_eq!(text(|b| write_decimal(b, 12, -2)), "1200");
        let t = 13 * 3_600_000_000 + 45 * 60_000_000 + 500_000;
        assert_eq!(
            text(|b| write_time(b, t, Fraction::Always)),
            "13:45:00.500000"
        );
        assert_eq!(
            text(|b| write_time(b, t, Fraction::WhenNonZero)),
            "13:45:00.500000"
        );
        assert_eq!(text(|b| write_time(b, t, Fraction::Trimmed)), "13:45:00.5");
        assert_eq!(text(|b| write_time(b, 0, Fraction::Trimmed)), "00:00:00");
        assert_eq!(
            text(|b| write_time(b, 0, Fraction::WhenNonZero)),
            "00:00:00"
        );
        assert_eq!(
            text(|b| write_time(b, MICROS_PER_DAY, Fraction::Trimmed)),
            "24:00:00"
        );
        assert_eq!(text(|b| write_ymd(b, 987, 1, 31)), "0987-01-31");
        let uuid = [
            0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8, 0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38,
            0x0a, 0x11,
        ];
        assert_eq!(
            text(|b| write_uuid(b, &uuid)),
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
        );
    }
}
