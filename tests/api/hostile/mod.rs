//! Hostile input: malformed and malicious requests, sent as raw bytes over TCP (so nothing is
//! tidied up by a client library). Every case must be answered within a second with a 4xx and
//! sluice's JSON error envelope, never a 5xx; the server must stay up, and the stored data must
//! be exactly as before. One table of cases, one test.

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

mod batch;
mod slow;
mod xml_chars;

#[derive(Clone)]
enum Auth {
    Admin,
    None,
    /// The Authorization header's raw value.
    Raw(Vec<u8>),
}

#[derive(Clone)]
struct Case {
    name: &'static str,
    method: &'static str,
    path: String,
    auth: Auth,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    /// A Content-Length other than the body's.
    content_length: Option<String>,
    /// The exact status expected (any 4xx when `None`).
    status: Option<u16>,
}

fn case(name: &'static str, method: &'static str, path: impl Into<String>) -> Case {
    Case {
        name,
        method,
        path: path.into(),
        auth: Auth::Admin,
        headers: vec![],
        body: vec![],
        content_length: None,
        status: None,
    }
}

impl Case {
    fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self.headers.push(("Content-Type".into(), b"application/json".to_vec()));
        self
    }
    fn raw_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }
    fn header(mut self, name: &str, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
    fn auth(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self
    }
    fn status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }
}

fn basic(user_password: &[u8]) -> Auth {
    let mut v = b"Basic ".to_vec();
    v.extend(STANDARD.encode(user_password).into_bytes());
    Auth::Raw(v)
}

const IMPORT: &str = "/api/now/import/u_incident_import";
const TABLE: &str = "/api/now/table/incident";

