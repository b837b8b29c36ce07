//! The rights table in docs/accounts.md is the access policy: every role, table and verb it lists
//! (and every one it leaves out) is tried against a running server.

use serde_json::{Value, json};

use crate::helpers::*;

const VERBS: [&str; 5] = ["read", "insert", "update", "delete", "import"];
/// Tables the Table API writes (the others have no record one could create for the test).
const WRITABLE: [&str; 4] = ["incident", "sys_user", "sys_user_group", "cmdb_ci"];

struct Rights {
    roles: Vec<String>,
    /// (table, for each role the verbs it may use)
    tables: Vec<(String, Vec<Vec<String>>)>,
}

/// The first `code` span of a table cell.
fn code_span(cell: &str) -> Option<String> {
    let start = cell.find('`')? + 1;
    let len = cell[start..].find('`')?;
    Some(cell[start..start + len].to_owned())
}

fn documented_rights() -> Rights {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/accounts.md")).unwrap();
    let start = doc.find("<!-- rights-table -->").expect("docs/accounts.md has the rights table");
    let end = doc.find("<!-- /rights-table -->").unwrap();
    let mut lines = doc[start..end].lines().skip(1).filter(|l| l.starts_with('|'));
    let cells =
        |line: &str| -> Vec<String> { line.trim().trim_matches('|').split('|').map(|c| c.trim().to_owned()).collect() };
    let header = cells(lines.next().unwrap());
    let roles: Vec<String> = header[1..].iter().map(|c| code_span(c).unwrap()).collect();
    let tables = lines
        .skip(1)
        .map(|line| {
            let row = cells(line);
            assert_eq!(row.len(), roles.len() + 1, "{line}");
            let verbs = row[1..]
                .iter()
                .map(|c| c.split(',').map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned).collect())
                .collect::<Vec<Vec<String>>>();
            for v in verbs.iter().flatten() {
                assert!(VERBS.contains(&v.as_str()), "unknown verb {v:?} in docs/accounts.md");
            }
            (code_span(&row[0]).unwrap(), verbs)
        })
        .collect();
    Rights { roles, tables }
}

fn new_record(table: &str, n: usize) -> Value {
    match table {
        "incident" => json!({"short_description": format!("rights {n}")}),
        "sys_user" => json!({"user_name": format!("rights.user.{n}"), "name": "Rights test"}),
        _ => json!({"name": format!("rights-{table}-{n}")}),
    }
}

#[tokio::test]
async fn the_documented_rights_are_the_rights() {
    let s = Server::start();
    let rights = documented_rights();
    assert_eq!(rights.roles, ["admin", "itil", "import_set_loader"], "every role has a column");
    let listed: Vec<&str> = rights.tables.iter().map(|(t, _)| t.as_str()).collect();
    for table in [
        "incident",
        "sys_user",
        "sys_user_group",
        "cmdb_ci",
        "sys_choice",
        "sys_audit",
        "sys_journal_field",
        "sys_import_set",
        "sys_attachment",
        STAGING,
    ] {
        assert!(listed.contains(&table), "docs/accounts.md lists no rights for {table}");
    }

    // Something in every table: an incident with a work note (audit, journal) and an attachment, an import.
    let (status, body) = s.import(json!({"u_short_description": "rights", "u_caller": "monitoring.bot"})).await;
    assert_eq!(status, 201, "{body}");
    let incident = result0(&body)["sys_id"].as_str().unwrap().to_owned();
    let r = s
        .admin(s.http.patch(s.url(&format!("/api/now/table/incident/{incident}"))))
        .json(&json!({"work_notes": "seen"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = s
        .admin(s.http.post(s.url(&format!(
            "/api/now/attachment/file?table_name=incident&table_sys_id={incident}&file_name=rights.txt"
        ))))
        .body("attached")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    let mut passwords = vec![(String::from("admin"), ADMIN_PASSWORD.to_owned())];
    for role in &rights.roles[1..] {
        let name = format!("rights.{role}");
        passwords.push((name.clone(), s.add_account(&name, &[role])));
    }

    let mut n = 0;
    let mut mismatches = Vec::new();
    for (table, per_role) in &rights.tables {
        let staging = table == STAGING;
        let (status, body) = s.get(&format!("/api/now/table/{table}?sysparm_limit=1")).await;
        assert_eq!(status, 200, "{table}: {body}");
        // Read-only tables have records from the set-up; updates and deletes of writable ones
        // get a record of their own below.
        let existing = body["result"][0]["sys_id"].as_str().unwrap_or("00000000000000000000000000000000").to_owned();
        assert!(WRITABLE.contains(&table.as_str()) || body["result"][0].is_object(), "{table} is empty");
        for ((user, password), allowed) in passwords.iter().zip(per_role) {
            for verb in VERBS {
                if verb == "import" && !staging {
                    continue; // the Import Set API addresses staging tables only
                }
                n += 1;
                let target = if WRITABLE.contains(&table.as_str()) && matches!(verb, "update" | "delete") {
                    let (status, body) = send_as(
                        &s,
                        "admin",
                        ADMIN_PASSWORD,
                        "POST",
                        &format!("/api/now/table/{table}"),
                        Some(new_record(table, n)),
                    )
                    .await;
                    assert_eq!(status, 201, "{table}: {body}");
                    body["result"]["sys_id"].as_str().unwrap().to_owned()
                } else {
                    existing.clone()
                };
                let row = json!({"u_short_description": format!("rights {n}"), "u_caller": "monitoring.bot"});
                let (method, path, body) = match verb {
                    "read" => ("GET", format!("/api/now/table/{table}?sysparm_limit=1"), None),
                    "insert" => (
                        "POST",
                        format!("/api/now/table/{table}"),
                        Some(if staging { row } else { new_record(table, n) }),
                    ),
                    "update" => (
                        "PATCH",
                        format!("/api/now/table/{table}/{target}"),
                        Some(json!({"short_description": "changed"})),
                    ),
                    "delete" => ("DELETE", format!("/api/now/table/{table}/{target}"), None),
                    _ => ("POST", format!("/api/now/import/{table}"), Some(row)),
                };
                let (status, answer) = send_as(&s, user, password, method, &path, body).await;
                let may = allowed.iter().any(|v| v == verb);
                let as_documented = if may { (200..300).contains(&status) } else { status == 403 };
                if !as_documented {
                    mismatches.push(format!("{user} {verb} {table}: documented {may}, got {status} {answer}"));
                } else if !may {
                    assert_envelope(&answer, "forbidden");
                }
            }
        }
    }
    assert!(n > 100, "every cell was tried ({n})");
    assert!(mismatches.is_empty(), "docs/accounts.md and the server disagree:\n{}", mismatches.join("\n"));
}

async fn send_as(
    s: &Server,
    user: &str,
    password: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = s.http.request(method, s.url(path)).basic_auth(user, Some(password));
    if let Some(body) = body {
        req = req.json(&body);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}
