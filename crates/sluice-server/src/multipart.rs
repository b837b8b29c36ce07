//! `multipart/form-data` (RFC 7578) read from a body already received within its size limit:
//! text fields, then one file part, which must be the last part, as ServiceNow's Attachment API
//! requires ("earlier parts should contain only metadata"). Hand-written rather than axum's
//! `multipart` feature: the body is whole in memory anyway (it is stored in one transaction),
//! and `multer` would add its own crates for a few boundary searches.

use std::ops::Range;

use memchr::memmem;

/// Most parts in one form: a few fields and the file.
const MAX_PARTS: usize = 32;
/// Longest header block of one part, in bytes.
const MAX_PART_HEADERS: usize = 8 * 1024;
/// Longest text field value, in bytes.
const MAX_FIELD_BYTES: usize = 4 * 1024;

/// A form's text fields, in order, and its file part.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Form {
    pub fields: Vec<(String, String)>,
    pub file: Option<FilePart>,
}

impl Form {
    /// The last value of a text field (empty values count as absent).
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.iter().rev().find(|(n, v)| n == name && !v.is_empty()).map(|(_, v)| v.as_str())
    }
}

/// The part with a `filename`: its name as given, its declared type and where its bytes are.
#[derive(Debug, PartialEq, Eq)]
pub struct FilePart {
    pub file_name: String,
    pub content_type: Option<String>,
    pub content: Range<usize>,
}

/// Why a form cannot be read; the text is the client's `detail`.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MultipartError(pub String);

fn bad(detail: impl Into<String>) -> MultipartError {
    MultipartError(detail.into())
}

/// The boundary of a `multipart/form-data` content type, if it is one.
pub fn boundary(content_type: &str) -> Option<String> {
    let mut parts = content_type.split(';');
    if !parts.next()?.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    let value = parts.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim().eq_ignore_ascii_case("boundary").then(|| v.trim().trim_matches('"').to_owned())
    })?;
    (1..=70).contains(&value.len()).then_some(value)
}

/// Reads the form in `body`, delimited by `boundary`.
pub fn parse(body: &[u8], boundary: &str) -> Result<Form, MultipartError> {
    let delimiter = format!("--{boundary}");
    let next_delimiter = format!("\r\n--{boundary}");
    let finder = memmem::Finder::new(next_delimiter.as_bytes());
    // The first delimiter opens the body or follows a preamble line.
    let mut at = if body.starts_with(delimiter.as_bytes()) {
        delimiter.len()
    } else {
        finder.find(body).ok_or_else(|| bad("the body holds no part delimited by the boundary"))? + next_delimiter.len()
    };
    let mut form = Form::default();
    for _ in 0..=MAX_PARTS {
        let rest = &body[at..];
        if rest.starts_with(b"--") {
            return if form.file.is_some() { Ok(form) } else { Err(bad("the form has no file part")) };
        }
        // Transport padding, then the line break ending the delimiter line.
        let padding = rest.iter().take_while(|b| matches!(b, b' ' | b'\t')).count();
        if !rest[padding..].starts_with(b"\r\n") {
            return Err(bad("a part delimiter is not followed by a line break"));
        }
        let start = at + padding + 2;
        let header_end = memmem::find(&body[start..(start + MAX_PART_HEADERS + 4).min(body.len())], b"\r\n\r\n")
            .map(|n| start + n)
            .or_else(|| body[start..].starts_with(b"\r\n").then_some(start.saturating_sub(2)))
            .ok_or_else(|| bad("a part's headers do not end (or exceed 8 KiB)"))?;
        let headers = std::str::from_utf8(&body[start..header_end.max(start)])
            .map_err(|_| bad("a part's headers are not UTF-8"))?;
        let content_start = header_end + 4;
        let content_end = content_start
            + finder.find(&body[content_start..]).ok_or_else(|| bad("the body ends before its closing delimiter"))?;
        if form.file.is_some() {
            return Err(bad(
                "the file part must be the last part of the form (send table_name and table_sys_id first)",
            ));
        }
        add_part(&mut form, headers, &body[content_start..content_end], content_start..content_end)?;
        at = content_end + next_delimiter.len();
    }
    Err(bad(format!("more than {MAX_PARTS} parts")))
}

fn add_part(form: &mut Form, headers: &str, content: &[u8], range: Range<usize>) -> Result<(), MultipartError> {
    let mut disposition = None;
    let mut content_type = None;
    for line in headers.split("\r\n").filter(|l| !l.is_empty()) {
        let (name, value) = line.split_once(':').ok_or_else(|| bad("a part header has no colon"))?;
        match name.trim().to_ascii_lowercase().as_str() {
            "content-disposition" => disposition = Some(value.trim()),
            "content-type" => content_type = Some(value.trim().to_owned()),
            _ => {}
        }
    }
    let disposition = disposition.ok_or_else(|| bad("a part has no Content-Disposition header"))?;
    let params = disposition_params(disposition)?;
    let param = |key: &str| params.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    let name = param("name").ok_or_else(|| bad("a part has no name"))?;
    match param("filename") {
        Some(file_name) => form.file = Some(FilePart { file_name, content_type, content: range }),
        None => {
            if content.len() > MAX_FIELD_BYTES {
                return Err(bad(format!("the field {name} is longer than {MAX_FIELD_BYTES} bytes")));
            }
            let value = std::str::from_utf8(content).map_err(|_| bad(format!("the field {name} is not UTF-8")))?;
            form.fields.push((name, value.to_owned()));
        }
    }
    Ok(())
}

