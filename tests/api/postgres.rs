//! The binary on PostgreSQL (`--database`): `sluice migrate`, the account commands and `serve`
//! on one fresh database, created on the server named by `SLUICE_TEST_DATABASE_URL` and dropped
//! afterwards. Without the variable the test passes without running, except with `CI=true`.

use std::io::Write;
use std::process::Stdio;

use crate::backend::Database;
use crate::helpers::*;
use serde_json::json;

fn run(args: &[&str], stdin: &str) -> String {
    let mut child = sluice()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run sluice");
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("write stdin");
    let out = child.wait_with_output().expect("sluice output");
    assert!(out.status.success(), "sluice {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_accounts_and_serve_on_postgres() {
    let Some(db) = Database::create() else { return };
    let url = db.url.as_str();
    for _ in 0..2 {
        assert!(run(&["migrate", "--database", url], "").contains("schema up to date (PostgreSQL"));
    }

    let server = Server::start_with(&["--database", url, "--database-max-connections", "4"]);
    // Accounts made by the CLI while the server runs (after it created admin on first start).
    run(
        &["account", "add", "partner", "--role", "import_set_loader", "--password-stdin", "--database", url],
        "partner-password-1",
    );
    assert!(run(&["account", "list", "--database", url], "").contains("partner"));
    let payload = json!({"u_short_description": "Disk full", "u_correlation_id": "pg:1"});
    let (status, first) = server.import(payload).await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(
        (result0(&first)["status"].as_str(), result0(&first)["display_value"].as_str()),
        (Some("inserted"), Some("INC0010001"))
    );
    let (_, second) = server.import(json!({"u_short_description": "Disk fuller", "u_correlation_id": "PG:1"})).await;
    assert_eq!(result0(&second)["status"], "updated");
    assert_eq!(result0(&second)["sys_id"], result0(&first)["sys_id"]);
    let (status, listed) = server.get("/api/now/table/incident?sysparm_query=correlation_id=pg:1").await;
    assert_eq!(status, 200);
    assert_eq!(listed["result"].as_array().map(Vec::len), Some(1));
    assert_eq!(listed["result"][0]["short_description"], "Disk fuller");
    let r = server
        .http
        .post(server.url(&format!("/api/now/import/{STAGING}")))
        .basic_auth("partner", Some("partner-password-1"))
        .json(&json!({"u_short_description": "From the partner"}))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 201);
    // The server says where its data is.
    server.wait_for_log("data=PostgreSQL");
}
