//! One delivery to an upstream: the request its kind speaks, signed in as the definition says,
//! and its answer judged: delivered (with the upstream's number and sys_id), worth another try
//! (the upstream is in trouble: network, timeout, 408, 425, 429, 5xx), or refused for good
//! (another 4xx, a redirect, a ServiceNow row `error`).

use std::time::{Duration, Instant};

use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{Map, Value};
use sluice_core::Record;
use sluice_core::integration::{Forward, UpstreamAuth, UpstreamKind};
use tokio::sync::Mutex;

use super::retry;

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    Delivered {
        number: String,
        sys_id: String,
    },
    /// Try again (after `after`, when the upstream said so in `Retry-After`).
    Retry {
        error: String,
        after: Option<Duration>,
    },
    Refused {
        error: String,
    },
}

/// The most of an upstream's answer read (its error message or ticket number is near the top).
const MAX_ANSWER_BYTES: usize = 256 * 1024;

/// The client of one integration's upstream.
pub struct Upstream {
    client: reqwest::Client,
    forward: Forward,
    /// The OAuth access token and when it stops being used.
    token: Mutex<Option<(String, Instant)>>,
}

impl Upstream {
    pub fn new(forward: Forward) -> Result<Self, reqwest::Error> {
        // rustls without aws-lc-rs: the ring provider, as the TLS listener uses.
        let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(forward.timeout)
            .connect_timeout(forward.timeout.min(Duration::from_secs(5)))
            // A redirect is a refusal: credentials never follow one to another host.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("sluice/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { client, forward, token: Mutex::new(None) })
    }

    pub fn forward(&self) -> &Forward {
        &self.forward
    }

    /// The body sent: the configured fields of the record and the correlation value.
    pub fn body(&self, record: &Record) -> Map<String, Value> {
        let mut body: Map<String, Value> = self
            .forward
            .fields
            .iter()
            .map(|(upstream, local)| (upstream.clone(), Value::String(record.get(local).cloned().unwrap_or_default())))
            .collect();
        let sys_id = record.get("sys_id").map(String::as_str).unwrap_or_default();
        body.insert(self.forward.correlation_field.clone(), Value::String(Forward::correlation_value(sys_id)));
        body
    }

    /// Delivers `record`; `known_sys_id` is the upstream record an earlier delivery answered
    /// (Table API: updated in place), `key` the `Idempotency-Key` of this version of it.
    pub async fn deliver(&self, record: &Record, known_sys_id: &str, key: &str) -> Attempt {
        let body = Value::Object(self.body(record));
        let f = &self.forward;
        match f.kind {
            UpstreamKind::ServicenowImport => {
                let url = f.endpoint();
                match self.send(Method::POST, &url, Some(&body), key).await {
                    Ok(answer) => import_result(&answer),
                    Err(attempt) => attempt,
                }
            }
            UpstreamKind::ServicenowTable => {
                let existing = if known_sys_id.is_empty() {
                    match self.find(record).await {
                        Ok(found) => found,
                        Err(attempt) => return attempt,
                    }
                } else {
                    Some(known_sys_id.to_owned())
                };
                let (method, url) = match existing {
                    Some(sys_id) => (Method::PATCH, format!("{}/{sys_id}", f.endpoint())),
                    None => (Method::POST, f.endpoint()),
                };
                match self.send(method, &url, Some(&body), key).await {
                    Ok(answer) => numbered(&answer["result"]),
                    Err(attempt) => attempt,
                }
            }
            // Any JSON answer; the number and sys_id are read where ServiceNow-shaped answers put
            // them: a `result` record, an import set's `result` rows (a sluice sender hook), or
            // the top level.
            UpstreamKind::HttpJson => match self.send(Method::POST, &f.url, Some(&body), key).await {
                Ok(answer) if answer["result"].is_object() => numbered(&answer["result"]),
                Ok(answer) if answer["result"].is_array() => import_result(&answer),
                Ok(answer) => numbered(&answer),
                Err(attempt) => attempt,
            },
        }
    }

