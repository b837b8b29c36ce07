//! Transform scripts on every path that transforms a staged row: `insertMultiple` rows processed
//! by the background worker and in sync mode, and replays of stored rows, run the same
//! `on_before` and `on_after` steps as single rows (the integration of `scripts.rs`).

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::*;
use crate::scripts::SCRIPTED;

const TABLE: &str = "u_scripted";

fn start(definition: &str) -> (Server, tempfile::TempDir) {
    start_with(definition, &[])
}

fn start_with(definition: &str, args: &[&str]) -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("scripted.toml"), definition).unwrap();
    let mut all = vec!["--integrations", dir.path().to_str().unwrap(), "--script-timeout-ms", "500"];
    all.extend_from_slice(args);
    let s = Server::start_with(&all);
    (s, dir)
}

/// One row of each kind: mapped by the script, ignored by it, rejected by it.
fn records(prefix: &str) -> Value {
    json!({"records": [
        {"u_id": format!("{prefix}-1"), "u_summary": "link down", "u_severity": "critical"},
        {"u_id": format!("{prefix}-2"), "u_summary": "again", "u_mode": "ignore"},
        {"u_id": format!("{prefix}-3"), "u_summary": "nope", "u_severity": "low", "u_mode": "error"},
    ]})
}

async fn post_bulk(s: &Server, query: &str, body: &Value) -> Value {
    let url = s.url(&format!("/api/now/import/{TABLE}/insertMultiple{query}"));
    let r = s.admin(s.http.post(url)).json(body).send().await.unwrap();
    assert_eq!(r.status(), 201);
    r.json().await.unwrap()
}

async fn incident_of(s: &Server, sys_id: &str) -> Value {
    let (status, body) = s.get(&format!("/api/now/table/incident/{sys_id}")).await;
    assert_eq!(status, 200, "{body}");
    body["result"].clone()
}

/// The rows of an import set once none is pending, in staging order.
async fn finished_rows(s: &Server, import_set: &str) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let (status, body) = s.get(&format!("/api/sluice/v1/import_sets/{import_set}")).await;
        assert_eq!(status, 200, "{body}");
        if body["result"]["pending"] == 0 {
            return body["result"]["rows"].as_array().unwrap().clone();
        }
        assert!(started.elapsed() < Duration::from_secs(30), "still pending: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The three kinds of row, however they were reported (`status` or `state`).
async fn assert_scripted(s: &Server, rows: &[Value], prefix: &str, state_key: &str, target_key: &str) {
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0][state_key], "inserted", "{}", rows[0]);
    let incident = incident_of(s, rows[0][target_key].as_str().unwrap()).await;
    assert_eq!(incident["short_description"], "[insert] link down", "on_before changed the field");
    assert_eq!(incident["impact"], "1");
    assert_eq!(incident["category"], "network");
    assert_eq!(rows[1][state_key], "ignored", "{}", rows[1]);
    assert_eq!(rows[1]["status_message"], format!("duplicate of {prefix}-2"), "{}", rows[1]);
    assert_eq!(rows[2][state_key], "error", "{}", rows[2]);
    assert_eq!(rows[2]["errors"][0]["code"], "script_rejected", "{}", rows[2]);
    assert_eq!(rows[2]["errors"][0]["message"], "severity low is not accepted");
}

#[tokio::test]
async fn the_bulk_worker_runs_the_scripts_on_every_row() {
    let (s, _dir) = start(SCRIPTED);
    let answer = post_bulk(&s, "", &records("b")).await;
    let rows = finished_rows(&s, answer["import_set_id"].as_str().unwrap()).await;
    assert_scripted(&s, &rows, "b", "state", "target_sys_id").await;
}

#[tokio::test]
async fn sync_mode_runs_on_before_and_on_after_like_a_single_row() {
    let (s, _dir) = start(SCRIPTED);
    let answer = post_bulk(&s, "?sysparm_sluice_sync=true", &records("s")).await;
    let rows = answer["result"].as_array().unwrap().clone();
    assert_scripted(&s, &rows, "s", "status", "sys_id").await;
    assert_eq!(rows[0]["status_message"], "mapped by on_before (insert)", "{}", rows[0]);

    // on_after changes the answer only.
    let after = json!({"records": [{"u_id": "s-9", "u_summary": "paged", "u_severity": "major", "u_mode": "after"}]});
    let answer = post_bulk(&s, "?sysparm_sluice_sync=true", &after).await;
    let row = &answer["result"][0];
    assert_eq!(row["status"], "inserted", "{row}");
    let number = row["display_value"].as_str().unwrap();
    assert!(row["status_message"].as_str().unwrap().starts_with(&format!("insert {number} with priority")), "{row}");
}

