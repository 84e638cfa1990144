//! PostgreSQL binary wire formats shared by the source (decoding) and the sink (encoding):
//! numeric, dates and times, intervals, and the text forms other targets receive.

use crate::engine::values::{self, Fraction};
use std::fmt::Write as _;

use bytes::{BufMut, BytesMut};

use crate::engine::EngineError;

/// What starts every binary COPY stream.
pub const COPY_SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";

/// The length of the binary COPY header at the start of `data` (signature, flags, header
/// extension); `None` while it has not all arrived.
pub fn copy_header_len(data: &[u8]) -> Result<Option<usize>, EngineError> {
    if data.len() < 19 {
        return Ok(None);
    }
    if &data[..11] != COPY_SIGNATURE {
        return Err(bad_copy_stream("bad signature"));
    }
    let ext = u32::from_be_bytes([data[15], data[16], data[17], data[18]]) as usize;
    Ok((data.len() >= 19 + ext).then_some(19 + ext))
}

pub fn bad_copy_stream(what: &str) -> EngineError {
    EngineError::Source {
        message: format!("malformed binary COPY stream: {what}"),
        transient: false,
    }
}

/// A NULL in a result column the source described as NOT NULL (`row` counts from 1).
pub fn null_in_not_null(column: &str, row: u64) -> EngineError {
    EngineError::Value {
        column: column.to_string(),
        row,
        message: "NULL in a column described as NOT NULL (a table column made nullable by the \
                  query); cast it, e.g. col::type, so it is not taken as the table column"
            .into(),
    }
}

/// Days from 1970-01-01 to 2000-01-01 (PostgreSQL's epoch for dates).
pub const PG_EPOCH_DAYS: i32 = 10_957;
/// Microseconds from 1970-01-01 to 2000-01-01.
pub const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
/// A day in microseconds; `time` may be exactly 24:00:00.
pub use crate::engine::values::MICROS_PER_DAY;

/// PostgreSQL's date range in days since 2000-01-01: julian day 0 (4714-11-24 BC) up to,
/// not including, julian day 2147483494 (5874898-01-01).
pub const PG_MIN_DATE: i32 = -2_451_545;
pub const PG_END_DATE: i32 = 2_147_483_494 - 2_451_545;
/// PostgreSQL's timestamp range in µs since 2000-01-01 (end exclusive).
pub const PG_MIN_TIMESTAMP: i64 = -211_813_488_000_000_000;
pub const PG_END_TIMESTAMP: i64 = 9_223_371_331_200_000_000;

const NUMERIC_POS: u16 = 0x0000;
const NUMERIC_NEG: u16 = 0x4000;
const NUMERIC_NAN: u16 = 0xC000;
const NUMERIC_PINF: u16 = 0xD000;
const NUMERIC_NINF: u16 = 0xF000;
/// Largest display scale PostgreSQL keeps.
const NUMERIC_DSCALE_MAX: i64 = 0x3FFF;

/// 10^0 ..= 10^38 as i128.
const fn pow10_table() -> [i128; 39] {
    let mut table = [1i128; 39];
    let mut i = 1;
    while i < 39 {
        table[i] = table[i - 1] * 10;
        i += 1;
    }
    table
}
pub const POW10: [i128; 39] = pow10_table();

fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}

fn be_u16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// A numeric value as sent on the wire, checked for length.
pub struct NumericView<'a> {
    pub weight: i16,
    pub sign: u16,
    pub dscale: i16,
    digits: &'a [u8],
}

impl<'a> NumericView<'a> {
    pub fn parse(bytes: &'a [u8]) -> Result<Self, String> {
        if bytes.len() < 8 {
            return Err("malformed numeric value".into());
        }
        let ndigits = be_i16(bytes, 0);
        if ndigits < 0 || bytes.len() != 8 + 2 * ndigits as usize {
            return Err("malformed numeric value".into());
        }
        Ok(Self {
            weight: be_i16(bytes, 2),
            sign: be_u16(bytes, 4),
            dscale: be_i16(bytes, 6),
            digits: &bytes[8..],
        })
    }

    pub fn ndigits(&self) -> usize {
        self.digits.len() / 2
    }

    pub fn digit(&self, i: usize) -> i16 {
        be_i16(self.digits, 2 * i)
    }

