//! `sluice export` / `sluice import` / `sluice backup`: a SQLite deployment with history (imports
//! that coalesce, Table API changes with journal entries, an account with a token, an error row)
//! moved to a new database, read back through the API of a server on it; and an online copy
//! taken while the server writes. Exports and backups read SQLite files, so the servers here run
//! on SQLite whatever `SLUICE_TEST_BACKEND` says. The PostgreSQL test needs
//! `SLUICE_TEST_DATABASE_URL` (a fresh database is created per test); without it the test does
//! not run, except with `CI=true`.

use std::path::Path;
use std::process::Output;

use crate::backend::Database;
use crate::helpers::*;
use serde_json::{Value, json};

const ACCOUNTS: &str = "/api/sluice/v1/accounts";

fn run(args: &[&std::ffi::OsStr]) -> Output {
    sluice().args(args).output().expect("run sluice")
}

fn succeed(args: &[&std::ffi::OsStr]) -> String {
    let out = run(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "sluice {args:?} failed: {stderr}");
    stderr
}

/// What the source server has, to compare with the target's.
struct Deployment {
    first: String,
    error_row: String,
    partner_password: String,
    token: String,
    attachment: String,
}

/// An attachment's content: every byte value, NUL and invalid UTF-8 included.
const ATTACHED: &[u8] = b"\x00\x01\xff\xfe binary \x89PNG\r\n\x1a\n\x00 end";

async fn call(s: &Server, builder: reqwest::RequestBuilder) -> (u16, Value) {
    let r = s.admin(builder).send().await.expect("request");
    (r.status().as_u16(), r.json().await.expect("JSON"))
}

/// Imports that insert and coalesce, a Table API change with a work note, an error row, an
/// account with a token.
async fn build_history(s: &Server) -> Deployment {
    let (status, first) = s.import(json!({"u_short_description": "Disk full", "u_correlation_id": "mv:1"})).await;
    assert_eq!((status, result0(&first)["display_value"].as_str()), (201, Some("INC0010001")), "{first}");
    let (_, again) = s.import(json!({"u_short_description": "Disk fuller", "u_correlation_id": "mv:1"})).await;
    assert_eq!(result0(&again)["status"], "updated");
    let (_, second) = s.import(json!({"u_short_description": "Printer", "u_correlation_id": "mv:2"})).await;
    assert_eq!(result0(&second)["display_value"], "INC0010002");
    let first = result0(&first)["sys_id"].as_str().unwrap().to_owned();
    let patch = s
        .http
        .patch(s.url(&format!("/api/now/table/incident/{first}")))
        .json(&json!({"work_notes": "Called the ISP", "urgency": "1"}));
    assert_eq!(call(s, patch).await.0, 200);
    let (_, bad) = s.import(json!({"u_impact": "9", "u_description": "no summary"})).await;
    assert_eq!(result0(&bad)["status"], "error");
    let error_row = result0(&bad)["staging_sys_id"].as_str().unwrap().to_owned();
    let partner_password = s.add_account("partner", &["import_set_loader"]);
    let tokens = s.http.post(s.url(&format!("{ACCOUNTS}/partner/tokens"))).json(&json!({"label": "alerts"}));
    let (status, made) = call(s, tokens).await;
    assert_eq!(status, 201, "{made}");
    let token = made["result"]["token"].as_str().unwrap().to_owned();
    let upload = s
        .http
        .post(s.url(&format!("/api/now/attachment/file?table_name=incident&table_sys_id={first}&file_name=dump.bin")))
        .body(ATTACHED.to_vec());
    let (status, attached) = call(s, upload).await;
    assert_eq!(status, 201, "{attached}");
    let attachment = attached["result"]["sys_id"].as_str().unwrap().to_owned();
    Deployment { first, error_row, partner_password, token, attachment }
}

/// A list through the Table API, sorted by sys_id (backends may order ties differently), with
/// the server's address taken out of reference links.
async fn list(s: &Server, path: &str) -> Vec<Value> {
    let (status, body) = s.get(path).await;
    assert_eq!(status, 200, "{path}: {body}");
    let body: Value = serde_json::from_str(&body.to_string().replace(&s.base, "BASE")).unwrap();
    let mut rows = body["result"].as_array().expect("a result list").clone();
    rows.sort_by(|a, b| a["sys_id"].as_str().cmp(&b["sys_id"].as_str()));
    rows
}

