//! ServiceNow's Table API: `GET` list and one, `POST`, `PUT`/`PATCH`, `DELETE` on
//! `/api/now[/v1|/v2]/table/{table}[/{sys_id}]`, ServiceNow-shaped (`{"result": ...}`, string
//! values, references, display values, `X-Total-Count`, `Link`, `Location`). Lists are filtered
//! by encoded queries (`sysparm_query`) translated to parameterised SQL by the store.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use sluice_core::account::{Access, may};
use sluice_core::query;
use sluice_core::rules::{Actor, RuleViolation};
use sluice_core::schema::TableSchema;
use sluice_core::{DateTime, Record, tables};
use sluice_store::{ListQuery, TableWrite, WriteOp, WriteResult};

use crate::AppState;
use crate::authenticate::Caller;
use crate::display;
use crate::error::{ApiError, ApiResult};
use crate::params::TableParams;
use crate::receive::{BaseUrl, JsonObject, PeerAddr, QueryPairs};
use crate::table_input;
use crate::wire::{self, Encoding};

const DEFAULT_LIMIT: u64 = 10_000;

/// Tables the Table API writes; the others are read-only.
const WRITABLE: &[&str] = &[tables::INCIDENT, tables::SYS_USER, tables::SYS_USER_GROUP, tables::CMDB_CI];

/// The table's schema, if the caller may read it (`verb` = None) or write it (`verb` = the
/// ServiceNow ACL word: Insert, Update, Delete).
pub(crate) fn table_for(
    state: &AppState,
    caller: &Caller,
    table: &str,
    verb: Option<&str>,
) -> ApiResult<Arc<TableSchema>> {
    let schema =
        state.registry().catalog.get(table).cloned().ok_or_else(|| ApiError::InvalidTable(table.to_owned()))?;
    match verb {
        None if may(&caller.0.roles, table, Access::Read) => Ok(schema),
        None => Err(ApiError::Forbidden {
            message: "Insufficient rights to query records",
            detail: "ACL Exception Read Failed due to security constraints".into(),
        }),
        Some(verb) if !WRITABLE.contains(&table) || !may(&caller.0.roles, table, Access::Write) => {
            Err(ApiError::forbidden(format!("ACL Exception {verb} Failed due to security constraints")))
        }
        Some(_) => Ok(schema),
    }
}

/// The encoded query (`sysparm_query`, see [`sluice_core::query`]; relative dates evaluated now,
/// in UTC) ANDed with plain `field=value` parameters; unknown fields are ignored as ServiceNow
/// does, a term that cannot be run is refused (400 `invalid_query`).
pub(crate) fn list_query(schema: &TableSchema, params: &TableParams) -> ApiResult<ListQuery> {
    let mut filter = query::parse(params.query.as_deref().unwrap_or_default(), DateTime::now())?;
    for (k, v) in &params.field_filters {
        if schema.visible_field(k).is_some() {
            filter.and_equals(k, v);
        }
    }
    // Larger pages are cut to the default: clients page on X-Total-Count.
    Ok(ListQuery {
        filter,
        limit: params.limit.unwrap_or(DEFAULT_LIMIT).min(DEFAULT_LIMIT),
        offset: params.offset,
        count_up_to: None,
    })
}

pub(crate) async fn encode_records(
    state: &AppState,
    caller: &Caller,
    schema: &TableSchema,
    records: &[Record],
    params: &TableParams,
    base: &str,
) -> ApiResult<Vec<Value>> {
    let fields = params.fields.as_deref();
    let context = display::context(state, schema, records, params.display, fields, &caller.0.roles).await?;
    let registry = state.registry();
    let enc = Encoding {
        base_url: base,
        fields,
        catalog: &registry.catalog,
        exclude_reference_link: params.exclude_reference_link,
        mode: params.display,
        context: &context,
    };
    Ok(records.iter().map(|r| wire::encode(schema, r, &enc)).collect())
}

/// `Link: <...>;rel="first",<...>;rel="prev",<...>;rel="next",<...>;rel="last"`.
pub(crate) fn link_header(
    base: &str,
    uri: &axum::http::Uri,
    pairs: &[(String, String)],
    limit: u64,
    offset: u64,
    total: u64,
) -> String {
    let limit = limit.max(1);
    let kept: Vec<&(String, String)> =
        pairs.iter().filter(|(k, _)| k != "sysparm_offset" && k != "sysparm_limit").collect();
    let url = |off: u64| {
        let mut q = form_encode(&kept);
        if !q.is_empty() {
            q.push('&');
        }
        q.push_str(&format!("sysparm_limit={limit}&sysparm_offset={off}"));
        format!("<{base}{}?{q}>", uri.path())
    };
    let last = if total == 0 { 0 } else { (total - 1) / limit * limit };
    let mut links = vec![format!("{};rel=\"first\"", url(0))];
    if offset > 0 {
        links.push(format!("{};rel=\"prev\"", url(offset.saturating_sub(limit))));
    }
    if offset + limit < total {
        links.push(format!("{};rel=\"next\"", url(offset + limit)));
    }
    links.push(format!("{};rel=\"last\"", url(last)));
    links.join(",")
}

