//! Console sessions (`sluice_session`) on PostgreSQL: one statement each, on a pooled connection.

use sqlx::{PgConnection, Row};

use sluice_store::Session;

pub async fn create(c: &mut PgConnection, s: &Session) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO sluice_session (digest, user_name, csrf, created_ms, idle_expires_ms, absolute_expires_ms)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&s.digest)
    .bind(&s.user_name)
    .bind(&s.csrf)
    .bind(s.created_ms)
    .bind(s.idle_expires_ms)
    .bind(s.absolute_expires_ms)
    .execute(c)
    .await?;
    Ok(())
}

const COLUMNS: &str = "digest, user_name, csrf, created_ms, idle_expires_ms, absolute_expires_ms";

fn from_row(r: &sqlx::postgres::PgRow) -> Result<Session, sqlx::Error> {
    Ok(Session {
        digest: r.try_get(0)?,
        user_name: r.try_get(1)?,
        csrf: r.try_get(2)?,
        created_ms: r.try_get(3)?,
        idle_expires_ms: r.try_get(4)?,
        absolute_expires_ms: r.try_get(5)?,
    })
}

pub async fn live(c: &mut PgConnection, digest: &str, now_ms: i64) -> Result<Option<Session>, sqlx::Error> {
    let text = format!(
        "SELECT {COLUMNS} FROM sluice_session WHERE digest = $1 AND idle_expires_ms > $2 AND absolute_expires_ms > $2"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(text)).bind(digest).bind(now_ms).fetch_optional(c).await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn touch(
    c: &mut PgConnection,
    digest: &str,
    now_ms: i64,
    idle_ms: i64,
) -> Result<Option<Session>, sqlx::Error> {
    let text = format!(
        "UPDATE sluice_session SET idle_expires_ms = LEAST($2 + $3, absolute_expires_ms)
         WHERE digest = $1 AND idle_expires_ms > $2 AND absolute_expires_ms > $2
         RETURNING {COLUMNS}"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(text)).bind(digest).bind(now_ms).bind(idle_ms).fetch_optional(c).await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn delete(c: &mut PgConnection, digest: &str) -> Result<u64, sqlx::Error> {
    let n = sqlx::query("DELETE FROM sluice_session WHERE digest = $1").bind(digest).execute(c).await?;
    Ok(n.rows_affected())
}

pub async fn delete_of(c: &mut PgConnection, user_name: &str) -> Result<u64, sqlx::Error> {
    let n =
        sqlx::query("DELETE FROM sluice_session WHERE lower(user_name) = lower($1)").bind(user_name).execute(c).await?;
    Ok(n.rows_affected())
}

pub async fn purge(c: &mut PgConnection, now_ms: i64) -> Result<u64, sqlx::Error> {
    let n = sqlx::query("DELETE FROM sluice_session WHERE idle_expires_ms <= $1 OR absolute_expires_ms <= $1")
        .bind(now_ms)
        .execute(c)
        .await?;
    Ok(n.rows_affected())
}
