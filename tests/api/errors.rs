//! Bad requests get the right status and ServiceNow's JSON envelope, and the server keeps serving.

use serde_json::{Value, json};

use crate::helpers::*;

async fn send(s: &Server, req: reqwest::RequestBuilder) -> (u16, reqwest::header::HeaderMap, Value) {
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r.json().await.unwrap_or(Value::Null);
    let _ = s;
    (status, headers, body)
}

#[tokio::test]
async fn each_bad_request_gets_its_status_and_the_envelope() {
    let s = Server::start_with(&["--max-body-bytes", "2000"]);
    let import = s.url(&format!("/api/now/import/{STAGING}"));

    let (status, headers, body) = send(&s, s.http.post(&import).json(&json!({"u_short_description": "x"}))).await;
    assert_eq!(status, 401);
    assert_eq!(headers["www-authenticate"], "Basic realm=\"sluice\"");
    assert_envelope(&body, "unauthenticated");
    assert_eq!(body["error"]["message"], "User Not Authenticated");
    assert_eq!(body["error"]["detail"], "Required to provide Auth information");

    let (status, _, body) =
        send(&s, s.http.post(&import).basic_auth("admin", Some("wrong-password")).json(&json!({}))).await;
    assert_eq!(status, 401);
    assert_envelope(&body, "unauthenticated");
    let (status, _, body) =
        send(&s, s.http.get(s.url("/api/now/table/incident")).basic_auth("nobody", Some("whatever-pass"))).await;
    assert_eq!(status, 401, "an unknown account looks like a wrong password");
    assert_envelope(&body, "unauthenticated");

    let (status, _, body) = send(&s, s.admin(s.http.post(s.url("/api/now/import/u_nope"))).json(&json!({}))).await;
    assert_eq!(status, 400);
    assert_envelope(&body, "invalid_table");
    assert_eq!(body["error"]["message"], "Invalid table u_nope");

    let (status, _, body) = send(&s, s.admin(s.http.get(s.url("/api/now/table/u_nope")))).await;
    assert_eq!(status, 400, "ServiceNow: 400 Invalid table");
    assert_envelope(&body, "invalid_table");

    let (status, _, body) =
        send(&s, s.admin(s.http.get(s.url(&format!("/api/now/table/incident/{}", "0".repeat(32)))))).await;
    assert_eq!(status, 404);
    assert_envelope(&body, "record_not_found");
    assert_eq!(body["error"]["message"], "No Record found");

    let json_req =
        |body: &'static str| s.admin(s.http.post(&import)).header("content-type", "application/json").body(body);
    let (status, _, body) = send(&s, json_req("{\"u_short_description\": ")).await;
    assert_eq!(status, 400);
    assert_envelope(&body, "malformed_json");
    let (status, _, body) = send(&s, json_req("[{\"u_short_description\": \"x\"}]")).await;
    assert_eq!(status, 400);
    assert_envelope(&body, "body_not_object");

    let big = format!("{{\"u_description\": \"{}\"}}", "x".repeat(5000));
    let (status, _, body) =
        send(&s, s.admin(s.http.post(&import)).header("content-type", "application/json").body(big)).await;
    assert_eq!(status, 413);
    assert_envelope(&body, "body_too_large");

    let (status, _, body) =
        send(&s, s.admin(s.http.post(&import)).header("content-type", "text/plain").body("{}")).await;
    assert_eq!(status, 415);
    assert_envelope(&body, "unsupported_media_type");

    let (status, _, body) = send(&s, s.admin(s.http.delete(&import))).await;
    assert_eq!(status, 405);
    assert_envelope(&body, "method_not_allowed");

    let (status, _, body) = send(&s, s.admin(s.http.get(s.url("/api/now/nothing/here")))).await;
    assert_eq!(status, 400);
    assert_envelope(&body, "invalid_uri");

    // Still serving, and the request id in the body matches the header.
    let r = s.http.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let (status, body) = s.import(json!({"u_short_description": "still here"})).await;
    assert_eq!((status, result0(&body)["status"].as_str()), (201, Some("inserted")));
    let r = s.http.get(s.url("/api/now/table/incident")).send().await.unwrap();
    let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["request_id"], id);
}

#[tokio::test]
async fn the_v1_and_v2_prefixes_answer_the_same() {
    let s = Server::start();
    for prefix in ["/api/now/v1", "/api/now/v2"] {
        let r = s
            .admin(s.http.post(s.url(&format!("{prefix}/import/{STAGING}"))))
            .json(&json!({"u_short_description": prefix}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let r = s.admin(s.http.get(s.url(&format!("{prefix}/table/incident")))).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
}

#[tokio::test]
async fn rate_limits_answer_429_naming_the_limit_and_scope() {
    let s = Server::start_with(&["--rate-per-account", "2", "--burst-per-account", "3"]);
    let mut statuses = Vec::new();
    let mut last = None;
    for _ in 0..5 {
        let r = s.admin(s.http.get(s.url("/api/now/table/incident?sysparm_limit=1"))).send().await.unwrap();
        statuses.push(r.status().as_u16());
        if r.status() == 429 {
            last = Some((r.headers().clone(), r.json::<Value>().await.unwrap()));
        }
    }
    assert_eq!(&statuses[..3], [200, 200, 200]);
    assert_eq!(statuses[4], 429, "{statuses:?}");
    let (headers, body) = last.unwrap();
    assert_envelope(&body, "rate_limited");
    assert_eq!(body["error"]["limit"]["scope"], "account");
    assert_eq!(body["error"]["limit"]["burst"], 3.0);
    assert!(headers["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    assert_eq!(headers["x-ratelimit-rule"], "sluice-per-account");
    assert!(headers.contains_key("x-ratelimit-limit") && headers.contains_key("x-ratelimit-reset"));
    // Another account has its own bucket; health checks are never limited.
    let pw = s.add_account("second", &["itil"]);
    let r = s.http.get(s.url("/api/now/table/incident")).basic_auth("second", Some(&pw)).send().await.unwrap();
    assert_eq!(r.status(), 200);

    let s = Server::start_with(&["--rate-per-ip", "1", "--burst-per-ip", "2"]);
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(s.http.get(s.url("/api/now/table/incident")).send().await.unwrap().status().as_u16());
    }
    assert_eq!(statuses, [401, 401, 429, 429], "the address limit comes before authentication");
    assert_eq!(s.http.get(s.url("/healthz")).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn repeated_failed_logins_lock_the_address_until_the_lock_expires() {
    let s = Server::start();
    let get = |user: &str, pw: &str| s.http.get(s.url("/api/now/table/incident")).basic_auth(user, Some(pw)).send();
    for _ in 0..5 {
        assert_eq!(get("admin", "wrong-password").await.unwrap().status(), 401);
    }
    assert_eq!(get("admin", "wrong-password").await.unwrap().status(), 401, "the sixth failure sets the lock");
    let r = get("admin", ADMIN_PASSWORD).await.unwrap();
    assert_eq!(r.status(), 429, "even the right password waits out the address's lock");
    assert_eq!(r.headers()["x-ratelimit-rule"], "sluice-login-lockout");
    let body: Value = r.json().await.unwrap();
    assert_envelope(&body, "rate_limited");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(get("admin", ADMIN_PASSWORD).await.unwrap().status(), 200, "the first lock lasts a second");
    let text = s.admin(s.http.get(s.url("/metrics"))).send().await.unwrap().text().await.unwrap();
    // The address is locked, never the account (brute_force.rs: other addresses get in).
    assert!(text.contains("sluice_login_lockouts_total 1"), "the address only: {text}");
}
