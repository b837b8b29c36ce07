//! The four operations on a staging table. Inserts go through the intake pipeline exactly as the
//! Import Set API's (`Pipeline::import_one`, `Pipeline::import_many` in sync mode); reads go
//! through the Table API's rights, query translation and encoding for the staging table.

use serde_json::{Map, Value};
use sluice_core::integration::Integration;
use sluice_core::payload;
use sluice_core::rules::Actor;
use sluice_core::staging::RowState;
use sluice_store::ImportOutcome;

use crate::AppState;
use crate::authenticate::Caller;
use crate::error::{ApiError, ApiResult};
use crate::params::TableParams;
use crate::pipeline::Pipeline;
use crate::pipeline::import::ManyRequest;
use crate::receive::JsonObject;
use crate::routes::answer::ImportResult;
use crate::routes::insert_multiple::compact_len;
use crate::routes::table::{encode_records, list_query, table_for};
use crate::xml;

/// What an operation answers: the response element's content written (the caller wraps it in
/// the qualified `<tns:{operation}Response>`; its children are unqualified), or a row's contract failure (a
/// fault naming the staged row, see docs/soap.md).
pub enum Answer {
    Body(String),
    RowFailed { error: ApiError, staging_sys_id: String },
}

fn actor(caller: &Caller) -> Actor {
    Actor { user_name: caller.0.user_name.clone(), sys_id: caller.0.sys_id.clone() }
}

/// One record's fields, within a single row's limits (size as compact JSON, depth, fields).
fn row_object(state: &AppState, record: Map<String, Value>) -> ApiResult<Map<String, Value>> {
    let value = Value::Object(record);
    if compact_len(&value) > state.config.max_body_bytes {
        return Err(ApiError::BodyTooLarge(state.config.max_body_bytes));
    }
    Ok(payload::check_object(value, state.config.max_json_depth, state.config.max_json_fields)?)
}

/// `<insertResponse>`'s elements, in ServiceNow's order (next-features.md 3.4); absent ones left
/// out (`minOccurs="0"` in the WSDL).
fn insert_result(out: &mut String, integration: &Integration, o: &ImportOutcome, base: &str) {
    let r = ImportResult::new(integration, o, base);
    let fields = [
        ("sys_id", Some(r.sys_id)),
        ("table", Some(r.table)),
        ("display_name", r.display_name),
        ("display_value", r.display_value),
        ("status", Some(r.status.to_owned())),
        ("status_message", r.status_message),
        ("error_message", r.error_message),
    ];
    for (k, v) in fields {
        if let Some(v) = v {
            xml::element(out, k, &Value::String(v));
        }
    }
}

pub async fn insert(
    state: &AppState,
    caller: &Caller,
    integration: &Integration,
    record: Map<String, Value>,
    idempotency: Option<sluice_store::Idempotency>,
    base: &str,
) -> ApiResult<Answer> {
    let object = row_object(state, record)?;
    let raw = serde_json::to_vec(&object).map_err(|e| ApiError::Internal(e.to_string()))?;
    let body = JsonObject { raw: raw.into(), object };
    let registry = state.registry();
    let outcome = Pipeline::of(state, &registry).import_one(integration, actor(caller), body, idempotency).await?;
    if !outcome.replayed {
        crate::metrics::record_outcome(integration.name(), outcome.state.as_str());
        crate::observe::note_row(outcome.state, &outcome.errors);
    }
    if outcome.state == RowState::Error {
        let staging_sys_id = outcome.staging_sys_id.to_string();
        return Ok(Answer::RowFailed { error: ApiError::InvalidFields(outcome.errors), staging_sys_id });
    }
    let mut out = String::new();
    insert_result(&mut out, integration, &outcome, base);
    Ok(Answer::Body(out))
}

/// `<record>` ×N, each a row; judged and committed before the answer (sync mode), every row's
/// outcome in order, errors included (no fault for a bad row).
pub async fn insert_multiple(
    state: &AppState,
    caller: &Caller,
    integration: &Integration,
    mut content: Map<String, Value>,
    idempotency: Option<sluice_store::Idempotency>,
    base: &str,
) -> ApiResult<Answer> {
    let records = match content.remove("record") {
        Some(Value::Array(items)) => items,
        Some(one) => vec![one],
        None => return Err(ApiError::InvalidRecords("insertMultiple holds no <record> elements".into())),
    };
    if records.len() > state.config.max_records {
        return Err(ApiError::TooManyRecords(state.config.max_records));
    }
    let records = records
        .into_iter()
        .enumerate()
        .map(|(index, r)| {
            let in_record = |error: ApiError| ApiError::InRecord { index, error: Box::new(error) };
            match r {
                Value::Object(o) => row_object(state, o).map_err(in_record),
                Value::String(s) if s.trim().is_empty() => Ok(Map::new()),
                _ => Err(ApiError::InvalidRecords(format!("record[{index}] must hold field elements"))),
            }
        })
        .collect::<ApiResult<Vec<_>>>()?;
    // One bulk request at a time among the others (the writer is the bound, as for the REST route).
    let _turn = state.bulk_turns.acquire().await.map_err(|_| ApiError::Internal("bulk turns closed".into()))?;
    let request = ManyRequest {
        records,
        sync: true,
        multi_import_set: None,
        idempotency,
        actor: actor(caller),
        max_records: state.config.max_records,
        request_body: None,
    };
    let registry = state.registry();
    let many = Pipeline::of(state, &registry).import_many(integration, request).await?;
    let mut out = String::new();
    for o in many.rows.unwrap_or_default() {
        if !many.set.replayed {
            crate::observe::note_row(o.state, &o.errors);
        }
        out.push_str("<insertResponse>");
        insert_result(&mut out, integration, &o, base);
        out.push_str("</insertResponse>");
    }
    Ok(Answer::Body(out))
}

