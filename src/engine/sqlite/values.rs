//! Text forms of SQLite values: ISO-8601 dates and times, exact decimal text, floats, and the
//! checks that keep SQLite's type affinity from silently changing a value.
//!
//! Formatting writes into a small reusable buffer (no heap allocation per value).

use chrono::{Datelike, NaiveDate};

/// Days from 0001-01-01 (CE day 1) to 1970-01-01.
const UNIX_EPOCH_CE_DAYS: i32 = 719_163;
pub use crate::engine::values::MICROS_PER_DAY;
use crate::engine::values::MICROS_PER_SECOND as MICROS_PER_SEC;
use crate::engine::values::{self, Fraction};

/// A reusable text buffer for one formatted value (cleared, not freed, between values).
#[derive(Default)]
pub struct TextBuf {
    buf: Vec<u8>,
}

impl TextBuf {
    pub fn clear(&mut self) {
        self.buf.clear();
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII is ever written.
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }

    pub(super) fn push(&mut self, b: u8) {
        self.buf.push(b);
    }

    /// `value` in decimal, left-padded with zeros to `width` digits.
    fn push_padded(&mut self, value: u128, width: usize) {
        values::write_padded(&mut self.buf, value, width);
    }

    pub fn push_str(&mut self, s: &str) {
        for b in s.bytes() {
            self.push(b);
        }
    }

    pub fn push_u64(&mut self, value: u64) {
        self.push_padded(value as u128, 1);
    }

    /// "YYYY-MM-DD"; years outside 0000..9999 in ISO 8601's expanded form ("+10000", "-0001").
    pub fn push_date(&mut self, days: i32) -> Result<(), String> {
        let date = days
            .checked_add(UNIX_EPOCH_CE_DAYS)
            .and_then(NaiveDate::from_num_days_from_ce_opt)
            .ok_or_else(|| format!("date ({days} days from 1970-01-01) is out of range"))?;
        let year = date.year();
        if (0..=9999).contains(&year) {
            self.push_padded(year as u128, 4);
        } else {
            self.push(if year < 0 { b'-' } else { b'+' });
            self.push_padded(year.unsigned_abs() as u128, 4);
        }
        self.push(b'-');
        self.push_padded(date.month() as u128, 2);
        self.push(b'-');
        self.push_padded(date.day() as u128, 2);
        Ok(())
    }

    /// "HH:MM:SS" plus ".ffffff" when the microseconds are not zero; 0 ≤ micros ≤ 24:00:00.
    pub fn push_time(&mut self, micros: i64) -> Result<(), String> {
        if !(0..=MICROS_PER_DAY).contains(&micros) {
            return Err(format!(
                "time ({micros} µs after midnight) is outside 00:00:00..24:00:00"
            ));
        }
        values::write_time(&mut self.buf, micros, Fraction::WhenNonZero);
        Ok(())
    }

    /// "YYYY-MM-DD HH:MM:SS[.ffffff]".
    pub fn push_timestamp(&mut self, micros: i64) -> Result<(), String> {
        let days = micros.div_euclid(MICROS_PER_DAY);
        let time = micros.rem_euclid(MICROS_PER_DAY);
        let days = i32::try_from(days).map_err(|_| "timestamp is out of range".to_string())?;
        self.push_date(days)?;
        self.push(b' ');
        self.push_time(time)
    }

    /// A Decimal128 value with `scale` fraction digits ("-12.3400").
    pub fn push_decimal(&mut self, value: i128, scale: i8) {
        values::write_decimal(&mut self.buf, value, scale);
    }
}

