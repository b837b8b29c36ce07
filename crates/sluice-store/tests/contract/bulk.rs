//! The contract of bulk imports: staging, processing once and in order, replays, retention.

use serde_json::json;
use sluice_core::SysId;
use sluice_core::rules::Actor;
use sluice_core::staging::RowState;
use sluice_core::tables;
use sluice_core::validate::ErrorCode;
use sluice_store::{Idempotency, ImportOutcome, RowFilter, StageBatch, StateCounts, Store, StoreError};

use crate::helpers::*;

/// A synchronous insertMultiple: rows staged with a verdict are processed as they are staged, in
/// order (an outcome per row, each row written once with it, the set `processed`).
pub async fn judged_rows_are_processed_as_they_are_staged<S: Store + ?Sized>(store: &S) {
    let i = ready(store).await;
    let a = actor();
    let payloads = [
        json!({"u_short_description": "Disk full", "u_correlation_id": "j:1"}),
        json!({"u_short_description": "Disk fuller", "u_correlation_id": "J:1", "u_urgency": "1"}),
        json!({"u_impact": "9"}),
    ];
    let mut judged = batch(&i, &payloads, &a, at(0));
    for row in &mut judged.rows {
        let record = serde_json::from_slice::<serde_json::Value>(&row.payload).expect("JSON");
        let staged = sluice_core::staging::stage(&i, record.as_object().expect("an object"));
        let verdict = sluice_core::validate::validate(&i, &staged).and_then(|r| sluice_core::transform::plan(&i, &r));
        row.verdict = Some(verdict);
    }
    let set = store.stage_many(judged).await.expect("stage_many");
    let counts = store.state_counts(i.staging.clone(), set.import_set.clone()).await.expect("counts");
    let state = get(store, table(tables::SYS_IMPORT_SET), &set.import_set).await["state"].clone();
    let outcomes: Vec<ImportOutcome> = set.outcomes.into_iter().map(|o| o.expect("processed")).collect();
    let states: Vec<_> = outcomes.iter().map(|o| o.state).collect();
    assert_eq!(states, vec![RowState::Inserted, RowState::Updated, RowState::Error]);
    assert_eq!(outcomes[0].target_sys_id, outcomes[1].target_sys_id, "in order");
    assert_eq!(counts, StateCounts { inserted: 1, updated: 1, error: 1, ..StateCounts::default() });
    assert_eq!(state, "processed");
    for outcome in &outcomes {
        let stored = staged(store, &i, outcome).await;
        assert_eq!(stored["sys_import_state"], outcome.state.as_str());
        assert_eq!(stored["sys_integration_version"], "1");
        assert_eq!(stored["sys_mod_count"], "0", "written once");
    }
    let inc = incident(store, &outcomes[1]).await;
    assert_eq!((inc["short_description"].as_str(), inc["urgency"].as_str()), ("Disk fuller", "1"));
}

/// insertMultiple with an Idempotency-Key: a retry of the same request stages nothing and
/// answers the first import set; the key with another request is refused, staging nothing.
pub async fn bulk_idempotency_keys_answer_the_first_import_set<S: Store + ?Sized>(store: &S) {
    let i = ready(store).await;
    let a = actor();
    let key = |fingerprint: &str| Some(Idempotency { key: "load-1".into(), fingerprint: fingerprint.into() });
    let payloads = [json!({"u_short_description": "once"}), json!({"u_short_description": "twice"})];
    let first = StageBatch { idempotency: key("f1"), ..batch(&i, &payloads, &a, at(0)) };
    let staged = store.stage_many(first.clone()).await.expect("stage_many");
    assert!(!staged.replayed);
    let retry = StageBatch { idempotency: key("f1"), ..batch(&i, &payloads, &a, at(5)) };
    let again = store.stage_many(retry).await.expect("retry");
    assert!(again.replayed);
    assert_eq!(
        (&again.import_set, &again.number, &again.multi_import_set),
        (&staged.import_set, &staged.number, &staged.multi_import_set)
    );
    let other = StageBatch { idempotency: key("f2"), ..batch(&i, &payloads[..1], &a, at(6)) };
    assert!(matches!(store.stage_many(other).await, Err(StoreError::KeyReused)));
    // Another account's key is its own.
    let b = Actor { user_name: "someone.else".into(), sys_id: SysId::generate() };
    let theirs = store.stage_many(StageBatch { idempotency: key("f2"), ..batch(&i, &payloads, &b, at(7)) });
    assert!(!theirs.await.expect("another account").replayed);
    assert_eq!(list(store, i.staging.clone(), &[]).await.total, 4);
    assert_eq!(list(store, table(tables::SYS_IMPORT_SET), &[]).await.total, 2);
}

