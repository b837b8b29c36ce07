//! SOAP envelopes: a request read into a typed [`SoapRequest`] (version from the content type,
//! the envelope's namespace checked, the body's one element dispatched on its local name), and
//! answers and faults written in the version asked. The document itself is read by the same
//! reader as every XML body ([`crate::xml::parse`]: no DTD, no entities, well-formedness, depth).

use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::xml;

pub const SOAP11_ENV: &str = "http://schemas.xmlsoap.org/soap/envelope/";
pub const SOAP12_ENV: &str = "http://www.w3.org/2003/05/soap-envelope";
/// The namespace of the `<error>` detail entry of sluice's faults.
pub const ERROR_NS: &str = "urn:sluice:error";

/// The SOAP version a request speaks; its answer speaks the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// `text/xml`, `SOAPAction` header.
    Soap11,
    /// `application/soap+xml; action=…`.
    Soap12,
}

impl Version {
    /// The version a request's `Content-Type` names; `None` for anything else.
    pub fn of(headers: &HeaderMap) -> Option<Version> {
        let ct = headers.get(CONTENT_TYPE).and_then(|c| c.to_str().ok()).unwrap_or("");
        match ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase().as_str() {
            "text/xml" => Some(Version::Soap11),
            "application/soap+xml" => Some(Version::Soap12),
            _ => None,
        }
    }

    fn namespace(self) -> &'static str {
        match self {
            Version::Soap11 => SOAP11_ENV,
            Version::Soap12 => SOAP12_ENV,
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Version::Soap11 => "text/xml; charset=utf-8",
            Version::Soap12 => "application/soap+xml; charset=utf-8",
        }
    }
}

/// The operations sluice serves on a staging table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Insert,
    InsertMultiple,
    Get,
    GetRecords,
}

impl Operation {
    pub const ALL: [Operation; 4] =
        [Operation::Insert, Operation::InsertMultiple, Operation::Get, Operation::GetRecords];

    pub fn name(self) -> &'static str {
        match self {
            Operation::Insert => "insert",
            Operation::InsertMultiple => "insertMultiple",
            Operation::Get => "get",
            Operation::GetRecords => "getRecords",
        }
    }

    fn from_local_name(name: &str) -> Option<Operation> {
        Operation::ALL.into_iter().find(|o| o.name() == name)
    }
}

/// A parsed request: its version, the operation and the operation element's content (child
/// elements as the JSON the XML routes read: text a string, nested elements an object,
/// repeated ones an array).
#[derive(Debug)]
pub struct SoapRequest {
    pub version: Version,
    pub operation: Operation,
    pub content: Map<String, Value>,
}

fn malformed(detail: &str) -> ApiError {
    ApiError::MalformedXml(detail.to_owned())
}

/// Reads a SOAP request. `max_depth` bounds the operation's content as JSON nesting (the
/// envelope and body elements come on top).
pub fn read(version: Version, text: &str, max_depth: usize) -> Result<SoapRequest, ApiError> {
    // The strict reader first: everything below only looks at a document it accepted.
    let value = xml::parse(text, max_depth + 3)?;
    let (root_local, root_ns) = root_element(text)?;
    if root_local != "Envelope" {
        return Err(malformed("the root element is not a SOAP Envelope"));
    }
    if root_ns != version.namespace() {
        return Err(malformed(&format!(
            "the Envelope's namespace {root_ns:?} is not {:?}, which the Content-Type asks for",
            version.namespace()
        )));
    }
    let Value::Object(mut envelope) = value else { return Err(malformed("the Envelope has no Body")) };
    let Some(Value::Object(body)) = envelope.remove("Body") else {
        return Err(malformed("the Envelope has no Body, or more than one"));
    };
    let mut children = body.into_iter();
    let (Some((name, content)), None) = (children.next(), children.next()) else {
        return Err(malformed("the Body must hold exactly one operation element"));
    };
    let operation = Operation::from_local_name(&name).ok_or_else(|| {
        ApiError::InvalidParameter(format!("unknown operation {name:?}: insert, insertMultiple, get or getRecords"))
    })?;
    let content = match content {
        Value::Object(o) => o,
        Value::String(s) if s.trim().is_empty() => Map::new(),
        _ => return Err(malformed(&format!("<{name}> must hold elements"))),
    };
    Ok(SoapRequest { version, operation, content })
}

/// The root element's local name and namespace URI (the document is already known well-formed).
fn root_element(text: &str) -> Result<(String, String), ApiError> {
    use quick_xml::events::Event;
    use quick_xml::name::ResolveResult;
    let mut reader = quick_xml::NsReader::from_str(text);
    loop {
        match reader.read_resolved_event() {
            Ok((ns, Event::Start(e) | Event::Empty(e))) => {
                let ns = match ns {
                    ResolveResult::Bound(n) => n.into_inner().to_owned(),
                    _ => String::new(),
                };
                return Ok((e.local_name().into_inner().to_owned(), ns));
            }
            Ok((_, Event::Eof)) => return Err(malformed("no root element")),
            Ok(_) => {}
            Err(e) => return Err(ApiError::MalformedXml(e.to_string())),
        }
    }
}

/// `<Envelope><Body>{body}</Body></Envelope>` in the version's namespace; `body` is XML
/// already written.
fn envelope(version: Version, body: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><env:Envelope xmlns:env="{}"><env:Body>{body}</env:Body></env:Envelope>"#,
        version.namespace()
    )
}