/// A float as the shortest text that reads back as the same value: plain decimals for ordinary
/// magnitudes, exponent form for very large or small ones, "Infinity"/"-Infinity".
pub fn write_f64(out: &mut String, value: f64) {
    use std::fmt::Write;
    out.clear();
    if value.is_infinite() {
        out.push_str(if value > 0.0 { "Infinity" } else { "-Infinity" });
    } else if value.is_nan() {
        out.push_str("NaN");
    } else {
        let magnitude = value.abs();
        if magnitude == 0.0 || (1e-7..1e21).contains(&magnitude) {
            let _ = write!(out, "{value}");
        } else {
            let _ = write!(out, "{value:e}");
        }
    }
}

/// `i` as f64 when the conversion is exact.
pub fn exact_f64(i: i64) -> Option<f64> {
    let f = i as f64;
    (f as i128 == i as i128).then_some(f)
}

/// `f` as i64 when the conversion is exact.
pub fn exact_i64(f: f64) -> Option<i64> {
    if f.fract() != 0.0
        || !f.is_finite()
        || !(-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&f)
    {
        return None;
    }
    Some(f as i64)
}

// ---------------------------------------------------------------------------------------------
// Decimal text.

/// A parsed decimal literal: `[+-] digits [. digits] [e [+-] digits]`, borrowed from its text.
#[derive(Debug, Clone, Copy)]
pub struct DecimalText<'a> {
    pub negative: bool,
    int: &'a [u8],
    frac: &'a [u8],
    exp: i64,
}

