//! The forwarding outbox: rows queued in the commit's transaction, leases, finishes (delivered,
//! retry, dead), changes while a delivery is under way, retries of dead rows, counts.

use serde_json::json;
use sluice_core::staging::RowState;
use sluice_store::outbox::{Claim, Delivery, DeliveryFilter, DeliveryState, Finish, Finished};
use sluice_store::{ImportJob, ImportOutcome, Store};

use crate::helpers::*;

fn forwarded(mut job: ImportJob) -> ImportJob {
    if let Ok(plan) = &mut job.verdict {
        plan.forward = Some("partner".into());
    }
    job
}

fn ms(secs: i64) -> i64 {
    at(secs).unix() * 1000
}

fn claim(owner: &str, now_ms: i64, lease_ms: i64) -> Claim {
    Claim { owner: owner.into(), now_ms, lease_ms, limit: 10, integration: Some("partner".into()) }
}

fn finished(d: &Delivery, owner: &str, now_ms: i64, finish: Finish) -> Finished {
    Finished {
        integration: d.integration.clone(),
        record_sys_id: d.record_sys_id.clone(),
        owner: owner.into(),
        version: d.version,
        now_ms,
        finish,
        note: None,
    }
}

async fn row<S: Store + ?Sized>(store: &S, outcome: &ImportOutcome) -> Option<Delivery> {
    let sys_id = outcome.target_sys_id.clone().expect("a target");
    store.delivery("partner".into(), sys_id).await.expect("read the outbox")
}

/// A committed record of a forwarding integration is queued with its commit; a change raises
/// the row's version; an unchanged resend, an error row and a row of an integration without
/// forwarding queue nothing.
pub async fn forwarded_commits_queue_their_record<S: Store + ?Sized>(store: &S) {
    let i = ready(store).await;
    let a = actor();
    let payload = |text: &str| json!({"u_short_description": text, "u_correlation_id": "fw:1"});
    let first = import(store, forwarded(job(&i, payload("Disk full"), &a, at(0)))).await;
    assert_eq!(first.state, RowState::Inserted);
    let queued = row(store, &first).await.expect("queued with the commit");
    assert_eq!((queued.state, queued.version, queued.attempts), (DeliveryState::Pending, 1, 0));
    assert_eq!((queued.table.as_str(), queued.staging_sys_id.as_str()), ("incident", first.staging_sys_id.as_str()));
    assert_eq!((queued.next_attempt_ms, queued.created_ms), (ms(0), ms(0)));

    let changed = import(store, forwarded(job(&i, payload("Disk still full"), &a, at(5)))).await;
    assert_eq!(changed.state, RowState::Updated);
    let queued = row(store, &first).await.unwrap();
    assert_eq!((queued.version, queued.staging_sys_id.as_str()), (2, changed.staging_sys_id.as_str()));
    let unchanged = import(store, forwarded(job(&i, payload("Disk still full"), &a, at(6)))).await;
    assert_eq!(unchanged.state, RowState::Ignored);
    assert_eq!(row(store, &first).await.unwrap().version, 2, "nothing written, nothing queued");

    let bad = import(store, forwarded(job(&i, json!({"u_short_description": "x", "u_impact": "9"}), &a, at(7)))).await;
    assert_eq!(bad.state, RowState::Error);
    let plain = import(store, job(&i, json!({"u_short_description": "not forwarded"}), &a, at(8))).await;
    assert_eq!(row(store, &plain).await, None);
    let all = store.deliveries(DeliveryFilter { limit: 100, ..DeliveryFilter::default() }).await.unwrap();
    assert_eq!(all.len(), 1, "{all:?}");
    let counts = store.outbox_counts(None).await.unwrap();
    assert_eq!((counts.pending, counts.delivered, counts.dead, counts.oldest_pending_ms), (1, 0, 0, Some(ms(0))));
}

