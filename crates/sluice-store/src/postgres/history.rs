//! History: one `sys_audit` row per changed field (all of a change in one statement), and
//! `sys_journal_field` entries for journal fields, written in the same transaction as the change.

use sluice_core::rules::{self, Actor, Applied};
use sluice_core::schema::TableSchema;
use sluice_core::tables::{self, Catalog};
use sluice_core::{DateTime, SysId};
use sqlx::PgConnection;

use super::records::{self, storable};

/// What caused a change: an inbound staging row, or a Table API call (empty table and row).
pub struct Source<'a> {
    pub table: &'a str,
    pub row: &'a str,
    pub reason: String,
}

pub async fn audit(
    c: &mut PgConnection,
    target: &TableSchema,
    applied: &Applied,
    actor: &Actor,
    now: DateTime,
    source: &Source<'_>,
) -> Result<(), sqlx::Error> {
    audit_many(c, &[Audited { table: &target.name, applied, actor, now, source }]).await
}

/// One change to audit: the record as changed and who changed it, and why.
pub struct Audited<'a> {
    pub table: &'a str,
    pub applied: &'a Applied,
    pub actor: &'a Actor,
    pub now: DateTime,
    pub source: &'a Source<'a>,
}

/// The audit rows of several changes (a batch of imports) in one statement of fixed text.
pub async fn audit_many(c: &mut PgConnection, changes: &[Audited<'_>]) -> Result<(), sqlx::Error> {
    let n: usize = changes.iter().map(|a| a.applied.changes.len()).sum();
    if n == 0 {
        return Ok(());
    }
    let mut columns: [Vec<String>; 13] = std::array::from_fn(|_| Vec::with_capacity(n));
    for a in changes {
        let record = &a.applied.record;
        let checkpoint = record.get("sys_mod_count").map(String::as_str).unwrap_or("0");
        let document = record.get("sys_id").map(String::as_str).unwrap_or("");
        let now = a.now.to_string();
        for ch in &a.applied.changes {
            let id = SysId::generate().into_string();
            let row = [
                id[..18].to_owned(),
                id,
                ch.field.clone(),
                storable(&ch.old).into_owned(),
                storable(&ch.new).into_owned(),
                a.table.to_owned(),
                document.to_owned(),
                a.actor.user_name.clone(),
                a.source.reason.clone(),
                checkpoint.to_owned(),
                a.source.table.to_owned(),
                a.source.row.to_owned(),
                now.clone(),
            ];
            for (column, value) in columns.iter_mut().zip(row) {
                column.push(value);
            }
        }
    }
    let mut q = sqlx::query(
        "INSERT INTO sys_audit (internal_checkpoint, sys_id, fieldname, oldvalue, newvalue, tablename, documentkey,
             \"user\", reason, record_checkpoint, source_table, source_row,
             sys_created_on, sys_created_by, sys_updated_on, sys_updated_by, sys_mod_count)
         SELECT internal, id, field, old, new, tbl, doc, usr, reason, NULLIF(ckpt, '')::bigint, stbl, srow,
             at, usr, at, usr, 0
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
             $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[])
             AS t(internal, id, field, old, new, tbl, doc, usr, reason, ckpt, stbl, srow, at)",
    );
    for column in columns {
        q = q.bind(column);
    }
    q.execute(c).await?;
    Ok(())
}

/// Appends journal entries (`element`, text) for one record.
pub async fn journal(
    c: &mut PgConnection,
    catalog: &Catalog,
    table: &str,
    element_id: &str,
    entries: &[(String, String)],
    actor: &Actor,
    now: DateTime,
) -> Result<(), sqlx::Error> {
    let schema = catalog.get(tables::SYS_JOURNAL_FIELD).expect("built-in table");
    for (element, value) in entries {
        let row = rules::insert_simple(
            schema,
            &[("name", table), ("element", element), ("element_id", element_id), ("value", value)],
            actor,
            now,
        );
        records::insert(c, schema, &row).await?;
    }
    Ok(())
}
