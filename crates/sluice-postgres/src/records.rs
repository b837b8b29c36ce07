//! Generic record reads and writes over a table schema. Table and column names come only from
//! schemas (checked identifiers, quoted); every value is a bound parameter. Records are strings
//! in their wire form; integer fields are `BIGINT` columns, NULL when empty.

use std::borrow::Cow;

use sluice_core::Record;
use sluice_core::schema::{Field, FieldKind, TableSchema};
use sluice_core::tables::{self, Catalog};
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::Query;
use sqlx::{AssertSqlSafe, PgConnection, Postgres, Row};

use crate::query::{self, PgValue, ident};
use sluice_store::{ListQuery, audit_set};

pub type PgQuery = Query<'static, Postgres, PgArguments>;

/// A query from SQL text built of schema names and placeholders only.
pub fn sql(text: String) -> PgQuery {
    sqlx::query(AssertSqlSafe(text))
}

pub fn columns(schema: &TableSchema) -> String {
    schema.stored_fields().map(|f| ident(&f.name)).collect::<Vec<_>>().join(", ")
}

/// PostgreSQL text cannot hold NUL: it is stored as U+FFFD (SQLite keeps it).
pub fn storable(v: &str) -> Cow<'_, str> {
    if v.contains('\0') { Cow::Owned(v.replace('\0', "\u{fffd}")) } else { Cow::Borrowed(v) }
}

/// The placeholder of a value for `field`: integer columns take the text of a number, or ''.
pub fn placeholder(field: &Field, n: usize) -> String {
    if field.kind == FieldKind::Integer { format!("NULLIF(${n}, '')::bigint") } else { format!("${n}") }
}

/// Column `i` of a row as its wire text.
pub fn text_at(row: &PgRow, i: usize, field: &Field) -> Result<String, sqlx::Error> {
    Ok(if field.kind == FieldKind::Integer {
        row.try_get::<Option<i64>, _>(i)?.map(|n| n.to_string()).unwrap_or_default()
    } else {
        row.try_get::<Option<String>, _>(i)?.unwrap_or_default()
    })
}

/// A record from the stored fields selected by [`columns`], starting at column `at`.
pub fn from_row(schema: &TableSchema, row: &PgRow, at: usize) -> Result<Record, sqlx::Error> {
    let mut record = Record::new();
    for (i, f) in schema.stored_fields().enumerate() {
        record.insert(f.name.clone(), text_at(row, at + i, f)?);
    }
    Ok(record)
}

pub fn bind(q: PgQuery, v: &PgValue) -> PgQuery {
    match v {
        PgValue::Text(t) => q.bind(t.clone()),
        PgValue::Int(i) => q.bind(*i),
        PgValue::Real(f) => q.bind(*f),
    }
}

/// The `INSERT` of every stored field of a table.
pub fn insert_sql(schema: &TableSchema) -> String {
    let fields: Vec<&Field> = schema.stored_fields().collect();
    let names = fields.iter().map(|f| ident(&f.name)).collect::<Vec<_>>().join(", ");
    let values = fields.iter().enumerate().map(|(i, f)| placeholder(f, i + 1)).collect::<Vec<_>>().join(", ");
    format!("INSERT INTO {} ({names}) VALUES ({values})", ident(&schema.name))
}

/// Inserts every stored field of `record` (missing ones empty).
pub async fn insert(c: &mut PgConnection, schema: &TableSchema, record: &Record) -> Result<(), sqlx::Error> {
    let mut q = sql(insert_sql(schema));
    for f in schema.stored_fields() {
        q = q.bind(storable(record.get(&f.name).map(String::as_str).unwrap_or("")).into_owned());
    }
    q.execute(c).await?;
    Ok(())
}

/// A parameter of a multi-row statement: one value per row.
pub enum Column {
    Text(Vec<String>),
    Int(Vec<i64>),
}

/// Data-modifying statements sent as one (all but the last as `WITH` parts), so a batch's rows
/// of several tables cost one round trip; each part numbers its parameters from [`Self::next`].
#[derive(Default)]
pub struct Combined {
    parts: Vec<String>,
    columns: Vec<Column>,
}

impl Combined {
    /// The number of the next part's first parameter.
    pub fn next(&self) -> usize {
        self.columns.len() + 1
    }

    pub fn add(&mut self, sql: String, columns: Vec<Column>) {
        self.parts.push(sql);
        self.columns.extend(columns);
    }

    pub async fn execute(self, c: &mut PgConnection) -> Result<(), sqlx::Error> {
        let Some((last, first)) = self.parts.split_last() else { return Ok(()) };
        let mut text = String::new();
        for (i, part) in first.iter().enumerate() {
            text.push_str(if i == 0 { "WITH " } else { ", " });
            text.push_str(&format!("w{i} AS ({part})"));
        }
        text.push(' ');
        text.push_str(last);
        let mut q = sql(text);
        for column in self.columns {
            q = match column {
                Column::Text(values) => q.bind(values),
                Column::Int(values) => q.bind(values),
            };
        }
        q.execute(c).await?;
        Ok(())
    }
}

/// The `INSERT` of many records of a table in one statement, its parameters numbered from
/// `first`: one `text[]` per stored field, unnested (one text whatever the row count, so its
/// prepared form is reused).
pub fn insert_many_sql(schema: &TableSchema, first: usize) -> String {
    let fields: Vec<&Field> = schema.stored_fields().collect();
    let names = fields.iter().map(|f| ident(&f.name)).collect::<Vec<_>>().join(", ");
    let arrays = (0..fields.len()).map(|i| format!("${}::text[]", first + i)).collect::<Vec<_>>().join(", ");
    let aliases = (0..fields.len()).map(|i| format!("c{i}")).collect::<Vec<_>>().join(", ");
    let values = fields
        .iter()
        .enumerate()
        .map(|(i, f)| if f.kind == FieldKind::Integer { format!("NULLIF(c{i}, '')::bigint") } else { format!("c{i}") })
        .collect::<Vec<_>>()
        .join(", ");
    format!("INSERT INTO {} ({names}) SELECT {values} FROM unnest({arrays}) AS u({aliases})", ident(&schema.name))
}

