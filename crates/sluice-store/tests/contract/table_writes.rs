//! Table API writes ([`Records::write`], `sluice_store::table_write`): references by display
//! value, the business rules, numbering, what an update writes, history and journal entries.

use std::collections::BTreeMap;
use std::sync::Arc;

use sluice_core::Record;
use sluice_core::schema::TableSchema;
use sluice_core::tables;
use sluice_store::{Store, TableWrite, WriteOp, WriteResult};

use crate::helpers::{actor, at, get, list, table};

fn write(schema: Arc<TableSchema>, op: WriteOp, values: &[(&str, &str)], journal: &[(&str, &str)]) -> TableWrite {
    TableWrite {
        table: schema,
        op,
        values: values.iter().map(|(f, v)| ((*f).to_owned(), (*v).to_owned())).collect::<BTreeMap<_, _>>(),
        journal: journal.iter().map(|(f, v)| ((*f).to_owned(), (*v).to_owned())).collect(),
        actor: actor(),
        now: at(60),
        reason: sluice_store::table_write::REASON,
    }
}

async fn written<S: Store + ?Sized>(store: &S, w: TableWrite) -> Record {
    match store.write(w).await.expect("write") {
        WriteResult::Written(record) => record,
        other => panic!("not written: {other:?}"),
    }
}

pub async fn table_writes_go_through_the_rules<S: Store + ?Sized>(store: &S) {
    let (incident, users, audit) = (table(tables::INCIDENT), table(tables::SYS_USER), table(tables::SYS_AUDIT));
    let bob = written(
        store,
        write(
            users.clone(),
            WriteOp::Insert,
            &[("user_name", "bob.smith"), ("name", "Bob Smith"), ("email", "bob@example.com")],
            &[],
        ),
    )
    .await;
    let alice =
        written(store, write(users.clone(), WriteOp::Insert, &[("user_name", "alice"), ("name", "Alice")], &[])).await;
    assert_eq!(bob["sys_mod_count"], "0");

    // References by display value (any case), by user name and e-mail for users, by sys_id; one
    // that names nothing is left out; the incident gets a number; blank journal entries are dropped.
    let created = written(
        store,
        write(
            incident.clone(),
            WriteOp::Insert,
            &[
                ("short_description", "Disk full"),
                ("caller_id", "BOB SMITH"),
                ("assigned_to", "Bob@Example.com"),
                ("opened_by", &alice["sys_id"]),
                ("resolved_by", "alice"),
                ("assignment_group", "No such group"),
            ],
            &[("work_notes", "first note"), ("comments", "   ")],
        ),
    )
    .await;
    let id = created["sys_id"].clone();
    assert!(created["number"].starts_with("INC"), "{created:?}");
    let stored = get(store, incident.clone(), &id).await;
    assert_eq!(stored, created);
    assert_eq!(stored["caller_id"], bob["sys_id"]);
    assert_eq!(stored["assigned_to"], bob["sys_id"]);
    assert_eq!(stored["opened_by"], alice["sys_id"]);
    assert_eq!(stored["resolved_by"], alice["sys_id"]);
    assert_eq!(stored["assignment_group"], "");
    let journal = store.journal(tables::INCIDENT.into(), vec![id.clone()]).await.expect("journal");
    assert_eq!(journal.len(), 1, "{journal:?}");
    assert_eq!((journal[0].element.as_str(), journal[0].value.as_str()), ("work_notes", "first note"));
    let trail = list(store, audit.clone(), &[("documentkey", &id)]).await;
    assert!(trail.total > 0);
    assert!(trail.records.iter().all(|r| r["reason"] == "Table API" && r["source_table"].is_empty()), "{trail:?}");
    let audited = trail.total;

    // An update that changes nothing writes nothing; a journal entry alone counts as an update
    // (no history: no field changed); a change is written with its history.
    let same = written(
        store,
        write(incident.clone(), WriteOp::Update(id.clone()), &[("short_description", "Disk full")], &[]),
    )
    .await;
    assert_eq!(same["sys_mod_count"], "0");
    assert_eq!(get(store, incident.clone(), &id).await, stored);
    let noted =
        written(store, write(incident.clone(), WriteOp::Update(id.clone()), &[], &[("comments", "any news?")])).await;
    assert_eq!(noted["sys_mod_count"], "1");
    assert_eq!(get(store, incident.clone(), &id).await, noted);
    assert_eq!(list(store, audit.clone(), &[("documentkey", &id)]).await.total, audited);
    assert_eq!(store.journal(tables::INCIDENT.into(), vec![id.clone()]).await.expect("journal").len(), 2);
    let changed = written(
        store,
        write(
            incident.clone(),
            WriteOp::Update(id.clone()),
            &[("short_description", "Disk very full"), ("caller_id", "alice")],
            &[],
        ),
    )
    .await;
    assert_eq!(changed["sys_mod_count"], "2");
    assert_eq!(changed["caller_id"], alice["sys_id"]);
    assert_eq!(get(store, incident.clone(), &id).await, changed);
    assert_eq!(list(store, audit.clone(), &[("documentkey", &id)]).await.total, audited + 2);

    // The rules refuse; nothing is written.
    let refused = store.write(write(incident.clone(), WriteOp::Update(id.clone()), &[("state", "6")], &[])).await;
    assert!(matches!(refused, Ok(WriteResult::Refused(_))), "{refused:?}");
    assert_eq!(get(store, incident.clone(), &id).await, changed);

    // Records that do not exist; a delete.
    let missing = "0123456789abcdef0123456789abcdef".to_owned();
    for op in [WriteOp::Update(missing.clone()), WriteOp::Delete(missing)] {
        assert_eq!(store.write(write(incident.clone(), op, &[], &[])).await.expect("write"), WriteResult::NotFound);
    }
    let deleted = store.write(write(incident.clone(), WriteOp::Delete(id.clone()), &[], &[])).await.expect("delete");
    assert_eq!(deleted, WriteResult::Deleted);
    assert!(store.get(incident, id).await.expect("get").is_none());
}
