//! Reading a SQLite data folder: the dump (one read transaction, so a live server's folder gives
//! a consistent snapshot) and the online backup (`VACUUM INTO`).

use std::io::Write;
use std::path::Path;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};

use crate::{Bytes, Column, ColumnKind, EndLine, FORMAT, FORMAT_VERSION, Header, Result, RowLine, Summary, TableInfo};
use crate::{TransferError, Value};
use sluice_core::tables;
use sluice_sqlite::DATABASE_FILE;
use sluice_store::audit_set;

pub(crate) fn schema_version() -> u32 {
    sluice_sqlite::SCHEMA_VERSION as u32
}

fn open(data_dir: &Path, flags: OpenFlags) -> Result<Connection> {
    let path = data_dir.join(DATABASE_FILE);
    if !path.is_file() {
        return Err(TransferError::Unsupported(format!("there is no sluice database in {}", data_dir.display())));
    }
    let conn = Connection::open_with_flags(&path, flags)?;
    // The server's writer may hold the lock for a moment (a checkpoint, a batch).
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    Ok(conn)
}

fn tables(conn: &Connection) -> Result<Vec<TableInfo>> {
    let names: Vec<String> = conn
        .prepare(
            "SELECT name FROM sqlite_schema WHERE (type = 'table' OR name = ?1) AND name NOT LIKE 'sqlite_%'
                 AND name NOT IN (?2, ?3, ?4, ?5) ORDER BY name",
        )?
        // `sys_audit` as readers see it, one row per field: the tables behind the view are this
        // version's storage, not the dump's format. Console sessions do not travel: a dump
        // loaded elsewhere carries no live logins. Nor do saved console filters (docs/console.md).
        .query_map(
            [tables::SYS_AUDIT, audit_set::FIELD_TABLE, audit_set::SET_TABLE, "sluice_session", "sluice_saved_filter"],
            |r| r.get(0),
        )?
        .collect::<rusqlite::Result<_>>()?;
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        // The columns a reader sees: generated ones included (sys_audit derives some), the
        // storage-only `sluice_*` columns of a catalogue table left out (a dump holds values).
        let columns = conn
            .prepare("SELECT name, upper(type), hidden FROM pragma_table_xinfo(?1) ORDER BY cid")?
            .query_map([&name], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?
            .into_iter()
            .filter(|(column, _, hidden)| match hidden {
                0 => (!column.starts_with("sluice_") || name.starts_with("sluice_")) && column != "rowid",
                2 | 3 => true,
                _ => false,
            })
            .map(|(name, kind, _)| {
                let kind = if kind.contains("INT") { ColumnKind::Integer } else { ColumnKind::Text };
                Column { name, kind }
            })
            .collect::<Vec<_>>();
        // Names come from the database's own catalogue; quoted all the same.
        let rows: i64 = conn.query_row(&format!("SELECT count(*) FROM \"{name}\""), [], |r| r.get(0))?;
        out.push(TableInfo { name, columns, rows: rows as u64 });
    }
    Ok(out)
}

fn value(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Integer(i),
        ValueRef::Real(f) => Value::Text(f.to_string()),
        ValueRef::Text(t) => match std::str::from_utf8(t) {
            Ok(s) => Value::Text(s.to_owned()),
            Err(_) => Value::Bytes(Bytes(t.to_vec())),
        },
        ValueRef::Blob(b) => Value::Bytes(Bytes(b.to_vec())),
    }
}

/// Writes every table of the SQLite database in `data_dir` to `out`, as one snapshot, calling
/// `progress` after each table with its name and row count.
pub fn export(data_dir: &Path, out: impl Write, mut progress: impl FnMut(&str, u64)) -> Result<Summary> {
    let mut conn = open(data_dir, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    // Every read below sees the database as of the first one (WAL: writers go on meanwhile).
    let tx = conn.transaction()?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version as u32 != schema_version() {
        return Err(TransferError::Unsupported(format!(
            "the database has schema version {version}, this sluice expects {}: run `sluice migrate --data {}` first",
            schema_version(),
            data_dir.display()
        )));
    }
    let header = Header {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        source: "sqlite".into(),
        schema_version: version as u32,
        created_on: sluice_core::DateTime::now().to_string(),
        tables: tables(&tx)?,
    };
    let mut out = std::io::BufWriter::with_capacity(1 << 16, out);
    serde_json::to_writer(&mut out, &header).map_err(std::io::Error::from)?;
    out.write_all(b"\n")?;
    let mut summary = Summary::default();
    for table in &header.tables {
        let columns = table.columns.iter().map(|c| format!("\"{}\"", c.name)).collect::<Vec<_>>().join(", ");
        // Insertion order, so that the target's own row order (and identity values) follow it.
        let mut stmt = tx.prepare(&format!("SELECT {columns} FROM \"{}\" ORDER BY rowid", table.name))?;
        let mut rows = stmt.query([])?;
        let mut count = 0;
        let mut line = RowLine { table: table.name.clone(), values: Vec::with_capacity(table.columns.len()) };
        while let Some(row) = rows.next()? {
            line.values.clear();
            for i in 0..table.columns.len() {
                line.values.push(value(row.get_ref(i)?));
            }
            serde_json::to_writer(&mut out, &line).map_err(std::io::Error::from)?;
            out.write_all(b"\n")?;
            count += 1;
        }
        progress(&table.name, count);
        summary.tables += 1;
        summary.rows += count;
    }
    serde_json::to_writer(&mut out, &EndLine { end: summary.rows }).map_err(std::io::Error::from)?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(summary)
}

/// Copies the SQLite database in `data_dir` to `dest` (a new file) while the server may be
/// writing: `VACUUM INTO` reads one snapshot and writes a compact, self-contained database.
/// Returns the copy's size in bytes.
pub fn backup(data_dir: &Path, dest: &Path) -> Result<u64> {
    if dest.exists() {
        return Err(TransferError::Unsupported(format!(
            "{} exists: the backup is written to a new file",
            dest.display()
        )));
    }
    let conn = open(data_dir, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    let target = dest.to_str().ok_or_else(|| TransferError::Unsupported("the backup path is not UTF-8".into()))?;
    conn.execute("VACUUM INTO ?1", [target])?;
    let copy = Connection::open(dest)?;
    let check: String = copy.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
    if check != "ok" {
        return Err(TransferError::Unsupported(format!("the copy fails SQLite's check: {check}")));
    }
    Ok(std::fs::metadata(dest)?.len())
}