    /// The Table API record with this record's correlation value, if an earlier delivery made
    /// one (a delivery whose answer was lost, or a crash before it was recorded).
    async fn find(&self, record: &Record) -> Result<Option<String>, Attempt> {
        let sys_id = record.get("sys_id").map(String::as_str).unwrap_or_default();
        // Field names are identifiers and sys_ids hex: only `=` and `:` need escaping.
        let query =
            format!("{}%3D{}", self.forward.correlation_field, Forward::correlation_value(sys_id).replace(':', "%3A"));
        let url =
            format!("{}?sysparm_query={query}&sysparm_fields=sys_id,number&sysparm_limit=1", self.forward.endpoint());
        let answer = self.send(Method::GET, &url, None, "").await?;
        Ok(answer["result"]
            .as_array()
            .and_then(|rows| rows.first())
            .and_then(|r| r["sys_id"].as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_owned))
    }

    /// Sends one request; a 2xx answer's JSON (null when it has none), else how it failed.
    async fn send(&self, method: Method, url: &str, body: Option<&Value>, key: &str) -> Result<Value, Attempt> {
        let mut request = self.client.request(method, url).header("Accept", "application/json");
        if let Some(body) = body {
            request = request.json(body);
        }
        if !key.is_empty() {
            request = request.header("Idempotency-Key", key);
        }
        let request = self.sign(request).await?;
        let response = request.send().await.map_err(|e| Attempt::Retry { error: describe(e), after: None })?;
        let status = response.status();
        let after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(retry::retry_after);
        let text = read_answer(response).await.map_err(|error| Attempt::Retry { error, after: None })?;
        if status.is_success() {
            return Ok(serde_json::from_str(&text).unwrap_or(Value::Null));
        }
        let error = format!("{} {}: {}", url_path(url), status.as_u16(), error_text(&text));
        if status == StatusCode::UNAUTHORIZED && matches!(self.forward.auth, UpstreamAuth::OAuth { .. }) {
            // The token may have been revoked early: the next attempt asks for a new one.
            *self.token.lock().await = None;
            return Err(Attempt::Retry { error, after: None });
        }
        Err(judge(status, error, after))
    }

    async fn sign(&self, request: RequestBuilder) -> Result<RequestBuilder, Attempt> {
        Ok(match &self.forward.auth {
            UpstreamAuth::None => request,
            UpstreamAuth::Basic { user, password, .. } => {
                request.basic_auth(user, Some(String::from_utf8_lossy(password.expose())))
            }
            UpstreamAuth::Bearer { token, .. } => request.bearer_auth(String::from_utf8_lossy(token.expose())),
            UpstreamAuth::OAuth { .. } => request.bearer_auth(self.access_token().await?),
        })
    }

    /// The OAuth access token, asked for with the client credentials when there is none or it
    /// is about to expire.
    async fn access_token(&self) -> Result<String, Attempt> {
        let UpstreamAuth::OAuth { token_url, client_id, secret, .. } = &self.forward.auth else {
            unreachable!("only OAuth asks for tokens")
        };
        let mut held = self.token.lock().await;
        if let Some((token, until)) = &*held
            && Instant::now() < *until
        {
            return Ok(token.clone());
        }
        let form = [
            ("grant_type", "client_credentials".to_owned()),
            ("client_id", client_id.clone()),
            ("client_secret", String::from_utf8_lossy(secret.expose()).into_owned()),
        ];
        let retry = |error: String| Attempt::Retry { error, after: None };
        let response = self
            .client
            .post(token_url)
            .header("Accept", "application/json")
            .form(&form)
            .send()
            .await
            .map_err(|e| retry(format!("OAuth token: {}", describe(e))))?;
        let status = response.status();
        let text = read_answer(response).await.map_err(retry)?;
        if !status.is_success() {
            let error = format!("OAuth token {}: {}", status.as_u16(), error_text(&text));
            return Err(judge(status, error, None));
        }
        let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let Some(token) = answer["access_token"].as_str().filter(|t| !t.is_empty()) else {
            return Err(Attempt::Refused { error: "OAuth token: the answer has no access_token".into() });
        };
        let lifetime = answer["expires_in"].as_u64().unwrap_or(300).clamp(30, 86_400);
        let until = Instant::now() + Duration::from_secs(lifetime - lifetime / 10);
        *held = Some((token.to_owned(), until));
        Ok(token.to_owned())
    }
}

