//! Crash safety: senders with idempotency keys, `kill -9` midway, restart on the same data,
//! unacknowledged requests retried. Every acknowledged ticket is present exactly once, retries of
//! acknowledged requests get the original number, and (on SQLite) the file passes its integrity
//! check.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::*;

#[derive(Clone)]
struct Sent {
    key: String,
    body: Value,
    /// (sys_id, number) when the server answered 201.
    answer: Option<(String, String)>,
}

async fn send(http: &reqwest::Client, url: &str, sent: &Sent) -> Option<(u16, Value)> {
    let r = http
        .post(url)
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .header("Idempotency-Key", &sent.key)
        .json(&sent.body)
        .send()
        .await
        .ok()?;
    let status = r.status().as_u16();
    Some((status, r.json().await.ok()?))
}

#[tokio::test]
async fn every_acknowledged_ticket_survives_sigkill_exactly_once() {
    let mut s = Server::start();
    let url = s.url(&format!("/api/now/import/{STAGING}"));
    let log: Arc<Mutex<Vec<Sent>>> = Arc::default();
    let stop_at = Instant::now() + Duration::from_secs(20);
    let mut senders = Vec::new();
    for sender in 0..8 {
        let (http, url, log) = (s.http.clone(), url.clone(), log.clone());
        senders.push(tokio::spawn(async move {
            for i in 0.. {
                if Instant::now() > stop_at {
                    break;
                }
                let mut sent = Sent {
                    key: format!("kill-{sender}-{i}"),
                    body: json!({"u_short_description": "storm", "u_correlation_id": format!("kill:{sender}:{i}")}),
                    answer: None,
                };
                let answer = send(&http, &url, &sent).await;
                if let Some((201, body)) = &answer {
                    let r = &body["result"][0];
                    sent.answer = Some((
                        r["sys_id"].as_str().unwrap().to_owned(),
                        r["display_value"].as_str().unwrap().to_owned(),
                    ));
                }
                let failed = sent.answer.is_none();
                log.lock().unwrap().push(sent);
                if failed {
                    break;
                }
            }
        }));
    }
    let acked = |log: &Arc<Mutex<Vec<Sent>>>| log.lock().unwrap().iter().filter(|s| s.answer.is_some()).count();
    while acked(&log) < 200 && Instant::now() < stop_at {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    s.kill();
    for t in senders {
        t.await.unwrap();
    }
    let sent = log.lock().unwrap().clone();
    assert!(acked(&log) >= 200, "only {} acknowledged before the kill", acked(&log));

    let tmp = s.take_tmp();
    let data = s.data.clone();
    drop(s);
    // SQLite's file must be intact (PostgreSQL recovers from its own log on the server's side).
    if !crate::backend::is_postgres() {
        let db = rusqlite::Connection::open(data.join("sluice.db")).unwrap();
        let check: String = db.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
        assert_eq!(check, "ok");
    }
    let s = Server::start_on(&data, &[]);
    // Every acknowledged ticket is there.
    for (sys_id, number) in sent.iter().filter_map(|s| s.answer.as_ref()) {
        let (status, inc) = s.get(&format!("/api/now/table/incident/{sys_id}")).await;
        assert_eq!(status, 200, "acknowledged {number} lost");
        assert_eq!(inc["result"]["number"], number.as_str());
    }
    // Retries: unacknowledged requests go through now; acknowledged ones (a sample) get their
    // original answer.
    let url = s.url(&format!("/api/now/import/{STAGING}"));
    let retried: Vec<&Sent> = sent
        .iter()
        .filter(|s| s.answer.is_none())
        .chain(sent.iter().filter(|s| s.answer.is_some()).step_by(10))
        .collect();
    for item in &retried {
        let (status, body) = send(&s.http, &url, item).await.expect("restarted server answers");
        assert_eq!(status, 201, "{body}");
        if let Some((sys_id, number)) = &item.answer {
            assert_eq!(body["result"][0]["sys_id"], sys_id.as_str());
            assert_eq!(body["result"][0]["display_value"], number.as_str());
        }
    }
    // Exactly once: one incident per request sent.
    let r = s.admin(s.http.get(s.url("/api/now/table/incident?sysparm_limit=1"))).send().await.unwrap();
    assert_eq!(r.headers()["x-total-count"].to_str().unwrap(), sent.len().to_string());
    let (_, body) = s.import(json!({"u_short_description": "after restart"})).await;
    let next = result0(&body)["display_value"].as_str().unwrap().to_owned();
    assert!(sent.iter().filter_map(|s| s.answer.as_ref()).all(|(_, n)| *n < next), "{next}");
    drop(tmp);
}
