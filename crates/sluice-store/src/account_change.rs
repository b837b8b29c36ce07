//! An account change ([`crate::Accounts::change_account`]), decided once for every backend: what
//! each [`AccountAction`] writes to `sys_user` and `sluice_api_token`, the last-admin rule, and
//! the admin-audit entry that goes with it. Each backend implements only [`AccountTransaction`],
//! the statements, inside its own transaction (PostgreSQL takes its advisory locks first).

use serde_json::{Value, json};
use sluice_core::account::{Account, AccountPolicy, Role, format_networks, format_roles};
use sluice_core::rules::{self, Actor};
use sluice_core::schema::TableSchema;
use sluice_core::tables::{self, Catalog};
use sluice_core::{DateTime, Record, SysId};

use crate::account_fields::{self, bool_text, is_admin, networks_json, rate_json, rate_texts, role_names};
use crate::{AccountAction, AccountChange, AdminAuditEntry, ApiToken, NewAccount, StoreError};

/// The statements of an account change, inside one transaction of one backend.
// As `settle::RowTransaction`: concrete backends only, static dispatch, no `Send` promised.
#[allow(async_fn_in_trait)]
pub trait AccountTransaction {
    type Error: From<StoreError>;

    /// The account (a `sys_user` record with a password hash) with exactly this user name.
    async fn find_account(&mut self, user_name: &str) -> Result<Option<Account>, Self::Error>;

    /// The oldest `sys_user` record with exactly this user name, account or not: its sys_id and
    /// password hash (empty: not an account).
    async fn find_user(&mut self, user_name: &str) -> Result<Option<(String, String)>, Self::Error>;

    /// Whether an account other than `sys_id` is an active admin.
    async fn another_admin(&mut self, sys_id: &SysId) -> Result<bool, Self::Error>;

    /// Sets the given `sys_user` columns of `sys_id`, stamps the update (`by`, `now`, the update
    /// count) and raises the credentials version (`credentials_changed_at` = `now`).
    async fn touch(&mut self, sys_id: &SysId, set: &[(&str, &str)], by: &str, now: DateTime)
    -> Result<(), Self::Error>;

    /// Inserts a new `sys_user` record.
    async fn insert_user(&mut self, schema: &TableSchema, record: &Record) -> Result<(), Self::Error>;

    /// Records an API token (of `token.user_name`) by its digest.
    async fn add_token(&mut self, token: &ApiToken, digest: &str) -> Result<(), Self::Error>;

    /// Deletes the API token `id` of `user_name`, or every one of them (`None`); how many.
    async fn delete_tokens(&mut self, user_name: &str, id: Option<&str>) -> Result<u64, Self::Error>;

    /// Deletes every saved console filter of `user_name`; how many.
    async fn delete_saved_filters(&mut self, user_name: &str) -> Result<u64, Self::Error>;

    async fn record_audit(&mut self, entry: &AdminAuditEntry) -> Result<(), Self::Error>;
}

/// The first-start admin (interactive) and other accounts made without the account API.
pub async fn add<T: AccountTransaction>(tx: &mut T, catalog: &Catalog, new: &NewAccount) -> Result<Account, T::Error> {
    let change = AccountChange {
        user_name: new.user_name.clone(),
        action: AccountAction::Create {
            roles: new.roles.clone(),
            password_hash: new.password_hash.clone(),
            web_service_only: new.web_service_only,
            policy: AccountPolicy::default(),
        },
        by: new.created_by.clone(),
        now: new.now,
    };
    change_account(tx, catalog, &change)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("account {} was not created", new.user_name)).into())
}

