//! Concurrency that SQLite's single writer serialises and PostgreSQL coordinates: idempotency
//! keys under concurrent retries, and two stores (nodes) on one database.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::json;
use sluice_core::staging::RowState;
use sluice_core::tables;
use sluice_store::{Idempotency, Store, StoreError};

use crate::helpers::*;

/// Two stores on one database (two nodes): imports with one correlation id sent to both at once
/// make one incident; the others update it; numbers are unique across both; an unknown caller
/// named by all of them at once becomes one user.
pub async fn two_nodes_share_one_database<S: Store>(a: Arc<S>, b: Arc<S>) {
    let i = ready(a.as_ref()).await;
    ready(b.as_ref()).await;
    let actor = actor();
    let mut tasks = Vec::new();
    for n in 0..60 {
        let store = if n % 2 == 0 { a.clone() } else { b.clone() };
        let (correlated, alone) = (
            json!({"u_short_description": format!("storm {n}"), "u_correlation_id": "am:two-nodes"}),
            json!({"u_short_description": format!("alone {n}"), "u_caller": "Storm.Bot"}),
        );
        let (one, two) = (job(&i, correlated, &actor, at(0)), job(&i, alone, &actor, at(0)));
        tasks.push(tokio::spawn(async move { (store.import(one).await, store.import(two).await) }));
    }
    let (mut inserted, mut numbers) = (0, BTreeSet::new());
    for task in tasks {
        let (correlated, alone) = task.await.expect("task");
        let correlated = correlated.expect("import");
        inserted += usize::from(correlated.state == RowState::Inserted);
        numbers.insert(correlated.display_value.expect("number"));
        let alone = alone.expect("import");
        assert_eq!(alone.state, RowState::Inserted);
        assert!(numbers.insert(alone.display_value.expect("number")), "a number was given twice");
    }
    assert_eq!(inserted, 1, "one incident for the correlation id");
    assert_eq!(numbers.len(), 61);
    let storm = list(a.as_ref(), table(tables::INCIDENT), &[("correlation_id", "am:two-nodes")]).await;
    assert_eq!((storm.total, storm.records[0]["sys_mod_count"].as_str()), (1, "59"));
    assert_eq!(list(b.as_ref(), table(tables::INCIDENT), &[]).await.total, 61);
    assert_eq!(list(b.as_ref(), table(tables::SYS_IMPORT_SET), &[]).await.total, 1);
    let callers = list(a.as_ref(), table(tables::SYS_USER), &[("user_name", "storm.bot")]).await;
    assert_eq!(callers.total, 1, "the unknown caller is created once");
}

/// An idempotency key: the first import's answer comes back for a retry (nothing new written),
/// a different request with the key is refused, concurrent retries import once, and purged keys
/// are forgotten.
pub async fn idempotency_keys<S: Store>(store: Arc<S>) {
    let i = ready(store.as_ref()).await;
    let a = actor();
    let keyed = |key: &str, fingerprint: &str, summary: &str| {
        let mut j = job(&i, json!({"u_short_description": summary}), &a, at(0));
        j.idempotency = Some(Idempotency { key: key.into(), fingerprint: fingerprint.into() });
        j
    };
    let first = import(store.as_ref(), keyed("k1", "f1", "Disk full")).await;
    assert_eq!((first.state, first.replayed), (RowState::Inserted, false));
    let again = import(store.as_ref(), keyed("k1", "f1", "Disk full")).await;
    assert!(again.replayed, "{again:?}");
    assert_eq!(
        (again.state, &again.target_sys_id, &again.display_value),
        (first.state, &first.target_sys_id, &first.display_value)
    );
    assert_eq!(again.staging_sys_id, first.staging_sys_id);
    assert!(matches!(store.import(keyed("k1", "other", "Disk full")).await, Err(StoreError::KeyReused)));
    assert_eq!(list(store.as_ref(), table(tables::INCIDENT), &[]).await.total, 1);

    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (store, j) = (store.clone(), keyed("k2", "f2", "CPU hot"));
            tokio::spawn(async move { store.import(j).await })
        })
        .collect();
    let mut fresh = 0;
    for task in tasks {
        let outcome = task.await.expect("task").expect("import");
        fresh += usize::from(!outcome.replayed);
        assert_eq!(outcome.display_value.as_deref(), Some("INC0010002"));
    }
    assert_eq!(fresh, 1, "one of the concurrent retries imported");
    assert_eq!(list(store.as_ref(), table(tables::INCIDENT), &[]).await.total, 2);

    assert_eq!(store.purge_idempotency(at(-1)).await.expect("purge"), 0);
    assert_eq!(store.purge_idempotency(at(1)).await.expect("purge"), 2);
    let after = import(store.as_ref(), keyed("k1", "other", "Disk full")).await;
    assert_eq!((after.state, after.replayed), (RowState::Inserted, false), "a forgotten key is free again");
}

/// Imports sent together share a transaction (group commit on both backends): one correlation
/// id several times in a batch makes one incident that the others update, and a job the
/// database refuses (here: a staging column its table lacks) fails alone while the rest of its
/// batch commits.
pub async fn a_batch_settles_its_jobs_in_order_and_fails_them_alone<S: Store>(store: Arc<S>) {
    let i = ready(store.as_ref()).await;
    let a = actor();
    let mut broken = (*i.staging).clone();
    let mut extra = broken.fields.iter().find(|f| f.name == "u_short_description").expect("a staging column").clone();
    extra.name = "u_not_a_column".into();
    broken.fields.push(extra);
    let broken = Arc::new(broken);
    let tasks: Vec<_> = (0..40)
        .map(|n| {
            let store = store.clone();
            let correlation = if n % 2 == 0 { "am:batch".to_owned() } else { format!("am:{n}") };
            let payload = json!({"u_short_description": format!("disk {n}"), "u_correlation_id": correlation});
            let mut job = job(&i, payload, &a, at(0));
            if n == 7 {
                job.staging = broken.clone();
            }
            tokio::spawn(async move { store.import(job).await })
        })
        .collect();
    let (mut inserted, mut updated) = (0, 0);
    for (n, task) in tasks.into_iter().enumerate() {
        let result = task.await.expect("task");
        if n == 7 {
            assert!(result.is_err(), "the refused job fails: {result:?}");
            continue;
        }
        match result.expect("import").state {
            RowState::Inserted => inserted += 1,
            RowState::Updated => updated += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((inserted, updated), (20, 19), "one insert per correlation id, the rest update");
    assert_eq!(list(store.as_ref(), table(tables::INCIDENT), &[]).await.total, 20);
    let shared = list(store.as_ref(), table(tables::INCIDENT), &[("correlation_id", "am:batch")]).await;
    assert_eq!((shared.total, shared.records[0]["sys_mod_count"].as_str()), (1, "19"));
    assert!(list(store.as_ref(), table(tables::INCIDENT), &[("correlation_id", "am:7")]).await.records.is_empty());
    assert_eq!(list(store.as_ref(), i.staging.clone(), &[]).await.total, 39, "the refused row is not staged");
    let numbers: BTreeSet<String> =
        list(store.as_ref(), table(tables::INCIDENT), &[]).await.records.iter().map(|r| r["number"].clone()).collect();
    assert_eq!(numbers.len(), 20, "numbers are unique");
}
