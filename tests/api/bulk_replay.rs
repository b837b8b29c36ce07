//! Replays of stored rows after a mapping fix, through the API and the command line: each
//! incident created once, progress reported, the audit trail naming the replay.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::bulk::{count, post_bulk, progress, wait_done};
use crate::helpers::*;

/// An integration whose value map lacks "critical" (version 1), and the fix (version 2).
fn alerts_definition(fixed: bool) -> String {
    let (version, map) = if fixed {
        ("2", r#"{ critical = "1", major = "2", minor = "3" }"#)
    } else {
        ("1", r#"{ major = "2", minor = "3" }"#)
    };
    format!(
        r#"
name = "u_alerts"
version = "{version}"
staging_table = "u_alerts"
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

[transform]
name = "Alerts"
coalesce = ["correlation_id"]

[[transform.field_map]]
source = "u_id"
target = "correlation_id"

[[transform.field_map]]
source = "u_summary"
target = "short_description"

[[transform.field_map]]
source = "u_severity"
target = "urgency"
value_map = {map}
"#
    )
}

fn alert_records(n: usize) -> Value {
    let severity = ["critical", "major", "minor"];
    json!({"records": (0..n).map(|i| json!({
        "u_id": format!("alert:{i}"), "u_summary": format!("Alert {i}"), "u_severity": severity[i % 3],
    })).collect::<Vec<_>>()})
}

async fn replay(s: &Server, query: &str, body: Option<Value>) -> (u16, Value) {
    let mut r = s.admin(s.http.post(s.url(&format!("/api/sluice/v1/integrations/u_alerts/replay{query}"))));
    if let Some(body) = body {
        r = r.json(&body);
    }
    let r = r.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

fn write_definition(dir: &Path, fixed: bool) {
    std::fs::write(dir.join("alerts.toml"), alerts_definition(fixed)).unwrap();
}

#[tokio::test]
async fn replay_after_a_mapping_fix_creates_each_incident_once() {
    let dir = tempfile::tempdir().unwrap();
    write_definition(dir.path(), false);
    let s = Server::start_with(&["--integrations", dir.path().to_str().unwrap()]);
    let (status, _, body) = post_bulk(&s, "/api/now", "u_alerts", "", &alert_records(30)).await;
    assert_eq!(status, 201, "{body}");
    let id = body["import_set_id"].as_str().unwrap();
    let done = wait_done(&s, id, Duration::from_secs(60)).await;
    assert_eq!((&done["inserted"], &done["error"]), (&json!(20), &json!(10)), "{done}");
    let first = progress(&s, id, "?limit=1").await;
    assert_eq!(first["rows"][0]["errors"][0]["code"], "invalid_choice");
    assert_eq!(count(&s, "/api/now/table/incident").await, 20);

    // Only admins replay; bad selections are refused.
    let loader = s.add_account("alerts.loader", &["import_set_loader"]);
    let r = s
        .http
        .post(s.url("/api/sluice/v1/integrations/u_alerts/replay"))
        .basic_auth("alerts.loader", Some(&loader))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    for (query, body) in [
        ("?state=pending", None),
        ("?state=bogus", None),
        ("?since=yesterday", None),
        ("", Some(json!({"colour": "red"}))),
    ] {
        let (status, answer) = replay(&s, query, body).await;
        assert_eq!(status, 400, "{query}: {answer}");
        assert_envelope(&answer, "invalid_parameter");
    }
    let r = s.admin(s.http.post(s.url("/api/sluice/v1/integrations/u_nothing/replay"))).send().await.unwrap();
    assert_eq!(r.status(), 404);

    // The fix, then a reload and a replay of the error rows: ten more incidents.
    write_definition(dir.path(), true);
    let r = s.admin(s.http.post(s.url("/api/sluice/v1/integrations/reload"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let (status, body) = replay(&s, "", None).await;
    assert_eq!(status, 200, "{body}");
    let result = &body["result"];
    assert_eq!((&result["state"], &result["version"]), (&json!("error"), &json!("2")));
    assert_eq!(
        (&result["matched"], &result["replayed"], &result["inserted"], &result["error"]),
        (&json!(10), &json!(10), &json!(10), &json!(0)),
        "{body}"
    );
    assert_eq!(count(&s, "/api/now/table/incident").await, 30);
    for i in 0..30 {
        assert_eq!(count(&s, &format!("/api/now/table/incident?correlation_id=alert:{i}")).await, 1, "alert:{i}");
    }
    let (_, inc) = s.get("/api/now/table/incident?correlation_id=alert:0").await;
    let inc = &inc["result"][0];
    assert_eq!(inc["urgency"], "1");
    let (_, trail) = s.get(&format!("/api/now/table/sys_audit?documentkey={}", inc["sys_id"].as_str().unwrap())).await;
    let reasons: Vec<&str> =
        trail["result"].as_array().unwrap().iter().map(|r| r["reason"].as_str().unwrap()).collect();
    assert!(!reasons.is_empty());
    assert!(
        reasons
            .iter()
            .all(|r| r.starts_with("Replay of Import Set u_alerts row ") && r.ends_with("(requested by admin)")),
        "{reasons:?}"
    );
    let done = progress(&s, id, "?limit=3").await;
    assert_eq!((&done["inserted"], &done["error"]), (&json!(30), &json!(0)));
    let versions: Vec<&str> =
        done["rows"].as_array().unwrap().iter().map(|r| r["integration_version"].as_str().unwrap()).collect();
    assert_eq!(versions, vec!["2", "1", "1"], "each row records the version that processed it");

    // Replaying again finds no error rows; replaying the inserted rows changes nothing.
    let (_, body) = replay(&s, "", Some(json!({"state": "error"}))).await;
    assert_eq!((&body["result"]["matched"], &body["result"]["replayed"]), (&json!(0), &json!(0)));
    let (_, body) = replay(&s, "?state=inserted", None).await;
    assert_eq!((&body["result"]["replayed"], &body["result"]["ignored"]), (&json!(30), &json!(30)), "{body}");
    assert_eq!(count(&s, "/api/now/table/incident").await, 30);
    let (_, body) = replay(&s, "?state=ignored&since=2999-01-01T00:00:00Z", None).await;
    assert_eq!(body["result"]["matched"], 0);
}

#[tokio::test]
async fn the_replay_command_fixes_error_rows_and_reports_progress() {
    let dir = tempfile::tempdir().unwrap();
    write_definition(dir.path(), false);
    let integrations = dir.path().to_str().unwrap().to_owned();
    let mut s = Server::start_with(&["--integrations", &integrations]);
    let (status, _, body) = post_bulk(&s, "/api/now", "u_alerts", "", &alert_records(9)).await;
    assert_eq!(status, 201);
    let id = body["import_set_id"].as_str().unwrap().to_owned();
    assert_eq!(wait_done(&s, &id, Duration::from_secs(60)).await["error"], 3);
    assert!(s.terminate().success());
    let tmp = s.take_tmp();
    let data = s.data.clone();
    drop(s);

    write_definition(dir.path(), true);
    let run = |args: &[&str]| {
        let out = crate::backend::cli_on(&data)
            .arg("replay")
            .args(args)
            .arg("--data")
            .arg(&data)
            .args(["--integrations", &integrations])
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, stdout, stderr) = run(&["--integration", "u_alerts"]);
    assert!(ok, "{stdout}\n{stderr}");
    assert!(stderr.contains("replayed 3/3 error rows: 3 inserted"), "{stderr}");
    assert!(stdout.contains("u_alerts: replayed 3 of 3 error rows with version 2"), "{stdout}");
    assert!(stdout.contains("inserted 3"), "{stdout}");
    let (ok, stdout, _) = run(&["--integration", "u_alerts", "--state", "error"]);
    assert!(ok);
    assert!(stdout.contains("replayed 0 of 0 error rows"), "{stdout}");
    let (ok, _, stderr) = run(&["--integration", "u_alerts", "--state", "pending"]);
    assert!(!ok);
    assert!(stderr.contains("pending rows are processed by the bulk worker"), "{stderr}");
    let (ok, _, stderr) = run(&["--integration", "u_nothing"]);
    assert!(!ok);
    assert!(stderr.contains("no integration named u_nothing"), "{stderr}");

    let s = Server::start_on(&data, &["--integrations", &integrations]);
    assert_eq!(count(&s, "/api/now/table/incident").await, 9);
    let done = progress(&s, &id, "?limit=1").await;
    assert_eq!((&done["inserted"], &done["error"]), (&json!(9), &json!(0)));
    let row = &done["rows"][0];
    assert_eq!(row["integration_version"], "2");
    let (_, trail) =
        s.get(&format!("/api/now/table/sys_audit?documentkey={}", row["target_sys_id"].as_str().unwrap())).await;
    let reason = trail["result"][0]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("Replay of Import Set u_alerts row ") && reason.contains("requested by sluice replay"),
        "{reason}"
    );
    drop(tmp);
}
