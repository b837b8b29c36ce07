//! Accounts (`sys_user` rows with a password hash), their API tokens and the admin audit, as
//! `sqlite/accounts.rs` keeps them. Account changes take one advisory lock, so the "last active
//! admin" check holds across nodes, and the user name's reference lock, so an import creating
//! the same user meanwhile waits.

use serde_json::{Value, json};
use sluice_core::account::{Account, AccountPolicy, Role, format_networks, format_roles, parse_networks, parse_roles};
use sluice_core::rules::{self, Actor};
use sluice_core::tables;
use sluice_core::{DateTime, SysId};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use crate::Result;
use crate::import::reference_key;
use crate::{Ctx, lock, records};
use sluice_store::account_fields::{
    self, bool_text, datetime, is_admin, networks_json, rate_json, rate_texts, read_rate, role_names,
};
use sluice_store::{AccountAction, AccountChange, AdminAuditEntry, ApiToken, NewAccount, StoreError, TokenMatch};

/// The columns [`from_row`] reads, in order (`u` is `sys_user`).
const COLUMNS: &str = "u.sys_id, u.user_name, u.roles, u.active, u.password_hash, u.web_service_access_only, \
                       u.credentials_version, u.source_networks, u.rate_per_second, u.rate_burst";

/// `user_name = $1` through the lower() index, then exactly; accounts only (a password hash).
const BY_NAME: &str = "lower(u.user_name) = lower($1) AND u.user_name = $1 AND u.password_hash <> ''
                       ORDER BY u.sluice_rowid LIMIT 1";

fn from_row(r: &PgRow, at: usize) -> Result<Option<Account>, sqlx::Error> {
    let sys_id: String = r.try_get(at)?;
    let Ok(sys_id) = SysId::parse(&sys_id) else { return Ok(None) };
    Ok(Some(Account {
        sys_id,
        user_name: r.try_get(at + 1)?,
        roles: parse_roles(&r.try_get::<String, _>(at + 2)?),
        active: r.try_get::<String, _>(at + 3)? == "true",
        password_hash: r.try_get(at + 4)?,
        web_service_only: r.try_get::<String, _>(at + 5)? == "true",
        credentials_version: r.try_get::<Option<i64>, _>(at + 6)?.unwrap_or(0),
        policy: AccountPolicy {
            networks: parse_networks(&r.try_get::<String, _>(at + 7)?),
            rate: read_rate(&r.try_get::<String, _>(at + 8)?, &r.try_get::<String, _>(at + 9)?),
        },
    }))
}

pub async fn find(c: &mut PgConnection, user_name: &str) -> Result<Option<Account>, sqlx::Error> {
    // Text cannot hold NUL (binding one is an error): no stored name has one, so no account.
    if user_name.contains('\0') {
        return Ok(None);
    }
    let text = format!("SELECT {COLUMNS} FROM sys_user u WHERE {BY_NAME}");
    match records::sql(text).bind(user_name.to_owned()).fetch_optional(c).await? {
        Some(row) => from_row(&row, 0),
        None => Ok(None),
    }
}

pub async fn all(c: &mut PgConnection) -> Result<Vec<Account>, sqlx::Error> {
    let text =
        format!("SELECT {COLUMNS} FROM sys_user u WHERE u.password_hash <> '' ORDER BY u.user_name, u.sluice_rowid");
    let rows = records::sql(text).fetch_all(c).await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        out.extend(from_row(row, 0)?);
    }
    Ok(out)
}