fn form_encode(pairs: &[&(String, String)]) -> String {
    fn enc(s: &str) -> String {
        let mut out = String::with_capacity(s.len());
        for b in s.bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
                _ => out.push_str(&format!("%{b:02X}")),
            }
        }
        out
    }
    pairs.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect::<Vec<_>>().join("&")
}

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(table): Path<String>,
    BaseUrl(base): BaseUrl,
    OriginalUri(uri): OriginalUri,
    QueryPairs(pairs): QueryPairs,
) -> ApiResult<Response> {
    let schema = table_for(&state, &caller, &table, None)?;
    let params = TableParams::parse(&pairs)?;
    let query = list_query(&schema, &params)?;
    let (limit, offset) = (query.limit, query.offset);
    let page = state.store.list(schema.clone(), query).await?;
    let result = encode_records(&state, &caller, &schema, &page.records, &params, &base).await?;
    let mut headers = HeaderMap::new();
    headers.insert("x-total-count", HeaderValue::from(page.total));
    if !params.suppress_pagination_header
        && let Ok(v) = HeaderValue::from_str(&link_header(&base, &uri, &pairs, limit, offset, page.total))
    {
        headers.insert(header::LINK, v);
    }
    Ok((headers, Json(json!({ "result": result }))).into_response())
}

pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path((table, sys_id)): Path<(String, String)>,
    BaseUrl(base): BaseUrl,
    QueryPairs(pairs): QueryPairs,
) -> ApiResult<Json<Value>> {
    let schema = table_for(&state, &caller, &table, None)?;
    let params = TableParams::parse(&pairs)?;
    let record = state.store.get(schema.clone(), sys_id).await?.ok_or(ApiError::RecordNotFound)?;
    let mut encoded = encode_records(&state, &caller, &schema, std::slice::from_ref(&record), &params, &base).await?;
    Ok(Json(json!({ "result": encoded.pop() })))
}

/// The JSON object of a write body; an array's first record is taken and the rest ignored,
/// as ServiceNow does. Nesting and field count are limited as for the Import Set API.
fn body_object(
    config: &crate::ServerConfig,
    headers: &HeaderMap,
    body: &Bytes,
) -> ApiResult<serde_json::Map<String, Value>> {
    if let Some(ct) = headers.get(header::CONTENT_TYPE)
        && !ct.to_str().is_ok_and(crate::receive::is_json)
    {
        return Err(ApiError::UnsupportedMediaType);
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::Map::new());
    }
    let object = match crate::receive::parse_value(config, body)? {
        Value::Object(o) => Ok(o),
        Value::Array(mut items) if !items.is_empty() => match items.swap_remove(0) {
            Value::Object(o) => Ok(o),
            _ => Err(ApiError::BodyNotObject),
        },
        _ => Err(ApiError::BodyNotObject),
    }?;
    crate::receive::check_fields(config, &object)?;
    Ok(object)
}

fn refused(v: RuleViolation) -> ApiError {
    let RuleViolation::MandatoryFields { ref fields, .. } = v;
    let errors = fields
        .iter()
        .map(|f| sluice_core::validate::FieldError {
            code: sluice_core::validate::ErrorCode::DataPolicy,
            field: f.clone(),
            message: "is mandatory when the state is Resolved or Closed".into(),
            path: None,
        })
        .collect();
    ApiError::DataPolicy { detail: v.to_string(), errors }
}

#[allow(clippy::too_many_arguments)]
async fn respond_written(
    state: &AppState,
    caller: &Caller,
    schema: &TableSchema,
    record: &Record,
    params: &TableParams,
    base: &str,
    headers: &HeaderMap,
    status: StatusCode,
) -> ApiResult<Response> {
    let mut out_headers = HeaderMap::new();
    if status == StatusCode::CREATED
        && let Ok(v) = HeaderValue::from_str(&wire::record_link(base, &schema.name, &record["sys_id"]))
    {
        out_headers.insert(header::LOCATION, v);
    }
    let no_body =
        headers.get("x-no-response-body").and_then(|v| v.to_str().ok()).is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if no_body {
        return Ok((status, out_headers).into_response());
    }
    let mut encoded = encode_records(state, caller, schema, std::slice::from_ref(record), params, base).await?;
    Ok((status, out_headers, Json(json!({ "result": encoded.pop() }))).into_response())
}

/// A `sys_user` row written through this API may be an account: its cached verification is
/// dropped once the write is done.
fn forget_user(state: &AppState, sys_id: Option<String>) {
    if let Some(sys_id) = sys_id {
        state.credentials.forget_sys_id(&sys_id);
    }
}

