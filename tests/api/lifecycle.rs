//! Health, readiness, logs and a graceful stop.

use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn health_and_readiness() {
    let s = Server::start();
    let r = s.http.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = s.http.get(s.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "ready");
}

#[tokio::test]
async fn json_logs_have_one_line_per_request_with_id_account_route_status_latency() {
    let s = Server::start_with(&["--log-format", "json"]);
    s.import(json!({"u_short_description": "logged"})).await;
    let r = s.http.get(s.url("/api/now/table/incident")).send().await.unwrap();
    let failed_id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let logs = s.logs.lock().unwrap().clone();
    let lines: Vec<Value> = logs.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    assert!(!lines.is_empty(), "{logs}");
    let post = lines
        .iter()
        .find(|l| l["message"] == "request" && l["route"] == "/api/now/import/{table}")
        .unwrap_or_else(|| panic!("{logs}"));
    assert_eq!(post["account"], "admin");
    assert_eq!(post["status"], 201);
    assert_eq!(post["method"], "POST");
    assert!(post["latency_ms"].is_number());
    let denied = lines.iter().find(|l| l["request_id"] == failed_id.as_str()).unwrap_or_else(|| panic!("{logs}"));
    assert_eq!(denied["status"], 401);
    assert!(!logs.contains(ADMIN_PASSWORD), "secrets never reach the logs");
}

#[tokio::test]
async fn sigterm_finishes_in_flight_requests_and_exits_zero() {
    let mut s = Server::start();
    let s_ref = std::sync::Arc::new(s.http.clone());
    let url = s.url(&format!("/api/now/import/{STAGING}"));
    // A burst in flight while the signal arrives.
    let mut tasks = Vec::new();
    for i in 0..20 {
        let (http, url) = (s_ref.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            http.post(&url)
                .basic_auth("admin", Some(ADMIN_PASSWORD))
                .json(&json!({"u_short_description": format!("t{i}")}))
                .send()
                .await
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let status = tokio::task::spawn_blocking(move || {
        let st = s.terminate();
        (st, s)
    });
    let mut acknowledged = Vec::new();
    for t in tasks {
        if let Ok(r) = t.await.unwrap() {
            assert!(r.status() == 201, "an answered request is never a server error: {}", r.status());
            let body: Value = r.json().await.unwrap();
            acknowledged.push(result0(&body)["sys_id"].as_str().unwrap().to_owned());
        }
    }
    let (exit, mut s) = status.await.unwrap();
    assert!(exit.success(), "{exit:?}");
    let tmp = s.take_tmp();
    let data = s.data.clone();
    drop(s);
    let s = Server::start_on(&data, &[]);
    for id in acknowledged {
        let (status, _) = s.get(&format!("/api/now/table/incident/{id}")).await;
        assert_eq!(status, 200);
    }
    drop(tmp);
}

#[tokio::test]
async fn prometheus_metrics_count_requests_by_route_and_outcomes_by_integration() {
    let s = Server::start();
    s.import(json!({"u_short_description": "counted"})).await;
    s.import(json!({"u_impact": "0"})).await;
    let _ = s.http.get(s.url("/api/now/table/incident")).send().await.unwrap();
    let r = s.admin(s.http.get(s.url("/metrics"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(
        text.contains(r#"sluice_http_requests_total{method="POST",route="/api/now/import/{table}",status="201"} 2"#),
        "{text}"
    );
    assert!(
        text.contains(r#"sluice_http_requests_total{method="GET",route="/api/now/table/{table}",status="401"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"sluice_import_rows_total{integration="u_incident_import",status="inserted"} 1"#),
        "{text}"
    );
    assert!(text.contains(r#"sluice_import_rows_total{integration="u_incident_import",status="error"} 1"#), "{text}");
    assert!(
        text.contains(r#"sluice_http_request_duration_seconds_count{route="/api/now/import/{table}"} 2"#),
        "{text}"
    );
    // Unmatched paths share one label: the label set stays bounded whatever clients send.
    for i in 0..5 {
        let _ = s.http.get(s.url(&format!("/nothing/{i}"))).send().await.unwrap();
    }
    let text = s.admin(s.http.get(s.url("/metrics"))).send().await.unwrap().text().await.unwrap();
    assert!(!text.contains("/nothing/"), "{text}");
    let pw = s.add_account("viewer", &["itil"]);
    let r = s.http.get(s.url("/metrics")).basic_auth("viewer", Some(&pw)).send().await.unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn a_burst_of_logins_verifies_once_and_keeps_memory_small() {
    let s = std::sync::Arc::new(Server::start());
    let mut tasks = Vec::new();
    for _ in 0..48 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.admin(s.http.get(s.url("/api/now/table/incident"))).send().await.unwrap().status()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    let status = std::fs::read_to_string(format!("/proc/{}/status", s.pid())).unwrap();
    let peak_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .unwrap()
        .trim()
        .trim_end_matches(" kB")
        .trim()
        .parse()
        .unwrap();
    assert!(peak_kb < 250_000, "peak RSS {peak_kb} kB: argon2 ran once per request instead of once per credential");
}

#[tokio::test]
async fn log_lines_written_in_blocks_all_reach_stderr_by_the_stop() {
    let mut s = Server::start();
    let ids = {
        let mut ids = Vec::new();
        for _ in 0..20 {
            let r = s.http.get(s.url("/api/now/table/incident?sysparm_limit=1")).send().await.unwrap();
            ids.push(r.headers()["x-request-id"].to_str().unwrap().to_owned());
        }
        ids
    };
    // Info lines wait up to 100 ms in memory; they arrive without further traffic…
    s.wait_for_log(ids.last().unwrap());
    assert!(s.terminate().success());
    // …and the lines of the stop itself are written before the process ends.
    std::thread::sleep(std::time::Duration::from_millis(100));
    let logs = s.logs.lock().unwrap().clone();
    for id in &ids {
        assert!(logs.contains(id.as_str()), "request {id} not logged:\n{logs}");
    }
    assert!(logs.trim_end().ends_with("stopped"), "the last line is the stop:\n{logs}");
}
