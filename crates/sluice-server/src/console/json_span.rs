//! Where a JSON Pointer's value sits in a JSON text, as a byte span of the text exactly as it was
//! received, so the console can mark a failing field in the raw payload. The text is scanned, not
//! parsed into values: the span covers the value's own characters (quotes, escapes, nested
//! members) whatever its whitespace. A key given twice resolves to its last occurrence, as serde
//! (which judged the payload) reads it.

use std::ops::Range;

/// Deeper nesting than this is not looked into (serde refuses deeper payloads anyway).
const MAX_DEPTH: usize = 256;

/// The byte span of the value `pointer` (RFC 6901: `""` or `/a/0/b~1c`) names in `text`; `None`
/// when the pointer is malformed, names nothing, or the text is not JSON.
pub fn locate(text: &str, pointer: &str) -> Option<Range<usize>> {
    let tokens = tokens(pointer)?;
    let mut scanner = Scanner { bytes: text.as_bytes(), pos: 0 };
    let found = scanner.value(&tokens, 0).ok()?;
    scanner.skip_ws();
    (scanner.pos == scanner.bytes.len()).then_some(found).flatten()
}

/// The pointer's reference tokens, `~1` read as `/` and `~0` as `~`.
fn tokens(pointer: &str) -> Option<Vec<String>> {
    if pointer.is_empty() {
        return Some(Vec::new());
    }
    let rest = pointer.strip_prefix('/')?;
    rest.split('/')
        .map(|raw| {
            let mut out = String::with_capacity(raw.len());
            let mut chars = raw.chars();
            while let Some(c) = chars.next() {
                match c {
                    '~' => match chars.next() {
                        Some('0') => out.push('~'),
                        Some('1') => out.push('/'),
                        _ => return None,
                    },
                    c => out.push(c),
                }
            }
            Some(out)
        })
        .collect()
}

/// An array index token: `0` or digits without a leading zero (`-`, past the end, names nothing).
fn index(token: &str) -> Option<usize> {
    let plain =
        !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit()) && (token == "0" || !token.starts_with('0'));
    plain.then(|| token.parse().ok()).flatten()
}

/// The text is not JSON (or nests too deeply).
struct Malformed;

struct Scanner<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Scanner<'_> {
    fn skip_ws(&mut self) {
        while self.bytes.get(self.pos).is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn expect(&mut self, byte: u8) -> Result<(), Malformed> {
        self.skip_ws();
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(Malformed)
        }
    }

    /// Scans the value at the cursor; the span of what `path` names inside it (the value itself
    /// when `path` is empty).
    fn value(&mut self, path: &[String], depth: usize) -> Result<Option<Range<usize>>, Malformed> {
        if depth > MAX_DEPTH {
            return Err(Malformed);
        }
        self.skip_ws();
        let start = self.pos;
        let inner = match self.peek().ok_or(Malformed)? {
            b'{' => self.object(path, depth)?,
            b'[' => self.array(path, depth)?,
            b'"' => {
                self.string()?;
                None
            }
            _ => {
                self.scalar()?;
                None
            }
        };
        Ok(if path.is_empty() { Some(start..self.pos) } else { inner })
    }

    fn object(&mut self, path: &[String], depth: usize) -> Result<Option<Range<usize>>, Malformed> {
        self.pos += 1;
        let mut found = None;
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(None);
        }
        loop {
            self.skip_ws();
            let key = self.string()?;
            self.expect(b':')?;
            match path.split_first() {
                // The last occurrence of a key wins, even when it does not hold the rest of the path.
                Some((first, rest)) if *first == key => found = self.value(rest, depth + 1)?,
                _ => {
                    self.value(&[], depth + 1)?;
                }
            }
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(found);
                }
                _ => return Err(Malformed),
            }
        }
    }

    fn array(&mut self, path: &[String], depth: usize) -> Result<Option<Range<usize>>, Malformed> {
        self.pos += 1;
        let wanted = path.first().and_then(|t| index(t));
        let mut found = None;
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(None);
        }
        let mut i = 0;
        loop {
            if Some(i) == wanted {
                found = self.value(&path[1..], depth + 1)?;
            } else {
                self.value(&[], depth + 1)?;
            }
            i += 1;
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(found);
                }
                _ => return Err(Malformed),
            }
        }
    }

    /// A string at the cursor, decoded (keys are compared decoded).
    fn string(&mut self) -> Result<String, Malformed> {
        if self.peek() != Some(b'"') {
            return Err(Malformed);
        }
        self.pos += 1;
        let mut out = String::new();
        let mut units: Vec<u16> = Vec::new();
        loop {
            let b = self.peek().ok_or(Malformed)?;
            if b == b'\\' {
                let esc = self.bytes.get(self.pos + 1).copied().ok_or(Malformed)?;
                self.pos += 2;
                if esc == b'u' {
                    let hex = self.bytes.get(self.pos..self.pos + 4).ok_or(Malformed)?;
                    let hex = std::str::from_utf8(hex).map_err(|_| Malformed)?;
                    units.push(u16::from_str_radix(hex, 16).map_err(|_| Malformed)?);
                    self.pos += 4;
                    continue;
                }
                flush(&mut units, &mut out);
                out.push(match esc {
                    b'"' => '"',
                    b'\\' => '\\',
                    b'/' => '/',
                    b'b' => '\u{8}',
                    b'f' => '\u{c}',
                    b'n' => '\n',
                    b'r' => '\r',
                    b't' => '\t',
                    _ => return Err(Malformed),
                });
                continue;
            }
            flush(&mut units, &mut out);
            if b == b'"' {
                self.pos += 1;
                return Ok(out);
            }
            // Copy the whole UTF-8 character: the text is a `str`, so the sequence is valid.
            let len = match b {
                0x00..=0x7f => 1,
                0xc0..=0xdf => 2,
                0xe0..=0xef => 3,
                _ => 4,
            };
            let chunk = self.bytes.get(self.pos..self.pos + len).ok_or(Malformed)?;
            out.push_str(std::str::from_utf8(chunk).map_err(|_| Malformed)?);
            self.pos += len;
        }
    }

    /// A number, `true`, `false` or `null`: up to the next delimiter.
    fn scalar(&mut self) -> Result<(), Malformed> {
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.')) {
            self.pos += 1;
        }
        if self.pos == start { Err(Malformed) } else { Ok(()) }
    }
}