/// Statuses that say "later": the request itself was fine.
fn judge(status: StatusCode, error: String, after: Option<Duration>) -> Attempt {
    let transient = status.is_server_error()
        || matches!(status, StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_MANY_REQUESTS)
        || status.as_u16() == 425;
    if transient { Attempt::Retry { error, after } } else { Attempt::Refused { error } }
}

/// An Import Set API answer: the first result row's status decides.
fn import_result(answer: &Value) -> Attempt {
    let row = match &answer["result"] {
        Value::Array(rows) => rows.first().cloned().unwrap_or(Value::Null),
        other => other.clone(),
    };
    match row["status"].as_str() {
        Some("error") => Attempt::Refused {
            error: format!(
                "the upstream's transform refused the row: {}",
                row["error_message"].as_str().or(row["status_message"].as_str()).unwrap_or("no message")
            ),
        },
        Some(_) => Attempt::Delivered {
            number: row["display_value"].as_str().unwrap_or_default().to_owned(),
            sys_id: row["sys_id"].as_str().unwrap_or_default().to_owned(),
        },
        None => Attempt::Refused { error: "the answer is not an Import Set API result".into() },
    }
}

/// A record in an answer: its `number` and `sys_id`, when it has them.
fn numbered(record: &Value) -> Attempt {
    let text = |k: &str| record[k].as_str().unwrap_or_default().to_owned();
    Attempt::Delivered { number: text("number"), sys_id: text("sys_id") }
}

/// The answer's text, at most [`MAX_ANSWER_BYTES`].
async fn read_answer(mut response: Response) -> Result<String, String> {
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(describe)? {
        bytes.extend_from_slice(&chunk);
        if bytes.len() >= MAX_ANSWER_BYTES {
            bytes.truncate(MAX_ANSWER_BYTES);
            break;
        }
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// ServiceNow's error envelope (`error.message`, `error.detail`), else the start of the text.
fn error_text(text: &str) -> String {
    let envelope: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    let message = envelope["error"]["message"].as_str().unwrap_or_default();
    let detail = envelope["error"]["detail"].as_str().unwrap_or_default();
    let found = match (message, detail) {
        ("", "") => text.trim().to_owned(),
        (m, "") => m.to_owned(),
        ("", d) => d.to_owned(),
        (m, d) => format!("{m} ({d})"),
    };
    found.chars().take(300).collect()
}

/// A transport error without the URL's query (reqwest's text names the URL).
fn describe(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    let e = e.without_url();
    let mut text = format!("{kind}: {e}");
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text.chars().take(300).collect()
}

fn url_path(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let path = rest.find('/').map_or("/", |i| &rest[i..]);
    path.split('?').next().unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn statuses_are_judged_as_alertmanager_and_svix_judge_them() {
        for s in [500, 502, 503, 504, 429, 408, 425] {
            let status = StatusCode::from_u16(s).unwrap();
            assert!(matches!(judge(status, String::new(), None), Attempt::Retry { .. }), "{s}");
        }
        for s in [400, 401, 403, 404, 409, 422, 301, 302] {
            let status = StatusCode::from_u16(s).unwrap();
            assert!(matches!(judge(status, String::new(), None), Attempt::Refused { .. }), "{s}");
        }
    }

    #[test]
    fn import_results_and_envelopes_are_read() {
        let inserted = json!({"result": [{"status": "inserted", "display_value": "INC0010001", "sys_id": "abc"}]});
        assert_eq!(import_result(&inserted), Attempt::Delivered { number: "INC0010001".into(), sys_id: "abc".into() });
        let refused = json!({"result": [{"status": "error", "error_message": "bad impact"}]});
        assert_eq!(
            import_result(&refused),
            Attempt::Refused { error: "the upstream's transform refused the row: bad impact".into() }
        );
        assert_eq!(
            error_text(r#"{"error":{"message":"No Record found","detail":"x"},"status":"failure"}"#),
            "No Record found (x)"
        );
        assert_eq!(error_text("plain"), "plain");
        assert_eq!(url_path("http://h:1/api/now/table/incident?sysparm_query=x"), "/api/now/table/incident");
    }
}
