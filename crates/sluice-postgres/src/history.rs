//! History: one stored row per change set, read as one `sys_audit` row per changed field,
//! written in the same transaction as the change (journal entries are plain `sys_journal_field`
//! records: `sluice_store::table_write`).

use sluice_core::DateTime;
use sluice_core::rules::{Actor, Applied};
use sluice_core::schema::TableSchema;
use sqlx::PgConnection;

use crate::records::{Column, Combined, storable};
use sluice_store::audit_set::{self, Source};

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

/// The audit of several changes (a batch of imports) in one statement of fixed text.
pub async fn audit_many(c: &mut PgConnection, changes: &[Audited<'_>]) -> Result<(), sqlx::Error> {
    let mut statement = Combined::default();
    if let Some(columns) = audit_columns(changes) {
        statement.add(audit_sql(1), columns);
    }
    statement.execute(c).await
}

/// The `INSERT` of change sets (one row per change, see [`sluice_store::audit_set`]), parameters
/// numbered from `first`, one array per column.
pub fn audit_sql(first: usize) -> String {
    let p: Vec<String> = (first..first + 10).map(|i| format!("${i}")).collect();
    format!(
        "INSERT INTO sluice_audit_set (sys_id, tablename, documentkey, \"user\", sluice_reason, record_checkpoint,
             source_table, source_row, sys_created_on, changes)
         SELECT * FROM UNNEST({}::text[], {}::text[], {}::text[], {}::text[], {}::text[], {}::bigint[], {}::text[],
             {}::text[], {}::text[], {}::text[])",
        p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9]
    )
}

/// The parameters of [`audit_sql`]; `None` when nothing changed.
pub fn audit_columns(changes: &[Audited<'_>]) -> Option<Vec<Column>> {
    let sets: Vec<&Audited<'_>> = changes.iter().filter(|a| !a.applied.changes.is_empty()).collect();
    if sets.is_empty() {
        return None;
    }
    let mut text: [Vec<String>; 9] = Default::default();
    let mut checkpoints = Vec::with_capacity(sets.len());
    for a in sets {
        let record = &a.applied.record;
        let values = [
            audit_set::set_id(),
            a.table.to_owned(),
            record.get("sys_id").cloned().unwrap_or_default(),
            a.actor.user_name.clone(),
            audit_set::stored_reason(a.source.table, a.source.row, a.source.reason).to_owned(),
            a.source.table.to_owned(),
            a.source.row.to_owned(),
            a.now.to_string(),
            audit_set::changes_json(a.applied, storable),
        ];
        for (column, value) in text.iter_mut().zip(values) {
            column.push(value);
        }
        checkpoints.push(record.get("sys_mod_count").and_then(|c| c.parse::<i64>().ok()).unwrap_or(0));
    }
    let [id, table, document, user, reason, source_table, source_row, at, json] = text;
    Some(vec![
        Column::Text(id),
        Column::Text(table),
        Column::Text(document),
        Column::Text(user),
        Column::Text(reason),
        Column::Int(checkpoints),
        Column::Text(source_table),
        Column::Text(source_row),
        Column::Text(at),
        Column::Text(json),
    ])
}