/// `\uXXXX` escapes collected so far, decoded as UTF-16 (surrogate pairs included).
fn flush(units: &mut Vec<u16>, out: &mut String) {
    if !units.is_empty() {
        out.extend(char::decode_utf16(units.drain(..)).map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at<'a>(text: &'a str, pointer: &str) -> Option<&'a str> {
        locate(text, pointer).map(|r| &text[r])
    }

    #[test]
    fn top_level_fields_with_their_quotes() {
        let text = r#"{"u_short_description": "Disk full", "u_impact": "9", "n": 12.5e3, "ok": true}"#;
        assert_eq!(at(text, "/u_impact"), Some(r#""9""#));
        assert_eq!(at(text, "/n"), Some("12.5e3"));
        assert_eq!(at(text, "/ok"), Some("true"));
        assert_eq!(at(text, ""), Some(text));
    }

    #[test]
    fn nested_objects_and_arrays() {
        let text = r#"{"alert": {"host": "db1", "tags": ["a", {"k": null}, [1, 2]]}}"#;
        assert_eq!(at(text, "/alert/host"), Some(r#""db1""#));
        assert_eq!(at(text, "/alert/tags/1/k"), Some("null"));
        assert_eq!(at(text, "/alert/tags/2/1"), Some("2"));
        assert_eq!(at(text, "/alert/tags/2"), Some("[1, 2]"));
        assert_eq!(at(text, "/alert"), Some(r#"{"host": "db1", "tags": ["a", {"k": null}, [1, 2]]}"#));
        assert_eq!(at(text, "/alert/tags/3"), None, "past the end");
        assert_eq!(at(text, "/alert/tags/01"), None, "a leading zero is not an index");
        assert_eq!(at(text, "/alert/tags/-"), None);
        assert_eq!(at(text, "/alert/host/x"), None, "a string has no members");
    }

    #[test]
    fn escaped_keys() {
        let text = r#"{"a/b": 1, "m~n": 2, "~1": 3, "": 4}"#;
        assert_eq!(at(text, "/a~1b"), Some("1"));
        assert_eq!(at(text, "/m~0n"), Some("2"));
        assert_eq!(at(text, "/~01"), Some("3"), "~01 is ~ then 1, not /");
        assert_eq!(at(text, "/"), Some("4"), "the empty key");
        assert_eq!(at(text, "/m~2n"), None, "a malformed escape");
        assert_eq!(at(text, "a~1b"), None, "a pointer starts with /");
    }

    #[test]
    fn strings_with_escapes_in_keys_and_values() {
        let text = r#"{"q\"uote": "say \"hi\" \\ \u00e9", "caf\u00e9": "x", "😀": "\ud83d\ude00 \"}", "after": 1}"#;
        assert_eq!(at(text, "/q\"uote"), Some(r#""say \"hi\" \\ \u00e9""#));
        assert_eq!(at(text, "/café"), Some(r#""x""#), "keys compare decoded");
        assert_eq!(at(text, "/😀"), Some(r#""\ud83d\ude00 \"}""#));
        assert_eq!(at(text, "/after"), Some("1"), "a brace inside a string does not end the object");
    }

    #[test]
    fn whitespace_anywhere() {
        let text = "\n {\r\n\t\"a\"  :\n  [ 1 ,\n\t\"two\" ]  , \"b\" : { } }\n";
        assert_eq!(at(text, "/a/1"), Some("\"two\""));
        assert_eq!(at(text, "/b"), Some("{ }"));
    }

    #[test]
    fn duplicate_keys_last_wins_as_serde_reads_them() {
        let text = r#"{"u_impact": "1", "x": 0, "u_impact": "9"}"#;
        assert_eq!(at(text, "/u_impact"), Some(r#""9""#));
        let value: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(value["u_impact"], "9");
        // The last one lacks the rest of the path: nothing, even though the first had it.
        assert_eq!(at(r#"{"a": {"b": 1}, "a": {"c": 2}}"#, "/a/b"), None);
    }

    #[test]
    fn what_is_not_found_or_not_json() {
        assert_eq!(at(r#"{"a": 1}"#, "/b"), None);
        assert_eq!(at(r#"{"a": 1"#, "/a"), None, "truncated");
        assert_eq!(at(r#"{"a": 1} trailing"#, "/a"), None);
        assert_eq!(at("<record><u_impact>9</u_impact></record>", "/u_impact"), None, "XML");
        assert_eq!(at("", "/a"), None);
        assert_eq!(at(&"[".repeat(10_000), "/0"), None, "too deep, without overflowing the stack");
    }
}