    fn special(&self) -> Option<&'static str> {
        match self.sign {
            NUMERIC_NAN => Some("NaN"),
            NUMERIC_PINF => Some("Infinity"),
            NUMERIC_NINF => Some("-Infinity"),
            _ => None,
        }
    }

    /// The value times 10^scale as an i128, when it has no more fractional digits than
    /// `scale` and fewer than `precision` digits in all.
    pub fn to_i128(&self, precision: u8, scale: i8) -> Result<i128, String> {
        if let Some(special) = self.special() {
            return Err(format!(
                "{special} cannot be held by numeric({precision},{scale}); cast the column to numeric to carry it as text"
            ));
        }
        let scale = scale as i32;
        let mut acc: i128 = 0;
        for i in 0..self.ndigits() {
            let d = self.digit(i) as i128;
            if d == 0 {
                continue;
            }
            let e = 4 * (self.weight as i32 - i as i32) + scale;
            let term = if e >= 0 {
                if e > 38 {
                    return Err(self.overflow(precision, scale));
                }
                d.checked_mul(POW10[e as usize])
                    .ok_or_else(|| self.overflow(precision, scale))?
            } else {
                if e <= -4 || d % POW10[(-e) as usize] != 0 {
                    return Err(format!(
                        "the value has more than {scale} fractional digits (numeric({precision},{scale}))"
                    ));
                }
                d / POW10[(-e) as usize]
            };
            acc = acc
                .checked_add(term)
                .ok_or_else(|| self.overflow(precision, scale))?;
        }
        if acc >= POW10[precision.min(38) as usize] {
            return Err(self.overflow(precision, scale));
        }
        Ok(if self.sign == NUMERIC_NEG { -acc } else { acc })
    }

    fn overflow(&self, precision: u8, scale: i32) -> String {
        format!("the value does not fit numeric({precision},{scale})")
    }

    /// The exact decimal text, as PostgreSQL prints it ("-12.3400", "NaN", "Infinity").
    pub fn write_text(&self, out: &mut String) {
        if let Some(special) = self.special() {
            out.push_str(special);
            return;
        }
        if self.sign == NUMERIC_NEG && self.ndigits() > 0 {
            out.push('-');
        }
        let digit_or_zero = |i: i32| -> i16 {
            if i >= 0 && (i as usize) < self.ndigits() {
                self.digit(i as usize)
            } else {
                0
            }
        };
        let weight = self.weight as i32;
        if weight < 0 {
            out.push('0');
        } else {
            for i in 0..=weight {
                let d = digit_or_zero(i);
                if i == 0 {
                    let _ = write!(out, "{d}");
                } else {
                    let _ = write!(out, "{d:04}");
                }
            }
        }
        let dscale = self.dscale.max(0) as usize;
        if dscale > 0 {
            out.push('.');
            let mut written = 0;
            let mut i = weight + 1;
            while written < dscale {
                let d = digit_or_zero(i);
                let group = [d / 1000, d / 100 % 10, d / 10 % 10, d % 10];
                for g in group {
                    if written == dscale {
                        break;
                    }
                    out.push((b'0' + g as u8) as char);
                    written += 1;
                }
                i += 1;
            }
        }
    }
}

/// Encode a field header (length) followed by a numeric of `|v| * 10^-scale` with the given sign.
fn put_numeric_digits(buf: &mut BytesMut, negative: bool, mut int: u128, frac: u128, scale: u32) {
    // Base-10000 groups: integer part (least significant first), then the fractional part
    // padded on the right to whole groups.
    let mut int_groups = [0u16; 10];
    let mut n_int = 0;
    while int > 0 {
        int_groups[n_int] = (int % 10_000) as u16;
        int /= 10_000;
        n_int += 1;
    }
    let mut frac_groups = [0u16; 10];
    let n_frac = scale.div_ceil(4) as usize;
    if n_frac > 0 {
        let pad = (4 - scale % 4) % 4;
        let mut f = frac;
        // The last group holds only (4 - pad) digits.
        let last_digits = 4 - pad;
        let unit = 10u128.pow(last_digits);
        frac_groups[n_frac - 1] = ((f % unit) * 10u128.pow(pad)) as u16;
        f /= unit;
        for g in (0..n_frac - 1).rev() {
            frac_groups[g] = (f % 10_000) as u16;
            f /= 10_000;
        }
    }
    // All groups, most significant first.
    let mut groups = [0u16; 20];
    let mut n = 0;
    for g in (0..n_int).rev() {
        groups[n] = int_groups[g];
        n += 1;
    }
    for &g in &frac_groups[..n_frac] {
        groups[n] = g;
        n += 1;
    }
    let mut weight = n_int as i32 - 1;
    let mut start = 0;
    while start < n && groups[start] == 0 {
        start += 1;
        weight -= 1;
    }
    let mut end = n;
    while end > start && groups[end - 1] == 0 {
        end -= 1;
    }
    let ndigits = end - start;
    if ndigits == 0 {
        weight = 0;
    }
    buf.put_i32(8 + 2 * ndigits as i32);
    buf.put_i16(ndigits as i16);
    buf.put_i16(weight as i16);
    buf.put_u16(if negative && ndigits > 0 {
        NUMERIC_NEG
    } else {
        NUMERIC_POS
    });
    buf.put_i16(scale as i16);
    for &g in &groups[start..end] {
        buf.put_u16(g);
    }
}

