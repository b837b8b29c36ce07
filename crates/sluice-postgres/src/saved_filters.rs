//! Saved console filters (`sluice_saved_filter`) on PostgreSQL. A save runs in a transaction
//! under the account's advisory lock, so two nodes saving at once cannot both pass the
//! per-account count.

use async_trait::async_trait;
use sqlx::{PgConnection, Row};

use sluice_store::Result as StoreResult;
use sluice_store::saved_filter::{self, FilterRefusal, MAX_PER_ACCOUNT, SaveFilter, SavedFilter, SavedFilters};

use crate::{PostgresStore, backend, lock};

async fn save(c: &mut PgConnection, salt: &str, f: &SavedFilter) -> Result<SaveFilter, sqlx::Error> {
    if let Err(refusal) = saved_filter::check(f) {
        return Ok(SaveFilter::Refused(refusal));
    }
    lock(c, &[(salt, &format!("saved_filter:{}", f.user_name))]).await?;
    let existing: Option<String> =
        sqlx::query_scalar("SELECT id FROM sluice_saved_filter WHERE user_name = $1 AND name = $2")
            .bind(&f.user_name)
            .bind(&f.name)
            .fetch_optional(&mut *c)
            .await?;
    if let Some(id) = existing {
        sqlx::query("UPDATE sluice_saved_filter SET query = $2, sort = $3, saved_ms = $4 WHERE id = $1")
            .bind(&id)
            .bind(&f.query)
            .bind(&f.sort)
            .bind(f.saved_ms)
            .execute(&mut *c)
            .await?;
        return Ok(SaveFilter::Saved { id, replaced: true });
    }
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM sluice_saved_filter WHERE user_name = $1")
        .bind(&f.user_name)
        .fetch_one(&mut *c)
        .await?;
    if u64::try_from(count).unwrap_or(u64::MAX) >= MAX_PER_ACCOUNT {
        return Ok(SaveFilter::Refused(FilterRefusal::TooMany));
    }
    sqlx::query(
        "INSERT INTO sluice_saved_filter (id, user_name, name, query, sort, saved_ms) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&f.id)
    .bind(&f.user_name)
    .bind(&f.name)
    .bind(&f.query)
    .bind(&f.sort)
    .bind(f.saved_ms)
    .execute(&mut *c)
    .await?;
    Ok(SaveFilter::Saved { id: f.id.clone(), replaced: false })
}

async fn list(c: &mut PgConnection, user_name: &str) -> Result<Vec<SavedFilter>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, user_name, name, query, sort, saved_ms FROM sluice_saved_filter WHERE user_name = $1
         ORDER BY name, id",
    )
    .bind(user_name)
    .fetch_all(c)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(SavedFilter {
                id: r.try_get(0)?,
                user_name: r.try_get(1)?,
                name: r.try_get(2)?,
                query: r.try_get(3)?,
                sort: r.try_get(4)?,
                saved_ms: r.try_get(5)?,
            })
        })
        .collect()
}

/// Every filter of an account (deleted with it, inside the account change).
pub async fn delete_of(c: &mut PgConnection, user_name: &str) -> Result<u64, sqlx::Error> {
    let n = sqlx::query("DELETE FROM sluice_saved_filter WHERE user_name = $1").bind(user_name).execute(c).await?;
    Ok(n.rows_affected())
}

#[async_trait]
impl SavedFilters for PostgresStore {
    async fn save_filter(&self, filter: SavedFilter) -> StoreResult<SaveFilter> {
        backend(async {
            let salt = self.ctx.salt.clone();
            let filter = std::sync::Arc::new(filter);
            self.in_tx(move |c| {
                let (salt, filter) = (salt.clone(), filter.clone());
                Box::pin(async move { Ok(save(c, &salt, &filter).await?) })
            })
            .await
        })
        .await
    }

    async fn saved_filters(&self, user_name: String) -> StoreResult<Vec<SavedFilter>> {
        backend(async { Ok(list(&mut *self.conn().await?, &user_name).await?) }).await
    }

    async fn delete_saved_filter(&self, user_name: String, id: String) -> StoreResult<bool> {
        backend(async {
            let n = sqlx::query("DELETE FROM sluice_saved_filter WHERE user_name = $1 AND id = $2")
                .bind(&user_name)
                .bind(&id)
                .execute(&mut *self.conn().await?)
                .await?;
            Ok(n.rows_affected() > 0)
        })
        .await
    }
}
