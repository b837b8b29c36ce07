//! The sender hook (`POST /api/sluice/v1/hooks/{integration}`): the built-in Alertmanager
//! integration from firing to resolved, generic JSON, the refusals, and pointer problems in a
//! definition. Real binary, both backends.

use serde_json::{Value, json};

use crate::helpers::*;

const HOOK: &str = "/api/sluice/v1/hooks/alertmanager";

fn alert(status: &str, fingerprint: &str, summary: &str) -> Value {
    json!({
        "status": status,
        "labels": {"alertname": "DiskFull", "instance": format!("db-{fingerprint}"), "severity": "critical"},
        "annotations": {"summary": summary, "description": "The root file system is over 95%"},
        "startsAt": "2026-12-07T10:00:00Z",
        "endsAt": if status == "resolved" { "2026-12-07T10:30:00Z" } else { "0001-01-01T00:00:00Z" },
        "generatorURL": "http://prometheus:9090/graph",
        "fingerprint": fingerprint,
    })
}

/// Alertmanager's webhook body (payload version 4) around `alerts`.
fn notification(status: &str, alerts: Vec<Value>) -> Value {
    json!({
        "version": "4",
        "groupKey": "{}:{alertname=\"DiskFull\"}",
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "sluice",
        "groupLabels": {"alertname": "DiskFull"},
        "commonLabels": {"alertname": "DiskFull"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": alerts,
    })
}

async fn post(s: &Server, path: &str, body: &Value) -> (u16, Value) {
    let r = s.admin(s.http.post(s.url(path))).json(body).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// The incidents with this correlation id.
async fn incidents(s: &Server, correlation_id: &str) -> Vec<Value> {
    let (status, body) = s
        .get(&format!(
            "/api/now/table/incident?sysparm_query=correlation_id={correlation_id}&sysparm_fields=sys_id,number,state,description,close_code,close_notes,impact,urgency,short_description,correlation_display,active"
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    body["result"].as_array().unwrap().clone()
}

#[tokio::test]
async fn an_alert_opens_one_incident_repeats_change_nothing_and_resolved_resolves_it() {
    let s = Server::start();
    let (status, body) =
        post(&s, HOOK, &notification("firing", vec![alert("firing", "f1", "Disk full on db-f1")])).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["integration"], "alertmanager");
    assert_eq!(body["format"], "alertmanager");
    assert_eq!(body["staging_table"], "u_alertmanager");
    assert_eq!(body["truncated_alerts"], 0);
    let first = &body["result"][0];
    assert_eq!(first["status"], "inserted", "{body}");
    assert!(is_sys_id(first["staging_sys_id"].as_str().unwrap()));
    let number = first["display_value"].as_str().unwrap().to_owned();
    assert!(number.starts_with("INC"), "{body}");
    let found = incidents(&s, "alertmanager:f1").await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["number"], number.as_str());
    assert_eq!(found[0]["sys_id"], first["sys_id"]);
    assert_eq!(found[0]["short_description"], "Disk full on db-f1");
    assert_eq!((found[0]["impact"].as_str(), found[0]["urgency"].as_str()), (Some("1"), Some("1")));
    assert_eq!(found[0]["correlation_display"], "DiskFull");
    assert_eq!(found[0]["state"], "1");

    // The repeat (repeat_interval, or the second peer of an HA pair): the same incident, nothing new.
    for _ in 0..2 {
        let (status, body) =
            post(&s, HOOK, &notification("firing", vec![alert("firing", "f1", "Disk full on db-f1")])).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["result"][0]["status"], "ignored", "{body}");
        assert_eq!(body["result"][0]["sys_id"], first["sys_id"], "{body}");
    }
    assert_eq!(incidents(&s, "alertmanager:f1").await.len(), 1);

    let (status, body) =
        post(&s, HOOK, &notification("resolved", vec![alert("resolved", "f1", "Disk full on db-f1")])).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"][0]["status"], "updated", "{body}");
    let found = incidents(&s, "alertmanager:f1").await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["state"], "6");
    assert_eq!(found[0]["close_code"], "Solution provided");
    assert_eq!(found[0]["close_notes"], "Resolved in Alertmanager: Disk full on db-f1");

    // The staging row keeps its alert document, with the group's context after the alert's keys.
    let staging = body["result"][0]["staging_sys_id"].as_str().unwrap();
    let (status, row) = s.get(&format!("/api/now/import/u_alertmanager/{staging}")).await;
    assert_eq!(status, 200, "{row}");
    let payload: Value = serde_json::from_str(row["payload"].as_str().unwrap()).unwrap();
    assert_eq!(payload["fingerprint"], "f1");
    assert_eq!(payload["status"], "resolved");
    assert_eq!(payload["groupStatus"], "resolved");
    assert_eq!(payload["groupKey"], "{}:{alertname=\"DiskFull\"}");
    assert_eq!(payload["receiver"], "sluice");

    // A repeated "resolved" finds nothing open and changes nothing; the alert firing again
    // afterwards opens a new incident, the resolved one stays resolved.
    let (status, body) =
        post(&s, HOOK, &notification("resolved", vec![alert("resolved", "f1", "Disk full on db-f1")])).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"][0]["status"], "ignored", "{body}");
    let (status, body) =
        post(&s, HOOK, &notification("firing", vec![alert("firing", "f1", "Disk full on db-f1")])).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"][0]["status"], "inserted", "{body}");
    assert_ne!(body["result"][0]["sys_id"], first["sys_id"], "{body}");
    let found = incidents(&s, "alertmanager:f1").await;
    let mut states: Vec<&str> = found.iter().map(|i| i["state"].as_str().unwrap()).collect();
    states.sort_unstable();
    assert_eq!(states, vec!["1", "6"], "{found:?}");
}