/// insertMultiple: every record is staged `pending` in one new asynchronous import set with
/// its payload, and nothing is transformed; processing then updates each row in place, in
/// order, exactly once, and the set becomes `processed` with its last pending row.
pub async fn bulk_rows_are_staged_then_processed_once<S: Store + ?Sized>(store: &S) {
    let i = ready(store).await;
    let a = actor();
    let payloads = [
        json!({"u_short_description": "Disk full", "u_correlation_id": "b:1"}),
        json!({"u_short_description": "Disk fuller", "u_correlation_id": "B:1", "u_urgency": "1"}),
        json!({"u_impact": "9"}),
    ];
    let set = store.stage_many(batch(&i, &payloads, &a, at(0))).await.expect("stage_many");
    assert_eq!(set.number, "ISET0010001");
    assert!(SysId::is_valid(&set.import_set) && SysId::is_valid(&set.multi_import_set), "{set:?}");
    let record = get(store, table(tables::SYS_IMPORT_SET), &set.import_set).await;
    assert_eq!(
        (record["mode"].as_str(), record["state"].as_str(), record["multi_import_set"].as_str()),
        ("asynchronous", "loaded", set.multi_import_set.as_str())
    );
    assert_eq!(list(store, table(tables::INCIDENT), &[]).await.total, 0);
    let counts = store.state_counts(i.staging.clone(), set.import_set.clone()).await.expect("counts");
    assert_eq!(counts, StateCounts { pending: 3, ..StateCounts::default() });

    // Pending rows come back in staging order, after a cursor.
    let pending = store
        .staged_rows(i.staging.clone(), RowFilter { state: RowState::Pending, since: None, after: 0, limit: 10 })
        .await
        .expect("staged rows");
    assert_eq!(pending.len(), 3);
    for (n, row) in pending.iter().enumerate() {
        assert_eq!(row.record["sys_import_row"], n.to_string());
        assert_eq!(row.record["sys_import_set"], set.import_set);
        assert_eq!(row.record["sys_import_state"], "pending");
        assert_eq!(row.record["sys_payload"], payloads[n].to_string());
        assert_eq!(row.record["sys_integration_version"], "", "no definition processed it yet");
    }
    assert_eq!(pending[0].record["u_correlation_id"], "b:1");
    let after = RowFilter { state: RowState::Pending, since: None, after: pending[0].position, limit: 1 };
    let next = store.staged_rows(i.staging.clone(), after).await.expect("staged rows");
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].record["sys_id"], pending[1].record["sys_id"]);
    let later = RowFilter { state: RowState::Pending, since: Some(at(1)), after: 0, limit: 10 };
    assert!(store.staged_rows(i.staging.clone(), later).await.expect("staged rows").is_empty());

    let jobs = |now| pending.iter().map(|r| process_job(&i, &r.record, RowState::Pending, &a, now, None)).collect();
    let outcomes = process_all(store, jobs(at(5))).await;
    let outcomes: Vec<ImportOutcome> = outcomes.into_iter().map(|o| o.expect("pending rows run")).collect();
    let states: Vec<_> = outcomes.iter().map(|o| o.state).collect();
    assert_eq!(states, vec![RowState::Inserted, RowState::Updated, RowState::Error]);
    assert_eq!(
        outcomes[0].target_sys_id, outcomes[1].target_sys_id,
        "in order: the second row updates the first's incident"
    );
    assert_eq!(outcomes[0].import_set, "ISET0010001");
    assert_eq!(
        outcomes[2].errors.iter().map(|e| e.code).collect::<Vec<_>>(),
        vec![ErrorCode::FieldRequired, ErrorCode::InvalidChoice]
    );
    let inc = incident(store, &outcomes[1]).await;
    assert_eq!((inc["short_description"].as_str(), inc["urgency"].as_str()), ("Disk fuller", "1"));
    assert_eq!(list(store, table(tables::INCIDENT), &[]).await.total, 1);

    // The rows were updated in place: same sys_ids, their outcome, the version, when.
    assert_eq!(list(store, i.staging.clone(), &[]).await.total, 3);
    for (row, outcome) in pending.iter().zip(&outcomes) {
        let stored = staged(store, &i, outcome).await;
        assert_eq!(stored["sys_id"], row.record["sys_id"]);
        assert_eq!(stored["sys_import_state"], outcome.state.as_str());
        assert_eq!(stored["sys_integration_version"], "1");
        assert_eq!(stored["sys_updated_on"], at(5).to_string());
        assert_eq!(stored["sys_mod_count"], "1");
    }
    let audit = list(store, table(tables::SYS_AUDIT), &[("source_row", outcomes[0].staging_sys_id.as_str())]).await;
    assert!(audit.total > 0);
    assert!(audit.records.iter().all(|r| r["reason"].starts_with("Import Set u_incident_import row ")), "{audit:?}");

    // Processing again (a second worker, a restart) does nothing.
    let again = process_all(store, jobs(at(9))).await;
    assert!(again.iter().all(Option::is_none), "{again:?}");
    assert_eq!(list(store, table(tables::INCIDENT), &[]).await.total, 1);
    assert_eq!(
        get(store, table(tables::INCIDENT), outcomes[0].target_sys_id.as_deref().unwrap()).await["sys_mod_count"],
        "1"
    );

    let counts = store.state_counts(i.staging.clone(), set.import_set.clone()).await.expect("counts");
    assert_eq!(counts, StateCounts { inserted: 1, updated: 1, error: 1, ..StateCounts::default() });
    assert_eq!(counts.total(), 3);
    assert_eq!(get(store, table(tables::SYS_IMPORT_SET), &set.import_set).await["state"], "processed");

    // A bulk set is not the day's web-service set: a single row opens its own.
    let single = import(store, job(&i, json!({"u_short_description": "single"}), &a, at(10))).await;
    assert_eq!(single.import_set, "ISET0010002");
    // A second batch can join the same multi import set.
    let mut joined = batch(&i, &payloads[..1], &a, at(11));
    joined.multi_import_set = Some(set.multi_import_set.clone());
    let joined = store.stage_many(joined).await.expect("stage_many");
    assert_eq!(
        (joined.number.as_str(), joined.multi_import_set.as_str()),
        ("ISET0010003", set.multi_import_set.as_str())
    );
}

