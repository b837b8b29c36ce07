//! Accounts (`sys_user` rows with a password hash), their API tokens and the admin audit.
//! Every account change runs in the writer's transaction together with its audit row, raises
//! the account's `credentials_version` and stamps `credentials_changed_at`, so other processes
//! holding a cached verification notice the change (see the server's credential cache).

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde_json::{Value, json};
use sluice_core::account::{Account, AccountPolicy, Role, format_networks, format_roles, parse_networks, parse_roles};
use sluice_core::rules::{self, Actor};
use sluice_core::tables::{self, Catalog};
use sluice_core::{DateTime, SysId};

use crate::Result;
use crate::records;
use sluice_store::account_fields::{
    self, bool_text, datetime, is_admin, networks_json, rate_json, rate_texts, read_rate, role_names,
};
use sluice_store::{AccountAction, AccountChange, AdminAuditEntry, ApiToken, NewAccount, StoreError, TokenMatch};

/// The columns [`from_row`] reads, in order (`u` is `sys_user`).
pub const COLUMNS: &str = "u.sys_id, u.user_name, u.roles, u.active, u.password_hash, u.web_service_access_only, \
                           CAST(u.credentials_version AS INTEGER), u.source_networks, u.rate_per_second, u.rate_burst";

/// `user_name = ?1` with the NOCASE index, then exactly; accounts only (a password hash).
const BY_NAME: &str =
    "u.user_name = ?1 COLLATE NOCASE AND u.user_name = ?1 AND u.password_hash != '' ORDER BY u.rowid LIMIT 1";

pub fn from_row(r: &Row<'_>, at: usize) -> rusqlite::Result<Option<Account>> {
    let sys_id: String = r.get(at)?;
    let Ok(sys_id) = SysId::parse(&sys_id) else { return Ok(None) };
    Ok(Some(Account {
        sys_id,
        user_name: r.get(at + 1)?,
        roles: parse_roles(&r.get::<_, String>(at + 2)?),
        active: r.get::<_, String>(at + 3)? == "true",
        password_hash: r.get(at + 4)?,
        web_service_only: r.get::<_, String>(at + 5)? == "true",
        credentials_version: r.get::<_, Option<i64>>(at + 6)?.unwrap_or(0),
        policy: AccountPolicy {
            networks: parse_networks(&r.get::<_, String>(at + 7)?),
            rate: read_rate(&r.get::<_, String>(at + 8)?, &r.get::<_, String>(at + 9)?),
        },
    }))
}

pub fn find(conn: &Connection, user_name: &str) -> rusqlite::Result<Option<Account>> {
    let sql = format!("SELECT {COLUMNS} FROM sys_user u WHERE {BY_NAME}");
    Ok(conn.prepare_cached(&sql)?.query_row([user_name], |r| from_row(r, 0)).optional()?.flatten())
}

pub fn all(conn: &Connection) -> rusqlite::Result<Vec<Account>> {
    let sql = format!("SELECT {COLUMNS} FROM sys_user u WHERE u.password_hash != '' ORDER BY u.user_name, u.rowid");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([], |r| from_row(r, 0))?.collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows.into_iter().flatten().collect())
}

