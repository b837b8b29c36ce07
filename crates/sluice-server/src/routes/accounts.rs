//! Sluice's account API under `/api/sluice/v1/accounts` (the admin role only): list, create,
//! show, change (active, roles, web-service-only), rotate the password, delete, and API tokens.
//! Every change goes through [`Store::change_account`](sluice_store::Store::change_account),
//! which records it in the admin audit, and drops the account's cached verification at once.
//! Password hashes and token digests never leave the server; a generated password or a new
//! token is answered once. The console's account pages call the same functions ([`apply`],
//! [`create_account`], [`rotate_password`], [`add_token`], [`record_times`]).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use sluice_core::account::{Account, AccountPolicy, AccountRate, IpNet, Password, Role, UserName, parse_network};
use sluice_core::{DateTime, tables};
use sluice_store::{AccountAction, AccountChange, ApiToken};

use crate::AppState;
use crate::authenticate::{Caller, hash_password, new_api_token, token_digest};
use crate::error::{ApiError, ApiResult};
use crate::receive::{JsonObject, is_json, parse_object};

pub(crate) fn require_admin(caller: &Caller, what: &str) -> ApiResult<()> {
    if caller.0.roles.contains(&Role::Admin) {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!("{what} needs the admin role")))
    }
}

fn account_json(a: &Account) -> Value {
    json!({
        "name": a.user_name,
        "sys_id": a.sys_id.as_str(),
        "roles": a.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
        "active": a.active,
        "web_service_only": a.web_service_only,
        "networks": a.policy.networks.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "rate": a.policy.rate.map(|r| json!({"per_second": r.per_second, "burst": r.burst})),
    })
}

/// Source networks as given: CIDR networks or single addresses, at most 100.
fn networks(given: &[String]) -> ApiResult<Vec<IpNet>> {
    if given.len() > 100 {
        return Err(invalid("at most 100 networks per account"));
    }
    given.iter().map(|n| parse_network(n).map_err(invalid)).collect()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RateBody {
    per_second: u32,
    burst: u32,
}

/// A field that is present, `null` included (serde would read `null` as absent).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// `rate`: absent (unchanged), `null` (the server's default) or `{per_second, burst}`.
fn rate(given: Option<Value>) -> ApiResult<Option<Option<AccountRate>>> {
    match given {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(v) => {
            let r: RateBody = serde_json::from_value(v).map_err(|e| invalid(format!("rate: {e}")))?;
            if r.per_second > 0 && r.burst == 0 {
                return Err(invalid("rate: a burst of at least 1 is needed"));
            }
            Ok(Some(Some(AccountRate { per_second: r.per_second, burst: r.burst })))
        }
    }
}

fn token_json(t: &ApiToken) -> Value {
    let mut token =
        json!({"id": t.id, "label": t.label, "created_on": t.created_on.to_string(), "created_by": t.created_by});
    if let Some(integration) = &t.integration {
        token["integration"] = json!(integration);
    }
    token
}

fn invalid(e: impl std::fmt::Display) -> ApiError {
    ApiError::InvalidAccount(e.to_string())
}

/// Fields of a body object, refusing unknown ones (a typo must not pass silently).
fn fields<T: for<'de> Deserialize<'de>>(object: Map<String, Value>) -> ApiResult<T> {
    serde_json::from_value(Value::Object(object)).map_err(invalid)
}

fn roles(names: &[String]) -> ApiResult<Vec<Role>> {
    if names.is_empty() {
        return Err(invalid("give at least one role: admin, itil or import_set_loader"));
    }
    names.iter().map(|r| r.parse::<Role>().map_err(invalid)).collect()
}

/// The given password (checked), or a generated one that is answered once.
async fn password(given: Option<String>) -> ApiResult<(String, Option<String>)> {
    let (password, generated) = match given {
        Some(p) => (Password::parse(&p).map_err(invalid)?, false),
        None => (Password::generate(), true),
    };
    let shown = generated.then(|| password.expose().to_owned());
    // argon2 takes tens of milliseconds of CPU: off the async workers.
    let hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok((hash, shown))
}

/// An optional JSON object body (`rotate`, `tokens`): empty means no fields.
fn optional_object(state: &AppState, headers: &HeaderMap, body: &Bytes) -> ApiResult<Map<String, Value>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    if let Some(ct) = headers.get(header::CONTENT_TYPE)
        && !ct.to_str().is_ok_and(is_json)
    {
        return Err(ApiError::UnsupportedMediaType);
    }
    parse_object(&state.config, body)
}

/// Applies a change as the caller; the account's cached verification is dropped afterwards.
pub(crate) async fn apply(state: &AppState, caller: &Caller, name: &str, action: AccountAction) -> ApiResult<Account> {
    apply_at(state, caller, name, action, DateTime::now()).await
}

