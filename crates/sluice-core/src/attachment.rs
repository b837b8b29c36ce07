//! Attachments (ServiceNow's `sys_attachment`): which tables take them, what a file name may be,
//! and the content type a file is stored and served with, decided from its bytes. A client's
//! declared type is never trusted on its own: bytes labelled `text/html` are stored as what they
//! are (`text/plain` or `application/octet-stream`), so a browser cannot be made to run them.

use crate::tables;

/// Tables whose records take attachments: the tables the Table API writes. The others
/// (history, journal, choices, import sets, staging rows, attachments themselves) are records
/// the system keeps, not ones people attach evidence to.
pub const ATTACHABLE: &[&str] = &[tables::INCIDENT, tables::SYS_USER, tables::SYS_USER_GROUP, tables::CMDB_CI];

/// Whether records of `table` take attachments.
pub fn attachable(table: &str) -> bool {
    ATTACHABLE.contains(&table)
}

/// Longest file name, in characters (the `file_name` field's length).
pub const MAX_FILE_NAME: usize = 255;

/// A file name as given by the client: 1 to [`MAX_FILE_NAME`] characters, no control
/// characters (no line breaks to split a header with, no NUL). Kept as given otherwise; it is
/// encoded wherever it leaves (`Content-Disposition`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidFileName {
    #[error("the file name is empty")]
    Empty,
    #[error("the file name is longer than {MAX_FILE_NAME} characters")]
    TooLong,
    #[error("the file name contains a control character")]
    Control,
}

impl FileName {
    pub fn parse(s: &str) -> Result<Self, InvalidFileName> {
        if s.trim().is_empty() {
            return Err(InvalidFileName::Empty);
        }
        if s.chars().count() > MAX_FILE_NAME {
            return Err(InvalidFileName::TooLong);
        }
        if s.chars().any(char::is_control) {
            return Err(InvalidFileName::Control);
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Files recognised by their first bytes.
const MAGIC: &[(&[u8], &str)] = &[
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
    (b"PK\x03\x04", ZIP),
    (b"PK\x05\x06", ZIP),
    (b"PK\x07\x08", ZIP),
    (b"\x1f\x8b", "application/gzip"),
];

const ZIP: &str = "application/zip";
const TEXT: &str = "text/plain";
const BINARY: &str = "application/octet-stream";

/// Declared types taken over the sniffed one when the bytes are of the family they name: the
/// Office and OpenDocument formats are zip files, these text formats are plain text. None of
/// them is rendered as active content by a browser.
const REFINEMENTS: &[(&str, &str)] = &[
    (ZIP, "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    (ZIP, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    (ZIP, "application/vnd.openxmlformats-officedocument.presentationml.presentation"),
    (ZIP, "application/vnd.oasis.opendocument.text"),
    (ZIP, "application/vnd.oasis.opendocument.spreadsheet"),
    (TEXT, "text/csv"),
    (TEXT, "application/json"),
    (TEXT, "text/markdown"),
];

/// Whether the bytes read as text: UTF-8 without control characters other than tab, line
/// breaks and form feed (a BOM is fine).
fn is_text(bytes: &[u8]) -> bool {
    match std::str::from_utf8(bytes) {
        Ok(text) => !text.chars().any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\x0c')),
        Err(_) => false,
    }
}

/// The content type the bytes are stored and served with: a known magic number's type, else
/// `text/plain` for text, else `application/octet-stream` (also for an empty file). `declared`
/// (the client's `Content-Type`, parameters ignored) is taken only when it refines the sniffed
/// family ([`REFINEMENTS`]).
pub fn content_type(bytes: &[u8], declared: &str) -> &'static str {
    let sniffed = match MAGIC.iter().find(|(magic, _)| bytes.starts_with(magic)) {
        Some((_, kind)) => kind,
        None if !bytes.is_empty() && is_text(bytes) => TEXT,
        None => BINARY,
    };
    let declared = declared.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    REFINEMENTS
        .iter()
        .find(|(family, refined)| *family == sniffed && *refined == declared)
        .map_or(sniffed, |(_, refined)| refined)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bytes_decide_the_type() {
        assert_eq!(content_type(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "text/html"), "image/png");
        assert_eq!(content_type(b"\xff\xd8\xff\xe0\0\x10JFIF", ""), "image/jpeg");
        assert_eq!(content_type(b"GIF89a\x01\0", "image/png"), "image/gif");
        assert_eq!(content_type(b"%PDF-1.7\n", "application/octet-stream"), "application/pdf");
        assert_eq!(content_type(b"PK\x03\x04\x14\0", ""), "application/zip");
        assert_eq!(content_type(b"\x1f\x8b\x08\0", ""), "application/gzip");
        assert_eq!(content_type("disk full on db-01\r\nsee log\n".as_bytes(), ""), "text/plain");
        assert_eq!(content_type(&[0, 1, 2, 0xfe], "image/png"), "application/octet-stream");
        assert_eq!(content_type(b"", "text/plain"), "application/octet-stream");
    }

    #[test]
    fn a_declared_type_is_never_trusted_for_active_content() {
        let html = b"<html><script>alert(1)</script></html>";
        for declared in ["text/html", "text/html; charset=utf-8", "image/svg+xml", "application/xhtml+xml"] {
            assert_eq!(content_type(html, declared), "text/plain", "{declared}");
        }
        assert_eq!(content_type(b"<svg onload=alert(1)>\0", "image/svg+xml"), "application/octet-stream");
    }

    #[test]
    fn a_declared_type_refines_its_own_family_only() {
        let docx = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
        assert_eq!(content_type(b"PK\x03\x04rest", docx), docx);
        assert_eq!(content_type(b"a,b\n1,2\n", "Text/CSV; charset=utf-8"), "text/csv");
        assert_eq!(content_type(b"{\"a\": 1}", "application/json"), "application/json");
        // Not of the family it claims: the sniffed type stays.
        assert_eq!(content_type(b"plain words", docx), "text/plain");
        assert_eq!(content_type(&[0xff, 0xfe, 0], "text/csv"), "application/octet-stream");
    }

    #[test]
    fn file_names_are_checked_at_the_edge() {
        assert_eq!(FileName::parse("disk report.pdf").unwrap().as_str(), "disk report.pdf");
        assert!(FileName::parse("Überlauf – Protokoll.txt").is_ok());
        assert_eq!(FileName::parse("  "), Err(InvalidFileName::Empty));
        assert_eq!(FileName::parse("a\r\nSet-Cookie: x"), Err(InvalidFileName::Control));
        assert_eq!(FileName::parse("a\0b"), Err(InvalidFileName::Control));
        assert_eq!(FileName::parse(&"x".repeat(256)), Err(InvalidFileName::TooLong));
        assert!(FileName::parse(&"é".repeat(255)).is_ok());
    }

    #[test]
    fn incidents_take_attachments_and_system_tables_do_not() {
        assert!(attachable("incident") && attachable("cmdb_ci"));
        assert!(!attachable("sys_audit") && !attachable("sys_attachment") && !attachable("u_incident_import"));
    }
}
