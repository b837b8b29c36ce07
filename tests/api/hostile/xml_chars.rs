//! XML both ways with the characters XML 1.0 forbids: sluice's XML answers stay well-formed for
//! a strict parser (roxmltree) whatever the stored values or the echoed path hold, and XML
//! bodies that are not well-formed are refused with `malformed_xml`.

use serde_json::{Value, json};

use crate::helpers::*;

/// Every character XML 1.0 forbids that a Rust string can hold (lone surrogates cannot).
fn forbidden() -> Vec<char> {
    (0u32..0x20)
        .filter(|c| !matches!(c, 0x9 | 0xA | 0xD))
        .chain([0xFFFE, 0xFFFF])
        .map(|c| char::from_u32(c).unwrap())
        .collect()
}

/// A GET as admin asking for XML: the status and the body, which must parse strictly.
async fn xml_answer(s: &Server, path: &str) -> (u16, String) {
    let r = s.admin(s.http.get(s.url(path))).header("accept", "application/xml").send().await.unwrap();
    let status = r.status().as_u16();
    let body = r.text().await.unwrap();
    if let Err(e) = roxmltree::Document::parse(&body) {
        panic!("{path}: not well-formed XML ({e}): {body:?}");
    }
    (status, body)
}

#[tokio::test]
async fn xml_answers_are_well_formed_whatever_the_values_and_paths_hold() {
    let s = Server::start();
    let hostile: String = forbidden().into_iter().flat_map(|c| [c, 'x']).collect();
    let row =
        json!({"u_short_description": "forbidden characters", "u_description": hostile, "u_correlation_id": "xml-1"});
    let (status, answer) = s.import(row).await;
    assert_eq!((status, result0(&answer)["status"].as_str()), (201, Some("inserted")), "{answer}");
    let sys_id = result0(&answer)["sys_id"].as_str().unwrap();

    let (status, xml) = xml_answer(&s, &format!("/api/now/table/incident/{sys_id}")).await;
    assert_eq!(status, 200);
    let document = roxmltree::Document::parse(&xml).unwrap();
    let description = document.descendants().find(|n| n.has_tag_name("description")).unwrap();
    let expected: String = hostile.chars().map(|c| if c == 'x' { c } else { '\u{FFFD}' }).collect();
    assert_eq!(description.text(), Some(expected.as_str()), "each forbidden character is U+FFFD");
    // JSON still carries what was stored (SQLite keeps NUL, PostgreSQL stores U+FFFD for it).
    let (_, json_answer) = s.get(&format!("/api/now/table/incident/{sys_id}")).await;
    let stored = json_answer["result"]["description"].as_str().unwrap();
    assert_eq!(stored.chars().count(), hostile.chars().count());
    assert!(stored.contains('\u{1}') && stored.contains('\u{FFFF}'), "{stored:?}");

    // A list, an error echoing the path (a table name with forbidden characters), a query.
    xml_answer(&s, "/api/now/table/incident?sysparm_limit=10").await;
    let (status, xml) = xml_answer(&s, "/api/now/table/bad%01%0B%1F%EF%BF%BEname").await;
    assert!((400..500).contains(&status), "{status}: {xml}");
    let (status, _) = xml_answer(&s, "/api/now/table/incident?sysparm_query=description%3D%01%02").await;
    assert_eq!(status, 200);
    // An import answered in XML whose error message echoes a hostile value.
    let r = s
        .admin(s.http.post(s.url(&format!("/api/now/import/{STAGING}"))))
        .header("accept", "application/xml")
        .json(&json!({"u_short_description": "bad impact", "u_impact": "\u{1}\u{FFFE}<&>"}))
        .send()
        .await
        .unwrap();
    let body = r.text().await.unwrap();
    roxmltree::Document::parse(&body).unwrap_or_else(|e| panic!("not well-formed XML ({e}): {body:?}"));
}

#[tokio::test]
async fn xml_bodies_that_are_not_well_formed_are_malformed_xml() {
    let s = Server::start();
    let mut documents: Vec<String> = forbidden()
        .into_iter()
        .flat_map(|c| {
            [
                format!("<request><u_short_description>a{c}b</u_short_description></request>"),
                format!("<request><u_short_description>a&#{};b</u_short_description></request>", c as u32),
            ]
        })
        .collect();
    documents.extend(
        [
            "<request><u_short_description>&#0;</u_short_description></request>",
            "<request><u_short_description>&#xD800;</u_short_description></request>",
            "<request><u_short_description>x</u_description></request>",
            "<request><u_short_description>x</u_short_description></request><request/>",
            "<request><u_short_description>x</u_short_description></request>garbage",
            "<request><u_short_description>x</u_short_description></request><",
            "<request><1bad>x</1bad></request>",
            "<request a=\"&#1;\"><u_short_description>x</u_short_description></request>",
        ]
        .map(String::from),
    );
    let before = s.get("/api/now/table/incident?sysparm_limit=1000").await.1;
    for document in &documents {
        let r = s
            .admin(s.http.post(s.url(&format!("/api/now/import/{STAGING}"))))
            .header("content-type", "application/xml")
            .body(document.clone())
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap();
        assert_eq!(status, 400, "{document:?}: {body}");
        assert_envelope(&body, "malformed_xml");
    }
    assert_eq!(s.get("/api/now/table/incident?sysparm_limit=1000").await.1, before, "nothing was created");
}