/// Replay: stored rows run again under the current definition. Error rows that a mapping fix
/// makes valid become incidents; a row that already has a target updates that record (even
/// where the definition would not find it), never a second one; the audit names the replay.
pub async fn replay_reruns_stored_rows_in_place<S: Store + ?Sized>(store: &S) {
    let v1 = mapped_integration("1", "major = \"2\"", true);
    store.prepare_staging(v1.staging.clone()).await.expect("prepare staging");
    let a = actor();
    let payloads = [
        json!({"u_id": "r:1", "u_summary": "Router down", "u_severity": "critical"}),
        json!({"u_id": "r:2", "u_summary": "Switch flapping", "u_severity": "major"}),
    ];
    store.stage_many(batch(&v1, &payloads, &a, at(0))).await.expect("stage_many");
    let rows = rows_in(store, &v1, RowState::Pending).await;
    let jobs = rows.iter().map(|r| process_job(&v1, r, RowState::Pending, &a, at(1), None)).collect();
    let first: Vec<_> = process_all(store, jobs).await.into_iter().map(Option::unwrap).collect();
    assert_eq!((first[0].state, first[1].state), (RowState::Error, RowState::Inserted));
    assert_eq!(first[0].errors[0].code, ErrorCode::InvalidChoice);

    // The fix: version 2 knows "critical". Replaying the error rows creates the incident.
    let v2 = mapped_integration("2", "major = \"2\", critical = \"1\"", true);
    let errors = rows_in(store, &v2, RowState::Error).await;
    assert_eq!(errors.len(), 1);
    let jobs = errors.iter().map(|r| process_job(&v2, r, RowState::Error, &a, at(60), Some("admin"))).collect();
    let replayed = process_all(store, jobs).await.remove(0).expect("the error row was replayed");
    assert_eq!(replayed.state, RowState::Inserted, "{replayed:?}");
    assert_eq!(replayed.staging_sys_id, first[0].staging_sys_id, "the row itself is updated");
    assert!(replayed.errors.is_empty());
    let inc = incident(store, &replayed).await;
    assert_eq!((inc["correlation_id"].as_str(), inc["urgency"].as_str()), ("r:1", "1"));
    let row = staged(store, &v2, &replayed).await;
    assert_eq!((row["sys_import_state"].as_str(), row["sys_integration_version"].as_str()), ("inserted", "2"));
    assert_eq!((row["sys_row_error"].as_str(), row["sys_row_errors"].as_str()), ("", ""));
    assert_eq!(row["sys_target_sys_id"], inc["sys_id"]);
    let audit = list(store, table(tables::SYS_AUDIT), &[("documentkey", &inc["sys_id"])]).await;
    assert!(audit.total > 0);
    for r in &audit.records {
        assert!(r["reason"].starts_with("Replay of Import Set u_mapped row "), "{r:?}");
        assert!(r["reason"].ends_with("(requested by admin)"), "{r:?}");
        assert_eq!(r["source_row"], replayed.staging_sys_id.as_str());
    }
    assert_eq!(list(store, table(tables::INCIDENT), &[]).await.total, 2);

    // Replaying the same error row again: it is no longer an error, nothing happens.
    let jobs = errors.iter().map(|r| process_job(&v2, r, RowState::Error, &a, at(61), Some("admin"))).collect();
    assert_eq!(process_all(store, jobs).await, vec![None]);
    assert!(rows_in(store, &v2, RowState::Error).await.is_empty());

    // Replaying the inserted rows with the same definition changes nothing.
    let inserted = rows_in(store, &v2, RowState::Inserted).await;
    assert_eq!(inserted.len(), 2);
    let jobs = inserted.iter().map(|r| process_job(&v2, r, RowState::Inserted, &a, at(62), Some("admin"))).collect();
    let states: Vec<_> = process_all(store, jobs).await.into_iter().map(|o| o.unwrap().state).collect();
    assert_eq!(states, vec![RowState::Ignored, RowState::Ignored]);

    // Version 3 drops the coalesce: the rows still update the incidents they produced.
    let v3 = mapped_integration("3", "major = \"3\", critical = \"3\"", false);
    let ignored = rows_in(store, &v3, RowState::Ignored).await;
    let jobs = ignored.iter().map(|r| process_job(&v3, r, RowState::Ignored, &a, at(63), Some("admin"))).collect();
    let again: Vec<_> = process_all(store, jobs).await.into_iter().map(Option::unwrap).collect();
    assert_eq!((again[0].state, again[1].state), (RowState::Updated, RowState::Updated), "{again:?}");
    assert_eq!(again[0].target_sys_id.as_deref(), Some(inc["sys_id"].as_str()));
    assert_eq!(again[1].target_sys_id, first[1].target_sys_id);
    assert_eq!(list(store, table(tables::INCIDENT), &[]).await.total, 2);
    assert_eq!(incident(store, &again[0]).await["urgency"], "3");
    assert_eq!(staged(store, &v3, &again[0]).await["sys_integration_version"], "3");
}

