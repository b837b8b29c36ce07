//! Accounts (`sys_user` rows with a password hash), their API tokens and the admin audit, as
//! `sqlite/accounts.rs` keeps them. Account changes take one advisory lock, so the "last active
//! admin" check holds across nodes, and the user name's reference lock, so an import creating
//! the same user meanwhile waits.

use serde_json::Value;
use sluice_core::account::{Account, AccountPolicy, Role, parse_networks, parse_roles};
use sluice_core::schema::TableSchema;
use sluice_core::tables;
use sluice_core::{DateTime, Record, SysId};
use sluice_store::account_change::{self, AccountTransaction};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use crate::Result;
use crate::import::{PgTx, reference_key};
use crate::{Ctx, lock, records};
use sluice_store::account_fields::{datetime, read_rate};
use sluice_store::{AccountChange, AdminAuditEntry, ApiToken, NewAccount, TokenMatch};

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

/// A PostgreSQL transaction as an account change sees it ([`sluice_store::account_change`]).
impl AccountTransaction for PgTx<'_> {
    type Error = crate::Error;

    async fn find_account(&mut self, user_name: &str) -> Result<Option<Account>> {
        Ok(find(self.c, user_name).await?)
    }

    async fn find_user(&mut self, user_name: &str) -> Result<Option<(String, String)>> {
        let found = sqlx::query(
            "SELECT sys_id, password_hash FROM sys_user WHERE lower(user_name) = lower($1) AND user_name = $1
             ORDER BY sluice_rowid LIMIT 1",
        )
        .bind(user_name)
        .fetch_optional(&mut *self.c)
        .await?;
        Ok(match found {
            Some(r) => Some((r.try_get(0)?, r.try_get(1)?)),
            None => None,
        })
    }

    async fn another_admin(&mut self, sys_id: &SysId) -> Result<bool> {
        let rows =
            sqlx::query("SELECT roles FROM sys_user WHERE password_hash <> '' AND active = 'true' AND sys_id <> $1")
                .bind(sys_id.as_str())
                .fetch_all(&mut *self.c)
                .await?;
        for row in rows {
            if parse_roles(&row.try_get::<String, _>(0)?).contains(&Role::Admin) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn touch(&mut self, sys_id: &SysId, set: &[(&str, &str)], by: &str, now: DateTime) -> Result<()> {
        let mut assignments: Vec<String> =
            set.iter().enumerate().map(|(i, (f, _))| format!("{f} = ${}", i + 1)).collect();
        let n = set.len();
        assignments.push(format!("sys_updated_on = ${}", n + 1));
        assignments.push(format!("sys_updated_by = ${}", n + 2));
        assignments.push("sys_mod_count = COALESCE(sys_mod_count, 0) + 1".into());
        assignments.push("credentials_version = COALESCE(credentials_version, 0) + 1".into());
        assignments.push(format!("credentials_changed_at = ${}", n + 1));
        let text = format!("UPDATE sys_user SET {} WHERE sys_id = ${}", assignments.join(", "), n + 3);
        let mut q = records::sql(text);
        for (_, v) in set {
            q = q.bind((*v).to_owned());
        }
        q.bind(now.to_string()).bind(by.to_owned()).bind(sys_id.as_str().to_owned()).execute(&mut *self.c).await?;
        Ok(())
    }

    async fn insert_user(&mut self, schema: &TableSchema, record: &Record) -> Result<()> {
        Ok(records::insert(self.c, schema, record).await?)
    }

    async fn add_token(&mut self, t: &ApiToken, digest: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO sluice_api_token (id, user_name, digest, label, created_on, created_by, integration)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&t.id)
        .bind(&t.user_name)
        .bind(digest)
        .bind(&t.label)
        .bind(t.created_on.to_string())
        .bind(&t.created_by)
        .bind(t.integration.as_deref().unwrap_or(""))
        .execute(&mut *self.c)
        .await?;
        Ok(())
    }

    async fn delete_tokens(&mut self, user_name: &str, id: Option<&str>) -> Result<u64> {
        let q = match id {
            None => sqlx::query("DELETE FROM sluice_api_token WHERE user_name = $1").bind(user_name),
            Some(id) => {
                sqlx::query("DELETE FROM sluice_api_token WHERE user_name = $1 AND id = $2").bind(user_name).bind(id)
            }
        };
        Ok(q.execute(&mut *self.c).await?.rows_affected())
    }

    async fn delete_saved_filters(&mut self, user_name: &str) -> Result<u64> {
        Ok(crate::saved_filters::delete_of(self.c, user_name).await?)
    }

    async fn record_audit(&mut self, entry: &AdminAuditEntry) -> Result<()> {
        Ok(record_audit(self.c, entry).await?)
    }
}

/// The advisory locks of an account change: one for every account change (the last-admin rule
/// holds across nodes) and the user name's reference lock (an import creating the same user
/// meanwhile waits).
async fn lock_accounts(c: &mut PgConnection, ctx: &Ctx, user_name: &str) -> Result<()> {
    let user_key = reference_key(tables::SYS_USER, user_name);
    Ok(lock(c, &[(&ctx.salt, "accounts"), (&ctx.salt, &user_key)]).await?)
}

/// `account add` and the first-start admin ([`account_change::add`]).
pub async fn add(c: &mut PgConnection, ctx: &Ctx, new: &NewAccount) -> Result<Account> {
    lock_accounts(c, ctx, &new.user_name).await?;
    account_change::add(&mut PgTx { c, ctx, coalesce_locked: false, cache: None }, &ctx.catalog, new).await
}

pub async fn change_account(c: &mut PgConnection, ctx: &Ctx, change: &AccountChange) -> Result<Option<Account>> {
    lock_accounts(c, ctx, &change.user_name).await?;
    let mut tx = PgTx { c, ctx, coalesce_locked: false, cache: None };
    account_change::change_account(&mut tx, &ctx.catalog, change).await
}

const TOKEN_COLUMNS: &str = "t.id, t.user_name, t.label, t.created_on, t.created_by, t.integration";

fn token_from(r: &PgRow) -> Result<ApiToken, sqlx::Error> {
    Ok(ApiToken {
        id: r.try_get(0)?,
        user_name: r.try_get(1)?,
        label: r.try_get(2)?,
        created_on: datetime(r.try_get(3)?),
        created_by: r.try_get(4)?,
        integration: Some(r.try_get::<String, _>(5)?).filter(|i| !i.is_empty()),
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
    let digest: String = row.try_get(6)?;
    Ok(from_row(&row, 7)?.map(|account| TokenMatch { token, digest, account }))
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

/// A page of the admin audit, newest first, of one action only when `action` is given.
pub async fn audit_page(
    c: &mut PgConnection,
    action: Option<&str>,
    limit: u64,
    offset: u64,
) -> Result<(Vec<AdminAuditEntry>, u64), sqlx::Error> {
    let total: i64 = sqlx::query("SELECT COUNT(*) FROM sluice_admin_audit WHERE $1::text IS NULL OR action = $1")
        .bind(action)
        .fetch_one(&mut *c)
        .await?
        .try_get(0)?;
    let rows = sqlx::query(
        "SELECT id, created_on, actor, action, target, details FROM sluice_admin_audit
         WHERE $3::text IS NULL OR action = $3 ORDER BY id DESC LIMIT $1 OFFSET $2",
    )
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .bind(i64::try_from(offset).unwrap_or(i64::MAX))
    .bind(action)
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