#[tokio::test]
async fn a_resolved_alert_without_an_open_incident_creates_nothing() {
    let s = Server::start();
    let (status, body) =
        post(&s, HOOK, &notification("resolved", vec![alert("resolved", "r0", "Never seen firing")])).await;
    assert_eq!(status, 200, "{body}");
    let row = &body["result"][0];
    assert_eq!(row["status"], "ignored", "{body}");
    assert_eq!(row["status_message"], "Resolved alert with no open incident: nothing to resolve");
    // As the Import Set API answers an ignored row: no target record, the staging row's own sys_id.
    assert_eq!(row["sys_id"], row["staging_sys_id"], "{body}");
    assert!(row.get("display_value").is_none(), "{body}");
    assert!(incidents(&s, "alertmanager:r0").await.is_empty());
}

#[tokio::test]
async fn one_notification_with_firing_and_resolved_alerts_and_truncated_ones() {
    let s = Server::start();
    let (_, body) = post(&s, HOOK, &notification("firing", vec![alert("firing", "m1", "first")])).await;
    assert_eq!(body["result"][0]["status"], "inserted", "{body}");
    let mut mixed = notification(
        "firing",
        vec![alert("resolved", "m1", "first"), alert("firing", "m2", "second"), alert("firing", "m3", "third")],
    );
    mixed["truncatedAlerts"] = json!(4);
    let (status, body) = post(&s, HOOK, &mixed).await;
    assert_eq!(status, 200, "{body}");
    let states: Vec<&str> = body["result"].as_array().unwrap().iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(states, ["updated", "inserted", "inserted"], "{body}");
    assert_eq!(body["truncated_alerts"], 4);
    assert_eq!(incidents(&s, "alertmanager:m1").await[0]["state"], "6");
    assert_eq!(incidents(&s, "alertmanager:m2").await[0]["state"], "1");
    assert_eq!(incidents(&s, "alertmanager:m3").await.len(), 1);

    let (status, stats) = s.get("/api/sluice/v1/integrations/alertmanager/stats?window=all").await;
    assert_eq!(status, 200, "{stats}");
    assert_eq!(stats["result"]["truncated_alerts"], 4, "{stats}");
    assert_eq!(stats["result"]["inserted"], 3, "{stats}");

    // A refused sender counts for the integration too.
    let r = s.http.post(s.url(HOOK)).basic_auth("admin", Some("wrong")).json(&mixed).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let (_, stats) = s.get("/api/sluice/v1/integrations/alertmanager/stats?window=all").await;
    assert_eq!(stats["result"]["unauthorized"], 1, "{stats}");
}

