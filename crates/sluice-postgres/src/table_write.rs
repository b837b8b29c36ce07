//! A Table API write in one transaction: resolve references given by name, apply the table's
//! business rules, write the record (an updated or deleted record locked first, so concurrent
//! writers of it on any node take turns), its audit rows and journal entries.

use std::collections::BTreeMap;

use sluice_core::SysId;
use sluice_core::number;
use sluice_core::rules::{self, Applied};
use sluice_core::schema::{FieldKind, TableSchema};
use sluice_core::tables;
use sqlx::PgConnection;

use crate::import::next_number;
use crate::query::ident;
use crate::{Ctx, history, records};
use sluice_store::{TableWrite, WriteOp, WriteResult};

/// A reference value that is not the sys_id of an existing record is looked up by the referenced
/// table's display field (users also by user name and e-mail); when nothing matches, the field
/// is left out of the change.
async fn resolve_references(
    c: &mut PgConnection,
    ctx: &Ctx,
    schema: &TableSchema,
    values: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, sqlx::Error> {
    let mut out = BTreeMap::new();
    for (field, value) in values {
        let Some(FieldKind::Reference(table)) = schema.field(field).map(|f| &f.kind) else {
            out.insert(field.clone(), value.clone());
            continue;
        };
        let Some(referenced) = ctx.catalog.get(table) else { continue };
        if value.is_empty() {
            out.insert(field.clone(), String::new());
            continue;
        }
        if SysId::is_valid(value) && records::get(c, referenced, value).await?.is_some() {
            out.insert(field.clone(), value.clone());
            continue;
        }
        let mut match_fields = vec![referenced.display_field.as_str()];
        if referenced.name == tables::SYS_USER {
            match_fields.extend(["user_name", "email"]);
        }
        for m in match_fields {
            if let Some(id) = records::find_by(c, &referenced.name, m, value).await? {
                out.insert(field.clone(), id);
                break;
            }
        }
    }
    Ok(out)
}

pub async fn run(c: &mut PgConnection, ctx: &Ctx, w: &TableWrite) -> Result<WriteResult, sqlx::Error> {
    let schema = &w.table;
    let source = sluice_store::audit_set::Source { table: "", row: "", reason: "Table API" };
    match &w.op {
        WriteOp::Delete(sys_id) => {
            let deleted = records::sql(format!("DELETE FROM {} WHERE \"sys_id\" = $1", ident(&schema.name)))
                .bind(sys_id.clone())
                .execute(c)
                .await?
                .rows_affected();
            Ok(if deleted == 0 { WriteResult::NotFound } else { WriteResult::Deleted })
        }
        WriteOp::Insert => {
            let values = resolve_references(c, ctx, schema, &w.values).await?;
            let mut applied = match rules::insert(schema, &values, &w.actor, w.now) {
                Ok(a) => a,
                Err(v) => return Ok(WriteResult::Refused(v)),
            };
            if schema.name == tables::INCIDENT {
                applied.assign_number(&next_number(c, number::INCIDENT_PREFIX).await?);
            }
            records::insert(c, schema, &applied.record).await?;
            finish(c, ctx, schema, &applied, w, &source).await
        }
        WriteOp::Update(sys_id) => {
            let Some(existing) = records::get_for_update(c, schema, sys_id).await? else {
                return Ok(WriteResult::NotFound);
            };
            let values = resolve_references(c, ctx, schema, &w.values).await?;
            let mut applied = match rules::update(schema, &existing, &values, &w.actor, w.now) {
                Ok(a) => a,
                Err(v) => return Ok(WriteResult::Refused(v)),
            };
            if applied.changes.is_empty() && !w.journal.is_empty() {
                // A journal entry alone is an update of the record, as in ServiceNow.
                rules::touch(&mut applied.record, &w.actor, w.now);
            }
            let mut set: Vec<(&str, &str)> =
                applied.changes.iter().map(|ch| (ch.field.as_str(), ch.new.as_str())).collect();
            if applied.record.get("sys_mod_count") != existing.get("sys_mod_count") {
                for f in ["sys_mod_count", "sys_updated_on", "sys_updated_by"] {
                    set.push((f, &applied.record[f]));
                }
            }
            records::update(c, schema, sys_id, &set).await?;
            finish(c, ctx, schema, &applied, w, &source).await
        }
    }
}

async fn finish(
    c: &mut PgConnection,
    ctx: &Ctx,
    schema: &TableSchema,
    applied: &Applied,
    w: &TableWrite,
    source: &sluice_store::audit_set::Source<'_>,
) -> Result<WriteResult, sqlx::Error> {
    history::audit(c, schema, applied, &w.actor, w.now, source).await?;
    let entries: Vec<(String, String)> = w.journal.iter().filter(|(_, v)| !v.trim().is_empty()).cloned().collect();
    history::journal(c, &ctx.catalog, &schema.name, &applied.record["sys_id"], &entries, &w.actor, w.now).await?;
    Ok(WriteResult::Written(applied.record.clone()))
}
