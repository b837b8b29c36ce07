//! PagerDuty Events API v2 (`POST /v2/enqueue`): routing keys from the token API, the built-in
//! `pagerduty` integration from trigger to resolve, PagerDuty's answers, refused keys and their
//! lockout. Real binary, both backends.

use serde_json::{Value, json};

use crate::helpers::*;

const ENQUEUE: &str = "/v2/enqueue";

/// A routing key of `account` (created with the import_set_loader role) for `integration`.
async fn routing_key(s: &Server, account: &str, integration: &str) -> (u16, Value) {
    let r = s
        .admin(s.http.post(s.url(&format!("/api/sluice/v1/accounts/{account}/tokens"))))
        .json(&json!({"label": "zabbix", "integration": integration}))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn new_key(s: &Server) -> String {
    s.add_account("pd.sender", &["import_set_loader"]);
    let (status, body) = routing_key(s, "pd.sender", "pagerduty").await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["result"]["integration"], "pagerduty");
    body["result"]["token"].as_str().unwrap().to_owned()
}

/// Posts an event with no credentials but its routing key; status, request id and body.
async fn send(s: &Server, path: &str, event: &Value) -> (u16, String, Value) {
    let r = s.http.post(s.url(path)).json(event).send().await.unwrap();
    let id = r.headers().get("x-request-id").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    (r.status().as_u16(), id, r.json().await.unwrap())
}

fn trigger(key: &str, dedup_key: &str, severity: &str) -> Value {
    json!({
        "routing_key": key, "event_action": "trigger", "dedup_key": dedup_key,
        "payload": {"summary": "HTTP down on srv01", "source": "srv01.example.com", "severity": severity,
                    "component": "nginx", "custom_details": {"ping": "timeout"}},
        "client": "Zabbix", "client_url": "https://zabbix.example.com/tr_events.php?eventid=42",
    })
}

fn action(key: &str, action: &str, dedup_key: &str) -> Value {
    json!({"routing_key": key, "event_action": action, "dedup_key": dedup_key})
}

