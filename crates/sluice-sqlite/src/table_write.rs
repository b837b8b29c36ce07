//! A Table API write inside the writer's transaction: resolve references given by name, apply
//! the table's business rules, write the record, its audit rows and journal entries.

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension};
use sluice_core::SysId;
use sluice_core::number;
use sluice_core::rules::{self, Applied};
use sluice_core::schema::{FieldKind, TableSchema};
use sluice_core::tables::{self, Catalog};

use crate::import::next_number;
use crate::{history, records};
use sluice_store::{TableWrite, WriteOp, WriteResult};

/// A reference value that is not the sys_id of an existing record is looked up by the referenced
/// table's display field (users also by user name and e-mail); when nothing matches, the field
/// is left out of the change.
fn resolve_references(
    conn: &Connection,
    catalog: &Catalog,
    schema: &TableSchema,
    values: &BTreeMap<String, String>,
) -> rusqlite::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for (field, value) in values {
        let Some(FieldKind::Reference(table)) = schema.field(field).map(|f| &f.kind) else {
            out.insert(field.clone(), value.clone());
            continue;
        };
        let Some(referenced) = catalog.get(table) else { continue };
        if value.is_empty() {
            out.insert(field.clone(), String::new());
            continue;
        }
        if SysId::is_valid(value) && records::get(conn, referenced, value)?.is_some() {
            out.insert(field.clone(), value.clone());
            continue;
        }
        let mut match_fields = vec![referenced.display_field.as_str()];
        if referenced.name == tables::SYS_USER {
            match_fields.extend(["user_name", "email"]);
        }
        for m in match_fields {
            let sql =
                format!("SELECT sys_id FROM {} WHERE {m} = ?1 COLLATE NOCASE ORDER BY rowid LIMIT 1", referenced.name);
            if let Some(id) = conn.prepare_cached(&sql)?.query_row([value], |r| r.get::<_, String>(0)).optional()? {
                out.insert(field.clone(), id);
                break;
            }
        }
    }
    Ok(out)
}

pub fn run(conn: &Connection, catalog: &Catalog, w: &TableWrite) -> rusqlite::Result<WriteResult> {
    let schema = &w.table;
    let source = sluice_store::audit_set::Source { table: "", row: "", reason: "Table API" };
    match &w.op {
        WriteOp::Delete(sys_id) => {
            if records::get(conn, schema, sys_id)?.is_none() {
                return Ok(WriteResult::NotFound);
            }
            conn.prepare_cached(&format!("DELETE FROM {} WHERE sys_id = ?1", schema.name))?.execute([sys_id])?;
            Ok(WriteResult::Deleted)
        }
        WriteOp::Insert => {
            let values = resolve_references(conn, catalog, schema, &w.values)?;
            let mut applied = match rules::insert(schema, &values, &w.actor, w.now) {
                Ok(a) => a,
                Err(v) => return Ok(WriteResult::Refused(v)),
            };
            if schema.name == tables::INCIDENT {
                applied.assign_number(&next_number(conn, number::INCIDENT_PREFIX)?);
            }
            records::insert(conn, schema, &applied.record)?;
            finish(conn, catalog, schema, &applied, w, &source)
        }
        WriteOp::Update(sys_id) => {
            let Some(existing) = records::get(conn, schema, sys_id)? else {
                return Ok(WriteResult::NotFound);
            };
            let values = resolve_references(conn, catalog, schema, &w.values)?;
            let mut applied = match rules::update(schema, &existing, &values, &w.actor, w.now) {
                Ok(a) => a,
                Err(v) => return Ok(WriteResult::Refused(v)),
            };
            if applied.changes.is_empty() && !w.journal.is_empty() {
                // A journal entry alone is an update of the record, as in ServiceNow.
                rules::touch(&mut applied.record, &w.actor, w.now);
            }
            let mut set: Vec<(&str, &str)> =
                applied.changes.iter().map(|c| (c.field.as_str(), c.new.as_str())).collect();
            if applied.record.get("sys_mod_count") != existing.get("sys_mod_count") {
                for f in ["sys_mod_count", "sys_updated_on", "sys_updated_by"] {
                    set.push((f, &applied.record[f]));
                }
            }
            records::update(conn, schema, sys_id, &set)?;
            finish(conn, catalog, schema, &applied, w, &source)
        }
    }
}

fn finish(
    conn: &Connection,
    catalog: &Catalog,
    schema: &TableSchema,
    applied: &Applied,
    w: &TableWrite,
    source: &sluice_store::audit_set::Source<'_>,
) -> rusqlite::Result<WriteResult> {
    history::audit(conn, schema, applied, &w.actor, w.now, source)?;
    let entries: Vec<(String, String)> = w.journal.iter().filter(|(_, v)| !v.trim().is_empty()).cloned().collect();
    history::journal(conn, catalog, &schema.name, &applied.record["sys_id"], &entries, &w.actor, w.now)?;
    Ok(WriteResult::Written(applied.record.clone()))
}
