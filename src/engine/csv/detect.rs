//! Schema detection for CSV: encoding, delimiter (`,` `;` tab `|`), quote and escape, header
//! or not, line endings, and each column's type over the sampled rows.

use crate::engine::encoding::decode;
use crate::engine::infer::{Column, CsvDialect, Detected, DetectedField};

const DELIMITERS: [u8; 4] = [b',', b';', b'\t', b'|'];
/// Records read to choose a delimiter.
const SNIFF_RECORDS: usize = 50;
/// Records whose values decide the types.
pub const SAMPLE_RECORDS: usize = 10_000;

fn line_ending(text: &str) -> &'static str {
    let crlf = text.matches("\r\n").count();
    let lf = text.matches('\n').count() - crlf;
    let cr = text.matches('\r').count() - crlf;
    if crlf > 0 && crlf >= lf && crlf >= cr {
        "crlf"
    } else if cr > lf {
        "cr"
    } else {
        "lf"
    }
}

/// Whether `at` starts a field: the text's start, a line's, or just after a delimiter.
fn field_start(bytes: &[u8], at: usize) -> bool {
    at == 0 || matches!(bytes[at - 1], b'\n' | b'\r') || DELIMITERS.contains(&bytes[at - 1])
}

fn quote_char(text: &str) -> u8 {
    let bytes = text.as_bytes();
    let opening = |q: u8| {
        (0..bytes.len())
            .filter(|&i| bytes[i] == q && field_start(bytes, i))
            .count()
    };
    if opening(b'"') == 0 && opening(b'\'') > 0 {
        b'\''
    } else {
        b'"'
    }
}

/// `None` when quotes are doubled inside quoted fields (the CSV norm); `Some(b'\\')` when
/// they are escaped with a backslash and never doubled.
fn escape_char(text: &str, quote: u8) -> Option<u8> {
    let bytes = text.as_bytes();
    let mut backslashed = 0;
    let mut doubled = 0;
    for i in 1..bytes.len() {
        if bytes[i] != quote {
            continue;
        }
        if bytes[i - 1] == b'\\' {
            backslashed += 1;
        } else if bytes[i - 1] == quote && !field_start(bytes, i - 1) {
            let after = bytes.get(i + 1).copied();
            let closes_field =
                after.is_none_or(|b| matches!(b, b'\n' | b'\r') || DELIMITERS.contains(&b));
            if !closes_field {
                doubled += 1;
            }
        }
    }
    (backslashed > 0 && doubled == 0).then_some(b'\\')
}

/// The line of a quote that is never closed (in a whole file).
fn unterminated_quote(text: &str, quote: u8, escape: Option<u8>) -> Option<usize> {
    let mut line = 1;
    let mut open: Option<usize> = None;
    let mut escaped = false;
    for &b in text.as_bytes() {
        if escaped {
            escaped = false;
            continue;
        }
        match b {
            b'\n' => line += 1,
            _ if Some(b) == escape && open.is_some() => escaped = true,
            _ if b == quote => open = if open.is_some() { None } else { Some(line) },
            _ => {}
        }
    }
    open
}

fn reader(text: &str, delimiter: u8, quote: u8, escape: Option<u8>) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .quote(quote)
        .escape(escape)
        .double_quote(escape.is_none())
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes())
}

/// The delimiter that splits the first records into the same number (at least two) of fields
/// most consistently; `,` when none does.
fn sniff_delimiter(text: &str, quote: u8, escape: Option<u8>, whole: bool) -> u8 {
    let mut best: Option<(usize, usize, u8)> = None;
    for delimiter in DELIMITERS {
        let mut counts: Vec<usize> = reader(text, delimiter, quote, escape)
            .records()
            .take(SNIFF_RECORDS)
            .map_while(Result::ok)
            .map(|r| r.len())
            .collect();
        if !whole && counts.len() > 1 {
            counts.pop();
        }
        let Some(&first) = counts.first() else {
            continue;
        };
        let consistent = counts.iter().filter(|&&c| c == first).count();
        if first < 2 {
            continue;
        }
        let score = (consistent, first, delimiter);
        if best.is_none_or(|(c, w, _)| (consistent, first) > (c, w)) {
            best = Some(score);
        }
    }
    best.map_or(b',', |(_, _, d)| d)
}

/// The sampled records, and whether they are all the file holds.
/// A record and the line it starts on.
type Row = (u64, Vec<String>);

