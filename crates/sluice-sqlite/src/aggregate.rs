//! Aggregate queries on SQLite: the SQLite pieces of `sluice_store::aggregate_sql` and the
//! statement run on a read connection.
//!
//! INTEGER columns keep `''` for an empty value (and a view may give NULL): only real integers
//! count as numbers. Text columns have SQLite's default (binary) collation, so groups and
//! `min`/`max` compare byte by byte, as PostgreSQL's `COLLATE "C"` columns do.

use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, params_from_iter};
use sluice_core::schema::TableSchema;
use sluice_store::aggregate_sql::{AggregateDialect, Cell, Output, Statement, row};
use sluice_store::{AggregateQuery, AggregateRow};

use crate::query::Sqlite;

impl AggregateDialect for Sqlite {
    fn number_column(col: &str) -> String {
        format!("(CASE WHEN typeof({col}) = 'integer' THEN {col} END)")
    }

    fn text_column(col: &str) -> String {
        format!("COALESCE({col}, '')")
    }

    fn int_sum(expr: &str) -> String {
        format!("SUM({expr})")
    }

    fn real(expr: &str) -> String {
        format!("CAST({expr} AS REAL)")
    }

    fn real_value(v: f64) -> Value {
        Value::Real(v)
    }
}

fn cell(v: ValueRef<'_>, output: Output) -> Cell {
    match (v, output) {
        (ValueRef::Null, _) => Cell::Null,
        (ValueRef::Integer(i), _) => Cell::Int(i),
        (ValueRef::Real(f), Output::Int) => Cell::Int(f as i64),
        (other, _) => Cell::Text(crate::records::text(other)),
    }
}

/// Runs a statement built by `aggregate_sql::statement` for `query` on `schema`.
pub fn run(
    conn: &Connection,
    schema: &TableSchema,
    query: &AggregateQuery,
    statement: &Statement<Value>,
) -> rusqlite::Result<Vec<AggregateRow>> {
    let mut stmt = conn.prepare(&statement.sql)?;
    let mut rows = stmt.query(params_from_iter(statement.params.iter()))?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let mut cells = Vec::with_capacity(statement.outputs.len());
        for (i, output) in statement.outputs.iter().enumerate() {
            cells.push(cell(r.get_ref(i)?, *output));
        }
        out.push(row(schema, query, cells));
    }
    Ok(out)
}
