//! Attachments, written once for every backend: a file is attached only to a record that
//! exists (the parent is read locked in the same transaction, so a concurrent delete of it
//! waits or is seen), its `sys_attachment` record and its content commit together, and a
//! deletion leaves ServiceNow's `DELETED` row in `sys_audit` (who, when, which file of which
//! record). Deleting a record deletes its attachments, as ServiceNow does
//! ([`crate::table_write::write`] calls [`remove_all_of`]). The content lives in the backend's
//! own table, removed with its metadata record by the database (`ON DELETE CASCADE`).

use std::sync::Arc;

use sluice_core::rules::{self, Actor, Applied, Change};
use sluice_core::schema::TableSchema;
use sluice_core::tables::{self, Catalog};
use sluice_core::{DateTime, Record};

use crate::settle::RowContext;
use crate::table_write::TableTransaction;

/// Where the content of an attachment is kept (sluice's own table, keyed by the sys_id of its
/// `sys_attachment` record).
pub const CONTENT_TABLE: &str = "sluice_attachment_content";

/// A file to attach to a record ([`crate::Attachments::add_attachment`]).
#[derive(Debug, Clone)]
pub struct NewAttachment {
    /// The table of the record it is attached to, and that record's sys_id.
    pub parent: Arc<TableSchema>,
    pub parent_sys_id: String,
    pub file_name: String,
    /// As stored and served (`sluice_core::attachment::content_type`).
    pub content_type: String,
    /// SHA-256 of `content`, lowercase hex (computed as the body arrived).
    pub hash: String,
    pub content: Vec<u8>,
    pub actor: Actor,
    pub now: DateTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttachmentAdded {
    /// The new `sys_attachment` record.
    Added(Record),
    /// The parent record does not exist; nothing was written.
    NoParent,
}

/// An attachment to delete ([`crate::Attachments::delete_attachment`]).
#[derive(Debug, Clone)]
pub struct AttachmentRemoval {
    pub sys_id: String,
    pub actor: Actor,
    pub now: DateTime,
}

/// What attaching needs of a transaction beyond a Table API write's.
// As `RowTransaction`: concrete backends only, static dispatch, no `Send` promised.
#[allow(async_fn_in_trait)]
pub trait AttachmentTransaction: TableTransaction {
    /// Writes the content of the attachment whose record `sys_id` was just inserted.
    async fn insert_content(&mut self, sys_id: &str, content: &[u8]) -> Result<(), Self::Error>;
}

/// The `sys_audit` reason of an attachment deleted through the Attachment API.
pub fn removal_reason(record: &Record) -> String {
    let field = |name: &str| record.get(name).map(String::as_str).unwrap_or("");
    format!("Attachment API: {} deleted from {} {}", field("file_name"), field("table_name"), field("table_sys_id"))
}

fn schema(catalog: &Catalog) -> &TableSchema {
    catalog.get(tables::SYS_ATTACHMENT).expect("built-in table")
}

/// The `sys_attachment` record of a new attachment.
pub fn record(schema: &TableSchema, a: &NewAttachment) -> Record {
    let size = a.content.len().to_string();
    rules::insert_simple(
        schema,
        &[
            ("file_name", &a.file_name),
            ("table_name", &a.parent.name),
            ("table_sys_id", &a.parent_sys_id),
            ("content_type", &a.content_type),
            ("size_bytes", &size),
            ("size_compressed", &size),
            ("compressed", "false"),
            ("hash", &a.hash),
            ("state", "available"),
        ],
        &a.actor,
        a.now,
    )
}

/// Attaches the file to its parent record, if that record exists.
pub async fn add<T: AttachmentTransaction>(
    tx: &mut T,
    catalog: &Catalog,
    a: &NewAttachment,
) -> Result<AttachmentAdded, T::Error> {
    if tx.get_for_update(&a.parent, &a.parent_sys_id).await?.is_none() {
        return Ok(AttachmentAdded::NoParent);
    }
    let schema = schema(catalog);
    let record = record(schema, a);
    tx.insert(schema, &record).await?;
    tx.insert_content(&record["sys_id"], &a.content).await?;
    Ok(AttachmentAdded::Added(record))
}

/// Deletes one attachment (record and content) with its history row; the record it was.
pub async fn remove<T: TableTransaction>(
    tx: &mut T,
    catalog: &Catalog,
    r: &AttachmentRemoval,
) -> Result<Option<Record>, T::Error> {
    let schema = schema(catalog);
    let Some(record) = tx.get_for_update(schema, &r.sys_id).await? else { return Ok(None) };
    tx.delete(schema, &r.sys_id).await?;
    audit_deleted(tx, schema, record.clone(), &r.actor, r.now, &removal_reason(&record)).await?;
    Ok(Some(record))
}

/// Deletes every attachment of a record that was just deleted, each with its history row.
pub async fn remove_all_of<T: TableTransaction>(
    tx: &mut T,
    catalog: &Catalog,
    parent: &TableSchema,
    parent_sys_id: &str,
    actor: &Actor,
    now: DateTime,
) -> Result<(), T::Error> {
    let schema = schema(catalog);
    for record in tx.attachments_of(&parent.name, parent_sys_id).await? {
        tx.delete(schema, &record["sys_id"]).await?;
        let reason = format!("Table API: {} {parent_sys_id} deleted", parent.name);
        audit_deleted(tx, schema, record, actor, now, &reason).await?;
    }
    Ok(())
}

/// ServiceNow's record of a deletion: one `sys_audit` row with `DELETED` as field, old and new
/// value, for the deleted record.
async fn audit_deleted<T: TableTransaction>(
    tx: &mut T,
    schema: &TableSchema,
    record: Record,
    actor: &Actor,
    now: DateTime,
    reason: &str,
) -> Result<(), T::Error> {
    let deleted = Change { field: "DELETED".into(), old: "DELETED".into(), new: "DELETED".into() };
    let applied = Applied { record, changes: vec![deleted] };
    let row = RowContext { staging_table: "", target: schema, staging_sys_id: "", actor, now, reason };
    tx.write_history(&row, &applied).await
}
