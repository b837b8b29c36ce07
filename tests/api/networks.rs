//! Per-account source networks, the client address behind a trusted proxy, and per-account
//! rate limits.

use serde_json::{Value, json};

use crate::helpers::*;

const ACCOUNTS: &str = "/api/sluice/v1/accounts";

async fn call(builder: reqwest::RequestBuilder) -> (u16, Value) {
    let r = builder.send().await.unwrap();
    let status = r.status().as_u16();
    (status, serde_json::from_str(&r.text().await.unwrap()).unwrap_or(Value::Null))
}

/// An import as `user`, optionally with an `X-Forwarded-For` header; status and body.
async fn import_as(s: &Server, user: &str, password: &str, forwarded: Option<&str>) -> (u16, Value) {
    let mut b = s
        .http
        .post(s.url(&format!("/api/now/import/{STAGING}")))
        .basic_auth(user, Some(password))
        .json(&json!({"u_short_description": "from a partner"}));
    if let Some(f) = forwarded {
        b = b.header("x-forwarded-for", f);
    }
    call(b).await
}

async fn create(s: &Server, body: Value) -> Value {
    let (status, body) = call(s.admin(s.http.post(s.url(ACCOUNTS))).json(&body)).await;
    assert_eq!(status, 201, "{body}");
    body["result"].clone()
}

async fn patch(s: &Server, name: &str, body: Value) -> (u16, Value) {
    call(s.admin(s.http.patch(s.url(&format!("{ACCOUNTS}/{name}")))).json(&body)).await
}

fn cli(s: &Server, args: &[&str]) -> std::process::Output {
    let out = s.cli().arg("account").args(args).arg("--data").arg(&s.data).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    out
}

#[tokio::test]
async fn an_account_calls_only_from_its_networks() {
    let s = Server::start();
    let pw = "fenced-password-123";
    let created = create(
        &s,
        json!({"name": "fenced", "roles": ["import_set_loader"], "password": pw, "networks": ["10.1.2.3/8", "2001:db8::/32"]}),
    )
    .await;
    assert_eq!(created["networks"], json!(["10.0.0.0/8", "2001:db8::/32"]), "stored canonical");
    assert_eq!(created["rate"], Value::Null);

    let (status, body) = import_as(&s, "fenced", pw, None).await;
    assert_eq!(status, 403, "{body}");
    assert_envelope(&body, "network_forbidden");
    // A wrong password from outside still answers 401: networks are checked after authentication.
    assert_eq!(import_as(&s, "fenced", "wrong-password-1", None).await.0, 401);

    let (status, body) = patch(&s, "fenced", json!({"networks": ["127.0.0.1", "::1/128"]})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["networks"], json!(["127.0.0.1/32", "::1/128"]));
    assert_eq!(import_as(&s, "fenced", pw, None).await.0, 201, "the change applies at once");

    for bad in [json!({"networks": ["10.0.0.0/33"]}), json!({"networks": "10.0.0.0/8"}), json!({"networks": ["x"]})] {
        let (status, body) = patch(&s, "fenced", bad.clone()).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_envelope(&body, "invalid_account");
    }
    let (status, body) = patch(&s, "fenced", json!({"networks": []})).await;
    assert_eq!((status, body["result"]["networks"].clone()), (200, json!([])));

    // From the CLI, with the change in the admin audit.
    let pw2 = s.add_account("cli.fenced", &["import_set_loader"]);
    cli(&s, &["set", "cli.fenced", "--network", "192.0.2.0/24", "--network", "2001:db8::/32"]);
    assert_eq!(import_as(&s, "cli.fenced", &pw2, None).await.0, 403);
    let shown = String::from_utf8_lossy(&cli(&s, &["show", "cli.fenced"]).stdout).into_owned();
    assert!(shown.contains("192.0.2.0/24,2001:db8::/32; the server's default rate"), "{shown}");
    let (_, audit) = s.get("/api/sluice/v1/admin_audit").await;
    let entry = &audit["result"][0];
    assert_eq!(entry["action"], "account.update", "{audit}");
    assert_eq!(entry["details"]["networks"]["to"], json!(["192.0.2.0/24", "2001:db8::/32"]));

    let out = s
        .cli()
        .args(["account", "add", "cli.local", "--role", "import_set_loader", "--network", "127.0.0.0/8", "--data"])
        .arg(&s.data)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let pw3 = text.lines().find_map(|l| l.strip_prefix("Password: ")).unwrap().to_owned();
    assert_eq!(import_as(&s, "cli.local", &pw3, None).await.0, 201);
    let bad = s.cli().args(["account", "set", "cli.local", "--network", "10.0.0.0/40", "--data"]).arg(&s.data).output();
    assert!(!bad.unwrap().status.success());

    let metrics = s.admin(s.http.get(s.url("/metrics"))).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("sluice_network_refusals_total 2"), "{metrics}");
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_client_counts_and_nowhere_else() {
    let pw = "partner-password-123";
    let account =
        json!({"name": "partner", "roles": ["import_set_loader"], "password": pw, "networks": ["203.0.113.0/24"]});

    // No trusted proxy: the header is ignored, whatever it says.
    let s = Server::start();
    create(&s, account.clone()).await;
    assert_eq!(import_as(&s, "partner", pw, Some("203.0.113.5")).await.0, 403);
    drop(s);

    let s = Server::start_with(&["--trusted-proxy", "127.0.0.0/8", "--trusted-proxy", "::1/128"]);
    create(&s, account).await;
    assert_eq!(import_as(&s, "partner", pw, Some("203.0.113.5")).await.0, 201);
    assert_eq!(import_as(&s, "partner", pw, None).await.0, 403, "the proxy itself is not in the network");
    // A client's own header lies left of what the proxy appends: the rightmost untrusted hop wins.
    assert_eq!(import_as(&s, "partner", pw, Some("203.0.113.5, 198.51.100.1")).await.0, 403);
    assert_eq!(import_as(&s, "partner", pw, Some("198.51.100.1, 203.0.113.5")).await.0, 201);
    assert_eq!(import_as(&s, "partner", pw, Some("203.0.113.5, 127.0.0.9")).await.0, 201, "trusted hops are skipped");
    assert_eq!(import_as(&s, "partner", pw, Some("not-an-address")).await.0, 403);
    s.wait_for_log("client=203.0.113.5");
}

