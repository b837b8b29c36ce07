//! Where sluice follows ServiceNow's documented behaviour rather than its own taste: choice values
//! written as given, the legacy close codes, status codes of refusals.

use serde_json::{Value, json};

use crate::helpers::*;

async fn send(s: &Server, req: reqwest::RequestBuilder) -> (u16, Value) {
    let r = s.admin(req).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn table_api_writes_store_choice_values_as_given_unless_the_field_is_strict() {
    let s = Server::start();
    let t = s.url("/api/now/table/incident");
    let (status, body) = send(
        &s,
        s.http.post(&t).json(&json!({"short_description": "Choices", "category": "facilities",
                                       "contact_type": "Walk-in", "close_code": "Fixed by reboot"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let rec = &body["result"];
    assert_eq!(rec["category"], "facilities", "a value outside the list is stored as given");
    assert_eq!(rec["close_code"], "Fixed by reboot");
    assert_eq!(rec["contact_type"], "walk-in", "a label still becomes its value");
    let sys_id = rec["sys_id"].as_str().unwrap();

    // The fields the business rules compute from take their choices only.
    let (status, body) =
        send(&s, s.http.patch(format!("{t}/{sys_id}")).json(&json!({"state": "99", "impact": "High"}))).await;
    assert_eq!(status, 400, "{body}");
    assert_envelope(&body, "invalid_field_values");
    let fields: Vec<&str> =
        body["error"]["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["state", "impact"]);

    // A legacy close code resolves an incident, and is in the choice list clients read.
    let (status, body) = send(
        &s,
        s.http
            .patch(format!("{t}/{sys_id}"))
            .json(&json!({"state": "6", "close_code": "Solved (Permanently)", "close_notes": "Replaced the disk"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["result"]["state"].as_str(), body["result"]["close_code"].as_str()),
        (Some("6"), Some("Solved (Permanently)"))
    );
    let (status, body) =
        s.get("/api/now/table/sys_choice?sysparm_query=name=incident^element=close_code^inactive=false&sysparm_fields=value").await;
    assert_eq!(status, 200);
    let values: Vec<&str> = body["result"].as_array().unwrap().iter().map(|c| c["value"].as_str().unwrap()).collect();
    for code in ["Solution provided", "Solved (Permanently)", "Solved (Work Around)", "Closed/Resolved by Caller"] {
        assert!(values.contains(&code), "{code} in {values:?}");
    }
}

#[tokio::test]
async fn import_contracts_keep_their_strict_choices() {
    let s = Server::start();
    let (status, body) = s.import(json!({"u_short_description": "Strict", "u_impact": "High-ish"})).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(result0(&body)["status"], "error", "{body}");
    assert_eq!(result0(&body)["errors"][0]["field"], "u_impact", "{body}");
}

#[tokio::test]
async fn refusals_answer_servicenow_status_codes() {
    let s = Server::start();
    // An unknown table is a bad request, as ServiceNow answers it (Apache Camel's test asserts it).
    for path in ["/api/now/table/notExistingTable", "/api/now/v2/table/u_nope/0123"] {
        let (status, body) = send(&s, s.http.get(s.url(path))).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_envelope(&body, "invalid_table");
    }
    let (status, body) = send(&s, s.http.get(s.url("/api/now/table/notExistingTable"))).await;
    assert_eq!((status, body["error"]["message"].as_str()), (400, Some("Invalid table notExistingTable")));

    // A data policy refusal is 403 Operation Failed, with the fields it wants.
    let t = s.url("/api/now/table/incident");
    let (_, body) = send(&s, s.http.post(&t).json(&json!({"short_description": "Refused"}))).await;
    let sys_id = body["result"]["sys_id"].as_str().unwrap();
    let (status, body) = send(&s, s.http.put(format!("{t}/{sys_id}")).json(&json!({"state": "7"}))).await;
    assert_eq!(status, 403, "{body}");
    assert_envelope(&body, "data_policy");
    assert_eq!(body["error"]["message"], "Operation Failed");
    assert!(body["error"]["detail"].as_str().unwrap().starts_with("Data Policy Exception"), "{body}");
    // Nothing changed.
    let (_, body) = s.get(&format!("/api/now/table/incident/{sys_id}")).await;
    assert_eq!((body["result"]["state"].as_str(), body["result"]["sys_mod_count"].as_str()), (Some("1"), Some("0")));
}