async fn incidents(s: &Server, dedup_key: &str) -> Vec<Value> {
    let (status, body) = s
        .get(&format!(
            "/api/now/table/incident?sysparm_query=correlation_id=pagerduty:{dedup_key}^ORDERBYnumber&sysparm_fields=number,state,impact,urgency,short_description,description,close_code,close_notes,correlation_display,caller_id"
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    body["result"].as_array().unwrap().clone()
}

fn success(dedup_key: &str) -> Value {
    json!({"status": "success", "message": "Event processed", "dedup_key": dedup_key})
}

#[tokio::test]
async fn trigger_acknowledge_resolve_and_trigger_again() {
    let s = Server::start();
    let key = new_key(&s).await;
    assert!(key.len() == 32 && key.bytes().all(|b| b.is_ascii_hexdigit()), "{key}");

    let (status, id, body) = send(&s, ENQUEUE, &trigger(&key, "srv01/HTTP", "critical")).await;
    assert_eq!((status, &body), (202, &success("srv01/HTTP")));
    assert!(!id.is_empty(), "the request id header is set");
    let open = incidents(&s, "srv01/HTTP").await;
    assert_eq!(open.len(), 1, "{open:?}");
    let i = &open[0];
    assert_eq!((i["state"].as_str(), i["impact"].as_str(), i["urgency"].as_str()), (Some("1"), Some("1"), Some("1")));
    assert_eq!(i["short_description"], "HTTP down on srv01");
    assert_eq!(i["correlation_display"], "srv01.example.com");
    let description = i["description"].as_str().unwrap();
    assert!(description.contains("component: nginx") && description.contains(r#"{"ping":"timeout"}"#), "{description}");

    // A repeat is no duplicate; the second path is the same intake.
    let (status, _, body) =
        send(&s, "/api/sluice/v1/pagerduty/v2/enqueue", &trigger(&key, "srv01/HTTP", "critical")).await;
    assert_eq!((status, &body), (202, &success("srv01/HTTP")));
    assert_eq!(incidents(&s, "srv01/HTTP").await.len(), 1);

    let (status, _, body) = send(&s, ENQUEUE, &action(&key, "acknowledge", "srv01/HTTP")).await;
    assert_eq!((status, &body), (202, &success("srv01/HTTP")));
    assert_eq!(incidents(&s, "srv01/HTTP").await[0]["state"], "2", "acknowledged: In Progress");

    let (status, _, body) = send(&s, ENQUEUE, &action(&key, "resolve", "srv01/HTTP")).await;
    assert_eq!((status, &body), (202, &success("srv01/HTTP")));
    let resolved = incidents(&s, "srv01/HTTP").await;
    assert_eq!(resolved.len(), 1);
    assert_eq!(
        (resolved[0]["state"].as_str(), resolved[0]["close_code"].as_str()),
        (Some("6"), Some("Solution provided"))
    );
    assert!(resolved[0]["close_notes"].as_str().unwrap().contains("srv01/HTTP"));

    // After a resolve, acknowledge and resolve find nothing; a trigger opens a new incident.
    let (status, _, body) = send(&s, ENQUEUE, &action(&key, "acknowledge", "srv01/HTTP")).await;
    assert_eq!((status, &body), (202, &success("srv01/HTTP")));
    assert_eq!(incidents(&s, "srv01/HTTP").await[0]["state"], "6", "a dropped acknowledge changes nothing");
    let (status, _, _) = send(&s, ENQUEUE, &trigger(&key, "srv01/HTTP", "warning")).await;
    assert_eq!(status, 202);
    let both = incidents(&s, "srv01/HTTP").await;
    let states: Vec<_> = both.iter().map(|i| (i["state"].as_str().unwrap(), i["impact"].as_str().unwrap())).collect();
    assert_eq!(states, [("6", "1"), ("1", "2")], "the resolved one stays, a new one opens");

    // The rows are staged like any sender's: outcomes in the statistics, the key never stored.
    let (status, stats) = s.get("/api/sluice/v1/integrations/pagerduty/stats?window=all").await;
    assert_eq!(status, 200, "{stats}");
    let counts = (&stats["result"]["inserted"], &stats["result"]["updated"], &stats["result"]["ignored"]);
    assert_eq!(counts, (&json!(2), &json!(2), &json!(2)), "{stats}");
    let (status, rows) =
        s.get("/api/now/table/u_pagerduty?sysparm_fields=u_event_action,u_dedup_key,sys_payload").await;
    assert_eq!(status, 200, "{rows}");
    let rows = rows["result"].as_array().unwrap();
    assert_eq!(rows.len(), 6);
    assert!(rows.iter().all(|r| r["u_dedup_key"] == "srv01/HTTP"), "{rows:?}");
    assert!(!rows.iter().any(|r| r.to_string().contains(&key)), "the routing key is never staged");
}

#[tokio::test]
async fn without_an_open_incident_acknowledge_is_dropped_and_a_trigger_gets_a_key() {
    let s = Server::start();
    let key = new_key(&s).await;
    let (status, _, body) = send(&s, ENQUEUE, &action(&key, "acknowledge", "nothing-open")).await;
    assert_eq!((status, &body), (202, &success("nothing-open")));
    assert!(incidents(&s, "nothing-open").await.is_empty());

    let mut event = trigger(&key, "", "info");
    event.as_object_mut().unwrap().remove("dedup_key");
    let (status, _, body) = send(&s, ENQUEUE, &event).await;
    assert_eq!((status, &body["status"], &body["message"]), (202, &json!("success"), &json!("Event processed")));
    let generated = body["dedup_key"].as_str().unwrap().to_owned();
    assert_eq!((generated.len(), generated.matches('-').count()), (36, 4), "{generated}");
    let opened = incidents(&s, &generated).await;
    assert_eq!(opened.len(), 1, "the generated key correlates");
    assert_eq!((opened[0]["impact"].as_str(), opened[0]["urgency"].as_str()), (Some("3"), Some("3")));
    // ... and resolves it later, as at PagerDuty.
    let (status, _, _) = send(&s, ENQUEUE, &action(&key, "resolve", &generated)).await;
    assert_eq!(status, 202);
    assert_eq!(incidents(&s, &generated).await[0]["state"], "6");
}

/// PagerDuty takes dedup keys of up to 255 characters; the incident's correlation id holds 100,
/// so a long key is stored as its digest, and the sender still sees its own key.
#[tokio::test]
async fn a_dedup_key_of_255_characters_correlates_by_its_digest() {
    let s = Server::start();
    let key = new_key(&s).await;
    let long = format!("{}/end", "zabbix-trigger-".repeat(17)).chars().take(255).collect::<String>();
    assert_eq!(long.len(), 255);
    let (status, _, body) = send(&s, ENQUEUE, &trigger(&key, &long, "warning")).await;
    assert_eq!((status, &body), (202, &success(&long)));
    let (status, _, body) = send(&s, ENQUEUE, &action(&key, "acknowledge", &long)).await;
    assert_eq!((status, &body), (202, &success(&long)));
    let (status, body) = s
        .get("/api/now/table/incident?sysparm_query=correlation_idSTARTSWITHpagerduty:&sysparm_fields=state,correlation_id")
        .await;
    assert_eq!(status, 200, "{body}");
    let found = body["result"].as_array().unwrap();
    assert_eq!(found.len(), 1, "one incident, acknowledged: {found:?}");
    assert_eq!(found[0]["state"], "2");
    let correlation = found[0]["correlation_id"].as_str().unwrap();
    assert!(correlation.starts_with("pagerduty:sha256:") && correlation.len() == 81, "{correlation}");
    // The staging row keeps the key as sent.
    let (_, rows) = s.get("/api/now/table/u_pagerduty?sysparm_fields=u_dedup_key").await;
    assert!(rows["result"].as_array().unwrap().iter().all(|r| r["u_dedup_key"] == long.as_str()), "{rows}");
}

#[tokio::test]
async fn bad_events_get_pagerdutys_400s() {
    let s = Server::start();
    let key = new_key(&s).await;
    let invalid =
        |errors: Value| json!({"status": "invalid event", "message": "Event object is invalid", "errors": errors});

    let r =
        s.http.post(s.url(ENQUEUE)).header("content-type", "application/json").body("{not json").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        json!({"status": "Unrecognized object", "message": "Event object format is unrecognized", "errors": ["JSON parse error"]})
    );

    let mut no_summary = trigger(&key, "k1", "fatal");
    no_summary["payload"].as_object_mut().unwrap().remove("summary");
    let (status, _, body) = send(&s, ENQUEUE, &no_summary).await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        invalid(json!([
            "'payload.summary' is missing or blank",
            "'payload.severity' is invalid (must be one of critical, error, warning, info)"
        ]))
    );
    let (status, _, body) = send(&s, ENQUEUE, &json!({"routing_key": key, "event_action": "resolve"})).await;
    assert_eq!(status, 400);
    assert_eq!(body, invalid(json!(["'dedup_key' is missing or blank (required unless event_action is trigger)"])));

    // The integration's contract, after PagerDuty's rules: the row is kept as an error row.
    let mut long_component = trigger(&key, "k1", "error");
    long_component["payload"]["component"] = json!("c".repeat(256));
    let (status, _, body) = send(&s, ENQUEUE, &long_component).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["status"], "invalid event");
    let error = body["errors"][0].as_str().unwrap();
    assert!(error.starts_with("u_component (/payload/component):"), "{error}");
    assert!(incidents(&s, "k1").await.is_empty());

    // Refused keys: wrong length, unknown, a Bearer token, revoked.
    let (status, _, body) = send(&s, ENQUEUE, &trigger("short", "k2", "error")).await;
    assert_eq!(status, 400);
    assert_eq!(body, invalid(json!(["Length of 'routing_key' is incorrect (should be 32 characters)"])));
    let (status, _, body) = send(&s, ENQUEUE, &trigger(&"0".repeat(32), "k2", "error")).await;
    assert_eq!((status, &body), (400, &invalid(json!(["Invalid routing key"]))));
    let (status, _, body) = send(&s, ENQUEUE, &action(&key, "trigger", "k2")).await;
    assert_eq!(status, 400, "a valid key still needs a valid event");
    assert_eq!(body, invalid(json!(["'payload' is missing or not an object (required when event_action is trigger)"])));

    // A routing key is no Bearer token.
    let r = s.http.get(s.url("/api/now/table/incident")).bearer_auth(&key).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    // Only PagerDuty integrations take routing keys.
    let (status, body) = routing_key(&s, "pd.sender", "alertmanager").await;
    assert_eq!(status, 400, "{body}");
    assert_envelope(&body, "invalid_account");

    let (_, tokens) = s.get("/api/sluice/v1/accounts/pd.sender/tokens").await;
    let id = tokens["result"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(tokens["result"][0]["integration"], "pagerduty");
    let r =
        s.admin(s.http.delete(s.url(&format!("/api/sluice/v1/accounts/pd.sender/tokens/{id}")))).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 204);
    let (status, _, body) = send(&s, ENQUEUE, &trigger(&key, "k3", "error")).await;
    assert_eq!((status, &body), (400, &invalid(json!(["Invalid routing key"]))), "revoked");
}

#[tokio::test]
async fn wrong_keys_lock_the_address_and_the_account_rate_throttles() {
    let s = Server::start();
    let key = new_key(&s).await;
    let out = s
        .cli()
        .args(["account", "set", "pd.sender", "--rate", "1", "--burst", "1", "--data"])
        .arg(&s.data)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The account's own rate: a second event at once is throttled (the server notices the new
    // rate within seconds).
    let mut throttled = None;
    for i in 0..40 {
        let r = s.http.post(s.url(ENQUEUE)).json(&trigger(&key, &format!("rate-{i}"), "info")).send().await.unwrap();
        if r.status().as_u16() == 429 {
            throttled = Some(r);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    }
    let r = throttled.expect("the account's rate throttles");
    assert!(r.headers().contains_key("retry-after"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], "throttle event", "{body}");

    for _ in 0..5 {
        let (status, _, _) = send(&s, ENQUEUE, &trigger(&"f".repeat(32), "x", "info")).await;
        assert_eq!(status, 400);
    }
    let (status, _, _) = send(&s, ENQUEUE, &trigger(&"f".repeat(32), "x", "info")).await;
    assert_eq!(status, 400, "the sixth failure locks the address");
    let r = s.http.post(s.url(ENQUEUE)).json(&trigger(&key, "after-lock", "info")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 429, "even the right key waits for the lock");
    assert!(r.headers().contains_key("retry-after"));
}

/// Output of the CLI on this server's store: success, standard output, standard error.
fn cli(s: &Server, args: &[&str]) -> (bool, String, String) {
    let out = s.cli().args(args).arg("--data").arg(&s.data).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

/// `sluice account token` makes routing keys (and Bearer tokens) without the API;
/// `sluice account revoke-token` ends them, and the running server notices.
#[tokio::test]
async fn the_cli_creates_lists_and_revokes_routing_keys() {
    let s = Server::start();
    s.add_account("pd.cli", &["import_set_loader"]);
    let (ok, out, err) = cli(&s, &["account", "token", "pd.cli", "--integration", "pagerduty", "--label", "zabbix"]);
    assert!(ok, "{err}");
    assert!(out.contains("Created routing key ") && out.contains("of pd.cli for integration pagerduty"), "{out}");
    let key = out.lines().find_map(|l| l.strip_prefix("Token: ")).unwrap().to_owned();
    assert!(key.len() == 32 && key.bytes().all(|b| b.is_ascii_hexdigit()), "{key}");
    let (status, _, body) = send(&s, ENQUEUE, &trigger(&key, "cli/1", "info")).await;
    assert_eq!((status, &body), (202, &success("cli/1")));

    // Only for PagerDuty integrations; an unknown one is named.
    let (ok, _, err) = cli(&s, &["account", "token", "pd.cli", "--integration", "alertmanager"]);
    assert!(!ok && err.contains("integration alertmanager has format alertmanager"), "{err}");
    let (ok, _, err) = cli(&s, &["account", "token", "pd.cli", "--integration", "nope"]);
    assert!(!ok && err.contains("no integration named nope"), "{err}");
    let (ok, _, err) = cli(&s, &["account", "token", "nobody", "--integration", "pagerduty"]);
    assert!(!ok && err.contains("no account nobody"), "{err}");

    // A Bearer token for the admin works on the Table API, never as a routing key.
    let (ok, out, err) = cli(&s, &["account", "token", "admin", "--label", "script"]);
    assert!(ok, "{err}");
    let bearer = out.lines().find_map(|l| l.strip_prefix("Token: ")).unwrap().to_owned();
    let r = s.http.get(s.url("/api/now/table/incident?sysparm_limit=1")).bearer_auth(&bearer).send().await.unwrap();
    assert_eq!(r.status(), 200);

    let (ok, out, _) = cli(&s, &["account", "show", "pd.cli"]);
    assert!(ok);
    let line = out.lines().find(|l| l.contains("routing key of pagerduty")).unwrap_or_else(|| panic!("{out}"));
    assert!(line.contains("zabbix"), "{line}");
    let id = line.split_whitespace().next().unwrap().to_owned();

    let (ok, out, err) = cli(&s, &["account", "revoke-token", "pd.cli", &id]);
    assert!(ok && out.contains(&format!("Revoked token {id} of pd.cli")), "{out} {err}");
    let (ok, _, err) = cli(&s, &["account", "revoke-token", "pd.cli", &id]);
    assert!(!ok && err.contains(&format!("no token {id} of account pd.cli")), "{err}");
    let mut refused = false;
    for _ in 0..50 {
        let (status, _, _) = send(&s, ENQUEUE, &trigger(&key, "cli/2", "info")).await;
        if status == 400 {
            refused = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(refused, "the revoked routing key still works");
}
