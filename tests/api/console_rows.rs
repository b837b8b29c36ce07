//! The console's import sets and rows pages through HTTP: who may read them, a row's failing
//! value marked in its raw payload, a missing row, and the one-row replay's CSRF and admin checks.
//! (The browser tests in `tests/console/` replay a fixed row to `inserted`.)

use reqwest::StatusCode;
use reqwest::header::LOCATION;
use serde_json::json;

use crate::console::{add_interactive, csrf_of, get, login, post_form, start};
use crate::helpers::{STAGING, Server, result0};

/// Stages a row whose impact is not one of the choices; its staging sys_id.
async fn bad_row(s: &Server) -> String {
    let (status, body) = s.import(json!({"u_short_description": "Printer <on> fire", "u_impact": "9"})).await;
    assert_eq!(status, 201, "{body}");
    let result = result0(&body);
    assert_eq!(result["status"], "error", "{body}");
    result["staging_sys_id"].as_str().unwrap().to_owned()
}

/// The row's state as the Import Set API reports it.
async fn api_state(s: &Server, row: &str) -> String {
    let (status, body) = s.get(&format!("/api/now/import/{STAGING}/{row}")).await;
    assert_eq!(status, 200, "{body}");
    body["row"]["sys_import_state"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn rows_need_the_import_right_as_in_the_api() {
    let (s, _) = start(&[]);
    let row = bad_row(&s).await;
    let agent = add_interactive(&s, "agent", &["itil"]);
    let (cookie, _) = login(&s, "agent", &agent).await;
    for path in ["/console/import_sets".to_owned(), format!("/console/import_sets/rows/{row}")] {
        let (status, page) = get(&s, &path, Some(&cookie)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path} for itil");
        assert!(page.contains("Not allowed") && page.contains("Request id"), "{page}");
        assert!(!page.contains("Printer"), "nothing of the row is shown");
    }
    // An import_set_loader reads the rows of the integrations it may post to.
    let loader = add_interactive(&s, "loader", &["import_set_loader"]);
    let (cookie, _) = login(&s, "loader", &loader).await;
    let (status, page) = get(&s, "/console/import_sets", Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains(&format!(r#"href="/console/import_sets/rows/{row}""#)), "{page}");
}

#[tokio::test]
async fn a_row_marks_its_failing_value_and_a_missing_row_is_not_found() {
    let (s, boss) = start(&[]);
    let row = bad_row(&s).await;
    let (cookie, _) = login(&s, "boss", &boss).await;

    let (status, list) = get(&s, "/console/import_sets?state=error&integration=u_incident_import", Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(list.contains(r#"<table id="rows">"#) && list.contains("invalid_choice /u_impact"), "{list}");
    let (status, list) = get(&s, "/console/import_sets?state=inserted", Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!list.contains(&row), "the state filter leaves the error row out");
    let (status, list) = get(&s, "/console/import_sets?state=bogus", Some(&cookie)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(list.contains(r#"role="alert""#), "{list}");

    let (status, page) = get(&s, &format!("/console/import_sets/rows/{row}"), Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK);
    // The payload exactly as sent, escaped, the failing value marked with its quotes.
    assert!(page.contains("&quot;Printer &lt;on&gt; fire&quot;"), "{page}");
    assert!(
        page.contains(r#"<mark class="error-path" data-path="/u_impact">&quot;9&quot;</mark>"#),
        "the failing value is marked: {page}"
    );
    assert_eq!(page.matches("<mark").count(), 1, "{page}");
    assert!(page.contains(r#"<form id="replay-row""#), "an admin may replay it");

    let (status, page) = get(&s, "/console/import_sets/rows/0123456789abcdef0123456789abcdef", Some(&cookie)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(page.contains("Not found") && page.contains("Request id"), "{page}");
    let (status, _) = get(&s, "/console/import_sets/rows/not-an-id", Some(&cookie)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn replaying_one_row_needs_the_form_token_and_the_admin_role() {
    let (s, boss) = start(&[]);
    let row = bad_row(&s).await;
    let other = bad_row(&s).await;
    let path = format!("/console/import_sets/rows/{row}/replay");

    let (cookie, _) = login(&s, "boss", &boss).await;
    let r = post_form(&s, &path, Some(&cookie), &[("csrf", "not-the-token")]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("Form refused"));
    let before = s.get(&format!("/api/now/import/{STAGING}/{row}")).await.1;

    let loader = add_interactive(&s, "loader", &["import_set_loader"]);
    let (loader_cookie, _) = login(&s, "loader", &loader).await;
    let (_, page) = get(&s, "/console/import_sets", Some(&loader_cookie)).await;
    assert!(!page.contains(r#"id="replay-row""#));
    let r = post_form(&s, &path, Some(&loader_cookie), &[("csrf", &csrf_of(&page))]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "the API's replay is admin-only");
    assert_eq!(s.get(&format!("/api/now/import/{STAGING}/{row}")).await.1, before, "refusals change nothing");

    let (_, page) = get(&s, &format!("/console/import_sets/rows/{row}"), Some(&cookie)).await;
    let r = post_form(&s, &path, Some(&cookie), &[("csrf", &csrf_of(&page))]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let location = r.headers()[LOCATION].to_str().unwrap().to_owned();
    assert_eq!(location, format!("/console/import_sets/rows/{row}?replayed=1"));
    let (_, page) = get(&s, &location, Some(&cookie)).await;
    // The definition did not change: the row fails again, replayed by the admin.
    assert!(page.contains("Replayed with version 1: error"), "{page}");
    assert_eq!(api_state(&s, &row).await, "error");
    let count = |body: &serde_json::Value| body["row"]["sys_mod_count"].as_str().unwrap().parse::<u64>().unwrap();
    let (_, after) = s.get(&format!("/api/now/import/{STAGING}/{row}")).await;
    assert_eq!(count(&after), count(&before) + 1, "processed once more: {after}");
    let (_, untouched) = s.get(&format!("/api/now/import/{STAGING}/{other}")).await;
    assert_eq!(count(&untouched), count(&before), "only the one row was replayed: {untouched}");
}
