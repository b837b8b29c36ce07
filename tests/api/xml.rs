//! XML on the Import Set and Table APIs: bodies sent as `application/xml`/`text/xml`, answers and
//! errors as XML when `Accept` asks for it, and XML that could expand entities refused.

use serde_json::Value;

use crate::helpers::*;

const XML: &str = "application/xml";

/// Sends `body` as XML to `path` (as admin) with `accept`; returns status, content type and body.
async fn send(
    s: &Server,
    method: reqwest::Method,
    path: &str,
    body: Option<&str>,
    accept: &str,
) -> (u16, String, String) {
    let mut request = s.admin(s.http.request(method, s.url(path))).header("accept", accept);
    if let Some(body) = body {
        request = request.header("content-type", XML).body(body.to_owned());
    }
    let r = request.send().await.unwrap();
    let status = r.status().as_u16();
    let content_type = r.headers().get("content-type").map(|c| c.to_str().unwrap().to_owned()).unwrap_or_default();
    (status, content_type, r.text().await.unwrap())
}

/// The text of the first `<name>` element.
fn text_of<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{name}>"))? + start;
    Some(&xml[start..end])
}

#[tokio::test]
async fn an_import_sent_and_answered_in_xml_becomes_an_incident() {
    let s = Server::start();
    let body = r#"<?xml version="1.0" encoding="UTF-8"?>
        <request><entry>
            <u_short_description>Disk full on db-01 &amp; db-02</u_short_description>
            <u_urgency>1</u_urgency>
            <u_impact>2</u_impact>
            <u_correlation_id>xml:1</u_correlation_id>
        </entry></request>"#;
    let (status, content_type, answer) =
        send(&s, reqwest::Method::POST, &format!("/api/now/import/{STAGING}"), Some(body), XML).await;
    assert_eq!(status, 201, "{answer}");
    assert!(content_type.starts_with(XML), "{content_type}");
    assert!(answer.starts_with(r#"<?xml version="1.0" encoding="UTF-8"?><response>"#), "{answer}");
    assert_eq!(text_of(&answer, "staging_table"), Some(STAGING));
    assert_eq!(text_of(&answer, "status"), Some("inserted"), "{answer}");
    let sys_id = text_of(&answer, "sys_id").unwrap().to_owned();
    assert!(is_sys_id(&sys_id));

    // The same record read as JSON: the XML values arrived as the JSON path would have them.
    let (status, record) = s.get(&format!("/api/now/table/incident/{sys_id}")).await;
    assert_eq!(status, 200);
    assert_eq!(record["result"]["short_description"], "Disk full on db-01 & db-02");
    assert_eq!(record["result"]["priority"], "2");

    // And read as XML, references as <link>/<value>.
    let (status, content_type, xml) =
        send(&s, reqwest::Method::GET, &format!("/api/now/table/incident/{sys_id}"), None, "application/xml").await;
    assert_eq!(status, 200, "{xml}");
    assert!(content_type.starts_with(XML));
    assert!(
        xml.contains("<result>")
            && xml.contains("<short_description>Disk full on db-01 &amp; db-02</short_description>"),
        "{xml}"
    );
    assert_eq!(text_of(&xml, "sys_id"), Some(sys_id.as_str()));
    let list_path = "/api/now/v2/table/incident?sysparm_fields=number,short_description";
    let (status, _, list) = send(&s, reqwest::Method::GET, list_path, None, "text/xml").await;
    assert_eq!(status, 200);
    assert_eq!(list.matches("<result>").count(), 1, "{list}");
    // A GET that carries an XML Content-Type and no body, as some clients send it.
    let r = s.admin(s.http.get(s.url(list_path))).header("content-type", XML).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn table_api_writes_take_xml() {
    let s = Server::start();
    let body = "<request><short_description>Printer on fire</short_description><urgency>1</urgency><impact>1</impact></request>";
    let (status, _, answer) =
        send(&s, reqwest::Method::POST, "/api/now/table/incident", Some(body), "application/json").await;
    assert_eq!(status, 201, "{answer}");
    let created: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(created["result"]["priority"], "1");
    let path = format!("/api/now/table/incident/{}", created["result"]["sys_id"].as_str().unwrap());
    let (status, _, answer) =
        send(&s, reqwest::Method::PATCH, &path, Some("<request><urgency>3</urgency></request>"), XML).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(text_of(&answer, "urgency"), Some("3"), "{answer}");
}

#[tokio::test]
async fn errors_are_answered_in_xml_when_xml_is_accepted() {
    let s = Server::start();
    let (status, content_type, xml) = send(&s, reqwest::Method::GET, "/api/now/table/no_such_table", None, XML).await;
    assert_eq!(status, 400);
    assert!(content_type.starts_with(XML));
    assert_eq!(text_of(&xml, "code"), Some("invalid_table"), "{xml}");
    assert_eq!(text_of(&xml, "status"), Some("failure"));
    assert_eq!(text_of(&xml, "request_id").map(str::len), Some(16));
    assert_eq!(text_of(&xml, "link"), Some("docs/errors.md#invalid_table"), "{xml}");
    assert_eq!(text_of(&xml, "message"), Some("Invalid table no_such_table"), "{xml}");

    let (status, _, xml) = send(
        &s,
        reqwest::Method::POST,
        &format!("/api/now/import/{STAGING}"),
        Some("<request><a>1</b></request>"),
        XML,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(text_of(&xml, "code"), Some("malformed_xml"), "{xml}");

    // A field error of the contract, in XML.
    let (status, _, xml) = send(
        &s,
        reqwest::Method::POST,
        &format!("/api/now/import/{STAGING}"),
        Some("<request><u_urgency>9</u_urgency></request>"),
        XML,
    )
    .await;
    assert_eq!(status, 201, "{xml}");
    assert_eq!(text_of(&xml, "status"), Some("error"), "{xml}");
    assert!(xml.contains("<errors><code>"), "{xml}");

    // JSON clients still get JSON.
    let r = s.admin(s.http.get(s.url("/api/now/table/no_such_table"))).send().await.unwrap();
    assert_envelope(&r.json::<Value>().await.unwrap(), "invalid_table");
}

#[tokio::test]
async fn a_dtd_is_refused_before_any_entity_is_expanded() {
    let s = Server::start();
    let laughs = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<request><u_short_description>&lol9;</u_short_description></request>"#;
    let r = s
        .admin(s.http.post(s.url(&format!("/api/now/import/{STAGING}"))))
        .header("content-type", "text/xml")
        .body(laughs)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_envelope(&r.json::<Value>().await.unwrap(), "xml_dtd_refused");

    let external = r#"<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r><a>&x;</a></r>"#;
    let (status, _, xml) = send(&s, reqwest::Method::POST, "/api/now/table/incident", Some(external), XML).await;
    assert_eq!(status, 400);
    assert_eq!(text_of(&xml, "code"), Some("xml_dtd_refused"));
    // Nothing was staged or created.
    let (_, rows) = s.get(&format!("/api/now/table/{STAGING}")).await;
    assert_eq!(rows["result"].as_array().map(Vec::len), Some(0), "{rows}");
}

#[tokio::test]
async fn insert_multiple_takes_xml_records_within_the_same_limits() {
    let s = Server::start_with(&["--max-json-depth", "3"]);
    let body = "<request><records><u_short_description>one</u_short_description><u_urgency>1</u_urgency></records>\
        <records><u_short_description>two</u_short_description><u_urgency>3</u_urgency></records></request>";
    let path = format!("/api/now/import/{STAGING}/insertMultiple?sysparm_sluice_sync=true");
    let (status, _, xml) = send(&s, reqwest::Method::POST, &path, Some(body), XML).await;
    assert_eq!(status, 201, "{xml}");
    assert_eq!(xml.matches("<status>inserted</status>").count(), 2, "{xml}");

    // Deeper than --max-json-depth, as JSON would be refused.
    let deep = "<request><a><b><c><d>x</d></c></b></a></request>";
    let (status, _, xml) =
        send(&s, reqwest::Method::POST, &format!("/api/now/import/{STAGING}"), Some(deep), XML).await;
    assert_eq!(status, 400);
    assert_eq!(text_of(&xml, "code"), Some("json_too_deep"), "{xml}");
}
