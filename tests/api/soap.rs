//! SOAP intake (`/{staging_table}.do?SOAP`, `?WSDL`): raw envelopes over HTTP against the real
//! binary, in SOAP 1.1 and 1.2; answers and faults read back with an independent XML parser.

use crate::helpers::*;

const ENV11: &str = "http://schemas.xmlsoap.org/soap/envelope/";
const ENV12: &str = "http://www.w3.org/2003/05/soap-envelope";

fn envelope11(body: &str) -> String {
    format!(
        r#"<?xml version="1.0"?><soapenv:Envelope xmlns:soapenv="{ENV11}" xmlns:u="http://www.service-now.com/{STAGING}"><soapenv:Header/><soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>"#
    )
}

fn envelope12(body: &str) -> String {
    format!(r#"<env:Envelope xmlns:env="{ENV12}"><env:Body>{body}</env:Body></env:Envelope>"#)
}

struct Answer {
    status: u16,
    content_type: String,
    www_authenticate: Option<String>,
    body: String,
}

async fn post(s: &Server, query: &str, content_type: &str, body: &str, user: (&str, &str)) -> Answer {
    let r = s
        .http
        .post(s.url(&format!("/{STAGING}.do?{query}")))
        .basic_auth(user.0, Some(user.1))
        .header("content-type", content_type)
        .header("soapaction", format!("http://www.service-now.com/{STAGING}/insert"))
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let header = |n: &str| r.headers().get(n).map(|v| v.to_str().unwrap().to_owned());
    let (content_type, www_authenticate) = (header("content-type").unwrap_or_default(), header("www-authenticate"));
    Answer { status: r.status().as_u16(), content_type, www_authenticate, body: r.text().await.unwrap() }
}

async fn soap11(s: &Server, body: &str) -> Answer {
    post(s, "SOAP", "text/xml; charset=utf-8", &envelope11(body), ("admin", ADMIN_PASSWORD)).await
}

/// Texts of every element with this local name, in document order (the answer must be
/// well-formed XML, read by roxmltree).
fn texts(xml: &str, name: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse(xml).unwrap_or_else(|e| panic!("{e}: {xml}"));
    doc.descendants()
        .filter(|n| n.is_element() && n.tag_name().name() == name)
        .map(|n| n.text().unwrap_or("").to_owned())
        .collect()
}

fn text(xml: &str, name: &str) -> String {
    texts(xml, name).into_iter().next().unwrap_or_else(|| panic!("no <{name}> in {xml}"))
}

#[tokio::test]
async fn soap11_insert_opens_an_incident_and_answers_its_number() {
    let s = Server::start();
    let a = soap11(&s, "<u:insert><u_short_description>Disk full &amp; more</u_short_description><u_urgency>1</u_urgency><u_impact>1</u_impact></u:insert>").await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(a.content_type.starts_with("text/xml"), "{}", a.content_type);
    let doc = roxmltree::Document::parse(&a.body).unwrap();
    let response = doc.descendants().find(|n| n.tag_name().name() == "insertResponse").unwrap();
    assert_eq!(response.tag_name().namespace(), Some(format!("http://www.service-now.com/{STAGING}").as_str()));
    assert_eq!(text(&a.body, "status"), "inserted");
    assert_eq!(text(&a.body, "table"), "incident");
    assert_eq!(text(&a.body, "display_name"), "number");
    let number = text(&a.body, "display_value");
    assert!(number.starts_with("INC"), "{number}");
    let sys_id = text(&a.body, "sys_id");
    let (status, incident) = s.get(&format!("/api/now/table/incident/{sys_id}")).await;
    assert_eq!(status, 200);
    assert_eq!(incident["result"]["number"], number.as_str());
    assert_eq!(incident["result"]["short_description"], "Disk full & more");
}

#[tokio::test]
async fn soap12_insert_is_answered_in_soap12() {
    let s = Server::start();
    let body = envelope12(
        r#"<insert xmlns="http://www.service-now.com"><u_short_description>Over 1.2</u_short_description></insert>"#,
    );
    let a =
        post(&s, "SOAP", r#"application/soap+xml; charset=utf-8; action="insert""#, &body, ("admin", ADMIN_PASSWORD))
            .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(a.content_type.starts_with("application/soap+xml"), "{}", a.content_type);
    let doc = roxmltree::Document::parse(&a.body).unwrap();
    assert_eq!(doc.root_element().tag_name().namespace(), Some(ENV12));
    assert_eq!(text(&a.body, "status"), "inserted");
    assert!(text(&a.body, "display_value").starts_with("INC"));
}

#[tokio::test]
async fn insert_multiple_answers_every_row_in_order_bad_ones_with_their_errors() {
    let s = Server::start();
    let a = soap11(
        &s,
        "<u:insertMultiple><record><u_short_description>first</u_short_description></record>\
         <record><u_urgency>9</u_urgency></record>\
         <record><u_short_description>third</u_short_description></record></u:insertMultiple>",
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(texts(&a.body, "insertResponse").len(), 3, "{}", a.body);
    assert_eq!(texts(&a.body, "status"), ["inserted", "error", "inserted"]);
    let errors = texts(&a.body, "error_message");
    assert_eq!(errors.len(), 1);
    assert!(errors[0].contains("u_short_description") && errors[0].contains("u_urgency"), "{errors:?}");
    // The bad row is staged as an error row (its sys_id is the staging row's).
    let staged = texts(&a.body, "sys_id")[1].clone();
    let (status, row) = s.get(&format!("/api/now/table/{STAGING}/{staged}")).await;
    assert_eq!(status, 200, "{row}");
    assert_eq!(row["result"]["sys_import_state"], "error");
}

#[tokio::test]
async fn a_contract_error_on_insert_is_a_fault_naming_the_field_and_the_row_is_staged() {
    let s = Server::start();
    let a =
        soap11(&s, "<u:insert><u_short_description>ok</u_short_description><u_urgency>9</u_urgency></u:insert>").await;
    assert_eq!(a.status, 500, "{}", a.body);
    assert_eq!(text(&a.body, "faultcode"), "env:Client");
    assert!(text(&a.body, "faultstring").contains("u_urgency"));
    assert_eq!(text(&a.body, "code"), "invalid_field_values");
    assert!(texts(&a.body, "field").contains(&"u_urgency".to_owned()), "{}", a.body);
    assert!(is_sys_id(&text(&a.body, "request_id")) || !text(&a.body, "request_id").is_empty());
    let doc = roxmltree::Document::parse(&a.body).unwrap();
    let entry = doc.descendants().find(|n| n.tag_name().name() == "detail").unwrap().first_element_child().unwrap();
    assert_eq!((entry.tag_name().name(), entry.tag_name().namespace()), ("error", Some("urn:sluice:error")));
    let staged = text(&a.body, "staging_sys_id");
    let (status, row) = s.get(&format!("/api/now/table/{STAGING}/{staged}")).await;
    assert_eq!(status, 200);
    assert_eq!(row["result"]["sys_import_state"], "error");

    // In SOAP 1.2: Sender, HTTP 400, the detail under env:Detail.
    let body = envelope12("<insert><u_urgency>1</u_urgency></insert>");
    let a = post(&s, "SOAP", "application/soap+xml", &body, ("admin", ADMIN_PASSWORD)).await;
    assert_eq!(a.status, 400, "{}", a.body);
    assert_eq!(text(&a.body, "Value"), "env:Sender");
    assert!(texts(&a.body, "field").contains(&"u_short_description".to_owned()), "{}", a.body);
    assert!(!text(&a.body, "Text").is_empty());
}

#[tokio::test]
async fn get_and_get_records_read_the_staging_table() {
    let s = Server::start();
    let a = soap11(&s, "<u:insert><u_short_description>find me</u_short_description><u_correlation_id>soap:42</u_correlation_id></u:insert>").await;
    assert_eq!(a.status, 200, "{}", a.body);
    soap11(&s, "<u:insert><u_short_description>other</u_short_description></u:insert>").await;

    let a = soap11(&s, "<u:getRecords><u_correlation_id>soap:42</u_correlation_id></u:getRecords>").await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(texts(&a.body, "getRecordsResult").len(), 1, "{}", a.body);
    assert_eq!(text(&a.body, "u_short_description"), "find me");
    assert_eq!(text(&a.body, "sys_import_state"), "inserted");
    let staging_id = text(&a.body, "sys_id");

    let a =
        soap11(&s, "<u:getRecords><__encoded_query>u_short_descriptionSTARTSWITHo</__encoded_query></u:getRecords>")
            .await;
    assert_eq!(texts(&a.body, "u_short_description"), ["other"], "{}", a.body);
    let a = soap11(&s, "<u:getRecords><__order_by>u_short_description</__order_by><__limit>1</__limit></u:getRecords>")
        .await;
    assert_eq!(texts(&a.body, "u_short_description"), ["find me"], "{}", a.body);
    let a = soap11(&s, "<u:getRecords><__order_by_desc>u_short_description</__order_by_desc><__first_row>1</__first_row><__last_row>2</__last_row></u:getRecords>").await;
    assert_eq!(texts(&a.body, "u_short_description"), ["find me"], "{}", a.body);

    let a = soap11(&s, &format!("<u:get><sys_id>{staging_id}</sys_id></u:get>")).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(text(&a.body, "u_correlation_id"), "soap:42");
    // The target's number as display value.
    let body = envelope11(&format!("<u:get><sys_id>{staging_id}</sys_id></u:get>"));
    let a = post(&s, "displayvalue=true&SOAP", "text/xml", &body, ("admin", ADMIN_PASSWORD)).await;
    assert!(text(&a.body, "sys_target_sys_id").starts_with("INC"), "{}", a.body);
}

#[tokio::test]
async fn dtds_and_malformed_xml_are_refused_with_faults() {
    let s = Server::start();
    let dtd = format!(
        r#"<?xml version="1.0"?><!DOCTYPE e [<!ENTITY x "y">]><e:Envelope xmlns:e="{ENV11}"><e:Body><insert>&x;</insert></e:Body></e:Envelope>"#
    );
    let a = post(&s, "SOAP", "text/xml", &dtd, ("admin", ADMIN_PASSWORD)).await;
    assert_eq!(a.status, 500);
    assert_eq!(text(&a.body, "code"), "xml_dtd_refused");
    assert_eq!(text(&a.body, "faultcode"), "env:Client");
    for broken in [envelope11("<u:insert><a></u:insert>"), "not xml".to_owned(), envelope12("<insert/>")] {
        let a = post(&s, "SOAP", "text/xml", &broken, ("admin", ADMIN_PASSWORD)).await;
        assert_eq!(a.status, 500, "{broken}");
        assert_eq!(text(&a.body, "code"), "malformed_xml", "{}", a.body);
    }
    let a = soap11(&s, "<u:deleteRecord><sys_id>x</sys_id></u:deleteRecord>").await;
    assert_eq!(text(&a.body, "faultcode"), "env:Client", "{}", a.body);
    assert_eq!(text(&a.body, "code"), "invalid_parameter", "{}", a.body);
    let a = post(&s, "SOAP", "application/json", "{}", ("admin", ADMIN_PASSWORD)).await;
    assert_eq!((a.status, text(&a.body, "code")), (500, "unsupported_media_type".to_owned()), "{}", a.body);
    // A table no integration stages into.
    let r = s
        .admin(s.http.post(s.url("/incident.do?SOAP")))
        .header("content-type", "text/xml")
        .body(envelope11("<insert/>"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    assert_eq!(text(&r.text().await.unwrap(), "code"), "invalid_table");
}

#[tokio::test]
async fn credentials_and_rights_are_checked_as_on_the_rest_routes() {
    let s = Server::start();
    let insert = envelope11("<u:insert><u_short_description>x</u_short_description></u:insert>");
    let a = post(&s, "SOAP", "text/xml", &insert, ("admin", "wrong-password")).await;
    assert_eq!(a.status, 401, "{}", a.body);
    assert!(a.www_authenticate.is_some_and(|w| w.starts_with("Basic")));
    assert_eq!(text(&a.body, "code"), "unauthenticated");

    // A loader may insert, but reads the staging table no more than through the Table API.
    let password = s.add_account("soap.loader", &["import_set_loader"]);
    let loader = ("soap.loader", password.as_str());
    let a = post(&s, "SOAP", "text/xml", &insert, loader).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let table = s.http.get(s.url(&format!("/api/now/table/{STAGING}"))).basic_auth(loader.0, Some(loader.1));
    assert_eq!(table.send().await.unwrap().status(), 403);
    let a = post(&s, "SOAP", "text/xml", &envelope11("<u:getRecords/>"), loader).await;
    assert_eq!(a.status, 500, "{}", a.body);
    assert_eq!(text(&a.body, "code"), "forbidden", "{}", a.body);
    // An itil account may not post to the integration.
    let password = s.add_account("soap.itil", &["itil"]);
    let a = post(&s, "SOAP", "text/xml", &insert, ("soap.itil", &password)).await;
    assert_eq!(text(&a.body, "code"), "forbidden", "{}", a.body);
}

#[tokio::test]
async fn the_wsdl_is_well_formed_and_names_every_field() {
    let s = Server::start();
    let r = s.admin(s.http.get(s.url(&format!("/{STAGING}.do?WSDL")))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let wsdl = r.text().await.unwrap();
    let doc = roxmltree::Document::parse(&wsdl).unwrap_or_else(|e| panic!("{e}: {wsdl}"));
    let root = doc.root_element();
    assert_eq!(root.attribute("targetNamespace"), Some(format!("http://www.service-now.com/{STAGING}").as_str()));
    let schema = doc.descendants().find(|n| n.tag_name().name() == "schema").unwrap();
    assert_eq!(schema.attribute("elementFormDefault"), Some("unqualified"));
    let row =
        doc.descendants().find(|n| n.tag_name().name() == "complexType" && n.attribute("name") == Some("Row")).unwrap();
    let fields: Vec<(String, String)> = row
        .descendants()
        .filter(|n| n.tag_name().name() == "element")
        .map(|n| (n.attribute("name").unwrap().to_owned(), n.attribute("minOccurs").unwrap().to_owned()))
        .collect();
    let (_, contract) = s.get("/api/sluice/v1/integrations/u_incident_import").await;
    let defined = contract["result"]["fields"].as_array().unwrap_or_else(|| panic!("{contract}"));
    assert_eq!(fields.len(), defined.len(), "{fields:?}");
    for f in defined {
        let name = f["name"].as_str().unwrap();
        let (_, min) = fields.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("{name} missing"));
        let required = f["required"] == true && f["default"].is_null();
        assert_eq!(min, if required { "1" } else { "0" }, "{name}");
    }
    for op in ["insert", "insertMultiple", "get", "getRecords"] {
        assert!(
            doc.descendants().any(|n| n.tag_name().name() == "operation" && n.attribute("name") == Some(op)),
            "{op}"
        );
        assert!(wsdl.contains(&format!(r#"soapAction="http://www.service-now.com/{STAGING}/{op}""#)));
    }
    let service = doc.descendants().find(|n| n.tag_name().name() == "service").unwrap();
    assert_eq!(service.attribute("name"), Some(format!("ServiceNow_{STAGING}").as_str()));
    let addresses: Vec<&str> = doc
        .descendants()
        .filter(|n| n.tag_name().name() == "address")
        .filter_map(|n| n.attribute("location"))
        .collect();
    assert_eq!(addresses, [s.url(&format!("/{STAGING}.do?SOAP")), s.url(&format!("/{STAGING}.do?SOAP"))]);
    assert!(doc.descendants().any(|n| n.tag_name().namespace() == Some("http://schemas.xmlsoap.org/wsdl/soap12/")));

    // As schema.json: not to accounts the integration does not name.
    let password = s.add_account("wsdl.loader", &["import_set_loader"]);
    let r = s
        .http
        .get(s.url(&format!("/{STAGING}.do?WSDL")))
        .basic_auth("wsdl.loader", Some(password))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = s.http.get(s.url(&format!("/{STAGING}.do?WSDL"))).send().await.unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn limits_are_those_of_the_other_xml_routes() {
    let s = Server::start_with(&["--max-body-bytes", "2000", "--max-records", "2"]);
    let long = "x".repeat(3000);
    let a = soap11(&s, &format!("<u:insert><u_short_description>{long}</u_short_description></u:insert>")).await;
    assert_eq!(a.status, 500, "{}", a.body);
    assert_eq!(text(&a.body, "code"), "body_too_large", "{}", a.body);
    let three = "<record><u_short_description>r</u_short_description></record>".repeat(3);
    let a = soap11(&s, &format!("<u:insertMultiple>{three}</u:insertMultiple>")).await;
    assert_eq!(text(&a.body, "code"), "too_many_records", "{}", a.body);
    // Larger than one row's body, yet a bulk envelope: read, and each record judged alone.
    let filler = format!("<u_description>{}</u_description>", "d".repeat(1500));
    let two = format!("<record><u_short_description>a</u_short_description>{filler}</record>").repeat(2);
    let a = soap11(&s, &format!("<u:insertMultiple>{two}</u:insertMultiple>")).await;
    assert_eq!(texts(&a.body, "status"), ["inserted", "inserted"], "{}", a.body);
}

#[tokio::test]
async fn the_integration_plan_names_the_soap_endpoint_and_the_wsdl() {
    let s = Server::start();
    let r = s.admin(s.http.get(s.url("/api/sluice/v1/integrations/u_incident_import/plan"))).send().await.unwrap();
    let plan = r.text().await.unwrap();
    assert!(plan.contains(&format!("POST {}", s.url(&format!("/{STAGING}.do?SOAP")))), "{plan}");
    assert!(plan.contains(&format!("GET {}", s.url(&format!("/{STAGING}.do?WSDL")))), "{plan}");
}

#[tokio::test]
async fn statistics_count_soap_requests_as_their_rest_counterparts() {
    let s = Server::start();
    let password = s.add_account("soap.stats", &["import_set_loader"]);
    let me = ("soap.stats", password.as_str());
    let send = |body: &str| envelope11(body);
    post(&s, "SOAP", "text/xml", &send("<u:insert><u_short_description>ok</u_short_description></u:insert>"), me).await;
    let bad = post(&s, "SOAP", "text/xml", &send("<u:insert><u_urgency>1</u_urgency></u:insert>"), me).await;
    assert_eq!(bad.status, 500);
    let refused = post(&s, "SOAP", "text/xml", &send("<u:getRecords/>"), me).await;
    assert_eq!(refused.status, 500);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let stats = loop {
        let (_, body) = s.get("/api/sluice/v1/accounts/soap.stats/stats").await;
        let r = &body["result"];
        if r["received"].as_u64() >= Some(3) || std::time::Instant::now() > deadline {
            break r.clone();
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(stats["received"], 3, "{stats}");
    assert_eq!(stats["inserted"], 1, "{stats}");
    // The contract failure counts as an error row with its field code, as on the REST route.
    assert_eq!(stats["error"], 1, "{stats}");
    assert_eq!(stats["errors_by_code"]["field_required"], 1, "{stats}");
    // The refused read counts as forbidden, though its fault goes out as HTTP 500.
    assert_eq!(stats["forbidden"], 1, "{stats}");
}
