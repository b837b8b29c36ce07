//! The Import Set API: `POST /api/now/import/{staging_table}` runs one row through the intake
//! pipeline and answers with ServiceNow's body; `GET .../{sys_id}` shows a staged row's outcome.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::http::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sluice_core::Record;
use sluice_core::account::{Access, Role, may};
use sluice_core::integration::Integration;
use sluice_core::rules::Actor;
use sluice_core::tables;
use sluice_store::staging_row::outcome_of;
use sluice_store::{Idempotency, ImportOutcome, StoreError};
use std::sync::Arc;

use crate::AppState;
use crate::authenticate::Caller;
use crate::error::{ApiError, ApiResult};
use crate::pipeline::Pipeline;
use crate::receive::{BaseUrl, JsonObject, PeerAddr};
use crate::routes::answer::{ImportResult, ImportSetAnswer};
use crate::wire::{self, Encoding};

/// The integration behind a staging table, if this caller may use it from this address.
pub(crate) fn integration_for(
    state: &AppState,
    caller: &Caller,
    peer: Option<std::net::IpAddr>,
    table: &str,
    denied: &str,
) -> ApiResult<Arc<Integration>> {
    let integration =
        state.registry().integrations.get(table).cloned().ok_or_else(|| ApiError::InvalidTable(table.to_owned()))?;
    admit(&integration, caller, peer, denied)?;
    Ok(integration)
}

/// The prologue of every route that posts rows (Import Set API, sender hook): the integration is
/// noted for the request's statistics, then the caller's rights on it from this address.
pub(crate) fn admit(
    integration: &Integration,
    caller: &Caller,
    peer: Option<std::net::IpAddr>,
    denied: &str,
) -> ApiResult<()> {
    crate::observe::note_integration(integration.name());
    may_post(integration, caller, peer, denied)
}

/// Whether this caller may post to the integration from this address: the role, the
/// integration's bound accounts and its source networks.
pub(crate) fn may_post(
    integration: &Integration,
    caller: &Caller,
    peer: Option<std::net::IpAddr>,
    denied: &str,
) -> ApiResult<()> {
    let is_admin = caller.0.roles.contains(&Role::Admin);
    let table = &integration.definition.staging_table;
    if !may(&caller.0.roles, table, Access::Import) || !integration.allows_account(&caller.0.user_name, is_admin) {
        return Err(ApiError::forbidden(denied));
    }
    let allowed = match peer {
        Some(ip) => integration.allows_source(ip),
        None => integration.networks.is_empty(),
    };
    if !allowed {
        return Err(ApiError::SourceNotAllowed);
    }
    Ok(())
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    PeerAddr(peer): PeerAddr,
    Path(table): Path<String>,
    BaseUrl(base): BaseUrl,
    headers: HeaderMap,
    body: Result<JsonObject, ApiError>,
) -> ApiResult<(StatusCode, HeaderMap, Json<ImportSetAnswer>)> {
    // The table and the caller's rights are checked before the body is judged.
    let integration =
        integration_for(&state, &caller, peer, &table, "ACL Exception Insert Failed due to security constraints")?;
    let body = body?;
    let idempotency = idempotency_key(&headers, &table, &body.raw)?;
    let actor = Actor { user_name: caller.0.user_name.clone(), sys_id: caller.0.sys_id.clone() };
    let registry = state.registry();
    let outcome = Pipeline::of(&state, &registry).import_one(&integration, actor, body, idempotency).await?;
    if !outcome.replayed {
        crate::metrics::record_outcome(integration.name(), outcome.state.as_str());
        crate::observe::note_row(outcome.state, &outcome.errors);
    }
    let result = ImportResult::new(&integration, &outcome, &base);
    let mut out_headers = HeaderMap::new();
    if outcome.replayed {
        out_headers.insert("idempotent-replayed", axum::http::HeaderValue::from_static("true"));
    }
    Ok((
        StatusCode::CREATED,
        out_headers,
        Json(ImportSetAnswer { import_set: outcome.import_set, staging_table: table, result: vec![result] }),
    ))
}

/// The `Idempotency-Key` header (1 to 255 visible ASCII characters) and a digest of what is
/// asked, so a retry can be told from a different request under the same key.
pub(crate) fn idempotency_key(headers: &HeaderMap, table: &str, body: &[u8]) -> ApiResult<Option<Idempotency>> {
    let Some(value) = headers.get("idempotency-key") else { return Ok(None) };
    let key = value.to_str().ok().filter(|k| (1..=255).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()));
    let Some(key) = key else { return Err(ApiError::InvalidIdempotencyKey) };
    let mut digest = Sha256::new();
    digest.update(table.as_bytes());
    digest.update([0]);
    digest.update(body);
    Ok(Some(Idempotency { key: key.to_owned(), fingerprint: sluice_core::id::hex(&digest.finalize()) }))
}

/// One `result[]` element as JSON ([`ImportResult`]).
pub(crate) fn result_entry(integration: &Integration, o: &ImportOutcome, base: &str) -> Value {
    json!(ImportResult::new(integration, o, base))
}

/// A staged row's outcome as the Import Set API shows it (the console too): its import set's
/// number, the target's display value, and the errors with their JSON Pointers.
pub(crate) async fn staged_outcome(
    state: &AppState,
    integration: &Integration,
    row: &Record,
) -> Result<ImportOutcome, StoreError> {
    let field = |name: &str| row.get(name).cloned().unwrap_or_default();
    let set_schema = state.registry().catalog.get(tables::SYS_IMPORT_SET).expect("built-in table").clone();
    let import_set =
        state.store.get(set_schema, field("sys_import_set")).await?.map(|s| s["number"].clone()).unwrap_or_default();
    let target_id = field("sys_target_sys_id");
    let display_value = if target_id.is_empty() {
        None
    } else {
        let target = state.store.get(integration.target.clone(), target_id).await?;
        target.and_then(|t| t.get(&integration.target.display_field).cloned())
    };
    let mut outcome = outcome_of(row, &import_set, display_value)?;
    sluice_core::contract::add_paths(integration, &mut outcome.errors);
    Ok(outcome)
}

pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    PeerAddr(peer): PeerAddr,
    Path((table, sys_id)): Path<(String, String)>,
    BaseUrl(base): BaseUrl,
) -> ApiResult<Json<Value>> {
    let integration =
        integration_for(&state, &caller, peer, &table, "ACL Exception Read Failed due to security constraints")?;
    let row = state.store.get(integration.staging.clone(), sys_id).await?.ok_or(ApiError::RecordNotFound)?;
    let outcome = staged_outcome(&state, &integration, &row).await?;
    let import_set = outcome.import_set.clone();
    let context = wire::DisplayContext::default();
    // All fields, none dot-walked: no table is looked up.
    let catalog = sluice_core::tables::Catalog::default();
    let enc = Encoding {
        base_url: &base,
        fields: None,
        catalog: &catalog,
        exclude_reference_link: false,
        mode: crate::params::DisplayMode::Value,
        context: &context,
    };
    Ok(Json(json!({
        "import_set": import_set,
        "staging_table": table,
        "result": [result_entry(&integration, &outcome, &base)],
        "row": wire::encode(&integration.staging, &row, &enc),
        "payload": row["sys_payload"],
    })))
}
