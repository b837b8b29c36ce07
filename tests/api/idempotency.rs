//! `Idempotency-Key`: a create is safe to retry, also concurrently and after a restart.

use serde_json::{Value, json};

use crate::helpers::*;

async fn post(s: &Server, key: &str, body: &Value) -> (u16, reqwest::header::HeaderMap, Value) {
    let r = s
        .admin(s.http.post(s.url(&format!("/api/now/import/{STAGING}"))))
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.json().await.unwrap())
}

#[tokio::test]
async fn a_retried_create_returns_the_original_answer_and_creates_nothing_new() {
    let mut s = Server::start();
    let row = json!({"u_short_description": "Retry me"});
    let (status, headers, first) = post(&s, "key-1", &row).await;
    assert_eq!(status, 201);
    assert!(headers.get("idempotent-replayed").is_none());
    let (status, headers, again) = post(&s, "key-1", &row).await;
    assert_eq!(status, 201);
    assert_eq!(headers["idempotent-replayed"], "true");
    assert_eq!(again, first, "the same status and body");

    // Same key, different body: refused, nothing created.
    let (status, _, body) = post(&s, "key-1", &json!({"u_short_description": "Something else"})).await;
    assert_eq!(status, 422);
    assert_envelope(&body, "idempotency_key_reused");
    let r = s.admin(s.http.get(s.url("/api/now/table/incident"))).send().await.unwrap();
    assert_eq!(r.headers()["x-total-count"], "1");

    // Keys belong to an account: another account's key-1 is a different request.
    let pw = s.add_account("other.sender", &["import_set_loader"]);
    let r = s
        .http
        .post(s.url(&format!("/api/now/import/{STAGING}")))
        .basic_auth("other.sender", Some(&pw))
        .header("Idempotency-Key", "key-1")
        .json(&row)
        .send()
        .await
        .unwrap();
    let other: Value = r.json().await.unwrap();
    assert_ne!(result0(&other)["sys_id"], result0(&first)["sys_id"]);

    let (status, _, body) = post(&s, &"k".repeat(256), &row).await;
    assert_eq!(status, 400);
    assert_envelope(&body, "invalid_idempotency_key");

    // After a restart the key still answers with the original.
    let tmp = s.take_tmp();
    let data = s.data.clone();
    assert!(s.terminate().success());
    drop(s);
    let s = Server::start_on(&data, &[]);
    let (status, headers, after) = post(&s, "key-1", &row).await;
    assert_eq!((status, headers["idempotent-replayed"].to_str().unwrap()), (201, "true"));
    assert_eq!(result0(&after)["sys_id"], result0(&first)["sys_id"]);
    assert_eq!(result0(&after)["display_value"], result0(&first)["display_value"]);
    drop(tmp);
}

#[tokio::test]
async fn concurrent_requests_with_one_key_create_one_ticket() {
    let s = std::sync::Arc::new(Server::start());
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move { post(&s, "storm-key", &json!({"u_short_description": "Once"})).await }));
    }
    let mut numbers = std::collections::BTreeSet::new();
    for t in tasks {
        let (status, _, body) = t.await.unwrap();
        assert_eq!(status, 201);
        numbers.insert(result0(&body)["display_value"].as_str().unwrap().to_owned());
    }
    assert_eq!(numbers.len(), 1, "{numbers:?}");
    let r = s.admin(s.http.get(s.url("/api/now/table/incident"))).send().await.unwrap();
    assert_eq!(r.headers()["x-total-count"], "1");
}

async fn post_bulk(s: &Server, query: &str, key: &str, body: &Value) -> (u16, reqwest::header::HeaderMap, Value) {
    let r = s
        .admin(s.http.post(s.url(&format!("/api/now/import/{STAGING}/insertMultiple{query}"))))
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.json().await.unwrap())
}

async fn incidents(s: &Server) -> String {
    let r = s.admin(s.http.get(s.url("/api/now/table/incident?sysparm_limit=1"))).send().await.unwrap();
    r.headers()["x-total-count"].to_str().unwrap().to_owned()
}

/// insertMultiple with an Idempotency-Key: a retry answers the same import set and stages
/// nothing; the key with another body (or mode) is refused.
#[tokio::test]
async fn a_retried_insert_multiple_answers_the_same_import_set() {
    let s = Server::start();
    let records = json!({"records": [{"u_short_description": "bulk one"}, {"u_short_description": "bulk two"}]});
    let (status, headers, first) = post_bulk(&s, "?sysparm_sluice_sync=true", "bulk-1", &records).await;
    assert_eq!(status, 201, "{first}");
    assert!(headers.get("idempotent-replayed").is_none());
    let (status, headers, again) = post_bulk(&s, "?sysparm_sluice_sync=true", "bulk-1", &records).await;
    assert_eq!(status, 201, "{again}");
    assert_eq!(headers["idempotent-replayed"], "true");
    assert_eq!(again, first, "the same import set and the same per-row results");
    assert_eq!(incidents(&s).await, "2");

    // The same key for another body, or for the asynchronous mode: another request.
    let other = json!({"records": [{"u_short_description": "bulk three"}]});
    let (status, _, body) = post_bulk(&s, "?sysparm_sluice_sync=true", "bulk-1", &other).await;
    assert_eq!(status, 422);
    assert_envelope(&body, "idempotency_key_reused");
    let (status, _, body) = post_bulk(&s, "", "bulk-1", &records).await;
    assert_eq!(status, 422, "{body}");

    // Asynchronous: the same import_set_id and multi_import_set_id, nothing staged twice.
    let (status, _, first) = post_bulk(&s, "", "bulk-2", &other).await;
    assert_eq!(status, 201);
    let (status, headers, again) = post_bulk(&s, "", "bulk-2", &other).await;
    assert_eq!(
        (status, &headers["idempotent-replayed"]),
        (201, &"true".parse::<reqwest::header::HeaderValue>().unwrap())
    );
    assert_eq!(again, first);
    let (_, rows) = s.get(&format!("/api/now/table/{STAGING}?sysparm_limit=100")).await;
    assert_eq!(rows["result"].as_array().unwrap().len(), 3, "two sync rows and one async row");
}
