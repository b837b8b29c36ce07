//! XML on the Import Set and Table APIs, as ServiceNow speaks it: a body sent as
//! `application/xml` or `text/xml` is read at the edge into the JSON value the JSON path would
//! have received (then every JSON limit applies to it as to JSON), and an answer is written as
//! XML when the client's `Accept` prefers XML, errors included.
//!
//! Shapes: a request's root element (any name, e.g. `<request>`) holds one element per field,
//! optionally inside one `<entry>`; nested elements become nested objects (for `source` paths),
//! a repeated element becomes an array, text becomes a string, an empty element `""`.
//! `insertMultiple` takes `<request><records>…</records><records>…</records></request>` (or
//! `<records><record>…</record></records>`). Answers are `<response>` with the JSON answer's
//! keys as elements and an array as the element repeated (`<result>…</result><result>…</result>`).
//!
//! No document type declaration is accepted (`xml_dtd_refused`), so no entity can be defined or
//! expanded; only XML's five predefined entities and character references are read.

use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use quick_xml::events::Event;
use serde_json::{Map, Value};

use crate::ServerConfig;
use crate::error::ApiError;

/// Whether XML is spoken at this path: the Import Set, Table and Aggregate APIs under each
/// `/api/now` prefix.
pub fn applies(path: &str) -> bool {
    let rest = ["/api/now/v1/", "/api/now/v2/", "/api/now/"].iter().find_map(|p| path.strip_prefix(p));
    rest.is_some_and(|r| r.starts_with("import/") || r.starts_with("table/") || r.starts_with("stats/"))
}

fn essence(content_type: &str) -> String {
    content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase()
}

pub fn is_xml(content_type: &str) -> bool {
    let e = essence(content_type);
    e == "application/xml" || e == "text/xml" || (e.starts_with("application/") && e.ends_with("+xml"))
}

/// Whether `Accept` prefers XML to JSON (JSON when equal, absent or anything goes).
pub fn prefers_xml(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get(ACCEPT).and_then(|a| a.to_str().ok()) else { return false };
    let (mut json, mut xml) = (None::<f32>, None::<f32>);
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let kind = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q =
            parts.filter_map(|p| p.trim().strip_prefix("q=")).find_map(|q| q.trim().parse::<f32>().ok()).unwrap_or(1.0);
        let slot = match kind.as_str() {
            "application/xml" | "text/xml" => &mut xml,
            "application/json" | "*/*" | "application/*" => &mut json,
            _ => continue,
        };
        *slot = Some(slot.map_or(q, |s| s.max(q)));
    }
    match (xml, json) {
        (Some(x), Some(j)) => x > j,
        (Some(x), None) => x > 0.0,
        _ => false,
    }
}

/// Middleware: XML bodies in, XML answers out, on the paths [`applies`] names.
pub async fn negotiate(State(config): State<Arc<ServerConfig>>, request: Request, next: Next) -> Response {
    if !applies(request.uri().path()) {
        return next.run(request).await;
    }
    let wants_xml = prefers_xml(request.headers());
    let response = match read_xml_body(&config, request).await {
        Ok(request) => next.run(request).await,
        Err(e) => e.into_response(),
    };
    if wants_xml { answer_in_xml(response).await } else { response }
}

/// An XML request turned into the JSON request it stands for; others as they are.
async fn read_xml_body(config: &ServerConfig, request: Request) -> Result<Request, ApiError> {
    let sent_xml = request.headers().get(CONTENT_TYPE).and_then(|c| c.to_str().ok()).is_some_and(is_xml);
    if !sent_xml {
        return Ok(request);
    }
    let bulk = request.uri().path().ends_with("/insertMultiple");
    let limit = if bulk { config.max_bulk_body_bytes } else { config.max_body_bytes };
    let (mut parts, body) = request.into_parts();
    let raw = to_bytes(body, limit).await.map_err(|_| ApiError::BodyTooLarge(limit))?;
    if raw.iter().all(u8::is_ascii_whitespace) {
        // No body (clients send the header on GETs too): nothing to read, as for JSON.
        parts.headers.remove(CONTENT_TYPE);
        parts.headers.remove(CONTENT_LENGTH);
        return Ok(Request::from_parts(parts, Body::empty()));
    }
    let text = std::str::from_utf8(&raw).map_err(|_| ApiError::MalformedXml("the body is not UTF-8".into()))?;
    let value = request_value(text, config.max_json_depth, bulk)?;
    let json = serde_json::to_vec(&value).map_err(|e| ApiError::Internal(e.to_string()))?;
    parts.headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    parts.headers.insert(CONTENT_LENGTH, HeaderValue::from(json.len()));
    Ok(Request::from_parts(parts, Body::from(json)))
}

