//! Moving a deployment between databases: `sluice export` writes every table of a SQLite data
//! folder to a portable dump, `sluice import` loads one into an empty PostgreSQL (or SQLite)
//! database; `sluice backup` copies a live SQLite database. The dump is JSON lines, streamed
//! both ways: a [`Header`] (format version, source schema version, every table with its columns
//! and row count), then one [`RowLine`] per row in insertion order, then an [`EndLine`] so a
//! truncated file is refused. Values keep their SQLite type: null, integer, text, or bytes as
//! `{"base64": ...}` (raw payloads). See docs/deployment.md.

mod export;
mod to_postgres;
mod to_sqlite;

use std::io::BufRead;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sluice_core::schema::{Field, FieldKind, TableSchema, is_identifier};
use sluice_core::tables::{self, Catalog};

pub use export::{backup, export};
pub use to_postgres::load_postgres;
pub use to_sqlite::load_sqlite;

/// The dump format this version writes and reads.
pub const FORMAT: &str = "sluice-dump";
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("line {line} of the dump: {message}")]
    Format { line: u64, message: String },
    #[error("the target database is not empty (table {0} has rows); import into a new database")]
    NotEmpty(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    Store(#[from] sluice_store::StoreError),
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database error: {0}")]
    Postgres(#[from] sqlx::Error),
}

pub type Result<T, E = TransferError> = std::result::Result<T, E>;

/// The first line of a dump.
#[derive(Debug, Serialize, Deserialize)]
pub struct Header {
    pub format: String,
    pub format_version: u32,
    /// Where the rows come from (`sqlite`) and its numbered schema steps (`PRAGMA user_version`).
    pub source: String,
    pub schema_version: u32,
    pub created_on: String,
    pub tables: Vec<TableInfo>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TableInfo {
    pub name: String,
    pub columns: Vec<Column>,
    pub rows: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    /// `integer` (SQLite INTEGER affinity) or `text`.
    #[serde(rename = "type")]
    pub kind: ColumnKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnKind {
    Integer,
    Text,
}

/// One row: its table and its values in the header's column order.
#[derive(Debug, Serialize, Deserialize)]
pub struct RowLine {
    #[serde(rename = "t")]
    pub table: String,
    #[serde(rename = "v")]
    pub values: Vec<Value>,
}

/// The last line: how many rows the dump holds.
#[derive(Debug, Serialize, Deserialize)]
pub struct EndLine {
    pub end: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    Null,
    Integer(i64),
    Text(String),
    Bytes(Bytes),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Bytes(pub Vec<u8>);

impl Serialize for Bytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use base64::Engine;
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(1))?;
        map.serialize_entry("base64", &base64::engine::general_purpose::STANDARD.encode(&self.0))?;
        map.end()
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use base64::Engine;
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Encoded {
            base64: String,
        }
        let encoded = Encoded::deserialize(d)?;
        base64::engine::general_purpose::STANDARD.decode(encoded.base64).map(Bytes).map_err(serde::de::Error::custom)
    }
}

/// Rows and tables moved, for the command's summary.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub tables: usize,
    pub rows: u64,
}

/// SQLite's record number counters; PostgreSQL keeps them in sequences.
pub(crate) const NUMBER_COUNTER: &str = "sys_number_counter";

/// What a table of the dump is to the importer.
pub(crate) enum Role {
    /// Created by the migrations (built-in tables and sluice's own).
    Known,
    /// Filled by the migrations too (`sys_choice` seeds, counters): emptied before the load.
    Seeded,
    /// An integration's staging table: created from the dump's columns.
    Staging(Arc<TableSchema>),
}

const OWN_TABLES: &[&str] = &[
    "sluice_idempotency",
    "sluice_api_token",
    "sluice_admin_audit",
    "sluice_stats",
    sluice_store::attachment::CONTENT_TABLE,
    sluice_store::outbox::TABLE,
];

pub(crate) fn role(catalog: &Catalog, table: &TableInfo) -> Result<Role> {
    if table.name == tables::SYS_CHOICE || table.name == NUMBER_COUNTER {
        return Ok(Role::Seeded);
    }
    if catalog.get(&table.name).is_some() || OWN_TABLES.contains(&table.name.as_str()) {
        return Ok(Role::Known);
    }
    let staging = is_identifier(&table.name)
        && table.columns.iter().all(|c| is_identifier(&c.name))
        && ["sys_id", "sys_import_set", "sys_import_row"].iter().all(|n| table.columns.iter().any(|c| c.name == *n));
    if !staging {
        return Err(TransferError::Unsupported(format!("the dump has an unknown table {:?}", table.name)));
    }
    let fields = table
        .columns
        .iter()
        .map(|c| {
            let kind = if c.kind == ColumnKind::Integer { FieldKind::Integer } else { FieldKind::String };
            Field::new(&c.name, &c.name, kind)
        })
        .collect();
    Ok(Role::Staging(Arc::new(TableSchema {
        name: table.name.clone(),
        label: table.name.clone(),
        display_field: "sys_id".into(),
        fields,
    })))
}

/// Reads a dump line by line: the header first, then rows until the end line.
pub(crate) struct Reader<R> {
    input: R,
    line: u64,
    buf: String,
    pub header: Header,
    rows: u64,
}

impl<R: BufRead> Reader<R> {
    pub fn open(mut input: R) -> Result<Self> {
        let mut buf = String::new();
        input.read_line(&mut buf)?;
        let header: Header = serde_json::from_str(&buf)
            .map_err(|e| TransferError::Format { line: 1, message: format!("not a sluice dump header: {e}") })?;
        if header.format != FORMAT || header.format_version != FORMAT_VERSION {
            return Err(TransferError::Unsupported(format!(
                "dump format {} version {}: this sluice reads {FORMAT} version {FORMAT_VERSION}",
                header.format, header.format_version
            )));
        }
        if header.source != "sqlite" {
            return Err(TransferError::Unsupported(format!("dumps from {:?} cannot be imported", header.source)));
        }
        let newest = export::schema_version();
        if header.schema_version > newest {
            return Err(TransferError::Unsupported(format!(
                "the dump has schema version {}, newer than this sluice's {newest}: import with a newer sluice",
                header.schema_version
            )));
        }
        Ok(Self { input, line: 1, buf, header, rows: 0 })
    }

    fn error(&self, message: impl Into<String>) -> TransferError {
        TransferError::Format { line: self.line, message: message.into() }
    }

    /// The next row (its table's index in the header), or `None` after the end line.
    pub fn next_row(&mut self) -> Result<Option<(usize, Vec<Value>)>> {
        self.buf.clear();
        if self.input.read_line(&mut self.buf)? == 0 {
            return Err(self.error("the dump ends without its end line: it is truncated"));
        }
        self.line += 1;
        if let Ok(end) = serde_json::from_str::<EndLine>(&self.buf) {
            if end.end != self.rows {
                return Err(self.error(format!("the end line counts {} rows, the dump holds {}", end.end, self.rows)));
            }
            return Ok(None);
        }
        let row: RowLine = serde_json::from_str(&self.buf).map_err(|e| self.error(e.to_string()))?;
        let Some(index) = self.header.tables.iter().position(|t| t.name == row.table) else {
            return Err(self.error(format!("a row of table {:?}, which the header does not list", row.table)));
        };
        if row.values.len() != self.header.tables[index].columns.len() {
            return Err(self.error(format!("a row of {} with the wrong number of values", row.table)));
        }
        self.rows += 1;
        Ok(Some((index, row.values)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_keep_their_type_through_json() {
        let line = RowLine {
            table: "t".into(),
            values: vec![
                Value::Null,
                Value::Integer(-7),
                Value::Text("42".into()),
                Value::Bytes(Bytes(vec![0, 159, 146, 150])),
            ],
        };
        let text = serde_json::to_string(&line).unwrap();
        assert_eq!(text, r#"{"t":"t","v":[null,-7,"42",{"base64":"AJ+Slg=="}]}"#);
        let back: RowLine = serde_json::from_str(&text).unwrap();
        assert_eq!(back.values, line.values);
    }

    fn dump(lines: &[&str]) -> std::io::Cursor<Vec<u8>> {
        std::io::Cursor::new(lines.join("\n").into_bytes())
    }

    const HEADER: &str = r#"{"format":"sluice-dump","format_version":1,"source":"sqlite","schema_version":1,
        "created_on":"","tables":[{"name":"t","columns":[{"name":"a","type":"text"}],"rows":1}]}"#;

    #[test]
    fn the_reader_checks_counts_tables_and_widths() {
        let header = HEADER.replace('\n', "");
        let mut ok = Reader::open(dump(&[&header, r#"{"t":"t","v":["x"]}"#, r#"{"end":1}"#])).unwrap();
        assert_eq!(ok.next_row().unwrap(), Some((0, vec![Value::Text("x".into())])));
        assert_eq!(ok.next_row().unwrap(), None);
        for (rows, needle) in [
            (vec![r#"{"t":"t","v":["x"]}"#, r#"{"end":2}"#], "counts 2 rows"),
            (vec![r#"{"t":"u","v":["x"]}"#], "does not list"),
            (vec![r#"{"t":"t","v":["x", 1]}"#], "wrong number"),
            (vec![r#"{"t":"t","v":["x"]}"#], "truncated"),
        ] {
            let mut lines = vec![header.as_str()];
            lines.extend(rows);
            let mut reader = Reader::open(dump(&lines)).unwrap();
            let error = loop {
                match reader.next_row() {
                    Ok(Some(_)) => continue,
                    Ok(None) => panic!("{needle}: accepted"),
                    Err(e) => break e.to_string(),
                }
            };
            assert!(error.contains(needle), "{error}");
        }
        let future = header.replace(r#""schema_version":1"#, r#""schema_version":999"#);
        assert!(Reader::open(dump(&[&future])).is_err());
        assert!(Reader::open(dump(&[r#"{"format":"other"}"#])).is_err());
    }
}