/// Whether another account than `sys_id` is an active admin.
async fn another_admin(c: &mut PgConnection, sys_id: &SysId) -> Result<bool, sqlx::Error> {
    let rows = sqlx::query("SELECT roles FROM sys_user WHERE password_hash <> '' AND active = 'true' AND sys_id <> $1")
        .bind(sys_id.as_str())
        .fetch_all(c)
        .await?;
    for row in rows {
        if parse_roles(&row.try_get::<String, _>(0)?).contains(&Role::Admin) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Sets the given `sys_user` columns (fixed names from this module), stamps the update and,
/// with `credentials`, raises the credentials version.
async fn touch(
    c: &mut PgConnection,
    sys_id: &SysId,
    set: &[(&str, &str)],
    by: &str,
    now: DateTime,
    credentials: bool,
) -> Result<(), sqlx::Error> {
    let mut assignments: Vec<String> = set.iter().enumerate().map(|(i, (f, _))| format!("{f} = ${}", i + 1)).collect();
    let n = set.len();
    assignments.push(format!("sys_updated_on = ${}", n + 1));
    assignments.push(format!("sys_updated_by = ${}", n + 2));
    assignments.push("sys_mod_count = COALESCE(sys_mod_count, 0) + 1".into());
    if credentials {
        assignments.push("credentials_version = COALESCE(credentials_version, 0) + 1".into());
        assignments.push(format!("credentials_changed_at = ${}", n + 1));
    }
    let text = format!("UPDATE sys_user SET {} WHERE sys_id = ${}", assignments.join(", "), n + 3);
    let mut q = records::sql(text);
    for (_, v) in set {
        q = q.bind((*v).to_owned());
    }
    q.bind(now.to_string()).bind(by.to_owned()).bind(sys_id.as_str().to_owned()).execute(c).await?;
    Ok(())
}

async fn audit(c: &mut PgConnection, change: &AccountChange, action: &str, details: Value) -> Result<(), sqlx::Error> {
    record_audit(
        c,
        &AdminAuditEntry {
            id: 0,
            created_on: change.now,
            actor: change.by.clone(),
            action: action.into(),
            target: format!("account:{}", change.user_name),
            details,
        },
    )
    .await
}

async fn create(
    c: &mut PgConnection,
    ctx: &Ctx,
    change: &AccountChange,
    roles: &[Role],
    password_hash: &str,
    web_service_only: bool,
    policy: &AccountPolicy,
) -> Result<Account> {
    let schema = ctx.catalog.get(tables::SYS_USER).expect("built-in table");
    let existing = sqlx::query(
        "SELECT sys_id, password_hash FROM sys_user WHERE lower(user_name) = lower($1) AND user_name = $1
         ORDER BY sluice_rowid LIMIT 1",
    )
    .bind(&change.user_name)
    .fetch_optional(&mut *c)
    .await?;
    let existing: Option<(String, String)> = match existing {
        Some(r) => Some((r.try_get(0)?, r.try_get(1)?)),
        None => None,
    };
    let role_list = format_roles(roles);
    let ws = bool_text(web_service_only);
    let networks = format_networks(&policy.networks);
    let (rate, burst) = rate_texts(policy.rate);
    let sys_id = match existing {
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
            touch(c, &sys_id, &set, &change.by, change.now, true).await?;
            sys_id
        }
        None => {
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
                    ("credentials_version", "1"),
                    ("credentials_changed_at", &now),
                    ("source_networks", &networks),
                    ("rate_per_second", &rate),
                    ("rate_burst", &burst),
                ],
                &actor,
                change.now,
            );
            records::insert(c, schema, &record).await?;
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
    audit(c, change, "account.create", details).await?;
    find(c, &change.user_name)
        .await?
        .filter(|a| a.sys_id == sys_id)
        .ok_or_else(|| StoreError::Corrupt(format!("account {} vanished while being created", change.user_name)).into())
}

/// `account add` and the first-start admin: a web-service-only account.
pub async fn add(c: &mut PgConnection, ctx: &Ctx, new: &NewAccount) -> Result<Account> {
    let create = AccountAction::Create {
        roles: new.roles.clone(),
        password_hash: new.password_hash.clone(),
        web_service_only: true,
        policy: AccountPolicy::default(),
    };
    let change =
        AccountChange { user_name: new.user_name.clone(), action: create, by: new.created_by.clone(), now: new.now };
    change_account(c, ctx, &change)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("account {} was not created", new.user_name)).into())
}

pub async fn change_account(c: &mut PgConnection, ctx: &Ctx, change: &AccountChange) -> Result<Option<Account>> {
    let user_key = reference_key(tables::SYS_USER, &change.user_name);
    lock(c, &[(&ctx.salt, "accounts"), (&ctx.salt, &user_key)]).await?;
    if let AccountAction::Create { roles, password_hash, web_service_only, policy } = &change.action {
        return create(c, ctx, change, roles, password_hash, *web_service_only, policy).await.map(Some);
    }
    let Some(before) = find(c, &change.user_name).await? else { return Ok(None) };
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
            if is_admin(&before) && !update.after_admin && !another_admin(c, &before.sys_id).await? {
                return Err(StoreError::LastAdmin.into());
            }
            let set: Vec<(&str, &str)> = update.set.iter().map(|(f, v)| (*f, v.as_str())).collect();
            touch(c, &before.sys_id, &set, by, now, true).await?;
            audit(c, change, "account.update", Value::Object(update.details)).await?;
        }
        AccountAction::SetPassword { password_hash } => {
            touch(c, &before.sys_id, &[("password_hash", password_hash)], by, now, true).await?;
            audit(c, change, "account.rotate_password", json!({})).await?;
        }
        AccountAction::Delete => {
            if is_admin(&before) && !another_admin(c, &before.sys_id).await? {
                return Err(StoreError::LastAdmin.into());
            }
            touch(c, &before.sys_id, &[("password_hash", ""), ("roles", "")], by, now, true).await?;
            let tokens = sqlx::query("DELETE FROM sluice_api_token WHERE user_name = $1")
                .bind(&before.user_name)
                .execute(&mut *c)
                .await?
                .rows_affected();
            let details = json!({"roles": role_names(&before.roles), "tokens_revoked": tokens});
            audit(c, change, "account.delete", details).await?;
            return Ok(Some(before));
        }
        AccountAction::AddToken { id, digest, label } => {
            sqlx::query(
                "INSERT INTO sluice_api_token (id, user_name, digest, label, created_on, created_by)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(id)
            .bind(&before.user_name)
            .bind(digest)
            .bind(label)
            .bind(now.to_string())
            .bind(by)
            .execute(&mut *c)
            .await?;
            audit(c, change, "account.token_create", json!({"token_id": id, "label": label})).await?;
            return Ok(Some(before));
        }
        AccountAction::RevokeToken { id } => {
            let n = sqlx::query("DELETE FROM sluice_api_token WHERE user_name = $1 AND id = $2")
                .bind(&before.user_name)
                .bind(id)
                .execute(&mut *c)
                .await?
                .rows_affected();
            if n == 0 {
                return Ok(None);
            }
            audit(c, change, "account.token_revoke", json!({"token_id": id})).await?;
            return Ok(Some(before));
        }
    }
    Ok(find(c, &change.user_name).await?)
}