/// The sample's records, and whether they are all of its records (none left unread).
fn records(
    text: &str,
    dialect: (u8, u8, Option<u8>),
    whole: bool,
) -> Result<(Vec<Row>, bool), String> {
    let (delimiter, quote, escape) = dialect;
    let mut rows = Vec::new();
    let mut reader = reader(text, delimiter, quote, escape);
    let mut record = csv::StringRecord::new();
    let mut complete = false;
    loop {
        if rows.len() > SAMPLE_RECORDS {
            break;
        }
        let line = reader.position().line();
        match reader.read_record(&mut record) {
            Ok(false) => {
                complete = true;
                break;
            }
            Ok(true) => rows.push((line, record.iter().map(str::to_string).collect())),
            // The sample may end inside a quoted field: what came before stands.
            Err(_) if !whole => break,
            Err(e) => return Err(format!("CSV line {line}: {e}")),
        }
    }
    // A sample that is not the whole file may have cut its last record.
    if !whole && rows.len() <= SAMPLE_RECORDS && rows.len() > 1 {
        rows.pop();
    }
    Ok((rows, complete))
}

/// Whether the first record names the columns: some column is typed below it while its first
/// value is not, or (all text) its values are distinct and never recur below.
fn has_header(rows: &[(u64, Vec<String>)], null_words: &[impl AsRef<str>]) -> bool {
    let Some((_, first)) = rows.first() else {
        return false;
    };
    if first.iter().any(|v| v.trim().is_empty()) {
        return false;
    }
    let mut first_typed = false;
    let mut body_typed = false;
    for (i, value) in first.iter().enumerate() {
        let mut head = Column::default();
        head.observe_text(value);
        // A column named `t` or `f` is not PostgreSQL's boolean.
        let head_typed = head.is_typed() && !matches!(value.as_str(), "t" | "f" | "T" | "F");
        first_typed |= head_typed;
        let mut body = Column::default();
        for (_, row) in &rows[1..] {
            match row.get(i) {
                Some(v) if !is_null(null_words, v) => body.observe_text(v),
                _ => body.observe_null(),
            }
        }
        body_typed |= body.is_typed() && !head_typed;
    }
    if first_typed {
        return false;
    }
    if body_typed {
        return true;
    }
    let distinct = first
        .iter()
        .enumerate()
        .all(|(i, v)| first[..i].iter().all(|w| w != v));
    let recurs = rows[1..]
        .iter()
        .any(|(_, row)| row.iter().zip(first).any(|(a, b)| a == b));
    distinct && !recurs && rows.len() > 1
}

/// Column names: the header's (blank ones and repeats made unique) or `column1`, `column2`, ….
fn names(header: Option<&[String]>, width: usize) -> Vec<String> {
    let mut names: Vec<String> = Vec::with_capacity(width);
    for i in 0..width {
        let given = header
            .and_then(|h| h.get(i))
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| format!("column{}", i + 1));
        let mut name = given.clone();
        let mut n = 2;
        while names.contains(&name) {
            name = format!("{given}_{n}");
            n += 1;
        }
        names.push(name);
    }
    names
}

fn is_null(null_words: &[impl AsRef<str>], value: &str) -> bool {
    null_words.iter().any(|w| w.as_ref() == value)
}

