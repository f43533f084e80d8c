//! JSON sources: one object per line (NDJSON), or an array of objects read
//! element by element, never whole. A line or element that is not a JSON
//! object is a bad row at its line.

use std::borrow::Cow;
use std::io::{BufRead, BufReader, Read};

use anyhow::{Context, Result};
use medallion_jobs::DatasetColumn;
use std::collections::HashMap;

use serde_json::value::RawValue;

use super::row::{Emit, Row};

/// Reads each non-blank line of `reader` as one object.
pub fn read_ndjson(
    reader: impl Read,
    name: &str,
    columns: &[DatasetColumn],
    emit: &mut Emit<'_>,
) -> Result<()> {
    let mut reader = BufReader::new(reader);
    let mut line = Vec::new();
    let mut number = 0;
    loop {
        line.clear();
        let read = reader
            .read_until(b'\n', &mut line)
            .with_context(|| format!("{name}: cannot read line {}", number + 1))?;
        if read == 0 {
            return Ok(());
        }
        number += 1;
        let text = String::from_utf8_lossy(&line);
        let text = text.trim();
        if !text.is_empty() {
            object_row(number, text, columns, emit)?;
        }
    }
}

/// Reads a JSON array of objects, one element at a time.
pub fn read_json_array(
    reader: impl Read,
    name: &str,
    columns: &[DatasetColumn],
    emit: &mut Emit<'_>,
) -> Result<()> {
    let mut elements = Elements::new(BufReader::new(reader));
    elements
        .open()
        .with_context(|| format!("{name}: not a JSON array"))?;
    while let Some((line, text)) = elements
        .next_element()
        .with_context(|| format!("{name}: cannot read the JSON array"))?
    {
        object_row(line, &String::from_utf8_lossy(&text), columns, emit)?;
    }
    Ok(())
}

/// One object's values, in declared order: numbers exactly as written
/// (never through a float, so a decimal(38, 10) keeps every digit) and
/// booleans as their JSON text, a missing key or `null` as null.
fn object_row(line: u64, text: &str, columns: &[DatasetColumn], emit: &mut Emit<'_>) -> Result<()> {
    let values = match serde_json::from_str::<HashMap<String, &RawValue>>(text) {
        Ok(object) => columns
            .iter()
            .map(|column| match object.get(&column.name) {
                None => Ok(None),
                Some(raw) => {
                    scalar(raw.get()).map_err(|e| format!("column `{}`: {e}", column.name))
                }
            })
            .collect(),
        Err(e) => Err(format!("not a JSON object: {e}")),
    };
    let raw = || text.to_string();
    emit(Row {
        line,
        values,
        raw: &raw,
    })
}

/// A JSON value as the text a column parses: a string unescaped, a number
/// or a boolean as written, `null` as null.
fn scalar(json: &str) -> Result<Option<Cow<'static, str>>, String> {
    match json.as_bytes().first() {
        Some(b'"') => serde_json::from_str::<String>(json)
            .map(|s| Some(Cow::Owned(s)))
            .map_err(|e| e.to_string()),
        Some(b'[' | b'{') => Err("a nested array or object is not a value".into()),
        _ if json == "null" => Ok(None),
        _ => Ok(Some(Cow::Owned(json.to_string()))),
    }
}

/// The elements of a JSON array as their text, each with the line it
/// starts on: brackets and braces are counted outside strings, so an
/// element is found without parsing the whole array.
struct Elements<R> {
    reader: R,
    line: u64,
    done: bool,
}

impl<R: BufRead> Elements<R> {
    fn new(reader: R) -> Self {
        Self {
            reader,
            line: 1,
            done: false,
        }
    }

    fn byte(&mut self) -> Result<Option<u8>> {
        let buf = self.reader.fill_buf()?;
        let Some(&b) = buf.first() else {
            return Ok(None);
        };
        self.reader.consume(1);
        if b == b'\n' {
            self.line += 1;
        }
        Ok(Some(b))
    }

    /// The next byte that is not white space.
    fn skip_space(&mut self) -> Result<Option<u8>> {
        while let Some(b) = self.byte()? {
            if !b.is_ascii_whitespace() {
                return Ok(Some(b));
            }
        }
        Ok(None)
    }

    /// Reads up to and including the opening `[`.
    fn open(&mut self) -> Result<()> {
        match self.skip_space()? {
            Some(b'[') => Ok(()),
            Some(b) => anyhow::bail!(
                "it starts with `{}`, not `[`; send one object per line as .ndjson",
                b as char
            ),
            None => anyhow::bail!("it is empty"),
        }
    }

    /// The next element and its line, or `None` after the closing `]`.
    fn next_element(&mut self) -> Result<Option<(u64, Vec<u8>)>> {
        if self.done {
            return Ok(None);
        }
        let mut first = self.skip_space()?;
        if first == Some(b',') {
            first = self.skip_space()?;
        }
        let Some(first) = first.filter(|b| *b != b']') else {
            self.done = true;
            return Ok(None);
        };
        let line = self.line;
        let mut text = vec![first];
        let (mut depth, mut in_string, mut escaped) = (0i64, false, false);
        let mut current = Some(first);
        while let Some(b) = current {
            if in_string {
                match b {
                    _ if escaped => escaped = false,
                    b'\\' => escaped = true,
                    b'"' => in_string = false,
                    _ => {}
                }
            } else {
                match b {
                    b'"' => in_string = true,
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => depth -= 1,
                    _ => {}
                }
            }
            if depth <= 0 && !in_string {
                // A scalar element ends at the next `,` or `]`; an object
                // or array at its closing bracket.
                if depth < 0 || (b == b',' && text.len() > 1) {
                    self.done = depth < 0;
                    text.pop();
                    return Ok(Some((line, text)));
                }
                if matches!(b, b'}' | b']') {
                    return Ok(Some((line, text)));
                }
            }
            current = self.byte()?;
            if let Some(next) = current {
                text.push(next);
            }
        }
        self.done = true;
        Ok(Some((line, text)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elements(text: &str) -> Vec<(u64, String)> {
        let mut elements = Elements::new(text.as_bytes());
        elements.open().unwrap();
        let mut found = Vec::new();
        while let Some((line, text)) = elements.next_element().unwrap() {
            found.push((line, String::from_utf8(text).unwrap()));
        }
        found
    }

    #[test]
    fn numbers_keep_every_digit_they_were_written_with() {
        let text = r#"{"big": 12345678901234567890.1234567891, "n": 9007199254740993, "s": "a\"b", "none": null}"#;
        let object: HashMap<String, &RawValue> = serde_json::from_str(text).unwrap();
        let value = |key: &str| scalar(object[key].get()).unwrap().map(|v| v.into_owned());
        assert_eq!(
            value("big").as_deref(),
            Some("12345678901234567890.1234567891")
        );
        assert_eq!(value("n").as_deref(), Some("9007199254740993"));
        assert_eq!(value("s").as_deref(), Some("a\"b"));
        assert_eq!(value("none"), None);
        assert!(scalar("[1]").is_err() && scalar("{}").is_err());
    }

    #[test]
    fn array_elements_are_found_with_their_lines() {
        assert_eq!(
            elements("[\n {\"a\": \"x]}\"},\n {\"a\": [1, 2]}\n]"),
            [
                (2, "{\"a\": \"x]}\"}".into()),
                (3, "{\"a\": [1, 2]}".into())
            ]
        );
        assert_eq!(elements("[]"), []);
        assert_eq!(
            elements("[1, {\"a\":1}]"),
            [(1, "1".into()), (1, "{\"a\":1}".into())]
        );
    }
}
