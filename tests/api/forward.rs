//! Forwarding (docs/forwarding.md): a second sluice is the upstream (it speaks ServiceNow's
//! Import Set and Table APIs), reached through a proxy the test can take down. Senders are
//! acknowledged whatever the upstream does; every record arrives once; the upstream's number
//! lands on the local incident; outages, dead letters, manual retries and a kill -9 lose nothing
//! and duplicate nothing. Both backends (the local and the upstream sluice on the suite's).

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::fault_proxy::FaultProxy;
use crate::helpers::*;

const DEFINITION: &str = include_str!("../../crates/sluice-core/integrations/u_incident_import.toml");
const PASSWORD_ENV: &str = "SLUICE_TEST_UPSTREAM_PASSWORD";

/// An integrations folder with the default definition forwarding to `url` (Import Set API,
/// basic auth as the upstream's admin), quick retries and short leases (2 s timeouts), and
/// `extra` lines in `[forward]`.
fn forwarding_folder(url: &str, extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let forward = format!(
        "\n[forward]\nkind = \"servicenow-import\"\nurl = \"{url}\"\ntable = \"u_incident_import\"\n\
         user = \"admin\"\npassword_env = \"{PASSWORD_ENV}\"\nbackoff_initial_seconds = 1\nbackoff_max_seconds = 1\n\
         breaker_cooldown_seconds = 1\ntimeout_seconds = 2\n{extra}\n"
    );
    std::fs::write(dir.path().join("u_incident_import.toml"), format!("{DEFINITION}{forward}")).unwrap();
    dir
}

const ENV: [(&str, &str); 1] = [(PASSWORD_ENV, ADMIN_PASSWORD)];

fn start_forwarding(dir: &tempfile::TempDir) -> Server {
    Server::start_with_env(&["--integrations", dir.path().to_str().unwrap()], &ENV)
}

async fn outbox(s: &Server, query: &str) -> Value {
    let (status, body) = s.get(&format!("/api/sluice/v1/integrations/u_incident_import/outbox{query}")).await;
    assert_eq!(status, 200, "{body}");
    body["result"].clone()
}

