//! Loading a dump into a new PostgreSQL database: the store's migrations create the schema (and
//! the staging tables the dump carries), then every row goes in one transaction, in batches,
//! converted to the target's column types; last, the sequences are set past what the rows use
//! so that new tickets, import sets and staging rows continue the numbering.

use std::collections::HashMap;
use std::io::BufRead;

use sluice_core::number::{FIRST_NUMBER, IMPORT_SET_PREFIX, INCIDENT_PREFIX};
use sluice_core::tables::{self, Catalog};
use sqlx::{Connection, PgConnection, Row};

use crate::{NUMBER_COUNTER, Reader, Result, Role, Summary, TableInfo, TransferError, Value, role};
use sluice_postgres::migrate::{number_sequence, row_sequence};
use sluice_postgres::query::ident;
use sluice_postgres::records::storable;
use sluice_postgres::{PostgresOptions, PostgresStore};
use sluice_store::Imports;
use sluice_store::Maintenance;
use sluice_store::audit_set;

/// Most bound values in one INSERT (PostgreSQL allows 65,535).
const MAX_PARAMS: usize = 30_000;
const MAX_ROWS: usize = 500;

fn sql(text: String) -> sqlx::query::Query<'static, sqlx::Postgres, sqlx::postgres::PgArguments> {
    sqlx::query(sqlx::AssertSqlSafe(text))
}

/// How a dump column is bound: as text, as a BIGINT, or as bytes (attachment content).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Bound {
    Text,
    BigInt,
    Bytes,
}

/// One target table: its INSERT prefix, how each dump column is bound, and its pending rows.
struct Target {
    insert: String,
    bound: Vec<Bound>,
    batch: Vec<Vec<Value>>,
    rows_per_insert: usize,
    count: u64,
}

async fn prepare(c: &mut PgConnection, table: &TableInfo, role: &Role) -> Result<(Target, Option<String>)> {
    let rows = sqlx::query(
        "SELECT column_name::text, data_type::text, is_identity::text FROM information_schema.columns
         WHERE table_schema = current_schema() AND table_name = $1",
    )
    .bind(audit_set::stored_in(&table.name))
    .fetch_all(&mut *c)
    .await?;
    let mut target = HashMap::new();
    for r in &rows {
        target.insert(
            r.try_get::<String, _>(0)?,
            (
                match r.try_get::<String, _>(1)?.as_str() {
                    "bigint" | "integer" => Bound::BigInt,
                    "bytea" => Bound::Bytes,
                    _ => Bound::Text,
                },
                r.try_get::<String, _>(2)? == "YES",
            ),
        );
    }
    let mut bound = Vec::with_capacity(table.columns.len());
    let mut identity = None;
    for column in &table.columns {
        let Some(&(kind, is_identity)) = target.get(&column.name) else {
            return Err(TransferError::Unsupported(format!(
                "{}.{} is not a column of this sluice",
                table.name, column.name
            )));
        };
        bound.push(kind);
        if is_identity {
            identity = Some(column.name.clone());
        }
    }
    let (name, stored) = (ident(&table.name), ident(audit_set::stored_in(&table.name)));
    if matches!(role, Role::Seeded) {
        sql(format!("DELETE FROM {stored}")).execute(&mut *c).await?;
    } else if sql(format!("SELECT EXISTS (SELECT 1 FROM {name})")).fetch_one(&mut *c).await?.try_get::<bool, _>(0)? {
        return Err(TransferError::NotEmpty(table.name.clone()));
    }
    let columns = table.columns.iter().map(|c| ident(&c.name)).collect::<Vec<_>>().join(", ");
    // An identity column the dump fills (`sluice_admin_audit.id`) keeps its values.
    let overriding = if identity.is_some() { " OVERRIDING SYSTEM VALUE" } else { "" };
    let rows_per_insert = (MAX_PARAMS / table.columns.len().max(1)).clamp(1, MAX_ROWS);
    let target = Target {
        insert: format!("INSERT INTO {stored} ({columns}){overriding} VALUES "),
        bound,
        batch: Vec::new(),
        rows_per_insert,
        count: 0,
    };
    Ok((target, identity))
}

