//! The Import Set API end to end: stage, validate, transform, business rules, commit, respond.

use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn a_row_becomes_an_incident_and_the_answer_carries_its_number() {
    let s = Server::start();
    let (status, body) = s
        .import(json!({
            "u_short_description": "Disk usage above 95% on db-prod-01",
            "u_description": "Filesystem /var/lib/pgsql at 96%",
            "u_caller": "monitoring.bot",
            "u_category": "database",
            "u_impact": "2",
            "u_urgency": 1,
            "u_contact_type": "monitoring",
        }))
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["staging_table"], STAGING);
    assert_eq!(body["import_set"], "ISET0010001");
    let r = result0(&body);
    assert_eq!(r["status"], "inserted", "{body}");
    assert_eq!(r["transform_map"], "Incident Import");
    assert_eq!(r["table"], "incident");
    assert_eq!(r["display_name"], "number");
    assert_eq!(r["display_value"], "INC0010001");
    let sys_id = r["sys_id"].as_str().unwrap();
    assert!(is_sys_id(sys_id), "{sys_id}");
    assert_eq!(r["record_link"], s.url(&format!("/api/now/table/incident/{sys_id}")));

    let (status, inc) = s.get(&format!("/api/now/table/incident/{sys_id}")).await;
    assert_eq!(status, 200);
    let inc = &inc["result"];
    assert_eq!(inc["number"], "INC0010001");
    assert_eq!(inc["short_description"], "Disk usage above 95% on db-prod-01");
    assert_eq!((&inc["impact"], &inc["urgency"], &inc["priority"]), (&json!("2"), &json!("1"), &json!("2")));
    assert_eq!((&inc["state"], &inc["active"], &inc["category"]), (&json!("1"), &json!("true"), &json!("database")));
    assert_eq!(inc["contact_type"], "monitoring");
    assert_eq!(inc["sys_created_by"], "admin");
    assert_eq!(inc["sys_mod_count"], "0");
    assert_eq!(inc["sys_class_name"], "incident");
    assert!(is_datetime(inc["opened_at"].as_str().unwrap()), "{inc}");
    assert_eq!(inc["opened_at"], inc["sys_created_on"]);
    assert_eq!(inc["assignment_group"], "", "empty reference is an empty string");
    // Every value is a string or a reference object.
    for (k, v) in inc.as_object().unwrap() {
        assert!(v.is_string() || v.get("link").is_some(), "{k}: {v}");
    }
    // The unknown caller was created as a user, and opened_by is the posting account.
    let caller = inc["caller_id"]["value"].as_str().unwrap();
    let (_, user) = s.get(&format!("/api/now/table/sys_user/{caller}")).await;
    assert_eq!(user["result"]["user_name"], "monitoring.bot");
    assert!(user["result"].get("password_hash").is_none(), "hidden fields never leave");
    let (_, admin) = s.get("/api/now/table/sys_user?user_name=admin").await;
    assert_eq!(inc["opened_by"]["value"], admin["result"][0]["sys_id"]);
}

#[tokio::test]
async fn the_same_correlation_id_updates_the_incident_and_every_change_is_audited() {
    let s = Server::start();
    let (_, first) = s
        .import(json!({"u_short_description": "CPU high on web-07", "u_correlation_id": "am:42", "u_urgency": "2"}))
        .await;
    let (_, second) = s
        .import(json!({"u_short_description": "CPU critical on web-07", "u_correlation_id": "AM:42", "u_urgency": "1"}))
        .await;
    let (a, b) = (result0(&first), result0(&second));
    assert_eq!(a["status"], "inserted", "{first}");
    assert_eq!(b["status"], "updated", "{second}");
    assert_eq!(a["sys_id"], b["sys_id"]);
    assert_eq!(a["display_value"], b["display_value"]);

    let r =
        s.admin(s.http.get(s.url("/api/now/table/incident?sysparm_query=correlation_id=am:42"))).send().await.unwrap();
    assert_eq!(r.headers()["x-total-count"], "1");
    let inc: Value = r.json().await.unwrap();
    assert_eq!(inc["result"][0]["short_description"], "CPU critical on web-07");
    assert_eq!(inc["result"][0]["priority"], "3", "default impact 3 × urgency 1, recomputed on update");
}