/// Leases: one owner at a time, until the lease ends; a finish counts for the lease's owner only.
/// Retry waits for its time; a change during a delivery leaves the row pending for one more;
/// delivered and dead rows are queued again by a change; dead rows by a retry.
pub async fn deliveries_are_leased_finished_and_retried<S: Store + ?Sized>(store: &S) {
    let i = ready(store).await;
    let a = actor();
    let payload = |text: &str| json!({"u_short_description": text, "u_correlation_id": "fw:2"});
    let first = import(store, forwarded(job(&i, payload("One"), &a, at(0)))).await;

    let taken = store.claim_deliveries(claim("node-a", ms(1), 30_000)).await.unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!((taken[0].lease_owner.as_str(), taken[0].lease_until_ms), ("node-a", ms(1) + 30_000));
    assert!(store.claim_deliveries(claim("node-b", ms(2), 30_000)).await.unwrap().is_empty(), "leased");
    let retry = Finish::Retry { at_ms: ms(60), error: "503 from upstream".into() };
    assert!(!store.finish_delivery(finished(&taken[0], "node-b", ms(2), retry.clone())).await.unwrap());
    assert!(store.finish_delivery(finished(&taken[0], "node-a", ms(2), retry)).await.unwrap());
    assert!(store.claim_deliveries(claim("node-b", ms(30), 30_000)).await.unwrap().is_empty(), "not due yet");

    // Due again; the lease expires and another node takes it; the first owner's answer is late.
    let taken = store.claim_deliveries(claim("node-b", ms(60), 1_000)).await.unwrap();
    assert_eq!((taken.len(), taken[0].attempts, taken[0].last_error.as_str()), (1, 1, "503 from upstream"));
    let retaken = store.claim_deliveries(claim("node-c", ms(62), 30_000)).await.unwrap();
    assert_eq!(retaken.len(), 1, "an expired lease is taken over");
    let delivered = Finish::Delivered { upstream_number: "INC0020001".into(), upstream_sys_id: "u1".into() };
    assert!(!store.finish_delivery(finished(&taken[0], "node-b", ms(63), delivered.clone())).await.unwrap());

    // Changed while node-c delivers: its answer records the upstream ids but leaves it pending.
    import(store, forwarded(job(&i, payload("Two"), &a, at(63)))).await;
    assert!(store.finish_delivery(finished(&retaken[0], "node-c", ms(64), delivered.clone())).await.unwrap());
    let again = row(store, &first).await.unwrap();
    assert_eq!((again.state, again.version, again.attempts), (DeliveryState::Pending, 2, 0));
    assert_eq!((again.upstream_number.as_str(), again.upstream_sys_id.as_str()), ("INC0020001", "u1"));
    let taken = store.claim_deliveries(claim("node-c", ms(64), 30_000)).await.unwrap();
    assert_eq!(taken[0].version, 2);
    assert!(store.finish_delivery(finished(&taken[0], "node-c", ms(65), delivered)).await.unwrap());
    let done = row(store, &first).await.unwrap();
    assert_eq!((done.state, done.lease_owner.as_str()), (DeliveryState::Delivered, ""));
    assert!(store.claim_deliveries(claim("node-a", ms(70), 30_000)).await.unwrap().is_empty());

    // A change queues a delivered row again, from its first attempt, the upstream ids kept.
    import(store, forwarded(job(&i, payload("Three"), &a, at(80)))).await;
    let queued = row(store, &first).await.unwrap();
    assert_eq!((queued.state, queued.attempts, queued.next_attempt_ms), (DeliveryState::Pending, 0, ms(80)));
    assert_eq!(queued.upstream_sys_id, "u1");
    let taken = store.claim_deliveries(claim("node-a", ms(81), 30_000)).await.unwrap();
    let dead = Finish::Dead { error: "400 from upstream: bad field".into() };
    assert!(store.finish_delivery(finished(&taken[0], "node-a", ms(82), dead)).await.unwrap());
    let gone = row(store, &first).await.unwrap();
    assert_eq!(
        (gone.state, gone.attempts, gone.last_error.as_str()),
        (DeliveryState::Dead, 1, "400 from upstream: bad field")
    );
    let counts = store.outbox_counts(Some("partner".into())).await.unwrap();
    assert_eq!((counts.pending, counts.dead), (0, 1));
    let listed = store
        .deliveries(DeliveryFilter { integration: Some("partner".into()), state: Some(DeliveryState::Dead), limit: 10 })
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert!(store.claim_deliveries(claim("node-a", ms(90), 30_000)).await.unwrap().is_empty(), "dead stays dead");

    assert_eq!(store.retry_deliveries("other".into(), None, ms(95)).await.unwrap(), 0);
    assert_eq!(
        store.retry_deliveries("partner".into(), Some(first.target_sys_id.clone().unwrap()), ms(95)).await.unwrap(),
        1
    );
    let back = row(store, &first).await.unwrap();
    assert_eq!((back.state, back.attempts, back.next_attempt_ms), (DeliveryState::Pending, 0, ms(95)));
    assert_eq!(store.claim_deliveries(claim("node-b", ms(95), 30_000)).await.unwrap().len(), 1);
}

/// Two workers claiming at once never take the same row.
pub async fn concurrent_claims_take_each_row_once(store: std::sync::Arc<dyn Store>) {
    let i = ready(store.as_ref()).await;
    let a = actor();
    for n in 0..20 {
        let payload = json!({"u_short_description": format!("row {n}"), "u_correlation_id": format!("fw:c{n}")});
        import(store.as_ref(), forwarded(job(&i, payload, &a, at(n)))).await;
    }
    let take = |owner: &'static str| {
        let store = store.clone();
        tokio::spawn(async move {
            let claim = Claim { owner: owner.into(), now_ms: ms(100), lease_ms: 60_000, limit: 15, integration: None };
            store.claim_deliveries(claim).await.expect("claim")
        })
    };
    let (one, two) = (take("node-a"), take("node-b"));
    let (one, two) = (one.await.unwrap(), two.await.unwrap());
    let mut ids: Vec<String> = one.iter().chain(&two).map(|d| d.record_sys_id.clone()).collect();
    assert_eq!(ids.len(), 20, "15 and 5, in some order: {} and {}", one.len(), two.len());
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 20, "no row taken twice");
}

