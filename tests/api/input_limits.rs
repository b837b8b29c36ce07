//! Input limits: hostile bodies and queries (depth, width, size) are refused with stable codes,
//! and the limits are configurable.

use serde_json::{Value, json};

use crate::accounts_admin::call;
use crate::helpers::*;

/// `{"u_short_description": "x", "u_extra": [[...]]}` nested `depth` levels in all.
fn nested(depth: usize) -> String {
    let inner = depth - 1;
    format!(r#"{{"u_short_description": "deep", "u_extra": {}{}}}"#, "[".repeat(inner), "]".repeat(inner))
}

/// A JSON object with `n` fields (`u_short_description` and fillers).
fn wide(n: usize) -> String {
    let mut object = serde_json::Map::new();
    object.insert("u_short_description".into(), json!("wide"));
    for i in 1..n {
        object.insert(format!("u_filler_{i}"), json!("v"));
    }
    Value::Object(object).to_string()
}

async fn post_raw(s: &Server, path: &str, body: String) -> (u16, Value) {
    call(s.admin(s.http.post(s.url(path))).header("content-type", "application/json").body(body)).await
}

#[tokio::test]
async fn hostile_bodies_and_queries_are_refused_with_stable_codes() {
    let s = Server::start();
    let import = format!("/api/now/import/{STAGING}");
    let table = "/api/now/table/incident";
    for path in [import.as_str(), table] {
        let (status, body) = post_raw(&s, path, nested(32)).await;
        assert_eq!(status, 201, "{path} 32 levels: {body}");
        let (status, body) = post_raw(&s, path, nested(33)).await;
        assert_eq!(status, 400, "{path}");
        assert_envelope(&body, "json_too_deep");
        assert!(body["error"]["detail"].as_str().unwrap().contains("32"), "{body}");
        // Far deeper than the JSON parser's own limit: still our code, not a parser error.
        let (status, body) = post_raw(&s, path, nested(100_000)).await;
        assert_eq!(status, 400, "{path}");
        assert_envelope(&body, "json_too_deep");

        let (status, body) = post_raw(&s, path, wide(1000)).await;
        assert_eq!(status, 201, "{path} 1000 fields: {body}");
        let (status, body) = post_raw(&s, path, wide(1001)).await;
        assert_eq!(status, 400, "{path}");
        assert_envelope(&body, "too_many_fields");
    }
    // The Table API's array form is checked on the record it takes.
    let (status, body) = post_raw(&s, table, format!("[{}]", wide(1001))).await;
    assert_eq!(status, 400);
    assert_envelope(&body, "too_many_fields");
    // Table API updates too.
    let (_, created) = post_raw(&s, table, r#"{"short_description": "to update"}"#.into()).await;
    let sys_id = created["result"]["sys_id"].as_str().unwrap();
    let r = s
        .admin(s.http.patch(s.url(&format!("{table}/{sys_id}"))))
        .header("content-type", "application/json")
        .body(nested(40));
    let (status, body) = call(r).await;
    assert_eq!(status, 400);
    assert_envelope(&body, "json_too_deep");

    // Query strings: 8 KiB pass, longer is 414, checked before authentication.
    let query = |n: usize| format!("{table}?sysparm_query=short_descriptionLIKE{}", "a".repeat(n));
    let (status, _) = s.get(&query(8192 - "sysparm_query=short_descriptionLIKE".len())).await;
    assert_eq!(status, 200);
    let (status, body) = s.get(&query(8192)).await;
    assert_eq!(status, 414);
    assert_envelope(&body, "query_too_long");
    let (status, body) = call(s.http.get(s.url(&query(9000)))).await;
    assert_eq!(status, 414, "before authentication");
    assert_envelope(&body, "query_too_long");

    // Inside a batch, the inner request meets the same limits.
    use base64::Engine;
    let inner = base64::engine::general_purpose::STANDARD.encode(nested(33));
    let batch = json!({"batch_request_id": "1", "rest_requests": [{
        "id": "deep", "method": "POST", "url": "/api/now/table/incident",
        "headers": [{"name": "Content-Type", "value": "application/json"}], "body": inner}]});
    let (status, body) = call(s.admin(s.http.post(s.url("/api/now/v1/batch"))).json(&batch)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["serviced_requests"][0]["status_code"], 400);
}

#[tokio::test]
async fn the_limits_are_configurable() {
    let s = Server::start_with_env(
        &["--max-json-depth", "3", "--max-json-fields", "10"],
        &[("SLUICE_MAX_QUERY_BYTES", "100")],
    );
    let import = format!("/api/now/import/{STAGING}");
    assert_eq!(post_raw(&s, &import, nested(3)).await.0, 201);
    let (status, body) = post_raw(&s, &import, nested(4)).await;
    assert_eq!(status, 400);
    assert_envelope(&body, "json_too_deep");
    assert_eq!(post_raw(&s, &import, wide(10)).await.0, 201);
    let (status, body) = post_raw(&s, &import, wide(11)).await;
    assert_eq!(status, 400);
    assert_envelope(&body, "too_many_fields");
    let (status, body) = s.get(&format!("/api/now/table/incident?sysparm_query=number={}", "1".repeat(100))).await;
    assert_eq!(status, 414);
    assert!(body["error"]["detail"].as_str().unwrap().contains("100 bytes"), "{body}");
    assert_eq!(s.get("/api/now/table/incident?sysparm_limit=1").await.0, 200);

    let tmp = tempfile::tempdir().unwrap();
    let out = sluice()
        .args(["serve", "--listen", "256.0.0.0:1", "--max-json-depth", "0", "--data"])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(!out.status.success(), "a depth of 0 is refused");
}

/// Nesting past the JSON parser's own limit (128) is `json_too_deep` wherever a body is read,
/// even with the highest `--max-json-depth`.
#[tokio::test]
async fn nesting_past_the_parsers_limit_is_too_deep_everywhere() {
    let s = Server::start_with(&["--max-json-depth", "100"]);
    let deep = |levels: usize| {
        format!(r#"{{"u_short_description": "deep", "u_extra": {}1{}}}"#, "[".repeat(levels), "]".repeat(levels))
    };
    let bodies = [
        (format!("/api/now/import/{STAGING}"), deep(130)),
        ("/api/now/table/incident".to_owned(), deep(130)),
        (format!("/api/now/import/{STAGING}/insertMultiple"), format!(r#"{{"records": [{}]}}"#, deep(130))),
        ("/api/now/v1/batch".to_owned(), format!(r#"{{"rest_requests": [], "x": {}}}"#, deep(130))),
    ];
    for (path, body) in bodies {
        let (status, answer) = post_raw(&s, &path, body).await;
        assert_eq!(status, 400, "{path}: {answer}");
        assert_envelope(&answer, "json_too_deep");
    }
    // The limit is at most 100 (below the parser's, with room for insertMultiple's two levels).
    let tmp = tempfile::tempdir().unwrap();
    let out = sluice()
        .args(["serve", "--listen", "256.0.0.0:1", "--max-json-depth", "101", "--data"])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(!out.status.success(), "a depth of 101 is refused");
}

/// Each `insertMultiple` record meets a single row's limits, with the same codes: an
/// over-limit record refuses the request (as the same row posted alone is refused), the error
/// names the record, and nothing is staged.
#[tokio::test]
async fn insert_multiple_records_meet_the_single_row_limits() {
    let s = Server::start_with(&["--max-json-depth", "4", "--max-json-fields", "10", "--max-body-bytes", "4096"]);
    let path = format!("/api/now/import/{STAGING}/insertMultiple");
    let sets = || async {
        s.get("/api/now/table/sys_import_set?sysparm_limit=1000").await.1["result"].as_array().unwrap().len()
    };
    let before = sets().await;
    let ok = r#"{"u_short_description": "fine"}"#.to_owned();
    let long = json!({"u_short_description": "x".repeat(5000)}).to_string();
    let cases = [
        (nested(5), "json_too_deep", "4 levels"),
        (wide(11), "too_many_fields", "10 fields"),
        (long.clone(), "body_too_large", "4096 bytes"),
    ];
    for (record, code, limit) in cases {
        // Alone, the record is refused with this code...
        let (status, alone) = post_raw(&s, &format!("/api/now/import/{STAGING}"), record.clone()).await;
        assert_eq!((status, alone["error"]["code"].as_str()), (alone_status(code), Some(code)), "{alone}");
        // ... and as the second of three records, it refuses the request the same way.
        let body = format!(r#"{{"records": [{ok}, {record}, {ok}]}}"#);
        let (status, answer) = post_raw(&s, &path, body).await;
        assert_eq!(status, alone_status(code), "{code}: {answer}");
        assert_envelope(&answer, code);
        let detail = answer["error"]["detail"].as_str().unwrap();
        assert!(detail.starts_with("records[1]: ") && detail.contains(limit), "{detail}");
    }
    assert_eq!(sets().await, before, "no import set was staged");
    // Within the limits (4 levels, 10 fields), the records are staged.
    let body = format!(r#"{{"records": [{ok}, {}, {}]}}"#, nested(4), wide(10));
    let (status, answer) = post_raw(&s, &path, body).await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(sets().await, before + 1);
}

fn alone_status(code: &str) -> u16 {
    if code == "body_too_large" { 413 } else { 400 }
}