#[tokio::test]
async fn the_per_address_limit_and_lockout_use_the_forwarded_client() {
    let s = Server::start_with(&["--trusted-proxy", "127.0.0.1/32", "--rate-per-ip", "1", "--burst-per-ip", "2"]);
    let get =
        |client: &'static str| s.http.get(s.url("/api/now/table/incident")).header("x-forwarded-for", client).send();
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(get("198.51.100.7").await.unwrap().status().as_u16());
    }
    assert_eq!(statuses, [401, 401, 429]);
    assert_eq!(get("198.51.100.8").await.unwrap().status(), 401, "another client has its own bucket");
}

#[tokio::test]
async fn an_account_has_its_own_rate_limit() {
    let s = Server::start_with(&["--rate-per-account", "0"]);
    let pw = "capped-password-123";
    let created = create(
        &s,
        json!({"name": "capped", "roles": ["import_set_loader"], "password": pw, "rate": {"per_second": 1, "burst": 3}}),
    )
    .await;
    assert_eq!(created["rate"], json!({"per_second": 1, "burst": 3}));
    let mut statuses = Vec::new();
    let mut refused = None;
    for _ in 0..5 {
        let r = s
            .http
            .post(s.url(&format!("/api/now/import/{STAGING}")))
            .basic_auth("capped", Some(pw))
            .json(&json!({"u_short_description": "x"}))
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
        if r.status() == 429 {
            refused = Some((r.headers().clone(), r.json::<Value>().await.unwrap()));
        }
    }
    assert_eq!(&statuses[..3], [201, 201, 201]);
    assert_eq!(statuses[4], 429, "{statuses:?}");
    let (headers, body) = refused.unwrap();
    assert_envelope(&body, "rate_limited");
    assert_eq!(body["error"]["limit"]["scope"], "account");
    assert_eq!(body["error"]["limit"]["requests_per_second"], 1.0);
    assert_eq!(body["error"]["limit"]["burst"], 3.0);
    assert_eq!(headers["x-ratelimit-limit"], "3");
    assert_eq!(headers["x-ratelimit-rule"], "sluice-per-account");
    // Others keep the server's default (here: none).
    for _ in 0..10 {
        assert_eq!(s.import(json!({"u_short_description": "admin"})).await.0, 201);
    }
    // Back to the default: no limit.
    let (status, body) = patch(&s, "capped", json!({"rate": null})).await;
    assert_eq!((status, body["result"]["rate"].clone()), (200, Value::Null), "{body}");
    for _ in 0..10 {
        assert_eq!(import_as(&s, "capped", pw, None).await.0, 201);
    }
    let (status, body) = patch(&s, "capped", json!({"rate": {"per_second": 5}})).await;
    assert_eq!(status, 400, "{body}");
    cli(&s, &["set", "capped", "--rate", "2", "--burst", "4"]);
    let shown = String::from_utf8_lossy(&cli(&s, &["show", "capped"]).stdout).into_owned();
    assert!(shown.contains("any network; 2 requests/s, burst 4"), "{shown}");
}