/// A successful answer: `body` (the operation's response element, written) in an envelope.
pub fn answer(version: Version, body: &str) -> Response {
    let ct = HeaderValue::from_static(version.content_type());
    (StatusCode::OK, [(CONTENT_TYPE, ct)], envelope(version, body)).into_response()
}

/// A fault for `error`, in the version's shape: sluice's error body (stable code, message,
/// detail, field errors, request id) inside `detail`, plus `extra` elements (the staged row's
/// sys_id). The response keeps the error's own headers (WWW-Authenticate, Retry-After) and its
/// code for the request's statistics; 401 and 429 keep their status, as clients act on them.
pub fn fault(version: Version, error: ApiError, extra: &[(&str, &str)]) -> Response {
    let counted = error.status();
    fault_counted(version, error, extra, counted)
}

/// A row's contract failure on `insert`: a fault, counted in the statistics as the REST route's
/// answer would be (a 201 with an error row, its field codes noted by the pipeline's route).
pub fn row_fault(version: Version, error: ApiError, staging_sys_id: &str) -> Response {
    // The error code stays on the response (a response without one is re-enveloped as a
    // framework error, `observe::enveloped`); a 2xx count ignores it.
    fault_counted(version, error, &[("staging_sys_id", staging_sys_id)], StatusCode::CREATED)
}

fn fault_counted(version: Version, error: ApiError, extra: &[(&str, &str)], counted: StatusCode) -> Response {
    let request_id = crate::observe::current_request_id();
    let mut body = error.body(&request_id);
    if let Some(Value::Object(e)) = body.get_mut("error") {
        for (k, v) in extra {
            e.insert((*k).to_owned(), Value::String((*v).to_owned()));
        }
    }
    let sender = error.status().is_client_error();
    let summary = match error.detail() {
        Some(d) => format!("{}: {d}", error.message()),
        None => error.message().into_owned(),
    };
    // The detail entry is namespace-qualified (SOAP 1.1 section 4.4, 1.2 Detail); its children
    // are not, as in the answers.
    let mut detail = format!(r#"<sluice:error xmlns:sluice="{ERROR_NS}">"#);
    if let Some(Value::Object(fields)) = body.get("error") {
        for (k, v) in fields {
            xml::element(&mut detail, k, v);
        }
    }
    detail.push_str("</sluice:error>");
    let mut text = String::new();
    xml::push_text(&mut text, &summary);
    let fault = match version {
        Version::Soap11 => format!(
            "<env:Fault><faultcode>env:{}</faultcode><faultstring>{text}</faultstring><detail>{detail}</detail></env:Fault>",
            if sender { "Client" } else { "Server" }
        ),
        Version::Soap12 => format!(
            r#"<env:Fault><env:Code><env:Value>env:{}</env:Value></env:Code><env:Reason><env:Text xml:lang="en">{text}</env:Text></env:Reason><env:Detail>{detail}</env:Detail></env:Fault>"#,
            if sender { "Sender" } else { "Receiver" }
        ),
    };
    let original = error.status();
    let status = match (original, version) {
        (StatusCode::UNAUTHORIZED | StatusCode::TOO_MANY_REQUESTS, _) => original,
        (_, Version::Soap11) => StatusCode::INTERNAL_SERVER_ERROR,
        (_, Version::Soap12) if sender => StatusCode::BAD_REQUEST,
        (_, Version::Soap12) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    // The error's own response, for its headers and extensions; only the body is replaced.
    let (mut parts, _) = error.into_response().into_parts();
    parts.status = status;
    parts.extensions.insert(crate::observe::CountedAs(counted));
    parts.headers.insert(CONTENT_TYPE, HeaderValue::from_static(version.content_type()));
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(envelope(version, &fault)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_are_read_by_local_name_in_either_namespace_and_version() {
        let a = format!(
            r#"<s:Envelope xmlns:s="{SOAP11_ENV}"><s:Header/><s:Body><inc:insert xmlns:inc="http://www.service-now.com/u_x"><u_a>1</u_a></inc:insert></s:Body></s:Envelope>"#
        );
        let r = read(Version::Soap11, &a, 8).unwrap();
        assert_eq!(r.operation, Operation::Insert);
        assert_eq!(r.content["u_a"], "1");
        let b = format!(
            r#"<Envelope xmlns="{SOAP12_ENV}"><Body><getRecords xmlns="http://www.service-now.com"/></Body></Envelope>"#
        );
        assert_eq!(read(Version::Soap12, &b, 8).unwrap().operation, Operation::GetRecords);
        assert!(matches!(read(Version::Soap11, &b, 8), Err(ApiError::MalformedXml(_))), "1.2 envelope as text/xml");
        let dtd = format!("<!DOCTYPE x><s:Envelope xmlns:s=\"{SOAP11_ENV}\"/>");
        assert!(matches!(read(Version::Soap11, &dtd, 8), Err(ApiError::XmlDtd)));
    }

    async fn body_of(response: Response) -> String {
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn server_faults_are_receiver_faults_without_the_internal_cause() {
        let r = fault(Version::Soap12, ApiError::Internal("secret cause".into()), &[]);
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = body_of(r).await;
        assert!(body.contains("<env:Value>env:Receiver</env:Value>") && !body.contains("secret"), "{body}");
        let r = fault(Version::Soap11, ApiError::Internal("secret cause".into()), &[]);
        let body = body_of(r).await;
        assert!(body.contains("<faultcode>env:Server</faultcode>") && !body.contains("secret"), "{body}");
        let r = fault(Version::Soap12, ApiError::MalformedXml("x".into()), &[]);
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    }
}
