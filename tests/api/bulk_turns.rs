//! Many `insertMultiple` requests at once: a few are read and processed at a time, the rest wait
//! their turn with their bodies unread, and every one is answered in full.

use serde_json::{Value, json};

use crate::helpers::*;

type Answer = tokio::task::JoinHandle<(u16, Value)>;

/// `requests` synchronous insertMultiple requests of `records` records each, all sent at once;
/// correlation ids `{tag}:{request}:{record}`, descriptions padded with `pad`.
fn post_at_once(s: &Server, requests: usize, records: usize, tag: &str, pad: &str) -> Vec<Answer> {
    (0..requests)
        .map(|r| {
            let records: Vec<Value> = (0..records)
                .map(|n| json!({"u_short_description": format!("{tag} r{r} n{n} {pad}"), "u_correlation_id": format!("{tag}:{r}:{n}")}))
                .collect();
            let request = s
                .admin(s.http.post(s.url("/api/now/import/u_incident_import/insertMultiple?sysparm_sluice_sync=true")))
                .json(&json!({ "records": records }));
            tokio::spawn(async move {
                let r = request.send().await.unwrap();
                (r.status().as_u16(), r.json::<Value>().await.unwrap())
            })
        })
        .collect()
}

#[tokio::test]
async fn more_concurrent_bulk_requests_than_turns_all_get_their_full_answer() {
    let s = Server::start();
    let requests = post_at_once(&s, 24, 50, "turns", "");
    for request in requests {
        let (status, body) = request.await.unwrap();
        assert_eq!(status, 201, "{body}");
        let rows = body["result"].as_array().unwrap();
        assert_eq!(rows.len(), 50);
        assert!(rows.iter().all(|row| row["status"] == "inserted"), "{body}");
    }
    let r = s.admin(s.http.get(s.url("/api/now/table/incident?sysparm_limit=1"))).send().await.unwrap();
    assert_eq!(r.headers()["x-total-count"], "1200");
}

/// With an in-flight budget smaller than any one body, requests are read one at a time, and each
/// still gets its turn (a body larger than the whole budget takes all of it, it does not wait
/// forever).
#[tokio::test]
async fn bodies_larger_than_the_inflight_budget_are_read_one_at_a_time() {
    let s = Server::start_with(&["--max-bulk-inflight-bytes", "1024"]);
    let requests = post_at_once(&s, 6, 40, "budget", &"x".repeat(100));
    for request in requests {
        let (status, body) = tokio::time::timeout(std::time::Duration::from_secs(30), request).await.unwrap().unwrap();
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["result"].as_array().unwrap().len(), 40);
    }
    let r = s.admin(s.http.get(s.url("/api/now/table/incident?sysparm_limit=1"))).send().await.unwrap();
    assert_eq!(r.headers()["x-total-count"], "240");
}
