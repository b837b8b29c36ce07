//! Attachments ([`Attachments`], `sluice_store::attachment`): content and metadata stored
//! together and only on a record that exists, read back byte for byte, deleted with a history
//! row, and deleted with their record.

use std::sync::Arc;

use sluice_core::Record;
use sluice_core::schema::TableSchema;
use sluice_core::tables;
use sluice_store::{AttachmentAdded, AttachmentRemoval, NewAttachment, Store, TableWrite, WriteOp, WriteResult};

use crate::helpers::{actor, at, get, list, table};

async fn new_incident<S: Store + ?Sized>(store: &S, summary: &str) -> Record {
    let write = TableWrite {
        table: table(tables::INCIDENT),
        op: WriteOp::Insert,
        values: [("short_description".to_owned(), summary.to_owned())].into(),
        journal: Vec::new(),
        actor: actor(),
        now: at(0),
        reason: sluice_store::table_write::REASON,
    };
    match store.write(write).await.expect("write") {
        WriteResult::Written(record) => record,
        other => panic!("not written: {other:?}"),
    }
}

fn file(parent: Arc<TableSchema>, parent_sys_id: &str, name: &str, content: &[u8]) -> NewAttachment {
    NewAttachment {
        parent,
        parent_sys_id: parent_sys_id.to_owned(),
        file_name: name.to_owned(),
        content_type: "application/octet-stream".into(),
        hash: format!("hash-of-{name}"),
        content: content.to_vec(),
        actor: actor(),
        now: at(30),
    }
}

async fn attach<S: Store + ?Sized>(store: &S, a: NewAttachment) -> Record {
    match store.add_attachment(a).await.expect("add attachment") {
        AttachmentAdded::Added(record) => record,
        AttachmentAdded::NoParent => panic!("the parent exists"),
    }
}

fn removal(sys_id: &str) -> AttachmentRemoval {
    AttachmentRemoval { sys_id: sys_id.to_owned(), actor: actor(), now: at(90) }
}

/// The `DELETED` rows `sys_audit` holds for an attachment.
async fn deletion_rows<S: Store + ?Sized>(store: &S, sys_id: &str) -> Vec<Record> {
    list(store, table(tables::SYS_AUDIT), &[("tablename", "sys_attachment"), ("documentkey", sys_id)]).await.records
}

pub async fn attachments_are_stored_read_and_deleted<S: Store + ?Sized>(store: &S) {
    let (incident, attachments) = (table(tables::INCIDENT), table(tables::SYS_ATTACHMENT));
    let parent = new_incident(store, "Disk full").await;
    // Every byte value, NUL included, comes back as it went in.
    let content: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let added = attach(store, file(incident.clone(), &parent["sys_id"], "dump.bin", &content)).await;
    assert_eq!(added["table_name"], "incident");
    assert_eq!(added["table_sys_id"], parent["sys_id"]);
    assert_eq!(added["file_name"], "dump.bin");
    assert_eq!(added["size_bytes"], "70000");
    assert_eq!(added["size_compressed"], "70000");
    assert_eq!(added["compressed"], "false");
    assert_eq!(added["hash"], "hash-of-dump.bin");
    assert_eq!(added["sys_created_by"], "integration.alerts", "who attached it is recorded");
    assert_eq!(added["sys_created_on"], at(30).to_string());

    let sys_id = added["sys_id"].clone();
    assert_eq!(get(store, attachments.clone(), &sys_id).await, added, "the metadata reads back as written");
    assert_eq!(store.attachment_content(sys_id.clone()).await.expect("content"), Some(content));
    let second = attach(store, file(incident.clone(), &parent["sys_id"], "notes.txt", b"see log")).await;
    let page =
        list(store, attachments.clone(), &[("table_name", "incident"), ("table_sys_id", &parent["sys_id"])]).await;
    assert_eq!(page.total, 2);

    // No parent record, nothing written.
    let orphan = file(incident.clone(), "0123456789abcdef0123456789abcdef", "lost.txt", b"x");
    assert_eq!(store.add_attachment(orphan).await.expect("add"), AttachmentAdded::NoParent);
    assert_eq!(list(store, attachments.clone(), &[("file_name", "lost.txt")]).await.total, 0);

    // Deleting: the record it was, content gone, one DELETED row naming who and which file.
    assert_eq!(store.delete_attachment(removal(&sys_id)).await.expect("delete"), Some(added));
    assert_eq!(store.get(attachments.clone(), sys_id.clone()).await.expect("get"), None);
    assert_eq!(store.attachment_content(sys_id.clone()).await.expect("content"), None);
    let rows = deletion_rows(store, &sys_id).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!((rows[0]["fieldname"].as_str(), rows[0]["oldvalue"].as_str()), ("DELETED", "DELETED"));
    assert_eq!(rows[0]["newvalue"], "DELETED");
    assert_eq!(rows[0]["user"], "integration.alerts");
    let reason = format!("Attachment API: dump.bin deleted from incident {}", parent["sys_id"]);
    assert_eq!(rows[0]["reason"], reason);
    assert_eq!(store.delete_attachment(removal(&sys_id)).await.expect("delete again"), None);
    // The other attachment is untouched.
    assert_eq!(store.attachment_content(second["sys_id"].clone()).await.expect("content"), Some(b"see log".to_vec()));
}

pub async fn deleting_a_record_deletes_its_attachments<S: Store + ?Sized>(store: &S) {
    let (incident, attachments) = (table(tables::INCIDENT), table(tables::SYS_ATTACHMENT));
    let (doomed, kept) = (new_incident(store, "Doomed").await, new_incident(store, "Kept").await);
    let a = attach(store, file(incident.clone(), &doomed["sys_id"], "a.txt", b"a")).await;
    let b = attach(store, file(incident.clone(), &doomed["sys_id"], "b.txt", b"b")).await;
    let c = attach(store, file(incident.clone(), &kept["sys_id"], "c.txt", b"c")).await;
    let delete = TableWrite {
        table: incident.clone(),
        op: WriteOp::Delete(doomed["sys_id"].clone()),
        values: Default::default(),
        journal: Vec::new(),
        actor: actor(),
        now: at(120),
        reason: sluice_store::table_write::REASON,
    };
    assert_eq!(store.write(delete).await.expect("delete"), WriteResult::Deleted);
    for gone in [&a, &b] {
        let id = gone["sys_id"].clone();
        assert_eq!(store.get(attachments.clone(), id.clone()).await.expect("get"), None);
        assert_eq!(store.attachment_content(id.clone()).await.expect("content"), None);
        let rows = deletion_rows(store, &id).await;
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0]["reason"], format!("Table API: incident {} deleted", doomed["sys_id"]));
    }
    assert_eq!(get(store, attachments, &c["sys_id"]).await, c, "another record's attachment stays");
    assert_eq!(store.attachment_content(c["sys_id"].clone()).await.expect("content"), Some(b"c".to_vec()));
}
