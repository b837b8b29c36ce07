//! HTTPS with `--tls-cert`/`--tls-key`. The client is `curl -k` run as a subprocess: giving the
//! test client (reqwest) TLS would compile a second TLS stack with its own certificate
//! verification into the test binary, for tests that only need a client that speaks TLS.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::*;

/// A self-signed certificate for 127.0.0.1, made with the `openssl` command line.
fn certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("these tests need the openssl command line");
    assert!(out.status.success(), "openssl: {}", String::from_utf8_lossy(&out.stderr));
    (cert, key)
}

struct TlsServer {
    server: Server,
    _certs: tempfile::TempDir,
}

fn start_tls(env: &[(&str, &str)]) -> TlsServer {
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(certs.path());
    let server =
        Server::start_with_env(&["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()], env);
    assert!(server.base.starts_with("https://127.0.0.1:"), "{}", server.base);
    TlsServer { server, _certs: certs }
}

/// One request with `curl -k` as admin; status and JSON body.
fn curl(s: &Server, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-k", "--max-time", "30", "-X", method, "-w", "\n%{http_code}"])
        .args(["-u", &format!("admin:{ADMIN_PASSWORD}")]);
    if let Some(body) = body {
        cmd.args(["-H", "Content-Type: application/json", "--data-binary", &body.to_string()]);
    }
    let out = cmd.arg(s.url(path)).output().expect("these tests need the curl command line");
    assert!(out.status.success(), "curl: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, status) = text.rsplit_once('\n').unwrap();
    (status.parse().unwrap(), serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}")))
}

fn address(s: &Server) -> String {
    s.base.strip_prefix("https://").unwrap().to_owned()
}

#[test]
fn table_and_import_apis_answer_over_https_and_links_are_https() {
    let mut tls = start_tls(&[]);
    let s = &tls.server;
    let row = json!({"u_short_description": "over TLS", "u_correlation_id": "tls:1"});
    let (status, body) = curl(s, "POST", &format!("/api/now/import/{STAGING}"), Some(&row));
    assert_eq!(status, 201, "{body}");
    let result = result0(&body);
    assert_eq!(result["status"], "inserted", "{body}");
    let sys_id = result["sys_id"].as_str().unwrap();
    assert_eq!(result["record_link"], format!("{}/api/now/table/incident/{sys_id}", s.base), "{body}");

    let (status, body) = curl(s, "GET", "/api/now/table/incident", None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"][0]["sys_id"], sys_id, "{body}");
    assert_eq!(body["result"][0]["short_description"], "over TLS", "{body}");

    let exit = tls.server.terminate();
    assert!(exit.success(), "SIGTERM stops an HTTPS server cleanly: {exit:?}");
}

#[tokio::test]
async fn plain_http_and_stalled_handshakes_do_not_disturb_the_server() {
    let tls = start_tls(&[("SLUICE_LOG", "debug")]);
    let s = &tls.server;
    let addr = address(s);

    // A client that connects and sends nothing holds up nobody else.
    let _stalled = TcpStream::connect(&addr).unwrap();

    // Plain http to the TLS port: the connection is closed, with no HTTP answer, quickly.
    let started = Instant::now();
    let mut plain = TcpStream::connect(&addr).unwrap();
    plain.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    plain.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    assert!(!answer.starts_with(b"HTTP/"), "{}", String::from_utf8_lossy(&answer));
    assert!(started.elapsed() < Duration::from_secs(5), "closed at once, not after a time-out");
    let r = s.http.get(format!("http://{addr}/healthz")).send().await;
    assert!(r.is_err(), "plain http gets no answer: {r:?}");

    let (status, body) = curl(s, "GET", "/api/now/table/incident", None);
    assert_eq!(status, 200, "the server goes on serving HTTPS: {body}");
    s.wait_for_log("TLS handshake failed");
}

fn serve_fails(args: &[&str], env: &[(&str, &str)]) -> (Output, PathBuf, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let out = sluice()
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(&data)
        .args(args)
        .env("SLUICE_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env_remove("SLUICE_TLS_CERT")
        .env_remove("SLUICE_TLS_KEY")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(!out.status.success(), "serve must refuse to start: {}", String::from_utf8_lossy(&out.stdout));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("sluice listening on"));
    (out, data, tmp)
}

#[test]
fn a_missing_or_wrong_file_stops_the_start_and_is_named() {
    let certs = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(certs.path());
    let missing = certs.path().join("no-such-key.pem");
    let (out, data, _tmp) =
        serve_fails(&["--tls-cert", cert.to_str().unwrap(), "--tls-key", missing.to_str().unwrap()], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no-such-key.pem"), "{stderr}");
    assert!(!data.exists(), "checked before anything is created");

    // The key given as the certificate, through the environment.
    let env = [("SLUICE_TLS_CERT", key.to_str().unwrap()), ("SLUICE_TLS_KEY", key.to_str().unwrap())];
    let (out, _, _tmp) = serve_fails(&[], &env);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no certificate in") && stderr.contains("key.pem"), "{stderr}");
}

#[test]
fn one_of_the_two_settings_alone_is_refused() {
    let (out, _, _tmp) = serve_fails(&["--tls-cert", "cert.pem"], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--tls-key"), "{stderr}");

    let (out, _, _tmp) = serve_fails(&[], &[("SLUICE_TLS_KEY", "key.pem")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--tls-cert"), "{stderr}");
}
