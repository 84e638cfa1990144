//! Exact conversions between MySQL's value forms and the logical carriers: proleptic Gregorian
//! dates, decimal text ↔ i128, and the text forms LOAD DATA reads. No allocation: everything
//! writes into the caller's buffer.

use crate::engine::values::{self, Fraction};
pub use crate::engine::values::{MICROS_PER_DAY, MICROS_PER_SECOND};

/// Days since 1970-01-01 of a date (the shared calendar routine, at MySQL's date width).
pub fn days_from_civil(year: i32, month: u32, day: u32) -> i32 {
    values::days_from_civil(year.into(), month, day) as i32
}

/// The date of a day number (inverse of `days_from_civil`).
pub fn civil_from_days(days: i32) -> (i32, u32, u32) {
    let (year, month, day) = values::civil_from_days(days.into());
    (year as i32, month, day)
}

/// Whether year/month/day name a real day (MySQL can store zero dates and zero parts).
pub fn is_valid_date(year: i32, month: u32, day: u32) -> bool {
    if !(1..=12).contains(&month) || day == 0 {
        return false;
    }
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    day <= days
}

/// Parse decimal text ("-12.340", "5", ".5") into an integer at `scale` decimal places.
/// `None` when it is not a plain decimal, has more non-zero fraction digits than `scale`, or
/// overflows.
pub fn parse_decimal(text: &[u8], scale: u32) -> Option<i128> {
    let (negative, digits) = match text.first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let mut value: i128 = 0;
    let mut frac_digits: u32 = 0;
    let mut seen_point = false;
    let mut seen_digit = false;
    for &b in digits {
        match b {
            b'0'..=b'9' => {
                seen_digit = true;
                if seen_point {
                    if frac_digits == scale {
                        if b != b'0' {
                            return None;
                        }
                        continue;
                    }
                    frac_digits += 1;
                }
                value = value.checked_mul(10)?.checked_add(i128::from(b - b'0'))?;
            }
            b'.' if !seen_point => seen_point = true,
            _ => return None,
        }
    }
    if !seen_digit {
        return None;
    }
    for _ in frac_digits..scale {
        value = value.checked_mul(10)?;
    }
    Some(if negative { -value } else { value })
}

/// Write an integer at `scale` decimal places as exact decimal text.
pub fn write_decimal(buf: &mut Vec<u8>, value: i128, scale: u32) {
    values::write_decimal(buf, value, scale.min(127) as i8);
}

pub fn write_u64(buf: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.extend_from_slice(&digits[i..]);
}

pub fn write_i64(buf: &mut Vec<u8>, n: i64) {
    if n < 0 {
        buf.push(b'-');
    }
    write_u64(buf, n.unsigned_abs());
}

/// Shortest text that reads back as exactly `v` (Rust's float formatting round-trips);
/// scientific notation for very large or small magnitudes.
pub fn write_f64(buf: &mut Vec<u8>, v: f64) {
    use std::io::Write;
    let a = v.abs();
    if a != 0.0 && !(1e-5..1e16).contains(&a) {
        let _ = write!(buf, "{v:e}");
    } else {
        let _ = write!(buf, "{v}");
    }
}

/// "YYYY-MM-DD"; `false` (nothing written) outside years 1..=9999.
pub fn write_date(buf: &mut Vec<u8>, days: i32) -> bool {
    let (y, m, d) = civil_from_days(days);
    if !(1..=9999).contains(&y) {
        return false;
    }
    values::write_ymd(buf, y as u32, m, d);
    true
}

/// "HH:MM:SS.ffffff" for microseconds since midnight (up to 24:00:00).
pub fn write_time(buf: &mut Vec<u8>, micros: i64) {
    values::write_time(buf, micros, Fraction::Always);
}

/// "YYYY-MM-DD HH:MM:SS.ffffff"; `false` outside years 1..=9999.
pub fn write_timestamp(buf: &mut Vec<u8>, micros: i64) -> bool {
    let days = micros.div_euclid(MICROS_PER_DAY);
    let Ok(days) = i32::try_from(days) else {
        return false;
    };
    let start = buf.len();
    if !write_date(buf, days) {
        buf.truncate(start);
        return false;
    }
    buf.push(b' ');
    write_time(buf, micros.rem_euclid(MICROS_PER_DAY));
    true
}

pub use crate::engine::values::write_uuid;

pub fn write_hex(buf: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    buf.reserve(bytes.len() * 2);
    for b in bytes {
        buf.push(HEX[(b >> 4) as usize]);
        buf.push(HEX[(b & 15) as usize]);
    }
}

/// Whether decimal text fits `decimal(p,s)`: at most p−s integer digits and s fraction
/// digits (trailing fraction zeros do not count). `Err` names why not.
pub fn check_decimal_text(text: &str, precision: u32, scale: u32) -> Result<(), String> {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(format!("{text:?} is not a decimal number MySQL can store"));
    }
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if frac.contains('.') {
        return Err(format!("{text:?} is not a decimal number"));
    }
    let int = int.trim_start_matches('0');
    let frac = frac.trim_end_matches('0');
    if int.len() as u32 > precision - scale || frac.len() as u32 > scale {
        return Err(format!(
            "{text} does not fit decimal({precision},{scale}) ({} integer and {} fraction digits)",
            int.len(),
            frac.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_round_trip_across_the_whole_range() {
        for days in [
            days_from_civil(1, 1, 1),
            -1,
            0,
            59,
            days_from_civil(2000, 2, 29),
            days_from_civil(9999, 12, 31),
        ] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(civil_from_days(days_from_civil(1, 1, 1)), (1, 1, 1));
        assert!(!is_valid_date(2023, 2, 29));
        assert!(is_valid_date(2024, 2, 29));
    }

    #[test]
    fn decimals_parse_and_print_exactly() {
        assert_eq!(parse_decimal(b"-12.34", 4), Some(-123_400));
        assert_eq!(parse_decimal(b"0.50", 1), Some(5));
        assert_eq!(parse_decimal(b"0.55", 1), None);
        assert_eq!(parse_decimal(b"abc", 1), None);
        let mut buf = Vec::new();
        write_decimal(&mut buf, -5, 3);
        assert_eq!(buf, b"-0.005");
        buf.clear();
        write_decimal(&mut buf, 12_345, 0);
        assert_eq!(buf, b"12345");
        buf.clear();
        write_decimal(&mut buf, i128::MAX / 1000, 10);
        assert_eq!(
            parse_decimal(&buf, 10),
            Some(i128::MAX / 1000),
            "{}",
            String::from_utf8_lossy(&buf)
        );
        assert!(check_decimal_text("123.4500", 5, 2).is_ok());
        assert!(check_decimal_text("123.451", 5, 2).is_err());
        assert!(check_decimal_text("NaN", 65, 30).is_err());
    }

    #[test]
    fn timestamps_print_before_1970_with_microseconds() {
        let mut buf = Vec::new();
        let micros = i64::from(days_from_civil(1969, 12, 31)) * MICROS_PER_DAY
            + 23 * 3_600_000_000
            + 59 * 60_000_000
            + 59_999_999;
        assert!(write_timestamp(&mut buf, micros));
        assert_eq!(buf, b"1969-12-31 23:59:59.999999");
        buf.clear();
        assert!(!write_timestamp(&mut buf, i64::MIN / 2));
        assert!(buf.is_empty());
    }
}