#[tokio::test]
async fn wrong_versions_shapes_and_contracts_are_refused_as_client_errors() {
    let s = Server::start();
    let mut v3 = notification("firing", vec![alert("firing", "v1", "x")]);
    v3["version"] = json!("3");
    let (status, body) = post(&s, HOOK, &v3).await;
    assert_eq!(status, 400, "{body}");
    assert_envelope(&body, "invalid_records");
    assert!(body["error"]["detail"].as_str().unwrap().contains("version"), "{body}");
    assert!(incidents(&s, "alertmanager:v1").await.is_empty());

    let (status, body) = post(&s, HOOK, &json!({"version": "4", "alerts": "no"})).await;
    assert_eq!(status, 400, "{body}");
    assert_envelope(&body, "invalid_records");

    // Every alert fails the contract: 400 with each problem located in the body.
    let mut bad = alert("burning", "b1", "x");
    bad.as_object_mut().unwrap().remove("fingerprint");
    let (status, body) = post(&s, HOOK, &notification("firing", vec![bad])).await;
    assert_eq!(status, 400, "{body}");
    assert_envelope(&body, "invalid_field_values");
    let paths: Vec<&str> =
        body["error"]["errors"].as_array().unwrap().iter().filter_map(|e| e["path"].as_str()).collect();
    assert!(paths.contains(&"/alerts/0/status") && paths.contains(&"/alerts/0/fingerprint"), "{body}");

    // One bad alert among good ones: the batch is taken, the bad row staged as an error.
    let mut bad = alert("firing", "b2", "x");
    bad["status"] = json!("burning");
    let (status, body) = post(&s, HOOK, &notification("firing", vec![bad, alert("firing", "b3", "fine")])).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"][0]["status"], "error", "{body}");
    assert_eq!(body["result"][1]["status"], "inserted", "{body}");

    let r = s.http.post(s.url(HOOK)).json(&notification("firing", vec![])).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let (status, body) = post(&s, "/api/sluice/v1/hooks/u_incident_import", &json!({})).await;
    assert_eq!(status, 400, "{body}");
    assert_envelope(&body, "invalid_parameter");
    let (status, body) = post(&s, "/api/sluice/v1/hooks/nothing_here", &json!({})).await;
    assert_eq!(status, 400, "{body}");
    assert_envelope(&body, "invalid_uri");
    let r = s.admin(s.http.post(s.url(HOOK))).header("content-type", "text/plain").body("{}").send().await.unwrap();
    assert_eq!(r.status(), 415);
}

pub(crate) const GENERIC: &str = r#"
name = "webhook"
version = "1"
staging_table = "u_webhook"
target_table = "incident"
format = "generic-json"

[pointers]
u_title = "/event/title"
u_key = "/event/id"
u_level = "/level"
u_details = "/details"

[[fields]]
name = "u_details"
type = "string"

[[fields]]
name = "u_title"
type = "string"
required = true

[[fields]]
name = "u_key"
type = "string"
required = true

[[fields]]
name = "u_level"
type = "choice"
choices = ["1", "2", "3"]
default = "3"

[transform]
name = "Webhook"
coalesce = ["correlation_id"]

[[transform.field_map]]
source = "u_title"
target = "short_description"

[[transform.field_map]]
source = "u_key"
target = "correlation_id"
prefix = "webhook:"

[[transform.field_map]]
source = "u_level"
target = "urgency"

[[transform.field_map]]
source = "u_details"
target = "description"
"#;