fn bad(table: &str, v: &Value) -> TransferError {
    TransferError::Unsupported(format!("table {table}: {v:?} does not fit its column"))
}

async fn flush(c: &mut PgConnection, table: &str, t: &mut Target) -> Result<()> {
    if t.batch.is_empty() {
        return Ok(());
    }
    let width = t.bound.len();
    let mut text = t.insert.clone();
    for (i, _) in t.batch.iter().enumerate() {
        let marks = (1..=width).map(|j| format!("${}", i * width + j)).collect::<Vec<_>>().join(", ");
        text.push_str(if i == 0 { "(" } else { ", (" });
        text.push_str(&marks);
        text.push(')');
    }
    let mut q = sql(text);
    for row in &t.batch {
        for (v, &kind) in row.iter().zip(&t.bound) {
            q = if kind == Bound::Bytes {
                let bytes = match v {
                    Value::Bytes(b) => b.0.clone(),
                    Value::Text(s) => s.as_bytes().to_vec(),
                    Value::Null => Vec::new(),
                    Value::Integer(_) => return Err(bad(table, v)),
                };
                q.bind(bytes)
            } else if kind == Bound::BigInt {
                // NULL is the empty integer on PostgreSQL; SQLite stores ''.
                let n = match v {
                    Value::Null => None,
                    Value::Integer(i) => Some(*i),
                    Value::Text(s) if s.is_empty() => None,
                    Value::Text(s) => Some(s.trim().parse::<i64>().map_err(|_| bad(table, v))?),
                    Value::Bytes(_) => return Err(bad(table, v)),
                };
                q.bind(n)
            } else {
                let s = match v {
                    Value::Null => String::new(),
                    Value::Integer(i) => i.to_string(),
                    Value::Text(s) => storable(s).into_owned(),
                    // Raw payloads: PostgreSQL keeps them as text, as its store does.
                    Value::Bytes(b) => storable(&String::from_utf8_lossy(&b.0)).into_owned(),
                };
                q.bind(s)
            };
        }
    }
    q.execute(&mut *c).await?;
    t.count += t.batch.len() as u64;
    t.batch.clear();
    Ok(())
}

/// Sets a number sequence past both the SQLite counter and the highest number in use.
async fn continue_numbers(c: &mut PgConnection, prefix: &str, table: &str, counter: Option<i64>) -> Result<i64> {
    let used: i64 =
        sql(format!("SELECT COALESCE(MAX(substr(number, $2)::bigint), 0) FROM {} WHERE number ~ $1", ident(table)))
            .bind(format!("^{prefix}[0-9]{{1,18}}$"))
            .bind(prefix.len() as i32 + 1)
            .fetch_one(&mut *c)
            .await?
            .try_get(0)?;
    let next = counter.unwrap_or(FIRST_NUMBER as i64).max(used + 1);
    sql(format!("SELECT setval('{}', $1, false)", number_sequence(prefix))).bind(next).execute(&mut *c).await?;
    Ok(next)
}

/// A staging table's row sequence and the base of each of its import sets, so that a set still
/// loading continues after its highest row (row = nextval - base - 1, see `postgres/import.rs`).
async fn continue_rows(c: &mut PgConnection, table: &str) -> Result<()> {
    let sets = sql(format!(
        "SELECT s.sys_id, COALESCE(MAX(r.sys_import_row), 0) FROM sys_import_set s
         LEFT JOIN {} r ON r.sys_import_set = s.sys_id WHERE s.table_name = $1 GROUP BY s.sys_id",
        ident(table)
    ))
    .bind(table)
    .fetch_all(&mut *c)
    .await?;
    let mut highest = Vec::with_capacity(sets.len());
    for r in &sets {
        highest.push((r.try_get::<String, _>(0)?, r.try_get::<i64, _>(1)?));
    }
    let k = highest.iter().map(|(_, m)| *m).max().unwrap_or(0) + 1;
    sql(format!("SELECT setval('{}', $1, true)", row_sequence(table))).bind(k).execute(&mut *c).await?;
    for (set, m) in highest {
        sqlx::query("INSERT INTO sluice_import_set_base (import_set, base) VALUES ($1, $2)")
            .bind(set)
            .bind(k - m - 1)
            .execute(&mut *c)
            .await?;
    }
    Ok(())
}

