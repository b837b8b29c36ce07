//! Attachments: attach and delete in one transaction each (through
//! [`sluice_store::attachment`] on [`PgTx`]; the parent record is locked `FOR UPDATE`, so a
//! concurrent delete of it on any node waits for the upload, then deletes its attachments too),
//! and the content read. The content is one BYTEA per attachment in
//! `sluice_attachment_content`, deleted with its `sys_attachment` row by the foreign key.

use std::sync::Arc;

use async_trait::async_trait;
use sluice_core::Record;
use sluice_core::tables;
use sluice_store::attachment::{self, AttachmentTransaction, CONTENT_TABLE};
use sluice_store::{AttachmentAdded, AttachmentRemoval, Attachments, NewAttachment, Result as StoreResult};
use sqlx::PgConnection;

use crate::import::PgTx;
use crate::records;
use crate::{PostgresStore, backend};

impl AttachmentTransaction for PgTx<'_> {
    async fn insert_content(&mut self, sys_id: &str, content: &[u8]) -> Result<(), sqlx::Error> {
        records::sql(format!("INSERT INTO {CONTENT_TABLE} (\"sys_id\", content) VALUES ($1, $2)"))
            .bind(sys_id.to_owned())
            .bind(content.to_vec())
            .execute(&mut *self.c)
            .await?;
        Ok(())
    }
}

/// The `sys_attachment` records of one record, oldest first, locked until the transaction ends.
pub(crate) async fn of(c: &mut PgConnection, table: &str, sys_id: &str) -> Result<Vec<Record>, sqlx::Error> {
    let schema = tables::sys_attachment();
    let text = format!(
        "SELECT {} FROM sys_attachment WHERE lower(table_sys_id) = lower($1) AND lower(table_name) = lower($2)
         ORDER BY sluice_rowid FOR UPDATE",
        records::columns(&schema)
    );
    let rows = records::sql(text).bind(sys_id.to_owned()).bind(table.to_owned()).fetch_all(c).await?;
    rows.iter().map(|row| records::from_row(&schema, row, 0)).collect()
}

#[async_trait]
impl Attachments for PostgresStore {
    async fn add_attachment(&self, attachment: NewAttachment) -> StoreResult<AttachmentAdded> {
        backend(async {
            let (ctx, attachment) = (self.ctx.clone(), Arc::new(attachment));
            self.in_tx(move |c| {
                let (ctx, attachment) = (ctx.clone(), attachment.clone());
                Box::pin(async move {
                    let mut tx = PgTx { c, ctx: &ctx, coalesce_locked: false, cache: None };
                    Ok(attachment::add(&mut tx, &ctx.catalog, &attachment).await?)
                })
            })
            .await
        })
        .await
    }

    async fn attachment_content(&self, sys_id: String) -> StoreResult<Option<Vec<u8>>> {
        backend(async {
            // The table's name is a constant: the text holds no client input.
            let text = format!("SELECT content FROM {CONTENT_TABLE} WHERE \"sys_id\" = $1");
            let content = sqlx::query_scalar::<_, Vec<u8>>(sqlx::AssertSqlSafe(text))
                .bind(sys_id)
                .fetch_optional(&mut *self.conn().await?)
                .await?;
            Ok(content)
        })
        .await
    }

    async fn delete_attachment(&self, removal: AttachmentRemoval) -> StoreResult<Option<Record>> {
        backend(async {
            let (ctx, removal) = (self.ctx.clone(), Arc::new(removal));
            self.in_tx(move |c| {
                let (ctx, removal) = (ctx.clone(), removal.clone());
                Box::pin(async move {
                    let mut tx = PgTx { c, ctx: &ctx, coalesce_locked: false, cache: None };
                    Ok(attachment::remove(&mut tx, &ctx.catalog, &removal).await?)
                })
            })
            .await
        })
        .await
    }
}
