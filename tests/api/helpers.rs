//! Starts the real `sluice` binary on a temporary data folder and talks HTTP to it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use serde_json::Value;

use crate::backend::{self, Database};

pub const ADMIN_PASSWORD: &str = "admin-test-password-1";
pub const STAGING: &str = "u_incident_import";

/// An HTTP client builder. reqwest's rustls comes without a crypto provider (sluice installs
/// ring, not aws-lc-rs): the same one is installed here first.
pub fn http_client() -> reqwest::ClientBuilder {
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}

/// The binary, on SQLite unless a test passes `--database` (a database URL in the caller's
/// environment is not inherited). For commands on a server's store, use `Server::cli`.
pub fn sluice() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice"));
    cmd.env_remove("SLUICE_DATABASE_URL");
    cmd
}

pub struct Server {
    pub base: String,
    pub data: PathBuf,
    child: Child,
    /// Everything the server wrote to stderr (its logs).
    pub logs: Arc<Mutex<String>>,
    pub http: reqwest::Client,
    _tmp: Option<tempfile::TempDir>,
    /// The data folder's PostgreSQL database (`SLUICE_TEST_BACKEND=postgres`).
    database: Option<Arc<Database>>,
}

/// A data folder (and its database) kept beyond its server, for a restart on the same data.
pub struct Kept {
    _tmp: Option<tempfile::TempDir>,
    _database: Option<Arc<Database>>,
}

impl Server {
    /// A server on a fresh data folder with the built-in integration.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    pub fn start_with(args: &[&str]) -> Self {
        let tmp = tempfile::tempdir().expect("temp dir");
        let data = tmp.path().join("data");
        let mut server = Self::start_on(&data, args);
        server._tmp = Some(tmp);
        server
    }

    /// A server on an existing data folder (a restart; on PostgreSQL, on the folder's database).
    pub fn start_on(data: &Path, args: &[&str]) -> Self {
        Self::start_on_with_env(data, args, &[])
    }

    /// A server on SQLite in a fresh data folder whatever the backend of the suite, for tests of
    /// SQLite files (exports, backups).
    pub fn start_sqlite() -> Self {
        let tmp = tempfile::tempdir().expect("temp dir");
        let mut server = Self::launch(&tmp.path().join("data"), &[], &[], None);
        server._tmp = Some(tmp);
        server
    }

    /// A server on SQLite in an existing data folder whatever the backend of the suite.
    pub fn start_on_sqlite(data: &Path) -> Self {
        Self::launch(data, &[], &[], None)
    }

    /// A server on a fresh data folder, with extra environment variables.
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Self {
        let tmp = tempfile::tempdir().expect("temp dir");
        let data = tmp.path().join("data");
        let mut server = Self::start_on_with_env(&data, args, env);
        server._tmp = Some(tmp);
        server
    }

    /// A server on an existing data folder with extra environment variables (a restart).
    pub fn start_on_with_env(data: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        // A test that names its database itself gets no other.
        let database = if args.contains(&"--database") { None } else { backend::database_for(data) };
        Self::launch(data, args, env, database)
    }

    fn launch(data: &Path, args: &[&str], env: &[(&str, &str)], database: Option<Arc<Database>>) -> Self {
        let mut cmd = sluice();
        if let Some(db) = &database {
            cmd.env("SLUICE_DATABASE_URL", &db.url);
        }
        let mut child = cmd
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(data)
            .args(args)
            .env("SLUICE_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env_remove("SLUICE_INTEGRATIONS")
            .env_remove("SLUICE_TLS_CERT")
            .env_remove("SLUICE_TLS_KEY")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start sluice");
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("sluice listening on ") {
                    let _ = tx.send(addr.to_owned());
                }
            }
        });
        let logs = Arc::new(Mutex::new(String::new()));
        let sink = logs.clone();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if std::env::var_os("SLUICE_TEST_LOG").is_some() {
                    eprintln!("{line}");
                }
                let mut logs = sink.lock().unwrap();
                logs.push_str(&line);
                logs.push('\n');
            }
        });
        let base = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(base) => base,
            Err(_) => {
                let _ = child.kill();
                panic!("sluice did not start: {}", logs.lock().unwrap());
            }
        };
        let http = crate::helpers::http_client().timeout(Duration::from_secs(30)).build().unwrap();
        Self { base, data: data.to_owned(), child, logs, http, _tmp: None, database }
    }

    /// The logs once they hold `needle` (the server writes info lines in blocks, up to 100 ms
    /// late); panics with the logs after 5 s.
    pub fn wait_for_log(&self, needle: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let logs = self.logs.lock().unwrap().clone();
            if logs.contains(needle) {
                return logs;
            }
            assert!(std::time::Instant::now() < deadline, "no {needle:?} in the logs:\n{logs}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The logs after every line written so far has surely arrived.
    pub fn settled_logs(&self) -> String {
        std::thread::sleep(Duration::from_millis(300));
        self.logs.lock().unwrap().clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let status = Command::new("kill").args(["-TERM", &self.pid().to_string()]).status().unwrap();
        assert!(status.success());
        self.child.wait().unwrap()
    }

    /// Keeps the temporary folder and its database alive beyond this server (for a restart).
    pub fn take_tmp(&mut self) -> Kept {
        Kept { _tmp: self._tmp.take(), _database: self.database.clone() }
    }

    /// The CLI on this server's store (`--data` as argument works on both backends).
    pub fn cli(&self) -> Command {
        backend::cli_on(&self.data)
    }

    pub fn admin(&self, builder: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        builder.basic_auth("admin", Some(ADMIN_PASSWORD))
    }

    /// POSTs one row to the default staging table as admin; returns status and body.
    pub async fn import(&self, body: Value) -> (u16, Value) {
        let r = self
            .admin(self.http.post(self.url(&format!("/api/now/import/{STAGING}"))))
            .json(&body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    /// GETs a path as admin; returns status and JSON body.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self.admin(self.http.get(self.url(path))).send().await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    /// Adds an account through the CLI on this server's data folder; returns its password.
    pub fn add_account(&self, name: &str, roles: &[&str]) -> String {
        self.add_account_with(name, roles, &[])
    }

    /// [`Self::add_account`] with more arguments for `account add` (`--web-service-only false`).
    pub fn add_account_with(&self, name: &str, roles: &[&str], args: &[&str]) -> String {
        let password = format!("{name}-password-123");
        let mut cmd = self.cli();
        cmd.args(["account", "add", name, "--password-stdin"]).args(args).arg("--data").arg(&self.data);
        for r in roles {
            cmd.args(["--role", r]);
        }
        let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(password.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "account add failed: {}", String::from_utf8_lossy(&out.stderr));
        password
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The first (only) result entry of an Import Set API answer.
pub fn result0(body: &Value) -> &Value {
    &body["result"][0]
}

pub fn assert_envelope(body: &Value, code: &str) {
    assert_eq!(body["status"], "failure", "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
    assert!(body["error"].get("detail").is_some(), "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert_eq!(body["error"]["request_id"].as_str().map(str::len), Some(16), "{body}");
    assert_eq!(body["error"]["link"], format!("docs/errors.md#{code}"), "{body}");
}

pub fn is_sys_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

pub fn is_datetime(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 19 && b[4] == b'-' && b[7] == b'-' && b[10] == b' ' && b[13] == b':' && b[16] == b':'
}
