//! ServiceNow's Attachment API on `/api/now[/v1|/v2]/attachment`: list and read metadata
//! (`sys_attachment` records, every value a string, plus `download_link`), download a file,
//! delete one; uploads are [`upload`]. The parent record's table decides who may do what: reading
//! its records to list, read or download (an attachment on a table the caller cannot read is
//! "not found", as ServiceNow answers), writing them to upload or delete. Lists carry
//! `X-Total-Count` always: clients page on it.

pub mod upload;

use axum::Json;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use sluice_core::account::{Access, may};
use sluice_core::attachment::ATTACHABLE;
use sluice_core::rules::Actor;
use sluice_core::schema::TableSchema;
use sluice_core::{DateTime, Record, query, tables};
use sluice_store::{AttachmentRemoval, ListQuery};

use crate::AppState;
use crate::authenticate::Caller;
use crate::error::{ApiError, ApiResult};
use crate::params::TableParams;
use crate::receive::{BaseUrl, QueryPairs};

/// ServiceNow's default page of attachment metadata; larger pages are cut to [`MAX_LIMIT`].
const DEFAULT_LIMIT: u64 = 1000;
const MAX_LIMIT: u64 = 10_000;

fn schema(state: &AppState) -> std::sync::Arc<TableSchema> {
    state.registry().catalog.get(tables::SYS_ATTACHMENT).expect("built-in table").clone()
}

/// Where an attachment's metadata and content are served.
pub fn link(base: &str, sys_id: &str) -> String {
    format!("{base}/api/now/attachment/{sys_id}")
}

/// A `sys_attachment` record on the wire: every visible field as a string, and `download_link`.
pub fn encode(schema: &TableSchema, record: &Record, base: &str) -> Value {
    let mut out = Map::new();
    for field in schema.visible_fields() {
        out.insert(field.name.clone(), json!(record.get(&field.name).cloned().unwrap_or_default()));
    }
    let sys_id = record.get("sys_id").map(String::as_str).unwrap_or("");
    out.insert("download_link".into(), json!(format!("{}/file", link(base, sys_id))));
    Value::Object(out)
}

pub fn actor(caller: &Caller) -> Actor {
    Actor { user_name: caller.0.user_name.clone(), sys_id: caller.0.sys_id.clone() }
}

/// The attachment, if it exists and the caller may read its record's table.
async fn readable(state: &AppState, caller: &Caller, sys_id: &str) -> ApiResult<(Record, std::sync::Arc<TableSchema>)> {
    let schema = schema(state);
    let record = state.store.get(schema.clone(), sys_id.to_ascii_lowercase()).await?.ok_or(ApiError::RecordNotFound)?;
    let table = record.get("table_name").map(String::as_str).unwrap_or("");
    if !may(&caller.0.roles, table, Access::Read) {
        return Err(ApiError::RecordNotFound);
    }
    Ok((record, schema))
}

/// `GET /attachment`: metadata of the attachments the caller may read, filtered by
/// `sysparm_query` (against `sys_attachment`) and plain `field=value` parameters, paged.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    BaseUrl(base): BaseUrl,
    OriginalUri(uri): OriginalUri,
    QueryPairs(pairs): QueryPairs,
) -> ApiResult<Response> {
    let schema = schema(&state);
    let params = TableParams::parse(&pairs)?;
    let readable: Vec<&str> = ATTACHABLE.iter().copied().filter(|t| may(&caller.0.roles, t, Access::Read)).collect();
    let mut filter = query::parse(params.query.as_deref().unwrap_or_default(), sluice_core::DateTime::now())?;
    for (k, v) in &params.field_filters {
        if schema.visible_field(k).is_some() {
            filter.and_equals(k, v);
        }
    }
    filter.and_in("table_name", &readable);
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT);
    let page = if readable.is_empty() {
        sluice_store::Page::default()
    } else {
        state.store.list(schema.clone(), ListQuery { filter, limit, offset: params.offset, count_up_to: None }).await?
    };
    let result: Vec<Value> = page.records.iter().map(|r| encode(&schema, r, &base)).collect();
    let mut headers = HeaderMap::new();
    headers.insert("x-total-count", HeaderValue::from(page.total));
    let links = super::table::link_header(&base, &uri, &pairs, limit, params.offset, page.total);
    if !params.suppress_pagination_header
        && let Ok(v) = HeaderValue::from_str(&links)
    {
        headers.insert(header::LINK, v);
    }
    Ok((headers, Json(json!({ "result": result }))).into_response())
}

/// `GET /attachment/{sys_id}`: one attachment's metadata.
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(sys_id): Path<String>,
    BaseUrl(base): BaseUrl,
) -> ApiResult<Json<Value>> {
    let (record, schema) = readable(&state, &caller, &sys_id).await?;
    Ok(Json(json!({ "result": encode(&schema, &record, &base) })))
}

/// `Content-Disposition: attachment` with the name twice (RFC 6266): an ASCII fallback in
/// `filename` (anything else, quotes, backslashes and path separators as `_`) and the exact
/// name percent-encoded as UTF-8 in `filename*` (RFC 5987).
pub fn content_disposition(name: &str) -> String {
    let fallback: String = name
        .chars()
        .map(|c| if (c.is_ascii_graphic() || c == ' ') && !matches!(c, '"' | '\\' | '/' | '%') { c } else { '_' })
        .collect();
    let mut encoded = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

/// `GET /attachment/{sys_id}/file`: the content, with the stored (sniffed) type, as a download
/// the browser must not reinterpret.
pub async fn file(State(state): State<AppState>, caller: Caller, Path(sys_id): Path<String>) -> ApiResult<Response> {
    let (record, _) = readable(&state, &caller, &sys_id).await?;
    let content = state
        .store
        .attachment_content(record["sys_id"].clone())
        .await?
        .ok_or_else(|| ApiError::Internal("an attachment's content is missing".into()))?;
    let mut headers = HeaderMap::new();
    let content_type = HeaderValue::from_str(&record["content_type"])
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    headers.insert(header::CONTENT_TYPE, content_type);
    if let Ok(v) = HeaderValue::from_str(&content_disposition(&record["file_name"])) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'; sandbox"));
    Ok((headers, content).into_response())
}

/// `DELETE /attachment/{sys_id}`: the attachment and its content, recorded in `sys_audit`.
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(sys_id): Path<String>,
) -> ApiResult<StatusCode> {
    let (record, _) = readable(&state, &caller, &sys_id).await?;
    if !may(&caller.0.roles, &record["table_name"], Access::Write) {
        return Err(ApiError::forbidden("ACL Exception Delete Failed due to security constraints"));
    }
    let removal = AttachmentRemoval { sys_id: record["sys_id"].clone(), actor: actor(&caller), now: DateTime::now() };
    match state.store.delete_attachment(removal).await? {
        Some(deleted) => {
            tracing::info!(attachment = %deleted["sys_id"], table = %deleted["table_name"],
                record = %deleted["table_sys_id"], by = %caller.0.user_name, "attachment deleted");
            Ok(StatusCode::NO_CONTENT)
        }
        None => Err(ApiError::RecordNotFound),
    }
}

#[cfg(test)]
mod tests {
    use super::content_disposition;

    #[test]
    fn file_names_leave_encoded() {
        assert_eq!(
            content_disposition("report.pdf"),
            "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf"
        );
        assert_eq!(
            content_disposition("Über \"x\"/..\\y%.txt"),
            "attachment; filename=\"_ber _x__.._y_.txt\"; filename*=UTF-8''%C3%9Cber%20%22x%22%2F..%5Cy%25.txt"
        );
    }
}