/// A record's encoded fields as elements: a display-value pair as `<f>` plus `<dv_f>`
/// (`displayvalue=all`), a reference as its value.
fn record_elements(out: &mut String, record: &Value) {
    let Value::Object(fields) = record else { return };
    for (k, v) in fields {
        match v {
            Value::Object(o) if o.contains_key("display_value") => {
                xml::element(out, k, o.get("value").unwrap_or(&Value::Null));
                xml::element(out, &format!("dv_{k}"), &o["display_value"]);
            }
            Value::Object(o) => xml::element(out, k, o.get("value").unwrap_or(&Value::Null)),
            other => xml::element(out, k, other),
        }
    }
}

fn text(value: &Value) -> ApiResult<String> {
    match value {
        Value::String(s) => Ok(s.trim().to_owned()),
        _ => Err(ApiError::InvalidParameter("query values must be text".into())),
    }
}

/// The Table API's parameters for a read: display values as asked, references without links.
fn read_pairs(display: Option<&str>) -> Vec<(String, String)> {
    let mut pairs = vec![("sysparm_exclude_reference_link".to_owned(), "true".to_owned())];
    if let Some(d) = display {
        pairs.push(("sysparm_display_value".into(), d.to_owned()));
    }
    pairs
}

pub async fn get(
    state: &AppState,
    caller: &Caller,
    integration: &Integration,
    content: &Map<String, Value>,
    display: Option<&str>,
    base: &str,
) -> ApiResult<Answer> {
    let schema = table_for(state, caller, &integration.definition.staging_table, None)?;
    let sys_id = text(content.get("sys_id").ok_or(ApiError::MissingParameter("sys_id"))?)?;
    let params = TableParams::parse(&read_pairs(display))?;
    let mut out = String::new();
    if let Some(record) = state.store.get(schema.clone(), sys_id).await? {
        let encoded = encode_records(state, caller, &schema, std::slice::from_ref(&record), &params, base).await?;
        encoded.iter().for_each(|r| record_elements(&mut out, r));
    }
    Ok(Answer::Body(out))
}

/// Example values as equality filters, and the extended parameters (`__encoded_query`,
/// `__order_by`, `__order_by_desc`, `__limit`, `__first_row`, `__last_row` exclusive).
fn records_pairs(content: &Map<String, Value>, display: Option<&str>) -> ApiResult<Vec<(String, String)>> {
    let mut pairs = read_pairs(display);
    let mut query = Vec::new();
    let (mut first, mut last, mut limit) = (None, None, None);
    let number = |k: &str, v: &str| {
        v.parse::<u64>().map_err(|_| ApiError::InvalidParameter(format!("{k} must be a whole number")))
    };
    for (k, v) in content {
        let v = text(v)?;
        match k.as_str() {
            "__encoded_query" if !v.is_empty() => query.push(v),
            "__order_by" => query.extend(v.split(',').map(|f| format!("ORDERBY{}", f.trim()))),
            "__order_by_desc" => query.extend(v.split(',').map(|f| format!("ORDERBYDESC{}", f.trim()))),
            "__limit" => limit = Some(number(k, &v)?),
            "__first_row" => first = Some(number(k, &v)?),
            "__last_row" => last = Some(number(k, &v)?),
            k if k.starts_with("__") => {}
            _ => pairs.push((k.clone(), v)),
        }
    }
    if !query.is_empty() {
        pairs.push(("sysparm_query".into(), query.join("^")));
    }
    let first = first.unwrap_or(0);
    let limit = match (last, limit) {
        (Some(last), _) => Some(last.saturating_sub(first)),
        (None, limit) => limit,
    };
    pairs.push(("sysparm_offset".into(), first.to_string()));
    if let Some(limit) = limit {
        pairs.push(("sysparm_limit".into(), limit.to_string()));
    }
    Ok(pairs)
}

pub async fn get_records(
    state: &AppState,
    caller: &Caller,
    integration: &Integration,
    content: &Map<String, Value>,
    display: Option<&str>,
    base: &str,
) -> ApiResult<Answer> {
    let schema = table_for(state, caller, &integration.definition.staging_table, None)?;
    let params = TableParams::parse(&records_pairs(content, display)?)?;
    let query = list_query(&schema, &params)?;
    let page = state.store.list(schema.clone(), query).await?;
    let encoded = encode_records(state, caller, &schema, &page.records, &params, base).await?;
    let mut out = String::new();
    for record in &encoded {
        out.push_str("<getRecordsResult>");
        record_elements(&mut out, record);
        out.push_str("</getRecordsResult>");
    }
    Ok(Answer::Body(out))
}