fn cases() -> Vec<Case> {
    let deep = format!("{{\"a\": {}1{}}}", "[".repeat(5000), "]".repeat(5000));
    let deeper = "[".repeat(200_000);
    let wide: String = (0..2000).map(|i| format!("\"f{i}\": 1")).collect::<Vec<_>>().join(",");
    let many_records: String = (0..10_001).map(|_| "{}").collect::<Vec<_>>().join(",");
    let batch_of = |n: usize| {
        let inner = json!({"id": 1, "method": "GET", "url": "/api/now/table/incident"});
        json!({"batch_request_id": "b", "rest_requests": vec![inner; n]}).to_string()
    };
    vec![
        // Broken JSON.
        case("truncated object", "POST", IMPORT).body(r#"{"u_short_description": "#).status(400),
        case("trailing comma", "POST", IMPORT).body(r#"{"u_short_description": "x",}"#).status(400),
        case("not JSON at all", "POST", IMPORT).body("short_description=disk").status(400),
        case("empty body", "POST", IMPORT).body("").status(400),
        case("an array", "POST", IMPORT).body("[1, 2]").status(400),
        case("a string", "POST", IMPORT).body(r#""text""#).status(400),
        case("null", "POST", IMPORT).body("null").status(400),
        case("NaN", "POST", IMPORT).body(r#"{"u_short_description": NaN}"#).status(400),
        case("number out of range", "POST", IMPORT).body(r#"{"u_impact": 1e999999}"#).status(400),
        case("single quotes", "POST", IMPORT).body("{'u_short_description': 'x'}").status(400),
        case("byte order mark", "POST", IMPORT)
            .body(b"\xef\xbb\xbf{\"u_short_description\": \"x\"}".to_vec())
            .status(400),
        case("comment", "POST", IMPORT).body("{/* x */\"u_short_description\": \"x\"}").status(400),
        case("two objects", "POST", IMPORT).body(r#"{"u_short_description": "a"}{"b": 1}"#).status(400),
        // Invalid UTF-8 and NUL bytes.
        case("invalid UTF-8 in a string", "POST", IMPORT)
            .body(b"{\"u_short_description\": \"\xff\xfe\"}".to_vec())
            .status(400),
        case("raw NUL in a string", "POST", IMPORT).body(b"{\"u_short_description\": \"a\x00b\"}".to_vec()).status(400),
        case("lone surrogate", "POST", IMPORT).body(r#"{"u_short_description": "\ud800"}"#).status(400),
        case("NUL in a table name", "GET", "/api/now/table/incident%00").status(400),
        case("invalid UTF-8 in the path", "GET", "/api/now/table/%ff%fe").status(400),
        case("invalid UTF-8 in a sys_id", "DELETE", format!("{TABLE}/%c0%af")).status(400),
        case("UTF-16 body", "POST", IMPORT)
            .raw_body(b"\xff\xfe{\x00}\x00".to_vec())
            .header("Content-Type", "application/json; charset=utf-16")
            .status(400),
        // Wrong types and content types.
        case("wrong content type", "POST", IMPORT).raw_body("a,b\n1,2").header("Content-Type", "text/csv").status(415),
        case("XML with a DTD", "POST", IMPORT)
            .raw_body(r#"<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><request><u_short_description>&b;</u_short_description></request>"#)
            .header("Content-Type", "application/xml")
            .status(400),
        case("XML external entity", "POST", TABLE)
            .raw_body(r#"<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><request><short_description>&x;</short_description></request>"#)
            .header("Content-Type", "text/xml")
            .status(400),
        case("XML not well-formed", "POST", IMPORT)
            .raw_body("<request><u_short_description>x</request>")
            .header("Content-Type", "application/xml")
            .status(400),
        case("table API object value", "POST", TABLE).body(r#"{"short_description": {"a": 1}}"#).status(400),
        case("table API array value", "POST", TABLE).body(r#"{"urgency": [1, 2]}"#).status(400),
        case("table API invalid choice", "POST", TABLE).body(r#"{"short_description": "x", "urgency": "9"}"#),
        case("account with a list as name", "POST", "/api/sluice/v1/accounts")
            .body(r#"{"name": ["a"], "roles": ["itil"]}"#)
            .status(400),
        case("account with SQL as name", "POST", "/api/sluice/v1/accounts")
            .body(r#"{"name": "x'; DROP TABLE sys_user;--", "roles": ["itil"]}"#)
            .status(400),
        case("account with an unknown role", "POST", "/api/sluice/v1/accounts")
            .body(r#"{"name": "eve", "roles": ["root"]}"#)
            .status(400),
        case("account with an unknown field", "POST", "/api/sluice/v1/accounts")
            .body(r#"{"name": "eve", "roles": ["itil"], "is_admin": true}"#)
            .status(400),
        case("records not an array", "POST", format!("{IMPORT}/insertMultiple"))
            .body(r#"{"records": {"a": 1}}"#)
            .status(400),
        case("records of strings", "POST", format!("{IMPORT}/insertMultiple"))
            .body(r#"{"records": ["a", "b"]}"#)
            .status(400),
        // Deep nesting and many fields.
        case("deep nesting", "POST", IMPORT).body(deep.clone()).status(400),
        case("200,000 open brackets", "POST", IMPORT).body(deeper).status(400),
        case("deep nesting in the table API", "POST", TABLE).body(deep).status(400),
        case("2,000 fields", "POST", IMPORT).body(format!("{{{wide}}}")).status(400),
        case("10,001 records", "POST", format!("{IMPORT}/insertMultiple"))
            .body(format!("{{\"records\": [{many_records}]}}"))
            .status(413),
        // Huge bodies, headers, URLs.
        case("2 MB body", "POST", IMPORT)
            .body(format!("{{\"u_short_description\": \"{}\"}}", "x".repeat(2 * 1024 * 1024)))
            .status(413),
        case("a Content-Length of 10 GB", "POST", IMPORT)
            .body("{}")
            .header("X-Case", "lying length")
            .with_length("10737418240")
            .status(413),
        case("one 40 KB header", "GET", TABLE).header("X-Filler", "a".repeat(40 * 1024)).status(431),
        case("400 headers", "GET", TABLE).many_headers(400, 100).status(431),
        case("a 40 KB path", "GET", format!("/api/now/table/{}", "a".repeat(40 * 1024))).status(431),
        case("a 10 KB query", "GET", format!("{TABLE}?sysparm_query={}", "a".repeat(10 * 1024))).status(414),
        // Bad credentials.
        case("no credentials", "GET", TABLE).auth(Auth::None).status(401),
        case("Basic without a value", "GET", TABLE).auth(Auth::Raw(b"Basic".to_vec())).status(401),
        case("Basic not base64", "GET", TABLE).auth(Auth::Raw(b"Basic !!!$$$".to_vec())).status(401),
        case("Basic without a colon", "GET", TABLE).auth(basic(b"adminpassword")).status(401),
        case("Basic with an empty user", "GET", TABLE).auth(basic(b":password")).status(401),
        case("Basic with a 2,000-byte password", "GET", TABLE)
            .auth(basic(format!("eve:{}", "p".repeat(2000)).as_bytes()))
            .status(401),
        case("Basic with a 200-byte user", "GET", TABLE)
            .auth(basic(format!("{}:pw", "u".repeat(200)).as_bytes()))
            .status(401),
        case("Basic with invalid UTF-8", "GET", TABLE).auth(basic(b"\xff\xfe:pw")).status(401),
        case("Basic with a NUL", "GET", TABLE).auth(basic(b"eve\x00:pw\x00")).status(401),
        case("Basic with SQL", "GET", TABLE).auth(basic(b"admin' OR '1'='1:x' OR '1'='1")).status(401),
        case("Bearer without a token", "GET", TABLE).auth(Auth::Raw(b"Bearer ".to_vec())).status(401),
        case("Bearer with a made-up token", "GET", TABLE)
            .auth(Auth::Raw(format!("Bearer sluice_{}", "A".repeat(43)).into_bytes()))
            .status(401),
        case("Bearer with a huge token", "GET", TABLE)
            .auth(Auth::Raw(format!("Bearer sluice_{}", "A".repeat(5000)).into_bytes()))
            .status(401),
        case("Digest", "GET", TABLE).auth(Auth::Raw(b"Digest username=\"admin\"".to_vec())).status(401),
        case("binary Authorization", "GET", TABLE).auth(Auth::Raw(b"Basic \xff\xfe\xfd".to_vec())).status(401),
        // SQL and path tricks in table names, fields and ids.
        case("SQL in a table name", "GET", "/api/now/table/incident;DROP%20TABLE%20incident").status(400),
        case("quote in a table name", "GET", "/api/now/table/incident'%20OR%201=1--").status(400),
        case("SQLite's catalogue", "GET", "/api/now/table/sqlite_master").status(400),
        case("a hidden sluice table", "GET", "/api/now/table/sluice_api_token").status(400),
        case("dot-dot in a table name", "GET", "/api/now/table/..%2F..%2Fetc%2Fpasswd").status(400),
        case("dot-dot segments", "GET", "/api/now/table/../../etc/passwd").status(400),
        case("SQL in a sys_id", "GET", format!("{TABLE}/'%20OR%20'1'='1")).status(404),
        case("SQL in a sys_id update", "PATCH", format!("{TABLE}/x'%20OR%201=1--"))
            .body(r#"{"short_description": "pwned"}"#)
            .status(404),
        case("SQL in a sys_id delete", "DELETE", format!("{TABLE}/1%20OR%201=1")).status(404),
        case("SQL in a staging table", "POST", "/api/now/import/u_incident_import;DELETE%20FROM%20incident")
            .body("{}")
            .status(400),
        case("import to a built-in table", "POST", "/api/now/import/incident")
            .body(r#"{"short_description": "x"}"#)
            .status(400),
        case("import to sys_user", "POST", "/api/now/import/sys_user").body(r#"{"user_name": "x"}"#).status(400),
        case("SQL in a field name", "POST", TABLE)
            .body(r#"{"short_description\"; DROP TABLE incident;--": "x", "urgency": "x"}"#),
        case("SQL in an integration name", "GET", "/api/sluice/v1/integrations/x'%20OR%201=1/stats").status(404),
        case("SQL in an account name", "GET", "/api/sluice/v1/accounts/x'%20OR%201=1").status(404),
        // Batch tricks.
        case("batch that is not a batch", "POST", "/api/now/v1/batch").body(r#"{"rest_requests": "all"}"#).status(400),
        case("batch of 1,001 requests", "POST", "/api/now/v1/batch").body(batch_of(1001)).status(413),
        case("batch over the body limit", "POST", "/api/now/v1/batch")
            .body(json!({"rest_requests": [{"id": 1, "method": "POST", "url": TABLE,
                "body": STANDARD.encode("x".repeat(800 * 1024))}]}).to_string())
            .status(413),
        case("batch with a numeric URL", "POST", "/api/now/v1/batch")
            .body(r#"{"rest_requests": [{"id": 1, "method": "GET", "url": 5}]}"#)
            .status(400),
        case("batch nested as a string", "POST", "/api/now/v1/batch").body(r#""{\"rest_requests\": []}""#).status(400),
        // Absurd paging.
        case("negative limit", "GET", format!("{TABLE}?sysparm_limit=-1")).status(400),
        case("limit not a number", "GET", format!("{TABLE}?sysparm_limit=ten")).status(400),
        case("limit beyond 64 bits", "GET", format!("{TABLE}?sysparm_limit=99999999999999999999999")).status(400),
        case("negative offset", "GET", format!("{TABLE}?sysparm_offset=-5")).status(400),
        case("offset in exponent form", "GET", format!("{TABLE}?sysparm_offset=1e10")).status(400),
        case("offset beyond SQLite's integers", "GET", format!("{TABLE}?sysparm_offset=9223372036854775808"))
            .status(400),
        case("submissions with a negative limit", "GET", "/api/sluice/v1/submissions?sysparm_limit=-1").status(400),
        case("a window that is no window", "GET", "/api/sluice/v1/integrations/u_incident_import/stats?window=-1d")
            .status(400),
        // Methods and other headers.
        case("PUT to an import", "PUT", IMPORT).body("{}").status(405),
        case("TRACE", "TRACE", TABLE).status(405),
        case("an Idempotency-Key of 300 characters", "POST", IMPORT)
            .body(r#"{"u_short_description": "x"}"#)
            .header("Idempotency-Key", "k".repeat(300))
            .status(400),
        case("a binary Idempotency-Key", "POST", IMPORT)
            .body(r#"{"u_short_description": "x"}"#)
            .header("Idempotency-Key", b"\xff\xfe".to_vec())
            .status(400),
        case("an unknown route", "GET", "/api/now/nothing/here").status(400),
        case("an empty table name", "GET", "/api/now/table/").status(400),
    ]
}

impl Case {
    fn with_length(mut self, length: &str) -> Self {
        self.content_length = Some(length.into());
        self
    }
    fn many_headers(mut self, n: usize, size: usize) -> Self {
        for i in 0..n {
            self.headers.push((format!("X-Filler-{i}"), "v".repeat(size).into_bytes()));
        }
        self
    }
}

/// The request's bytes, from a client address of its own (the server trusts 127.0.0.1 as a
/// proxy), so that failed logins lock no address the other cases use.
fn request_bytes(c: &Case, index: usize) -> Vec<u8> {
    let mut out = format!("{} {} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n", c.method, c.path).into_bytes();
    out.extend(format!("X-Forwarded-For: 192.0.2.{}\r\n", index % 250).into_bytes());
    let auth = match &c.auth {
        Auth::Admin => Some(format!("Basic {}", STANDARD.encode(format!("admin:{ADMIN_PASSWORD}"))).into_bytes()),
        Auth::None => None,
        Auth::Raw(v) => Some(v.clone()),
    };
    if let Some(a) = auth {
        out.extend(b"Authorization: ");
        out.extend(a);
        out.extend(b"\r\n");
    }
    for (k, v) in &c.headers {
        out.extend(k.as_bytes());
        out.extend(b": ");
        out.extend(v);
        out.extend(b"\r\n");
    }
    let length = c.content_length.clone().unwrap_or_else(|| c.body.len().to_string());
    out.extend(format!("Content-Length: {length}\r\n\r\n").into_bytes());
    out.extend(&c.body);
    out
}

/// Sends raw bytes (while reading, since the server may answer before the body is all sent)
/// and returns the status and the body.
async fn send_raw(addr: &str, bytes: Vec<u8>) -> Result<(u16, Vec<u8>), String> {
    let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let (mut reader, mut writer) = stream.into_split();
    let write = tokio::spawn(async move {
        let _ = writer.write_all(&bytes).await;
        let _ = writer.flush().await;
        writer
    });
    let mut response = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => response.extend_from_slice(&buf[..n]),
            // A reset after the answer (the server closed with body bytes unread) is fine.
            Err(_) if !response.is_empty() => break,
            Err(e) => return Err(e.to_string()),
        }
    }
    drop(write.await);
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").ok_or("no header end")?;
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or("no status")?;
    let mut body = response[split + 4..].to_vec();
    if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    Ok((status, body))
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = data.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(std::str::from_utf8(&data[..line_end]).unwrap_or("0").trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = line_end + 2;
        out.extend_from_slice(&data[start..(start + size).min(data.len())]);
        data = &data[(start + size + 2).min(data.len())..];
    }
    out
}

/// Everything a hostile request could have changed, as the admin reads it.
async fn snapshot(s: &Server) -> Vec<Value> {
    let mut out = Vec::new();
    for table in
        ["incident", "sys_user", "u_incident_import", "sys_import_set", "sys_audit", "sys_user_group", "cmdb_ci"]
    {
        let (status, body) = s.get(&format!("/api/now/table/{table}?sysparm_limit=10000")).await;
        assert_eq!(status, 200, "{table}: {body}");
        out.push(body);
    }
    out.push(s.get("/api/sluice/v1/accounts").await.1);
    out.push(s.get("/api/sluice/v1/admin_audit").await.1);
    out
}

#[tokio::test]
async fn hostile_requests_get_a_4xx_json_error_and_change_nothing() {
    let s = Server::start_with(&["--trusted-proxy", "127.0.0.1/32"]);
    // Some data to protect.
    for i in 0..3 {
        let (status, _) =
            s.import(json!({"u_short_description": format!("keep {i}"), "u_correlation_id": format!("k{i}")})).await;
        assert_eq!(status, 201);
    }
    let before = snapshot(&s).await;
    let addr = s.base.trim_start_matches("http://").to_owned();
    let cases = cases();
    assert!(cases.len() >= 60, "{} cases", cases.len());
    let mut failures = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let started = Instant::now();
        let answer = tokio::time::timeout(Duration::from_secs(5), send_raw(&addr, request_bytes(c, i))).await;
        let elapsed = started.elapsed();
        let (status, body) = match answer {
            Ok(Ok(a)) => a,
            Ok(Err(e)) => {
                failures.push(format!("{}: no answer ({e})", c.name));
                continue;
            }
            Err(_) => {
                failures.push(format!("{}: no answer within 5 s", c.name));
                continue;
            }
        };
        let json: Option<Value> = serde_json::from_slice(&body).ok();
        let code = json.as_ref().and_then(|j| j["error"]["code"].as_str()).map(str::to_owned);
        let ok_status = match c.status {
            Some(expected) => status == expected,
            None => (400..500).contains(&status),
        };
        let enveloped = json.as_ref().is_some_and(|j| j["status"] == "failure" && j["error"]["message"].is_string());
        if !ok_status || !enveloped || code.is_none() || elapsed > Duration::from_secs(1) {
            failures.push(format!(
                "{}: {status} in {elapsed:?}, expected {:?}: {}",
                c.name,
                c.status,
                String::from_utf8_lossy(&body[..body.len().min(300)])
            ));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
    // Alive, and nothing changed.
    assert_eq!(s.http.get(s.url("/healthz")).send().await.unwrap().status(), 200);
    assert_eq!(snapshot(&s).await, before, "hostile requests changed stored data");
    let logs = s.settled_logs();
    assert!(!logs.contains("panicked") && !logs.contains("status=5"), "{logs}");
}

#[tokio::test]
async fn batch_tricks_are_left_unserviced() {
    let s = Server::start();
    let before = snapshot(&s).await;
    let inner = |id: u32, method: &str, url: &str, body: Option<&str>| {
        let mut v = json!({"id": id, "method": method, "url": url, "headers": [
            {"name": "Content-Type", "value": "application/json"},
            {"name": "X-Forwarded-For", "value": "10.0.0.1"}]});
        if let Some(b) = body {
            v["body"] = json!(STANDARD.encode(b));
        }
        v
    };
    let batch = json!({"batch_request_id": "evil", "rest_requests": [
        inner(1, "POST", "/api/now/v1/batch", Some(r#"{"rest_requests": []}"#)),
        inner(2, "POST", "/api/now/batch/", Some(r#"{"rest_requests": []}"#)),
        inner(3, "GET", "https://evil.example/api/now/table/incident", None),
        inner(4, "GET", "//evil.example/api/now/table/incident", None),
        inner(5, "GET", "/api/now/../healthz", None),
        inner(6, "GET", "/metrics", None),
        inner(7, "DELETE", "/api/sluice/v1/accounts/admin", None),
        json!({"id": 8, "method": "POST", "url": "/api/now/table/incident", "body": "not base64 ☃"}),
    ]});
    let r = s.admin(s.http.post(s.url("/api/now/v1/batch"))).json(&batch).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["serviced_requests"], json!([]), "{body}");
    assert_eq!(body["unserviced_requests"].as_array().unwrap().len(), 8, "{body}");
    assert_eq!(snapshot(&s).await, before);
}

/// SQL in encoded queries, field lists and field filters: ServiceNow reads queries leniently
/// (unknown fields and unreadable terms are dropped), so these answer 200, but match nothing
/// they should not and change nothing.
#[tokio::test]
async fn sql_in_queries_and_field_lists_is_only_ever_data() {
    let s = Server::start();
    for i in 0..3 {
        let (status, _) = s.import(json!({"u_short_description": format!("keep {i}")})).await;
        assert_eq!(status, 201);
    }
    let before = snapshot(&s).await;
    let cases = [
        ("sysparm_query", "short_description=x' OR '1'='1", 0),
        ("sysparm_query", "short_description=keep 0'; DROP TABLE incident;--", 0),
        ("sysparm_query", "short_descriptionLIKE%' OR 1=1 --", 0),
        ("sysparm_query", "numberIN'),(SELECT password_hash FROM sys_user", 0),
        ("sysparm_query", "ORDERBYshort_description; DROP TABLE incident", 3),
        ("sysparm_query", "caller_id.password_hash!=x", 3),
        ("short_description", "keep 1' OR '1'='1", 0),
        ("sysparm_fields", "number,(SELECT password_hash FROM sys_user),short_description", 3),
    ];
    for (key, value, expected) in cases {
        let encoded: String = value
            .bytes()
            .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
            .collect();
        let url = s.url(&format!("/api/now/table/incident?{key}={encoded}&sysparm_limit=100"));
        let r = s.admin(s.http.get(url)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{key}={value}");
        let body: Value = r.json().await.unwrap();
        let rows = body["result"].as_array().unwrap();
        assert_eq!(rows.len(), expected, "{key}={value}: {body}");
        let text = body.to_string();
        assert!(!text.contains("argon2"), "{key}={value} leaked a hash: {text}");
    }
    assert_eq!(snapshot(&s).await, before);
}

/// SQL and scripts through the new operators and `javascript:` values: refused with 400
/// `invalid_query` before any SQL is made, or bound as values; nothing leaks or changes.
#[tokio::test]
async fn sql_through_relative_dates_and_field_comparisons_is_refused_or_bound() {
    let s = Server::start();
    for i in 0..3 {
        let (status, _) = s.import(json!({"u_short_description": format!("keep {i}")})).await;
        assert_eq!(status, 201);
    }
    let before = snapshot(&s).await;
    let refused = [
        "sys_created_on>javascript:gs.daysAgo(1);drop table incident",
        "sys_created_on>javascript:gs.daysAgo(1)) OR 1=1 --",
        "sys_created_on>javascript:gs.daysAgo(((((((((((((((((1)))))))))))))))))",
        "sys_created_on>javascript:gs.daysAgo(gs.daysAgo(1))",
        "sys_created_on>javascript:gs.daysAgo(99999999999999999999999999999)",
        "sys_created_on>javascript:gs.monthsAgo(100000)",
        "sys_created_on>javascript:gs.dateGenerate('2026-01-01'' OR ''1''=''1','00:00:00')",
        "sys_created_on>javascript:java.lang.Runtime.getRuntime().exec('id')",
        "sys_created_onONToday@javascript:gs.beginningOfToday()@1' OR '1'='1",
        "sys_created_onRELATIVEGT@hour@ago@1; DROP TABLE incident",
        "sys_created_onDATEPARTx@javascript:gs.datePart('hour','1 OR 1=1','EE')",
        "sys_created_onSAMEASnumber) OR (1=1",
        "sys_created_onMORETHANsys_updated_on@hour@after@1; DELETE FROM sys_user",
    ];
    for query in refused {
        let url = s.url(&format!("/api/now/table/incident?sysparm_query={}", encode(query)));
        let r = s.admin(s.http.get(url)).send().await.unwrap();
        assert_eq!(r.status(), 400, "{query}");
        let body: Value = r.json().await.unwrap();
        assert_envelope(&body, "invalid_query");
    }
    // Parsed, then bound or dropped: the other field of a comparison must be a field the table
    // lets clients read (the password hash is not).
    for (query, expected) in [
        ("sys_created_onSAMEASpassword_hash", 3),
        ("caller_id.user_nameSAMEASpassword_hash", 3),
        ("short_descriptionNSAMEASnumber", 3),
        ("sys_created_onNOTON@2000-01-01 00:00:00@2000-01-02 00:00:00", 3),
    ] {
        let url = s.url(&format!("/api/now/table/incident?sysparm_query={}", encode(query)));
        let r = s.admin(s.http.get(url)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{query}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["result"].as_array().unwrap().len(), expected, "{query}: {body}");
    }
    let fields = "number,caller_id.password_hash,opened_by.password_hash,opened_by.user_name";
    let url = s.url(&format!("/api/now/table/incident?sysparm_fields={}", encode(fields)));
    let body: Value = s.admin(s.http.get(url)).send().await.unwrap().json().await.unwrap();
    assert!(!body.to_string().contains("argon2"), "a dot-walk leaked a hash: {body}");
    assert_eq!(body["result"][0]["opened_by.user_name"], "admin", "{body}");
    assert_eq!(snapshot(&s).await, before);
}

fn encode(v: &str) -> String {
    v.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}
