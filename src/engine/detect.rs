//! Schema detection of a file from its first bytes, by format: the one its name says, or (for
//! a name that says none) the one its bytes look like.

use super::infer::Detected;
use super::{csv, json};

/// Bytes read from the start of a file to detect its schema.
pub const SAMPLE_BYTES: u64 = 1 << 20;

/// Detect the schema of a file of format `format` (csv, json, jsonl; `None`: guess) from
/// `sample`, its first bytes (`whole`: all of them). When the records read are not all of the
/// file's, numbers are widened (see `Detected::widened`) so that later values still fit. CSV
/// cells equal to one of `nulls` are NULL.
pub fn detect_schema(
    sample: &[u8],
    whole: bool,
    format: Option<&str>,
    nulls: &[String],
) -> Result<Detected, String> {
    sampled(sample, whole, format, nulls).map(Detected::widened)
}

fn sampled(
    sample: &[u8],
    whole: bool,
    format: Option<&str>,
    nulls: &[String],
) -> Result<Detected, String> {
    match format {
        Some("csv") => csv::detect(sample, whole, nulls),
        Some("json" | "jsonl") => json::detect(sample, whole),
        Some(other) => Err(format!("schema detection does not read {other} files yet")),
        None => {
            let head = &sample[..sample.len().min(8192)];
            if head.contains(&0)
                && !head.starts_with(&[0xFF, 0xFE])
                && !head.starts_with(&[0xFE, 0xFF])
            {
                return Err("the file is not text (it holds NUL bytes)".into());
            }
            let first = head.iter().find(|b| !b.is_ascii_whitespace());
            match first {
                Some(b'[' | b'{') => json::detect(sample, whole),
                _ => csv::detect(sample, whole, nulls),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::infer::default_null_words;

    #[test]
    fn a_file_without_a_format_is_read_as_what_it_looks_like() {
        assert_eq!(
            detect_schema(b"[{\"a\":1}]", true, None, &default_null_words())
                .unwrap()
                .format,
            "json"
        );
        assert_eq!(
            detect_schema(b"a,b\n1,2\n", true, None, &default_null_words())
                .unwrap()
                .format,
            "csv"
        );
        assert!(
            detect_schema(b"\x00\x01\x02", true, None, &default_null_words())
                .unwrap_err()
                .contains("not text")
        );
        assert!(detect_schema(b"PAR1", true, Some("parquet"), &default_null_words()).is_err());
    }

    #[test]
    fn a_sample_cut_short_counts_no_rows_and_widens_its_numbers() {
        let mut csv = String::from("id,price\n");
        for i in 0..10_001 {
            csv.push_str(&format!("{i},{i}.5\n"));
        }
        let d = detect_schema(csv.as_bytes(), true, Some("csv"), &default_null_words()).unwrap();
        assert!(!d.whole_file, "10,001 records, 10,000 sampled");
        let types: Vec<&str> = d.fields.iter().map(|f| f.field_type.as_str()).collect();
        assert_eq!(types, ["bigint", "decimal(38,1)"]);
        let mut lines = String::new();
        for i in 0..10_001 {
            lines.push_str(&format!("{{\"n\": {i}}}\n"));
        }
        assert!(
            !detect_schema(lines.as_bytes(), true, Some("jsonl"), &default_null_words())
                .unwrap()
                .whole_file
        );
        let whole = detect_schema(b"id\n1\n2\n", true, Some("csv"), &default_null_words()).unwrap();
        assert!(whole.whole_file);
        assert_eq!(
            whole.fields[0].field_type, "integer",
            "a whole file keeps its types"
        );
    }
}