/// Whether another account than `sys_id` is an active admin.
fn another_admin(conn: &Connection, sys_id: &SysId) -> rusqlite::Result<bool> {
    let mut stmt = conn
        .prepare_cached("SELECT roles FROM sys_user WHERE password_hash != '' AND active = 'true' AND sys_id != ?1")?;
    let roles = stmt.query_map([sys_id.as_str()], |r| r.get::<_, String>(0))?;
    for list in roles {
        if parse_roles(&list?).contains(&Role::Admin) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Sets the given `sys_user` columns (fixed names from this module), stamps the update and,
/// with `credentials`, raises the credentials version.
fn touch(
    conn: &Connection,
    sys_id: &SysId,
    set: &[(&str, &str)],
    by: &str,
    now: DateTime,
    credentials: bool,
) -> rusqlite::Result<()> {
    let mut assignments: Vec<String> = set.iter().enumerate().map(|(i, (f, _))| format!("{f} = ?{}", i + 1)).collect();
    let n = set.len();
    assignments.push(format!("sys_updated_on = ?{}", n + 1));
    assignments.push(format!("sys_updated_by = ?{}", n + 2));
    assignments.push("sys_mod_count = CAST(sys_mod_count AS INTEGER) + 1".into());
    if credentials {
        assignments.push("credentials_version = CAST(credentials_version AS INTEGER) + 1".into());
        assignments.push(format!("credentials_changed_at = ?{}", n + 1));
    }
    let sql = format!("UPDATE sys_user SET {} WHERE sys_id = ?{}", assignments.join(", "), n + 3);
    let now = now.to_string();
    let values = set.iter().map(|(_, v)| *v).chain([now.as_str(), by, sys_id.as_str()]);
    conn.prepare_cached(&sql)?.execute(rusqlite::params_from_iter(values))?;
    Ok(())
}

fn audit(conn: &Connection, change: &AccountChange, action: &str, details: Value) -> rusqlite::Result<()> {
    record_audit(
        conn,
        &AdminAuditEntry {
            id: 0,
            created_on: change.now,
            actor: change.by.clone(),
            action: action.into(),
            target: format!("account:{}", change.user_name),
            details,
        },
    )
}

fn create(
    conn: &Connection,
    catalog: &Catalog,
    change: &AccountChange,
    roles: &[Role],
    password_hash: &str,
    web_service_only: bool,
    policy: &AccountPolicy,
) -> Result<Account> {
    let schema = catalog.get(tables::SYS_USER).expect("built-in table");
    let existing: Option<(String, String)> = conn
        .prepare_cached(
            "SELECT sys_id, password_hash FROM sys_user WHERE user_name = ?1 COLLATE NOCASE AND user_name = ?1
             ORDER BY rowid LIMIT 1",
        )?
        .query_row([&change.user_name], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
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
            touch(conn, &sys_id, &set, &change.by, change.now, true)?;
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
                    ("source_networks", &networks),
                    ("rate_per_second", &rate),
                    ("rate_burst", &burst),
                    ("credentials_version", "1"),
                    ("credentials_changed_at", &now),
                ],
                &actor,
                change.now,
            );
            records::insert(conn, schema, &record)?;
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
    audit(conn, change, "account.create", details)?;
    find(conn, &change.user_name)?
        .filter(|a| a.sys_id == sys_id)
        .ok_or_else(|| StoreError::Corrupt(format!("account {} vanished while being created", change.user_name)).into())
}

/// `account add` and the first-start admin: a web-service-only account.
pub fn add(conn: &Connection, catalog: &Catalog, new: &NewAccount) -> Result<Account> {
    let create = AccountAction::Create {
        roles: new.roles.clone(),
        password_hash: new.password_hash.clone(),
        web_service_only: true,
        policy: AccountPolicy::default(),
    };
    let change =
        AccountChange { user_name: new.user_name.clone(), action: create, by: new.created_by.clone(), now: new.now };
    change_account(conn, catalog, &change)?
        .ok_or_else(|| StoreError::Corrupt(format!("account {} was not created", new.user_name)).into())
}

pub fn change_account(conn: &Connection, catalog: &Catalog, change: &AccountChange) -> Result<Option<Account>> {
    if let AccountAction::Create { roles, password_hash, web_service_only, policy } = &change.action {
        return create(conn, catalog, change, roles, password_hash, *web_service_only, policy).map(Some);
    }
    let Some(before) = find(conn, &change.user_name)? else { return Ok(None) };
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
            if is_admin(&before) && !update.after_admin && !another_admin(conn, &before.sys_id)? {
                return Err(StoreError::LastAdmin.into());
            }
            let set: Vec<(&str, &str)> = update.set.iter().map(|(f, v)| (*f, v.as_str())).collect();
            touch(conn, &before.sys_id, &set, by, now, true)?;
            audit(conn, change, "account.update", Value::Object(update.details))?;
        }
        AccountAction::SetPassword { password_hash } => {
            touch(conn, &before.sys_id, &[("password_hash", password_hash)], by, now, true)?;
            audit(conn, change, "account.rotate_password", json!({}))?;
        }
        AccountAction::Delete => {
            if is_admin(&before) && !another_admin(conn, &before.sys_id)? {
                return Err(StoreError::LastAdmin.into());
            }
            touch(conn, &before.sys_id, &[("password_hash", ""), ("roles", "")], by, now, true)?;
            let tokens = conn
                .prepare_cached("DELETE FROM sluice_api_token WHERE user_name = ?1")?
                .execute([&before.user_name])?;
            audit(
                conn,
                change,
                "account.delete",
                json!({"roles": role_names(&before.roles), "tokens_revoked": tokens}),
            )?;
            return Ok(Some(before));
        }
        AccountAction::AddToken { id, digest, label } => {
            conn.prepare_cached(
                "INSERT INTO sluice_api_token (id, user_name, digest, label, created_on, created_by)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![id, before.user_name, digest, label, now.to_string(), by])?;
            audit(conn, change, "account.token_create", json!({"token_id": id, "label": label}))?;
            return Ok(Some(before));
        }
        AccountAction::RevokeToken { id } => {
            let n = conn
                .prepare_cached("DELETE FROM sluice_api_token WHERE user_name = ?1 AND id = ?2")?
                .execute(params![before.user_name, id])?;
            if n == 0 {
                return Ok(None);
            }
            audit(conn, change, "account.token_revoke", json!({"token_id": id}))?;
            return Ok(Some(before));
        }
    }
    Ok(find(conn, &change.user_name)?)
}

