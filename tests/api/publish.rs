//! Publishing integration contracts: the payload schema, the integration plan (HTTP and CLI) and
//! the dry run.

use serde_json::{Value, json};

use crate::helpers::*;

/// A monitoring relay posting nested alerts, bound to one account and two networks.
const ALERTS: &str = r#"
name = "u_alerts"
description = "Alerts from the <ops> relay"
version = "4.2"
staging_table = "u_alerts"
target_table = "incident"
accounts = ["alerts.bot"]
networks = ["127.0.0.0/8", "10.20.0.0/16"]
protocols = ["HTTPS", "JSON"]
contact = { name = "Ops on call", email = "ops@example.com", phone = "+1 555 0100" }

[[fields]]
name = "u_host"
label = "Host"
type = "reference"
source = "/alert/host"
required = true
max_length = 64

[[fields]]
name = "u_severity"
type = "string"
source = "/alert/severity"
required = true

[[fields]]
name = "u_summary"
label = "Summary"
type = "string"
source = "/alert/labels/summary"
required = true
max_length = 20

[[fields]]
name = "u_id"
type = "string"
source = "/id"
pattern = "AL-[0-9]+"

[[fields]]
name = "u_count"
type = "integer"
source = "/alert/count"

[transform]
name = "Alerts"
coalesce = ["correlation_id"]
create_on_empty_coalesce = true

[[transform.field_map]]
source = "u_host"
target = "cmdb_ci"
reference = { match = ["name"], on_unknown = "ignore" }

[[transform.field_map]]
source = "u_severity"
target = "impact"
value_map = { critical = "1", major = "2", minor = "3" }

[[transform.field_map]]
source = "u_summary"
target = "short_description"

[[transform.field_map]]
source = "u_id"
target = "correlation_id"
"#;

/// A second integration, bound to another account.
const DESK: &str = r#"
name = "u_desk"
version = "1"
staging_table = "u_desk"
target_table = "incident"
accounts = ["desk.bot"]

[[fields]]
name = "u_summary"
type = "string"
required = true

[transform]
name = "Desk"

[[transform.field_map]]
source = "u_summary"
target = "short_description"
"#;

fn folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("alerts.toml"), ALERTS).unwrap();
    std::fs::write(dir.path().join("desk.toml"), DESK).unwrap();
    dir
}

async fn get_as(s: &Server, path: &str, user: &str, password: &str, accept: &str) -> (u16, String, String) {
    let r = s.http.get(s.url(path)).basic_auth(user, Some(password)).header("accept", accept).send().await.unwrap();
    let status = r.status().as_u16();
    let content_type = r.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    (status, content_type, r.text().await.unwrap())
}

#[tokio::test]
async fn the_schema_is_json_schema_2020_12_describing_nested_sources() {
    let dir = folder();
    let s = Server::start_with(&["--integrations", dir.path().to_str().unwrap()]);
    let bot = s.add_account("alerts.bot", &["import_set_loader"]);
    let (status, content_type, text) =
        get_as(&s, "/api/sluice/v1/integrations/u_alerts/schema.json", "alerts.bot", &bot, "*/*").await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(content_type, "application/schema+json");
    let schema: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
    assert_eq!(schema["$id"], s.url("/api/sluice/v1/integrations/u_alerts/schema.json"));
    jsonschema::meta::validate(&schema).unwrap();

    // Nested sources, required at every level, titles from labels, unknown keys allowed.
    assert_eq!(schema["type"], "object");
    assert_eq!(schema["required"], json!(["alert"]));
    assert_eq!(schema["additionalProperties"], true);
    let alert = &schema["properties"]["alert"];
    assert_eq!(alert["type"], "object");
    assert_eq!(alert["required"], json!(["host", "severity", "labels"]));
    assert_eq!(alert["properties"]["labels"]["required"], json!(["summary"]));
    let summary = &alert["properties"]["labels"]["properties"]["summary"];
    assert_eq!(summary["title"], "Summary");
    assert!(summary["description"].as_str().unwrap().contains("u_summary"), "{summary}");
    assert!(schema["properties"]["id"]["allOf"].to_string().contains("AL-[0-9]+"));

    // An ordinary JSON Schema validator (ECMA-262 patterns) reads it as sluice does.
    let validator = jsonschema::validator_for(&schema).unwrap();
    let good = json!({"id": "AL-7", "alert": {"host": "db-01", "severity": " Critical ", "count": 3,
                      "labels": {"summary": "Disk full"}}, "extra": {"kept": true}});
    assert!(validator.is_valid(&good));
    for bad in [
        json!({"alert": {"host": "db-01", "severity": "critical"}}),
        json!({"alert": {"host": "db-01", "severity": "critical", "labels": {"summary": "x".repeat(21)}}}),
        json!({"alert": {"host": "db-01", "severity": "apocalyptic", "labels": {"summary": "x"}}}),
        json!({"alert": {"host": "db-01", "severity": "minor", "labels": {"summary": "x"}, "count": "many"}}),
        json!({"id": "7", "alert": {"host": "db-01", "severity": "minor", "labels": {"summary": "x"}}}),
        json!({"alert": "db-01 is down"}),
    ] {
        assert!(!validator.is_valid(&bad), "{bad}");
    }

    // Admins read every schema; the built-in default is not active here.
    let (status, _) = s.get("/api/sluice/v1/integrations/u_desk/schema.json").await;
    assert_eq!(status, 200);
    let r = s.admin(s.http.get(s.url("/api/sluice/v1/integrations/u_incident_import/schema.json"))).send().await;
    assert_eq!(r.unwrap().status(), 404);
}