/// The columns of [`insert_many_sql`] for these records (missing fields empty).
pub fn insert_many_columns(schema: &TableSchema, records: &[&Record]) -> Vec<Column> {
    schema
        .stored_fields()
        .map(|f| {
            Column::Text(
                records
                    .iter()
                    .map(|r| storable(r.get(&f.name).map(String::as_str).unwrap_or("")).into_owned())
                    .collect(),
            )
        })
        .collect()
}

/// Sets the given fields of one record.
pub async fn update(
    c: &mut PgConnection,
    schema: &TableSchema,
    sys_id: &str,
    set: &[(&str, &str)],
) -> Result<(), sqlx::Error> {
    if set.is_empty() {
        return Ok(());
    }
    let assignments = set
        .iter()
        .enumerate()
        .map(|(i, (name, _))| {
            let field = schema.field(name).expect("a field of the schema");
            format!("{} = {}", ident(name), placeholder(field, i + 1))
        })
        .collect::<Vec<_>>()
        .join(", ");
    let text = format!("UPDATE {} SET {assignments} WHERE \"sys_id\" = ${}", ident(&schema.name), set.len() + 1);
    let mut q = sql(text);
    for (_, v) in set {
        q = q.bind(storable(v).into_owned());
    }
    q.bind(sys_id.to_owned()).execute(c).await?;
    Ok(())
}

async fn fetch(
    c: &mut PgConnection,
    schema: &TableSchema,
    sys_id: &str,
    suffix: &str,
) -> Result<Option<Record>, sqlx::Error> {
    let table = ident(&schema.name);
    if schema.name == tables::SYS_AUDIT {
        let text = format!("SELECT {} FROM {table} WHERE \"sys_id\" = $1 AND sluice_set = $2", columns(schema));
        let row = sql(text).bind(sys_id.to_owned()).bind(audit_set::set_key(sys_id)).fetch_optional(c).await?;
        return row.map(|row| from_row(schema, &row, 0)).transpose();
    }
    let text = format!("SELECT {} FROM {table} WHERE \"sys_id\" = $1{suffix}", columns(schema));
    match sql(text).bind(sys_id.to_owned()).fetch_optional(c).await? {
        Some(row) => Ok(Some(from_row(schema, &row, 0)?)),
        None => Ok(None),
    }
}

pub async fn get(c: &mut PgConnection, schema: &TableSchema, sys_id: &str) -> Result<Option<Record>, sqlx::Error> {
    fetch(c, schema, sys_id, "").await
}

/// The record, locked until the transaction ends (a concurrent writer of it waits).
pub async fn get_for_update(
    c: &mut PgConnection,
    schema: &TableSchema,
    sys_id: &str,
) -> Result<Option<Record>, sqlx::Error> {
    fetch(c, schema, sys_id, " FOR UPDATE").await
}

/// The first record (in insertion order) whose `field` equals `value`, ignoring ASCII case.
pub async fn find_by(
    c: &mut PgConnection,
    table: &str,
    field: &str,
    value: &str,
) -> Result<Option<String>, sqlx::Error> {
    if value.contains('\0') {
        return Ok(None);
    }
    let text = format!(
        "SELECT \"sys_id\" FROM {} WHERE lower({}) = $1 ORDER BY sluice_rowid LIMIT 1",
        ident(table),
        ident(field)
    );
    let row = sql(text).bind(value.to_ascii_lowercase()).fetch_optional(c).await?;
    row.map(|r| r.try_get::<String, _>(0)).transpose()
}

/// The rows matching `filter` in the filter's order, a page of them, and how many match in all.
pub async fn list(
    c: &mut PgConnection,
    catalog: &Catalog,
    schema: &TableSchema,
    list: &ListQuery,
) -> Result<(Vec<Record>, u64), sqlx::Error> {
    let ListQuery { filter, limit, offset, count_up_to } = list;
    let query::Filter { where_sql, order_sql, params } = query::translate(catalog, schema, filter);
    let table = ident(&schema.name);
    let mut count = sql(match count_up_to {
        Some(n) => {
            format!("SELECT COUNT(*) FROM (SELECT 1 FROM {table}{where_sql} LIMIT {}) AS bounded", n.saturating_add(1))
        }
        None => format!("SELECT COUNT(*) FROM {table}{where_sql}"),
    });
    for p in &params {
        count = bind(count, p);
    }
    let total: i64 = count.fetch_one(&mut *c).await?.try_get(0)?;
    if *limit == 0 {
        // A count only (the console's per-state counts): no second round trip.
        return Ok((Vec::new(), total as u64));
    }
    let n = params.len();
    let text =
        format!("SELECT {} FROM {table}{where_sql}{order_sql} LIMIT ${} OFFSET ${}", columns(schema), n + 1, n + 2);
    let mut q = sql(text);
    for p in &params {
        q = bind(q, p);
    }
    let q = q.bind(i64::try_from(*limit).unwrap_or(i64::MAX)).bind(i64::try_from(*offset).unwrap_or(i64::MAX));
    let rows = q.fetch_all(c).await?;
    let records = rows.iter().map(|r| from_row(schema, r, 0)).collect::<Result<Vec<_>, _>>()?;
    Ok((records, total as u64))
}
