//! Uploads: `POST /attachment/file?table_name=&table_sys_id=&file_name=` with the file as the
//! body, and `POST /attachment/upload` with a `multipart/form-data` form (`table_name`,
//! `table_sys_id`, then the file part, last). The table and the caller's rights are checked
//! before a raw body is read; a form names them inside, so they are checked once it is read. Either
//! body is read within `--max-attachment-bytes` (a form with a small allowance for its part
//! headers), refused with 413 as soon as it grows past it. The content type is sniffed from the
//! bytes, the SHA-256 and size recorded, and the record and content committed together.

use std::sync::Arc;

use axum::Json;
use axum::body::{Body, HttpBody};
use axum::extract::{Request, State};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use sha2::{Digest, Sha256};
use sluice_core::account::{Access, may};
use sluice_core::attachment::{self, FileName};
use sluice_core::schema::TableSchema;
use sluice_core::{DateTime, SysId};
use sluice_store::{AttachmentAdded, NewAttachment};

use super::{actor, encode, link};
use crate::authenticate::Caller;
use crate::error::{ApiError, ApiResult};
use crate::multipart;
use crate::receive::{BaseUrl, QueryPairs};
use crate::{AppState, ServerConfig};

/// What a form may carry around its file: delimiters, part headers, the metadata fields.
pub const FORM_ALLOWANCE: usize = 64 * 1024;

/// The body limit of an upload path, for the declared-length check before routing; `None` for
/// other paths.
pub fn body_limit(config: &ServerConfig, path: &str) -> Option<usize> {
    if path.ends_with("/attachment/file") {
        Some(config.max_attachment_bytes)
    } else if path.ends_with("/attachment/upload") {
        Some(config.max_attachment_bytes.saturating_add(FORM_ALLOWANCE))
    } else {
        None
    }
}

/// Where a file goes, checked: a table that takes attachments and that the caller may read and
/// write, a sys_id, a usable file name.
struct Target {
    parent: Arc<TableSchema>,
    parent_sys_id: String,
    file_name: FileName,
}

impl Target {
    fn check(state: &AppState, caller: &Caller, table: &str, sys_id: &str, file_name: &str) -> ApiResult<Self> {
        let parent =
            state.registry().catalog.get(table).cloned().ok_or_else(|| ApiError::InvalidTable(table.to_owned()))?;
        if !attachment::attachable(table) {
            return Err(ApiError::AttachmentsNotAllowed(table.to_owned()));
        }
        let roles = &caller.0.roles;
        if !may(roles, table, Access::Read) || !may(roles, table, Access::Write) {
            return Err(ApiError::forbidden("ACL Exception Insert Failed due to security constraints"));
        }
        let file_name = FileName::parse(file_name)
            .map_err(|e| ApiError::InvalidParameter(format!("file_name {file_name:?}: {e}")))?;
        let parent_sys_id = sys_id.to_ascii_lowercase();
        if !SysId::is_valid(&parent_sys_id) {
            return Err(ApiError::ParentNotFound { table: table.to_owned(), sys_id: sys_id.to_owned() });
        }
        Ok(Self { parent, parent_sys_id, file_name })
    }
}

/// Why a body could not be read whole.
enum Unread {
    TooLarge,
    Broken(String),
}

/// The body, up to `limit` bytes, refused as soon as it grows past it.
async fn read_limited(headers: &HeaderMap, mut body: Body, limit: usize) -> Result<Vec<u8>, Unread> {
    let declared = headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(Unread::TooLarge);
    }
    let mut buf = Vec::with_capacity(declared.unwrap_or(0));
    while let Some(frame) = std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await {
        let frame = frame.map_err(|e| Unread::Broken(e.to_string()))?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > limit {
                return Err(Unread::TooLarge);
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf)
}

fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().rev().find(|(k, v)| k == name && !v.is_empty()).map(|(_, v)| v.as_str())
}

