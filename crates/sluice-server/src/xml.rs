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
//!
//! Well-formedness both ways: the reader refuses (`malformed_xml`) any character XML 1.0
//! forbids, raw or as a character reference, names that are not XML names, mismatched tags, a
//! second root and anything after it. Answers are always well-formed: element names are keys
//! made XML names ([`xml_name`]) and a character XML 1.0 cannot hold (in values, echoed paths
//! included) is written as U+FFFD, since not even a character reference can carry it.

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
    if let Some(c) = text.chars().find(|c| !is_xml_char(*c)) {
        return Err(forbidden(c));
    }
    let mut reader = quick_xml::Reader::from_str(text);
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<Open> = Vec::new();
    let mut root = None;
    loop {
        let event = reader.read_event().map_err(malformed)?;
        let opened = match &event {
            Event::Start(e) | Event::Empty(e) => Some(checked_start(e)?),
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
                    Some(c) if !is_xml_char(c) => return Err(forbidden(c)),
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

/// Whether XML 1.0 can hold `c` at all (its `Char` production), even as a character reference.
pub fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

fn is_name_start(c: char) -> bool {
    matches!(c,
        ':' | 'A'..='Z' | '_' | 'a'..='z' | '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}' | '\u{F8}'..='\u{2FF}'
        | '\u{370}'..='\u{37D}' | '\u{37F}'..='\u{1FFF}' | '\u{200C}'..='\u{200D}' | '\u{2070}'..='\u{218F}'
        | '\u{2C00}'..='\u{2FEF}' | '\u{3001}'..='\u{D7FF}' | '\u{F900}'..='\u{FDCF}' | '\u{FDF0}'..='\u{FFFD}'
        | '\u{10000}'..='\u{EFFFF}')
}

/// XML 1.0's `Name` production.
pub fn is_xml_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(is_name_start)
        && chars.all(|c| {
            is_name_start(c)
                || matches!(c, '-' | '.' | '0'..='9' | '\u{B7}' | '\u{300}'..='\u{36F}' | '\u{203F}'..='\u{2040}')
        })
}

fn forbidden(c: char) -> ApiError {
    malformed(format!("U+{:04X} is not a character XML 1.0 allows", c as u32))
}

/// A start tag's local name, once its name and attributes are known to be well-formed (the
/// attributes themselves are not read).
fn checked_start(e: &quick_xml::events::BytesStart<'_>) -> Result<String, ApiError> {
    let name = e.name().into_inner();
    if !is_xml_name(name) {
        return Err(malformed(format!("<{name}> is not an XML name")));
    }
    for attribute in e.attributes().with_checks(true) {
        let attribute = attribute.map_err(malformed)?;
        let key = attribute.key.into_inner();
        if !is_xml_name(key) {
            return Err(malformed(format!("attribute {key:?} is not an XML name")));
        }
        if attribute.value.contains('<') {
            return Err(malformed("'<' in an attribute value"));
        }
        let value = attribute.normalized_value(quick_xml::XmlVersion::Implicit1_0).map_err(malformed)?;
        if let Some(c) = value.chars().find(|c| !is_xml_char(*c)) {
            return Err(forbidden(c));
        }
    }
    Ok(e.local_name().into_inner().to_owned())
}

/// Text content: `<`, `>` and `&` escaped, CR kept as a reference (parsers turn a raw one into
/// LF), and what XML 1.0 cannot hold as U+FFFD.
pub(crate) fn push_text(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\r' => out.push_str("&#13;"),
            c if !is_xml_char(c) => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
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

/// One JSON value as `<name>…</name>` (an array as the element repeated), appended to `out`.
pub(crate) fn element(out: &mut String, name: &str, value: &Value) {
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
        Value::String(s) => push_text(out, s),
        other => out.push_str(&other.to_string()),
    }
    out.push_str("</");
    out.push_str(&name);
    out.push('>');
}

/// A key as an element name: characters XML names cannot hold become `_`.
pub(crate) fn xml_name(key: &str) -> String {
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
    fn documents_with_forbidden_characters_or_broken_structure_are_refused() {
        let refused = [
            "<a>&#1;</a>",
            "<a>&#x1F;</a>",
            "<a>&#xFFFE;</a>",
            "<a>&#xFFFF;</a>",
            "<a>&#0;</a>",
            "<a>&#xD800;</a>",
            "<a>\u{1}</a>",
            "<a>\u{B}\u{C}</a>",
            "<a>\u{FFFE}</a>",
            "<a\u{1}/>",
            "<a b=\"&#2;\"/>",
            "<a b=\"1\" b=\"2\"/>",
            "<1a/>",
            "<a><b></a></b>",
            "<a/><b/>",
            "<a/>trailing",
            "<a/>&amp;",
            "<a>&unknown;</a>",
        ];
        for text in refused {
            assert!(matches!(parse(text, 32), Err(ApiError::MalformedXml(_))), "{text:?}");
        }
        assert_eq!(parse("<a b=\"&lt;x&#9;\">\t&#10;&#x10000;ü</a>", 32).unwrap(), json!("\t\n\u{10000}ü"));
    }

    #[test]
    fn answers_are_well_formed_whatever_the_keys_and_values() {
        let mut hostile = String::new();
        for c in (0u32..0x20).chain([0xFFFE, 0xFFFF]).filter_map(char::from_u32) {
            hostile.push(c);
        }
        hostile.push_str("<&>]]>\"'");
        let keys = ["", "1abc", "a b", "ü", "\u{1}", "xml:x", "-", "a<b>", "\u{FFFF}"];
        let mut object = serde_json::Map::new();
        for key in keys {
            object.insert(key.to_owned(), json!(hostile));
        }
        let xml = document(&json!({"result": object}));
        assert!(!xml.chars().any(|c| !is_xml_char(c)), "{xml:?}");
        // Read back by the strict reader: every key an element, each value what XML can hold.
        let back = parse(&xml, 32).unwrap();
        let result = back["result"].as_object().unwrap();
        assert_eq!(result.values().map(|v| v.as_array().map_or(1, Vec::len)).sum::<usize>(), keys.len());
        let expected: String = hostile.chars().map(|c| if is_xml_char(c) { c } else { '\u{FFFD}' }).collect();
        assert!(
            result
                .values()
                .flat_map(|v| v.as_array().cloned().unwrap_or_else(|| vec![v.clone()]))
                .all(|v| v == expected)
        );
        assert!(keys.iter().all(|k| is_xml_name(&xml_name(k))));
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
