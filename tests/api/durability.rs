//! `kill -9` during a stream of posts: every ticket answered 201 survives the restart, and the
//! database passes SQLite's integrity check.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn every_acknowledged_ticket_survives_sigkill() {
    let mut s = Server::start();
    let url = s.url(&format!("/api/now/import/{STAGING}"));
    let acknowledged: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let stop_at = Instant::now() + Duration::from_secs(20);
    let mut senders = Vec::new();
    for sender in 0..8 {
        let (http, url, acked) = (s.http.clone(), url.clone(), acknowledged.clone());
        senders.push(tokio::spawn(async move {
            let mut i = 0;
            while Instant::now() < stop_at {
                i += 1;
                let body = json!({"u_short_description": "storm", "u_correlation_id": format!("kill:{sender}:{i}")});
                let Ok(r) = http.post(&url).basic_auth("admin", Some(ADMIN_PASSWORD)).json(&body).send().await else {
                    break;
                };
                if r.status() != 201 {
                    break;
                }
                let Ok(body) = r.json::<Value>().await else { break };
                let entry = &body["result"][0];
                acked.lock().unwrap().push((
                    entry["sys_id"].as_str().unwrap().to_owned(),
                    entry["display_value"].as_str().unwrap().to_owned(),
                ));
            }
        }));
    }
    // Let some tickets through, then kill the server mid-stream.
    while acknowledged.lock().unwrap().len() < 200 && Instant::now() < stop_at {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    s.kill();
    for t in senders {
        t.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() >= 200, "only {} acknowledged before the kill", acknowledged.len());

    let tmp = s.take_tmp();
    let data = s.data.clone();
    drop(s);
    {
        let db = rusqlite::Connection::open(data.join("sluice.db")).unwrap();
        let check: String = db.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
        assert_eq!(check, "ok");
    }
    let s = Server::start_on(&data, &[]);
    for (sys_id, number) in &acknowledged {
        let (status, inc) = s.get(&format!("/api/now/table/incident/{sys_id}")).await;
        assert_eq!(status, 200, "acknowledged {number} lost");
        assert_eq!(inc["result"]["number"], number.as_str());
    }
    // And the restarted server keeps numbering after the last committed ticket.
    let (_, body) = s.import(json!({"u_short_description": "after restart"})).await;
    let next = result0(&body)["display_value"].as_str().unwrap().to_owned();
    assert!(acknowledged.iter().all(|(_, n)| *n < next), "{next}");
    drop(tmp);
}