async fn apply_at(
    state: &AppState,
    caller: &Caller,
    name: &str,
    action: AccountAction,
    now: DateTime,
) -> ApiResult<Account> {
    let credentials = !matches!(action, AccountAction::AddToken { .. } | AccountAction::RevokeToken { .. });
    let change = AccountChange { user_name: name.to_owned(), action, by: caller.0.user_name.clone(), now };
    let result = state.store.change_account(change).await;
    if credentials {
        state.credentials.forget(name);
    }
    match result {
        Ok(Some(account)) => Ok(account),
        Ok(None) => Err(ApiError::RecordNotFound),
        Err(e) => Err(e.into()),
    }
}

pub async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    require_admin(&caller, "Managing accounts")?;
    let accounts = state.store.accounts().await?;
    Ok(Json(json!({ "result": accounts.iter().map(account_json).collect::<Vec<_>>() })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewAccountBody {
    pub name: String,
    pub roles: Vec<String>,
    pub password: Option<String>,
    pub web_service_only: Option<bool>,
    #[serde(default)]
    pub networks: Vec<String>,
    #[serde(default, deserialize_with = "present")]
    pub rate: Option<Value>,
}

pub async fn create(State(state): State<AppState>, caller: Caller, body: JsonObject) -> ApiResult<Response> {
    require_admin(&caller, "Managing accounts")?;
    let body: NewAccountBody = fields(body.object)?;
    let (account, generated) = create_account(&state, &caller, body).await?;
    let mut result = account_json(&account);
    if let Some(password) = generated {
        result["password"] = json!(password);
    }
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&format!("/api/sluice/v1/accounts/{}", account.user_name)) {
        headers.insert(header::LOCATION, v);
    }
    Ok((StatusCode::CREATED, headers, Json(json!({ "result": result }))).into_response())
}

/// Creates an account as asked (every field checked); a generated password is returned to be
/// shown once.
pub(crate) async fn create_account(
    state: &AppState,
    caller: &Caller,
    body: NewAccountBody,
) -> ApiResult<(Account, Option<String>)> {
    let name = UserName::parse(&body.name).map_err(invalid)?;
    let roles = roles(&body.roles)?;
    let policy = AccountPolicy { networks: networks(&body.networks)?, rate: rate(body.rate)?.flatten() };
    let (password_hash, generated) = password(body.password).await?;
    let web_service_only = body.web_service_only.unwrap_or(true);
    let action = AccountAction::Create { roles, password_hash, web_service_only, policy };
    let account = apply(state, caller, name.as_str(), action).await?;
    Ok((account, generated))
}

/// When an account was created (and by whom), last changed and its credentials last changed,
/// from its `sys_user` record.
pub(crate) struct RecordTimes {
    pub created_on: String,
    pub created_by: String,
    pub updated_on: String,
    pub credentials_changed_at: String,
}

pub(crate) async fn record_times(state: &AppState, account: &Account) -> ApiResult<Option<RecordTimes>> {
    let Some(schema) = state.registry().catalog.get(tables::SYS_USER).cloned() else { return Ok(None) };
    let Some(user) = state.store.get(schema, account.sys_id.as_str().to_owned()).await? else { return Ok(None) };
    let field = |f: &str| user.get(f).cloned().unwrap_or_default();
    Ok(Some(RecordTimes {
        created_on: field("sys_created_on"),
        created_by: field("sys_created_by"),
        updated_on: field("sys_updated_on"),
        credentials_changed_at: field("credentials_changed_at"),
    }))
}

pub async fn show(State(state): State<AppState>, caller: Caller, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    require_admin(&caller, "Managing accounts")?;
    let account = state.store.account(name.clone()).await?.ok_or(ApiError::RecordNotFound)?;
    let mut result = account_json(&account);
    if let Some(times) = record_times(&state, &account).await? {
        result["created_on"] = json!(times.created_on);
        result["created_by"] = json!(times.created_by);
        result["updated_on"] = json!(times.updated_on);
        result["credentials_changed_at"] = json!(times.credentials_changed_at);
    }
    let tokens = state.store.tokens(name).await?;
    result["tokens"] = tokens.iter().map(token_json).collect();
    Ok(Json(json!({ "result": result })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountUpdateBody {
    active: Option<bool>,
    roles: Option<Vec<String>>,
    web_service_only: Option<bool>,
    networks: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    rate: Option<Value>,
}

pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    body: JsonObject,
) -> ApiResult<Json<Value>> {
    require_admin(&caller, "Managing accounts")?;
    let body: AccountUpdateBody = fields(body.object)?;
    let roles = body.roles.as_deref().map(roles).transpose()?;
    let action = AccountAction::Update {
        active: body.active,
        roles,
        web_service_only: body.web_service_only,
        networks: body.networks.as_deref().map(networks).transpose()?,
        rate: rate(body.rate)?,
    };
    let account = apply(&state, &caller, &name, action).await?;
    Ok(Json(json!({ "result": account_json(&account) })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RotateBody {
    password: Option<String>,
}

pub async fn rotate(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    require_admin(&caller, "Managing accounts")?;
    let body: RotateBody = fields(optional_object(&state, &headers, &body)?)?;
    let (account, generated) = rotate_password(&state, &caller, &name, body.password).await?;
    let mut result = account_json(&account);
    if let Some(password) = generated {
        result["password"] = json!(password);
    }
    Ok(Json(json!({ "result": result })))
}

/// Sets the given password (checked) or a generated one, which is returned to be shown once.
pub(crate) async fn rotate_password(
    state: &AppState,
    caller: &Caller,
    name: &str,
    given: Option<String>,
) -> ApiResult<(Account, Option<String>)> {
    // Unknown accounts are refused before the (costly) hashing.
    state.store.account(name.to_owned()).await?.ok_or(ApiError::RecordNotFound)?;
    let (password_hash, generated) = password(given).await?;
    let account = apply(state, caller, name, AccountAction::SetPassword { password_hash }).await?;
    Ok((account, generated))
}

pub async fn remove(State(state): State<AppState>, caller: Caller, Path(name): Path<String>) -> ApiResult<StatusCode> {
    require_admin(&caller, "Managing accounts")?;
    apply(&state, &caller, &name, AccountAction::Delete).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn tokens(State(state): State<AppState>, caller: Caller, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    require_admin(&caller, "Managing accounts")?;
    state.store.account(name.clone()).await?.ok_or(ApiError::RecordNotFound)?;
    let tokens = state.store.tokens(name).await?;
    Ok(Json(json!({ "result": tokens.iter().map(token_json).collect::<Vec<_>>() })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenBody {
    label: Option<String>,
    /// A routing key of this integration (format pagerduty-events-v2) instead of a Bearer token.
    integration: Option<String>,
}

pub async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    require_admin(&caller, "Managing accounts")?;
    let body: TokenBody = fields(optional_object(&state, &headers, &body)?)?;
    let (created, token) = match body.integration {
        None => add_token(&state, &caller, &name, body.label.unwrap_or_default()).await?,
        Some(integration) => {
            add_routing_key(&state, &caller, &name, body.label.unwrap_or_default(), integration).await?
        }
    };
    let mut result = token_json(&created);
    result["token"] = json!(token);
    Ok((StatusCode::CREATED, Json(json!({ "result": result }))).into_response())
}

/// A new API token of `name`: the stored token and its text, which is shown once.
pub(crate) async fn add_token(
    state: &AppState,
    caller: &Caller,
    name: &str,
    label: String,
) -> ApiResult<(ApiToken, String)> {
    record_token(state, caller, name, label, None, new_api_token()).await
}

/// A new routing key of `name` for `integration` (a PagerDuty Events API v2 integration): the
/// stored token and its text, which is shown once.
pub(crate) async fn add_routing_key(
    state: &AppState,
    caller: &Caller,
    name: &str,
    label: String,
    integration: String,
) -> ApiResult<(ApiToken, String)> {
    let registry = state.registry();
    match registry.integrations.values().find(|i| i.name() == integration) {
        Some(i) if i.format() == sluice_core::integration::SenderFormat::PagerdutyEventsV2 => {}
        Some(i) => {
            return Err(invalid(format!(
                "integration {integration} has format {}: routing keys are for format pagerduty-events-v2",
                i.format()
            )));
        }
        None => return Err(invalid(format!("no integration named {integration}"))),
    }
    record_token(state, caller, name, label, Some(integration), crate::authenticate::new_routing_key()).await
}

async fn record_token(
    state: &AppState,
    caller: &Caller,
    name: &str,
    label: String,
    integration: Option<String>,
    token: String,
) -> ApiResult<(ApiToken, String)> {
    if label.chars().count() > 100 {
        return Err(invalid("a token label is at most 100 characters"));
    }
    let id = sluice_core::SysId::generate().into_string();
    let now = DateTime::now();
    let action = AccountAction::AddToken {
        id: id.clone(),
        digest: token_digest(&token),
        label: label.clone(),
        integration: integration.clone(),
    };
    let account = apply_at(state, caller, name, action, now).await?;
    let created = ApiToken {
        id,
        user_name: account.user_name,
        label,
        created_on: now,
        created_by: caller.0.user_name.clone(),
        integration,
    };
    Ok((created, token))
}

pub async fn revoke_token(
    State(state): State<AppState>,
    caller: Caller,
    Path((name, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    require_admin(&caller, "Managing accounts")?;
    apply(&state, &caller, &name, AccountAction::RevokeToken { id }).await?;
    Ok(StatusCode::NO_CONTENT)
}
