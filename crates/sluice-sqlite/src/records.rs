//! Generic record reads and writes over a table schema. Table and column names come only from
//! schemas (checked identifiers); every value is a bound parameter.

use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, OptionalExtension, Row, Statement, ToSql, params_from_iter};
use sluice_core::Record;
use sluice_core::schema::TableSchema;
use sluice_core::tables::{self, Catalog};

use crate::query;
use sluice_store::{ListQuery, audit_set};

pub fn columns(schema: &TableSchema) -> String {
    schema.stored_fields().map(|f| f.name.as_str()).collect::<Vec<_>>().join(", ")
}

pub fn text(v: ValueRef<'_>) -> String {
    match v {
        ValueRef::Null => String::new(),
        ValueRef::Integer(i) => i.to_string(),
        ValueRef::Real(f) => f.to_string(),
        ValueRef::Text(t) | ValueRef::Blob(t) => String::from_utf8_lossy(t).into_owned(),
    }
}

pub fn from_row(schema: &TableSchema, row: &Row<'_>) -> rusqlite::Result<Record> {
    let mut record = Record::new();
    for (i, f) in schema.stored_fields().enumerate() {
        record.insert(f.name.clone(), text(row.get_ref(i)?));
    }
    Ok(record)
}

/// The `INSERT` of every stored field of a table.
pub fn insert_sql(schema: &TableSchema) -> String {
    // Built on every write (the statement cache is keyed by this text): one buffer, no
    // intermediate strings.
    let mut sql = String::with_capacity(64 + schema.fields.len() * 24);
    sql.push_str("INSERT INTO ");
    sql.push_str(&schema.name);
    sql.push_str(" (");
    let mut n = 0;
    for (i, field) in schema.stored_fields().enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&field.name);
        n = i + 1;
    }
    // Anonymous parameters number themselves (1..=n): no integers to format.
    sql.push_str(") VALUES (");
    for i in 1..=n {
        sql.push_str(if i > 1 { ", ?" } else { "?" });
    }
    sql.push(')');
    sql
}

/// Inserts every stored field of `record`.
pub fn insert(conn: &Connection, schema: &TableSchema, record: &Record) -> rusqlite::Result<()> {
    let empty = String::new();
    let values: Vec<&dyn ToSql> =
        schema.stored_fields().map(|f| record.get(&f.name).unwrap_or(&empty) as &dyn ToSql).collect();
    conn.prepare_cached(&insert_sql(schema))?.execute(values.as_slice())?;
    Ok(())
}

/// A new staging row, bound straight from what it is made of (no record built: a bulk request's
/// rows are the writer's hot path): its id, the integration's columns, the raw payload, and
/// `set` (import set, row number, state and outcome, ...), which wins over the columns.
pub struct NewStagingRow<'a> {
    pub sys_id: &'a str,
    pub columns: &'a std::collections::BTreeMap<String, String>,
    pub payload: &'a [u8],
    pub set: &'a [(&'a str, &'a str)],
}

/// Inserts a [`NewStagingRow`] created by `user` at `now` with a statement from [`insert_sql`].
pub fn insert_staging_row(
    stmt: &mut Statement<'_>,
    staging: &TableSchema,
    row: &NewStagingRow<'_>,
    user: &str,
    now: &str,
) -> rusqlite::Result<()> {
    let values: Vec<&dyn ToSql> = staging
        .stored_fields()
        .map(|f| match f.name.as_str() {
            "sys_id" => &row.sys_id as &dyn ToSql,
            "sys_payload" => &row.payload as &dyn ToSql,
            "sys_created_on" | "sys_updated_on" => &now as &dyn ToSql,
            "sys_created_by" | "sys_updated_by" => &user as &dyn ToSql,
            "sys_mod_count" => &"0" as &dyn ToSql,
            name => match row.set.iter().find(|(field, _)| *field == name) {
                Some((_, value)) => value as &dyn ToSql,
                None => row.columns.get(name).map_or(&"" as &dyn ToSql, |v| v as &dyn ToSql),
            },
        })
        .collect();
    stmt.execute(values.as_slice())?;
    Ok(())
}

/// Sets the given fields of one record.
pub fn update(conn: &Connection, schema: &TableSchema, sys_id: &str, set: &[(&str, &str)]) -> rusqlite::Result<()> {
    if set.is_empty() {
        return Ok(());
    }
    let assignments =
        set.iter().enumerate().map(|(i, (f, _))| format!("{f} = ?{}", i + 1)).collect::<Vec<_>>().join(", ");
    debug_assert!(set.iter().all(|(f, _)| schema.field(f).is_some()));
    let sql = format!("UPDATE {} SET {assignments} WHERE sys_id = ?{}", schema.name, set.len() + 1);
    let values = set.iter().map(|(_, v)| *v).chain([sys_id]);
    conn.prepare_cached(&sql)?.execute(params_from_iter(values))?;
    Ok(())
}

pub fn get(conn: &Connection, schema: &TableSchema, sys_id: &str) -> rusqlite::Result<Option<Record>> {
    if schema.name == tables::SYS_AUDIT {
        let sql = format!("SELECT {} FROM sys_audit WHERE sys_id = ?1 AND sluice_set = ?2", columns(schema));
        let key = audit_set::set_key(sys_id);
        return conn.prepare_cached(&sql)?.query_row([sys_id, &key], |row| from_row(schema, row)).optional();
    }
    let sql = format!("SELECT {} FROM {} WHERE sys_id = ?1", columns(schema), schema.name);
    conn.prepare_cached(&sql)?.query_row([sys_id], |row| from_row(schema, row)).optional()
}

/// The rows matching `filter` (conditions on visible fields; references followed through
/// `catalog`) in the filter's order, a page of them, and how many match in all.
pub fn list(
    conn: &Connection,
    catalog: &Catalog,
    schema: &TableSchema,
    list: &ListQuery,
) -> rusqlite::Result<(Vec<Record>, u64)> {
    let ListQuery { filter, limit, offset, count_up_to } = list;
    let query::Filter { where_sql, order_sql, mut params } = query::translate(catalog, schema, filter);
    let count_sql = match count_up_to {
        Some(n) => {
            format!("SELECT COUNT(*) FROM (SELECT 1 FROM {}{where_sql} LIMIT {})", schema.name, n.saturating_add(1))
        }
        None => format!("SELECT COUNT(*) FROM {}{where_sql}", schema.name),
    };
    let total: i64 = conn.prepare_cached(&count_sql)?.query_row(params_from_iter(params.iter()), |r| r.get(0))?;
    if *limit == 0 {
        return Ok((Vec::new(), total as u64));
    }
    let sql = format!("SELECT {} FROM {}{where_sql}{order_sql} LIMIT ? OFFSET ?", columns(schema), schema.name);
    params.push(Value::Integer(i64::try_from(*limit).unwrap_or(i64::MAX)));
    params.push(Value::Integer(i64::try_from(*offset).unwrap_or(i64::MAX)));
    let mut stmt = conn.prepare_cached(&sql)?;
    let records = stmt
        .query_map(params_from_iter(params.iter()), |row| from_row(schema, row))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok((records, total as u64))
}