/// `form-data; name="a"; filename="b.txt"` → `[("name", "a"), ("filename", "b.txt")]` (keys
/// lowercased, quoted strings unescaped).
fn disposition_params(value: &str) -> Result<Vec<(String, String)>, MultipartError> {
    let (kind, mut rest) = value.split_once(';').unwrap_or((value, ""));
    if !kind.trim().eq_ignore_ascii_case("form-data") {
        return Err(bad("a part's Content-Disposition is not form-data"));
    }
    let mut params = Vec::new();
    loop {
        rest = rest.trim_start_matches([' ', '\t', ';']);
        if rest.is_empty() {
            return Ok(params);
        }
        let (key, after) = rest.split_once('=').ok_or_else(|| bad("a Content-Disposition parameter has no value"))?;
        let key = key.trim().to_ascii_lowercase();
        let after = after.trim_start();
        let (value, tail) = match after.strip_prefix('"') {
            Some(quoted) => unquote(quoted)?,
            None => {
                let end = after.find(';').unwrap_or(after.len());
                (after[..end].trim().to_owned(), &after[end..])
            }
        };
        params.push((key, value));
        rest = tail;
    }
}

/// A quoted string's text (after its opening quote) and what follows its closing quote.
fn unquote(s: &str) -> Result<(String, &str), MultipartError> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, &s[i + 1..])),
            '\\' => out.extend(chars.next().map(|(_, c)| c)),
            c => out.push(c),
        }
    }
    Err(bad("a quoted Content-Disposition parameter does not end"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(parts: &[(&str, &str)], file: Option<(&str, &[u8])>, after: &str) -> Vec<u8> {
        let mut b = b"preamble\r\n".to_vec();
        for (name, value) in parts {
            b.extend(format!("--XyZ\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").as_bytes());
        }
        if let Some((name, content)) = file {
            b.extend(
                format!(
                    "--XyZ\r\nContent-Disposition: form-data; name=\"uploadFile\"; filename=\"{name}\"\r\n\
                     Content-Type: image/png\r\n\r\n"
                )
                .as_bytes(),
            );
            b.extend(content);
            b.extend(b"\r\n");
        }
        b.extend(after.as_bytes());
        b.extend(b"--XyZ--\r\n");
        b
    }

    #[test]
    fn fields_then_the_file() {
        let content = b"\x89PNG\r\n\x1a\n--XyZ after a bare LF is no delimiter\r\n\r\n";
        let raw = body(&[("table_name", "incident"), ("table_sys_id", "abc")], Some(("a \\\"b\\\".png", content)), "");
        let form = parse(&raw, "XyZ").unwrap();
        assert_eq!(form.field("table_name"), Some("incident"));
        assert_eq!(form.field("table_sys_id"), Some("abc"));
        let file = form.file.unwrap();
        assert_eq!(file.file_name, "a \"b\".png");
        assert_eq!(file.content_type.as_deref(), Some("image/png"));
        assert_eq!(&raw[file.content], content);
    }

    #[test]
    fn the_file_must_come_last_and_be_there() {
        let late = "--XyZ\r\nContent-Disposition: form-data; name=\"table_name\"\r\n\r\nincident\r\n";
        let err = parse(&body(&[], Some(("a.txt", b"x")), late), "XyZ").unwrap_err();
        assert!(err.0.contains("last part"), "{err}");
        let err = parse(&body(&[("table_name", "incident")], None, ""), "XyZ").unwrap_err();
        assert_eq!(err.0, "the form has no file part");
    }

    #[test]
    fn broken_bodies_are_refused() {
        assert!(parse(b"no delimiter at all", "XyZ").is_err());
        assert!(parse(b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nunterminated", "XyZ").is_err());
        assert!(parse(b"--XyZ\r\nContent-Disposition: attachment\r\n\r\nx\r\n--XyZ--", "XyZ").is_err());
        assert!(parse(b"--XyZ\r\nContent-Type: text/plain\r\n\r\nx\r\n--XyZ--", "XyZ").is_err());
        let many: String =
            (0..40).map(|i| format!("--XyZ\r\nContent-Disposition: form-data; name=\"f{i}\"\r\n\r\nv\r\n")).collect();
        assert!(parse(format!("{many}--XyZ--").as_bytes(), "XyZ").unwrap_err().0.contains("parts"));
    }

    #[test]
    fn the_boundary_comes_from_the_content_type() {
        assert_eq!(boundary("multipart/form-data; boundary=XyZ").as_deref(), Some("XyZ"));
        assert_eq!(boundary("Multipart/Form-Data; charset=utf-8; boundary=\"a b\"").as_deref(), Some("a b"));
        assert_eq!(boundary("multipart/mixed; boundary=XyZ"), None);
        assert_eq!(boundary("multipart/form-data"), None);
        assert_eq!(boundary(&format!("multipart/form-data; boundary={}", "x".repeat(71))), None);
    }
}
