//! Bulk intake end to end: `insertMultiple` (asynchronous and sync), the progress endpoint, a
//! crash in the middle of background processing, and the retention purge (replays:
//! `bulk_replay.rs`).

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::*;

/// POSTs `{"records": ...}` to a staging table's insertMultiple (with `query`, e.g. `?x=y`).
pub(crate) async fn post_bulk(
    s: &Server,
    prefix: &str,
    table: &str,
    query: &str,
    body: &Value,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let r = s
        .admin(s.http.post(s.url(&format!("{prefix}/import/{table}/insertMultiple{query}"))))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.json().await.unwrap())
}

pub(crate) async fn progress(s: &Server, id: &str, query: &str) -> Value {
    let (status, body) = s.get(&format!("/api/sluice/v1/import_sets/{id}{query}")).await;
    assert_eq!(status, 200, "{body}");
    body["result"].clone()
}

/// Polls the progress until no row is pending.
pub(crate) async fn wait_done(s: &Server, id: &str, limit: Duration) -> Value {
    let started = Instant::now();
    loop {
        let p = progress(s, id, "?limit=0").await;
        if p["pending"] == 0 {
            return p;
        }
        assert!(started.elapsed() < limit, "still pending after {limit:?}: {p}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How many records a Table API list matches (`X-Total-Count`).
pub(crate) async fn count(s: &Server, path: &str) -> u64 {
    let sep = if path.contains('?') { '&' } else { '?' };
    let r = s.admin(s.http.get(s.url(&format!("{path}{sep}sysparm_limit=1")))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.headers()["x-total-count"].to_str().unwrap().parse().unwrap()
}

fn alert(i: usize) -> Value {
    json!({
        "u_short_description": format!("Bulk alert {i}"),
        "u_correlation_id": format!("bulk:{i}"),
        "u_caller": "monitoring.bot",
        "u_impact": "2",
        "u_urgency": (i % 3 + 1).to_string(),
    })
}

#[tokio::test]
async fn ten_thousand_records_become_ten_thousand_incidents() {
    let s = Server::start();
    let records: Vec<Value> = (0..10_000).map(alert).collect();
    let started = Instant::now();
    let (status, headers, body) = post_bulk(&s, "/api/now", STAGING, "", &json!({ "records": records })).await;
    let staged = started.elapsed();
    assert_eq!(status, 201, "{body}");
    // ServiceNow's asynchronous answer: the two ids, nothing else.
    let keys: Vec<&str> = body.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, vec!["import_set_id", "multi_import_set_id"]);
    let id = body["import_set_id"].as_str().unwrap();
    assert!(is_sys_id(id) && is_sys_id(body["multi_import_set_id"].as_str().unwrap()), "{body}");
    assert_eq!(headers["location"].to_str().unwrap(), s.url(&format!("/api/sluice/v1/import_sets/{id}")));

    let done = wait_done(&s, id, Duration::from_secs(600)).await;
    let took = started.elapsed();
    eprintln!(
        "insertMultiple of 10,000 records: staged in {:.2} s, all processed in {:.2} s ({:.0} rows/s)",
        staged.as_secs_f64(),
        took.as_secs_f64(),
        10_000.0 / took.as_secs_f64()
    );
    assert_eq!(
        (&done["total"], &done["inserted"], &done["updated"], &done["error"], &done["pending"]),
        (&json!(10_000), &json!(10_000), &json!(0), &json!(0), &json!(0)),
        "{done}"
    );
    assert_eq!(
        (&done["state"], &done["complete"], &done["mode"]),
        (&json!("processed"), &json!(true), &json!("asynchronous"))
    );
    assert_eq!(done["number"], "ISET0010001");
    assert_eq!(count(&s, "/api/now/table/incident").await, 10_000);
    assert_eq!(count(&s, "/api/now/table/incident?correlation_id=bulk:9999").await, 1);

    // Per-row outcomes, paged; the progress is also found by the set's number.
    let page = progress(&s, "ISET0010001", "?limit=2&offset=9998").await;
    let rows = page["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!((&rows[0]["row"], &rows[1]["row"]), (&json!(9998), &json!(9999)));
    let last = &rows[1];
    assert_eq!((&last["state"], &last["integration_version"]), (&json!("inserted"), &json!("1")));
    let target = last["target_sys_id"].as_str().unwrap();
    let (_, inc) = s.get(&format!("/api/now/table/incident/{target}")).await;
    assert_eq!(inc["result"]["correlation_id"], "bulk:9999");
    assert_eq!(inc["result"]["number"], last["display_value"]);
    assert_eq!(inc["result"]["urgency"], "1");
    assert_eq!(inc["result"]["sys_created_by"], "admin");
    let (_, row) = s.get(&format!("/api/now/import/{STAGING}/{}", last["staging_sys_id"].as_str().unwrap())).await;
    assert_eq!(row["result"][0]["status"], "inserted");
    let payload: Value = serde_json::from_str(row["payload"].as_str().unwrap()).unwrap();
    assert_eq!(payload, alert(9999), "each record's own payload is kept");
    // The set itself, as the Table API shows it.
    let (_, set) = s.get(&format!("/api/now/table/sys_import_set/{id}")).await;
    assert_eq!((&set["result"]["state"], &set["result"]["mode"]), (&json!("processed"), &json!("asynchronous")));
}

#[tokio::test]
async fn a_kill_midway_through_processing_loses_nothing_and_does_nothing_twice() {
    const N: usize = 1_000;
    // Small batches with a pause, so the kill lands in the middle.
    let mut s = Server::start_with(&["--bulk-batch-rows", "20", "--bulk-pause-ms", "50"]);
    let records: Vec<Value> = (0..N)
        .map(|i| json!({"u_short_description": format!("crash {i}"), "u_correlation_id": format!("crash:{i}")}))
        .collect();
    let (status, _, body) = post_bulk(&s, "/api/now", STAGING, "", &json!({ "records": records })).await;
    assert_eq!(status, 201, "{body}");
    let id = body["import_set_id"].as_str().unwrap().to_owned();
    let started = Instant::now();
    loop {
        let p = progress(&s, &id, "?limit=0").await;
        assert!(p["pending"].as_u64().unwrap() > 0, "processed before the kill: {p}");
        if p["inserted"].as_u64().unwrap() >= 100 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "no progress: {p}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    s.kill();

    let tmp = s.take_tmp();
    let data = s.data.clone();
    drop(s);
    // Read from the database itself: a server would resume the work at once.
    let db_count = |sql: &str| crate::backend::scalar(&data, sql);
    if !crate::backend::is_postgres() {
        let db = rusqlite::Connection::open(data.join("sluice.db")).unwrap();
        let check: String = db.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
        assert_eq!(check, "ok");
    }
    // Nothing half done: rows are pending or processed with their incident, never in between.
    let state = |s: &str| db_count(&format!("SELECT COUNT(*) FROM {STAGING} WHERE sys_import_state = '{s}'"));
    let (pending, inserted) = (state("pending"), state("inserted"));
    assert!(pending > 0 && inserted >= 100, "pending {pending}, inserted {inserted}");
    assert_eq!(pending + inserted, N as i64);
    assert_eq!(db_count("SELECT COUNT(*) FROM incident"), inserted);
    let orphans = db_count(&format!(
        "SELECT COUNT(*) FROM {STAGING} WHERE sys_import_state = 'inserted'
         AND sys_target_sys_id NOT IN (SELECT sys_id FROM incident)"
    ));
    assert_eq!(orphans, 0);

    // After the restart the worker finds the pending rows and finishes them.
    let s = Server::start_on(&data, &[]);
    let done = wait_done(&s, &id, Duration::from_secs(300)).await;
    assert_eq!((&done["inserted"], &done["error"], &done["total"]), (&json!(N), &json!(0), &json!(N)), "{done}");
    assert_eq!(done["state"], "processed");
    let (incidents, distinct) =
        (db_count("SELECT COUNT(*) FROM incident"), db_count("SELECT COUNT(DISTINCT correlation_id) FROM incident"));
    assert_eq!((incidents, distinct), (N as i64, N as i64), "one incident per row");
    for i in [0, N / 2, N - 1] {
        assert_eq!(count(&s, &format!("/api/now/table/incident?correlation_id=crash:{i}")).await, 1);
    }
    assert_eq!(db_count(&format!("SELECT COUNT(DISTINCT sys_target_sys_id) FROM {STAGING}")), N as i64);
    // Each incident was created once: its audit trail has one "number" entry.
    let doubled = db_count(
        "SELECT COUNT(*) FROM (SELECT documentkey FROM sys_audit WHERE fieldname = 'number'
         GROUP BY documentkey HAVING COUNT(*) > 1) AS doubled",
    );
    assert_eq!(doubled, 0);
    drop(tmp);
}

#[tokio::test]
async fn sync_mode_answers_one_result_per_record() {
    let s = Server::start();
    let records = json!({"records": [
        {"u_short_description": "Disk full", "u_correlation_id": "sync:1"},
        {"u_short_description": "Disk fuller", "u_correlation_id": "sync:1", "u_urgency": "1"},
        {"u_short_description": "Disk fuller", "u_correlation_id": "sync:1", "u_urgency": "1"},
        {"u_short_description": "Bad impact", "u_impact": "9"},
        {"u_short_description": "No correlation id"},
    ]});
    let (status, _, body) = post_bulk(&s, "/api/now/v1", STAGING, "?sysparm_sluice_sync=true", &records).await;
    assert_eq!(status, 201, "{body}");
    assert!(is_sys_id(body["import_set_id"].as_str().unwrap()), "{body}");
    assert!(is_sys_id(body["multi_import_set_id"].as_str().unwrap()), "{body}");
    assert_eq!((&body["import_set"], &body["staging_table"]), (&json!("ISET0010001"), &json!(STAGING)));
    let result = body["result"].as_array().unwrap();
    let statuses: Vec<&str> = result.iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, vec!["inserted", "updated", "ignored", "error", "inserted"]);
    assert_eq!(result[0]["sys_id"], result[1]["sys_id"]);
    assert_eq!(result[0]["display_value"], "INC0010001");
    assert_eq!(result[4]["display_value"], "INC0010002");
    assert_eq!(result[2]["status_message"], "No field values changed");
    for r in result {
        assert_eq!((&r["transform_map"], &r["table"]), (&json!("Incident Import"), &json!("incident")));
        assert!(is_sys_id(r["staging_sys_id"].as_str().unwrap()), "{r}");
    }
    let error = &result[3];
    assert_eq!(error["errors"][0]["code"], "invalid_choice");
    assert_eq!(error["error_message"], "u_impact: \"9\" is not one of 1, 2, 3");
    assert_eq!(error["status_message"], "failure");
    assert_eq!(error["sys_id"], error["staging_sys_id"]);
    assert!(error.get("record_link").is_none());
    let sys_id = result[0]["sys_id"].as_str().unwrap();
    assert_eq!(result[0]["record_link"], s.url(&format!("/api/now/table/incident/{sys_id}")));
    // Every row is already done; the stored outcome matches the answer.
    let p = progress(&s, body["import_set_id"].as_str().unwrap(), "").await;
    assert_eq!(
        (&p["pending"], &p["inserted"], &p["updated"], &p["ignored"], &p["error"]),
        (&json!(0), &json!(2), &json!(1), &json!(1), &json!(1))
    );
    for (r, row) in result.iter().zip(p["rows"].as_array().unwrap()) {
        assert_eq!(r["staging_sys_id"], row["staging_sys_id"]);
        assert_eq!(r["status"], row["state"]);
    }
    let (_, inc) = s.get(&format!("/api/now/table/incident/{sys_id}")).await;
    assert_eq!((&inc["result"]["urgency"], &inc["result"]["sys_mod_count"]), (&json!("1"), &json!("1")));
}

#[tokio::test]
async fn valid_and_invalid_records_mixed() {
    let s = Server::start();
    let records = json!({"records": [
        {"u_short_description": "ok 1", "u_correlation_id": "mix:1"},
        {"u_correlation_id": "mix:2"},
        {"u_short_description": "ok 3", "u_correlation_id": "mix:3", "u_urgency": "7"},
        {"u_short_description": "ok 4", "u_correlation_id": "mix:4", "u_impact": {"nested": true}},
        {"u_short_description": "ok 5", "u_correlation_id": "mix:5", "u_unknown_key": "ignored"},
    ]});
    let (status, _, body) = post_bulk(&s, "/api/now/v2", STAGING, "", &records).await;
    assert_eq!(status, 201, "{body}");
    let id = body["import_set_id"].as_str().unwrap();
    let done = wait_done(&s, id, Duration::from_secs(60)).await;
    assert_eq!((&done["inserted"], &done["error"], &done["total"]), (&json!(2), &json!(3), &json!(5)), "{done}");
    let rows = progress(&s, id, "").await["rows"].as_array().unwrap().clone();
    let states: Vec<&str> = rows.iter().map(|r| r["state"].as_str().unwrap()).collect();
    assert_eq!(states, vec!["inserted", "error", "error", "error", "inserted"]);
    let codes = |r: &Value| -> Vec<String> {
        r["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| format!("{}:{}", e["field"].as_str().unwrap(), e["code"].as_str().unwrap()))
            .collect()
    };
    assert_eq!(codes(&rows[1]), vec!["u_short_description:field_required"]);
    assert_eq!(codes(&rows[2]), vec!["u_urgency:invalid_choice"]);
    assert_eq!(codes(&rows[3]), vec!["u_impact:wrong_type"]);
    assert_eq!(rows[2]["error_message"], "u_urgency: \"7\" is not one of 1, 2, 3");
    assert!(rows[1].get("target_sys_id").is_none());
    assert_eq!(count(&s, "/api/now/table/incident").await, 2);
    // An error row keeps its record's payload, readable through the Import Set API.
    let (_, row) = s.get(&format!("/api/now/import/{STAGING}/{}", rows[2]["staging_sys_id"].as_str().unwrap())).await;
    assert_eq!(row["result"][0]["status"], "error");
    let payload: Value = serde_json::from_str(row["payload"].as_str().unwrap()).unwrap();
    assert_eq!(payload, records["records"][2]);
}

#[tokio::test]
async fn limits_rights_and_malformed_bodies() {
    let s = Server::start_with(&["--max-records", "5", "--max-bulk-body-bytes", "4000"]);
    let loader = s.add_account("bulk.loader", &["import_set_loader"]);
    let itil = s.add_account("bulk.itil", &["itil"]);
    let url = s.url(&format!("/api/now/import/{STAGING}/insertMultiple"));
    let send = |user: Option<(&str, &str)>, content_type: &str, body: String| {
        let mut r = s.http.post(&url).header("content-type", content_type).body(body);
        if let Some((u, p)) = user {
            r = r.basic_auth(u, Some(p));
        }
        async move {
            let r = r.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let admin = Some(("admin", ADMIN_PASSWORD));
    let records = |n: usize| {
        json!({"records": (0..n).map(|i| json!({"u_short_description": format!("r{i}")})).collect::<Vec<_>>()})
            .to_string()
    };

    let (status, body) = send(admin, "application/json", records(6)).await;
    assert_eq!(status, 413, "{body}");
    assert_envelope(&body, "too_many_records");
    assert!(body["error"]["detail"].as_str().unwrap().contains("At most 5 records"), "{body}");
    let big = json!({"records": [{"u_short_description": "x".repeat(5000)}]}).to_string();
    let (status, body) = send(admin, "application/json", big).await;
    assert_eq!(status, 413, "{body}");
    assert_envelope(&body, "body_too_large");
    for (bad, detail) in [
        (r#"{"records": []}"#, "records is empty"),
        (r#"{"rows": [{}]}"#, "{\"records\": [ {...}, ... ]}"),
        (r#"[{"u_short_description": "x"}]"#, "{\"records\": [ {...}, ... ]}"),
        (r#"{"records": [{}, 3]}"#, "records[1] is not a JSON object"),
    ] {
        let (status, body) = send(admin, "application/json", bad.into()).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_envelope(&body, "invalid_records");
        assert!(body["error"]["detail"].as_str().unwrap().contains(detail), "{bad}: {body}");
    }
    let (status, body) = send(admin, "application/json", "{\"records\": [".into()).await;
    assert_eq!(status, 400);
    assert_envelope(&body, "malformed_json");
    let (status, body) = send(admin, "text/plain", records(1)).await;
    assert_eq!(status, 415);
    assert_envelope(&body, "unsupported_media_type");
    let (status, body) = send(None, "application/json", records(1)).await;
    assert_eq!(status, 401);
    assert_envelope(&body, "unauthenticated");
    let (status, body) = send(Some(("bulk.itil", &itil)), "application/json", records(1)).await;
    assert_eq!(status, 403);
    assert_envelope(&body, "forbidden");
    let (status, _, body) =
        post_bulk(&s, "/api/now", STAGING, "?multi_import_set_id=nope", &json!({"records": [{}]})).await;
    assert_eq!(status, 400);
    assert_envelope(&body, "invalid_parameter");
    let (status, _, body) = post_bulk(&s, "/api/now", "u_no_such_table", "", &json!({"records": [{}]})).await;
    assert_eq!(status, 400);
    assert_envelope(&body, "invalid_table");
    // Nothing was staged by the refused requests.
    assert_eq!(count(&s, "/api/now/table/sys_import_set").await, 0);

    // The import_set_loader role may post; a second request can join the first's multi import set.
    let (status, first) = send(Some(("bulk.loader", &loader)), "application/json", records(5)).await;
    assert_eq!(status, 201, "{first}");
    let multi = first["multi_import_set_id"].as_str().unwrap();
    let (status, _, second) = post_bulk(
        &s,
        "/api/now",
        STAGING,
        &format!("?multi_import_set_id={multi}"),
        &json!({"records": [{"u_short_description": "x"}]}),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(second["multi_import_set_id"], multi);
    assert_ne!(second["import_set_id"], first["import_set_id"]);
    let id = first["import_set_id"].as_str().unwrap();
    wait_done(&s, id, Duration::from_secs(60)).await;
    let (_, inc) = s.get("/api/now/table/incident?short_description=r0").await;
    assert_eq!(inc["result"][0]["sys_created_by"], "bulk.loader", "rows are processed for the account that sent them");

    // Progress: the sender may read it, an account without import rights may not.
    let r = s
        .http
        .get(s.url(&format!("/api/sluice/v1/import_sets/{id}")))
        .basic_auth("bulk.loader", Some(&loader))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-total-count"], "5");
    let r = s
        .http
        .get(s.url(&format!("/api/sluice/v1/import_sets/{id}")))
        .basic_auth("bulk.itil", Some(&itil))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let (status, body) = s.get("/api/sluice/v1/import_sets/0123456789abcdef0123456789abcdef").await;
    assert_eq!(status, 404);
    assert_envelope(&body, "record_not_found");
    let (status, body) = s.get(&format!("/api/sluice/v1/import_sets/{id}?limit=lots")).await;
    assert_eq!(status, 400);
    assert_envelope(&body, "invalid_parameter");
}

#[tokio::test]
async fn retention_purges_processed_rows_and_empty_import_sets() {
    let s = Server::start_with(&["--retention-days", "0"]);
    let records: Vec<Value> = (0..20).map(alert).collect();
    let (_, _, body) = post_bulk(&s, "/api/now", STAGING, "", &json!({ "records": records })).await;
    let id = body["import_set_id"].as_str().unwrap().to_owned();
    wait_done(&s, &id, Duration::from_secs(60)).await;
    let (_, single) = s.import(json!({"u_short_description": "single"})).await;
    let staging_id = result0(&single)["staging_sys_id"].as_str().unwrap().to_owned();
    assert_eq!(count(&s, &format!("/api/now/table/{STAGING}")).await, 21);

    let itil = s.add_account("retention.itil", &["itil"]);
    let r = s
        .http
        .post(s.url("/api/sluice/v1/retention/purge"))
        .basic_auth("retention.itil", Some(&itil))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // Kept zero days: everything staged before this second goes.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, body) = {
        let r = s.admin(s.http.post(s.url("/api/sluice/v1/retention/purge"))).send().await.unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    };
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (&body["result"]["rows"], &body["result"]["import_sets"], &body["result"]["retention_days"]),
        (&json!(21), &json!(2), &json!(0)),
        "{body}"
    );
    assert_eq!(count(&s, &format!("/api/now/table/{STAGING}")).await, 0);
    assert_eq!(count(&s, "/api/now/table/sys_import_set").await, 0);
    let (status, _) = s.get(&format!("/api/now/import/{STAGING}/{staging_id}")).await;
    assert_eq!(status, 404);
    let (status, _) = s.get(&format!("/api/sluice/v1/import_sets/{id}")).await;
    assert_eq!(status, 404);
    // The incidents stay.
    assert_eq!(count(&s, "/api/now/table/incident").await, 21);
}

/// ServiceNow keys insertMultiple records by the staging columns' labels by default: sluice reads
/// labels and names alike (the name wins when both are sent).
#[tokio::test]
async fn records_keyed_by_column_labels_are_read() {
    let s = Server::start();
    let records = json!({"records": [
        {"Short description": "Disk full db-01", "Correlation ID": "label:1", "Urgency": "1", "Impact": "1"},
        {"short description": "by label", "u_short_description": "by name", "Urgency": "3"},
    ]});
    let (status, _, body) = post_bulk(&s, "/api/now", STAGING, "?sysparm_sluice_sync=true", &records).await;
    assert_eq!(status, 201, "{body}");
    let result = body["result"].as_array().unwrap();
    assert!(result.iter().all(|r| r["status"] == "inserted"), "{body}");
    let (_, first) = s.get(&format!("/api/now/table/incident/{}", result[0]["sys_id"].as_str().unwrap())).await;
    assert_eq!(first["result"]["short_description"], "Disk full db-01");
    assert_eq!(first["result"]["priority"], "1");
    let (_, second) = s.get(&format!("/api/now/table/incident/{}", result[1]["sys_id"].as_str().unwrap())).await;
    assert_eq!(second["result"]["short_description"], "by name");
    assert_eq!(second["result"]["urgency"], "3");
}
