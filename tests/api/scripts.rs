//! Transform scripts (`[scripts]` on_before / on_after): what they can do to a row, and that no
//! script can hurt the server: each failure ends the row as an error and the next request is
//! served normally.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::*;

pub(crate) const SCRIPTED: &str = r#"
name = "u_scripted"
description = "Alerts shaped by transform scripts"
version = "1"
staging_table = "u_scripted"
target_table = "incident"

[[fields]]
name = "u_id"
type = "string"
required = true

[[fields]]
name = "u_summary"
type = "string"
required = true

[[fields]]
name = "u_severity"
type = "string"

[[fields]]
name = "u_owner"
type = "string"

[[fields]]
name = "u_mode"
type = "string"

[transform]
name = "Scripted alerts"
coalesce = ["correlation_id"]

[[transform.field_map]]
source = "u_id"
target = "correlation_id"

[[transform.field_map]]
source = "u_summary"
target = "short_description"

[scripts]
on_before = """
(function runTransformScript(source, map, log, target) {
    switch (source.u_mode) {
        case "ignore":
            ignore = true;
            status_message = "duplicate of " + source.u_id;
            return;
        case "error":
            error = true;
            error_message = "severity " + source.u_severity + " is not accepted";
            return;
        case "throw":
            throw new Error("cannot map " + source.u_id);
        case "loop":
            while (true) {}
        case "alloc":
            var parts = [];
            for (;;) { parts.push(new Array(100000).fill(source.u_id)); }
        case "recurse":
            (function deeper() { return deeper() + 1; })();
            return;
        // The same failures inside promise jobs, after a first change to the target.
        case "job_throw":
            (async function () { target.short_description = "partial"; await null; throw new Error("late for " + source.u_id); })();
            return;
        case "job_loop":
            Promise.resolve().then(function () { target.short_description = "partial"; while (true) {} });
            return;
        case "job_alloc":
            Promise.resolve().then(function () {
                target.short_description = "partial";
                var parts = [];
                for (;;) { parts.push(new Array(100000).fill(source.u_id)); }
            });
            return;
        case "job_recurse":
            Promise.resolve().then(function () { target.short_description = "partial"; (function deeper() { return deeper() + 1; })(); });
            return;
        case "bad_value":
            target.impact = "9";
            return;
    }
    var severity = (source.u_severity || "").toLowerCase();
    target.impact = severity === "critical" ? "1" : severity === "major" ? "2" : "3";
    target.urgency = severity === "critical" ? 1 : 2;
    target.short_description = "[" + action + "] " + source.u_summary;
    target.category = "network";
    if (source.u_owner) target.assignment_group = source.u_owner;
    target.no_such_field = "is ignored";
    log.info("mapped", source.u_id, "as", severity);
    status_message = "mapped by on_before (" + action + ")";
})(source, map, log, target);
"""
on_after = """
if (source.u_mode === "after") {
    status_message = action + " " + target.number + " with priority " + target.priority;
} else if (source.u_mode === "after_error") {
    error = true;
    error_message = "could not page anyone about " + target.number;
} else if (source.u_mode === "after_throw") {
    null.boom;
}
"""
"#;

fn start() -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("scripted.toml"), SCRIPTED).unwrap();
    let s = Server::start_with(&[
        "--integrations",
        dir.path().to_str().unwrap(),
        "--script-timeout-ms",
        "100",
        "--script-memory-mb",
        "16",
    ]);
    (s, dir)
}

async fn post(s: &Server, body: Value) -> Value {
    let r = s.admin(s.http.post(s.url("/api/now/import/u_scripted"))).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await.unwrap();
    result0(&body).clone()
}

async fn incident(s: &Server, result: &Value) -> Value {
    let (status, body) = s.get(&format!("/api/now/table/incident/{}", result["sys_id"].as_str().unwrap())).await;
    assert_eq!(status, 200, "{body}");
    body["result"].clone()
}