/// Loads the dump read from `input` into the PostgreSQL database at `url`, which must hold no
/// rows yet. `progress` hears each table's name and row count as it is done.
pub async fn load_postgres(url: &str, input: impl BufRead, mut progress: impl FnMut(&str, u64)) -> Result<Summary> {
    let mut reader = Reader::open(input)?;
    let catalog = Catalog::builtin();
    let roles = reader.header.tables.iter().map(|t| role(&catalog, t)).collect::<Result<Vec<_>>>()?;
    let store = PostgresStore::open(url, PostgresOptions { max_connections: 2, ..PostgresOptions::default() }).await?;
    for r in &roles {
        if let Role::Staging(schema) = r {
            store.prepare_staging(schema.clone()).await?;
        }
    }
    store.close().await;

    let mut conn = PgConnection::connect(url).await?;
    let mut tx = conn.begin().await?;
    let mut targets = Vec::with_capacity(roles.len());
    let mut identities = Vec::new();
    for (table, r) in reader.header.tables.iter().zip(&roles) {
        if table.name == NUMBER_COUNTER {
            targets.push(None);
            continue;
        }
        let (target, identity) = prepare(&mut tx, table, r).await?;
        if let Some(column) = identity {
            identities.push((table.name.clone(), column));
        }
        targets.push(Some(target));
    }
    let mut counters: HashMap<String, i64> = HashMap::new();
    let mut current: Option<usize> = None;
    while let Some((index, values)) = reader.next_row()? {
        if targets[index].is_none() {
            if let [Value::Text(prefix), Value::Integer(next)] = values.as_slice() {
                counters.insert(prefix.clone(), *next);
            }
            continue;
        }
        // Rows come table by table: the previous table is complete.
        if let Some(previous) = current.filter(|&c| c != index) {
            let t = targets[previous].as_mut().expect("a table target");
            flush(&mut tx, &reader.header.tables[previous].name, t).await?;
            progress(&reader.header.tables[previous].name, t.count);
        }
        current = Some(index);
        let target = targets[index].as_mut().expect("a table target");
        target.batch.push(values);
        if target.batch.len() >= target.rows_per_insert {
            flush(&mut tx, &reader.header.tables[index].name, target).await?;
        }
    }
    if let Some(last) = current {
        let t = targets[last].as_mut().expect("a table target");
        flush(&mut tx, &reader.header.tables[last].name, t).await?;
        progress(&reader.header.tables[last].name, t.count);
    }
    // Empty tables too, so that the lists of export and import compare line by line.
    for (table, target) in reader.header.tables.iter().zip(&targets) {
        if target.as_ref().is_some_and(|t| t.count == 0) {
            progress(&table.name, 0);
        }
    }

    for (table, column) in identities {
        let seq = format!(
            "SELECT setval(pg_get_serial_sequence($1, $2), (SELECT COALESCE(MAX({}), 0) + 1 FROM {}), false)",
            ident(&column),
            ident(&table)
        );
        sql(seq).bind(&table).bind(&column).execute(&mut *tx).await?;
    }
    for (prefix, table) in [(INCIDENT_PREFIX, tables::INCIDENT), (IMPORT_SET_PREFIX, tables::SYS_IMPORT_SET)] {
        let next = continue_numbers(&mut tx, prefix, table, counters.get(prefix).copied()).await?;
        progress(&format!("next {prefix} number"), next as u64);
    }
    for r in &roles {
        if let Role::Staging(schema) = r {
            continue_rows(&mut tx, &schema.name).await?;
        }
    }
    tx.commit().await?;
    let mut summary = Summary::default();
    for t in targets.iter().flatten() {
        summary.tables += 1;
        summary.rows += t.count;
    }
    Ok(summary)
}
