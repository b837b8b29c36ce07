//! ServiceNow's Aggregate API: `GET /api/now[/v1|/v2]/stats/{table}`. Counts, averages,
//! minimums, maximums and sums of the records an encoded query matches, optionally per group,
//! answered as ServiceNow does: `{"result": {"stats": {...}}}` without group-by fields,
//! `{"result": [{"stats": {...}, "groupby_fields": [{"field", "value"}]}, ...]}` with them; every
//! value a string. The caller needs the Table API's read rights on the table.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use sluice_core::Record;
use sluice_core::schema::{FieldKind, TableSchema};
use sluice_store::{AggregateQuery, AggregateRow, aggregate};

use crate::AppState;
use crate::aggregate_params::AggregateParams;
use crate::authenticate::Caller;
use crate::display;
use crate::error::{ApiError, ApiResult};
use crate::params::DisplayMode;
use crate::receive::QueryPairs;
use crate::wire::DisplayContext;

/// Set when the query has more groups than the answer holds (`sysparm_limit`, at most 10,000).
pub const TRUNCATED_HEADER: &str = "x-sluice-groups-truncated";

pub async fn stats(
    State(state): State<AppState>,
    caller: Caller,
    Path(table): Path<String>,
    QueryPairs(pairs): QueryPairs,
) -> ApiResult<Response> {
    let schema = super::table::table_for(&state, &caller, &table, None)?;
    let AggregateParams { mut query, display } = AggregateParams::parse(&schema, &pairs)?;
    aggregate::check(&schema, &query).map_err(ApiError::InvalidAggregate)?;
    // One more than asked tells whether there are more.
    let limit = query.limit;
    query.limit = limit.saturating_add(1);
    let mut rows = state.store.aggregate(schema.clone(), query.clone()).await?;
    let truncated = rows.len() as u64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let mut headers = HeaderMap::new();
    if truncated {
        headers.insert(TRUNCATED_HEADER, HeaderValue::from_static("true"));
    }
    if query.group_by.is_empty() {
        // HAVING may leave no row: then no statistics.
        let stats = rows.first().map_or_else(|| Value::Object(Map::new()), stats_of);
        return Ok((headers, Json(json!({"result": {"stats": stats}}))).into_response());
    }
    let context = group_display(&state, &schema, &query, &rows, display, &caller.0.roles).await?;
    let result: Vec<Value> = rows
        .iter()
        .map(|r| json!({"stats": stats_of(r), "groupby_fields": groupby_fields(&schema, &query, r, display, &context)}))
        .collect();
    Ok((headers, Json(json!({"result": result}))).into_response())
}

/// `{"count", "avg": {field: value}, "min", "max", "sum"}`, each only when asked.
fn stats_of(row: &AggregateRow) -> Value {
    let mut stats = Map::new();
    if let Some(count) = &row.count {
        stats.insert("count".into(), json!(count));
    }
    for (name, values) in [("avg", &row.avg), ("min", &row.min), ("max", &row.max), ("sum", &row.sum)] {
        if !values.is_empty() {
            let fields: Map<String, Value> = values.iter().map(|(f, v)| (f.clone(), json!(v))).collect();
            stats.insert(name.into(), Value::Object(fields));
        }
    }
    Value::Object(stats)
}

/// Referenced records' display values for reference group-by fields (one store call per table).
async fn group_display(
    state: &AppState,
    schema: &TableSchema,
    query: &AggregateQuery,
    rows: &[AggregateRow],
    display: DisplayMode,
    roles: &[sluice_core::account::Role],
) -> ApiResult<DisplayContext> {
    let records: Vec<Record> =
        rows.iter().map(|r| query.group_by.iter().cloned().zip(r.groups.iter().cloned()).collect()).collect();
    display::context(state, schema, &records, display, Some(&query.group_by), roles).await
}

/// `[{"field", "value"}]`: stored values; with `sysparm_display_value=true` the display value
/// as `value` (choice labels, referenced records' display fields), with `all` both
/// (`value` and `display_value`).
fn groupby_fields(
    schema: &TableSchema,
    query: &AggregateQuery,
    row: &AggregateRow,
    display: DisplayMode,
    context: &DisplayContext,
) -> Value {
    let shown = |name: &str, value: &str| -> String {
        let Some(field) = schema.field(name) else { return value.to_owned() };
        match field.kind {
            FieldKind::Reference(_) => context.references.get(value).cloned().unwrap_or_default(),
            _ => field.choice_label(value).unwrap_or(value).to_owned(),
        }
    };
    let fields: Vec<Value> = query
        .group_by
        .iter()
        .zip(&row.groups)
        .map(|(name, value)| match display {
            DisplayMode::Value => json!({"field": name, "value": value}),
            DisplayMode::Display => json!({"field": name, "value": shown(name, value)}),
            DisplayMode::All => json!({"field": name, "value": value, "display_value": shown(name, value)}),
        })
        .collect();
    Value::Array(fields)
}