async fn incidents_with(s: &Server, correlation_id: &str) -> String {
    let r = s
        .admin(s.http.get(s.url(&format!("/api/now/table/incident?correlation_id={correlation_id}"))))
        .send()
        .await
        .unwrap();
    r.headers()["x-total-count"].to_str().unwrap().to_owned()
}

/// A plain row goes through as usual.
async fn served_normally(s: &Server, id: &str) {
    let r = post(s, json!({"u_id": id, "u_summary": "still fine", "u_severity": "minor"})).await;
    assert_eq!(r["status"], "inserted", "{r}");
    assert_eq!(incident(s, &r).await["short_description"], "[insert] still fine");
}

#[tokio::test]
async fn on_before_maps_fields_and_sets_priority_relevant_values() {
    let (s, _dir) = start();
    let r = post(&s, json!({"u_id": "A-1", "u_summary": "Link down", "u_severity": "Critical"})).await;
    assert_eq!(r["status"], "inserted", "{r}");
    assert_eq!(r["status_message"], "mapped by on_before (insert)");
    let inc = incident(&s, &r).await;
    assert_eq!(inc["short_description"], "[insert] Link down");
    assert_eq!((&inc["impact"], &inc["urgency"], &inc["priority"]), (&json!("1"), &json!("1"), &json!("1")));
    assert_eq!(inc["category"], "network");
    assert_eq!(inc["correlation_id"], "A-1");
    // Script log lines reach the server log.
    s.wait_for_log("mapped A-1 as critical");

    // The same alert again: the coalesce finds the incident, so the script sees "update".
    let again = post(&s, json!({"u_id": "A-1", "u_summary": "Link down", "u_severity": "major"})).await;
    assert_eq!(again["status"], "updated", "{again}");
    assert_eq!(again["sys_id"], r["sys_id"]);
    assert_eq!(again["status_message"], "mapped by on_before (update)");
    let inc = incident(&s, &again).await;
    assert_eq!(inc["short_description"], "[update] Link down");
    assert_eq!((&inc["impact"], &inc["urgency"], &inc["priority"]), (&json!("2"), &json!("2"), &json!("3")));

    // A reference the script sets is looked up (and left empty, with a note, when unknown).
    let r = post(&s, json!({"u_id": "A-2", "u_summary": "x", "u_owner": "Nobody Team"})).await;
    assert_eq!(r["status"], "inserted", "{r}");
    let note = r["status_message"].as_str().unwrap();
    assert!(note.starts_with("mapped by on_before") && note.contains("assignment_group left empty"), "{note}");

    // A value the target does not accept fails the row like a Table API write would.
    let r = post(&s, json!({"u_id": "A-3", "u_summary": "x", "u_mode": "bad_value"})).await;
    assert_eq!(r["status"], "error", "{r}");
    assert_eq!(r["errors"][0]["code"], "invalid_choice");
    assert_eq!(r["errors"][0]["field"], "impact");
    assert_eq!(incidents_with(&s, "A-3").await, "0");
}

#[tokio::test]
async fn ignore_and_error_flags() {
    let (s, _dir) = start();
    let r = post(&s, json!({"u_id": "B-1", "u_summary": "flapping", "u_mode": "ignore"})).await;
    assert_eq!(r["status"], "ignored", "{r}");
    assert_eq!(r["status_message"], "duplicate of B-1");
    assert_eq!(incidents_with(&s, "B-1").await, "0");
    let (_, row) = s.get(&format!("/api/now/import/u_scripted/{}", r["staging_sys_id"].as_str().unwrap())).await;
    assert_eq!(row["row"]["sys_import_state"], "ignored");
    assert_eq!(row["row"]["sys_import_state_comment"], "duplicate of B-1");

    let r = post(&s, json!({"u_id": "B-2", "u_summary": "noise", "u_severity": "minor", "u_mode": "error"})).await;
    assert_eq!(r["status"], "error", "{r}");
    assert_eq!(r["error_message"], "severity minor is not accepted");
    assert_eq!(r["errors"][0]["code"], "script_rejected");
    assert_eq!(r["errors"][0]["field"], "scripts.on_before");
    assert_eq!(incidents_with(&s, "B-2").await, "0");
    let (_, row) = s.get(&format!("/api/now/import/u_scripted/{}", r["staging_sys_id"].as_str().unwrap())).await;
    assert_eq!(row["row"]["sys_import_state"], "error");
    assert_eq!(row["row"]["sys_row_error"], "severity minor is not accepted");
    served_normally(&s, "B-3").await;
}

