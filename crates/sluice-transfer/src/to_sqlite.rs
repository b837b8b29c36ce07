//! Loading a dump into a new SQLite data folder (a restore, or the round trip the tests take):
//! the store creates the schema, then every row goes in one transaction with its values as they
//! were.

use std::io::BufRead;
use std::path::Path;

use rusqlite::ToSql;
use rusqlite::types::{ToSqlOutput, ValueRef};
use sluice_core::tables::Catalog;

use crate::{Reader, Result, Role, Summary, TransferError, Value, role};
use sluice_sqlite::{DATABASE_FILE, SqliteOptions, SqliteStore};
use sluice_store::Imports;
use sluice_store::Maintenance;
use sluice_store::audit_set;

impl ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Value::Null => ValueRef::Null,
            Value::Integer(i) => ValueRef::Integer(*i),
            Value::Text(s) => ValueRef::Text(s.as_bytes()),
            Value::Bytes(b) => ValueRef::Blob(&b.0),
        }))
    }
}

/// Loads the dump read from `input` into the SQLite database of `data_dir`, which must hold no
/// rows yet (a new folder).
pub async fn load_sqlite(data_dir: &Path, input: impl BufRead, mut progress: impl FnMut(&str, u64)) -> Result<Summary> {
    let mut reader = Reader::open(input)?;
    let catalog = Catalog::builtin();
    let roles = reader.header.tables.iter().map(|t| role(&catalog, t)).collect::<Result<Vec<_>>>()?;
    let store = SqliteStore::open(data_dir, SqliteOptions::default())?;
    for r in &roles {
        if let Role::Staging(schema) = r {
            store.prepare_staging(schema.clone()).await?;
        }
    }
    store.close().await;

    let mut conn = rusqlite::Connection::open(data_dir.join(DATABASE_FILE))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let tx = conn.transaction()?;
    let mut statements = Vec::with_capacity(roles.len());
    // Per table, per dump column: whether its value is inserted.
    let mut kept: Vec<Vec<bool>> = Vec::with_capacity(roles.len());
    for (table, r) in reader.header.tables.iter().zip(&roles) {
        let stored = audit_set::stored_in(&table.name);
        // (name, generated) of the target's columns.
        let existing: Vec<(String, bool)> = tx
            .prepare("SELECT name, hidden IN (2, 3) FROM pragma_table_xinfo(?1) WHERE hidden != 1")?
            .query_map([stored], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        // Where each dump column goes: its own column; for a generated one, the stored column
        // `sluice_{name}` behind it (sys_audit's reason), or nowhere (it is derived again).
        let mut targets = Vec::with_capacity(table.columns.len());
        for c in &table.columns {
            let twin = format!("sluice_{}", c.name);
            targets.push(match existing.iter().find(|(name, _)| *name == c.name) {
                None => {
                    return Err(TransferError::Unsupported(format!(
                        "{}.{} is not a column of this sluice",
                        table.name, c.name
                    )));
                }
                Some((_, false)) => Some(c.name.clone()),
                Some((_, true)) => existing.iter().any(|(name, _)| *name == twin).then_some(twin),
            });
        }
        kept.push(targets.iter().map(Option::is_some).collect::<Vec<bool>>());
        if matches!(r, Role::Seeded) {
            tx.execute(&format!("DELETE FROM \"{stored}\""), [])?;
        } else if tx.query_row(&format!("SELECT EXISTS (SELECT 1 FROM \"{}\")", table.name), [], |row| row.get(0))? {
            return Err(TransferError::NotEmpty(table.name.clone()));
        }
        let names = targets.iter().flatten().map(|c| format!("\"{c}\"")).collect::<Vec<_>>().join(", ");
        let marks = vec!["?"; targets.iter().flatten().count()].join(", ");
        statements.push(format!("INSERT INTO \"{stored}\" ({names}) VALUES ({marks})"));
    }
    let mut counts = vec![0u64; roles.len()];
    while let Some((index, values)) = reader.next_row()? {
        let values = values.iter().zip(&kept[index]).filter(|(_, kept)| **kept).map(|(v, _)| v);
        tx.prepare_cached(&statements[index])?.execute(rusqlite::params_from_iter(values))?;
        counts[index] += 1;
    }
    tx.commit()?;
    let mut summary = Summary::default();
    for (table, count) in reader.header.tables.iter().zip(counts) {
        progress(&table.name, count);
        summary.tables += 1;
        summary.rows += count;
    }
    Ok(summary)
}
