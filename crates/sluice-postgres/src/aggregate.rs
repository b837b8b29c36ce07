//! Aggregate queries on PostgreSQL: the PostgreSQL pieces of `sluice_store::aggregate_sql` and
//! the statement run on a pooled connection.
//!
//! Integer fields are `BIGINT` columns, NULL when empty; text columns are `COLLATE "C"` (byte
//! order, as SQLite's default collation). `SUM(bigint)` is `numeric`: the sums here fit 64 bits
//! (see `aggregate_sql.rs`), so they are read back as `bigint`.

use sluice_core::schema::TableSchema;
use sluice_store::aggregate_sql::{AggregateDialect, Cell, Output, Statement, row};
use sluice_store::{AggregateQuery, AggregateRow};
use sqlx::{PgConnection, Row};

use crate::query::{PgValue, Postgres, number_placeholders};
use crate::records::{bind, sql};

impl AggregateDialect for Postgres {
    fn number_column(col: &str) -> String {
        col.to_owned()
    }

    fn text_column(col: &str) -> String {
        format!("COALESCE({col}, '')")
    }

    fn int_sum(expr: &str) -> String {
        format!("SUM({expr})::bigint")
    }

    fn real(expr: &str) -> String {
        format!("CAST({expr} AS double precision)")
    }

    fn real_value(v: f64) -> PgValue {
        PgValue::Real(v)
    }
}

/// Runs a statement built by `aggregate_sql::statement` for `query` on `schema`.
pub async fn run(
    c: &mut PgConnection,
    schema: &TableSchema,
    query: &AggregateQuery,
    statement: &Statement<PgValue>,
) -> Result<Vec<AggregateRow>, sqlx::Error> {
    let mut q = sql(number_placeholders(&statement.sql, 1));
    for p in &statement.params {
        q = bind(q, p);
    }
    let rows = q.fetch_all(c).await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let mut cells = Vec::with_capacity(statement.outputs.len());
        for (i, output) in statement.outputs.iter().enumerate() {
            cells.push(match output {
                Output::Int => r.try_get::<Option<i64>, _>(i)?.map_or(Cell::Null, Cell::Int),
                Output::Text => r.try_get::<Option<String>, _>(i)?.map_or(Cell::Null, Cell::Text),
            });
        }
        out.push(row(schema, query, cells));
    }
    Ok(out)
}
