//! The Batch API cannot be made to hold unbounded memory: its inner answers together stop at
//! `--max-batch-answer-bytes`, ServiceNow-style (the answer past it is an error item, the
//! requests after it are unserviced).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::helpers::*;

const BUDGET: usize = 40_000;

fn get(id: &str, url: &str) -> Value {
    json!({"id": id, "method": "GET", "url": url, "exclude_response_headers": true})
}

async fn batch(s: &Server, requests: Vec<Value>) -> (u16, Value, usize) {
    let r = s
        .admin(s.http.post(s.url("/api/now/v1/batch")))
        .json(&json!({"batch_request_id": "big", "rest_requests": requests}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap(), text.len())
}

#[tokio::test]
async fn inner_answers_past_the_budget_end_the_batch_with_an_error_item_and_unserviced_requests() {
    let s = Server::start_with_env(&[], &[("SLUICE_MAX_BATCH_ANSWER_BYTES", &BUDGET.to_string())]);
    for i in 0..30 {
        let row = json!({
            "u_short_description": format!("row {i}"),
            "u_description": "x".repeat(2000),
            "u_correlation_id": format!("b{i}"),
        });
        let (status, answer) = s.import(row).await;
        assert_eq!((status, result0(&answer)["status"].as_str()), (201, Some("inserted")), "{answer}");
    }
    let small = "/api/now/table/incident?sysparm_limit=1";
    let large = "/api/now/table/incident?sysparm_limit=100";
    let (_, whole) = s.get(large).await;
    assert!(whole.to_string().len() > BUDGET, "one page of every incident is over the budget");

    let (status, body, _) = batch(&s, vec![get("1", small), get("2", large), get("3", small), get("4", small)]).await;
    assert_eq!(status, 200, "{body}");
    let serviced = body["serviced_requests"].as_array().unwrap();
    assert_eq!(serviced.len(), 2, "{body}");
    assert_eq!((serviced[0]["id"].as_str(), serviced[0]["status_code"].as_u64()), (Some("1"), Some(200)));
    let over = &serviced[1];
    assert_eq!((over["id"].as_str(), over["status_code"].as_u64()), (Some("2"), Some(413)), "{over}");
    let message = over["error_message"].as_str().unwrap();
    assert!(message.contains("answered 200") && message.contains(&BUDGET.to_string()), "{message}");
    let error: Value = serde_json::from_slice(&STANDARD.decode(over["body"].as_str().unwrap()).unwrap()).unwrap();
    assert_envelope(&error, "batch_answer_too_large");
    assert_eq!(body["unserviced_requests"], json!(["3", "4"]));

    // A thousand large GETs cost one answer's budget, not a thousand answers.
    let (status, body, length) = batch(&s, (0..1000).map(|i| get(&i.to_string(), large)).collect()).await;
    assert_eq!(status, 200);
    assert_eq!(body["serviced_requests"].as_array().unwrap().len(), 1, "the first large answer does not fit");
    assert_eq!(body["unserviced_requests"].as_array().unwrap().len(), 999);
    assert!(length < 20_000, "{length} bytes");

    // Small answers fill the budget up to its end: the answers together stay under it.
    let (status, body, length) = batch(&s, (0..100).map(|i| get(&i.to_string(), small)).collect()).await;
    assert_eq!(status, 200);
    let serviced = body["serviced_requests"].as_array().unwrap();
    let within: usize = serviced
        .iter()
        .filter(|i| i["status_code"] == 200)
        .map(|i| STANDARD.decode(i["body"].as_str().unwrap()).unwrap().len())
        .sum();
    assert!(within <= BUDGET && within > BUDGET / 2, "{within} bytes of answers");
    assert_eq!(serviced.last().unwrap()["status_code"], 413);
    assert_eq!(serviced.len() + body["unserviced_requests"].as_array().unwrap().len(), 100);
    assert!(length < BUDGET * 4 / 3 + 20_000, "{length} bytes");
}