/// Before the fix every row is refused by the script; after it, a replay runs the new script on
/// the stored rows: one is mapped (its field changed), one ignored, one rejected again.
#[tokio::test]
async fn a_replay_runs_the_current_scripts_on_stored_rows() {
    let refuse_all = SCRIPTED.replacen("version = \"1\"", "version = \"0\"", 1).replacen(
        "(function runTransformScript(source, map, log, target) {",
        "(function runTransformScript(source, map, log, target) {\n    error = true; error_message = \"not yet\"; return;",
        1,
    );
    assert_ne!(refuse_all, SCRIPTED);
    let (s, dir) = start(&refuse_all);
    let answer = post_bulk(&s, "", &records("r")).await;
    let import_set = answer["import_set_id"].as_str().unwrap().to_owned();
    let rows = finished_rows(&s, &import_set).await;
    assert!(rows.iter().all(|r| r["state"] == "error" && r["errors"][0]["message"] == "not yet"), "{rows:?}");

    std::fs::write(dir.path().join("scripted.toml"), SCRIPTED).unwrap();
    let r = s.admin(s.http.post(s.url("/api/sluice/v1/integrations/reload"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = s
        .admin(s.http.post(s.url(&format!("/api/sluice/v1/integrations/{TABLE}/replay"))))
        .json(&json!({"state": "error"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let summary: Value = r.json().await.unwrap();
    let summary = &summary["result"];
    assert_eq!((summary["replayed"].as_u64(), summary["version"].as_str()), (Some(3), Some("1")), "{summary}");
    assert_eq!(
        (summary["inserted"].as_u64(), summary["ignored"].as_u64(), summary["error"].as_u64()),
        (Some(1), Some(1), Some(1)),
        "{summary}"
    );
    let rows = finished_rows(&s, &import_set).await;
    assert_scripted(&s, &rows, "r", "state", "target_sys_id").await;
}

/// The worker, woken by other requests' rows, leaves alone the rows a sync request is
/// processing itself: every row of the sync answer carries what its own on_after said.
#[tokio::test]
async fn the_worker_does_not_take_rows_from_a_sync_request() {
    // Small worker batches: woken, the worker takes its first pending rows within moments,
    // while the sync request is still judging all of its own.
    let (s, _dir) = start_with(SCRIPTED, &["--bulk-batch-rows", "5"]);
    let records: Vec<Value> = (0..300)
        .map(|n| json!({"u_id": format!("sync-{n}"), "u_summary": "paged", "u_severity": "major", "u_mode": "after"}))
        .collect();
    let body = json!({ "records": records });
    let sync = post_bulk(&s, "?sysparm_sluice_sync=true", &body);
    // Meanwhile small async loads keep waking the worker, which then reads every pending row.
    let wake = async {
        for n in 0..20 {
            post_bulk(&s, "", &json!({"records": [{"u_id": format!("async-{n}"), "u_summary": "x"}]})).await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    let (answer, ()) = tokio::join!(sync, wake);
    let rows = answer["result"].as_array().unwrap();
    assert_eq!(rows.len(), 300);
    for row in rows {
        assert_eq!(row["status"], "inserted", "{row}");
        let number = row["display_value"].as_str().unwrap_or_else(|| panic!("no number: {row}"));
        let message = row["status_message"].as_str().unwrap_or_default();
        assert!(message.starts_with(&format!("insert {number} with priority")), "on_after did not answer: {row}");
    }
}

/// A promise job that runs out of time, memory or stack (or throws unheard) fails its row in the
/// background worker too, and nothing it set before failing is written.
#[tokio::test]
async fn limits_inside_promise_jobs_fail_the_row_without_a_partial_write() {
    let (s, _dir) = start(SCRIPTED);
    let modes = ["job_throw", "job_loop", "job_alloc", "job_recurse"];
    let mut records: Vec<Value> =
        modes.iter().map(|m| json!({"u_id": format!("jobs-{m}"), "u_summary": "x", "u_mode": m})).collect();
    records.push(json!({"u_id": "jobs-fine", "u_summary": "link down", "u_severity": "major"}));
    let answer = post_bulk(&s, "", &json!({ "records": records })).await;
    let rows = finished_rows(&s, answer["import_set_id"].as_str().unwrap()).await;
    for (row, mode) in rows.iter().zip(modes) {
        assert_eq!(row["state"], "error", "{mode}: {row}");
        assert_eq!(row["errors"][0]["code"], "script_failed", "{mode}: {row}");
    }
    assert_eq!(rows[4]["state"], "inserted", "{}", rows[4]);
    let (_, body) = s
        .get("/api/now/table/incident?sysparm_query=short_descriptionLIKEpartial^ORcorrelation_idSTARTSWITHjobs-job")
        .await;
    assert_eq!(body["result"], json!([]), "no partial write");
}
