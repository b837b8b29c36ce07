//! Accounts (`sys_user` rows with a password hash), their API tokens and the admin audit.
//! Every account change runs in the writer's transaction together with its audit row, raises
//! the account's `credentials_version` and stamps `credentials_changed_at`, so other processes
//! holding a cached verification notice the change (see the server's credential cache).

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde_json::Value;
use sluice_core::account::{Account, AccountPolicy, Role, parse_networks, parse_roles};
use sluice_core::schema::TableSchema;
use sluice_core::tables::Catalog;
use sluice_core::{DateTime, Record, SysId};
use sluice_store::account_change::{self, AccountTransaction};

use crate::Result;
use crate::import::{SqliteTx, ready};
use crate::records;
use sluice_store::account_fields::{datetime, read_rate};
use sluice_store::{AccountChange, AdminAuditEntry, ApiToken, NewAccount, TokenMatch};

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

/// The writer's transaction as an account change sees it ([`sluice_store::account_change`]).
impl AccountTransaction for SqliteTx<'_> {
    type Error = crate::Error;

    async fn find_account(&mut self, user_name: &str) -> Result<Option<Account>> {
        Ok(find(self.conn, user_name)?)
    }

    async fn find_user(&mut self, user_name: &str) -> Result<Option<(String, String)>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT sys_id, password_hash FROM sys_user WHERE user_name = ?1 COLLATE NOCASE AND user_name = ?1
                 ORDER BY rowid LIMIT 1",
            )?
            .query_row([user_name], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?)
    }

    async fn another_admin(&mut self, sys_id: &SysId) -> Result<bool> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT roles FROM sys_user WHERE password_hash != '' AND active = 'true' AND sys_id != ?1",
        )?;
        let roles = stmt.query_map([sys_id.as_str()], |r| r.get::<_, String>(0))?;
        for list in roles {
            if parse_roles(&list?).contains(&Role::Admin) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn touch(&mut self, sys_id: &SysId, set: &[(&str, &str)], by: &str, now: DateTime) -> Result<()> {
        let mut assignments: Vec<String> =
            set.iter().enumerate().map(|(i, (f, _))| format!("{f} = ?{}", i + 1)).collect();
        let n = set.len();
        assignments.push(format!("sys_updated_on = ?{}", n + 1));
        assignments.push(format!("sys_updated_by = ?{}", n + 2));
        assignments.push("sys_mod_count = CAST(sys_mod_count AS INTEGER) + 1".into());
        assignments.push("credentials_version = CAST(credentials_version AS INTEGER) + 1".into());
        assignments.push(format!("credentials_changed_at = ?{}", n + 1));
        let sql = format!("UPDATE sys_user SET {} WHERE sys_id = ?{}", assignments.join(", "), n + 3);
        let now = now.to_string();
        let values = set.iter().map(|(_, v)| *v).chain([now.as_str(), by, sys_id.as_str()]);
        self.conn.prepare_cached(&sql)?.execute(rusqlite::params_from_iter(values))?;
        Ok(())
    }

    async fn insert_user(&mut self, schema: &TableSchema, record: &Record) -> Result<()> {
        Ok(records::insert(self.conn, schema, record)?)
    }

    async fn add_token(&mut self, t: &ApiToken, digest: &str) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO sluice_api_token (id, user_name, digest, label, created_on, created_by, integration)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                t.id,
                t.user_name,
                digest,
                t.label,
                t.created_on.to_string(),
                t.created_by,
                t.integration.as_deref().unwrap_or("")
            ])?;
        Ok(())
    }

    async fn delete_tokens(&mut self, user_name: &str, id: Option<&str>) -> Result<u64> {
        let n = match id {
            None => {
                self.conn.prepare_cached("DELETE FROM sluice_api_token WHERE user_name = ?1")?.execute([user_name])?
            }
            Some(id) => self
                .conn
                .prepare_cached("DELETE FROM sluice_api_token WHERE user_name = ?1 AND id = ?2")?
                .execute([user_name, id])?,
        };
        Ok(n as u64)
    }

    async fn delete_saved_filters(&mut self, user_name: &str) -> Result<u64> {
        Ok(crate::saved_filters::delete_of(self.conn, user_name)?)
    }

    async fn record_audit(&mut self, entry: &AdminAuditEntry) -> Result<()> {
        Ok(record_audit(self.conn, entry)?)
    }
}

/// `account add` and the first-start admin ([`account_change::add`]).
pub fn add(conn: &Connection, catalog: &Catalog, new: &NewAccount) -> Result<Account> {
    ready(account_change::add(&mut SqliteTx { conn, cached: false }, catalog, new))
}

pub fn change_account(conn: &Connection, catalog: &Catalog, change: &AccountChange) -> Result<Option<Account>> {
    ready(account_change::change_account(&mut SqliteTx { conn, cached: false }, catalog, change))
}

const TOKEN_COLUMNS: &str = "t.id, t.user_name, t.label, t.created_on, t.created_by, t.integration";

fn token_from(r: &Row<'_>) -> rusqlite::Result<ApiToken> {
    Ok(ApiToken {
        id: r.get(0)?,
        user_name: r.get(1)?,
        label: r.get(2)?,
        created_on: datetime(r.get(3)?),
        created_by: r.get(4)?,
        integration: Some(r.get::<_, String>(5)?).filter(|i| !i.is_empty()),
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
            let digest: String = r.get(6)?;
            Ok(from_row(r, 7)?.map(|account| TokenMatch { token, digest, account }))
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

/// A page of the admin audit, newest first, of one action only when `action` is given.
pub fn audit_page(
    conn: &Connection,
    action: Option<&str>,
    limit: u64,
    offset: u64,
) -> rusqlite::Result<(Vec<AdminAuditEntry>, u64)> {
    let total: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM sluice_admin_audit WHERE ?1 IS NULL OR action = ?1")?
        .query_row([action], |r| r.get(0))?;
    let mut stmt = conn.prepare_cached(
        "SELECT id, created_on, actor, action, target, details FROM sluice_admin_audit
         WHERE ?3 IS NULL OR action = ?3 ORDER BY id DESC LIMIT ?1 OFFSET ?2",
    )?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let offset = i64::try_from(offset).unwrap_or(i64::MAX);
    let entries = stmt
        .query_map(params![limit, offset, action], |r| {
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