/// The outbox once `done` holds of its counts; panics with the outbox after 60 s.
async fn wait_for(s: &Server, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let found = outbox(s, "?limit=1000").await;
        if done(&found["counts"]) {
            return found;
        }
        assert!(Instant::now() < deadline, "outbox never {what}: {found:#}\n{}", s.settled_logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn post(s: &Server, short: &str, correlation: &str) -> Value {
    let (status, body) = s.import(json!({"u_short_description": short, "u_correlation_id": correlation})).await;
    assert_eq!(status, 201, "{body}");
    result0(&body).clone()
}

/// The upstream's incidents that came from a sluice, by correlation id.
async fn forwarded_upstream(upstream: &Server) -> Vec<Value> {
    let (status, body) =
        upstream.get("/api/now/table/incident?sysparm_query=correlation_idSTARTSWITHsluice:&sysparm_limit=1000").await;
    assert_eq!(status, 200, "{body}");
    body["result"].as_array().unwrap().clone()
}

/// How many rows the upstream's staging table received: one per delivery.
async fn upstream_deliveries(upstream: &Server) -> usize {
    let (status, body) =
        upstream.get(&format!("/api/now/table/{STAGING}?sysparm_limit=10000&sysparm_fields=sys_id")).await;
    assert_eq!(status, 200, "{body}");
    body["result"].as_array().unwrap().len()
}

fn local_sys_id(result: &Value) -> String {
    result["sys_id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_reach_the_upstream_once_with_its_number_on_the_local_incident() {
    let upstream = Server::start();
    let proxy = FaultProxy::start(&upstream.base).await;
    let dir = forwarding_folder(&proxy.url(), "");
    let s = start_forwarding(&dir);

    let a = post(&s, "Disk full on db-1", "a-1").await;
    let b = post(&s, "Backup failed", "b-1").await;
    let (a_id, b_id) = (local_sys_id(&a), local_sys_id(&b));
    let done = wait_for(&s, "delivered both", |c| c["delivered"] == 2 && c["pending"] == 0).await;
    assert_eq!(done["upstream"]["endpoint"], format!("{}/api/now/import/u_incident_import", proxy.url()));
    // A change to a delivered record is delivered again, onto the same upstream incident.
    let (status, body) =
        s.import(json!({"u_short_description": "Disk full on db-1 (90 GB)", "u_correlation_id": "a-1"})).await;
    assert_eq!((status, result0(&body)["status"].as_str()), (201, Some("updated")), "{body}");
    wait_for(&s, "delivered the change", |c| c["delivered"] == 2 && c["pending"] == 0).await;
    let row = outbox(&s, &format!("/{a_id}")).await;
    assert_eq!(row["state"], "delivered", "{row}");
    assert_eq!(row["version"], 2, "{row}");

    let remote = forwarded_upstream(&upstream).await;
    assert_eq!(remote.len(), 2, "one upstream incident per local one: {remote:#?}");
    let remote_a = remote.iter().find(|r| r["correlation_id"] == format!("sluice:{a_id}")).expect("a upstream");
    assert_eq!(remote_a["short_description"], "Disk full on db-1 (90 GB)");
    assert!(remote.iter().any(|r| r["correlation_id"] == format!("sluice:{b_id}")));

    // The upstream's number and sys_id on the local incident, the row and its history.
    let (_, local) = s.get(&format!("/api/now/table/incident/{a_id}")).await;
    assert_eq!(local["result"]["u_upstream_number"], remote_a["number"], "{local}");
    assert_eq!(local["result"]["u_upstream_sys_id"], remote_a["sys_id"], "{local}");
    assert_eq!(row["upstream_number"], remote_a["number"]);
    let (_, audit) =
        s.get(&format!("/api/now/table/sys_audit?sysparm_query=documentkey={a_id}^fieldname=u_upstream_number")).await;
    let audit = audit["result"].as_array().unwrap();
    assert_eq!(audit.len(), 1, "{audit:#?}");
    assert_eq!((audit[0]["user"].as_str(), audit[0]["reason"].as_str()), (Some("system"), Some("Forwarding")));

    let metrics = s.admin(s.http.get(s.url("/metrics"))).send().await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains("sluice_outbox_rows{integration=\"u_incident_import\",state=\"delivered\"} 2"),
        "{metrics}"
    );
    assert!(metrics.contains("sluice_outbox_rows{integration=\"u_incident_import\",state=\"dead\"} 0"), "{metrics}");
    assert!(metrics.contains("sluice_forward_attempts_total{integration=\"u_incident_import\",outcome=\"delivered\"}"));
    assert!(metrics.contains("sluice_forward_delivery_seconds_count{integration=\"u_incident_import\"}"));
    let (_, stats) = s.get("/api/sluice/v1/integrations/u_incident_import/stats?window=1h").await;
    let forwarding = &stats["result"]["forwarding"];
    assert_eq!((forwarding["delivered"].as_u64(), forwarding["dead_lettered"].as_u64()), (Some(3), Some(0)), "{stats}");
    assert_eq!(forwarding["outbox"]["delivered"], 2, "{stats}");
    assert!(forwarding["delivery_latency_ms"]["p50"].is_u64(), "{stats}");
    assert_eq!(stats["result"]["received"], 3, "deliveries are no requests: {stats}");
    assert!(stats["result"]["accounts"].get("system").is_none(), "forwarding is no sender: {stats}");
    let (_, integration) = s.get("/api/sluice/v1/integrations/u_incident_import").await;
    assert_eq!(integration["result"]["forward"]["kind"], "servicenow-import", "{integration}");
    assert!(!integration.to_string().contains(ADMIN_PASSWORD), "the upstream's password is never shown");
    let plan = s.admin(s.http.get(s.url("/api/sluice/v1/integrations/u_incident_import/plan"))).send().await.unwrap();
    let plan = plan.text().await.unwrap();
    assert!(plan.contains(&format!("POST {}/api/now/import/u_incident_import", proxy.url())), "{plan}");
    assert!(plan.contains("basic auth as admin"), "{plan}");
    assert!(!plan.contains(ADMIN_PASSWORD));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_outage_leaves_senders_acknowledged_and_dead_letters_are_retried() {
    let upstream = Server::start();
    let proxy = FaultProxy::start(&upstream.base).await;
    proxy.set_up(false);
    let dir = forwarding_folder(&proxy.url(), "max_attempts = 3\nbreaker_failures = 1000");
    let s = start_forwarding(&dir);

    let mut ids = Vec::new();
    for i in 0..10 {
        let r = post(&s, &format!("Outage ticket {i}"), &format!("outage-{i}")).await;
        assert_eq!(r["status"], "inserted", "acknowledged while the upstream is down: {r}");
        ids.push(local_sys_id(&r));
    }
    let dead = wait_for(&s, "gave up", |c| c["dead"] == 10).await;
    let row = &dead["deliveries"][0];
    assert_eq!(row["attempts"], 3, "{row}");
    assert!(row["last_error"].as_str().unwrap().starts_with("gave up after 3 attempts: "), "{row}");
    assert!(forwarded_upstream(&upstream).await.is_empty());
    let listed = s.cli().args(["outbox", "list", "--state", "dead", "--data"]).arg(&s.data).output().unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.starts_with("pending 0  delivered 0  dead 10"), "{listed}");
    assert_eq!(
        listed.lines().filter(|l| l.contains(" dead ") && l.contains("gave up after 3")).count(),
        10,
        "{listed}"
    );

    // Only admins retry; one record, then all.
    let auditor = s.add_account("outbox.reader", &["itil"]);
    let refused = s
        .http
        .post(s.url("/api/sluice/v1/integrations/u_incident_import/outbox/retry"))
        .basic_auth("outbox.reader", Some(&auditor))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    proxy.set_up(true);
    let retry = |body: Value| {
        s.admin(s.http.post(s.url("/api/sluice/v1/integrations/u_incident_import/outbox/retry"))).json(&body).send()
    };
    let one: Value = retry(json!({"record_sys_id": ids[0]})).await.unwrap().json().await.unwrap();
    assert_eq!(one["result"]["queued"], 1, "{one}");
    wait_for(&s, "delivered the retried one", |c| c["delivered"] == 1 && c["dead"] == 9).await;
    // The rest from the console's integration page.
    let (cookie, _) = crate::console::login(&s, "admin", ADMIN_PASSWORD).await;
    let (status, page) = crate::console::get(&s, "/console/integrations/u_incident_import", Some(&cookie)).await;
    assert_eq!(status, 200);
    assert!(page.contains("<td data-label=\"dead\">9</td>"), "{page}");
    assert_eq!(page.matches("<tr data-state=\"dead\">").count(), 9);
    assert!(page.contains("Retry 9 dead deliveries"));
    let path = "/console/integrations/u_incident_import/outbox/retry";
    let refused = crate::console::post_form(&s, path, Some(&cookie), &[("csrf", "forged")]).await;
    assert_eq!(refused.status(), 403, "CSRF is checked");
    let csrf = crate::console::csrf_of(&page);
    let done = crate::console::post_form(&s, path, Some(&cookie), &[("csrf", &csrf)]).await;
    assert_eq!(done.status(), 303);
    wait_for(&s, "delivered all", |c| c["delivered"] == 10 && c["pending"] == 0).await;
    assert_eq!(forwarded_upstream(&upstream).await.len(), 10);
    let (_, audit) = s.get("/api/sluice/v1/admin_audit?action=integrations.outbox.retry").await;
    assert_eq!(audit["result"].as_array().map(Vec::len), Some(2), "{audit}");
    let metrics = s.admin(s.http.get(s.url("/metrics"))).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("sluice_forward_attempts_total{integration=\"u_incident_import\",outcome=\"retry\"}"));

    // A record the upstream refuses (its contract: impact is 1, 2 or 3) is dead at once.
    let dir = forwarding_folder(
        &proxy.url(),
        "fields = { u_short_description = \"short_description\", u_impact = \"short_description\" }",
    );
    let picky = start_forwarding(&dir);
    let r = post(&picky, "not an impact", "refused-1").await;
    let found = wait_for(&picky, "refused it", |c| c["dead"] == 1).await;
    let row = &found["deliveries"][0];
    assert_eq!((row["record_sys_id"].as_str(), row["attempts"].as_u64()), (r["sys_id"].as_str(), Some(1)), "{row}");
    assert!(row["last_error"].as_str().unwrap().contains("u_impact"), "the upstream's reason is kept: {row}");
    let retried = picky
        .cli()
        .args(["outbox", "retry", "u_incident_import", "--record", &local_sys_id(&r), "--data"])
        .arg(&picky.data)
        .output()
        .unwrap();
    assert!(retried.status.success(), "{}", String::from_utf8_lossy(&retried.stderr));
    assert!(String::from_utf8_lossy(&retried.stdout).starts_with("1 dead row(s) of u_incident_import queued again"));
    let (_, audit) = picky.get("/api/sluice/v1/admin_audit?action=integrations.outbox.retry").await;
    assert!(audit["result"][0]["actor"].as_str().unwrap().starts_with("cli"), "{audit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_lost_or_duplicated_across_a_kill_9() {
    let upstream = Server::start();
    let proxy = FaultProxy::start(&upstream.base).await;
    proxy.set_up(false);
    let dir = forwarding_folder(&proxy.url(), "");
    let args = ["--integrations", dir.path().to_str().unwrap()];
    let mut s = Server::start_with_env(&args, &ENV);
    for i in 0..20 {
        post(&s, &format!("Queued before the crash {i}"), &format!("crash-{i}")).await;
    }
    wait_for(&s, "held 20", |c| c["pending"] == 20).await;
    s.kill();
    let kept = s.take_tmp();
    proxy.set_up(true);
    let mut s = Server::start_on_with_env(&s.data.clone(), &args, &ENV);
    // Killed again while it delivers: the rows it had leased go out after the next start (their
    // leases expire), and one that had already arrived is coalesced by its correlation id.
    for i in 0..30 {
        post(&s, &format!("Sent while delivering {i}"), &format!("busy-{i}")).await;
    }
    s.kill();
    let mut s = Server::start_on_with_env(&s.data.clone(), &args, &ENV);
    wait_for(&s, "delivered everything", |c| c["delivered"] == 50 && c["pending"] == 0).await;
    let remote = forwarded_upstream(&upstream).await;
    assert_eq!(remote.len(), 50, "every acknowledged ticket arrived once");
    let correlations: std::collections::BTreeSet<_> = remote.iter().map(|r| r["correlation_id"].to_string()).collect();
    assert_eq!(correlations.len(), 50);
    s.kill();
    drop(kept);
}

/// Two nodes on one PostgreSQL database share the outbox: each row is delivered by one of them,
/// once (the upstream's staging table counts the deliveries it received).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_deliver_each_row_once() {
    let Some(db) = crate::backend::Database::create() else { return };
    let upstream = Server::start();
    let dir = forwarding_folder(&upstream.base, "concurrency = 8");
    let args = ["--integrations", dir.path().to_str().unwrap(), "--database", db.url.as_str()];
    let nodes = [Server::start_with_env(&args, &ENV), Server::start_with_env(&args, &ENV)];
    let mut sent = tokio::task::JoinSet::new();
    for i in 0..120 {
        let (base, http) = (nodes[i % 2].base.clone(), nodes[i % 2].http.clone());
        sent.spawn(async move {
            let body = json!({"u_short_description": format!("Two nodes {i}"), "u_correlation_id": format!("two-{i}")});
            let r = http
                .post(format!("{base}/api/now/import/{STAGING}"))
                .basic_auth("admin", Some(ADMIN_PASSWORD))
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201);
        });
    }
    while let Some(done) = sent.join_next().await {
        done.unwrap();
    }
    wait_for(&nodes[0], "delivered everything", |c| c["delivered"] == 120 && c["pending"] == 0).await;
    assert_eq!(forwarded_upstream(&upstream).await.len(), 120);
    assert_eq!(upstream_deliveries(&upstream).await, 120, "no row was delivered twice");
}