/// Write a length-prefixed numeric field for `v * 10^-scale` (0 <= scale <= 38).
pub fn put_numeric_i128(buf: &mut BytesMut, v: i128, scale: u32) {
    let abs = v.unsigned_abs();
    let unit = 10u128.pow(scale);
    put_numeric_digits(buf, v < 0, abs / unit, abs % unit, scale);
}

/// Write a length-prefixed numeric field for an unsigned 64-bit integer.
pub fn put_numeric_u64(buf: &mut BytesMut, v: u64) {
    put_numeric_digits(buf, false, v as u128, 0, 0);
}

/// Write a length-prefixed numeric field from decimal text ("-12.3400", "1.5e3", "NaN",
/// "Infinity", "-Infinity").
pub fn put_numeric_text(buf: &mut BytesMut, text: &str) -> Result<(), String> {
    let t = text.trim();
    let special = match t.to_ascii_lowercase().as_str() {
        "nan" => Some(NUMERIC_NAN),
        "infinity" | "+infinity" | "inf" | "+inf" => Some(NUMERIC_PINF),
        "-infinity" | "-inf" => Some(NUMERIC_NINF),
        _ => None,
    };
    if let Some(sign) = special {
        buf.put_i32(8);
        buf.put_i16(0);
        buf.put_i16(0);
        buf.put_u16(sign);
        buf.put_i16(0);
        return Ok(());
    }
    let invalid = || format!("{text:?} is not a decimal number");
    let bytes = t.as_bytes();
    let (negative, rest) = match bytes.first() {
        Some(b'-') => (true, &bytes[1..]),
        Some(b'+') => (false, &bytes[1..]),
        _ => (false, bytes),
    };
    let (mantissa, exponent) = match rest.iter().position(|&b| b == b'e' || b == b'E') {
        Some(at) => {
            let exp_text = std::str::from_utf8(&rest[at + 1..]).map_err(|_| invalid())?;
            let exp: i64 = exp_text.parse().map_err(|_| invalid())?;
            (&rest[..at], exp)
        }
        None => (rest, 0),
    };
    let (int_part, frac_part) = match mantissa.iter().position(|&b| b == b'.') {
        Some(at) => (&mantissa[..at], &mantissa[at + 1..]),
        None => (mantissa, &mantissa[mantissa.len()..]),
    };
    if int_part.is_empty() && frac_part.is_empty()
        || !int_part.iter().all(u8::is_ascii_digit)
        || !frac_part.iter().all(u8::is_ascii_digit)
    {
        return Err(invalid());
    }
    if exponent.abs() > 1_000_000 {
        return Err(format!("{text:?} is out of the range of numeric"));
    }
    let len = int_part.len() + frac_part.len();
    let digit = |i: usize| -> u8 {
        if i < int_part.len() {
            int_part[i] - b'0'
        } else {
            frac_part[i - int_part.len()] - b'0'
        }
    };
    // Digit i has the decimal exponent point - 1 - i.
    let point = int_part.len() as i64 + exponent;
    let dscale = (frac_part.len() as i64 - exponent).max(0);
    if dscale > NUMERIC_DSCALE_MAX {
        return Err(format!(
            "{text:?} has more fractional digits than numeric holds ({NUMERIC_DSCALE_MAX})"
        ));
    }
    let first = (0..len).find(|&i| digit(i) != 0);
    let Some(first) = first else {
        buf.put_i32(8);
        buf.put_i16(0);
        buf.put_i16(0);
        buf.put_u16(NUMERIC_POS);
        buf.put_i16(dscale as i16);
        return Ok(());
    };
    let last = (0..len).rev().find(|&i| digit(i) != 0).unwrap_or(first);
    let e_first = point - 1 - first as i64;
    let e_last = point - 1 - last as i64;
    let weight = e_first.div_euclid(4);
    let last_group = e_last.div_euclid(4);
    if weight > i16::MAX as i64 || last_group < -(NUMERIC_DSCALE_MAX / 4 + 1) {
        return Err(format!("{text:?} is out of the range of numeric"));
    }
    let ndigits = (weight - last_group + 1) as usize;
    if ndigits > i16::MAX as usize / 2 {
        return Err(format!("{text:?} is out of the range of numeric"));
    }
    buf.put_i32(8 + 2 * ndigits as i32);
    buf.put_i16(ndigits as i16);
    buf.put_i16(weight as i16);
    buf.put_u16(if negative { NUMERIC_NEG } else { NUMERIC_POS });
    buf.put_i16(dscale as i16);
    let digit_at = |e: i64| -> u16 {
        let i = point - 1 - e;
        if i >= 0 && (i as usize) < len {
            digit(i as usize) as u16
        } else {
            0
        }
    };
    let mut g = weight;
    while g >= last_group {
        let base = 4 * g;
        let value = digit_at(base + 3) * 1000
            + digit_at(base + 2) * 100
            + digit_at(base + 1) * 10
            + digit_at(base);
        buf.put_u16(value);
        g -= 1;
    }
    Ok(())
}