const TOKEN_COLUMNS: &str = "t.id, t.user_name, t.label, t.created_on, t.created_by";

fn token_from(r: &PgRow) -> Result<ApiToken, sqlx::Error> {
    Ok(ApiToken {
        id: r.try_get(0)?,
        user_name: r.try_get(1)?,
        label: r.try_get(2)?,
        created_on: datetime(r.try_get(3)?),
        created_by: r.try_get(4)?,
    })
}

pub async fn tokens(c: &mut PgConnection, user_name: &str) -> Result<Vec<ApiToken>, sqlx::Error> {
    if user_name.contains('\0') {
        return Ok(Vec::new()); // as in `find`
    }
    let text = format!("SELECT {TOKEN_COLUMNS} FROM sluice_api_token t WHERE t.user_name = $1 ORDER BY t.sluice_rowid");
    let rows = records::sql(text).bind(user_name.to_owned()).fetch_all(c).await?;
    rows.iter().map(token_from).collect()
}

pub async fn by_token(c: &mut PgConnection, digest: &str) -> Result<Option<TokenMatch>, sqlx::Error> {
    let text = format!(
        "SELECT {TOKEN_COLUMNS}, t.digest, {COLUMNS} FROM sluice_api_token t
         JOIN sys_user u ON lower(u.user_name) = lower(t.user_name) AND u.user_name = t.user_name
              AND u.password_hash <> ''
         WHERE t.digest = $1 ORDER BY u.sluice_rowid LIMIT 1"
    );
    let Some(row) = records::sql(text).bind(digest.to_owned()).fetch_optional(c).await? else { return Ok(None) };
    let token = token_from(&row)?;
    let digest: String = row.try_get(5)?;
    Ok(from_row(&row, 6)?.map(|account| TokenMatch { token, digest, account }))
}

pub async fn record_audit(c: &mut PgConnection, entry: &AdminAuditEntry) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO sluice_admin_audit (created_on, actor, action, target, details) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(entry.created_on.to_string())
    .bind(&entry.actor)
    .bind(&entry.action)
    .bind(&entry.target)
    .bind(entry.details.to_string())
    .execute(c)
    .await?;
    Ok(())
}

pub async fn audit_page(
    c: &mut PgConnection,
    limit: u64,
    offset: u64,
) -> Result<(Vec<AdminAuditEntry>, u64), sqlx::Error> {
    let total: i64 = sqlx::query("SELECT COUNT(*) FROM sluice_admin_audit").fetch_one(&mut *c).await?.try_get(0)?;
    let rows = sqlx::query(
        "SELECT id, created_on, actor, action, target, details FROM sluice_admin_audit
         ORDER BY id DESC LIMIT $1 OFFSET $2",
    )
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .bind(i64::try_from(offset).unwrap_or(i64::MAX))
    .fetch_all(c)
    .await?;
    let mut entries = Vec::with_capacity(rows.len());
    for r in &rows {
        let details: String = r.try_get(5)?;
        entries.push(AdminAuditEntry {
            id: r.try_get(0)?,
            created_on: datetime(r.try_get(1)?),
            actor: r.try_get(2)?,
            action: r.try_get(3)?,
            target: r.try_get(4)?,
            details: serde_json::from_str(&details).unwrap_or(Value::String(details)),
        });
    }
    Ok((entries, total as u64))
}