async fn snapshot(s: &Server, d: &Deployment) -> Vec<Vec<Value>> {
    let mut out = Vec::new();
    for path in [
        "/api/now/table/incident".to_owned(),
        format!("/api/now/table/sys_audit?documentkey={}", d.first),
        format!("/api/now/table/sys_journal_field?element_id={}", d.first),
        format!("/api/now/table/{STAGING}"),
        "/api/now/table/sys_user?sysparm_fields=sys_id,user_name,roles,active".to_owned(),
        "/api/now/table/sys_import_set".to_owned(),
        "/api/now/attachment".to_owned(),
    ] {
        out.push(list(s, &path).await);
    }
    out
}

/// The target serves what the source had, its account and token work, numbering continues.
async fn check_target(target: &Server, d: &Deployment, before: &[Vec<Value>]) {
    let after = snapshot(target, d).await;
    let names = ["incident", "sys_audit", "sys_journal_field", STAGING, "sys_user", "sys_import_set", "sys_attachment"];
    for ((name, b), a) in names.iter().zip(before).zip(&after) {
        assert!(!b.is_empty(), "{name}: the source has rows");
        assert_eq!(a, b, "{name} differs after the move");
    }
    assert_eq!(after[2][0]["value"], "Called the ISP");
    assert!(after[1].iter().any(|r| r["fieldname"] == "urgency" && r["newvalue"] == "1"), "{:?}", after[1]);
    let (status, row) = target.get(&format!("/api/now/import/{STAGING}/{}", d.error_row)).await;
    assert_eq!(status, 200, "{row}");
    assert_eq!(row["payload"], r#"{"u_impact":"9","u_description":"no summary"}"#);
    let file = target.url(&format!("/api/now/attachment/{}/file", d.attachment));
    let content = target.admin(target.http.get(file)).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(content.as_ref(), ATTACHED, "attachment content moves byte for byte");

    // The account logs in with its old password and its old token.
    let r = target
        .http
        .post(target.url(&format!("/api/now/import/{STAGING}")))
        .basic_auth("partner", Some(&d.partner_password))
        .json(&json!({"u_short_description": "After the move", "u_correlation_id": "mv:3"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await.unwrap();
    assert_eq!(result0(&body)["display_value"], "INC0010003", "numbering continues: {body}");
    let r = target
        .http
        .post(target.url(&format!("/api/now/import/{STAGING}")))
        .bearer_auth(&d.token)
        .json(&json!({"u_short_description": "Printer again", "u_correlation_id": "mv:2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await.unwrap();
    assert_eq!(result0(&body)["status"], "updated", "coalesces on the moved incident: {body}");
    // Staging rows continue their import set's numbering.
    let rows = list(target, &format!("/api/now/table/{STAGING}?sysparm_fields=sys_id,sys_import_row")).await;
    let mut numbers: Vec<String> = rows.iter().map(|r| r["sys_import_row"].as_str().unwrap().to_owned()).collect();
    numbers.sort();
    numbers.dedup();
    assert_eq!(numbers.len(), rows.len(), "staging row numbers are unique: {rows:?}");
}

/// Exports a running server's folder to `dump`; returns the command's stderr.
fn export(data: &Path, dump: &Path) -> String {
    succeed(&["export".as_ref(), "--data".as_ref(), data.as_os_str(), "--output".as_ref(), dump.as_os_str()])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_deployment_moves_to_postgres_with_its_history() {
    let Some(db) = Database::create() else { return };
    let source = Server::start_sqlite();
    let d = build_history(&source).await;
    let before = snapshot(&source, &d).await;
    let tmp = tempfile::tempdir().unwrap();
    let dump = tmp.path().join("sluice.dump");
    let said = export(&source.data, &dump);
    assert!(said.contains("incident: 2") && said.contains(&format!("{STAGING}: 4")), "{said}");

    let said = succeed(&["import".as_ref(), "--database".as_ref(), db.url.as_ref(), dump.as_os_str()]);
    assert!(said.contains("incident: 2") && said.contains("next INC number: 10003"), "{said}");
    // A second import into the same database is refused: it is no longer empty.
    let out = run(&["import".as_ref(), "--database".as_ref(), db.url.as_ref(), dump.as_os_str()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not empty"));

    let target = Server::start_with(&["--database", &db.url]);
    check_target(&target, &d, &before).await;
}

#[tokio::test]
async fn a_dump_round_trips_into_a_new_sqlite_folder() {
    let source = Server::start_sqlite();
    let d = build_history(&source).await;
    let before = snapshot(&source, &d).await;
    let tmp = tempfile::tempdir().unwrap();
    let dump = tmp.path().join("sluice.dump");
    export(&source.data, &dump);
    // The dump is JSON lines: a header naming its format, then rows, then the count.
    let text = std::fs::read_to_string(&dump).unwrap();
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!((lines[0]["format"].as_str(), lines[0]["format_version"].as_u64()), (Some("sluice-dump"), Some(1)));
    assert_eq!(lines.last().unwrap()["end"].as_u64(), Some(lines.len() as u64 - 2));
    assert!(text.contains(r#"{"base64":"#), "raw payloads travel as base64");

    let data = tmp.path().join("moved");
    let said = succeed(&["import".as_ref(), "--data".as_ref(), data.as_os_str(), dump.as_os_str()]);
    assert!(said.contains("imported"), "{said}");
    let target = Server::start_on_sqlite(&data);
    check_target(&target, &d, &before).await;
}

#[tokio::test]
async fn import_refuses_a_truncated_dump_and_a_used_database() {
    let source = Server::start_sqlite();
    source.import(json!({"u_short_description": "Disk full"})).await;
    let tmp = tempfile::tempdir().unwrap();
    let dump = tmp.path().join("sluice.dump");
    export(&source.data, &dump);
    let text = std::fs::read_to_string(&dump).unwrap();
    let cut = tmp.path().join("cut.dump");
    std::fs::write(&cut, &text[..text.trim_end().rfind('\n').unwrap() + 1]).unwrap();
    let fresh = tmp.path().join("fresh");
    let out = run(&["import".as_ref(), "--data".as_ref(), fresh.as_os_str(), cut.as_os_str()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("truncated"), "{}", String::from_utf8_lossy(&out.stderr));
    // Nothing was loaded, so the full dump goes in afterwards.
    succeed(&["import".as_ref(), "--data".as_ref(), fresh.as_os_str(), dump.as_os_str()]);

    let out = run(&["import".as_ref(), "--data".as_ref(), source.data.as_os_str(), dump.as_os_str()]);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("not empty"), "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_copies_a_database_while_the_server_writes() {
    let source = Server::start_sqlite();
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("backup.db");
    let writing = {
        let (http, url) = (source.http.clone(), source.url(&format!("/api/now/import/{STAGING}")));
        tokio::spawn(async move {
            let mut created = 0;
            for i in 0..300 {
                let r = http
                    .post(&url)
                    .basic_auth("admin", Some(ADMIN_PASSWORD))
                    .json(&json!({"u_short_description": format!("ticket {i}")}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 201);
                created += 1;
            }
            created
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let said = succeed(&["backup".as_ref(), "--data".as_ref(), source.data.as_os_str(), copy.as_os_str()]);
    assert!(said.contains("backed up"), "{said}");
    assert_eq!(writing.await.unwrap(), 300);
    // A second backup to the same file is refused rather than overwriting it.
    assert!(!run(&["backup".as_ref(), "--data".as_ref(), source.data.as_os_str(), copy.as_os_str()]).status.success());

    let conn = rusqlite::Connection::open(&copy).unwrap();
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok");
    let copied: i64 = conn.query_row("SELECT count(*) FROM incident", [], |r| r.get(0)).unwrap();
    assert!((1..=300).contains(&copied), "a snapshot taken midway: {copied}");
    drop(conn);

    // Restore: the copy becomes sluice.db of a new folder, and a server starts on it.
    let restored = tmp.path().join("restored");
    std::fs::create_dir_all(&restored).unwrap();
    std::fs::copy(&copy, restored.join("sluice.db")).unwrap();
    let target = Server::start_on_sqlite(&restored);
    let (status, body) = target.get("/api/now/table/incident?sysparm_fields=number").await;
    assert_eq!(status, 200);
    assert_eq!(body["result"].as_array().unwrap().len() as i64, copied);
    let (_, next) = target.import(json!({"u_short_description": "after the restore"})).await;
    assert_eq!(result0(&next)["status"], "inserted");
}
