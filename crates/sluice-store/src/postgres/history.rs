//! History: one `sys_audit` row per changed field (all of a change in one statement), and
//! `sys_journal_field` entries for journal fields, written in the same transaction as the change.

use sluice_core::rules::{self, Actor, Applied};
use sluice_core::schema::TableSchema;
use sluice_core::tables::{self, Catalog};
use sluice_core::{DateTime, SysId};
use sqlx::PgConnection;

use super::records::{self, Column, Combined, storable};

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
    let mut statement = Combined::default();
    if let Some(columns) = audit_columns(changes) {
        statement.add(audit_sql(1), columns);
    }
    statement.execute(c).await
}

/// The `INSERT` of audit rows, parameters numbered from `first`: the changes (sys_id, field, old
/// and new value, which record's), then what the changes of one record share, once per record
/// (fewer values to send and decode); `internal_checkpoint` is the sys_id's first 18 characters.
pub fn audit_sql(first: usize) -> String {
    let p = |i: usize| first + i;
    format!(
        "INSERT INTO sys_audit (sys_id, internal_checkpoint, fieldname, oldvalue, newvalue, tablename, documentkey,
             \"user\", reason, record_checkpoint, source_table, source_row,
             sys_created_on, sys_created_by, sys_updated_on, sys_updated_by, sys_mod_count)
         SELECT c.id, left(c.id, 18), c.field, c.old, c.new, j.tbl, j.doc, j.usr, j.reason,
             NULLIF(j.ckpt, '')::bigint, j.stbl, j.srow, j.at, j.usr, j.at, j.usr, 0
         FROM UNNEST(${}::text[], ${}::text[], ${}::text[], ${}::text[], ${}::bigint[]) WITH ORDINALITY
             AS c(id, field, old, new, job, n)
         JOIN UNNEST(${}::text[], ${}::text[], ${}::text[], ${}::text[], ${}::text[], ${}::text[], ${}::text[],
             ${}::text[]) WITH ORDINALITY AS j(tbl, doc, usr, reason, ckpt, stbl, srow, at, k) ON j.k = c.job
         ORDER BY c.n",
        p(0),
        p(1),
        p(2),
        p(3),
        p(4),
        p(5),
        p(6),
        p(7),
        p(8),
        p(9),
        p(10),
        p(11),
        p(12)
    )
}

/// The parameters of [`audit_sql`]; `None` when nothing changed.
pub fn audit_columns(changes: &[Audited<'_>]) -> Option<Vec<Column>> {
    let n: usize = changes.iter().map(|a| a.applied.changes.len()).sum();
    if n == 0 {
        return None;
    }
    let (mut ids, mut fields, mut old, mut new, mut job) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let mut shared: [Vec<String>; 8] = Default::default();
    for a in changes.iter().filter(|a| !a.applied.changes.is_empty()) {
        let record = &a.applied.record;
        let values = [
            a.table.to_owned(),
            record.get("sys_id").cloned().unwrap_or_default(),
            a.actor.user_name.clone(),
            a.source.reason.clone(),
            record.get("sys_mod_count").cloned().unwrap_or_else(|| "0".into()),
            a.source.table.to_owned(),
            a.source.row.to_owned(),
            a.now.to_string(),
        ];
        for (column, value) in shared.iter_mut().zip(values) {
            column.push(value);
        }
        let k = shared[0].len() as i64;
        for ch in &a.applied.changes {
            ids.push(SysId::generate().into_string());
            fields.push(ch.field.clone());
            old.push(storable(&ch.old).into_owned());
            new.push(storable(&ch.new).into_owned());
            job.push(k);
        }
    }
    let mut columns =
        vec![Column::Text(ids), Column::Text(fields), Column::Text(old), Column::Text(new), Column::Int(job)];
    columns.extend(shared.into_iter().map(Column::Text));
    Some(columns)
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
