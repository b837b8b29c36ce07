//! Integration definitions from a folder, and the offline check.

use serde_json::json;

use crate::helpers::*;

const PARTNER: &str = r#"
name = "u_partner_desk"
description = "Partner help desk"
version = "2024.1"
staging_table = "u_partner_desk"
target_table = "incident"

[[fields]]
name = "u_ticket"
type = "string"
required = true
max_length = 40

[[fields]]
name = "u_summary"
type = "string"
required = true
max_length = 160

[[fields]]
name = "u_severity"
type = "choice"
choices = ["1", "2", "3"]
default = "3"

[transform]
name = "Partner Desk"
coalesce = ["correlation_id"]

[[transform.field_map]]
source = "u_ticket"
target = "correlation_id"

[[transform.field_map]]
source = "u_summary"
target = "short_description"

[[transform.field_map]]
source = "u_severity"
target = "impact"
"#;

#[tokio::test]
async fn a_folder_of_definitions_replaces_the_default() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("partner.toml"), PARTNER).unwrap();
    let s = Server::start_with(&["--integrations", dir.path().to_str().unwrap()]);
    let r = s
        .admin(s.http.post(s.url("/api/now/import/u_partner_desk")))
        .json(&json!({"u_ticket": "P-1", "u_summary": "Printer on fire", "u_severity": "1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(result0(&body)["transform_map"], "Partner Desk");
    assert_eq!(result0(&body)["status"], "inserted");
    let sys_id = result0(&body)["sys_id"].as_str().unwrap();
    let (_, inc) = s.get(&format!("/api/now/table/incident/{sys_id}")).await;
    assert_eq!(inc["result"]["impact"], "1");
    assert_eq!(inc["result"]["correlation_id"], "P-1");
    let (_, row) =
        s.get(&format!("/api/now/import/u_partner_desk/{}", result0(&body)["staging_sys_id"].as_str().unwrap())).await;
    assert_eq!(row["row"]["sys_integration_version"], "2024.1");

    // The default integration is not active when a folder is given.
    let r = s
        .admin(s.http.post(s.url(&format!("/api/now/import/{STAGING}"))))
        .json(&json!({"u_short_description": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "the default integration is gone: Invalid table");
    // A default fills a missing field.
    let r = s
        .admin(s.http.post(s.url("/api/now/import/u_partner_desk")))
        .json(&json!({"u_ticket": "P-2", "u_summary": "Toner low"}))
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = r.json().await.unwrap();
    let (_, inc) = s.get(&format!("/api/now/table/incident/{}", result0(&body)["sys_id"].as_str().unwrap())).await;
    assert_eq!(inc["result"]["impact"], "3");
}

#[test]
fn check_reports_every_problem_with_file_and_key_and_the_server_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("good.toml"), PARTNER).unwrap();
    let bad = PARTNER
        .replace("name = \"u_partner_desk\"", "name = \"u_other\"")
        .replace("staging_table = \"u_partner_desk\"", "staging_table = \"u_other\"")
        .replace("target = \"impact\"", "target = \"impakt\"")
        .replace("max_length = 40", "max_lenght = 40");
    std::fs::write(dir.path().join("bad.toml"), bad).unwrap();
    let out = sluice().args(["integrations", "check"]).arg(dir.path()).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml") && err.contains("max_lenght"), "{err}");

    std::fs::write(
        dir.path().join("bad.toml"),
        PARTNER.replace("u_partner_desk", "u_other").replace("target = \"impact\"", "target = \"impakt\""),
    )
    .unwrap();
    let out = sluice().args(["integrations", "check"]).arg(dir.path()).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("bad.toml: transform.field_map[2] (u_severity -> impakt): incident has no field impakt"),
        "{err}"
    );

    let tmp = tempfile::tempdir().unwrap();
    let out = sluice()
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(tmp.path())
        .arg("--integrations")
        .arg(dir.path())
        .env("SLUICE_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("impakt"));

    std::fs::remove_file(dir.path().join("bad.toml")).unwrap();
    let out = sluice().args(["integrations", "check"]).arg(dir.path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok "));
}

#[tokio::test]
async fn the_documented_examples_load_and_behave_as_documented() {
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/examples");
    let out = sluice().args(["integrations", "check", examples]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let s = Server::start_with(&["--integrations", examples]);

    let alert = json!({"u_fingerprint": "7c1e0f5a", "u_summary": "Disk full on db-01", "u_severity": 1, "u_host": "db-01", "u_team": "DBA"});
    let post = |table: &str, body: serde_json::Value| {
        s.admin(s.http.post(s.url(&format!("/api/now/import/{table}")))).json(&body).send()
    };
    let first: serde_json::Value = post("u_alertmanager", alert.clone()).await.unwrap().json().await.unwrap();
    let again: serde_json::Value = post("u_alertmanager", alert).await.unwrap().json().await.unwrap();
    assert_eq!(result0(&first)["status"], "inserted", "{first}");
    assert_eq!(result0(&again)["status"], "ignored", "{again}");
    let note = result0(&first)["status_message"].as_str().unwrap();
    assert!(note.contains("u_host") && note.contains("u_team"), "{note}");

    // The partner desk rejects callers it does not know.
    let body = json!({"u_ticket": "PD-1", "u_summary": "VPN down", "u_requester_email": "nobody@example.com"});
    let rejected: serde_json::Value = post("u_partner_desk", body).await.unwrap().json().await.unwrap();
    let r = result0(&rejected);
    assert_eq!(r["status"], "error", "{rejected}");
    assert_eq!(r["errors"][0]["code"], "unknown_reference");
    assert_eq!(r["errors"][0]["field"], "u_requester_email");
    let (_, staged) = s.get(&format!("/api/now/import/u_partner_desk/{}", r["staging_sys_id"].as_str().unwrap())).await;
    assert_eq!(staged["row"]["sys_import_state"], "error");
    let r = s.admin(s.http.get(s.url("/api/now/table/incident?correlation_id=PD-1"))).send().await.unwrap();
    assert_eq!(r.headers()["x-total-count"], "0");
}

const NESTED: &str = r#"
name = "u_nested_alerts"
version = "1"
staging_table = "u_nested_alerts"
target_table = "incident"
accounts = ["alerts.bot"]
protocols = ["HTTPS", "JSON"]
contact = { name = "Ops on call", email = "ops@example.com", phone = "+1 555 0100" }

[[fields]]
name = "u_host"
type = "reference"
source = "/alert/host"
required = true

[[fields]]
name = "u_severity"
type = "string"
source = "/alert/severity"
required = true

[[fields]]
name = "u_summary"
type = "string"
source = "/alert/labels/summary"
required = true
max_length = 160

[[fields]]
name = "u_id"
type = "string"
source = "/id"
pattern = "AL-[0-9]+"

[transform]
name = "Nested alerts"
coalesce = ["correlation_id"]
create_on_empty_coalesce = true
constants = { contact_type = "monitoring", category = "hardware" }

[[transform.field_map]]
source = "u_host"
target = "cmdb_ci"
reference = { match = ["name"], on_unknown = "create" }

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

#[tokio::test]
async fn nested_payloads_map_through_json_pointers_value_maps_and_constants() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("nested.toml"), NESTED).unwrap();
    let s = Server::start_with(&["--integrations", dir.path().to_str().unwrap()]);
    let bot = s.add_account("alerts.bot", &["import_set_loader"]);
    let other = s.add_account("other.bot", &["import_set_loader"]);
    let url = s.url("/api/now/import/u_nested_alerts");
    let alert =
        json!({"id": "AL-7", "alert": {"host": "db-01", "severity": "Critical", "labels": {"summary": "Disk full"}}});

    let r = s.http.post(&url).basic_auth("alerts.bot", Some(&bot)).json(&alert).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(result0(&body)["status"], "inserted", "{body}");
    let (_, inc) = s
        .get(&format!(
            "/api/now/table/incident/{}?sysparm_display_value=all",
            result0(&body)["sys_id"].as_str().unwrap()
        ))
        .await;
    let inc = &inc["result"];
    assert_eq!(inc["short_description"]["value"], "Disk full");
    assert_eq!(inc["impact"]["value"], "1");
    assert_eq!(inc["priority"]["value"], "3", "impact 1 × default urgency 3");
    assert_eq!(inc["cmdb_ci"]["display_value"], "db-01");
    assert_eq!(inc["contact_type"]["value"], "monitoring");
    assert_eq!(inc["category"]["value"], "hardware");
    assert_eq!(inc["correlation_id"]["value"], "AL-7");

    // Another account is not bound to this integration.
    let r = s.http.post(&url).basic_auth("other.bot", Some(&other)).json(&alert).send().await.unwrap();
    assert_eq!(r.status(), 403);

    // A severity outside the value map, a missing nested field and a malformed id: every error.
    let bad = json!({"id": "7", "alert": {"host": "db-01", "severity": "apocalyptic"}});
    let r = s.http.post(&url).basic_auth("alerts.bot", Some(&bot)).json(&bad).send().await.unwrap();
    let body: serde_json::Value = r.json().await.unwrap();
    let codes: Vec<(&str, &str)> = result0(&body)["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["field"].as_str().unwrap(), e["code"].as_str().unwrap()))
        .collect();
    // The value map is part of the published contract: its miss is reported with the rest.
    assert_eq!(
        codes,
        [("u_severity", "invalid_choice"), ("u_summary", "field_required"), ("u_id", "pattern_mismatch")],
        "{body}"
    );
    let bad = json!({"alert": {"host": "db-01", "severity": "apocalyptic", "labels": {"summary": "x"}}});
    let r = s.http.post(&url).basic_auth("alerts.bot", Some(&bot)).json(&bad).send().await.unwrap();
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(result0(&body)["errors"][0]["code"], "invalid_choice", "{body}");
    assert_eq!(result0(&body)["errors"][0]["field"], "u_severity");
}

#[tokio::test]
async fn source_networks_are_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let fenced = PARTNER.replace(
        "target_table = \"incident\"",
        "target_table = \"incident\"\nnetworks = [\"10.0.0.0/8\", \"2001:db8::/32\"]",
    );
    std::fs::write(dir.path().join("partner.toml"), fenced).unwrap();
    let s = Server::start_with(&["--integrations", dir.path().to_str().unwrap()]);
    let r = s
        .admin(s.http.post(s.url("/api/now/import/u_partner_desk")))
        .json(&json!({"u_ticket": "P-1", "u_summary": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_envelope(&body, "source_not_allowed");
}

#[tokio::test]
async fn reload_refuses_a_definition_with_five_mistakes_and_keeps_the_old_one_serving() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("partner.toml");
    std::fs::write(&file, PARTNER).unwrap();
    let s = Server::start_with(&["--integrations", dir.path().to_str().unwrap()]);
    let reload = || s.admin(s.http.post(s.url("/api/sluice/v1/integrations/reload"))).send();

    let broken = PARTNER
        .replace("target_table = \"incident\"", "target_table = \"incident\"\nnetworks = [\"10.0.0.0/99\"]")
        .replace("target = \"impact\"", "target = \"impakt\"")
        .replace(
            "name = \"u_summary\"\ntype = \"string\"",
            "name = \"u_summary\"\ntype = \"string\"\npattern = \"([a-z\"",
        )
        .replace("type = \"choice\"\nchoices = [\"1\", \"2\", \"3\"]", "type = \"choice\"")
        .replace("coalesce = [\"correlation_id\"]", "coalesce = [\"correlation_id\", \"caller_id\"]");
    std::fs::write(&file, broken).unwrap();
    let r = reload().await.unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_envelope(&body, "invalid_definition");
    let problems: Vec<String> = body["error"]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| format!("{}: {}", p["key"].as_str().unwrap(), p["message"].as_str().unwrap()))
        .collect();
    assert_eq!(problems.len(), 5, "{problems:#?}");
    for expected in [
        "networks[0]",
        "pattern does not compile",
        "a choice field needs choices",
        "incident has no field impakt",
        "transform.coalesce[1]",
    ] {
        assert!(problems.iter().any(|p| p.contains(expected)), "{expected} missing from {problems:#?}");
    }
    // The previous version keeps serving.
    let r = s
        .admin(s.http.post(s.url("/api/now/import/u_partner_desk")))
        .json(&json!({"u_ticket": "P-9", "u_summary": "still on v1"}))
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(result0(&body)["status"], "inserted");

    // Fixed and reloaded by SIGHUP: the new version processes the next row.
    std::fs::write(&file, PARTNER.replace("version = \"2024.1\"", "version = \"2024.2\"")).unwrap();
    std::process::Command::new("kill").args(["-HUP", &s.pid().to_string()]).status().unwrap();
    let mut version = String::new();
    for _ in 0..50 {
        let (_, info) = s.get("/api/sluice/v1/integrations/u_partner_desk").await;
        version = info["result"]["version"].as_str().unwrap_or_default().to_owned();
        if version == "2024.2" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(version, "2024.2");
    let r = s
        .admin(s.http.post(s.url("/api/now/import/u_partner_desk")))
        .json(&json!({"u_ticket": "P-10", "u_summary": "on v2"}))
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = r.json().await.unwrap();
    let (_, row) =
        s.get(&format!("/api/now/import/u_partner_desk/{}", result0(&body)["staging_sys_id"].as_str().unwrap())).await;
    assert_eq!(row["row"]["sys_integration_version"], "2024.2");

    // Only admins reload.
    let pw = s.add_account("loader", &["import_set_loader"]);
    let r =
        s.http.post(s.url("/api/sluice/v1/integrations/reload")).basic_auth("loader", Some(&pw)).send().await.unwrap();
    assert_eq!(r.status(), 403);
}
