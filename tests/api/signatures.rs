//! Signed sender requests (`[signature]` in a definition, docs/senders.md "Signed webhooks"):
//! signatures computed by the real `openssl dgst -sha256 -hmac`, not by the code under test.
//! GitHub's and Grafana's schemes, refusals with their codes, the fallback to Basic auth, the
//! lockout after repeated forgeries, and the account a signed request acts as. Both backends.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::helpers::*;

const SECRET: &str = "hook-secret-0123456789-abcdef";
const OTHER_SECRET: &str = "not-the-hook-secret-0123456789";

/// `hex(HMAC-SHA256(secret, bytes))` by the openssl command line.
fn openssl_hmac(secret: &str, bytes: &[u8]) -> String {
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-hmac", secret, "-r"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("openssl is installed");
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let hex = String::from_utf8(out.stdout).unwrap().split_whitespace().next().unwrap().to_owned();
    assert_eq!(hex.len(), 64, "{hex}");
    hex
}

/// The generic JSON definition of the sender tests under another name, with a `[signature]` table.
fn definition(name: &str, signature: &str) -> String {
    let text = crate::senders::GENERIC
        .replace("name = \"webhook\"", &format!("name = \"{name}\""))
        .replace("u_webhook", &format!("u_{name}"))
        .replace("prefix = \"webhook:\"", &format!("prefix = \"{name}:\""));
    format!("{text}\n[signature]\n{signature}\n")
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

struct Hooks {
    s: Server,
    _dir: tempfile::TempDir,
}

/// A server with these definitions and `SLUICE_TEST_HOOK_SECRET` set, and the accounts `grafana`
/// and `github` (import_set_loader).
fn start(definitions: &[(&str, String)]) -> Hooks {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hook.secret"), format!("{SECRET}\n")).unwrap();
    for (name, text) in definitions {
        std::fs::write(dir.path().join(format!("{name}.toml")), text).unwrap();
    }
    let s = Server::start_with_env(
        &["--integrations", dir.path().to_str().unwrap()],
        &[("SLUICE_TEST_HOOK_SECRET", SECRET)],
    );
    s.add_account("grafana", &["import_set_loader"]);
    s.add_account("github", &["import_set_loader"]);
    Hooks { s, _dir: dir }
}

/// POSTs `body` as given, with these headers; status, `WWW-Authenticate` and the JSON answer.
async fn send(s: &Server, name: &str, body: &[u8], headers: &[(&str, String)]) -> (u16, Option<String>, Value) {
    let mut r = s
        .http
        .post(s.url(&format!("/api/sluice/v1/hooks/{name}")))
        .header("content-type", "application/json")
        .body(body.to_vec());
    for (k, v) in headers {
        r = r.header(*k, v);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    let challenge = r.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned());
    (status, challenge, r.json().await.unwrap())
}

/// The incident made for this correlation id, with who made it.
async fn incident(s: &Server, correlation_id: &str) -> Vec<Value> {
    let (status, body) = s
        .get(&format!(
            "/api/now/table/incident?sysparm_query=correlation_id={correlation_id}&sysparm_fields=sys_id,sys_created_by,short_description"
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    body["result"].as_array().unwrap().clone()
}

fn event(id: &str) -> Vec<u8> {
    // Sent as these bytes: the white space is part of what is signed.
    format!("{{ \"event\": {{\"title\": \"Signed {id}\", \"id\": \"{id}\"}}, \"level\": 2 }}").into_bytes()
}

#[tokio::test]
async fn github_style_signatures_with_a_prefix_act_as_the_configured_account() {
    let gh = definition(
        "gh",
        "header = \"X-Hub-Signature-256\"\nprefix = \"sha256=\"\nsecret_env = \"SLUICE_TEST_HOOK_SECRET\"\naccount = \"github\"",
    );
    let Hooks { s, _dir } = start(&[("gh", gh)]);
    let body = event("g1");
    let good = format!("sha256={}", openssl_hmac(SECRET, &body));
    let (status, _, answer) = send(&s, "gh", &body, &[("X-Hub-Signature-256", good.clone())]).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["result"][0]["status"], "inserted", "{answer}");
    let made = incident(&s, "gh:g1").await;
    assert_eq!(made.len(), 1);
    assert_eq!(made[0]["sys_created_by"], "github", "the signed request acts as the configured account");
    let sys_id = made[0]["sys_id"].as_str().unwrap();
    let (_, history) = s.get(&format!("/api/now/table/sys_audit?sysparm_query=documentkey={sys_id}")).await;
    let who: Vec<&str> = history["result"].as_array().unwrap().iter().map(|r| r["user"].as_str().unwrap()).collect();
    assert!(!who.is_empty() && who.iter().all(|u| *u == "github"), "{history}");
    let (_, stats) = s.get("/api/sluice/v1/integrations/gh/stats?window=all").await;
    assert_eq!(stats["result"]["inserted"], 1, "{stats}");

    // Upper-case hex is the same signature.
    let body = event("g2");
    let upper = format!("sha256={}", openssl_hmac(SECRET, &body).to_uppercase());
    let (status, _, answer) = send(&s, "gh", &body, &[("X-Hub-Signature-256", upper)]).await;
    assert_eq!(status, 200, "{answer}");

    // The wrong secret, the body changed by one byte, the prefix left out.
    let wrong = format!("sha256={}", openssl_hmac(OTHER_SECRET, &event("g3")));
    let mut changed = event("g1");
    let at = changed.iter().position(|b| *b == b'2').unwrap();
    changed[at] = b'3';
    let bare = openssl_hmac(SECRET, &event("g3"));
    for (body, signature) in [(event("g3"), wrong), (changed, good), (event("g3"), bare)] {
        let (status, challenge, answer) = send(&s, "gh", &body, &[("X-Hub-Signature-256", signature)]).await;
        assert_eq!(status, 401, "{answer}");
        assert_envelope(&answer, "signature_invalid");
        assert!(answer["error"]["detail"].as_str().unwrap().contains("X-Hub-Signature-256"), "{answer}");
        assert_eq!(challenge.as_deref(), Some("HMAC-SHA256 realm=\"sluice\", header=\"X-Hub-Signature-256\""));
    }
    assert!(incident(&s, "gh:g3").await.is_empty());

    // Required: Basic auth alone is not enough, even an admin's.
    let r = s
        .admin(s.http.post(s.url("/api/sluice/v1/hooks/gh")))
        .header("content-type", "application/json")
        .body(event("g4"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let answer: Value = r.json().await.unwrap();
    assert_envelope(&answer, "signature_missing");
    assert!(answer["error"]["detail"].as_str().unwrap().contains("X-Hub-Signature-256"), "{answer}");
    let (_, stats) = s.get("/api/sluice/v1/integrations/gh/stats?window=all").await;
    assert_eq!(stats["result"]["unauthorized"], 4, "every refusal counts for the integration: {stats}");
}

#[tokio::test]
async fn grafana_signs_a_timestamp_with_the_body_and_stale_ones_are_refused() {
    let grafana = definition(
        "grafana",
        "header = \"X-Grafana-Alerting-Signature\"\ntimestamp_header = \"X-Grafana-Alerting-Timestamp\"\n\
         secret_file = \"hook.secret\"\naccount = \"grafana\"",
    );
    let Hooks { s, _dir } = start(&[("grafana", grafana)]);
    let signed = |body: &[u8], at: u64| {
        let mut bytes = format!("{at}:").into_bytes();
        bytes.extend_from_slice(body);
        vec![
            ("X-Grafana-Alerting-Signature", openssl_hmac(SECRET, &bytes)),
            ("X-Grafana-Alerting-Timestamp", at.to_string()),
        ]
    };
    let body = event("t1");
    let (status, _, answer) = send(&s, "grafana", &body, &signed(&body, now())).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(incident(&s, "grafana:t1").await[0]["sys_created_by"], "grafana");

    // Ten minutes old (a captured request replayed), or ahead of the clock.
    for at in [now() - 600, now() + 600] {
        let body = event("t2");
        let (status, challenge, answer) = send(&s, "grafana", &body, &signed(&body, at)).await;
        assert_eq!(status, 401, "{answer}");
        assert_envelope(&answer, "signature_stale");
        let detail = answer["error"]["detail"].as_str().unwrap();
        assert!(detail.contains("X-Grafana-Alerting-Timestamp") && detail.contains("300 seconds"), "{answer}");
        assert!(challenge.unwrap().contains("X-Grafana-Alerting-Timestamp"));
    }
    // The timestamp is signed: a fresh one on an old signature does not verify.
    let body = event("t3");
    let mut headers = signed(&body, now() - 100);
    headers[1].1 = now().to_string();
    let (status, _, answer) = send(&s, "grafana", &body, &headers).await;
    assert_eq!(status, 401, "{answer}");
    assert_envelope(&answer, "signature_invalid");
    // Without the timestamp header: missing, naming it.
    let (status, _, answer) = send(&s, "grafana", &body, &signed(&body, now())[..1]).await;
    assert_eq!(status, 401, "{answer}");
    assert_envelope(&answer, "signature_missing");
    assert!(answer["error"]["detail"].as_str().unwrap().contains("X-Grafana-Alerting-Timestamp"), "{answer}");
    assert!(incident(&s, "grafana:t2").await.is_empty() && incident(&s, "grafana:t3").await.is_empty());

    // The console's integration page shows how it signs, never the secret.
    let password = crate::console::add_interactive(&s, "boss", &["admin"]);
    let (cookie, _) = crate::console::login(&s, "boss", &password).await;
    let (status, page) = crate::console::get(&s, "/console/integrations/grafana", Some(&cookie)).await;
    assert_eq!(status, 200);
    for needle in [
        "<table id=\"signature\">",
        "<code>X-Grafana-Alerting-Signature</code> (hex HMAC-SHA256)",
        "<code>X-Grafana-Alerting-Timestamp</code>, within 300 seconds",
        "<td>grafana</td>",
        "yes: unsigned requests are refused",
    ] {
        assert!(page.contains(needle), "{needle} in {page}");
    }
    assert!(!page.contains(SECRET));
}

#[tokio::test]
async fn an_optional_signature_falls_back_to_basic_auth_but_a_bad_one_is_never_overlooked() {
    let optional =
        definition("optional", "secret_env = \"SLUICE_TEST_HOOK_SECRET\"\naccount = \"grafana\"\nrequired = false");
    let Hooks { s, _dir } = start(&[("optional", optional)]);
    let basic = |body: Vec<u8>| {
        s.admin(s.http.post(s.url("/api/sluice/v1/hooks/optional")))
            .header("content-type", "application/json")
            .body(body)
    };
    let r = basic(event("o1")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(incident(&s, "optional:o1").await[0]["sys_created_by"], "admin");
    let body = event("o2");
    let (status, _, answer) = send(&s, "optional", &body, &[("X-Sluice-Signature", openssl_hmac(SECRET, &body))]).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(incident(&s, "optional:o2").await[0]["sys_created_by"], "grafana");
    // A signature that is sent is checked, whatever else comes with it.
    let r = basic(event("o3")).header("X-Sluice-Signature", openssl_hmac(OTHER_SECRET, &event("o3"))).send().await;
    let r = r.unwrap();
    assert_eq!(r.status(), 401);
    assert_envelope(&r.json().await.unwrap(), "signature_invalid");
    // Unsigned and without credentials: as any route.
    let (status, challenge, answer) = send(&s, "optional", &event("o4"), &[]).await;
    assert_eq!(status, 401, "{answer}");
    assert_envelope(&answer, "unauthenticated");
    assert_eq!(challenge.as_deref(), Some("Basic realm=\"sluice\""));
}

#[tokio::test]
async fn repeated_forgeries_lock_the_address_out_before_verifying() {
    let hook = definition("locked", "secret_env = \"SLUICE_TEST_HOOK_SECRET\"\naccount = \"grafana\"");
    let Hooks { s, _dir } = start(&[("locked", hook)]);
    let body = event("l1");
    let forged = openssl_hmac(OTHER_SECRET, &body);
    for _ in 0..6 {
        let (status, _, answer) = send(&s, "locked", &body, &[("X-Sluice-Signature", forged.clone())]).await;
        assert_eq!(status, 401, "{answer}");
        assert_envelope(&answer, "signature_invalid");
    }
    // Locked: even the good signature is refused, as a good password would be.
    let good = openssl_hmac(SECRET, &body);
    let r = s
        .http
        .post(s.url("/api/sluice/v1/hooks/locked"))
        .header("X-Sluice-Signature", good)
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    let answer: Value = r.json().await.unwrap();
    assert_envelope(&answer, "rate_limited");
    assert_eq!(answer["error"]["limit"]["scope"], "login_address", "{answer}");
    // The address itself is locked (the first lock lasts a second), for every route.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert!(incident(&s, "locked:l1").await.is_empty());
    assert!(s.settled_logs().contains("forged or wrong signature"));
}

#[tokio::test]
async fn the_signing_account_must_exist_and_have_the_rights() {
    let ghost = definition("ghost", "secret_env = \"SLUICE_TEST_HOOK_SECRET\"\naccount = \"nobody\"");
    let reader = definition("reader", "secret_env = \"SLUICE_TEST_HOOK_SECRET\"\naccount = \"reader\"");
    let Hooks { s, _dir } = start(&[("ghost", ghost), ("reader", reader)]);
    s.add_account("reader", &["itil"]);
    let body = event("a1");
    let signature = [("X-Sluice-Signature", openssl_hmac(SECRET, &body))];
    let (status, _, answer) = send(&s, "ghost", &body, &signature).await;
    assert_eq!(status, 401, "{answer}");
    assert_envelope(&answer, "unauthenticated");
    let (status, _, answer) = send(&s, "reader", &body, &signature).await;
    assert_eq!(status, 403, "{answer}");
    assert_envelope(&answer, "forbidden");
    let logs = s.settled_logs();
    assert!(logs.contains("a signed request's account is missing or disabled"), "{logs}");
    assert!(!logs.contains(SECRET), "the secret is never logged");
}

#[test]
fn a_missing_secret_is_a_load_error_naming_it_never_the_value() {
    let dir = tempfile::tempdir().unwrap();
    let hook = definition("env", "secret_env = \"SLUICE_TEST_UNSET_HOOK_SECRET\"\naccount = \"grafana\"");
    std::fs::write(dir.path().join("env.toml"), hook).unwrap();
    let out = sluice()
        .args(["integrations", "check"])
        .arg(dir.path())
        .env_remove("SLUICE_TEST_UNSET_HOOK_SECRET")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("env.toml: signature.secret_env: environment variable SLUICE_TEST_UNSET_HOOK_SECRET is not set"),
        "{err}"
    );
    let out = sluice()
        .args(["integrations", "check"])
        .arg(dir.path())
        .env("SLUICE_TEST_UNSET_HOOK_SECRET", "short-secret")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("has 12 bytes: at least 16") && !err.contains("short-secret"), "{err}");
}