/// `POST /attachment/file`: the body is the file; `Content-Type` is its declared type.
pub async fn raw(
    State(state): State<AppState>,
    caller: Caller,
    BaseUrl(base): BaseUrl,
    QueryPairs(pairs): QueryPairs,
    request: Request,
) -> ApiResult<Response> {
    let table = param(&pairs, "table_name").ok_or(ApiError::MissingParameter("table_name"))?;
    let sys_id = param(&pairs, "table_sys_id").ok_or(ApiError::MissingParameter("table_sys_id"))?;
    let file_name = param(&pairs, "file_name").ok_or(ApiError::MissingParameter("file_name"))?;
    let target = Target::check(&state, &caller, table, sys_id, file_name)?;
    let (parts, body) = request.into_parts();
    let limit = state.config.max_attachment_bytes;
    let content = read_limited(&parts.headers, body, limit).await.map_err(|e| match e {
        Unread::TooLarge => ApiError::AttachmentTooLarge(limit),
        Unread::Broken(e) => ApiError::InvalidParameter(format!("the body could not be read: {e}")),
    })?;
    let declared = parts.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    store(&state, &caller, target, declared, content, &base).await
}

/// `POST /attachment/upload`: a `multipart/form-data` form, its file part last.
pub async fn form(
    State(state): State<AppState>,
    caller: Caller,
    BaseUrl(base): BaseUrl,
    request: Request,
) -> ApiResult<Response> {
    let (parts, body) = request.into_parts();
    let content_type = parts.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let boundary = multipart::boundary(content_type).ok_or_else(|| {
        ApiError::MalformedMultipart("Content-Type must be multipart/form-data with a boundary".into())
    })?;
    let limit = state.config.max_attachment_bytes;
    let raw = read_limited(&parts.headers, body, limit.saturating_add(FORM_ALLOWANCE)).await.map_err(|e| match e {
        Unread::TooLarge => ApiError::AttachmentTooLarge(limit),
        Unread::Broken(e) => ApiError::MalformedMultipart(format!("the body could not be read: {e}")),
    })?;
    let form = multipart::parse(&raw, &boundary).map_err(|e| ApiError::MalformedMultipart(e.0))?;
    let table = form.field("table_name").ok_or(ApiError::MissingParameter("table_name"))?;
    // `record_sys_id` is the name older ServiceNow documentation gives it.
    let sys_id = form
        .field("table_sys_id")
        .or_else(|| form.field("record_sys_id"))
        .ok_or(ApiError::MissingParameter("table_sys_id"))?;
    let file = form.file.as_ref().ok_or_else(|| ApiError::MalformedMultipart("the form has no file part".into()))?;
    let target = Target::check(&state, &caller, table, sys_id, &file.file_name)?;
    if file.content.len() > limit {
        return Err(ApiError::AttachmentTooLarge(limit));
    }
    let content = raw[file.content.clone()].to_vec();
    drop(raw);
    store(&state, &caller, target, file.content_type.as_deref().unwrap_or(""), content, &base).await
}

/// Sniffs, hashes and stores the file; answers 201 with its metadata and `Location`.
async fn store(
    state: &AppState,
    caller: &Caller,
    target: Target,
    declared: &str,
    content: Vec<u8>,
    base: &str,
) -> ApiResult<Response> {
    let hash = sluice_core::id::hex(&Sha256::digest(&content));
    let content_type = attachment::content_type(&content, declared).to_owned();
    let (table, sys_id) = (target.parent.name.clone(), target.parent_sys_id.clone());
    let new = NewAttachment {
        parent: target.parent,
        parent_sys_id: target.parent_sys_id,
        file_name: target.file_name.as_str().to_owned(),
        content_type,
        hash,
        content,
        actor: actor(caller),
        now: DateTime::now(),
    };
    let record = match state.store.add_attachment(new).await? {
        AttachmentAdded::Added(record) => record,
        AttachmentAdded::NoParent => return Err(ApiError::ParentNotFound { table, sys_id }),
    };
    tracing::info!(attachment = %record["sys_id"], table = %table, record = %sys_id,
        bytes = %record["size_bytes"], by = %caller.0.user_name, "attachment stored");
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&link(base, &record["sys_id"])) {
        headers.insert(LOCATION, v);
    }
    let schema = super::schema(state);
    Ok((StatusCode::CREATED, headers, Json(json!({ "result": encode(&schema, &record, base) }))).into_response())
}
