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
    if applied.changes.is_empty() {
        return Ok(());
    }
    let record = &applied.record;
    let checkpoint = record.get("sys_mod_count").map(String::as_str).unwrap_or("0");
    let document = record.get("sys_id").map(String::as_str).unwrap_or("");
    let ids: Vec<String> = applied.changes.iter().map(|_| SysId::generate().into_string()).collect();
    let internal: Vec<String> = ids.iter().map(|id| id[..18].to_owned()).collect();
    let fields: Vec<String> = applied.changes.iter().map(|ch| ch.field.clone()).collect();
    let old: Vec<String> = applied.changes.iter().map(|ch| storable(&ch.old).into_owned()).collect();
    let new: Vec<String> = applied.changes.iter().map(|ch| storable(&ch.new).into_owned()).collect();
    sqlx::query(
        "INSERT INTO sys_audit (sys_id, tablename, documentkey, fieldname, oldvalue, newvalue, \"user\", reason,
             record_checkpoint, internal_checkpoint, source_table, source_row,
             sys_created_on, sys_created_by, sys_updated_on, sys_updated_by, sys_mod_count)
         SELECT id, $6, $7, field, old, new, $8, $9, NULLIF($10, '')::bigint, internal, $11, $12, $13, $8, $13, $8, 0
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) AS t(id, field, old, new, internal)",
    )
    .bind(ids)
    .bind(fields)
    .bind(old)
    .bind(new)
    .bind(internal)
    .bind(&target.name)
    .bind(document)
    .bind(&actor.user_name)
    .bind(&source.reason)
    .bind(checkpoint)
    .bind(source.table)
    .bind(source.row)
    .bind(now.to_string())
    .execute(c)
    .await?;
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
