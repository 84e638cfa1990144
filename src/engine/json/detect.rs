//! Schema detection for JSON: an array of objects (`json`) or one object per line (`jsonl`).
//! Nested objects are flattened into fields named `a.b` at JSONPath `$.a.b`; arrays are kept as
//! `json` values.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::path::Step;
use crate::engine::encoding::decode;
use crate::engine::infer::{Column, Detected, DetectedField};

/// Records whose values decide the types.
pub const SAMPLE_RECORDS: usize = 10_000;

/// The fields seen so far, in the order they first appeared.
#[derive(Default)]
struct Fields {
    order: Vec<(String, String, Column, u64)>,
    index: HashMap<String, usize>,
    records: u64,
    /// The sample stopped at `SAMPLE_RECORDS` with records left after it.
    cut: bool,
}

impl Fields {
    fn field(&mut self, name: &str, path: String) -> &mut (String, String, Column, u64) {
        let at = match self.index.get(name) {
            Some(&at) => at,
            None => {
                self.order
                    .push((name.to_string(), path, Column::default(), 0));
                self.index.insert(name.to_string(), self.order.len() - 1);
                self.order.len() - 1
            }
        };
        &mut self.order[at]
    }

    fn object(&mut self, object: &Map<String, Value>, name: &str, path: &str) {
        for (key, value) in object {
            let name = if name.is_empty() {
                key.clone()
            } else {
                format!("{name}.{key}")
            };
            let path = format!("{path}{}", Step::Key(key.clone()));
            match value {
                Value::Object(inner) if !inner.is_empty() => self.object(inner, &name, &path),
                other => {
                    let field = self.field(&name, path);
                    field.2.observe_json(other);
                    field.3 += 1;
                }
            }
        }
    }

    fn record(&mut self, value: &Value, root: &str) {
        self.records += 1;
        match value {
            Value::Object(object) => self.object(object, "", root),
            other => {
                let field = self.field("value", root.to_string());
                field.2.observe_json(other);
                field.3 += 1;
            }
        }
    }

    fn detected(self, format: &str, encoding: &str, whole: bool) -> Detected {
        let records = self.records;
        let fields = self
            .order
            .into_iter()
            .map(|(name, path, mut column, present)| {
                for _ in present..records {
                    column.observe_null();
                }
                DetectedField::new(name, path, &column)
            })
            .collect();
        Detected {
            format: format.into(),
            encoding: encoding.into(),
            dialect: None,
            fields,
            sampled_rows: records,
            whole_file: whole && !self.cut,
        }
    }
}

/// Line and column (1-based) of a byte offset.
fn position(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, column)
}

fn syntax_error(text: &str, at: usize, e: &serde_json::Error) -> String {
    // serde_json counts from the slice it was given, which starts at `at`.
    let (line, column) = position(text, at);
    let (line, column) = if e.line() <= 1 {
        (line, column + e.column().saturating_sub(1))
    } else {
        (line + e.line() - 1, e.column())
    };
    let message = e.to_string();
    let message = message.split(" at line ").next().unwrap_or(&message);
    format!("JSON line {line}, column {column}: {message}")
}

fn skip_space(text: &str, at: usize) -> usize {
    at + text[at..].len() - text[at..].trim_start().len()
}

/// The records of an array `[{…}, {…}]`, starting after its `[`.
fn array(text: &str, mut at: usize, whole: bool, fields: &mut Fields) -> Result<(), String> {
    loop {
        at = skip_space(text, at);
        if text[at..].starts_with(']') {
            return Ok(());
        }
        if fields.records as usize >= SAMPLE_RECORDS {
            fields.cut = true;
            return Ok(());
        }
        let mut values = serde_json::Deserializer::from_str(&text[at..]).into_iter::<Value>();
        match values.next() {
            Some(Ok(value)) => {
                fields.record(&value, "$[*]");
                at += values.byte_offset();
            }
            Some(Err(e)) if !whole && e.is_eof() => return Ok(()),
            Some(Err(e)) => return Err(syntax_error(text, at, &e)),
            None if whole => return Err(syntax_error_eof(text)),
            None => return Ok(()),
        }
        at = skip_space(text, at);
        match text[at..].chars().next() {
            Some(',') => at += 1,
            Some(']') => return Ok(()),
            None if !whole => return Ok(()),
            None => return Err(syntax_error_eof(text)),
            Some(other) => {
                let (line, column) = position(text, at);
                return Err(format!(
                    "JSON line {line}, column {column}: expected `,` or `]`, found {other:?}"
                ));
            }
        }
    }
}