#[tokio::test]
async fn audit_rows_record_who_when_old_new_and_the_payload_that_caused_them() {
    let s = Server::start();
    let (_, first) = s.import(json!({"u_short_description": "Link down", "u_correlation_id": "nm:7"})).await;
    let (_, second) = s
        .import(json!({"u_short_description": "Link down (flapping)", "u_correlation_id": "nm:7", "u_impact": "1"}))
        .await;
    let sys_id = result0(&first)["sys_id"].as_str().unwrap().to_owned();
    let (status, audit) = s
        .get(&format!("/api/now/table/sys_audit?sysparm_query=documentkey={sys_id}^fieldname=short_description"))
        .await;
    assert_eq!(status, 200);
    let rows = audit["result"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{audit}");
    assert_eq!((&rows[0]["oldvalue"], &rows[0]["newvalue"]), (&json!(""), &json!("Link down")));
    assert_eq!((&rows[1]["oldvalue"], &rows[1]["newvalue"]), (&json!("Link down"), &json!("Link down (flapping)")));
    for (row, answer) in rows.iter().zip([&first, &second]) {
        assert_eq!(row["user"], "admin");
        assert_eq!(row["tablename"], "incident");
        assert!(is_datetime(row["sys_created_on"].as_str().unwrap()));
        assert_eq!(row["source_table"], STAGING);
        assert_eq!(row["source_row"], result0(answer)["staging_sys_id"]);
    }
    assert_eq!(rows[1]["record_checkpoint"], "1");
    // Priority moved with impact and that change is audited too.
    let (_, prio) = s.get(&format!("/api/now/table/sys_audit?documentkey={sys_id}&fieldname=priority")).await;
    let prio = prio["result"].as_array().unwrap();
    assert_eq!(prio.last().unwrap()["oldvalue"], "5");
    assert_eq!(prio.last().unwrap()["newvalue"], "3");
    let (_, inc) = s.get(&format!("/api/now/table/incident/{sys_id}")).await;
    assert_eq!(inc["result"]["sys_mod_count"], "1");
}

#[tokio::test]
async fn an_identical_resend_is_ignored_without_a_new_audit_row() {
    let s = Server::start();
    let row = json!({"u_short_description": "Same alert", "u_correlation_id": "dup:1"});
    let (_, first) = s.import(row.clone()).await;
    let (_, again) = s.import(row).await;
    assert_eq!(result0(&again)["status"], "ignored", "{again}");
    assert_eq!(result0(&again)["status_message"], "No field values changed");
    assert_eq!(result0(&again)["sys_id"], result0(&first)["sys_id"]);
    let sys_id = result0(&first)["sys_id"].as_str().unwrap();
    let (_, inc) = s.get(&format!("/api/now/table/incident/{sys_id}")).await;
    assert_eq!(inc["result"]["sys_mod_count"], "0");
}

#[tokio::test]
async fn an_invalid_row_is_answered_with_every_error_kept_as_error_and_creates_nothing() {
    let s = Server::start();
    let (status, body) = s.import(json!({"u_impact": "9", "u_description": "no summary"})).await;
    assert_eq!(status, 201, "transform failures are not HTTP errors in the Import Set API");
    let r = result0(&body);
    assert_eq!(r["status"], "error");
    let message = r["error_message"].as_str().unwrap();
    assert!(message.contains("u_short_description") && message.contains("u_impact"), "{message}");
    let codes: Vec<(&str, &str)> = r["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["field"].as_str().unwrap(), e["code"].as_str().unwrap()))
        .collect();
    assert_eq!(codes, vec![("u_short_description", "field_required"), ("u_impact", "invalid_choice")]);
    assert!(r.get("record_link").is_none());

    let staging_id = r["staging_sys_id"].as_str().unwrap();
    assert_eq!(r["sys_id"], staging_id, "without a target, sys_id is the staging row's");
    let (status, row) = s.get(&format!("/api/now/import/{STAGING}/{staging_id}")).await;
    assert_eq!(status, 200);
    assert_eq!(result0(&row)["status"], "error");
    assert_eq!(row["row"]["sys_import_state"], "error");
    assert_eq!(row["row"]["u_impact"], "9", "the staged value is kept as received");
    assert_eq!(row["payload"], r#"{"u_impact":"9","u_description":"no summary"}"#);
    let (_, staged) = s.get(&format!("/api/now/table/{STAGING}?sys_import_state=error")).await;
    assert_eq!(staged["result"].as_array().unwrap().len(), 1);

    let r = s.admin(s.http.get(s.url("/api/now/table/incident"))).send().await.unwrap();
    assert_eq!(r.headers()["x-total-count"], "0");
}

#[tokio::test]
async fn the_raw_payload_is_stored_byte_for_byte() {
    let s = Server::start();
    let raw = "{ \"u_short_description\" : \"Spacing  kept\",\n  \"u_extra\": [1, 2] }";
    let r = s
        .admin(s.http.post(s.url(&format!("/api/now/import/{STAGING}"))))
        .header("content-type", "application/json")
        .body(raw)
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(result0(&body)["status"], "inserted", "unknown keys are ignored: {body}");
    let (_, row) =
        s.get(&format!("/api/now/import/{STAGING}/{}", result0(&body)["staging_sys_id"].as_str().unwrap())).await;
    assert_eq!(row["payload"], raw);
    assert_eq!(row["row"]["sys_import_state"], "inserted");
    assert_eq!(row["row"]["sys_target_sys_id"]["value"], result0(&body)["sys_id"]);
}

#[tokio::test]
async fn callers_resolve_by_user_name_or_email_case_insensitively() {
    let s = Server::start();
    let (_, a) = s.import(json!({"u_short_description": "a", "u_caller": "Alice@Example.com"})).await;
    let (_, b) = s.import(json!({"u_short_description": "b", "u_caller": "alice@example.com"})).await;
    let mut callers = Vec::new();
    for body in [&a, &b] {
        let id = result0(body)["sys_id"].as_str().unwrap();
        callers.push(s.get(&format!("/api/now/table/incident/{id}")).await.1["result"]["caller_id"]["value"].clone());
    }
    assert!(callers[0].is_string());
    assert_eq!(callers[0], callers[1]);
    let (_, users) = s.get("/api/now/table/sys_user?email=Alice@Example.com").await;
    assert_eq!(users["result"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn concurrent_rows_get_unique_numbers_and_one_correlation_id_gives_one_incident() {
    let s = std::sync::Arc::new(Server::start());
    let mut tasks = Vec::new();
    for i in 0..40 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let corr = if i % 2 == 0 { "storm:1".to_owned() } else { format!("single:{i}") };
            s.import(json!({"u_short_description": format!("alert {i}"), "u_correlation_id": corr})).await
        }));
    }
    let mut numbers = std::collections::BTreeSet::new();
    let mut storm_inserts = 0;
    for (i, t) in tasks.into_iter().enumerate() {
        let (status, body) = t.await.unwrap();
        assert_eq!(status, 201);
        let r = result0(&body);
        assert_ne!(r["status"], "error", "{body}");
        if i % 2 == 0 && r["status"] == "inserted" {
            storm_inserts += 1;
        }
        numbers.insert(r["display_value"].as_str().unwrap().to_owned());
    }
    assert_eq!(storm_inserts, 1, "one incident for the shared correlation id");
    assert_eq!(numbers.len(), 21, "20 singles + 1 storm incident: {numbers:?}");
    let r = s.admin(s.http.get(s.url("/api/now/table/incident?sysparm_limit=1"))).send().await.unwrap();
    assert_eq!(r.headers()["x-total-count"], "21");
}

/// Reference lookups are remembered between imports; a change to the referenced record through
/// the Table API is seen by the very next import.
#[tokio::test]
async fn a_renamed_caller_is_not_found_under_its_old_name() {
    let s = Server::start();
    let caller_of = |body: &Value| result0(body)["sys_id"].as_str().unwrap().to_owned();
    // A reference reads as {"link", "value"}.
    let value = |v: &Value| v["value"].as_str().unwrap().to_owned();
    let row = json!({"u_short_description": "first", "u_caller": "cache.person"});
    let (status, first) = s.import(row.clone()).await;
    assert_eq!(status, 201, "{first}");
    let (_, inc) = s.get(&format!("/api/now/table/incident/{}", caller_of(&first))).await;
    let user = value(&inc["result"]["caller_id"]);
    // Found again (now from memory) while nothing changed.
    let (_, again) = s.import(row.clone()).await;
    let (_, inc) = s.get(&format!("/api/now/table/incident/{}", caller_of(&again))).await;
    assert_eq!(value(&inc["result"]["caller_id"]), user);

    let r = s
        .admin(s.http.patch(s.url(&format!("/api/now/table/sys_user/{user}"))))
        .json(&json!({"user_name": "renamed.person"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().await.unwrap());

    let (_, third) = s.import(row).await;
    let (_, inc) = s.get(&format!("/api/now/table/incident/{}", caller_of(&third))).await;
    let new_user = value(&inc["result"]["caller_id"]);
    assert_ne!(new_user, user, "the old name must not lead to the renamed user");
    let (_, created) = s.get(&format!("/api/now/table/sys_user/{new_user}")).await;
    assert_eq!(created["result"]["user_name"], "cache.person");
}
