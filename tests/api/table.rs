//! The Table API: writes run the business rules and leave history; display values; batch.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::helpers::*;

async fn send(s: &Server, req: reqwest::RequestBuilder) -> (u16, reqwest::header::HeaderMap, Value) {
    let r = s.admin(req).send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    (status, headers, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test]
async fn crud_with_servicenow_status_codes_and_rules() {
    let s = Server::start();
    let t = s.url("/api/now/table/incident");
    let (status, headers, body) = send(&s, s.http.post(&t).json(&json!({"short_description": "Printer jam", "impact": 2, "urgency": "2", "number": "INC9999999", "sys_mod_count": "7", "bogus": "x"}))).await;
    assert_eq!(status, 201, "{body}");
    let rec = &body["result"];
    let sys_id = rec["sys_id"].as_str().unwrap().to_owned();
    assert_eq!(headers["location"], s.url(&format!("/api/now/table/incident/{sys_id}")).as_str());
    assert_eq!(rec["number"], "INC0010001", "number is assigned, never taken from the body");
    assert_eq!((rec["priority"].as_str(), rec["sys_mod_count"].as_str()), (Some("3"), Some("0")));
    assert_eq!(rec["opened_by"]["value"].as_str().map(str::len), Some(32));

    let (status, _, body) = send(&s, s.http.patch(format!("{t}/{sys_id}")).json(&json!({"urgency": "1"}))).await;
    assert_eq!(status, 200);
    assert_eq!((body["result"]["priority"].as_str(), body["result"]["sys_mod_count"].as_str()), (Some("2"), Some("1")));
    let (status, _, body) = send(&s, s.http.put(format!("{t}/{sys_id}")).json(&json!({"impact": "3"}))).await;
    assert_eq!(status, 200);
    assert_eq!(body["result"]["priority"], "3");

    // Resolving needs the resolution code and notes: ServiceNow's 403 naming both.
    let (status, _, body) = send(&s, s.http.patch(format!("{t}/{sys_id}")).json(&json!({"state": "6"}))).await;
    assert_eq!(status, 403, "{body}");
    assert_envelope(&body, "data_policy");
    assert!(body["error"]["detail"].as_str().unwrap().starts_with("Data Policy Exception"));
    let fields: Vec<&str> =
        body["error"]["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["close_code", "close_notes"]);

    // Bad values are refused with every field named.
    let (status, _, body) =
        send(&s, s.http.patch(format!("{t}/{sys_id}")).json(&json!({"impact": "9", "opened_at": "soon"}))).await;
    assert_eq!(status, 400);
    assert_envelope(&body, "invalid_field_values");
    assert_eq!(body["error"]["errors"].as_array().unwrap().len(), 2);

    let (status, _, body) =
        send(&s, s.http.patch(format!("{t}/{}", "a".repeat(32))).json(&json!({"impact": "1"}))).await;
    assert_eq!(status, 404);
    assert_envelope(&body, "record_not_found");

    let r = s.admin(s.http.delete(format!("{t}/{sys_id}"))).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert!(r.bytes().await.unwrap().is_empty());
    let (status, _, _) = send(&s, s.http.delete(format!("{t}/{sys_id}"))).await;
    assert_eq!(status, 404);

    // Read-only tables refuse writes even for admins.
    let (status, _, body) =
        send(&s, s.http.post(s.url("/api/now/table/sys_audit")).json(&json!({"fieldname": "x"}))).await;
    assert_eq!(status, 403);
    assert_envelope(&body, "forbidden");
}

#[tokio::test]
async fn history_holds_exactly_the_changes_in_order_with_the_account_as_user() {
    let s = Server::start();
    let pw = s.add_account("helpdesk", &["itil"]);
    let t = s.url("/api/now/table/incident");
    let as_itil = |req: reqwest::RequestBuilder| req.basic_auth("helpdesk", Some(&pw));
    let r = as_itil(s.http.post(&t)).json(&json!({"short_description": "VPN down"})).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    let id = created["result"]["sys_id"].as_str().unwrap().to_owned();
    let (_, before) = s.get(&format!("/api/now/table/sys_audit?documentkey={id}")).await;
    let inserted = before["result"].as_array().unwrap().len();
    assert!(before["result"].as_array().unwrap().iter().all(|r| r["record_checkpoint"] == "0" && r["oldvalue"] == ""));

    let patch = |body: Value| as_itil(s.http.patch(format!("{t}/{id}"))).json(&body).send();
    assert_eq!(
        patch(json!({"short_description": "VPN down for all", "description": "since 9:00", "category": "network"}))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(patch(json!({"work_notes": "Called the ISP"})).await.unwrap().status(), 200);
    assert_eq!(patch(json!({"work_notes": "ISP confirms outage"})).await.unwrap().status(), 200);
    assert_eq!(
        patch(json!({"state": "6", "close_code": "Solution provided", "close_notes": "ISP fixed it"}))
            .await
            .unwrap()
            .status(),
        200
    );

    let (_, audit) = s.get(&format!("/api/now/table/sys_audit?documentkey={id}")).await;
    let rows: Vec<(String, String, String, String)> = audit["result"].as_array().unwrap()[inserted..]
        .iter()
        .map(|r| {
            assert_eq!(r["user"], "helpdesk");
            let s = |k: &str| r[k].as_str().unwrap().to_owned();
            (s("fieldname"), s("oldvalue"), s("newvalue"), s("record_checkpoint"))
        })
        .collect();
    let fields: Vec<(&str, &str)> = rows.iter().map(|(f, _, _, c)| (f.as_str(), c.as_str())).collect();
    assert_eq!(
        fields,
        [
            ("category", "1"),
            ("description", "1"),
            ("short_description", "1"),
            ("close_code", "4"),
            ("close_notes", "4"),
            ("incident_state", "4"),
            ("resolved_at", "4"),
            ("resolved_by", "4"),
            ("state", "4"),
        ]
    );
    assert_eq!((rows[0].1.as_str(), rows[0].2.as_str()), ("inquiry", "network"));
    assert_eq!((rows[8].1.as_str(), rows[8].2.as_str()), ("1", "6"));

    let (_, journal) = s.get(&format!("/api/now/table/sys_journal_field?element_id={id}")).await;
    let entries: Vec<(&str, &str, &str)> = journal["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["element"].as_str().unwrap(), e["value"].as_str().unwrap(), e["sys_created_by"].as_str().unwrap()))
        .collect();
    assert_eq!(
        entries,
        [("work_notes", "Called the ISP", "helpdesk"), ("work_notes", "ISP confirms outage", "helpdesk")]
    );

    let (_, inc) = s.get(&format!("/api/now/table/incident/{id}?sysparm_display_value=all")).await;
    let inc = &inc["result"];
    assert_eq!(inc["sys_mod_count"]["value"], "4", "each write, work notes included, counts as an update");
    assert_eq!(inc["state"], json!({"display_value": "Resolved", "value": "6"}));
    let notes = inc["work_notes"]["display_value"].as_str().unwrap();
    assert!(
        notes.find("ISP confirms outage").unwrap() < notes.find("Called the ISP").unwrap(),
        "newest first: {notes}"
    );
    assert_eq!(inc["work_notes"]["value"], "");
}

/// History is stored one row per change set and read one row per field: every row has its own
/// sys_id, reads back by it, and the rows of one change share their internal checkpoint.
#[tokio::test]
async fn every_audit_row_reads_back_by_its_own_sys_id() {
    let s = Server::start();
    let t = s.url("/api/now/table/incident");
    let (status, _, created) = send(&s, s.http.post(&t).json(&json!({"short_description": "Disk full"}))).await;
    assert_eq!(status, 201);
    let id = created["result"]["sys_id"].as_str().unwrap().to_owned();
    let (status, _, _) =
        send(&s, s.http.patch(format!("{t}/{id}")).json(&json!({"urgency": "1", "impact": "1"}))).await;
    assert_eq!(status, 200);

    let (_, audit) = s.get(&format!("/api/now/table/sys_audit?documentkey={id}")).await;
    let rows = audit["result"].as_array().unwrap();
    let ids: std::collections::HashSet<&str> = rows.iter().map(|r| r["sys_id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), rows.len(), "unique sys_ids");
    for row in rows {
        let (status, one) = s.get(&format!("/api/now/table/sys_audit/{}", row["sys_id"].as_str().unwrap())).await;
        assert_eq!(status, 200);
        assert_eq!(&one["result"], row);
    }
    // The insert's rows (checkpoint 0) share one internal checkpoint; the update's another.
    let checkpoints = |c: &str| -> std::collections::HashSet<&str> {
        rows.iter()
            .filter(|r| r["record_checkpoint"] == c)
            .map(|r| r["internal_checkpoint"].as_str().unwrap())
            .collect()
    };
    let (insert, update) = (checkpoints("0"), checkpoints("1"));
    assert_eq!((insert.len(), update.len()), (1, 1), "{rows:?}");
    assert_ne!(insert, update);
    let updated: Vec<&str> =
        rows.iter().filter(|r| r["record_checkpoint"] == "1").map(|r| r["fieldname"].as_str().unwrap()).collect();
    assert_eq!(updated, ["impact", "priority", "urgency"]);
    assert!(rows[..rows.len() - 3].iter().all(|r| r["record_checkpoint"] == "0"), "insertion order");

    // An id next to real ones names no row.
    let last = rows.last().unwrap()["sys_id"].as_str().unwrap();
    let (status, body) = s.get(&format!("/api/now/table/sys_audit/{}ffff", &last[..28])).await;
    assert_eq!(status, 404, "{body}");
}

#[tokio::test]
async fn display_values_and_reference_links() {
    let s = Server::start();
    let t = s.url("/api/now/table/incident");
    let (_, _, group) =
        send(&s, s.http.post(s.url("/api/now/table/sys_user_group")).json(&json!({"name": "Service Desk"}))).await;
    let group_id = group["result"]["sys_id"].as_str().unwrap().to_owned();
    // A reference may be given by the referenced record's display value.
    let (_, _, body) = send(
        &s,
        s.http
            .post(&t)
            .json(&json!({"short_description": "x", "assignment_group": "service desk", "impact": "1 - High"})),
    )
    .await;
    let id = body["result"]["sys_id"].as_str().unwrap().to_owned();
    assert_eq!(body["result"]["assignment_group"]["value"], group_id.as_str());
    assert_eq!(body["result"]["impact"], "1");

    let (_, _, shown) = send(&s, s.http.get(format!("{t}/{id}?sysparm_display_value=true"))).await;
    let r = &shown["result"];
    assert_eq!(
        (r["priority"].as_str(), r["state"].as_str(), r["impact"].as_str()),
        (Some("3 - Moderate"), Some("New"), Some("1 - High"))
    );
    assert_eq!(r["assignment_group"]["display_value"], "Service Desk");
    assert!(r["assignment_group"]["link"].as_str().unwrap().ends_with(&group_id));
    assert_eq!(r["opened_by"]["display_value"], "admin");

    let (_, _, all) = send(&s, s.http.get(format!("{t}/{id}?sysparm_display_value=all&sysparm_exclude_reference_link=true&sysparm_fields=priority,assignment_group,caller_id"))).await;
    assert_eq!(
        all["result"],
        json!({"priority": {"display_value": "3 - Moderate", "value": "3"},
               "caller_id": {"display_value": "", "value": ""},
               "assignment_group": {"display_value": "Service Desk", "value": group_id}})
    );
    let (_, _, plain) = send(
        &s,
        s.http.get(format!("{t}/{id}?sysparm_exclude_reference_link=true&sysparm_fields=assignment_group,caller_id")),
    )
    .await;
    assert_eq!(plain["result"], json!({"assignment_group": group_id, "caller_id": ""}));

    let (_, _, choices) = send(&s, s.http.get(s.url("/api/now/table/sys_choice?name=incident&element=state"))).await;
    let labels: Vec<&str> =
        choices["result"].as_array().unwrap().iter().map(|c| c["label"].as_str().unwrap()).collect();
    assert_eq!(labels, ["New", "In Progress", "On Hold", "Resolved", "Closed", "Canceled"]);
}

#[tokio::test]
async fn batch_runs_inner_requests_as_the_caller_and_refuses_nesting() {
    let s = Server::start();
    let t = s.url("/api/now/table/incident");
    let (_, _, body) = send(&s, s.http.post(&t).json(&json!({"short_description": "batch me"}))).await;
    let id = body["result"]["sys_id"].as_str().unwrap().to_owned();
    let patch = STANDARD.encode(json!({"description": "batched"}).to_string());
    let batch = json!({"batch_request_id": "9", "rest_requests": [
        {"id": "a", "method": "PATCH", "url": format!("/api/now/table/incident/{id}?sysparm_display_value=all"),
         "headers": [{"name": "Content-Type", "value": "application/json"}], "body": patch},
        {"id": "b", "method": "DELETE", "url": format!("/api/now/v2/table/incident/{id}"), "headers": []},
        {"id": "c", "method": "POST", "url": "/api/now/v1/batch", "headers": [], "body": ""},
        {"id": "d", "method": "GET", "url": "http://elsewhere.example/api/now/table/incident", "headers": []},
    ]});
    let (status, _, out) = send(&s, s.http.post(s.url("/api/now/v1/batch")).json(&batch)).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["batch_request_id"], "9");
    assert_eq!(out["unserviced_requests"], json!(["c", "d"]));
    let served = out["serviced_requests"].as_array().unwrap();
    assert_eq!((served[0]["id"].as_str(), served[0]["status_code"].as_u64()), (Some("a"), Some(200)));
    let inner: Value = serde_json::from_slice(&STANDARD.decode(served[0]["body"].as_str().unwrap()).unwrap()).unwrap();
    assert_eq!(inner["result"]["description"]["value"], "batched");
    assert_eq!((served[1]["id"].as_str(), served[1]["status_code"].as_u64()), (Some("b"), Some(204)));

    // Inner requests run with the caller's roles, not more.
    let pw = s.add_account("loader", &["import_set_loader"]);
    let batch = json!({"batch_request_id": "1", "rest_requests": [
        {"id": "x", "method": "GET", "url": "/api/now/table/incident", "headers": []}]});
    let r = s.http.post(s.url("/api/now/v1/batch")).basic_auth("loader", Some(&pw)).json(&batch).send().await.unwrap();
    let out: Value = r.json().await.unwrap();
    assert_eq!(out["serviced_requests"][0]["status_code"], 403);
}

#[tokio::test]
async fn posting_a_staging_row_through_the_table_api_runs_the_import() {
    // Older integrations (a Splunk add-on) post to the staging table with the Table API and read
    // sys_import_state and sys_target_sys_id back.
    let s = Server::start();
    let (status, headers, body) = send(
        &s,
        s.http
            .post(s.url(&format!("/api/now/table/{STAGING}")))
            .json(&json!({"u_short_description": "via table api", "u_impact": "1"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let row = &body["result"];
    assert_eq!(row["sys_import_state"], "inserted");
    assert!(headers["location"].to_str().unwrap().ends_with(row["sys_id"].as_str().unwrap()));
    let target = row["sys_target_sys_id"]["link"].as_str().unwrap();
    assert!(target.contains("/api/now/table/incident/"));
    let (_, _, inc) = send(&s, s.http.get(target)).await;
    assert_eq!(
        (inc["result"]["impact"].as_str(), inc["result"]["short_description"].as_str()),
        (Some("1"), Some("via table api"))
    );

    let (status, _, body) =
        send(&s, s.http.post(s.url(&format!("/api/now/table/{STAGING}"))).json(&json!({"u_impact": "1"}))).await;
    assert_eq!(status, 201);
    assert_eq!(body["result"]["sys_import_state"], "error");
    assert!(body["result"]["sys_row_error"].as_str().unwrap().contains("u_short_description"));
}