/// Retention: staged rows older than the cut-off are purged unless pending; import sets are
/// purged once empty; incidents stay.
pub async fn purge_keeps_pending_rows<S: Store + ?Sized>(store: &S) {
    let i = ready(store).await;
    let a = actor();
    let old = import(store, job(&i, json!({"u_short_description": "old"}), &a, at(0))).await;
    let waiting =
        store.stage_many(batch(&i, &vec![json!({"u_short_description": "waiting"}); 2], &a, at(0))).await.unwrap();
    let done = store.stage_many(batch(&i, &[json!({"u_short_description": "done"})], &a, at(0))).await.unwrap();
    let done_rows: Vec<_> = rows_in(store, &i, RowState::Pending)
        .await
        .into_iter()
        .filter(|r| r["sys_import_set"] == done.import_set)
        .collect();
    let jobs = done_rows.iter().map(|r| process_job(&i, r, RowState::Pending, &a, at(1), None)).collect();
    process_all(store, jobs).await;
    let recent = import(store, job(&i, json!({"u_short_description": "recent"}), &a, at(2 * ONE_DAY))).await;
    assert_eq!(list(store, i.staging.clone(), &[]).await.total, 5);

    let report = store.purge_staging(i.staging.clone(), at(ONE_DAY), 1_000).await.expect("purge");
    assert_eq!((report.rows, report.import_sets), (2, 2), "{report:?}");
    let left = list(store, i.staging.clone(), &[]).await;
    let mut kept: Vec<_> = left.records.iter().map(|r| r["sys_import_state"].as_str()).collect();
    kept.sort();
    assert_eq!(kept, vec!["inserted", "pending", "pending"]);
    assert!(store.get(i.staging.clone(), old.staging_sys_id.to_string()).await.unwrap().is_none());
    assert!(store.get(i.staging.clone(), recent.staging_sys_id.to_string()).await.unwrap().is_some());
    let sets = list(store, table(tables::SYS_IMPORT_SET), &[]).await;
    let mut numbers: Vec<_> = sets.records.iter().map(|s| s["sys_id"].clone()).collect();
    numbers.sort();
    let recent_set = staged(store, &i, &recent).await["sys_import_set"].clone();
    let mut expected = vec![waiting.import_set.clone(), recent_set];
    expected.sort();
    assert_eq!(numbers, expected, "the emptied sets are gone, the one with pending rows stays");
    assert_eq!(list(store, table(tables::INCIDENT), &[]).await.total, 3);

    // Nothing more to purge; a limit bounds one pass.
    assert_eq!(store.purge_staging(i.staging.clone(), at(ONE_DAY), 1_000).await.unwrap().rows, 0);
    let report = store.purge_staging(i.staging.clone(), at(3 * ONE_DAY), 0).await.unwrap();
    assert_eq!(report.rows, 0);
    let report = store.purge_staging(i.staging.clone(), at(3 * ONE_DAY), 1_000).await.unwrap();
    assert_eq!(report.rows, 1, "only pending rows are left");
}