#[tokio::test]
async fn errors_carry_json_pointer_paths_and_codes_for_a_nested_payload() {
    let dir = folder();
    let s = Server::start_with(&["--integrations", dir.path().to_str().unwrap()]);
    let bot = s.add_account("alerts.bot", &["import_set_loader"]);
    let bad = json!({"id": "alert 7", "alert": {"host": {"name": "db-01"}, "severity": "apocalyptic",
                     "labels": {"summary": "  Disk full on the primary database  "}, "count": 2.5}});
    let r = s.http.post(s.url("/api/now/import/u_alerts")).basic_auth("alerts.bot", Some(&bot)).json(&bad);
    let r = r.send().await.unwrap();
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await.unwrap();
    let result = result0(&body);
    assert_eq!(result["status"], "error", "{body}");
    let errors: Vec<(&str, &str, &str)> = result["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["field"].as_str().unwrap(), e["code"].as_str().unwrap(), e["path"].as_str().unwrap()))
        .collect();
    assert_eq!(
        errors,
        [
            ("u_host", "wrong_type", "/alert/host"),
            ("u_severity", "invalid_choice", "/alert/severity"),
            ("u_summary", "field_too_long", "/alert/labels/summary"),
            ("u_id", "pattern_mismatch", "/id"),
            ("u_count", "wrong_type", "/alert/count"),
        ],
        "{body}"
    );
    for e in result["errors"].as_array().unwrap() {
        assert!(!e["message"].as_str().unwrap().is_empty(), "{e}");
    }
    // The stored row keeps them, paths included.
    let staging_sys_id = result["staging_sys_id"].as_str().unwrap();
    let (_, row) = s.get(&format!("/api/now/import/u_alerts/{staging_sys_id}")).await;
    assert_eq!(row["result"][0]["errors"], result["errors"]);

    // A missing container: each required field beneath it, at its own path.
    let r = s.http.post(s.url("/api/now/import/u_alerts")).basic_auth("alerts.bot", Some(&bot));
    let body: Value = r.json(&json!({"id": "AL-1", "alert": null})).send().await.unwrap().json().await.unwrap();
    let paths: Vec<&str> =
        result0(&body)["errors"].as_array().unwrap().iter().map(|e| e["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["/alert/host", "/alert/severity", "/alert/labels/summary"], "{body}");
    assert!(result0(&body)["errors"].as_array().unwrap().iter().all(|e| e["code"] == "field_required"));
}

#[tokio::test]
async fn the_plan_in_markdown_and_html_names_endpoint_fields_contact_and_networks() {
    let dir = folder();
    let public = "https://sluice.example.com";
    let s = Server::start_with(&["--integrations", dir.path().to_str().unwrap(), "--public-url", public]);
    let bot = s.add_account("alerts.bot", &["import_set_loader"]);
    let path = "/api/sluice/v1/integrations/u_alerts/plan";

    let (status, content_type, md) = get_as(&s, path, "alerts.bot", &bot, "*/*").await;
    assert_eq!(status, 200, "{md}");
    assert_eq!(content_type, "text/markdown; charset=utf-8");
    for expected in [
        "# Integration plan: u_alerts",
        "`POST https://sluice.example.com/api/now/import/u_alerts`",
        "`GET https://sluice.example.com/api/sluice/v1/integrations/u_alerts/schema.json`",
        "`POST https://sluice.example.com/api/sluice/v1/integrations/u_alerts/validate`",
        "Bulk:",
        "| `u_summary` | Summary | `/alert/labels/summary` | string | **yes** | at most 20 characters |",
        "| `u_id` |  | `/id` | string | no | matches `AL-[0-9]+` |",
        "Ops on call",
        "ops@example.com",
        "+1 555 0100",
        "Allowed source networks: `127.0.0.0/8`, `10.20.0.0/16`",
        "Dedicated account(s): `alerts.bot`",
        "`import_set_loader`",
        "HTTP Basic",
        "TLS: no",
        "Agreed protocols: HTTPS, JSON",
        "`critical → 1`",
        "Body size limit: 1048576 bytes",
        "Request timeout: 30 s",
        "Contract version `4.2`",
        "`unauthenticated`",
        "\"path\": \"/alert/host\"",
        "Alerts from the \\<ops\\> relay",
    ] {
        assert!(md.contains(expected), "missing {expected:?} in\n{md}");
    }

    // The CLI prints the same plan for the same settings.
    let out = sluice()
        .args(["integrations", "plan", "u_alerts", "--integrations"])
        .arg(dir.path())
        .args(["--public-url", public, "--listen", s.base.trim_start_matches("http://")])
        .env_remove("SLUICE_LISTEN")
        .env_remove("SLUICE_TLS_CERT")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), md);

    let accept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
    let (status, content_type, html) = get_as(&s, path, "alerts.bot", &bot, accept).await;
    assert_eq!(status, 200);
    assert_eq!(content_type, "text/html; charset=utf-8");
    for expected in [
        "<!DOCTYPE html>",
        "<title>Integration plan: u_alerts</title>",
        "<code>POST https://sluice.example.com/api/now/import/u_alerts</code>",
        "<td><code>u_summary</code></td><td>Summary</td><td><code>/alert/labels/summary</code></td>",
        "Ops on call",
        "<code>10.20.0.0/16</code>",
        "Alerts from the &lt;ops&gt; relay",
    ] {
        assert!(html.contains(expected), "missing {expected:?} in\n{html}");
    }
    assert!(!html.contains("<ops>"));
}

#[tokio::test]
async fn an_account_not_bound_to_an_integration_gets_404_for_its_plan_and_schema() {
    let dir = folder();
    let s = Server::start_with(&["--integrations", dir.path().to_str().unwrap()]);
    let desk = s.add_account("desk.bot", &["import_set_loader"]);
    for path in [
        "/api/sluice/v1/integrations/u_alerts/plan",
        "/api/sluice/v1/integrations/u_alerts/schema.json",
        "/api/sluice/v1/integrations/u_nothing/plan",
    ] {
        let (status, _, text) = get_as(&s, path, "desk.bot", &desk, "*/*").await;
        assert_eq!(status, 404, "{path}");
        assert_envelope(&serde_json::from_str(&text).unwrap(), "record_not_found");
    }
    let (status, _, md) = get_as(&s, "/api/sluice/v1/integrations/u_desk/plan", "desk.bot", &desk, "*/*").await;
    assert_eq!(status, 200);
    assert!(md.contains("Dedicated account(s): `desk.bot`"), "{md}");
    // Nor may it dry-run another integration (as it may not post to it).
    let r = s.http.post(s.url("/api/sluice/v1/integrations/u_alerts/validate")).basic_auth("desk.bot", Some(&desk));
    let r = r.json(&json!({"alert": {}})).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let r = s.http.get(s.url("/api/sluice/v1/integrations/u_alerts/plan")).send().await.unwrap();
    assert_eq!(r.status(), 401);
}

async fn count(s: &Server, table: &str) -> u64 {
    let r = s.admin(s.http.get(s.url(&format!("/api/now/table/{table}?sysparm_limit=1")))).send().await.unwrap();
    assert_eq!(r.status(), 200, "{table}");
    r.headers()["x-total-count"].to_str().unwrap().parse().unwrap()
}

async fn counts(s: &Server) -> [u64; 5] {
    [
        count(s, "incident").await,
        count(s, "sys_user").await,
        count(s, STAGING).await,
        count(s, "sys_import_set").await,
        count(s, "sys_audit").await,
    ]
}

async fn dry_run(s: &Server, body: Value) -> Value {
    let r = s.admin(s.http.post(s.url("/api/sluice/v1/integrations/u_incident_import/validate"))).json(&body);
    let r = r.send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.unwrap()["result"].clone()
}

#[tokio::test]
async fn a_dry_run_reports_insert_then_update_with_the_computed_priority_and_writes_nothing() {
    let s = Server::start();
    let (_, first) = s.import(json!({"u_short_description": "Earlier ticket", "u_caller": "known.user"})).await;
    assert_eq!(result0(&first)["display_value"], "INC0010001");
    let before = counts(&s).await;

    let alert = json!({
        "u_short_description": "Disk usage above 95% on db-prod-01",
        "u_correlation_id": "alertmanager:7c1e0f5a",
        "u_caller": "new.caller@example.com",
        "u_assignment_group": "Nobody",
        "u_impact": "2",
        "u_urgency": 2,
    });
    let result = dry_run(&s, alert.clone()).await;
    assert_eq!(result["status"], "would_insert", "{result}");
    assert_eq!(result["target_sys_id"], Value::Null);
    assert_eq!(result["number"], Value::Null);
    let values = &result["values"];
    assert_eq!((&values["impact"], &values["urgency"], &values["priority"]), (&json!("2"), &json!("2"), &json!("3")));
    assert_eq!(values["state"], "1");
    assert_eq!(values["short_description"], "Disk usage above 95% on db-prod-01");
    let references: Vec<(&str, &str)> = result["references"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["field"].as_str().unwrap(), r["result"].as_str().unwrap()))
        .collect();
    assert_eq!(references, [("caller_id", "would_create"), ("assignment_group", "ignored")], "{result}");
    assert!(result["status_message"].as_str().unwrap().contains("u_assignment_group"), "{result}");
    assert_eq!(counts(&s).await, before, "a dry run writes nothing");

    // Posted for real, then the same alert with a higher urgency would update it.
    let (_, posted) = s.import(alert.clone()).await;
    let posted = result0(&posted).clone();
    assert_eq!(posted["status"], "inserted");
    assert_eq!(posted["display_value"], "INC0010002", "the dry run used no number");
    let before = counts(&s).await;
    let mut escalated = alert.clone();
    escalated["u_urgency"] = json!("1");
    escalated["u_caller"] = json!("KNOWN.USER");
    let result = dry_run(&s, escalated.clone()).await;
    assert_eq!(result["status"], "would_update", "{result}");
    assert_eq!(result["target_sys_id"], posted["sys_id"]);
    assert_eq!(result["number"], "INC0010002");
    assert_eq!(result["values"]["priority"], "2", "impact 2 × urgency 1");
    assert_eq!(result["values"]["number"], "INC0010002");
    let changed: Vec<&str> =
        result["changes"].as_array().unwrap().iter().map(|c| c["field"].as_str().unwrap()).collect();
    assert!(
        changed.contains(&"priority") && changed.contains(&"urgency") && changed.contains(&"caller_id"),
        "{result}"
    );
    let caller = &result["references"][0];
    assert_eq!((caller["result"].as_str(), caller["sys_id"].is_string()), (Some("found"), true), "{result}");
    // Unchanged, it would be ignored.
    assert_eq!(dry_run(&s, alert.clone()).await["status"], "would_ignore");
    // A payload with problems: every error, with its path.
    let result = dry_run(&s, json!({"u_impact": "9", "u_description": {"text": "x"}})).await;
    assert_eq!(result["status"], "error");
    let errors: Vec<(&str, &str)> = result["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["code"].as_str().unwrap(), e["path"].as_str().unwrap()))
        .collect();
    assert_eq!(
        errors,
        [("field_required", "/u_short_description"), ("wrong_type", "/u_description"), ("invalid_choice", "/u_impact")]
    );
    assert_eq!(counts(&s).await, before, "a dry run writes nothing");

    // The next real insert still gets the next number.
    let (_, next) = s.import(json!({"u_short_description": "Another", "u_correlation_id": "other"})).await;
    assert_eq!(result0(&next)["display_value"], "INC0010003");
    let (_, updated) = s.import(escalated).await;
    assert_eq!(result0(&updated)["status"], "updated");
    assert_eq!(result0(&updated)["sys_id"], posted["sys_id"]);
}