/// The JSON value an XML request body stands for.
pub fn request_value(text: &str, max_depth: usize, bulk: bool) -> Result<Value, ApiError> {
    let mut value = match parse(text, max_depth)? {
        Value::Object(mut root) => match root.remove("entry") {
            Some(Value::Object(entry)) if root.is_empty() => Value::Object(entry),
            Some(other) => {
                root.insert("entry".into(), other);
                Value::Object(root)
            }
            None => Value::Object(root),
        },
        Value::String(s) if s.trim().is_empty() => Value::Object(Map::new()),
        other => other,
    };
    if bulk && let Some(records) = value.get_mut("records") {
        if let Value::Object(o) = records
            && o.len() == 1
            && let Some(inner) = o.remove("record")
        {
            *records = inner;
        }
        if records.is_object() {
            *records = Value::Array(vec![records.take()]);
        }
    }
    Ok(value)
}

/// An element being read: its name, its child elements so far, its text so far.
struct Open {
    name: String,
    children: Map<String, Value>,
    text: String,
}

fn add_child(children: &mut Map<String, Value>, name: String, value: Value) {
    match children.get_mut(&name) {
        Some(Value::Array(items)) => items.push(value),
        Some(existing) => {
            let first = existing.take();
            *existing = Value::Array(vec![first, value]);
        }
        None => {
            children.insert(name, value);
        }
    }
}

fn malformed(e: impl std::fmt::Display) -> ApiError {
    ApiError::MalformedXml(e.to_string())
}

/// Reads one XML document into a JSON value (its root element's content). Elements nested
/// deeper than `max_depth` objects are refused as JSON would be (`json_too_deep`).
pub fn parse(text: &str, max_depth: usize) -> Result<Value, ApiError> {
    let mut reader = quick_xml::Reader::from_str(text);
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<Open> = Vec::new();
    let mut root = None;
    loop {
        let event = reader.read_event().map_err(malformed)?;
        let opened = match &event {
            Event::Start(e) | Event::Empty(e) => Some(e.local_name().into_inner().to_owned()),
            _ => None,
        };
        if let Some(name) = opened {
            if root.is_some() {
                return Err(malformed("more than one root element"));
            }
            // Leaves are strings, so objects nest one level less deep than elements.
            if stack.len() > max_depth {
                return Err(ApiError::JsonTooDeep(max_depth));
            }
            stack.push(Open { name, children: Map::new(), text: String::new() });
        }
        match event {
            Event::DocType(_) => return Err(ApiError::XmlDtd),
            Event::Text(t) => match stack.last_mut() {
                Some(open) => open.text.push_str(&t.xml10_content()),
                None if t.xml10_content().trim().is_empty() => {}
                None => return Err(malformed("text outside the root element")),
            },
            Event::CData(c) => match stack.last_mut() {
                Some(open) => open.text.push_str(&c.into_inner()),
                None => return Err(malformed("CDATA outside the root element")),
            },
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref().map_err(malformed)? {
                    Some(c) => c.to_string(),
                    None => quick_xml::escape::resolve_predefined_entity(&r)
                        .ok_or_else(|| malformed(format!("unknown entity &{};", &*r)))?
                        .to_owned(),
                };
                match stack.last_mut() {
                    Some(open) => open.text.push_str(&resolved),
                    None => return Err(malformed("a reference outside the root element")),
                }
            }
            Event::Start(_) => {}
            Event::Empty(_) | Event::End(_) => {
                let open = stack.pop().ok_or_else(|| malformed("an end tag without its start"))?;
                let value = if open.children.is_empty() {
                    Value::String(open.text)
                } else if open.text.trim().is_empty() {
                    Value::Object(open.children)
                } else {
                    return Err(malformed(format!("<{}> mixes text and elements", open.name)));
                };
                match stack.last_mut() {
                    Some(parent) => add_child(&mut parent.children, open.name, value),
                    None => root = Some(value),
                }
            }
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
        }
    }
    if !stack.is_empty() {
        return Err(malformed("the document ends inside an element"));
    }
    root.ok_or_else(|| malformed("no root element"))
}

/// A JSON answer rewritten as XML; other answers as they are.
async fn answer_in_xml(response: Response) -> Response {
    let is_json =
        response.headers().get(CONTENT_TYPE).and_then(|c| c.to_str().ok()).is_some_and(crate::receive::is_json);
    if !is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    // Our own answer, already in memory.
    let Ok(bytes) = to_bytes(body, usize::MAX).await else {
        return ApiError::Internal("answer body".into()).into_response();
    };
    let Ok(value) = serde_json::from_slice::<Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    let xml = document(&value);
    parts.headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/xml; charset=utf-8"));
    parts.headers.remove(CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(xml))
}