fn syntax_error_eof(text: &str) -> String {
    let (line, column) = position(text, text.len());
    format!("JSON line {line}, column {column}: the array is never closed")
}

/// Records one after another (JSON Lines); a single object is a file of one record.
fn lines(text: &str, whole: bool, fields: &mut Fields) -> Result<(), String> {
    let mut values = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    loop {
        match values.next() {
            None => return Ok(()),
            Some(Ok(value)) => fields.record(&value, "$"),
            Some(Err(e)) if !whole && e.is_eof() => return Ok(()),
            // Positions count from the start of the text here.
            Some(Err(e)) => return Err(syntax_error(text, 0, &e)),
        }
        if fields.records as usize >= SAMPLE_RECORDS {
            fields.cut = !text[values.byte_offset()..].trim().is_empty();
            return Ok(());
        }
    }
}

/// Detect the schema of a JSON or JSON Lines file from its first bytes. `whole`: the sample is
/// the file.
pub fn detect(sample: &[u8], whole: bool) -> Result<Detected, String> {
    let decoded = decode(sample, whole);
    if decoded.encoding == "latin-1" {
        return Err("the file is not JSON: it is not UTF-8 or UTF-16 text".into());
    }
    let text = decoded.text.as_str();
    let start = skip_space(text, 0);
    let mut fields = Fields::default();
    let format = match text[start..].chars().next() {
        Some('[') => {
            array(text, start + 1, whole, &mut fields)?;
            "json"
        }
        Some('{') => {
            lines(text, whole, &mut fields)?;
            if fields.records > 1 {
                "jsonl"
            } else {
                "json"
            }
        }
        None => return Err("the file holds no data".into()),
        Some(other) => {
            let (line, column) = position(text, start);
            return Err(format!(
                "the file is not JSON: line {line}, column {column} starts with {other:?} \
                 (an array of records or one object per line was expected)"
            ));
        }
    };
    if fields.records == 0 {
        return Err("the file holds no JSON records".into());
    }
    Ok(fields.detected(format, decoded.encoding, whole))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(d: &Detected) -> Vec<(String, String, String, bool)> {
        d.fields
            .iter()
            .map(|f| {
                (
                    f.name.clone(),
                    f.field_type.clone(),
                    f.path.clone(),
                    f.nullable,
                )
            })
            .collect()
    }

    fn row(name: &str, t: &str, path: &str, nullable: bool) -> (String, String, String, bool) {
        (name.into(), t.into(), path.into(), nullable)
    }

    #[test]
    fn an_array_of_objects_is_flattened_by_jsonpath() {
        let json = br#"[{"id": 1, "item": {"price": 2.5, "sku": "A"}, "tags": [1]},
                        {"id": 2, "item": {"price": 3}, "when": "2024-01-02"}]"#;
        let d = detect(json, true).unwrap();
        assert_eq!(d.format, "json");
        assert_eq!(
            summary(&d),
            [
                row("id", "integer", "$[*].id", false),
                row("item.price", "float", "$[*].item.price", false),
                row("item.sku", "string", "$[*].item.sku", true),
                row("tags", "json", "$[*].tags", true),
                row("when", "date", "$[*].when", true),
            ]
        );
    }

    #[test]
    fn json_lines_are_read_line_by_line_and_a_cut_last_line_is_dropped() {
        let d = detect(
            b"{\"a\": 1, \"odd key\": true}\n{\"a\": 2}\n{\"a\": 3, \"b",
            false,
        )
        .unwrap();
        assert_eq!(d.format, "jsonl");
        assert_eq!(d.sampled_rows, 2);
        assert_eq!(
            summary(&d),
            [
                row("a", "integer", "$.a", false),
                row("odd key", "boolean", "$['odd key']", true),
            ]
        );
    }

    #[test]
    fn what_is_not_json_is_an_error_with_line_and_column() {
        let err = detect(b"id,name\n1,x\n", true).unwrap_err();
        assert!(
            err.contains("not JSON") && err.contains("line 1, column 1"),
            "{err}"
        );
        let err = detect(b"[{\"a\": 1},\n {\"a\": }]", true).unwrap_err();
        assert!(err.contains("line 2, column 8"), "{err}");
        let err = detect(b"[{\"a\": 1}", true).unwrap_err();
        assert!(err.contains("never closed"), "{err}");
        assert!(detect(b"   ", true).unwrap_err().contains("no data"));
    }
}
