//! Statistics per account and integration: a scripted mix of 1,000 requests with known outcomes,
//! tallied from the answers, must match the statistics endpoints exactly.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::helpers::*;

/// The counters of one account or integration, as the endpoints answer them.
#[derive(Debug, Default, Clone, PartialEq)]
struct Tally {
    received: u64,
    inserted: u64,
    updated: u64,
    ignored: u64,
    skipped: u64,
    error: u64,
    errors_by_code: BTreeMap<String, u64>,
    unauthorized: u64,
    forbidden: u64,
    throttled: u64,
}

impl Tally {
    fn from_json(v: &Value) -> Self {
        let n = |k: &str| v[k].as_u64().unwrap_or_else(|| panic!("{k} in {v}"));
        Self {
            received: n("received"),
            inserted: n("inserted"),
            updated: n("updated"),
            ignored: n("ignored"),
            skipped: n("skipped"),
            error: n("error"),
            errors_by_code: v["errors_by_code"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
                .collect(),
            unauthorized: n("unauthorized"),
            forbidden: n("forbidden"),
            throttled: n("throttled"),
        }
    }

    /// Adds one answer, as the statistics should count it (rows only for posts: a read of a
    /// staged row shows its outcome without being one).
    fn add(&mut self, post: bool, status: u16, body: &Value) {
        self.received += 1;
        match status {
            401 => self.unauthorized += 1,
            403 => self.forbidden += 1,
            429 => self.throttled += 1,
            s if s >= 400 => {
                self.error += 1;
                let code = body["error"]["code"].as_str().unwrap().to_owned();
                *self.errors_by_code.entry(code).or_default() += 1;
            }
            _ if !post => {}
            _ => {
                for row in body["result"].as_array().into_iter().flatten() {
                    match row["status"].as_str() {
                        Some("inserted") => self.inserted += 1,
                        Some("updated") => self.updated += 1,
                        Some("ignored") => self.ignored += 1,
                        Some("skipped") => self.skipped += 1,
                        Some("error") => {
                            self.error += 1;
                            let mut codes: Vec<&str> = row["errors"]
                                .as_array()
                                .into_iter()
                                .flatten()
                                .filter_map(|e| e["code"].as_str())
                                .collect();
                            codes.sort();
                            codes.dedup();
                            for c in codes {
                                *self.errors_by_code.entry(c.to_owned()).or_default() += 1;
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
    }
}

/// One scripted request: who is counted for it, the integration, and how to send it.
#[derive(Clone)]
struct Step {
    account: &'static str,
    integration: &'static str,
    method: &'static str,
    path: String,
    auth: Option<(String, String)>,
    forwarded: Option<String>,
    body: Option<String>,
}

fn post(account: &'static str, integration: &'static str, table: &str, pw: &str, body: Value) -> Step {
    Step {
        account,
        integration,
        method: "POST",
        path: format!("/api/now/import/{table}"),
        auth: Some((account.to_owned(), pw.to_owned())),
        forwarded: None,
        body: Some(body.to_string()),
    }
}

type Tallies = BTreeMap<(String, String), Tally>;

/// Runs steps `parallel` at a time, adding each answer to the tally of its account and integration.
async fn run(s: &Arc<Server>, steps: Vec<Step>, parallel: usize, tallies: &mut Tallies) -> Vec<Value> {
    let mut bodies = Vec::new();
    for chunk in steps.chunks(parallel) {
        let mut set = JoinSet::new();
        for (i, step) in chunk.iter().cloned().enumerate() {
            let s = s.clone();
            set.spawn(async move {
                let method = reqwest::Method::from_bytes(step.method.as_bytes()).unwrap();
                let mut b = s.http.request(method, s.url(&step.path));
                if let Some((u, p)) = &step.auth {
                    b = b.basic_auth(u, Some(p));
                }
                if let Some(f) = &step.forwarded {
                    b = b.header("x-forwarded-for", f);
                }
                if let Some(body) = step.body.clone() {
                    b = b.header("content-type", "application/json").body(body);
                }
                let r = b.send().await.unwrap();
                let status = r.status().as_u16();
                let body: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap_or(Value::Null);
                (i, step, status, body)
            });
        }
        let mut done: Vec<_> = set.join_all().await;
        done.sort_by_key(|d| d.0);
        for (_, step, status, body) in done {
            tallies.entry((step.account.to_owned(), step.integration.to_owned())).or_default().add(
                step.method == "POST",
                status,
                &body,
            );
            bodies.push(body);
        }
    }
    bodies
}

const STRICT: &str = r#"
name = "u_strict_import"
version = "1"
staging_table = "u_strict_import"
target_table = "incident"
accounts = ["stats.strict"]

[[fields]]
name = "u_short_description"
type = "string"
required = true

[[fields]]
name = "u_correlation_id"
type = "string"

[transform]
name = "Strict"
coalesce = ["correlation_id"]
create_on_empty_coalesce = false

[[transform.field_map]]
source = "u_short_description"
target = "short_description"

[[transform.field_map]]
source = "u_correlation_id"
target = "correlation_id"
"#;

fn sum<'a>(tallies: impl Iterator<Item = &'a Tally>) -> Tally {
    let mut out = Tally::default();
    for t in tallies {
        out.received += t.received;
        out.inserted += t.inserted;
        out.updated += t.updated;
        out.ignored += t.ignored;
        out.skipped += t.skipped;
        out.error += t.error;
        out.unauthorized += t.unauthorized;
        out.forbidden += t.forbidden;
        out.throttled += t.throttled;
        for (k, v) in &t.errors_by_code {
            *out.errors_by_code.entry(k.clone()).or_default() += v;
        }
    }
    out
}

#[tokio::test]
async fn statistics_match_a_scripted_mix_of_a_thousand_requests_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let integrations = dir.path().join("integrations");
    std::fs::create_dir(&integrations).unwrap();
    std::fs::write(integrations.join("default.toml"), sluice_default_definition()).unwrap();
    std::fs::write(integrations.join("strict.toml"), STRICT).unwrap();
    let folder = integrations.to_str().unwrap().to_owned();
    let s = Arc::new(Server::start_with(&[
        "--integrations",
        &folder,
        "--synchronous",
        "normal",
        // Wrong passwords come from many addresses, so no address is locked out.
        "--trusted-proxy",
        "127.0.0.1/32",
    ]));
    let alerts = s.add_account("stats.alerts", &["import_set_loader"]);
    let strict = s.add_account("stats.strict", &["import_set_loader"]);
    let capped = "stats-capped-password-1";
    let (status, _) = s
        .admin(s.http.post(s.url("/api/sluice/v1/accounts")))
        .json(&json!({"name": "stats.capped", "roles": ["import_set_loader"], "password": capped,
                      "rate": {"per_second": 1, "burst": 5}}))
        .send()
        .await
        .map(|r| (r.status().as_u16(), ()))
        .unwrap();
    assert_eq!(status, 201);

    const A: &str = "stats.alerts";
    const DEF: &str = "u_incident_import";
    let mut tallies = Tallies::new();
    let mut steps = Vec::new();
    // 300 inserts.
    for i in 0..300 {
        steps.push(post(
            A,
            DEF,
            DEF,
            &alerts,
            json!({"u_short_description": "disk", "u_correlation_id": format!("c-{i}")}),
        ));
    }
    let inserted = run(&s, std::mem::take(&mut steps), 16, &mut tallies).await;
    // 150 coalesce updates, then 100 repeats of them that change nothing (ignored).
    for i in 0..150 {
        steps.push(post(
            A,
            DEF,
            DEF,
            &alerts,
            json!({"u_short_description": "disk 2", "u_correlation_id": format!("c-{i}")}),
        ));
    }
    run(&s, std::mem::take(&mut steps), 16, &mut tallies).await;
    for i in 0..100 {
        steps.push(post(
            A,
            DEF,
            DEF,
            &alerts,
            json!({"u_short_description": "disk 2", "u_correlation_id": format!("c-{i}")}),
        ));
    }
    // Validation errors of several codes, one or more per row.
    for i in 0..60 {
        steps.push(post(A, DEF, DEF, &alerts, json!({"u_description": format!("no short description {i}")})));
    }
    for _ in 0..40 {
        steps.push(post(A, DEF, DEF, &alerts, json!({"u_short_description": "x", "u_urgency": "9"})));
    }
    for _ in 0..30 {
        steps.push(post(A, DEF, DEF, &alerts, json!({"u_urgency": "9", "u_caller": "c".repeat(300)})));
    }
    // Request-level errors: broken JSON, an unknown table, the other integration (forbidden).
    for _ in 0..20 {
        let mut step = post(A, DEF, DEF, &alerts, json!({}));
        step.body = Some("{\"u_short_description\": ".into());
        steps.push(step);
    }
    for _ in 0..10 {
        steps.push(post(A, "", "u_no_such_import", &alerts, json!({"u_short_description": "x"})));
    }
    for _ in 0..30 {
        steps.push(post(A, "u_strict_import", "u_strict_import", &alerts, json!({"u_short_description": "x"})));
    }
    // Wrong passwords for an existing account, each from its own address (no lockout).
    for i in 0..5 {
        let mut step = post(A, DEF, DEF, "wrong-password-123", json!({"u_short_description": "x"}));
        step.forwarded = Some(format!("198.51.100.{i}"));
        steps.push(step);
    }
    // Reads of staged rows.
    for body in inserted.iter().take(30) {
        let staging = result0(body)["staging_sys_id"].as_str().unwrap().to_owned();
        steps.push(Step {
            method: "GET",
            path: format!("/api/now/import/{DEF}/{staging}"),
            body: None,
            ..post(A, DEF, DEF, &alerts, json!({}))
        });
    }
    // The strict integration: rows without a correlation id are skipped.
    for i in 0..150 {
        let body = if i < 100 {
            json!({"u_short_description": "no id"})
        } else {
            json!({"u_short_description": "with id", "u_correlation_id": format!("s-{i}")})
        };
        steps.push(post("stats.strict", "u_strict_import", "u_strict_import", &strict, body));
    }
    // Unknown users and no credentials at all: the unknown bucket (of the integration posted to).
    for i in 0..20 {
        let mut step = post("(unknown)", DEF, DEF, "any-password-123", json!({"u_short_description": "x"}));
        step.auth = Some((format!("nobody{i}"), "any-password-123".into()));
        step.forwarded = Some(format!("198.51.100.{}", 100 + i));
        steps.push(step);
    }
    for _ in 0..15 {
        let mut step = post("(unknown)", DEF, DEF, "", json!({"u_short_description": "x"}));
        step.auth = None;
        steps.push(step);
    }
    run(&s, std::mem::take(&mut steps), 16, &mut tallies).await;
    // A burst over an account's own limit: throttled.
    for _ in 0..40 {
        steps.push(post("stats.capped", DEF, DEF, capped, json!({"u_short_description": "burst"})));
    }
    run(&s, std::mem::take(&mut steps), 8, &mut tallies).await;

    let total: u64 = tallies.values().map(|t| t.received).sum();
    assert_eq!(total, 1000, "the script sends 1,000 requests");
    // The script's intentions hold (so the mix covers every counter).
    let of = |account: &str| sum(tallies.iter().filter(|((a, _), _)| a == account).map(|(_, t)| t));
    let a = of(A);
    assert_eq!((a.inserted, a.updated, a.ignored), (300, 150, 100), "{a:?}");
    assert_eq!(a.error, 60 + 40 + 30 + 20 + 10, "{a:?}");
    assert_eq!(a.errors_by_code["field_required"], 90);
    assert_eq!(a.errors_by_code["invalid_choice"], 70);
    assert_eq!(a.errors_by_code["field_too_long"], 30);
    assert_eq!(a.errors_by_code["malformed_json"], 20);
    assert_eq!(a.errors_by_code["invalid_table"], 10);
    assert_eq!((a.forbidden, a.unauthorized), (30, 5));
    let st = of("stats.strict");
    assert_eq!((st.skipped, st.inserted), (100, 50));
    assert_eq!(of("(unknown)").unauthorized, 35);
    let c = of("stats.capped");
    assert!(c.throttled >= 20 && c.inserted >= 5, "{c:?}");

    // Every account's statistics, and every integration's, match the answers exactly.
    for account in [A, "stats.strict", "stats.capped", "(unknown)"] {
        let (status, body) = s.get(&format!("/api/sluice/v1/accounts/{account}/stats?window=1h")).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(Tally::from_json(&body["result"]), of(account), "account {account}: {body}");
        assert_eq!(body["result"]["window"], "1h");
        assert!(is_datetime(body["result"]["last_seen"].as_str().unwrap()));
        assert!(body["result"]["latency_ms"]["p99"].as_u64().is_some(), "{body}");
    }
    for integration in [DEF, "u_strict_import"] {
        let (status, body) = s.get(&format!("/api/sluice/v1/integrations/{integration}/stats?window=all")).await;
        assert_eq!(status, 200, "{body}");
        let expected = sum(tallies.iter().filter(|((_, i), _)| i == integration).map(|(_, t)| t));
        assert_eq!(Tally::from_json(&body["result"]), expected, "integration {integration}: {body}");
        let per_account = body["result"]["accounts"].as_object().unwrap();
        for (account, v) in per_account {
            assert_eq!(Some(&Tally::from_json(v)), tallies.get(&(account.clone(), integration.to_owned())));
        }
    }
    let p = &s.get("/api/sluice/v1/accounts/stats.alerts/stats").await.1["result"]["latency_ms"];
    assert!(p["p50"].as_u64().unwrap() <= p["p90"].as_u64().unwrap(), "{p}");

    // The terminal table reads the same numbers from the database.
    let out = s.cli().args(["stats", "--window", "all", "--data"]).arg(&s.data).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = text.lines().find(|l| l.starts_with("stats.strict ")).unwrap_or_else(|| panic!("{text}"));
    let numbers: Vec<&str> = line.split_whitespace().skip(1).take(5).collect();
    assert_eq!(numbers, ["150", "50", "0", "0", "100"], "{text}");
    assert!(text.contains("u_strict_import") && text.contains("errors: "), "{text}");

    // Who may read what.
    let get_as =
        |path: &str, user: &str, pw: &str| s.http.get(s.url(path)).basic_auth(user, Some(pw.to_owned())).send();
    let r = get_as("/api/sluice/v1/accounts/stats.alerts/stats", "stats.alerts", &alerts).await.unwrap();
    assert_eq!(r.status(), 200, "an account reads its own");
    let r = get_as("/api/sluice/v1/accounts/stats.alerts/stats", "stats.strict", &strict).await.unwrap();
    assert_eq!(r.status(), 403, "not another's");
    let r = get_as("/api/sluice/v1/integrations/u_strict_import/stats", "stats.alerts", &alerts).await.unwrap();
    assert_eq!(r.status(), 404, "nor an integration it is not bound to");
    let r = get_as("/api/sluice/v1/integrations/u_strict_import/stats?window=all", "stats.strict", &strict).await;
    let body: Value = r.unwrap().json().await.unwrap();
    let accounts: Vec<&String> = body["result"]["accounts"].as_object().unwrap().keys().collect();
    assert_eq!(accounts, ["stats.strict"], "a bound account sees only its own numbers: {body}");
    let (status, body) = s.get("/api/sluice/v1/integrations/u_strict_import/stats?window=2d").await;
    assert_eq!(status, 400);
    assert_envelope(&body, "invalid_parameter");
    assert_eq!(s.get("/api/sluice/v1/accounts/nobody.at.all/stats").await.0, 404);
}

fn sluice_default_definition() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/crates/sluice-core/integrations/u_incident_import.toml");
    std::fs::read_to_string(path).unwrap()
}

#[tokio::test]
async fn rows_of_an_asynchronous_bulk_load_count_once_the_worker_settles_them() {
    let s = Server::start();
    let pw = s.add_account("bulk.sender", &["import_set_loader"]);
    let records = json!({"records": [
        {"u_short_description": "one"}, {"u_short_description": "two"}, {"u_description": "no short description"}]});
    let r = s
        .http
        .post(s.url("/api/now/import/u_incident_import/insertMultiple"))
        .basic_auth("bulk.sender", Some(&pw))
        .json(&records)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let id = r.json::<Value>().await.unwrap()["import_set_id"].as_str().unwrap().to_owned();
    // The worker counts each row when it settles it (after its commit): wait for all three.
    let deadline = Instant::now() + Duration::from_secs(30);
    let body = loop {
        let (_, body) = s.get("/api/sluice/v1/accounts/bulk.sender/stats").await;
        let t = Tally::from_json(&body["result"]);
        if t.inserted + t.error >= 3 || Instant::now() > deadline {
            break body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let (_, progress) = s.get(&format!("/api/sluice/v1/import_sets/{id}?limit=0")).await;
    assert_eq!(progress["result"]["pending"], 0, "{progress}");
    let t = Tally::from_json(&body["result"]);
    assert_eq!((t.received, t.inserted, t.error), (1, 2, 1), "{body}");
    assert_eq!(t.errors_by_code, BTreeMap::from([("field_required".to_owned(), 1)]));
}

#[tokio::test]
async fn two_nodes_on_one_database_add_up() {
    let a = Server::start();
    let b = Server::start_on(&a.data, &[]);
    for _ in 0..7 {
        assert_eq!(a.import(json!({"u_short_description": "via a"})).await.0, 201);
    }
    for _ in 0..5 {
        assert_eq!(b.import(json!({"u_short_description": "via b"})).await.0, 201);
    }
    // Node b flushes its counters within a second; node a's read flushes its own first.
    let deadline = Instant::now() + Duration::from_secs(10);
    let inserted = loop {
        let (_, body) = a.get("/api/sluice/v1/integrations/u_incident_import/stats?window=1h").await;
        let n = body["result"]["inserted"].as_u64().unwrap();
        if n >= 12 || Instant::now() > deadline {
            break n;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(inserted, 12);
    let (_, from_b) = b.get("/api/sluice/v1/integrations/u_incident_import/stats?window=1h").await;
    assert_eq!(from_b["result"]["inserted"], 12, "{from_b}");
}
