//! The application started in-process (`sluice_server::Application`, what `sluice serve` runs)
//! on a temporary data folder and port 0, served on the test's tokio runtime: no binary and no
//! stdout to parse, the bound address comes from `Application::address`. The helper
//! ([`InProcess`]) and the tests that check the application through it.

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sluice_server::Application;
use sluice_server::database::Database as Store;
use sluice_server::startup::{Settings, StopHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use crate::backend::{self, Database};
use crate::helpers::{ADMIN_PASSWORD, STAGING, result0};

/// An [`Application`] running on the current runtime (the test needs a multi-thread one).
pub struct InProcess {
    pub base: String,
    pub http: reqwest::Client,
    stop: StopHandle,
    running: Option<JoinHandle<io::Result<()>>>,
    /// The data folder's PostgreSQL database (`SLUICE_TEST_BACKEND=postgres`).
    _database: Option<Arc<Database>>,
}

impl InProcess {
    /// The application on `data` (a fresh or an existing folder; on PostgreSQL the folder's
    /// database), listening on 127.0.0.1 port 0, `admin` with [`ADMIN_PASSWORD`].
    pub async fn start_on(data: &Path) -> Self {
        let database = backend::database_for(data);
        let store = match &database {
            Some(db) => Store::postgres(&db.url, sluice_postgres::PostgresOptions::default()).unwrap(),
            None => Store::sqlite(data),
        };
        let mut settings =
            Settings { admin_password: Some(ADMIN_PASSWORD.into()), os_signals: false, ..Settings::new(store) };
        settings.server.listen = "127.0.0.1:0".into();
        let app = Application::build(settings).await.expect("the application starts");
        assert_ne!(app.address().port(), 0, "the bound port is known before serving");
        let base = app.url();
        let stop = app.stop_handle();
        let running = Some(tokio::spawn(app.run_until_stopped()));
        let http = crate::helpers::http_client().timeout(Duration::from_secs(30)).build().unwrap();
        Self { base, http, stop, running, _database: database }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn admin(&self, builder: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        builder.basic_auth("admin", Some(ADMIN_PASSWORD))
    }

    /// Asks for the stop as SIGTERM does, without waiting.
    pub fn request_stop(&self) {
        self.stop.stop();
    }

    /// Stops gracefully and waits until everything is written and the store is closed.
    pub async fn stop(mut self) -> io::Result<()> {
        self.stop.stop();
        let running = self.running.take().expect("running");
        tokio::time::timeout(Duration::from_secs(30), running).await.expect("the application stops").expect("task")
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        if self.running.is_some() {
            self.stop.stop();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_created_in_process_is_read_back_and_kept_across_a_graceful_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // Kept across the restart (on PostgreSQL the folder's database).
    let _database = backend::database_for(&data);
    let app = InProcess::start_on(&data).await;
    let r = app
        .admin(app.http.post(app.url(&format!("/api/now/import/{STAGING}"))))
        .json(&json!({"u_short_description": "Printer on fire", "u_caller": "in.process", "u_impact": "1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await.unwrap();
    assert_eq!(result0(&body)["status"], "inserted", "{body}");
    let sys_id = result0(&body)["sys_id"].as_str().unwrap().to_owned();
    let read = |app: &InProcess| app.admin(app.http.get(app.url(&format!("/api/now/table/incident/{sys_id}")))).send();
    let incident: Value = read(&app).await.unwrap().json().await.unwrap();
    assert_eq!(incident["result"]["short_description"], "Printer on fire");
    assert_eq!(incident["result"]["number"], result0(&body)["display_value"]);
    let address = app.base.trim_start_matches("http://").to_owned();
    app.stop().await.unwrap();
    assert!(TcpStream::connect(&address).await.is_err(), "no longer listening");

    // The same data again: the ticket is there, and the admin is not created twice.
    let again = InProcess::start_on(&data).await;
    let r = read(&again).await.unwrap();
    assert_eq!(r.status(), 200);
    let incident: Value = r.json().await.unwrap();
    assert_eq!(incident["result"]["short_description"], "Printer on fire");
    let users = again.admin(again.http.get(again.url("/api/now/table/sys_user?user_name=admin")));
    let users: Value = users.send().await.unwrap().json().await.unwrap();
    assert_eq!(users["result"].as_array().map(Vec::len), Some(1), "{users}");
    again.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stop_lets_a_request_in_flight_finish_and_then_refuses_connections() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let app = InProcess::start_on(&data).await;
    let address = app.base.trim_start_matches("http://").to_owned();
    let body = json!({"u_short_description": "Half a body when the stop came"}).to_string();
    let (first, rest) = body.split_at(body.len() / 2);
    let mut request = TcpStream::connect(&address).await.unwrap();
    let credentials = base64_basic(&format!("admin:{ADMIN_PASSWORD}"));
    let head = format!(
        "POST /api/now/import/{STAGING} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Basic {credentials}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    request.write_all(head.as_bytes()).await.unwrap();
    request.write_all(first.as_bytes()).await.unwrap();
    // The request is being read when the stop comes; once new connections are refused, the
    // rest of its body follows.
    tokio::time::sleep(Duration::from_millis(200)).await;
    app.request_stop();
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(&address).await.is_ok() {
        assert!(Instant::now() < deadline, "still accepting after the stop");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    request.write_all(rest.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), request.read_to_end(&mut answer)).await.unwrap().unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    assert!(answer.contains("\"status\":\"inserted\""), "{answer}");
    app.stop().await.unwrap();
}

/// `user:password` in base64, for a hand-written request.
fn base64_basic(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}
