//! JSONPath, the subset that names where a field's values are: `$`, `.name`, `['any name']`,
//! `[n]` and `[*]` (e.g. `$[*].id`, `$.items[*].price`).

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Index(usize),
    Each,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath(pub Vec<Step>);

fn bad(path: &str, at: usize, why: &str) -> String {
    format!("JSONPath {path:?}, character {}: {why}", at + 1)
}

/// A quoted key in brackets, from just after its opening quote; the key and the position after
/// the closing `]`.
fn quoted(
    path: &str,
    chars: &[char],
    start: usize,
    quote: char,
) -> Result<(String, usize), String> {
    let mut key = String::new();
    let mut i = start;
    loop {
        match chars.get(i) {
            None => return Err(bad(path, i, "the quoted name is never closed")),
            Some('\\') => {
                let escaped = chars
                    .get(i + 1)
                    .ok_or_else(|| bad(path, i, "a lone backslash"))?;
                key.push(*escaped);
                i += 2;
            }
            Some(c) if *c == quote => break,
            Some(c) => {
                key.push(*c);
                i += 1;
            }
        }
    }
    if chars.get(i + 1) != Some(&']') {
        return Err(bad(path, i + 1, "expected `]` after the quoted name"));
    }
    Ok((key, i + 2))
}

impl JsonPath {
    pub fn parse(path: &str) -> Result<Self, String> {
        let chars: Vec<char> = path.trim().chars().collect();
        if chars.first() != Some(&'$') {
            return Err(bad(path, 0, "a JSONPath starts with `$`"));
        }
        let mut steps = Vec::new();
        let mut i = 1;
        while i < chars.len() {
            match chars[i] {
                '.' if chars.get(i + 1) == Some(&'*') => {
                    steps.push(Step::Each);
                    i += 2;
                }
                '.' => {
                    let start = i + 1;
                    let mut end = start;
                    while end < chars.len() && (chars[end].is_alphanumeric() || chars[end] == '_') {
                        end += 1;
                    }
                    if end == start {
                        return Err(bad(path, start, "expected a name after `.`"));
                    }
                    steps.push(Step::Key(chars[start..end].iter().collect()));
                    i = end;
                }
                '[' => match chars.get(i + 1) {
                    Some('*') if chars.get(i + 2) == Some(&']') => {
                        steps.push(Step::Each);
                        i += 3;
                    }
                    Some(q @ ('\'' | '"')) => {
                        let (key, next) = quoted(path, &chars, i + 2, *q)?;
                        steps.push(Step::Key(key));
                        i = next;
                    }
                    Some(c) if c.is_ascii_digit() => {
                        let start = i + 1;
                        let mut end = start;
                        while end < chars.len() && chars[end].is_ascii_digit() {
                            end += 1;
                        }
                        if chars.get(end) != Some(&']') {
                            return Err(bad(path, end, "expected `]` after the index"));
                        }
                        let digits: String = chars[start..end].iter().collect();
                        let index = digits
                            .parse()
                            .map_err(|_| bad(path, start, "index too large"))?;
                        steps.push(Step::Index(index));
                        i = end + 1;
                    }
                    _ => return Err(bad(path, i + 1, "expected `*`, an index or a quoted name")),
                },
                other => return Err(bad(path, i, &format!("unexpected {other:?}"))),
            }
        }
        Ok(Self(steps))
    }
}

impl fmt::Display for Step {
    /// The step as a JSONPath writes it: `[*]`, `[2]`, `.name`, or `['any name']`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Each => f.write_str("[*]"),
            Step::Index(n) => write!(f, "[{n}]"),
            Step::Key(k) if !k.is_empty() && k.chars().all(|c| c.is_alphanumeric() || c == '_') => {
                write!(f, ".{k}")
            }
            Step::Key(k) => write!(f, "['{}']", k.replace('\\', "\\\\").replace('\'', "\\'")),
        }
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("$")?;
        self.0.iter().try_for_each(|step| write!(f, "{step}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_paths_of_fields_parse_and_print_back() {
        let path = JsonPath::parse("$.items[*].price").unwrap();
        assert_eq!(
            path.0,
            [
                Step::Key("items".into()),
                Step::Each,
                Step::Key("price".into())
            ]
        );
        for text in ["$[*].id", "$.a.b", "$['odd key'][0]", "$"] {
            assert_eq!(JsonPath::parse(text).unwrap().to_string(), text);
        }
        assert_eq!(JsonPath::parse("$[\"x\"]").unwrap().to_string(), "$.x");
        for bad in ["id", "$.", "$[", "$['open", "$[1", "$..a", "$.a b"] {
            assert!(JsonPath::parse(bad).is_err(), "{bad}");
        }
    }
}
