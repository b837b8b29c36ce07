//! SOAP intake as ServiceNow offers it (docs/soap.md): `POST /{staging_table}.do?SOAP` (or
//! `?displayvalue=…&SOAP`) with `insert`, `insertMultiple`, `get` and `getRecords`, in SOAP 1.1
//! or 1.2; `GET /{staging_table}.do?WSDL` for the table's WSDL. Inserts run through the intake
//! pipeline as the Import Set API's do (same admission, staging, contract, history, stats);
//! reads use the Table API's rights on the staging table. Every error is a SOAP fault carrying
//! sluice's stable code and request id.
//!
//! Mounted outside the route catalogue (and so the OpenAPI document): the WSDL is this
//! interface's description.

pub mod envelope;
pub mod operations;
pub mod wsdl;

use axum::body::to_bytes;
use axum::extract::{Path, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::authenticate::Caller;
use crate::error::ApiError;
use crate::receive::{BaseUrl, PeerAddr};
use crate::routes::import::{idempotency_key, integration_for};
use envelope::{Operation, Version};
use operations::Answer;

const DENIED_INSERT: &str = "ACL Exception Insert Failed due to security constraints";

/// What the query string asks: `SOAP` (with the `displayvalue` asked, if any) or `WSDL`.
enum Asked {
    Soap { display: Option<String> },
    Wsdl,
}

fn asked(query: Option<&str>) -> Option<Asked> {
    let parts: Vec<&str> = query.unwrap_or("").split('&').filter(|p| !p.is_empty()).collect();
    let display = parts.iter().find_map(|p| p.strip_prefix("displayvalue=")).map(str::to_owned);
    let others = parts.iter().filter(|p| !p.starts_with("displayvalue=")).count();
    match parts.last() {
        Some(&"SOAP") if others == 1 => Some(Asked::Soap { display }),
        Some(&"WSDL") if parts.len() == 1 => Some(Asked::Wsdl),
        _ => None,
    }
}

/// The staging table a `{table}.do` path names.
fn table_of(file: &str) -> Option<&str> {
    file.strip_suffix(".do").filter(|t| !t.is_empty())
}

/// The absolute `…/{table}.do?SOAP` URL, built from the same base as every other link.
pub fn endpoint(base: &str, table: &str) -> String {
    format!("{base}/{table}.do?SOAP")
}

/// `GET /{table}.do?WSDL`: readable by those who may read the integration's contract (admins
/// and the accounts it names, as `schema.json`); others are told it does not exist.
pub async fn get(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    Path(file): Path<String>,
    BaseUrl(base): BaseUrl,
    request: Request,
) -> Response {
    let (Some(table), Some(Asked::Wsdl)) = (table_of(&file), asked(request.uri().query())) else {
        return ApiError::NoSuchResource.into_response();
    };
    let caller = match caller {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let integration = state.registry().integrations.get(table).cloned();
    let Some(integration) = integration.filter(|i| crate::routes::integrations::visible(&caller, i)) else {
        return ApiError::RecordNotFound.into_response();
    };
    let document = wsdl::document(&integration, &endpoint(&base, table), state.config.max_records);
    (StatusCode::OK, [(CONTENT_TYPE, HeaderValue::from_static("text/xml; charset=utf-8"))], document).into_response()
}

/// `POST /{table}.do?SOAP`.
pub async fn post(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    PeerAddr(peer): PeerAddr,
    Path(file): Path<String>,
    BaseUrl(base): BaseUrl,
    request: Request,
) -> Response {
    let (Some(table), Some(Asked::Soap { display })) = (table_of(&file), asked(request.uri().query())) else {
        return ApiError::NoSuchResource.into_response();
    };
    let table = table.to_owned();
    // Not SOAP at all: answered as 1.1, the version ServiceNow's clients speak.
    let Some(version) = Version::of(request.headers()) else {
        return envelope::fault(Version::Soap11, ApiError::UnsupportedMediaType, &[]);
    };
    let caller = match caller {
        Ok(c) => c,
        Err(e) => return envelope::fault(version, e, &[]),
    };
    match serve(&state, &caller, peer, &table, display.as_deref(), &base, version, request).await {
        Ok(Answer::Body(body)) => envelope::answer(version, &body),
        Ok(Answer::RowFailed { error, staging_sys_id }) => envelope::row_fault(version, error, &staging_sys_id),
        Err(e) => envelope::fault(version, e, &[]),
    }
}

/// The operation's response element, qualified by the table's namespace; its content is not
/// (`elementFormDefault="unqualified"`).
fn wrap(operation: Operation, table: &str, content: &str) -> String {
    let name = operation.name();
    let mut ns = String::new();
    crate::xml::push_text(&mut ns, &wsdl::namespace(table));
    format!(r#"<tns:{name}Response xmlns:tns="{}">{content}</tns:{name}Response>"#, ns.replace('"', "&quot;"))
}

#[allow(clippy::too_many_arguments)]
async fn serve(
    state: &AppState,
    caller: &Caller,
    peer: Option<std::net::IpAddr>,
    table: &str,
    display: Option<&str>,
    base: &str,
    version: Version,
    request: Request,
) -> Result<Answer, ApiError> {
    // The table and the caller's right to post are checked before the body is read, as on the
    // Import Set API; reads are narrowed further by the Table API's rights.
    let integration = integration_for(state, caller, peer, table, DENIED_INSERT)?;
    let (parts, body) = request.into_parts();
    // An insertMultiple envelope may be as large as a bulk body (single rows are held to the
    // single-row limit once read). A body that may be larger than a single row's waits for its
    // share of the bulk byte budget before it is read, as on the REST insertMultiple route.
    let limit = state.config.max_bulk_body_bytes;
    let declared = crate::routes::insert_multiple::declared_length(&parts.headers);
    let _bytes = match declared {
        Some(n) if n <= state.config.max_body_bytes => None,
        _ => {
            let kib = declared.unwrap_or(limit).div_ceil(1024).max(1);
            let kib = kib.min(crate::bulk_budget_kib(state.config.max_bulk_inflight_bytes));
            let kib = u32::try_from(kib).unwrap_or(u32::MAX);
            let budget = state.bulk_bytes.clone();
            Some(budget.acquire_many_owned(kib).await.map_err(|_| ApiError::Internal("bulk budget closed".into()))?)
        }
    };
    let raw = to_bytes(body, limit).await.map_err(|_| ApiError::BodyTooLarge(limit))?;
    let text = std::str::from_utf8(&raw).map_err(|_| ApiError::MalformedXml("the body is not UTF-8".into()))?;
    let request = envelope::read(version, text, state.config.max_json_depth + 1)?;
    let idempotency = idempotency_key(&parts.headers, table, &raw)?;
    let answer = match request.operation {
        Operation::Insert => {
            operations::insert(state, caller, &integration, request.content, idempotency, base).await?
        }
        Operation::InsertMultiple => {
            operations::insert_multiple(state, caller, &integration, request.content, idempotency, base).await?
        }
        Operation::Get => operations::get(state, caller, &integration, &request.content, display, base).await?,
        Operation::GetRecords => {
            operations::get_records(state, caller, &integration, &request.content, display, base).await?
        }
    };
    Ok(match answer {
        Answer::Body(content) => Answer::Body(wrap(request.operation, table, &content)),
        failed => failed,
    })
}