/// A finish carries the write of the upstream's number onto the record into its own
/// transaction: made (with its history) while the lease is held, not after it was lost.
pub async fn a_finish_writes_its_note_only_for_the_lease_owner<S: Store + ?Sized>(store: &S) {
    use sluice_store::{TableWrite, WriteOp};
    let i = ready(store).await;
    let a = actor();
    let first = import(store, forwarded(job(&i, json!({"u_short_description": "Note"}), &a, at(0)))).await;
    let sys_id = first.target_sys_id.clone().unwrap();
    let note = |number: &str| TableWrite {
        table: i.target.clone(),
        op: WriteOp::Update(sys_id.clone()),
        values: [("u_upstream_number".to_owned(), number.to_owned())].into_iter().collect(),
        journal: Vec::new(),
        actor: a.clone(),
        now: at(3),
        reason: "Forwarding",
    };
    let delivered = |n: &str| Finish::Delivered { upstream_number: n.into(), upstream_sys_id: String::new() };
    let taken = store.claim_deliveries(claim("node-a", ms(1), 1_000)).await.unwrap();
    let retaken = store.claim_deliveries(claim("node-b", ms(5), 30_000)).await.unwrap();
    let mut late = finished(&taken[0], "node-a", ms(6), delivered("INC-LATE"));
    late.note = Some(note("INC-LATE"));
    assert!(!store.finish_delivery(late).await.unwrap(), "node-a's lease expired");
    assert_eq!(get(store, i.target.clone(), &sys_id).await["u_upstream_number"], "", "no note without the lease");
    let mut owned = finished(&retaken[0], "node-b", ms(7), delivered("INC0030001"));
    owned.note = Some(note("INC0030001"));
    assert!(store.finish_delivery(owned).await.unwrap());
    assert_eq!(get(store, i.target.clone(), &sys_id).await["u_upstream_number"], "INC0030001");
    assert_eq!(row(store, &first).await.unwrap().state, DeliveryState::Delivered);
    let history =
        list(store, table("sys_audit"), &[("documentkey", &sys_id), ("fieldname", "u_upstream_number")]).await;
    assert_eq!(history.records.len(), 1, "{:?}", history.records);
    assert_eq!(history.records[0]["reason"], "Forwarding");
}

/// Imports sent together (on PostgreSQL one writer's batch, its outbox rows written in one
/// statement) queue one row per record, including a record inserted and changed in the same
/// batch.
pub async fn a_batch_queues_one_row_per_record(store: std::sync::Arc<dyn Store>) {
    let i = ready(store.as_ref()).await;
    let a = actor();
    let tasks: Vec<_> = (0..30)
        .map(|n| {
            let store = store.clone();
            let correlation = if n % 2 == 0 { "fw:batch".to_owned() } else { format!("fw:b{n}") };
            let payload = json!({"u_short_description": format!("disk {n}"), "u_correlation_id": correlation});
            let job = forwarded(job(&i, payload, &a, at(n)));
            tokio::spawn(async move { store.import(job).await.expect("import") })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.expect("task"));
    }
    let records: std::collections::BTreeSet<String> =
        outcomes.iter().map(|o| o.target_sys_id.clone().expect("a target")).collect();
    assert_eq!(records.len(), 16, "one record for fw:batch, fifteen others");
    let rows = store.deliveries(DeliveryFilter { limit: 100, ..DeliveryFilter::default() }).await.unwrap();
    let queued: std::collections::BTreeSet<String> = rows.iter().map(|d| d.record_sys_id.clone()).collect();
    assert_eq!((rows.len(), &queued), (16, &records), "one outbox row per record");
    assert!(rows.iter().all(|d| d.state == DeliveryState::Pending && d.version >= 1 && d.attempts == 0));
    let shared = records
        .iter()
        .find(|r| outcomes.iter().filter(|o| o.target_sys_id.as_ref() == Some(*r)).count() == 15)
        .expect("fw:batch's record")
        .clone();
    let row = rows.iter().find(|d| d.record_sys_id == shared).unwrap();
    let staged: Vec<&str> = outcomes
        .iter()
        .filter(|o| o.target_sys_id.as_deref() == Some(shared.as_str()))
        .map(|o| o.staging_sys_id.as_str())
        .collect();
    assert!(staged.contains(&row.staging_sys_id.as_str()), "the row names one of its record's staging rows");
}