/// "2024-01-31" (years before 1 as negative astronomical years).
pub fn write_date(out: &mut String, days_since_1970: i64) {
    let (y, m, d) = values::civil_from_days(days_since_1970);
    if y < 0 {
        out.push('-');
    }
    values::push_ascii(out, |b| {
        values::write_ymd(b, y.unsigned_abs().min(u32::MAX.into()) as u32, m, d)
    });
}

/// "13:45:00" or "13:45:00.1234" (trailing zeros of the fraction dropped).
pub fn write_time(out: &mut String, micros: i64) {
    values::push_ascii(out, |b| values::write_time(b, micros, Fraction::Trimmed));
}

fn write_fraction(out: &mut String, frac: u32) {
    values::push_ascii(out, |b| values::write_fraction(b, frac));
}

/// "2024-01-31T13:45:00.123456" from PostgreSQL's µs since 2000-01-01 (the form
/// PostgreSQL's to_json uses).
pub fn write_pg_timestamp(out: &mut String, micros_since_2000: i64) {
    let days = micros_since_2000.div_euclid(MICROS_PER_DAY) + PG_EPOCH_DAYS as i64;
    let in_day = micros_since_2000.rem_euclid(MICROS_PER_DAY);
    write_date(out, days);
    out.push('T');
    write_time(out, in_day);
}

/// An interval in ISO 8601 form, exactly as PostgreSQL's `intervalstyle = iso_8601` prints it.
pub fn write_interval_iso(out: &mut String, micros: i64, days: i32, months: i32) {
    let years = months / 12;
    let mons = months % 12;
    let hours = micros / 3_600_000_000;
    let rest = micros % 3_600_000_000;
    let mins = rest / 60_000_000;
    let rest = rest % 60_000_000;
    let secs = rest / 1_000_000;
    let fsec = rest % 1_000_000;
    if years == 0 && mons == 0 && days == 0 && hours == 0 && mins == 0 && secs == 0 && fsec == 0 {
        out.push_str("PT0S");
        return;
    }
    out.push('P');
    for (value, unit) in [(years as i64, 'Y'), (mons as i64, 'M'), (days as i64, 'D')] {
        if value != 0 {
            let _ = write!(out, "{value}{unit}");
        }
    }
    if hours != 0 || mins != 0 || secs != 0 || fsec != 0 {
        out.push('T');
    }
    for (value, unit) in [(hours, 'H'), (mins, 'M')] {
        if value != 0 {
            let _ = write!(out, "{value}{unit}");
        }
    }
    if secs != 0 || fsec != 0 {
        if secs < 0 || fsec < 0 {
            out.push('-');
        }
        let _ = write!(out, "{}", secs.abs());
        write_fraction(out, fsec.unsigned_abs() as u32);
        out.push('S');
    }
}

