//! Account administration: the admin API and the CLI, cache invalidation (same process and
//! across processes), API tokens and the admin audit (input limits: `input_limits.rs`).

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::*;

const ACCOUNTS: &str = "/api/sluice/v1/accounts";

/// Status and JSON body (`Null` when there is none) of a request.
pub(crate) async fn call(builder: reqwest::RequestBuilder) -> (u16, Value) {
    let r = builder.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The status of a read of the incident list as `user`/`password`.
async fn status_as(s: &Server, user: &str, password: &str) -> u16 {
    s.http
        .get(s.url("/api/now/table/incident"))
        .basic_auth(user, Some(password))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// The status of an import as `user`/`password`.
async fn import_as(s: &Server, user: &str, password: &str) -> u16 {
    let r = s
        .http
        .post(s.url(&format!("/api/now/import/{STAGING}")))
        .basic_auth(user, Some(password))
        .json(&json!({"u_short_description": "from a partner"}))
        .send()
        .await
        .unwrap();
    r.status().as_u16()
}

async fn import_with_token(s: &Server, token: &str) -> u16 {
    let r = s
        .http
        .post(s.url(&format!("/api/now/import/{STAGING}")))
        .bearer_auth(token)
        .json(&json!({"u_short_description": "high volume"}))
        .send()
        .await
        .unwrap();
    r.status().as_u16()
}

/// Creates an account through the API as admin; returns the answer's `result`.
async fn create(s: &Server, body: Value) -> Value {
    let (status, body) = call(s.admin(s.http.post(s.url(ACCOUNTS))).json(&body)).await;
    assert_eq!(status, 201, "{body}");
    body["result"].clone()
}

fn cli(args: &[&str], data: &std::path::Path, stdin: Option<&str>) -> std::process::Output {
    let mut cmd = crate::backend::cli_on(data);
    cmd.arg("account").args(args).arg("--data").arg(data).env("USER", "opsperson").env_remove("SUDO_USER");
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Polls until `check` answers `want`, for at most `limit`; returns how long it took.
async fn until<F: AsyncFn() -> u16>(want: u16, limit: Duration, check: F) -> Duration {
    let started = Instant::now();
    loop {
        let got = check().await;
        if got == want {
            return started.elapsed();
        }
        assert!(started.elapsed() < limit, "still {got} after {:?}, wanted {want}", started.elapsed());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn admins_create_list_show_change_and_delete_accounts() {
    let s = Server::start();

    // Created without a password: a generated one is answered once.
    let created = create(&s, json!({"name": "alerts.bot", "roles": ["import_set_loader"]})).await;
    let password = created["password"].as_str().expect("a generated password").to_owned();
    assert_eq!(password.len(), 24);
    assert_eq!(created["name"], "alerts.bot");
    assert_eq!(created["roles"], json!(["import_set_loader"]));
    assert_eq!((created["active"].as_bool(), created["web_service_only"].as_bool()), (Some(true), Some(true)));
    assert!(is_sys_id(created["sys_id"].as_str().unwrap()));
    assert_eq!(import_as(&s, "alerts.bot", &password).await, 201);

    // With a password: none is answered; the flag is stored as given.
    let r = s
        .admin(s.http.post(s.url(ACCOUNTS)))
        .json(&json!({"name": "desk", "roles": ["itil"], "password": "desk-password-123", "web_service_only": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["location"], "/api/sluice/v1/accounts/desk");
    let body: Value = r.json().await.unwrap();
    assert!(body["result"].get("password").is_none(), "{body}");
    assert_eq!(body["result"]["web_service_only"], false);
    assert_eq!(status_as(&s, "desk", "desk-password-123").await, 200);

    // List and show never carry password hashes.
    let r = s.admin(s.http.get(s.url(ACCOUNTS))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(!text.contains("argon2") && !text.contains("hash"), "{text}");
    let list: Value = serde_json::from_str(&text).unwrap();
    let names: Vec<_> = list["result"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["admin", "alerts.bot", "desk"]);
    let (status, shown) = call(s.admin(s.http.get(s.url(&format!("{ACCOUNTS}/desk"))))).await;
    assert_eq!(status, 200);
    let shown = &shown["result"];
    assert_eq!((shown["name"].as_str(), shown["web_service_only"].as_bool()), (Some("desk"), Some(false)));
    assert_eq!(shown["created_by"], "admin");
    for f in ["created_on", "updated_on", "credentials_changed_at"] {
        assert!(is_datetime(shown[f].as_str().unwrap()), "{f}: {shown}");
    }
    assert_eq!(shown["tokens"], json!([]));
    assert!(!shown.to_string().contains("argon2"));
    // The flag is the sys_user field ServiceNow has.
    let (_, user) = s.get(&format!("/api/now/table/sys_user/{}", shown["sys_id"].as_str().unwrap())).await;
    assert_eq!(user["result"]["web_service_access_only"], "false");
    assert!(user["result"].get("password_hash").is_none() && user["result"].get("credentials_version").is_none());

    // Refusals: duplicate, bad name, unknown role, no role, weak password, unknown field.
    let (status, body) =
        call(s.admin(s.http.post(s.url(ACCOUNTS))).json(&json!({"name": "desk", "roles": ["itil"]}))).await;
    assert_eq!(status, 409);
    assert_envelope(&body, "account_exists");
    for bad in [
        json!({"name": "bad name", "roles": ["itil"]}),
        json!({"name": "x", "roles": ["root"]}),
        json!({"name": "x", "roles": []}),
        json!({"name": "x", "roles": ["itil"], "password": "short"}),
        json!({"name": "x", "roles": ["itil"], "pasword": "typo-in-the-field-name"}),
        json!({"roles": ["itil"]}),
    ] {
        let (status, body) = call(s.admin(s.http.post(s.url(ACCOUNTS))).json(&bad)).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_envelope(&body, "invalid_account");
    }
    let (status, body) = call(
        s.admin(s.http.patch(s.url(&format!("{ACCOUNTS}/desk")))).json(&json!({"password": "not-here-use-rotate"})),
    )
    .await;
    assert_eq!(status, 400);
    assert_envelope(&body, "invalid_account");

    // New roles apply to the very next request.
    let (status, body) = call(
        s.admin(s.http.patch(s.url(&format!("{ACCOUNTS}/alerts.bot"))))
            .json(&json!({"roles": ["itil"], "web_service_only": false})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["roles"], json!(["itil"]));
    assert_eq!(body["result"]["web_service_only"], false);
    assert_eq!(status_as(&s, "alerts.bot", &password).await, 200);
    assert_eq!(import_as(&s, "alerts.bot", &password).await, 403);

    // Unknown accounts.
    for (method, path) in [
        (reqwest::Method::GET, "nobody"),
        (reqwest::Method::PATCH, "nobody"),
        (reqwest::Method::DELETE, "nobody"),
        (reqwest::Method::POST, "nobody/rotate"),
        (reqwest::Method::GET, "nobody/tokens"),
        (reqwest::Method::POST, "nobody/tokens"),
    ] {
        let mut b = s.admin(s.http.request(method.clone(), s.url(&format!("{ACCOUNTS}/{path}"))));
        if method == reqwest::Method::PATCH {
            b = b.json(&json!({"active": false}));
        }
        let (status, body) = call(b).await;
        assert_eq!(status, 404, "{method} {path}: {body}");
        assert_envelope(&body, "record_not_found");
    }

    // Deleted: 401 at once, gone from the list, the user record stays.
    let r = s.admin(s.http.delete(s.url(&format!("{ACCOUNTS}/alerts.bot")))).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(status_as(&s, "alerts.bot", &password).await, 401);
    let (status, _) = call(s.admin(s.http.get(s.url(&format!("{ACCOUNTS}/alerts.bot"))))).await;
    assert_eq!(status, 404);
    let (_, users) = s.get("/api/now/table/sys_user?user_name=alerts.bot").await;
    assert_eq!(users["result"].as_array().unwrap().len(), 1);
    let r = s.admin(s.http.delete(s.url(&format!("{ACCOUNTS}/alerts.bot")))).send().await.unwrap();
    assert_eq!(r.status(), 404);

    // The last active admin cannot be disabled, demoted or deleted.
    for b in [
        s.admin(s.http.patch(s.url(&format!("{ACCOUNTS}/admin")))).json(&json!({"active": false})),
        s.admin(s.http.patch(s.url(&format!("{ACCOUNTS}/admin")))).json(&json!({"roles": ["itil"]})),
        s.admin(s.http.delete(s.url(&format!("{ACCOUNTS}/admin")))),
    ] {
        let (status, body) = call(b).await;
        assert_eq!(status, 409, "{body}");
        assert_envelope(&body, "last_admin");
    }
    assert_eq!(status_as(&s, "admin", ADMIN_PASSWORD).await, 200);
}

#[tokio::test]
async fn only_admins_reach_the_account_api_and_the_audit() {
    let s = Server::start();
    let itil = s.add_account("helpdesk", &["itil"]);
    let loader = s.add_account("loader", &["import_set_loader"]);
    let calls = [
        (reqwest::Method::GET, ACCOUNTS.to_owned(), None),
        (reqwest::Method::POST, ACCOUNTS.to_owned(), Some(json!({"name": "x", "roles": ["admin"]}))),
        (reqwest::Method::GET, format!("{ACCOUNTS}/helpdesk"), None),
        (reqwest::Method::PATCH, format!("{ACCOUNTS}/helpdesk"), Some(json!({"roles": ["admin"]}))),
        (reqwest::Method::POST, format!("{ACCOUNTS}/helpdesk/rotate"), None),
        (reqwest::Method::DELETE, format!("{ACCOUNTS}/loader"), None),
        (reqwest::Method::GET, format!("{ACCOUNTS}/helpdesk/tokens"), None),
        (reqwest::Method::POST, format!("{ACCOUNTS}/helpdesk/tokens"), None),
        (reqwest::Method::DELETE, format!("{ACCOUNTS}/helpdesk/tokens/abc"), None),
        (reqwest::Method::GET, "/api/sluice/v1/admin_audit".to_owned(), None),
    ];
    for (user, password) in [("helpdesk", itil.as_str()), ("loader", loader.as_str())] {
        for (method, path, body) in &calls {
            let mut b = s.http.request(method.clone(), s.url(path)).basic_auth(user, Some(password));
            if let Some(body) = body {
                b = b.json(body);
            }
            let (status, answer) = call(b).await;
            assert_eq!(status, 403, "{user} {method} {path}: {answer}");
            assert_envelope(&answer, "forbidden");
        }
    }
    let (status, answer) = call(s.http.get(s.url(ACCOUNTS))).await;
    assert_eq!(status, 401);
    assert_envelope(&answer, "unauthenticated");
    // Nothing changed.
    assert_eq!(status_as(&s, "helpdesk", &itil).await, 200);
    assert_eq!(import_as(&s, "loader", &loader).await, 201);
    let (_, shown) = s.get(&format!("{ACCOUNTS}/helpdesk")).await;
    assert_eq!(shown["result"]["roles"], json!(["itil"]));
}

#[tokio::test]
async fn disabling_rotating_and_table_api_changes_take_effect_at_once() {
    let s = Server::start();
    let created = create(&s, json!({"name": "partner", "roles": ["itil"], "password": "partner-password-1"})).await;
    let sys_id = created["sys_id"].as_str().unwrap().to_owned();
    // Verified once: now served from the credential cache.
    assert_eq!(status_as(&s, "partner", "partner-password-1").await, 200);
    assert_eq!(status_as(&s, "partner", "partner-password-1").await, 200);

    let patch = |body: Value| s.admin(s.http.patch(s.url(&format!("{ACCOUNTS}/partner")))).json(&body).send();
    assert_eq!(patch(json!({"active": false})).await.unwrap().status(), 200);
    let r = s.http.get(s.url("/api/now/table/incident")).basic_auth("partner", Some("partner-password-1"));
    let (status, body) = call(r).await;
    assert_eq!(status, 401, "disabled: refused at once");
    assert_envelope(&body, "unauthenticated");
    let (_, shown) = s.get(&format!("{ACCOUNTS}/partner")).await;
    assert_eq!(shown["result"]["active"], false);
    assert_eq!(patch(json!({"active": true})).await.unwrap().status(), 200);
    assert_eq!(status_as(&s, "partner", "partner-password-1").await, 200);

    // Rotated with a generated password: the old one stops at once, the new one works.
    let (status, rotated) = call(s.admin(s.http.post(s.url(&format!("{ACCOUNTS}/partner/rotate"))))).await;
    assert_eq!(status, 200, "{rotated}");
    let new_password = rotated["result"]["password"].as_str().unwrap().to_owned();
    assert_eq!(status_as(&s, "partner", "partner-password-1").await, 401);
    assert_eq!(status_as(&s, "partner", &new_password).await, 200);
    // Rotated to a chosen password: nothing is answered but the account.
    let (status, rotated) = call(
        s.admin(s.http.post(s.url(&format!("{ACCOUNTS}/partner/rotate"))))
            .json(&json!({"password": "chosen-password-2"})),
    )
    .await;
    assert_eq!(status, 200);
    assert!(rotated["result"].get("password").is_none());
    assert_eq!(status_as(&s, "partner", &new_password).await, 401);
    assert_eq!(status_as(&s, "partner", "chosen-password-2").await, 200);
    let (status, body) =
        call(s.admin(s.http.post(s.url(&format!("{ACCOUNTS}/partner/rotate")))).json(&json!({"password": "short"})))
            .await;
    assert_eq!(status, 400);
    assert_envelope(&body, "invalid_account");

    // A Table API write on the account's sys_user record also drops its cached verification.
    let r = s
        .admin(s.http.patch(s.url(&format!("/api/now/table/sys_user/{sys_id}"))))
        .json(&json!({"active": "false"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(status_as(&s, "partner", "chosen-password-2").await, 401);
}

#[tokio::test]
async fn cli_changes_reach_a_running_server_within_seconds() {
    let s = Server::start();
    let out = cli(
        &["add", "edge", "--role", "import_set_loader", "--web-service-only", "false", "--password-stdin"],
        &s.data,
        Some("edge-password-123\n"),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(import_as(&s, "edge", "edge-password-123").await, 201);

    let out = cli(&["show", "edge"], &s.data, None);
    let text = stdout(&out);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(text.contains("roles:                  import_set_loader"), "{text}");
    assert!(text.contains("web_service_only:       false"), "{text}");
    assert!(text.contains("created_by:             cli:opsperson"), "{text}");
    assert!(!text.contains("argon2"), "{text}");
    let list = stdout(&cli(&["list"], &s.data, None));
    assert!(
        list.lines().any(|l| l.starts_with("edge ") && l.contains("false") && l.contains("import_set_loader")),
        "{list}"
    );

    // Rotated from the CLI while the server holds a cached verification: the old password stops
    // working within the recheck interval (5 s), the new one works at once.
    let out = cli(&["rotate", "edge", "--password-stdin"], &s.data, Some("edge-password-456\n"));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stdout(&out).contains("Password:"));
    let took = until(401, Duration::from_secs(9), || import_as(&s, "edge", "edge-password-123")).await;
    assert!(took <= Duration::from_secs(8), "{took:?}");
    assert_eq!(import_as(&s, "edge", "edge-password-456").await, 201);

    // Disabled from the CLI: refused within seconds; enabled again: accepted.
    assert!(cli(&["disable", "edge"], &s.data, None).status.success());
    until(401, Duration::from_secs(9), || import_as(&s, "edge", "edge-password-456")).await;
    assert!(cli(&["enable", "edge"], &s.data, None).status.success());
    assert_eq!(import_as(&s, "edge", "edge-password-456").await, 201);

    // A generated password is printed once.
    let out = cli(&["rotate", "edge"], &s.data, None);
    let generated = stdout(&out).lines().find_map(|l| l.strip_prefix("Password: ")).unwrap().trim().to_owned();
    assert_eq!(import_as(&s, "edge", &generated).await, 201);

    // Deleted from the CLI.
    let out = cli(&["delete", "edge"], &s.data, None);
    assert!(out.status.success(), "{}", stderr(&out));
    until(401, Duration::from_secs(9), || import_as(&s, "edge", &generated)).await;
    assert!(!stdout(&cli(&["list"], &s.data, None)).contains("edge"));

    // Refusals name the problem and exit non-zero.
    let out = cli(&["disable", "ghost"], &s.data, None);
    assert!(!out.status.success() && stderr(&out).contains("no account ghost"), "{}", stderr(&out));
    let out = cli(&["disable", "admin"], &s.data, None);
    assert!(!out.status.success() && stderr(&out).contains("last active admin"), "{}", stderr(&out));
    let out = cli(&["rotate", "admin", "--password-stdin"], &s.data, Some("short\n"));
    assert!(!out.status.success());
    assert_eq!(status_as(&s, "admin", ADMIN_PASSWORD).await, 200);

    // Every CLI change is in the admin audit under the OS user.
    let (_, audit) = s.get("/api/sluice/v1/admin_audit").await;
    let cli_entries: Vec<_> = audit["result"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["target"] == "account:edge")
        .map(|e| (e["actor"].as_str().unwrap(), e["action"].as_str().unwrap()))
        .collect();
    assert_eq!(
        cli_entries,
        [
            ("cli:opsperson", "account.delete"),
            ("cli:opsperson", "account.rotate_password"),
            ("cli:opsperson", "account.update"),
            ("cli:opsperson", "account.update"),
            ("cli:opsperson", "account.rotate_password"),
            ("cli:opsperson", "account.create"),
        ]
    );
}

#[tokio::test]
async fn api_tokens_authenticate_until_revoked() {
    let s = Server::start();
    create(&s, json!({"name": "firehose", "roles": ["import_set_loader"]})).await;
    let tokens = format!("{ACCOUNTS}/firehose/tokens");
    let (status, made) = call(s.admin(s.http.post(s.url(&tokens))).json(&json!({"label": "alertmanager"}))).await;
    assert_eq!(status, 201, "{made}");
    let token = made["result"]["token"].as_str().unwrap().to_owned();
    let id = made["result"]["id"].as_str().unwrap().to_owned();
    assert!(token.starts_with("sluice_") && token.len() == 50, "{token}");
    assert_eq!(made["result"]["label"], "alertmanager");
    // A second token without a body.
    let (status, second) = call(s.admin(s.http.post(s.url(&tokens)))).await;
    assert_eq!(status, 201);
    let second = second["result"]["token"].as_str().unwrap().to_owned();
    assert_ne!(token, second);

    // Listed without their text.
    let (status, listed) = call(s.admin(s.http.get(s.url(&tokens)))).await;
    assert_eq!(status, 200);
    assert_eq!(listed["result"].as_array().unwrap().len(), 2);
    assert_eq!(listed["result"][0]["id"], id.as_str());
    assert_eq!(listed["result"][0]["created_by"], "admin");
    let text = listed.to_string();
    assert!(!text.contains(&token[7..]) && !text.contains("digest"), "{text}");

    // Bearer authenticates as the account, with its roles; the import is theirs.
    let r = s
        .http
        .post(s.url(&format!("/api/now/import/{STAGING}")))
        .bearer_auth(&token)
        .json(&json!({"u_short_description": "via token"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await.unwrap();
    let (_, inc) = s.get(&format!("/api/now/table/incident/{}", result0(&body)["sys_id"].as_str().unwrap())).await;
    assert_eq!(inc["result"]["sys_created_by"], "firehose");
    let r = s.http.get(s.url("/api/now/table/incident")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 403, "the account's roles apply");

    // Wrong, malformed and revoked tokens: the same 401.
    for bad in ["sluice_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "nonsense", "", &token[..20]] {
        let r = s.http.get(s.url("/api/now/table/incident")).header("Authorization", format!("Bearer {bad}"));
        let (status, body) = call(r).await;
        assert_eq!(status, 401, "{bad}");
        assert_envelope(&body, "unauthenticated");
    }
    let r = s.admin(s.http.delete(s.url(&format!("{tokens}/{id}")))).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(import_with_token(&s, &token).await, 401);
    assert_eq!(import_with_token(&s, &second).await, 201);
    let r = s.admin(s.http.delete(s.url(&format!("{tokens}/{id}")))).send().await.unwrap();
    assert_eq!(r.status(), 404);

    // A disabled account's tokens stop at once; enabled, they work again; deleted, they are gone.
    let patch = |active: bool| {
        s.admin(s.http.patch(s.url(&format!("{ACCOUNTS}/firehose")))).json(&json!({"active": active})).send()
    };
    assert_eq!(patch(false).await.unwrap().status(), 200);
    assert_eq!(import_with_token(&s, &second).await, 401);
    assert_eq!(patch(true).await.unwrap().status(), 200);
    assert_eq!(import_with_token(&s, &second).await, 201);
    let (_, shown) = s.get(&format!("{ACCOUNTS}/firehose")).await;
    assert_eq!(shown["result"]["tokens"].as_array().unwrap().len(), 1);
    assert_eq!(s.admin(s.http.delete(s.url(&format!("{ACCOUNTS}/firehose")))).send().await.unwrap().status(), 204);
    assert_eq!(import_with_token(&s, &second).await, 401);
    create(&s, json!({"name": "firehose", "roles": ["import_set_loader"]})).await;
    assert_eq!(import_with_token(&s, &second).await, 401, "a re-created account does not inherit tokens");

    // Token texts never reach the audit.
    let (_, audit) = s.get("/api/sluice/v1/admin_audit").await;
    let text = audit.to_string();
    assert!(!text.contains(&token[7..]) && !text.contains(&second[7..]), "{text}");
}

#[tokio::test]
async fn the_admin_audit_records_account_changes_and_reloads_newest_first() {
    let s = Server::start();
    create(&s, json!({"name": "aud", "roles": ["itil"], "password": "audited-password-1"})).await;
    let patch = s.admin(s.http.patch(s.url(&format!("{ACCOUNTS}/aud")))).json(&json!({"active": false}));
    assert_eq!(patch.send().await.unwrap().status(), 200);
    let rotate = s.admin(s.http.post(s.url(&format!("{ACCOUNTS}/aud/rotate"))));
    assert_eq!(rotate.send().await.unwrap().status(), 200);
    let reload = s.admin(s.http.post(s.url("/api/sluice/v1/integrations/reload")));
    assert_eq!(reload.send().await.unwrap().status(), 200);
    // A refused change leaves no entry.
    let refused = s.admin(s.http.delete(s.url(&format!("{ACCOUNTS}/admin"))));
    assert_eq!(refused.send().await.unwrap().status(), 409);

    let r = s.admin(s.http.get(s.url("/api/sluice/v1/admin_audit"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-total-count"], "5");
    let audit: Value = r.json().await.unwrap();
    let entries = audit["result"].as_array().unwrap();
    let summary: Vec<_> = entries
        .iter()
        .map(|e| (e["actor"].as_str().unwrap(), e["action"].as_str().unwrap(), e["target"].as_str().unwrap()))
        .collect();
    assert_eq!(
        summary,
        [
            ("admin", "integrations.reload", "integrations"),
            ("admin", "account.rotate_password", "account:aud"),
            ("admin", "account.update", "account:aud"),
            ("admin", "account.create", "account:aud"),
            ("system", "account.create", "account:admin"),
        ]
    );
    assert_eq!(
        entries[0]["details"],
        json!({"outcome": "reloaded", "integrations": ["u_alertmanager", "u_incident_import", "u_pagerduty"]})
    );
    assert_eq!(entries[2]["details"], json!({"active": {"from": true, "to": false}}));
    assert_eq!(entries[3]["details"], json!({"roles": ["itil"], "web_service_only": true}));
    assert!(entries.iter().all(|e| is_datetime(e["created_on"].as_str().unwrap()) && e["id"].is_i64()));
    let text = audit.to_string();
    assert!(!text.contains("audited-password-1") && !text.contains("argon2"), "{text}");

    let (status, page) =
        call(s.admin(s.http.get(s.url("/api/sluice/v1/admin_audit?sysparm_limit=2&sysparm_offset=1")))).await;
    assert_eq!(status, 200);
    let actions: Vec<_> = page["result"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["account.rotate_password", "account.update"]);
}