/// Applies `change` with its admin-audit entry; `None` when the account (or, for `RevokeToken`,
/// the token) does not exist.
pub async fn change_account<T: AccountTransaction>(
    tx: &mut T,
    catalog: &Catalog,
    change: &AccountChange,
) -> Result<Option<Account>, T::Error> {
    if let AccountAction::Create { roles, password_hash, web_service_only, policy } = &change.action {
        return create(tx, catalog, change, roles, password_hash, *web_service_only, policy).await.map(Some);
    }
    let Some(before) = tx.find_account(&change.user_name).await? else { return Ok(None) };
    let (by, now) = (change.by.as_str(), change.now);
    match &change.action {
        AccountAction::Create { .. } => unreachable!("handled above"),
        AccountAction::Update { active, roles, web_service_only, networks, rate } => {
            let update = account_fields::update(
                &before,
                *active,
                roles.as_deref(),
                *web_service_only,
                networks.as_deref(),
                *rate,
            );
            if is_admin(&before) && !update.after_admin && !tx.another_admin(&before.sys_id).await? {
                return Err(StoreError::LastAdmin.into());
            }
            let set: Vec<(&str, &str)> = update.set.iter().map(|(f, v)| (*f, v.as_str())).collect();
            tx.touch(&before.sys_id, &set, by, now).await?;
            audit(tx, change, "account.update", Value::Object(update.details)).await?;
        }
        AccountAction::SetPassword { password_hash } => {
            tx.touch(&before.sys_id, &[("password_hash", password_hash)], by, now).await?;
            audit(tx, change, "account.rotate_password", json!({})).await?;
        }
        AccountAction::Delete => {
            if is_admin(&before) && !tx.another_admin(&before.sys_id).await? {
                return Err(StoreError::LastAdmin.into());
            }
            tx.touch(&before.sys_id, &[("password_hash", ""), ("roles", "")], by, now).await?;
            let tokens = tx.delete_tokens(&before.user_name, None).await?;
            tx.delete_saved_filters(&before.user_name).await?;
            let details = json!({"roles": role_names(&before.roles), "tokens_revoked": tokens});
            audit(tx, change, "account.delete", details).await?;
            return Ok(Some(before));
        }
        AccountAction::AddToken { id, digest, label, integration } => {
            let token = ApiToken {
                id: id.clone(),
                user_name: before.user_name.clone(),
                label: label.clone(),
                created_on: now,
                created_by: by.to_owned(),
                integration: integration.clone(),
            };
            tx.add_token(&token, digest).await?;
            let mut details = json!({"token_id": id, "label": label});
            if let Some(name) = integration {
                details["integration"] = json!(name);
            }
            audit(tx, change, "account.token_create", details).await?;
            return Ok(Some(before));
        }
        AccountAction::RevokeToken { id } => {
            if tx.delete_tokens(&before.user_name, Some(id)).await? == 0 {
                return Ok(None);
            }
            audit(tx, change, "account.token_revoke", json!({"token_id": id})).await?;
            return Ok(Some(before));
        }
    }
    tx.find_account(&change.user_name).await
}

async fn create<T: AccountTransaction>(
    tx: &mut T,
    catalog: &Catalog,
    change: &AccountChange,
    roles: &[Role],
    password_hash: &str,
    web_service_only: bool,
    policy: &AccountPolicy,
) -> Result<Account, T::Error> {
    let role_list = format_roles(roles);
    let ws = bool_text(web_service_only);
    let networks = format_networks(&policy.networks);
    let (rate, burst) = rate_texts(policy.rate);
    let sys_id = match tx.find_user(&change.user_name).await? {
        Some((_, hash)) if !hash.is_empty() => {
            return Err(StoreError::AccountExists(change.user_name.clone()).into());
        }
        // A user created earlier by an import (a caller), or a deleted account, becomes an account.
        Some((sys_id, _)) => {
            let sys_id = SysId::parse(&sys_id).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let set = [
                ("roles", role_list.as_str()),
                ("password_hash", password_hash),
                ("web_service_access_only", ws),
                ("active", "true"),
                ("source_networks", networks.as_str()),
                ("rate_per_second", rate.as_str()),
                ("rate_burst", burst.as_str()),
            ];
            tx.touch(&sys_id, &set, &change.by, change.now).await?;
            sys_id
        }
        None => {
            let schema = catalog.get(tables::SYS_USER).expect("built-in table");
            let actor = Actor { user_name: change.by.clone(), sys_id: SysId::generate() };
            let now = change.now.to_string();
            let record = rules::insert_simple(
                schema,
                &[
                    ("user_name", &change.user_name),
                    ("name", &change.user_name),
                    ("roles", &role_list),
                    ("password_hash", password_hash),
                    ("web_service_access_only", ws),
                    ("source_networks", &networks),
                    ("rate_per_second", &rate),
                    ("rate_burst", &burst),
                    ("credentials_version", "1"),
                    ("credentials_changed_at", &now),
                ],
                &actor,
                change.now,
            );
            tx.insert_user(schema, &record).await?;
            SysId::parse(&record["sys_id"]).map_err(|e| StoreError::Corrupt(e.to_string()))?
        }
    };
    let mut details = json!({"roles": role_names(roles), "web_service_only": web_service_only});
    if !policy.networks.is_empty() {
        details["networks"] = networks_json(&policy.networks);
    }
    if policy.rate.is_some() {
        details["rate"] = rate_json(policy.rate);
    }
    audit(tx, change, "account.create", details).await?;
    tx.find_account(&change.user_name)
        .await?
        .filter(|a| a.sys_id == sys_id)
        .ok_or_else(|| StoreError::Corrupt(format!("account {} vanished while being created", change.user_name)).into())
}

async fn audit<T: AccountTransaction>(
    tx: &mut T,
    change: &AccountChange,
    action: &str,
    details: Value,
) -> Result<(), T::Error> {
    let entry = AdminAuditEntry {
        id: 0,
        created_on: change.now,
        actor: change.by.clone(),
        action: action.into(),
        target: format!("account:{}", change.user_name),
        details,
    };
    tx.record_audit(&entry).await
}