fn actor(caller: &Caller) -> Actor {
    Actor { user_name: caller.0.user_name.clone(), sys_id: caller.0.sys_id.clone() }
}

/// Insert or update one record from a request body, then answer with it.
#[allow(clippy::too_many_arguments)]
async fn write_one(
    state: &AppState,
    caller: &Caller,
    table: &str,
    op: WriteOp,
    base: &str,
    pairs: &[(String, String)],
    headers: &HeaderMap,
    body: &Bytes,
) -> ApiResult<Response> {
    let (verb, status) = match op {
        WriteOp::Insert => ("Insert", StatusCode::CREATED),
        _ => ("Update", StatusCode::OK),
    };
    let schema = table_for(state, caller, table, Some(verb))?;
    let params = TableParams::parse(pairs)?;
    let object = body_object(&state.config, headers, body)?;
    let input =
        table_input::parse(&schema, &object, table_input::Choices::AsDeclared).map_err(ApiError::InvalidFields)?;
    // A change to a user may change an account: its cached credentials are dropped.
    let user = match &op {
        WriteOp::Update(sys_id) if table == tables::SYS_USER => Some(sys_id.clone()),
        _ => None,
    };
    let write = TableWrite {
        table: schema.clone(),
        op,
        values: input.values,
        journal: input.journal,
        actor: actor(caller),
        now: DateTime::now(),
        reason: sluice_store::table_write::REASON,
    };
    let written = state.store.write(write).await;
    forget_user(state, user);
    match written? {
        WriteResult::Written(record) => {
            respond_written(state, caller, &schema, &record, &params, base, headers, status).await
        }
        WriteResult::Refused(v) => Err(refused(v)),
        WriteResult::NotFound | WriteResult::Deleted => Err(ApiError::RecordNotFound),
    }
}

#[allow(clippy::too_many_arguments)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    PeerAddr(peer): PeerAddr,
    Path(table): Path<String>,
    BaseUrl(base): BaseUrl,
    QueryPairs(pairs): QueryPairs,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    if state.registry().integrations.contains_key(&table) {
        return import_through_table(&state, &caller, peer, &table, &base, &pairs, &headers, body).await;
    }
    write_one(&state, &caller, &table, WriteOp::Insert, &base, &pairs, &headers, &body).await
}

/// A POST of a staging row through the Table API (as older integrations do): the row runs
/// through the same import pipeline, and the answer is the staging row with its outcome
/// (`sys_import_state`, `sys_target_sys_id`, `sys_row_error`).
#[allow(clippy::too_many_arguments)]
async fn import_through_table(
    state: &AppState,
    caller: &Caller,
    peer: Option<std::net::IpAddr>,
    table: &str,
    base: &str,
    pairs: &[(String, String)],
    headers: &HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let integration = super::import::integration_for(
        state,
        caller,
        peer,
        table,
        "ACL Exception Insert Failed due to security constraints",
    )?;
    let object = body_object(&state.config, headers, &body)?;
    let actor = actor(caller);
    let registry = state.registry();
    let body = JsonObject { raw: body, object };
    let outcome = crate::pipeline::Pipeline::of(state, &registry).import_one(&integration, actor, body, None).await?;
    crate::observe::note_row(outcome.state, &outcome.errors);
    let row = state
        .store
        .get(integration.staging.clone(), outcome.staging_sys_id.to_string())
        .await?
        .ok_or_else(|| ApiError::Internal("the staged row is missing".into()))?;
    let params = TableParams::parse(pairs)?;
    respond_written(state, caller, &integration.staging, &row, &params, base, headers, StatusCode::CREATED).await
}

pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path((table, sys_id)): Path<(String, String)>,
    BaseUrl(base): BaseUrl,
    QueryPairs(pairs): QueryPairs,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    write_one(&state, &caller, &table, WriteOp::Update(sys_id), &base, &pairs, &headers, &body).await
}

pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path((table, sys_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let schema = table_for(&state, &caller, &table, Some("Delete"))?;
    let user = (table == tables::SYS_USER).then(|| sys_id.clone());
    let write = TableWrite {
        table: schema,
        op: WriteOp::Delete(sys_id),
        values: Default::default(),
        journal: Vec::new(),
        actor: actor(&caller),
        now: DateTime::now(),
        reason: sluice_store::table_write::REASON,
    };
    let written = state.store.write(write).await;
    forget_user(&state, user);
    match written? {
        WriteResult::Deleted => Ok(StatusCode::NO_CONTENT),
        WriteResult::NotFound => Err(ApiError::RecordNotFound),
        WriteResult::Written(_) | WriteResult::Refused(_) => Err(ApiError::Internal("delete wrote a record".into())),
    }
}