#[tokio::test]
async fn failing_scripts_end_the_row_as_an_error_and_the_server_carries_on() {
    let (s, _dir) = start();
    for (mode, cause) in [
        ("throw", "Error: cannot map C-throw"),
        ("loop", "ran longer than its time limit"),
        ("alloc", "used more memory than its limit"),
        ("recurse", "nested calls too deeply"),
        ("job_throw", "Error: late for C-job_throw"),
        ("job_loop", "ran longer than its time limit"),
        ("job_alloc", "used more memory than its limit"),
        ("job_recurse", "nested calls too deeply"),
    ] {
        let id = format!("C-{mode}");
        let started = Instant::now();
        let r = post(&s, json!({"u_id": id, "u_summary": "x", "u_mode": mode})).await;
        let took = started.elapsed();
        assert_eq!(r["status"], "error", "{mode}: {r}");
        assert_eq!(r["errors"][0]["code"], "script_failed", "{mode}: {r}");
        let message = r["error_message"].as_str().unwrap();
        assert!(message.starts_with("on_before script: ") && message.contains(cause), "{mode}: {message}");
        assert!(took < Duration::from_secs(5), "{mode} took {took:?}");
        assert_eq!(incidents_with(&s, &id).await, "0");
        let (_, row) = s.get(&format!("/api/now/import/u_scripted/{}", r["staging_sys_id"].as_str().unwrap())).await;
        assert_eq!(row["row"]["sys_import_state"], "error", "{mode}: the row is stored");
        served_normally(&s, &format!("after-{mode}")).await;
    }
    let r = s.http.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn on_after_changes_the_answer_but_the_record_stays() {
    let (s, _dir) = start();
    let r = post(&s, json!({"u_id": "D-1", "u_summary": "x", "u_severity": "critical", "u_mode": "after"})).await;
    assert_eq!(r["status"], "inserted", "{r}");
    let inc = incident(&s, &r).await;
    let number = inc["number"].as_str().unwrap();
    assert_eq!(r["status_message"], format!("insert {number} with priority 1"));

    let r = post(&s, json!({"u_id": "D-2", "u_summary": "x", "u_mode": "after_error"})).await;
    assert_eq!(r["status"], "error", "{r}");
    assert_eq!(r["errors"][0]["code"], "script_rejected");
    assert_eq!(r["errors"][0]["field"], "scripts.on_after");
    let inc = incident(&s, &r).await;
    assert_eq!(r["error_message"], format!("could not page anyone about {}", inc["number"].as_str().unwrap()));
    assert_eq!(r["display_value"], inc["number"], "the answer still names the committed record");

    let r = post(&s, json!({"u_id": "D-3", "u_summary": "x", "u_mode": "after_throw"})).await;
    assert_eq!(r["status"], "error", "{r}");
    assert_eq!(r["errors"][0]["code"], "script_failed");
    assert!(r["error_message"].as_str().unwrap().starts_with("on_after script: the script threw"), "{r}");
    assert_eq!(incidents_with(&s, "D-3").await, "1");
    served_normally(&s, "D-4").await;
}

#[tokio::test]
async fn scripts_that_do_not_compile_are_refused_with_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("scripted.toml"), SCRIPTED).unwrap();
    let out = sluice().args(["integrations", "check"]).arg(dir.path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let broken = SCRIPTED
        .replace("null.boom;\n}", "null.boom;\n")
        .replace("target.urgency = severity", "target.urgency = = severity");
    std::fs::write(dir.path().join("scripted.toml"), broken).unwrap();
    let out = sluice().args(["integrations", "check"]).arg(dir.path()).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let file = dir.path().join("scripted.toml").display().to_string();
    assert!(err.contains(&format!("{file}: scripts.on_before: the script does not compile: SyntaxError")), "{err}");
    assert!(err.contains(&format!("{file}: scripts.on_after: the script does not compile")), "{err}");
    assert!(err.contains("2 problem(s)"), "{err}");

    // A running server refuses to reload it, and keeps the version it has.
    std::fs::write(dir.path().join("scripted.toml"), SCRIPTED).unwrap();
    let s = Server::start_with(&["--integrations", dir.path().to_str().unwrap()]);
    std::fs::write(dir.path().join("scripted.toml"), SCRIPTED.replace("while (true) {}", "while (true {}")).unwrap();
    let r = s.admin(s.http.post(s.url("/api/sluice/v1/integrations/reload"))).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_envelope(&body, "invalid_definition");
    assert_eq!(body["error"]["errors"][0]["key"], "scripts.on_before", "{body}");
    served_normally(&s, "E-1").await;
}