const TOKEN_COLUMNS: &str = "t.id, t.user_name, t.label, t.created_on, t.created_by";

fn token_from(r: &Row<'_>) -> rusqlite::Result<ApiToken> {
    Ok(ApiToken {
        id: r.get(0)?,
        user_name: r.get(1)?,
        label: r.get(2)?,
        created_on: datetime(r.get(3)?),
        created_by: r.get(4)?,
    })
}

pub fn tokens(conn: &Connection, user_name: &str) -> rusqlite::Result<Vec<ApiToken>> {
    let sql = format!("SELECT {TOKEN_COLUMNS} FROM sluice_api_token t WHERE t.user_name = ?1 ORDER BY t.rowid");
    let mut stmt = conn.prepare_cached(&sql)?;
    stmt.query_map([user_name], token_from)?.collect()
}

pub fn by_token(conn: &Connection, digest: &str) -> rusqlite::Result<Option<TokenMatch>> {
    let sql = format!(
        "SELECT {TOKEN_COLUMNS}, t.digest, {COLUMNS} FROM sluice_api_token t
         JOIN sys_user u ON u.user_name = t.user_name COLLATE NOCASE AND u.user_name = t.user_name
              AND u.password_hash != ''
         WHERE t.digest = ?1 ORDER BY u.rowid LIMIT 1"
    );
    let found = conn
        .prepare_cached(&sql)?
        .query_row([digest], |r| {
            let token = token_from(r)?;
            let digest: String = r.get(5)?;
            Ok(from_row(r, 6)?.map(|account| TokenMatch { token, digest, account }))
        })
        .optional()?;
    Ok(found.flatten())
}

pub fn record_audit(conn: &Connection, entry: &AdminAuditEntry) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO sluice_admin_audit (created_on, actor, action, target, details) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        entry.created_on.to_string(),
        entry.actor,
        entry.action,
        entry.target,
        entry.details.to_string()
    ])?;
    Ok(())
}

pub fn audit_page(conn: &Connection, limit: u64, offset: u64) -> rusqlite::Result<(Vec<AdminAuditEntry>, u64)> {
    let total: i64 = conn.prepare_cached("SELECT COUNT(*) FROM sluice_admin_audit")?.query_row([], |r| r.get(0))?;
    let mut stmt = conn.prepare_cached(
        "SELECT id, created_on, actor, action, target, details FROM sluice_admin_audit
         ORDER BY id DESC LIMIT ?1 OFFSET ?2",
    )?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let offset = i64::try_from(offset).unwrap_or(i64::MAX);
    let entries = stmt
        .query_map(params![limit, offset], |r| {
            let details: String = r.get(5)?;
            Ok(AdminAuditEntry {
                id: r.get(0)?,
                created_on: datetime(r.get(1)?),
                actor: r.get(2)?,
                action: r.get(3)?,
                target: r.get(4)?,
                details: serde_json::from_str(&details).unwrap_or(Value::String(details)),
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok((entries, total as u64))
}