/// A JSON string literal.
pub fn write_json_string(out: &mut String, s: &str) {
    out.push('"');
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Lowercase hyphenated UUID text.
pub fn write_uuid(out: &mut String, bytes: &[u8]) {
    values::push_ascii(out, |b| values::write_uuid(b, bytes));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode_text(text: &str) -> Vec<u8> {
        let mut buf = BytesMut::new();
        put_numeric_text(&mut buf, text).unwrap();
        buf[4..].to_vec()
    }

    fn decode_text(bytes: &[u8]) -> String {
        let mut s = String::new();
        NumericView::parse(bytes).unwrap().write_text(&mut s);
        s
    }

    #[test]
    fn numeric_text_round_trips_through_the_wire_form() {
        for text in [
            "0",
            "1",
            "-1",
            "12.3400",
            "-0.0001",
            "0.00000001",
            "10000",
            "123456789012345678901234567890.123456789",
            "-99999999999999999999999999999999999999",
            "NaN",
            "Infinity",
            "-Infinity",
            "0.000",
            "100000000.5",
        ] {
            assert_eq!(decode_text(&encode_text(text)), text, "{text}");
        }
        assert_eq!(decode_text(&encode_text("1.5e3")), "1500");
        assert_eq!(decode_text(&encode_text("1.50E-2")), "0.0150");
        assert_eq!(decode_text(&encode_text("+007.10")), "7.10");
    }

    #[test]
    fn bad_decimal_text_is_refused() {
        let mut buf = BytesMut::new();
        for text in ["", "-", "1.2.3", "abc", "1e", "--1", "1 2"] {
            assert!(put_numeric_text(&mut buf, text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn decimals_round_trip_between_i128_and_numeric() {
        for (v, scale) in [
            (0i128, 0u32),
            (1, 0),
            (-123456, 2),
            (12340000, 4),
            (99999999999999999999999999999999999999, 10),
            (-99999999999999999999999999999999999999, 0),
            (1, 38),
            (5, 3),
            (18446744073709551615, 0),
        ] {
            let mut buf = BytesMut::new();
            put_numeric_i128(&mut buf, v, scale);
            let view = NumericView::parse(&buf[4..]).unwrap();
            assert_eq!(view.dscale as u32, scale);
            assert_eq!(view.to_i128(38, scale as i8).unwrap(), v, "{v} {scale}");
        }
        let mut buf = BytesMut::new();
        put_numeric_i128(&mut buf, -123456, 2);
        assert_eq!(decode_text(&buf[4..]), "-1234.56");
    }

    #[test]
    fn numerics_that_do_not_fit_the_decimal_are_refused() {
        let view_of = |t: &str| encode_text(t);
        let bytes = view_of("123.456");
        let v = NumericView::parse(&bytes).unwrap();
        assert!(v.to_i128(10, 2).is_err());
        assert_eq!(v.to_i128(10, 3).unwrap(), 123456);
        assert!(v.to_i128(5, 3).is_err());
        let nan = view_of("NaN");
        assert!(NumericView::parse(&nan).unwrap().to_i128(10, 2).is_err());
    }

    #[test]
    fn intervals_print_as_postgresql_iso_8601() {
        let mut s = String::new();
        write_interval_iso(
            &mut s,
            4 * 3_600_000_000 + 5 * 60_000_000 + 6_500_000,
            3,
            14,
        );
        assert_eq!(s, "P1Y2M3DT4H5M6.5S");
        s.clear();
        write_interval_iso(&mut s, 0, 0, 0);
        assert_eq!(s, "PT0S");
        s.clear();
        write_interval_iso(&mut s, -1_500_000, -1, -13);
        assert_eq!(s, "P-1Y-1M-1DT-1.5S");
    }

    #[test]
    fn dates_and_timestamps_print_in_iso_form() {
        let mut s = String::new();
        write_date(&mut s, 0);
        assert_eq!(s, "1970-01-01");
        s.clear();
        write_date(&mut s, -719_162);
        assert_eq!(s, "0001-01-01");
        s.clear();
        write_pg_timestamp(&mut s, -PG_EPOCH_MICROS - 1);
        assert_eq!(s, "1969-12-31T23:59:59.999999");
        s.clear();
        write_json_string(&mut s, "a\"b\\\n\u{1}é");
        assert_eq!(s, "\"a\\\"b\\\\\\n\\u0001é\"");
    }
}
