//! The console's integration pages through HTTP: the list, the contract and its charts (SVG read
//! by a strict XML parser), the dry run (writes nothing, names the failing field), the replay of
//! all errored rows (admins only, CSRF, progress page, admin audit) and unknown names.

use reqwest::StatusCode;
use reqwest::header::LOCATION;
use serde_json::json;

use crate::console::{add_interactive, csrf_of, get, login, post_form, start};
use crate::helpers::Server;

const PAGE: &str = "/console/integrations/u_incident_import";

/// Rows of a table as the Table API counts them.
async fn count(s: &Server, table: &str) -> u64 {
    let r = s.admin(s.http.get(s.url(&format!("/api/now/table/{table}?sysparm_limit=1")))).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.headers()["x-total-count"].to_str().unwrap().parse().unwrap()
}

/// Every `<svg …>…</svg>` of a page.
fn svgs(page: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = page;
    while let Some(at) = rest.find("<svg") {
        let end = rest[at..].find("</svg>").expect("a closed svg") + at + "</svg>".len();
        out.push(&rest[at..end]);
        rest = &rest[end..];
    }
    out
}

#[tokio::test]
async fn the_integration_page_shows_the_contract_counts_and_well_formed_charts() {
    let (s, boss) = start(&[]);
    assert_eq!(s.import(json!({"u_short_description": "Disk full", "u_impact": "2"})).await.0, 201);
    s.import(json!({"u_short_description": "Bad impact", "u_impact": "9"})).await;
    let (cookie, _) = login(&s, "boss", &boss).await;

    let (status, list) = get(&s, "/console/integrations", Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(list.contains(&format!(r#"href="{PAGE}""#)) && list.contains("<table id=\"integrations\">"), "{list}");

    let (status, page) = get(&s, PAGE, Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK);
    for needle in [
        "<code>u_short_description</code>",
        r#"href="/api/sluice/v1/integrations/u_incident_import/schema.json""#,
        r#"href="/api/sluice/v1/integrations/u_incident_import/plan""#,
        r#"href="/console/import_sets?integration=u_incident_import&amp;state=error">1 rows in error</a>"#,
        r#"<form id="dry-run" method="post""#,
        r#"<textarea name="payload" id="payload""#,
        r#"<form id="replay-errors" method="post""#,
        "<details>",
    ] {
        assert!(page.contains(needle), "{needle} in {page}");
    }
    let charts = svgs(&page);
    assert_eq!(charts.len(), 2, "{page}");
    for svg in charts {
        let doc = roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("{e}: {svg}"));
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "svg");
        assert_eq!(root.attribute("class"), Some("chart"));
        assert_eq!(root.attribute("role"), Some("img"));
        let label = root.attribute("aria-label").unwrap_or("");
        assert!(label.contains("highest"), "a text summary: {label}");
        assert!(root.children().any(|n| n.has_tag_name("title")), "a <title>");
    }
    // The row accepted this hour is in the rows chart's numbers.
    assert!(page.contains("Rows per hour, last 24 hours (UTC). Accepted (inserted or updated): highest 1"), "{page}");

    let (status, page) = get(&s, "/console/integrations/u_nothing", Some(&cookie)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(page.contains(r#"role="alert""#) && page.contains("Request id"), "{page}");
}

#[tokio::test]
async fn a_dry_run_names_the_failing_field_and_writes_nothing() {
    let (s, boss) = start(&[]);
    let (cookie, _) = login(&s, "boss", &boss).await;
    let (_, page) = get(&s, PAGE, Some(&cookie)).await;
    let csrf = csrf_of(&page);
    let (incidents, rows) = (count(&s, "incident").await, count(&s, "u_incident_import").await);
    let path = format!("{PAGE}/dry_run");

    let bad = r#"{"u_short_description": "Only a dry run", "u_impact": "9"}"#;
    let r = post_form(&s, &path, Some(&cookie), &[("csrf", &csrf), ("payload", bad)]).await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.unwrap();
    assert!(page.contains(r#"data-status="error""#), "{page}");
    assert!(page.contains("<code>u_impact</code>") && page.contains("<code>invalid_choice</code>"), "{page}");
    assert!(page.contains("<code>/u_impact</code>"), "the path: {page}");
    assert!(page.contains("Only a dry run"), "the payload stays in the box");

    let good = r#"{"u_short_description": "Would be written", "u_impact": "1"}"#;
    let r = post_form(&s, &path, Some(&cookie), &[("csrf", &csrf), ("payload", good)]).await;
    let page = r.text().await.unwrap();
    assert!(page.contains(r#"data-status="would_insert""#), "{page}");
    assert!(page.contains("<code>short_description</code></th><td>Would be written"), "the would-be fields: {page}");

    let r = post_form(&s, &path, Some(&cookie), &[("csrf", &csrf), ("payload", "{not json")]).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let page = r.text().await.unwrap();
    assert!(page.contains(r#"role="alert" id="dry-run-alert""#) && page.contains("malformed JSON"), "{page}");

    let r = post_form(&s, &path, Some(&cookie), &[("payload", good)]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "no CSRF token");
    assert_eq!(
        (count(&s, "incident").await, count(&s, "u_incident_import").await),
        (incidents, rows),
        "nothing written"
    );
}

/// Reloads the progress page until the job is done; its last text.
async fn until_done(s: &Server, path: &str, cookie: &str) -> String {
    for _ in 0..100 {
        let (status, page) = get(s, path, Some(cookie)).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        if page.contains(r#"data-state="done""#) {
            assert!(!page.contains("http-equiv=\"refresh\""), "a finished job stops reloading");
            return page;
        }
        assert!(page.contains(r#"<meta http-equiv="refresh" content="1">"#), "{page}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    panic!("the replay did not finish");
}

#[tokio::test]
async fn replaying_all_errors_needs_an_admin_and_the_token_and_shows_its_progress() {
    let (s, boss) = start(&[]);
    for n in 0..2 {
        s.import(json!({"u_short_description": format!("Bad {n}"), "u_impact": "9"})).await;
    }
    let replay = format!("{PAGE}/replay");

    let desk = add_interactive(&s, "desk", &["itil"]);
    let (desk_cookie, _) = login(&s, "desk", &desk).await;
    let (_, home) = get(&s, "/console", Some(&desk_cookie)).await;
    let r = post_form(&s, &replay, Some(&desk_cookie), &[("csrf", &csrf_of(&home))]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "itil may not replay");
    assert_eq!(
        get(&s, PAGE, Some(&desk_cookie)).await.0,
        StatusCode::NOT_FOUND,
        "nor see an integration not naming it"
    );

    let (cookie, _) = login(&s, "boss", &boss).await;
    let r = post_form(&s, &replay, Some(&cookie), &[]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "no CSRF token");
    let (_, audit) = s.get("/api/sluice/v1/admin_audit").await;
    assert!(!audit.to_string().contains("integrations.replay"), "nothing replayed yet: {audit}");

    let (_, page) = get(&s, PAGE, Some(&cookie)).await;
    let r = post_form(&s, &replay, Some(&cookie), &[("csrf", &csrf_of(&page))]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let progress = r.headers()[LOCATION].to_str().unwrap().to_owned();
    assert!(progress.starts_with(&format!("{PAGE}/replays/")), "{progress}");
    let page = until_done(&s, &progress, &cookie).await;
    // The built-in definition still refuses impact 9: both rows are run again and stay errors.
    assert!(page.contains("2 replayed: 2 still in error"), "{page}");
    assert!(page.contains(r#"<progress id="replay-progress" max="2" value="2">"#), "{page}");

    let (_, audit) = s.get("/api/sluice/v1/admin_audit").await;
    let entry = audit["result"].as_array().unwrap().iter().find(|e| e["action"] == "integrations.replay").cloned();
    let entry = entry.unwrap_or_else(|| panic!("no replay in the audit: {audit}"));
    assert_eq!((entry["actor"].as_str(), entry["target"].as_str()), (Some("boss"), Some("u_incident_import")));
    assert_eq!(entry["details"]["replayed"], 2, "{entry}");

    // The API's replay is audited by the same function.
    let r = s.admin(s.http.post(s.url("/api/sluice/v1/integrations/u_incident_import/replay"))).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (_, audit) = s.get("/api/sluice/v1/admin_audit").await;
    let replays: Vec<_> =
        audit["result"].as_array().unwrap().iter().filter(|e| e["action"] == "integrations.replay").collect();
    assert_eq!(replays.len(), 2, "{audit}");
    assert_eq!(replays[0]["actor"], "admin", "newest first: {audit}");

    let (status, page) = get(&s, &format!("{PAGE}/replays/00000000000000000000000000000000"), Some(&cookie)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(page.contains("kept in memory by the node"), "{page}");
    assert_eq!(get(&s, &progress, Some(&desk_cookie)).await.0, StatusCode::FORBIDDEN);
    let (_, page) = get(&s, PAGE, Some(&cookie)).await;
    let r = post_form(&s, "/console/integrations/u_nothing/replay", Some(&cookie), &[("csrf", &csrf_of(&page))]).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "an unknown integration");
}
