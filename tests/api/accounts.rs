//! Accounts and roles: the first-start admin, the CLI, and who may do what.

use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn roles_decide_what_each_account_may_do() {
    let s = Server::start();
    let loader = s.add_account("integration.alerts", &["import_set_loader"]);
    let itil = s.add_account("helpdesk", &["itil"]);
    let import = s.url(&format!("/api/now/import/{STAGING}"));

    let r = s
        .http
        .post(&import)
        .basic_auth("integration.alerts", Some(&loader))
        .json(&json!({"u_short_description": "from the loader"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await.unwrap();
    let sys_id = result0(&body)["sys_id"].as_str().unwrap().to_owned();
    let (_, inc) = s.get(&format!("/api/now/table/incident/{sys_id}")).await;
    assert_eq!(inc["result"]["sys_created_by"], "integration.alerts");

    let r = s
        .http
        .get(s.url("/api/now/table/incident"))
        .basic_auth("integration.alerts", Some(&loader))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "import_set_loader only uses the Import Set API");
    let body: Value = r.json().await.unwrap();
    assert_envelope(&body, "forbidden");

    let r = s
        .http
        .get(s.url(&format!("/api/now/table/incident/{sys_id}")))
        .basic_auth("helpdesk", Some(&itil))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "itil reads incidents");
    let r = s.http.get(s.url("/api/now/table/sys_audit")).basic_auth("helpdesk", Some(&itil)).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let r = s
        .http
        .post(&import)
        .basic_auth("helpdesk", Some(&itil))
        .json(&json!({"u_short_description": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "itil cannot post to a staging table");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["detail"], "ACL Exception Insert Failed due to security constraints");
}

#[tokio::test]
async fn the_cli_lists_accounts_refuses_duplicates_and_unknown_roles() {
    let s = Server::start();
    s.add_account("partner.desk", &["import_set_loader", "itil"]);
    let out = s.cli().args(["account", "list", "--data"]).arg(&s.data).output().unwrap();
    let list = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(list.lines().any(|l| l.starts_with("admin ") && l.contains("admin")), "{list}");
    assert!(list.lines().any(|l| l.starts_with("partner.desk") && l.contains("itil,import_set_loader")), "{list}");

    let again =
        s.cli().args(["account", "add", "partner.desk", "--role", "itil", "--data"]).arg(&s.data).output().unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    let bad = s.cli().args(["account", "add", "x", "--role", "root", "--data"]).arg(&s.data).output().unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown role"));

    // A generated password is printed once and works.
    let out = s.cli().args(["account", "add", "gen.user", "--role", "admin", "--data"]).arg(&s.data).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let password = text.lines().find_map(|l| l.strip_prefix("Password: ")).unwrap().trim().to_owned();
    let r = s.http.get(s.url("/api/now/table/incident")).basic_auth("gen.user", Some(&password)).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn the_first_start_prints_a_generated_admin_password_once() {
    let tmp = tempfile::tempdir().unwrap();
    // On PostgreSQL the store is the folder's database: the account lives there.
    let _database = crate::backend::database_for(tmp.path());
    let run = || {
        let mut child = crate::backend::cli_on(tmp.path())
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(tmp.path())
            .env_remove("SLUICE_ADMIN_PASSWORD")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        use std::io::BufRead;
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let mut seen = Vec::new();
        for line in lines.by_ref() {
            let line = line.unwrap();
            let done = line.starts_with("sluice listening on ");
            seen.push(line);
            if done {
                break;
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        seen
    };
    let first = run();
    let password_line = first.iter().find(|l| l.contains("Created account admin with password: ")).expect("printed");
    let password = password_line.rsplit(' ').next().unwrap();
    assert_eq!(password.len(), 24);
    let second = run();
    assert!(!second.iter().any(|l| l.contains("password")), "{second:?}");
}

#[tokio::test]
async fn senders_see_their_own_submissions_with_every_error_and_nothing_of_others() {
    let s = Server::start();
    let a = s.add_account("sender.a", &["import_set_loader"]);
    let b = s.add_account("sender.b", &["import_set_loader"]);
    let import = s.url(&format!("/api/now/import/{STAGING}"));
    let post = |user: &'static str, pw: &str, body: Value| {
        s.http.post(&import).basic_auth(user, Some(pw.to_owned())).json(&body).send()
    };
    post("sender.a", &a, json!({"u_short_description": "good one"})).await.unwrap();
    post("sender.a", &a, json!({"u_impact": "7"})).await.unwrap();
    post("sender.b", &b, json!({"u_short_description": "b's"})).await.unwrap();

    let r = s.http.get(s.url("/api/sluice/v1/submissions")).basic_auth("sender.a", Some(&a)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let rows = body["result"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{body}");
    let failed = rows.iter().find(|r| r["state"] == "error").unwrap();
    let codes: Vec<&str> = failed["errors"].as_array().unwrap().iter().map(|e| e["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["field_required", "invalid_choice"]);
    let ok = rows.iter().find(|r| r["state"] == "inserted").unwrap();
    assert_eq!(ok["number"], "INC0010001");
    assert!(!body.to_string().contains("b's"));

    let r = s
        .http
        .get(s.url("/api/sluice/v1/submissions?state=error"))
        .basic_auth("sender.a", Some(&a))
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["result"].as_array().unwrap().len(), 1);
}
