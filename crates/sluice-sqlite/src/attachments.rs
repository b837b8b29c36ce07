//! Attachments: the writer's jobs (attach, delete, through [`sluice_store::attachment`] on
//! [`SqliteTx`]) and the content read on a reader. The content is one BLOB per attachment in
//! `sluice_attachment_content`, deleted with its `sys_attachment` row by the foreign key.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension};
use sluice_core::Record;
use sluice_core::tables::{self, Catalog};
use sluice_store::attachment::{self, AttachmentTransaction, CONTENT_TABLE};
use sluice_store::{AttachmentAdded, AttachmentRemoval, Attachments, NewAttachment, Result as StoreResult};

use crate::SqliteStore;
use crate::import::{SqliteTx, ready};
use crate::records;
use crate::writer::Job;

impl AttachmentTransaction for SqliteTx<'_> {
    async fn insert_content(&mut self, sys_id: &str, content: &[u8]) -> rusqlite::Result<()> {
        let sql = format!("INSERT INTO {CONTENT_TABLE} (sys_id, content) VALUES (?1, ?2)");
        self.conn.prepare_cached(&sql)?.execute(rusqlite::params![sys_id, content])?;
        Ok(())
    }
}

/// The `sys_attachment` records of one record, oldest first.
pub(crate) fn of(conn: &Connection, table: &str, sys_id: &str) -> rusqlite::Result<Vec<Record>> {
    let schema = tables::sys_attachment();
    let sql = format!(
        "SELECT {} FROM sys_attachment WHERE table_sys_id = ?1 COLLATE NOCASE AND table_name = ?2 COLLATE NOCASE
         ORDER BY rowid",
        records::columns(&schema)
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([sys_id, table], |row| records::from_row(&schema, row))?;
    rows.collect()
}

pub(crate) fn add(conn: &Connection, catalog: &Catalog, a: &NewAttachment) -> rusqlite::Result<AttachmentAdded> {
    ready(attachment::add(&mut SqliteTx { conn, cached: false }, catalog, a))
}

pub(crate) fn remove(conn: &Connection, catalog: &Catalog, r: &AttachmentRemoval) -> rusqlite::Result<Option<Record>> {
    ready(attachment::remove(&mut SqliteTx { conn, cached: false }, catalog, r))
}

#[async_trait]
impl Attachments for SqliteStore {
    async fn add_attachment(&self, attachment: NewAttachment) -> StoreResult<AttachmentAdded> {
        self.enqueue(|tx| Job::AddAttachment(Box::new(attachment), tx)).await
    }

    async fn attachment_content(&self, sys_id: String) -> StoreResult<Option<Vec<u8>>> {
        self.read(move |c| {
            let sql = format!("SELECT content FROM {CONTENT_TABLE} WHERE sys_id = ?1");
            c.prepare_cached(&sql)?.query_row([&sys_id], |r| r.get::<_, Vec<u8>>(0)).optional()
        })
        .await
    }

    async fn delete_attachment(&self, removal: AttachmentRemoval) -> StoreResult<Option<Record>> {
        self.enqueue(|tx| Job::DeleteAttachment(Box::new(removal), tx)).await
    }
}