#[tokio::test]
async fn generic_json_takes_an_object_or_an_array_of_objects() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("webhook.toml"), GENERIC).unwrap();
    let s = Server::start_with(&["--integrations", dir.path().to_str().unwrap()]);
    let hook = "/api/sluice/v1/hooks/webhook";
    let first =
        json!({"event": {"title": "Queue stuck", "id": 7}, "level": 1, "details": {"queue": "mail", "depth": 1200}});
    let (status, body) = post(&s, hook, &first).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["format"], "generic-json");
    assert_eq!(body["result"][0]["status"], "inserted", "{body}");
    let one = incidents(&s, "webhook:7").await;
    assert_eq!(one.len(), 1, "a number at a pointer is staged as its text");
    assert_eq!(one[0]["short_description"], "Queue stuck");
    assert_eq!(one[0]["description"], r#"{"queue":"mail","depth":1200}"#, "an object in a text field is its JSON text");

    let (status, body) = post(&s, hook, &json!([first, {"event": {"title": "Disk", "id": "d"}}])).await;
    assert_eq!(status, 200, "{body}");
    let states: Vec<&str> = body["result"].as_array().unwrap().iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(states, ["ignored", "inserted"], "{body}");
    assert_eq!(incidents(&s, "webhook:7").await.len(), 1);
    assert_eq!(incidents(&s, "webhook:d").await.len(), 1);

    let (status, body) = post(&s, hook, &json!([{"event": {"id": 1}}, {"level": 2}])).await;
    assert_eq!(status, 400, "{body}");
    let paths: Vec<&str> =
        body["error"]["errors"].as_array().unwrap().iter().filter_map(|e| e["path"].as_str()).collect();
    assert!(paths.contains(&"/0/event/title") && paths.contains(&"/1/event/id"), "{body}");
    let (status, body) = post(&s, hook, &json!([1, 2])).await;
    assert_eq!(status, 400, "{body}");
    assert_envelope(&body, "invalid_records");
    // The built-in definitions are not active beside a folder.
    let (status, _) = post(&s, HOOK, &notification("firing", vec![alert("firing", "x", "x")])).await;
    assert_eq!(status, 400);
}

#[test]
fn a_bad_pointer_in_a_definition_is_a_load_error_naming_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("webhook.toml"), GENERIC.replace("\"/event/title\"", "\"event/title\"")).unwrap();
    let out = sluice().args(["integrations", "check"]).arg(dir.path()).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("webhook.toml: pointers.u_title: \"event/title\" does not start with /"), "{err}");

    std::fs::write(dir.path().join("webhook.toml"), GENERIC.replace("u_level = \"/level\"", "u_levle = \"/level\""))
        .unwrap();
    let out = sluice().args(["integrations", "check"]).arg(dir.path()).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("webhook.toml: pointers.u_levle: u_levle is not one of the fields"), "{err}");
}

#[tokio::test]
async fn two_peers_sending_the_same_notification_at_once_open_one_incident() {
    let s = Server::start();
    for round in 0..5 {
        let fingerprint = format!("ha{round}");
        let body = notification("firing", vec![alert("firing", &fingerprint, "HA pair")]);
        let ((a, first), (b, second)) = tokio::join!(post(&s, HOOK, &body), post(&s, HOOK, &body));
        assert_eq!((a, b), (200, 200), "{first} {second}");
        let mut states =
            [first["result"][0]["status"].as_str().unwrap(), second["result"][0]["status"].as_str().unwrap()];
        states.sort_unstable();
        assert_eq!(states, ["ignored", "inserted"], "{first} {second}");
        assert_eq!(incidents(&s, &format!("alertmanager:{fingerprint}")).await.len(), 1);
    }
}