/// Parse a decimal literal as SQLite would recognise a number (leading and trailing whitespace
/// allowed). `None` when the text is not a number.
pub fn parse_decimal(text: &[u8]) -> Option<DecimalText<'_>> {
    let text = trim_ascii(text);
    let mut i = 0;
    let negative = match text.first() {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let start = i;
    while i < text.len() && text[i].is_ascii_digit() {
        i += 1;
    }
    let int = &text[start..i];
    let mut frac: &[u8] = &[];
    if i < text.len() && text[i] == b'.' {
        i += 1;
        let f = i;
        while i < text.len() && text[i].is_ascii_digit() {
            i += 1;
        }
        frac = &text[f..i];
    }
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut exp: i64 = 0;
    if i < text.len() && (text[i] == b'e' || text[i] == b'E') {
        i += 1;
        let exp_negative = match text.get(i) {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        let e = i;
        while i < text.len() && text[i].is_ascii_digit() {
            // Saturate: an absurd exponent is rejected by the range checks of the users.
            exp = (exp * 10 + (text[i] - b'0') as i64).min(1_000_000_000);
            i += 1;
        }
        if i == e {
            return None;
        }
        if exp_negative {
            exp = -exp;
        }
    }
    (i == text.len()).then_some(DecimalText {
        negative,
        int,
        frac,
        exp,
    })
}

fn trim_ascii(mut text: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = text {
        if is_space(*first) {
            text = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = text {
        if is_space(*last) {
            text = rest;
        } else {
            break;
        }
    }
    text
}

/// SQLite's idea of white space.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

impl DecimalText<'_> {
    fn digits(&self) -> impl Iterator<Item = u8> + '_ {
        self.int.iter().chain(self.frac.iter()).map(|d| d - b'0')
    }

    fn digit_count(&self) -> usize {
        self.int.len() + self.frac.len()
    }

    /// The significant digits (no leading or trailing zeros) as a range of `digits()`, and the
    /// power of ten of the last one; `None` for zero.
    fn normalized(&self) -> Option<(usize, usize, i64)> {
        let mut first = None;
        let mut last = 0;
        for (k, d) in self.digits().enumerate() {
            if d != 0 {
                first.get_or_insert(k);
                last = k + 1;
            }
        }
        let trailing = (self.digit_count() - last) as i64;
        Some((first?, last, self.exp - self.frac.len() as i64 + trailing))
    }

    pub fn is_zero(&self) -> bool {
        self.normalized().is_none()
    }

    /// The value scaled to `scale` fraction digits, when it has at most `precision` digits and
    /// no more than `scale` fraction digits (trailing zeros aside).
    pub fn to_scaled(&self, precision: u8, scale: i8) -> Result<i128, String> {
        let Some((first, last, exp_of_last)) = self.normalized() else {
            return Ok(0);
        };
        // The value is digits[first..last] * 10^exp_of_last.
        let shift = exp_of_last + scale as i64;
        if shift < 0 {
            return Err(format!(
                "has more than {scale} digits after the decimal point"
            ));
        }
        let significant = (last - first) as i64;
        if significant + shift > precision as i64 {
            return Err(format!(
                "does not fit numeric({precision},{scale}) (more than {} digits before the decimal point)",
                precision as i64 - scale as i64
            ));
        }
        let mut value: i128 = 0;
        for d in self.digits().skip(first).take(last - first) {
            value = value * 10 + d as i128;
        }
        value *= 10i128.pow(shift as u32);
        Ok(if self.negative { -value } else { value })
    }

    /// The value as an i64 when it is a whole number in range.
    pub fn to_i64(&self) -> Option<i64> {
        let Some((first, last, exp_of_last)) = self.normalized() else {
            return Some(0);
        };
        if exp_of_last < 0 || (last - first) as i64 + exp_of_last > 19 {
            return None;
        }
        let mut value: i128 = 0;
        for d in self.digits().skip(first).take(last - first) {
            value = value * 10 + d as i128;
        }
        value *= 10i128.pow(exp_of_last as u32);
        if self.negative {
            value = -value;
        }
        i64::try_from(value).ok()
    }

    /// Same number (not necessarily the same spelling).
    pub fn same_value(&self, other: &DecimalText<'_>) -> bool {
        match (self.normalized(), other.normalized()) {
            (None, None) => true,
            (Some((af, al, ae)), Some((bf, bl, be))) => {
                self.negative == other.negative
                    && ae == be
                    && al - af == bl - bf
                    && self
                        .digits()
                        .skip(af)
                        .take(al - af)
                        .eq(other.digits().skip(bf).take(bl - bf))
            }
            _ => false,
        }
    }

    /// The plain decimal text (no exponent), keeping the given fraction digits: "-0.0015",
    /// "100", "1.50". Fails only on an absurd exponent.
    pub fn write_plain(&self, out: &mut String) -> Result<(), String> {
        out.clear();
        // The value is digits * 10^e.
        let e = self.exp - self.frac.len() as i64;
        if e.abs() > 100_000 {
            return Err("the exponent is too large".into());
        }
        if self.negative && !self.is_zero() {
            out.push('-');
        }
        let n = self.digit_count() as i64;
        let point = n + e; // digits before the decimal point
        let int_digits = point.clamp(0, n) as usize;
        let mut wrote = false;
        for d in self.digits().take(int_digits) {
            if d == 0 && !wrote {
                continue;
            }
            wrote = true;
            out.push((b'0' + d) as char);
        }
        if wrote {
            for _ in 0..e.max(0) {
                out.push('0');
            }
        } else {
            out.push('0');
        }
        if e < 0 {
            out.push('.');
            for _ in 0..(-point).max(0) {
                out.push('0');
            }
            for d in self.digits().skip(int_digits) {
                out.push((b'0' + d) as char);
            }
        }
        Ok(())
    }
}

/// The carrier spelling of an exact decimal text (BigDecimal): plain digits, or "NaN",
/// "Infinity", "-Infinity".
pub fn normalize_big_decimal(text: &str, out: &mut String) -> Result<(), String> {
    let trimmed = text.trim();
    const SPECIAL: [(&str, &str); 7] = [
        ("nan", "NaN"),
        ("infinity", "Infinity"),
        ("+infinity", "Infinity"),
        ("inf", "Infinity"),
        ("+inf", "Infinity"),
        ("-infinity", "-Infinity"),
        ("-inf", "-Infinity"),
    ];
    let special = SPECIAL
        .iter()
        .find(|(spelling, _)| trimmed.eq_ignore_ascii_case(spelling))
        .map(|(_, carrier)| *carrier);
    if let Some(s) = special {
        out.clear();
        out.push_str(s);
        return Ok(());
    }
    parse_decimal(trimmed.as_bytes())
        .ok_or_else(|| format!("{:?} is not a decimal number", clip(text)))?
        .write_plain(out)
}

/// Up to 40 characters of a value, for messages.
pub fn clip(text: &str) -> String {
    match text.char_indices().nth(40) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// Dates and times.

struct Cursor<'a> {
    text: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.text.get(self.pos).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Exactly `n` digits.
    fn fixed(&mut self, n: usize) -> Option<i64> {
        let digits = self.text.get(self.pos..self.pos + n)?;
        let mut v = 0i64;
        for d in digits {
            if !d.is_ascii_digit() {
                return None;
            }
            v = v * 10 + (d - b'0') as i64;
        }
        self.pos += n;
        Some(v)
    }

    fn done(&self) -> bool {
        self.pos == self.text.len()
    }
}

fn parse_date_at(c: &mut Cursor<'_>) -> Option<i32> {
    let negative = c.eat(b'-');
    let signed = negative || c.eat(b'+');
    let start = c.pos;
    let mut year: i64 = 0;
    while let Some(d) = c.peek().filter(u8::is_ascii_digit) {
        year = year * 10 + (d - b'0') as i64;
        if year > 1_000_000 {
            return None;
        }
        c.pos += 1;
    }
    let digits = c.pos - start;
    if digits < 4 || (!signed && digits != 4) {
        return None;
    }
    if negative {
        year = -year;
    }
    if !c.eat(b'-') {
        return None;
    }
    let month = c.fixed(2)?;
    if !c.eat(b'-') {
        return None;
    }
    let day = c.fixed(2)?;
    let date = NaiveDate::from_ymd_opt(year as i32, month as u32, day as u32)?;
    Some(date.num_days_from_ce() - UNIX_EPOCH_CE_DAYS)
}

/// "HH:MM[:SS[.fraction]]" as microseconds after midnight; "24:00:00" is allowed.
fn parse_time_at(c: &mut Cursor<'_>) -> Result<i64, String> {
    let bad = || "is not a time (HH:MM[:SS[.ffffff]])".to_string();
    let hour = c.fixed(2).ok_or_else(bad)?;
    if !c.eat(b':') {
        return Err(bad());
    }
    let minute = c.fixed(2).ok_or_else(bad)?;
    let mut second = 0;
    let mut micros = 0;
    if c.eat(b':') {
        second = c.fixed(2).ok_or_else(bad)?;
        if c.eat(b'.') {
            let start = c.pos;
            while let Some(d) = c.peek().filter(u8::is_ascii_digit) {
                let k = c.pos - start;
                if k < 6 {
                    micros = micros * 10 + (d - b'0') as i64;
                } else if d != b'0' {
                    return Err("has a fraction of a second finer than microseconds".into());
                }
                c.pos += 1;
            }
            let k = c.pos - start;
            if k == 0 {
                return Err(bad());
            }
            for _ in k..6 {
                micros *= 10;
            }
        }
    }
    let total = ((hour * 60 + minute) * 60 + second) * MICROS_PER_SEC + micros;
    if minute > 59 || second > 59 || total > MICROS_PER_DAY {
        return Err("is not a valid time of day".into());
    }
    Ok(total)
}

/// "YYYY-MM-DD" as days since 1970-01-01.
pub fn parse_date(text: &str) -> Result<i32, String> {
    let mut c = Cursor {
        text: text.trim().as_bytes(),
        pos: 0,
    };
    match parse_date_at(&mut c) {
        Some(days) if c.done() => Ok(days),
        _ => Err("is not a date (YYYY-MM-DD)".into()),
    }
}

pub fn parse_time(text: &str) -> Result<i64, String> {
    let mut c = Cursor {
        text: text.trim().as_bytes(),
        pos: 0,
    };
    let micros = parse_time_at(&mut c)?;
    if !c.done() {
        return Err("is not a time (HH:MM[:SS[.ffffff]])".into());
    }
    Ok(micros)
}

/// "YYYY-MM-DD[( |T)HH:MM[:SS[.ffffff]]][Z|±HH[:MM]]": microseconds since 1970-01-01 00:00 of
/// the written wall time, and the offset in seconds when one is given.
pub fn parse_timestamp(text: &str) -> Result<(i64, Option<i64>), String> {
    let bad = || "is not a timestamp (YYYY-MM-DD HH:MM:SS[.ffffff])".to_string();
    let mut c = Cursor {
        text: text.trim().as_bytes(),
        pos: 0,
    };
    let days = parse_date_at(&mut c).ok_or_else(bad)?;
    let mut time = 0;
    if c.eat(b' ') || c.eat(b'T') || c.eat(b't') {
        time = parse_time_at(&mut c)?;
    }
    while c.eat(b' ') {}
    let offset = match c.peek() {
        None => None,
        Some(b'Z') | Some(b'z') => {
            c.pos += 1;
            Some(0)
        }
        Some(sign @ (b'+' | b'-')) => {
            c.pos += 1;
            let hours = c.fixed(2).ok_or_else(bad)?;
            let minutes = if c.eat(b':') {
                c.fixed(2).ok_or_else(bad)?
            } else {
                c.fixed(2).unwrap_or(0)
            };
            if hours > 23 || minutes > 59 {
                return Err(bad());
            }
            let secs = (hours * 60 + minutes) * 60;
            Some(if sign == b'-' { -secs } else { secs })
        }
        Some(_) => return Err(bad()),
    };
    if !c.done() {
        return Err(bad());
    }
    let micros = (days as i64)
        .checked_mul(MICROS_PER_DAY)
        .and_then(|m| m.checked_add(time))
        .ok_or_else(|| "is out of range".to_string())?;
    Ok((micros, offset))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(text: &str) -> String {
        let mut out = String::new();
        parse_decimal(text.as_bytes())
            .unwrap()
            .write_plain(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn decimal_text_is_normalized_without_losing_digits() {
        assert_eq!(plain("1.50"), "1.50");
        assert_eq!(plain("-0.0015"), "-0.0015");
        assert_eq!(plain("1.5e-3"), "0.0015");
        assert_eq!(plain("1e2"), "100");
        assert_eq!(plain("12.345e1"), "123.45");
        assert_eq!(plain("007"), "7");
        assert_eq!(plain(".5"), "0.5");
        assert_eq!(plain("-0"), "0");
        assert_eq!(plain("0.000"), "0.000");
        assert_eq!(
            plain("123456789012345678901234567890.123456789"),
            "123456789012345678901234567890.123456789"
        );
        assert!(parse_decimal(b"1.2.3").is_none());
        assert!(parse_decimal(b"abc").is_none());
        assert!(parse_decimal(b"-").is_none());
        assert!(parse_decimal(b"1e").is_none());
        assert!(parse_decimal(b" 12 ").is_some());
    }

    #[test]
    fn decimals_scale_exactly_or_fail() {
        fn d(t: &str) -> DecimalText<'_> {
            parse_decimal(t.as_bytes()).unwrap()
        }
        assert_eq!(d("1.1").to_scaled(10, 2), Ok(110));
        assert_eq!(d("-1.10000").to_scaled(10, 2), Ok(-110));
        assert_eq!(d("12e-1").to_scaled(10, 2), Ok(120));
        assert_eq!(d("0").to_scaled(1, 0), Ok(0));
        assert!(d("1.125").to_scaled(10, 2).is_err());
        assert!(d("123456789").to_scaled(10, 2).is_err());
        assert_eq!(
            d("9999999999999999999999999999.9999999999").to_scaled(38, 10),
            Ok(99_999_999_999_999_999_999_999_999_999_999_999_999)
        );
        assert!(d("1e40").to_scaled(38, 0).is_err());
        assert_eq!(d("3.0e5").to_i64(), Some(300_000));
        assert_eq!(d("1.5").to_i64(), None);
        assert_eq!(d("9223372036854775808").to_i64(), None);
        assert_eq!(d("-9223372036854775808").to_i64(), Some(i64::MIN));
        assert!(d("1.50").same_value(&d("15e-1")));
        assert!(!d("1.5").same_value(&d("1.05")));
    }

    #[test]
    fn dates_times_and_timestamps_round_trip_through_text() {
        let mut b = TextBuf::default();
        for text in [
            "0001-01-01",
            "9999-12-31",
            "1970-01-01",
            "2024-02-29",
            "0000-01-01",
        ] {
            b.clear();
            b.push_date(parse_date(text).unwrap()).unwrap();
            assert_eq!(b.as_str(), text);
        }
        b.clear();
        b.push_date(parse_date("+10000-01-01").unwrap()).unwrap();
        assert_eq!(b.as_str(), "+10000-01-01");
        assert!(parse_date("2023-02-29").is_err());
        assert_eq!(parse_time("24:00:00"), Ok(MICROS_PER_DAY));
        assert_eq!(parse_time("13:45"), Ok((13 * 60 + 45) * 60 * 1_000_000));
        assert_eq!(parse_time("00:00:00.1234560"), Ok(123_456));
        assert!(parse_time("00:00:00.1234567").is_err());
        assert!(parse_time("24:00:01").is_err());
        b.clear();
        b.push_time(parse_time("13:45:00.123456").unwrap()).unwrap();
        assert_eq!(b.as_str(), "13:45:00.123456");
        for text in [
            "1969-07-20 20:17:40.000001",
            "2100-01-01 00:00:00",
            "1900-12-31 23:59:59.999999",
        ] {
            let (micros, offset) = parse_timestamp(text).unwrap();
            assert_eq!(offset, None);
            b.clear();
            b.push_timestamp(micros).unwrap();
            assert_eq!(b.as_str(), text);
        }
        assert_eq!(
            parse_timestamp("2024-01-31T13:45:00+05:30").unwrap(),
            (parse_timestamp("2024-01-31 13:45").unwrap().0, Some(19_800))
        );
        assert_eq!(parse_timestamp("2024-01-31 13:45:00Z").unwrap().1, Some(0));
        assert_eq!(
            parse_timestamp("2024-01-31 13:45:00-0800").unwrap().1,
            Some(-28_800)
        );
        assert!(parse_timestamp("2024-01-31 13:45:00 garbage").is_err());
    }

    #[test]
    fn decimals_and_floats_print_exactly() {
        let mut b = TextBuf::default();
        b.push_decimal(-123_400, 4);
        assert_eq!(b.as_str(), "-12.3400");
        b.clear();
        b.push_decimal(5, 3);
        assert_eq!(b.as_str(), "0.005");
        b.clear();
        b.push_decimal(i128::MAX, 0);
        assert_eq!(b.as_str(), i128::MAX.to_string());
        let mut s = String::new();
        write_f64(&mut s, 0.1 + 0.2);
        assert_eq!(s, "0.30000000000000004");
        write_f64(&mut s, 1e300);
        assert_eq!(s, "1e300");
        write_f64(&mut s, 5e-324);
        assert_eq!(s.parse::<f64>().unwrap(), 5e-324);
        assert_eq!(exact_f64(i64::MAX), None);
        assert_eq!(exact_f64(1 << 53), Some(9_007_199_254_740_992.0));
        assert_eq!(exact_i64(9.223_372_036_854_776e18), None);
        assert_eq!(exact_i64(-9.223_372_036_854_776e18), Some(i64::MIN));
    }
}