/// A one-route OAuth token endpoint in the test: answers every request with `token` as a client
/// credentials grant's access token, and keeps each request's text.
async fn token_endpoint(token: String) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/oauth_token.do", listener.local_addr().unwrap());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            // The head, then as many bytes as it declares.
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            while let Ok(n) = socket.read(&mut buf).await {
                request.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&request).into_owned();
                let Some(end) = text.find("\r\n\r\n") else { if n == 0 { break } else { continue } };
                let length = text[..end]
                    .lines()
                    .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
                    .and_then(|v| v.parse::<usize>().ok())
                    .unwrap_or(0);
                if n == 0 || request.len() >= end + 4 + length {
                    break;
                }
            }
            kept.lock().unwrap().push(String::from_utf8_lossy(&request).into_owned());
            let body = json!({"access_token": token, "token_type": "Bearer", "expires_in": 1800}).to_string();
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(answer.as_bytes()).await;
        }
    });
    (url, seen)
}

/// The Table API kind with OAuth client credentials: the first delivery looks the record up by
/// its correlation id and creates it, the next updates the same upstream incident in place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_table_api_kind_creates_then_updates_in_place_signed_in_with_oauth() {
    let upstream = Server::start();
    // The upstream sluice takes its API tokens as Bearer tokens: the token endpoint hands one out.
    let r = upstream
        .admin(upstream.http.post(upstream.url("/api/sluice/v1/accounts/admin/tokens")))
        .json(&json!({"label": "oauth"}))
        .send()
        .await
        .unwrap();
    let token: Value = r.json().await.unwrap();
    let (token_url, seen) = token_endpoint(token["result"]["token"].as_str().unwrap().to_owned()).await;
    let dir = tempfile::tempdir().unwrap();
    let forward = format!(
        "\n[forward]\nkind = \"servicenow-table\"\nurl = \"{}\"\noauth_token_url = \"{token_url}\"\n\
         client_id = \"sluice-client\"\nclient_secret_env = \"SLUICE_TEST_CLIENT_SECRET\"\ntimeout_seconds = 2\n\
         backoff_initial_seconds = 1\nbackoff_max_seconds = 1\n",
        upstream.base
    );
    std::fs::write(dir.path().join("u_incident_import.toml"), format!("{DEFINITION}{forward}")).unwrap();
    let s = Server::start_with_env(
        &["--integrations", dir.path().to_str().unwrap()],
        &[("SLUICE_TEST_CLIENT_SECRET", "client-secret-123")],
    );

    let a = post(&s, "Printer on fire", "t-1").await;
    let a_id = local_sys_id(&a);
    wait_for(&s, "delivered it", |c| c["delivered"] == 1 && c["pending"] == 0).await;
    let first = forwarded_upstream(&upstream).await;
    assert_eq!(first.len(), 1, "{first:#?}");
    assert_eq!(first[0]["correlation_id"], format!("sluice:{a_id}"));
    assert_eq!(first[0]["short_description"], "Printer on fire");
    let (status, body) =
        s.import(json!({"u_short_description": "Printer on fire, floor 3", "u_correlation_id": "t-1"})).await;
    assert_eq!((status, result0(&body)["status"].as_str()), (201, Some("updated")));
    let deadline = Instant::now() + Duration::from_secs(30);
    let after = loop {
        let now = forwarded_upstream(&upstream).await;
        if now[0]["short_description"] == "Printer on fire, floor 3" || Instant::now() > deadline {
            break now;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(after.len(), 1, "updated in place, not duplicated: {after:#?}");
    assert_eq!(after[0]["short_description"], "Printer on fire, floor 3");
    assert_eq!(after[0]["sys_id"], first[0]["sys_id"]);
    let (_, local) = s.get(&format!("/api/now/table/incident/{a_id}")).await;
    assert_eq!(local["result"]["u_upstream_number"], first[0]["number"], "{local}");

    let requests = seen.lock().unwrap().clone();
    assert_eq!(requests.len(), 1, "the token is cached for its lifetime: {requests:#?}");
    let form = &requests[0];
    assert!(form.starts_with("POST /oauth_token.do "), "{form}");
    for part in ["grant_type=client_credentials", "client_id=sluice-client", "client_secret=client-secret-123"] {
        assert!(form.contains(part), "{part} in {form}");
    }
}

/// The upstream's generic JSON hook: the forwarded object's fields by JSON Pointer.
const UPSTREAM_HOOK: &str = r#"
name = "from_sluice"
version = "1"
staging_table = "u_from_sluice"
target_table = "incident"
format = "generic-json"

[pointers]
u_key = "/correlation_id"
u_title = "/short_description"

[[fields]]
name = "u_key"
type = "string"
required = true
max_length = 80

[[fields]]
name = "u_title"
type = "string"
required = true
max_length = 160

[transform]
name = "From sluice"
coalesce = ["correlation_id"]

[[transform.field_map]]
source = "u_key"
target = "correlation_id"

[[transform.field_map]]
source = "u_title"
target = "short_description"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_json_kind_posts_the_record_to_any_json_endpoint() {
    // Any JSON endpoint: here another sluice's generic JSON sender hook.
    let hooks = tempfile::tempdir().unwrap();
    std::fs::write(hooks.path().join("from_sluice.toml"), UPSTREAM_HOOK).unwrap();
    let upstream = Server::start_with(&["--integrations", hooks.path().to_str().unwrap()]);
    let url = upstream.url("/api/sluice/v1/hooks/from_sluice");
    let dir = tempfile::tempdir().unwrap();
    let forward = format!(
        "\n[forward]\nkind = \"http-json\"\nurl = \"{url}\"\nuser = \"admin\"\npassword_env = \"{PASSWORD_ENV}\"\n\
         backoff_initial_seconds = 1\nbackoff_max_seconds = 1\ntimeout_seconds = 2\n"
    );
    std::fs::write(dir.path().join("u_incident_import.toml"), format!("{DEFINITION}{forward}")).unwrap();
    let s = start_forwarding(&dir);

    let a = post(&s, "Certificate expires in 3 days", "cert-1").await;
    let a_id = local_sys_id(&a);
    wait_for(&s, "delivered", |c| c["delivered"] == 1 && c["pending"] == 0).await;
    let (_, body) =
        s.import(json!({"u_short_description": "Certificate expires tomorrow", "u_correlation_id": "cert-1"})).await;
    assert_eq!(result0(&body)["status"], "updated", "{body}");
    wait_for(&s, "delivered the change", |c| c["delivered"] == 1 && c["pending"] == 0).await;

    let remote = forwarded_upstream(&upstream).await;
    assert_eq!(remote.len(), 1, "coalesced on sluice:{{sys_id}}: {remote:#?}");
    assert_eq!(remote[0]["correlation_id"], format!("sluice:{a_id}"));
    assert_eq!(remote[0]["short_description"], "Certificate expires tomorrow");
    // The hook's answer (an import set's rows) gives the upstream number.
    let (_, local) = s.get(&format!("/api/now/table/incident/{a_id}")).await;
    assert_eq!(local["result"]["u_upstream_number"], remote[0]["number"], "{local}");
    assert_eq!(local["result"]["u_upstream_sys_id"], remote[0]["sys_id"], "{local}");
}