/// The import set of a hook request keeps the request body byte for byte (white space, key
/// order, every alert), beside the rows that each hold one alert; other import sets have none.
#[tokio::test]
async fn the_import_set_keeps_the_request_body_exactly_as_received() {
    let s = Server::start();
    let pretty = serde_json::to_string_pretty(&notification(
        "firing",
        vec![alert("firing", "b1", "first"), alert("firing", "b2", "second")],
    ))
    .unwrap();
    let raw = format!("  {}\r\n", pretty.replace("\"version\"", "\"version\" "));
    let r = s
        .admin(s.http.post(s.url(HOOK)))
        .header("content-type", "application/json")
        .body(raw.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let set = body["import_set"].as_str().unwrap();
    let (status, progress) = s.get(&format!("/api/sluice/v1/import_sets/{set}")).await;
    assert_eq!(status, 200, "{progress}");
    assert_eq!(progress["result"]["request_body"], raw.as_str(), "byte for byte");
    assert_eq!(progress["result"]["total"], 2);

    // An Import Set API set has no request body of its own (each row keeps its payload).
    let (_, one) = s.import(json!({"u_short_description": "single"})).await;
    let set = one["import_set"].as_str().unwrap().to_owned();
    let (_, progress) = s.get(&format!("/api/sluice/v1/import_sets/{set}")).await;
    assert!(progress["result"].get("request_body").is_none(), "{progress}");
}

/// Both peers of an HA pair send "resolved" at once: the second commit finds the incident
/// already resolved, so its row (judged "update" by the script) is judged again and ignored,
/// never inserted as a second incident.
#[tokio::test]
async fn two_peers_resolving_at_once_leave_one_resolved_incident() {
    let s = Server::start();
    for round in 0..5 {
        let fingerprint = format!("hr{round}");
        let firing = notification("firing", vec![alert("firing", &fingerprint, "HA resolve")]);
        assert_eq!(post(&s, HOOK, &firing).await.0, 200);
        let body = notification("resolved", vec![alert("resolved", &fingerprint, "HA resolve")]);
        let ((a, first), (b, second)) = tokio::join!(post(&s, HOOK, &body), post(&s, HOOK, &body));
        assert_eq!((a, b), (200, 200), "{first} {second}");
        let mut states =
            [first["result"][0]["status"].as_str().unwrap(), second["result"][0]["status"].as_str().unwrap()];
        states.sort_unstable();
        assert_eq!(states, ["ignored", "updated"], "{first} {second}");
        let found = incidents(&s, &format!("alertmanager:{fingerprint}")).await;
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0]["state"], "6");
    }
}

#[tokio::test]
async fn an_idempotency_key_answers_a_retry_with_the_first_import_set() {
    let s = Server::start();
    let body = notification("firing", vec![alert("firing", "k1", "retried")]);
    let send = || s.admin(s.http.post(s.url(HOOK))).header("idempotency-key", "am-k1").json(&body).send();
    let first = send().await.unwrap();
    assert_eq!(first.status(), 200);
    let first: Value = first.json().await.unwrap();
    let again = send().await.unwrap();
    assert_eq!(again.status(), 200);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["import_set"], first["import_set"]);
    assert_eq!(again["result"][0]["staging_sys_id"], first["result"][0]["staging_sys_id"]);
    assert_eq!(again["result"][0]["status"], "inserted");
    assert_eq!(incidents(&s, "alertmanager:k1").await.len(), 1);
}

/// On PostgreSQL: with the database refusing connections, the hook answers 503 with Retry-After
/// (Alertmanager retries), and the retry, once the database is back, is taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_answers_503_so_the_sender_retries() {
    let Some(db) = crate::backend::Database::create() else { return };
    let admin_url = std::env::var("SLUICE_TEST_DATABASE_URL").unwrap();
    let name = db.url.rsplit('/').next().unwrap().to_owned();
    let s = Server::start_with(&["--database", &db.url, "--database-max-connections", "2"]);
    let body = notification("firing", vec![alert("firing", "o1", "outage")]);
    let (status, _) = post(&s, HOOK, &notification("firing", vec![alert("firing", "o0", "before")])).await;
    assert_eq!(status, 200);
    let refuse = [
        format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"),
        format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"),
    ];
    crate::backend::execute(&admin_url, &refuse).unwrap();
    let r = s.admin(s.http.post(s.url(HOOK))).json(&body).send().await.unwrap();
    let status = r.status().as_u16();
    let retry_after = r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
    let answer: Value = r.json().await.unwrap();
    crate::backend::execute(&admin_url, &[format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true")]).unwrap();
    assert_eq!(status, 503, "{answer}");
    assert_envelope(&answer, "store_unavailable");
    assert_eq!(retry_after.as_deref(), Some("5"));
    let mut taken = None;
    for _ in 0..50 {
        let (status, answer) = post(&s, HOOK, &body).await;
        if status == 200 {
            taken = Some(answer);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let taken = taken.expect("the retry is taken once the database is back");
    assert_eq!(taken["result"][0]["status"], "inserted", "{taken}");
    assert_eq!(incidents(&s, "alertmanager:o1").await.len(), 1);
}
