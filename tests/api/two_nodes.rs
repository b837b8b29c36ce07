//! Two `sluice serve` processes on one PostgreSQL database, sent the same ticket at the same
//! moment: one incident per correlation id, no duplicate numbers, one ticket per idempotency
//! key. PostgreSQL only (SQLite is one process by design): without `SLUICE_TEST_DATABASE_URL`
//! the test passes without running, except with `CI=true`, where it fails.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::backend::Database;
use crate::helpers::*;

const PAIRS: usize = 300;
/// Pairs in flight at once: enough to keep both nodes busy, not so many that the pool waits.
const IN_FLIGHT: usize = 16;

/// One Import Set post to a node: status and the result entry.
async fn import(node: &Server, body: &Value, key: Option<&str>) -> (u16, Value) {
    let mut request = node.admin(node.http.post(node.url(&format!("/api/now/import/{STAGING}")))).json(body);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    let r = request.send().await.expect("the node answers");
    let status = r.status().as_u16();
    let body: Value = r.json().await.expect("a JSON answer");
    (status, result0(&body).clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_racing_on_the_same_tickets_make_one_incident_each() {
    let Some(db) = Database::create() else { return };
    let args = ["--database", db.url.as_str(), "--database-max-connections", "8"];
    // One after the other: the first creates the schema and the admin account.
    let nodes = Arc::new([Server::start_with(&args), Server::start_with(&args)]);

    let gate = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut pairs = JoinSet::new();
    for i in 0..PAIRS {
        let (nodes, gate) = (nodes.clone(), gate.clone());
        pairs.spawn(async move {
            let _permit = gate.acquire_owned().await.expect("semaphore");
            let body = |node: usize| {
                json!({"u_short_description": format!("race {i} via node {node}"), "u_correlation_id": format!("race:{i}")})
            };
            let (body_a, body_b) = (body(0), body(1));
            let (a, b) = tokio::join!(import(&nodes[0], &body_a, None), import(&nodes[1], &body_b, None));
            (i, a, b)
        });
    }
    let mut outcomes = BTreeMap::new();
    while let Some(joined) = pairs.join_next().await {
        let (i, (status_a, a), (status_b, b)) = joined.expect("pair task");
        assert!((200..300).contains(&status_a) && (200..300).contains(&status_b), "pair {i}: {a} / {b}");
        let mut statuses = [a["status"].as_str().unwrap_or(""), b["status"].as_str().unwrap_or("")];
        statuses.sort_unstable();
        assert!(matches!(statuses, ["ignored", "inserted"] | ["inserted", "updated"]), "pair {i}: {a} / {b}");
        assert_eq!(a["sys_id"], b["sys_id"], "pair {i}: one incident");
        assert_eq!(a["display_value"], b["display_value"], "pair {i}: one number");
        *outcomes.entry(statuses[0] == "ignored").or_insert(0) += 1;
    }
    eprintln!("pairs answered inserted+ignored / inserted+updated: {outcomes:?}");

    // Through the Table API of either node: 300 incidents, one per correlation id, numbers unique.
    for node in nodes.iter() {
        let (status, listed) =
            node.get("/api/now/table/incident?sysparm_fields=number,correlation_id&sysparm_limit=10000").await;
        assert_eq!(status, 200, "{listed}");
        let rows = listed["result"].as_array().expect("rows");
        assert_eq!(rows.len(), PAIRS, "one incident per pair");
        let ids: BTreeSet<&str> = rows.iter().filter_map(|r| r["correlation_id"].as_str()).collect();
        let numbers: BTreeSet<&str> = rows.iter().filter_map(|r| r["number"].as_str()).collect();
        assert_eq!(
            ids,
            (0..PAIRS).map(|i| format!("race:{i}")).collect::<BTreeSet<_>>().iter().map(String::as_str).collect()
        );
        assert_eq!(numbers.len(), PAIRS, "no duplicate numbers");
    }

    // The same Idempotency-Key at both nodes at once: one ticket, the same answer for both.
    let body = json!({"u_short_description": "idempotent race"});
    let (a, b) =
        tokio::join!(import(&nodes[0], &body, Some("race-key-1")), import(&nodes[1], &body, Some("race-key-1")));
    assert_eq!((a.0, b.0), (201, 201), "{a:?} / {b:?}");
    assert_eq!(a.1["display_value"], b.1["display_value"], "the same number");
    assert_eq!(a.1["sys_id"], b.1["sys_id"]);
    let (_, listed) = nodes[1].get("/api/now/table/incident?sysparm_query=short_description=idempotent race").await;
    assert_eq!(listed["result"].as_array().map(Vec::len), Some(1), "one ticket: {listed}");
}
