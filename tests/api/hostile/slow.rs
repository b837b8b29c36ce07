//! Slow clients (slowloris): half a request line or half a body holds neither a connection past
//! `--request-timeout` nor the stop past `--drain-timeout`.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

/// Reads until the server closes the connection; how long that took, or `None` within `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    let read_to_end = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(limit, read_to_end).await.ok().map(|()| started.elapsed())
}

#[tokio::test]
async fn half_a_header_line_is_closed_after_the_request_timeout() {
    let s = Server::start_with(&["--request-timeout", "2"]);
    let addr = s.base.trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    stream.write_all(b"GET /api/now/table/incident HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Half: aaa").await.unwrap();
    let elapsed = closed_within(&mut stream, Duration::from_secs(10)).await.expect("closed by the server");
    assert!(elapsed >= Duration::from_millis(1500) && elapsed < Duration::from_secs(5), "closed after {elapsed:?}");
    // The server still serves everyone else.
    assert_eq!(s.http.get(s.url("/healthz")).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn a_half_sent_body_does_not_delay_the_stop_past_the_drain_and_loses_no_accepted_row() {
    // The request timeout alone would hold the half-sent request for a minute.
    let mut s = Server::start_with(&["--request-timeout", "60", "--drain-timeout", "2"]);
    let (status, answer) =
        s.import(json!({"u_short_description": "before the stop", "u_correlation_id": "drain-1"})).await;
    assert_eq!(status, 201, "{answer}");
    let sys_id = result0(&answer)["sys_id"].as_str().unwrap().to_owned();

    let addr = s.base.trim_start_matches("http://").to_owned();
    let mut slow = Vec::new();
    // Half the headers on one connection, half the body on another.
    let mut headers = TcpStream::connect(&addr).await.unwrap();
    headers.write_all(b"POST /api/now/import/u_incident_import HTTP/1.1\r\nHost: 127.0.0.1\r\n").await.unwrap();
    slow.push(headers);
    let auth = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, format!("admin:{ADMIN_PASSWORD}"));
    let mut body = TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /api/now/import/u_incident_import HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic {auth}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"u_short_description\": \"half"
    );
    body.write_all(head.as_bytes()).await.unwrap();
    slow.push(body);
    tokio::time::sleep(Duration::from_millis(500)).await;

    let stopping = Instant::now();
    let status = tokio::task::spawn_blocking(move || {
        let status = s.terminate();
        (status, s)
    });
    let (status, mut s) = tokio::time::timeout(Duration::from_secs(15), status).await.expect("stopped").unwrap();
    let took = stopping.elapsed();
    assert!(status.success(), "{status:?}");
    assert!(took < Duration::from_secs(6), "the stop took {took:?} with a 2 s drain");
    for mut stream in slow {
        assert!(closed_within(&mut stream, Duration::from_secs(1)).await.is_some(), "closed at the stop");
    }

    // The row accepted before the stop is there after a restart.
    let kept = s.take_tmp();
    let s = Server::start_on(&s.data, &[]);
    let (status, record) = s.get(&format!("/api/now/table/incident/{sys_id}")).await;
    assert_eq!(status, 200, "{record}");
    assert_eq!(record["result"]["short_description"], "before the stop");
    drop(kept);
}