/// Detect the schema of a CSV file from its first bytes. `whole`: the sample is the file.
/// Cells equal to one of `null_words` are NULL.
pub fn detect(
    sample: &[u8],
    whole: bool,
    null_words: &[impl AsRef<str>],
) -> Result<Detected, String> {
    let decoded = decode(sample, whole);
    let text = decoded.text.as_str();
    if text.trim().is_empty() {
        return Err("the file holds no data".into());
    }
    let quote = quote_char(text);
    let escape = escape_char(text, quote);
    if let Some(line) = whole
        .then(|| unterminated_quote(text, quote, escape))
        .flatten()
    {
        return Err(format!("CSV line {line}: a quoted field is never closed"));
    }
    let delimiter = sniff_delimiter(text, quote, escape, whole);
    let (rows, complete) = records(text, (delimiter, quote, escape), whole)?;
    let header = has_header(&rows, null_words);
    let width = rows.first().map_or(0, |(_, r)| r.len());
    let body = if header { &rows[1..] } else { &rows[..] };
    let mut columns = vec![Column::default(); width];
    for (line, row) in body {
        if row.len() != width {
            return Err(format!(
                "CSV line {line} has {} fields where the {} has {width}",
                row.len(),
                if header { "header" } else { "first line" },
            ));
        }
        for (column, value) in columns.iter_mut().zip(row) {
            if is_null(null_words, value) {
                column.observe_null();
            } else {
                column.observe_text(value);
            }
        }
    }
    let header_row = header.then(|| rows[0].1.as_slice());
    let fields = names(header_row, width)
        .into_iter()
        .zip(&columns)
        .enumerate()
        .map(|(i, (name, column))| DetectedField::new(name, i.to_string(), column))
        .collect();
    Ok(Detected {
        format: "csv".into(),
        encoding: decoded.encoding.into(),
        dialect: Some(CsvDialect {
            delimiter: (delimiter as char).to_string(),
            quote: (quote as char).to_string(),
            escape: (escape.unwrap_or(quote) as char).to_string(),
            header,
            line_ending: line_ending(text).into(),
            null_words: null_words.iter().map(|w| w.as_ref().to_string()).collect(),
        }),
        fields,
        sampled_rows: body.len() as u64,
        whole_file: whole && complete,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::infer::DEFAULT_NULL_WORDS;

    fn types(d: &Detected) -> Vec<(String, String)> {
        d.fields
            .iter()
            .map(|f| (f.name.clone(), f.field_type.clone()))
            .collect()
    }

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn a_plain_csv_with_a_header_gets_names_and_types() {
        let csv = "id,name,price,born,active\n1,Mark,12.50,2001-02-03,true\n2,\"Maria, Jr.\",3,1999-12-31,false\n3,Ann,,2000-01-01,\n";
        let d = detect(csv.as_bytes(), true, DEFAULT_NULL_WORDS).unwrap();
        let dialect = d.dialect.clone().unwrap();
        assert_eq!(dialect.delimiter, ",");
        assert!(dialect.header);
        assert_eq!(dialect.line_ending, "lf");
        assert_eq!(
            types(&d),
            pairs(&[
                ("id", "integer"),
                ("name", "string"),
                ("price", "decimal(4,2)"),
                ("born", "date"),
                ("active", "boolean"),
            ])
        );
        assert!(d.fields[2].nullable && !d.fields[0].nullable);
        assert_eq!(d.fields[3].path, "3");
        assert_eq!(d.sampled_rows, 3);
    }

    #[test]
    fn semicolons_tabs_and_pipes_are_found_and_a_headerless_file_is_numbered() {
        let d = detect(b"1;Mark\r\n2;Maria\r\n", true, DEFAULT_NULL_WORDS).unwrap();
        let dialect = d.dialect.clone().unwrap();
        assert_eq!((dialect.delimiter.as_str(), dialect.header), (";", false));
        assert_eq!(dialect.line_ending, "crlf");
        assert_eq!(
            types(&d),
            pairs(&[("column1", "integer"), ("column2", "string")])
        );
        let d = detect(b"a\tb\n1\t2\n", true, DEFAULT_NULL_WORDS).unwrap();
        assert_eq!(d.dialect.unwrap().delimiter, "\t");
        let d = detect(b"a|b|c\nx|y|z\nu|v|w\n", true, DEFAULT_NULL_WORDS).unwrap();
        assert_eq!(d.dialect.clone().unwrap().delimiter, "|");
        assert!(d.dialect.unwrap().header, "distinct names that never recur");
    }

    #[test]
    fn backslash_escapes_and_single_quotes_are_recognised() {
        let d = detect(
            b"id,text\n1,\"say \\\"hi\\\"\"\n2,\"x\"\n",
            true,
            DEFAULT_NULL_WORDS,
        )
        .unwrap();
        assert_eq!(d.dialect.unwrap().escape, "\\");
        let d = detect(b"id,text\n1,'a, b'\n2,'c'\n", true, DEFAULT_NULL_WORDS).unwrap();
        let dialect = d.dialect.unwrap();
        assert_eq!(
            (dialect.quote.as_str(), dialect.escape.as_str()),
            ("'", "'")
        );
        assert_eq!(d.fields.len(), 2);
    }

    #[test]
    fn a_ragged_row_or_an_unterminated_quote_is_an_error_with_its_line() {
        let err = detect(b"a,b\n1,2\n3,4,5\n", true, DEFAULT_NULL_WORDS).unwrap_err();
        assert!(err.contains("line 3") && err.contains("3 fields"), "{err}");
        let err = detect(b"a,b\n1,\"open\n2,3\n", true, DEFAULT_NULL_WORDS).unwrap_err();
        assert!(
            err.contains("line 2") && err.contains("never closed"),
            "{err}"
        );
        let err = detect(b"", true, DEFAULT_NULL_WORDS).unwrap_err();
        assert!(err.contains("no data"), "{err}");
    }

    #[test]
    fn a_sample_cut_mid_record_drops_that_record() {
        let d = detect(b"n,t\n1,a\n2,b\n3,\"unfinished", false, DEFAULT_NULL_WORDS).unwrap();
        assert_eq!(d.sampled_rows, 2);
        assert!(!d.whole_file);
        let d = detect(b"n\n1\n2\n12345", false, DEFAULT_NULL_WORDS).unwrap();
        assert_eq!(d.sampled_rows, 2, "the last line may be cut short");
    }
}
