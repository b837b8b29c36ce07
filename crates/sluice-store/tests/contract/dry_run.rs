//! A dry run answers what the commit does: each row goes through `dry_run`, then is imported,
//! and the two are compared (state, messages, errors, target, every value the commit stored).

use serde_json::json;
use sluice_core::Record;
use sluice_core::staging::RowState;
use sluice_core::tables;
use sluice_store::settle::Reference;
use sluice_store::{DryRun, ImportJob, Store};

use crate::helpers::*;

/// Incidents and users in the store, to show a dry run wrote nothing.
async fn counts<S: Store + ?Sized>(store: &S) -> (u64, u64) {
    let incidents = list(store, table(tables::INCIDENT), &[]).await.total;
    let users = list(store, table(tables::SYS_USER), &[]).await.total;
    (incidents, users)
}

fn dry_run_of(job: &ImportJob) -> DryRun {
    DryRun {
        staging: job.staging.clone(),
        target: job.target.clone(),
        verdict: job.verdict.clone(),
        actor: job.actor.clone(),
        now: job.now,
    }
}

/// Fields a dry run cannot know before the commit: ids and numbers it never draws, and a
/// reference it would create.
fn comparable(field: &str, would_create: &[&str]) -> bool {
    !field.starts_with("sys_") && field != "number" && !would_create.contains(&field)
}

pub async fn dry_runs_answer_what_the_commit_does<S: Store + ?Sized>(store: &S) {
    let integration = ready(store).await;
    let lifecycle = lifecycle_integration();
    store.prepare_staging(lifecycle.staging.clone()).await.expect("prepare staging");
    let actor = actor();
    import(store, job(&integration, json!({"u_short_description": "Seed", "u_caller": "known.user"}), &actor, at(0)))
        .await;

    let new = json!({
        "u_short_description": "Disk usage above 95% on db-prod-01",
        "u_correlation_id": "alertmanager:7c1e0f5a",
        "u_caller": "new.caller@example.com",
        "u_assignment_group": "Nobody",
        "u_impact": "2",
        "u_urgency": "2",
    });
    let mut escalated = new.clone();
    escalated["u_urgency"] = json!("1");
    escalated["u_caller"] = json!("KNOWN.USER");
    let rows = [
        (&integration, new.clone(), RowState::Inserted),
        (&integration, escalated.clone(), RowState::Updated),
        (&integration, escalated, RowState::Ignored),
        // The coalesce field is left as it matched (ServiceNow keeps the stored value).
        (
            &integration,
            json!({"u_short_description": "Case", "u_correlation_id": "ALERTMANAGER:7C1E0F5A"}),
            RowState::Updated,
        ),
        (
            &integration,
            json!({"u_short_description": "No correlation id", "u_caller": "known.user"}),
            RowState::Inserted,
        ),
        (&integration, json!({"u_impact": "9"}), RowState::Error),
        // The data policy: resolving needs a close code and notes.
        (&lifecycle, json!({"u_short_description": "Resolved bare", "u_state": "6"}), RowState::Error),
        (
            &lifecycle,
            json!({"u_short_description": "Resolved", "u_state": "6", "u_close_code": "Solved (Permanently)",
                   "u_close_notes": "Disk cleaned"}),
            RowState::Inserted,
        ),
    ];
    for (i, (integration, payload, expected)) in rows.into_iter().enumerate() {
        let job = job(integration, payload.clone(), &actor, at(10 + i as i64));
        let before = counts(store).await;
        let dry = store.dry_run(dry_run_of(&job)).await.expect("dry run");
        assert_eq!(counts(store).await, before, "row {i}: a dry run writes nothing");
        let committed = import(store, job).await;
        let what = format!("row {i} ({payload}): dry run {:?}, commit {committed:?}", dry.outcome);
        assert_eq!(committed.state, expected, "{what}");
        assert_eq!(dry.outcome.state, committed.state, "{what}");
        assert_eq!(dry.outcome.status_message, committed.status_message, "{what}");
        assert_eq!(dry.outcome.errors, committed.errors, "{what}");
        if committed.state != RowState::Inserted {
            assert_eq!(dry.outcome.target_sys_id, committed.target_sys_id, "{what}");
            assert_eq!(dry.outcome.display_value, committed.display_value, "{what}");
        }
        if committed.state == RowState::Error {
            assert!(dry.written.is_none(), "{what}");
            continue;
        }
        let lookups = dry_lookups(integration, &payload);
        let would_create: Vec<&str> = dry
            .references
            .iter()
            .zip(&lookups)
            .filter(|(r, _)| **r == Reference::WouldCreate)
            .map(|(_, field)| field.as_str())
            .collect();
        let stored: Record = incident(store, &committed).await;
        match (&dry.written, committed.state) {
            (Some(written), RowState::Inserted | RowState::Updated) => {
                assert_eq!(written.inserted, committed.state == RowState::Inserted, "{what}");
                for (field, value) in &written.applied.record {
                    if comparable(field, &would_create) {
                        assert_eq!(stored.get(field), Some(value), "{what}: field {field}");
                    }
                }
                for change in &written.applied.changes {
                    if comparable(&change.field, &would_create) {
                        assert_eq!(stored.get(&change.field), Some(&change.new), "{what}: change {}", change.field);
                    }
                }
            }
            (None, RowState::Ignored) => {}
            (written, state) => panic!("{what}: wrote {:?} for a row {state:?}", written.is_some()),
        }
    }
}

/// The target field of each lookup of the row's plan, in the plan's order.
fn dry_lookups(integration: &sluice_core::integration::Integration, payload: &serde_json::Value) -> Vec<String> {
    let job = job(integration, payload.clone(), &actor(), at(0));
    match &job.verdict {
        Ok(plan) => plan.lookups.iter().map(|l| l.target_field.clone()).collect(),
        Err(_) => Vec::new(),
    }
}