/// The `[scripts]` example of docs/integrations.md compiles and does what the text says.
#[tokio::test]
async fn the_documented_example_behaves_as_documented() {
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/integrations.md")).unwrap();
    let start = docs.find("```toml\n[scripts]\n").expect("the docs have a [scripts] example") + "```toml\n".len();
    let example = &docs[start..start + docs[start..].find("```").unwrap()];
    let definition = format!(
        r#"
name = "u_alerts"
version = "1"
staging_table = "u_alerts"
target_table = "incident"

[[fields]]
name = "u_fingerprint"
type = "string"
required = true

[[fields]]
name = "u_summary"
type = "string"
required = true

[[fields]]
name = "u_host"
type = "string"

[[fields]]
name = "u_severity"
type = "string"

[[fields]]
name = "u_state"
type = "string"

[transform]
name = "Alerts"
coalesce = ["correlation_id"]

[[transform.field_map]]
source = "u_fingerprint"
target = "correlation_id"

[[transform.field_map]]
source = "u_summary"
target = "short_description"

{example}"#
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("alerts.toml"), definition).unwrap();
    let out = sluice().args(["integrations", "check"]).arg(dir.path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let s = Server::start_with(&["--integrations", dir.path().to_str().unwrap()]);
    let s = &s;
    let post = |body: Value| async move {
        let r = s.admin(s.http.post(s.url("/api/now/import/u_alerts"))).json(&body).send().await.unwrap();
        let body: Value = r.json().await.unwrap();
        result0(&body).clone()
    };

    let r = post(json!({"u_fingerprint": "f1", "u_summary": "Disk full", "u_state": "resolved"})).await;
    assert_eq!(
        (&r["status"], &r["status_message"]),
        (&json!("ignored"), &json!("resolved alerts do not open incidents"))
    );
    let r = post(json!({"u_fingerprint": "f2", "u_summary": "Disk full"})).await;
    assert_eq!(r["status"], "error", "{r}");
    assert_eq!(r["error_message"], "u_host is required for production alerts");
    let r = post(json!({"u_fingerprint": "f3", "u_summary": "Disk full", "u_host": "db-01", "u_severity": "Critical"}))
        .await;
    assert_eq!(r["status"], "inserted", "{r}");
    let inc = incident(s, &r).await;
    assert_eq!(inc["short_description"], "db-01: Disk full");
    assert_eq!((&inc["impact"], &inc["urgency"], &inc["priority"]), (&json!("1"), &json!("2"), &json!("2")));
    assert_eq!(r["status_message"], format!("insert {} (priority 2)", inc["number"].as_str().unwrap()));
    s.wait_for_log("alert f3 mapped as critical (insert)");
}