/// `<?xml …?><response>…</response>` for a JSON answer.
pub fn document(value: &Value) -> String {
    let mut out = String::from(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    element(&mut out, "response", value);
    out
}

fn element(out: &mut String, name: &str, value: &Value) {
    match value {
        Value::Array(items) => {
            for item in items {
                element(out, name, item);
            }
            return;
        }
        Value::Null => {
            out.push_str(&format!("<{}/>", xml_name(name)));
            return;
        }
        _ => {}
    }
    let name = xml_name(name);
    out.push('<');
    out.push_str(&name);
    out.push('>');
    match value {
        Value::Object(fields) => {
            for (k, v) in fields {
                element(out, k, v);
            }
        }
        Value::String(s) => out.push_str(&quick_xml::escape::escape(s.as_str())),
        other => out.push_str(&other.to_string()),
    }
    out.push_str("</");
    out.push_str(&name);
    out.push('>');
}

/// A key as an element name: characters XML names cannot hold become `_`.
fn xml_name(key: &str) -> String {
    let mut name: String =
        key.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') { c } else { '_' }).collect();
    if !name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        name.insert(0, '_');
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn elements_become_the_json_the_json_path_gets() {
        let text = r#"<?xml version="1.0"?><request><entry><u_a>x &amp; y &#65;</u_a><u_empty/>
            <alert><host>db-01</host><tag>a</tag><tag>b</tag></alert><u_c><![CDATA[<raw>]]></u_c></entry></request>"#;
        let value = request_value(text, 32, false).unwrap();
        assert_eq!(
            value,
            json!({"u_a": "x & y A", "u_empty": "", "alert": {"host": "db-01", "tag": ["a", "b"]}, "u_c": "<raw>"})
        );
    }

    #[test]
    fn records_of_insert_multiple_are_an_array() {
        let one = request_value("<request><records><u_a>1</u_a></records></request>", 32, true).unwrap();
        assert_eq!(one, json!({"records": [{"u_a": "1"}]}));
        let nested = request_value(
            "<r><records><record><u_a>1</u_a></record><record><u_a>2</u_a></record></records></r>",
            32,
            true,
        )
        .unwrap();
        assert_eq!(nested, json!({"records": [{"u_a": "1"}, {"u_a": "2"}]}));
    }

    #[test]
    fn dtds_unknown_entities_depth_and_broken_documents_are_refused() {
        let laughs = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><lolz>&lol2;</lolz>"#;
        assert!(matches!(parse(laughs, 32), Err(ApiError::XmlDtd)));
        assert!(matches!(parse("<a>&lol;</a>", 32), Err(ApiError::MalformedXml(_))));
        assert!(matches!(parse("<a><b></a>", 32), Err(ApiError::MalformedXml(_))));
        assert!(matches!(parse("<a/><b/>", 32), Err(ApiError::MalformedXml(_))));
        assert!(matches!(parse("<a>x<b/></a>", 32), Err(ApiError::MalformedXml(_))));
        assert!(matches!(parse("", 32), Err(ApiError::MalformedXml(_))));
        let deep = "<a>".repeat(5) + "x" + &"</a>".repeat(5);
        assert!(matches!(parse(&deep, 3), Err(ApiError::JsonTooDeep(3))));
        assert!(parse(&deep, 4).is_ok(), "four objects deep, the innermost element a string");
    }

    #[test]
    fn answers_repeat_array_elements_and_escape_text() {
        let xml =
            document(&json!({"result": [{"a": "1 < 2", "ref": {"link": "l", "value": "v"}}, {"a": null}], "n": 3}));
        assert_eq!(
            xml,
            r#"<?xml version="1.0" encoding="UTF-8"?><response><result><a>1 &lt; 2</a><ref><link>l</link><value>v</value></ref></result><result><a/></result><n>3</n></response>"#
        );
        let back = parse(&xml, 32).unwrap();
        assert_eq!(back["result"][0]["ref"]["value"], "v");
    }

    #[test]
    fn accept_decides() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(ACCEPT, HeaderValue::from_str(v).unwrap());
            m
        };
        assert!(prefers_xml(&h("application/xml")));
        assert!(prefers_xml(&h("text/xml, application/json;q=0.5")));
        assert!(!prefers_xml(&h("application/json, application/xml")));
        assert!(!prefers_xml(&h("*/*")));
        assert!(!prefers_xml(&HeaderMap::new()));
        assert!(applies("/api/now/v2/table/incident") && applies("/api/now/import/u_x/insertMultiple"));
        assert!(!applies("/api/now/batch") && !applies("/api/sluice/v1/integrations"));
    }
}
