//! The web console through HTTP, as a browser without JavaScript uses it: login (good, bad,
//! web-service-only), the session cookie's flags, CSRF on forms, logout, idle expiry, pages by
//! role. (The browser tests in `tests/console/` drive the same pages in Chromium.)

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};

use crate::helpers::Server;

pub(crate) fn client() -> reqwest::Client {
    crate::helpers::http_client().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

pub(crate) fn encode(pairs: &[(&str, &str)]) -> String {
    let esc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    pairs.iter().map(|(k, v)| format!("{}={}", esc(k), esc(v))).collect::<Vec<_>>().join("&")
}

pub(crate) async fn post_form(
    s: &Server,
    path: &str,
    cookie: Option<&str>,
    pairs: &[(&str, &str)],
) -> reqwest::Response {
    let mut r = client()
        .post(s.url(path))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "same-origin")
        .body(encode(pairs));
    if let Some(c) = cookie {
        r = r.header(COOKIE, c);
    }
    r.send().await.unwrap()
}

pub(crate) async fn get(s: &Server, path: &str, cookie: Option<&str>) -> (StatusCode, String) {
    let mut r = client().get(s.url(path));
    if let Some(c) = cookie {
        r = r.header(COOKIE, c);
    }
    let r = r.send().await.unwrap();
    (r.status(), r.text().await.unwrap())
}

/// Logs in; the `name=value` of the session cookie and its whole `Set-Cookie` line.
pub(crate) async fn login(s: &Server, user: &str, password: &str) -> (String, String) {
    let r = post_form(s, "/console/login", None, &[("user_name", user), ("password", password)]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "login of {user}");
    assert_eq!(r.headers()[LOCATION], "/console");
    let set = r.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    (set.split(';').next().unwrap().to_owned(), set)
}

/// The CSRF token of the page's logout form.
pub(crate) fn csrf_of(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a csrf field") + "name=\"csrf\" value=\"".len();
    page[at..at + 43].to_owned()
}

/// An interactive account (the CLI's default is web-service-only).
pub(crate) fn add_interactive(s: &Server, name: &str, roles: &[&str]) -> String {
    s.add_account_with(name, roles, &["--web-service-only", "false"])
}

/// A server with a second interactive admin (`boss`), made with the CLI.
pub(crate) fn start(args: &[&str]) -> (Server, String) {
    let s = Server::start_with(args);
    let password = add_interactive(&s, "boss", &["admin"]);
    (s, password)
}

#[tokio::test]
async fn login_sets_a_strict_cookie_and_bad_or_api_only_logins_are_refused() {
    let (s, boss) = start(&[]);
    let (status, page) = get(&s, "/console/login", None).await;
    assert_eq!(status, StatusCode::OK);
    for needle in [
        r#"<form class="login" method="post" action="/console/login">"#,
        r#"name="user_name" id="user_name""#,
        r#"name="password" id="password" type="password""#,
        r#"<button type="submit">Log in</button>"#,
        r#"<label for="user_name">"#,
    ] {
        assert!(page.contains(needle), "{needle} in {page}");
    }
    // Pages without a session send the browser to the login page.
    let r = client().get(s.url("/console")).send().await.unwrap();
    assert_eq!((r.status(), r.headers()[LOCATION].to_str().unwrap()), (StatusCode::SEE_OTHER, "/console/login"));

    let r = post_form(&s, "/console/login", None, &[("user_name", "boss"), ("password", "wrong")]).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers().get(SET_COOKIE).is_none());
    let page = r.text().await.unwrap();
    assert!(page.contains(r#"role="alert""#) && page.contains("Wrong user name or password."), "{page}");
    // An unknown account reads exactly like a wrong password.
    let r = post_form(&s, "/console/login", None, &[("user_name", "nobody"), ("password", "wrong")]).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.text().await.unwrap().contains("Wrong user name or password."));

    // A web-service-only account: told so only with the right password.
    let bot_password = s.add_account("alerts.bot", &["import_set_loader"]);
    let r = post_form(&s, "/console/login", None, &[("user_name", "alerts.bot"), ("password", "nope")]).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = post_form(&s, "/console/login", None, &[("user_name", "alerts.bot"), ("password", &bot_password)]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.headers().get(SET_COOKIE).is_none());
    assert!(r.text().await.unwrap().contains("for web services only"));

    // A login POST from another site is refused before the password is looked at.
    let r = client()
        .post(s.url("/console/login"))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "cross-site")
        .body(encode(&[("user_name", "boss"), ("password", &boss)]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.headers().get(SET_COOKIE).is_none());

    let (cookie, set) = login(&s, "boss", &boss).await;
    let value = cookie.strip_prefix("sluice_session=").expect("the session cookie");
    assert_eq!(value.len(), 43, "256 bits in URL-safe base64: {value}");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(set.contains(flag), "{flag} in {set}");
    }
    assert!(!set.contains("Secure"), "plain http without an https public URL: {set}");
    let (status, page) = get(&s, "/console", Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK);
    for needle in [
        r#"<nav aria-label="Main">"#,
        r#"<main id="main">"#,
        r#"<form class="logout" method="post" action="/console/logout">"#,
        r#"href="/console/accounts""#,
        "<h1>",
    ] {
        assert!(page.contains(needle), "{needle} in {page}");
    }
    let logs = s.settled_logs();
    assert!(!logs.contains(value), "the session token is never logged");
}

#[tokio::test]
async fn cookies_are_secure_behind_an_https_public_url() {
    let (s, boss) = start(&["--public-url", "https://sluice.example.com"]);
    let (_, set) = login(&s, "boss", &boss).await;
    assert!(set.contains("; Secure"), "{set}");
}

#[tokio::test]
async fn forms_need_the_session_token_and_logout_ends_the_session() {
    let (s, boss) = start(&[]);
    let (cookie, _) = login(&s, "boss", &boss).await;
    let (_, page) = get(&s, "/console", Some(&cookie)).await;
    let csrf = csrf_of(&page);

    // Without the token, with a wrong one, or from another site: 403, and the session lives on.
    for pairs in [vec![], vec![("csrf", "x".repeat(43))]] {
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = post_form(&s, "/console/logout", Some(&cookie), &pairs).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert!(r.text().await.unwrap().contains(r#"role="alert""#));
    }
    let r = client()
        .post(s.url("/console/logout"))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "cross-site")
        .header(COOKIE, &cookie)
        .body(encode(&[("csrf", &csrf)]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(get(&s, "/console", Some(&cookie)).await.0, StatusCode::OK);

    // Another session's token does not do either.
    let (other, _) = login(&s, "boss", &boss).await;
    let (_, other_page) = get(&s, "/console", Some(&other)).await;
    assert_ne!(csrf_of(&other_page), csrf);
    let r = post_form(&s, "/console/logout", Some(&cookie), &[("csrf", &csrf_of(&other_page))]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    let r = post_form(&s, "/console/logout", Some(&cookie), &[("csrf", &csrf)]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[LOCATION], "/console/login");
    assert!(r.headers()[SET_COOKIE].to_str().unwrap().contains("Max-Age=0"));
    // The row is gone: the old cookie is worth nothing; the other session is untouched.
    let (status, _) = get(&s, "/console", Some(&cookie)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(get(&s, "/console", Some(&other)).await.0, StatusCode::OK);
}

#[tokio::test]
async fn sessions_expire_when_idle_and_use_renews_them() {
    let (s, boss) = start(&["--console-session-seconds", "3"]);
    let (cookie, _) = login(&s, "boss", &boss).await;
    // Used every second for four seconds: alive, each use moved the expiry on.
    for _ in 0..4 {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        assert_eq!(get(&s, "/console", Some(&cookie)).await.0, StatusCode::OK);
    }
    tokio::time::sleep(std::time::Duration::from_millis(3500)).await;
    let r = client().get(s.url("/console")).header(COOKIE, &cookie).send().await.unwrap();
    assert_eq!((r.status(), r.headers()[LOCATION].to_str().unwrap()), (StatusCode::SEE_OTHER, "/console/login"));
}

#[tokio::test]
async fn interactive_accounts_see_their_pages_and_not_the_admin_ones() {
    let s = Server::start();
    let password = add_interactive(&s, "desk", &["itil"]);
    let (cookie, _) = login(&s, "desk", &password).await;
    let (status, page) = get(&s, "/console", Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(r#"href="/console/incidents""#));
    assert!(!page.contains(r#"href="/console/accounts""#), "no admin links for itil");
    assert!(page.contains("desk"));
}

#[tokio::test]
async fn the_incident_list_filters_sorts_and_needs_read_rights() {
    let (s, boss) = start(&[]);
    for text in ["Alpha printer", "Beta mail", "Gamma disk"] {
        let r = s
            .admin(s.http.post(s.url("/api/now/table/incident")))
            .json(&serde_json::json!({"short_description": text}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let (cookie, _) = login(&s, "boss", &boss).await;
    let (status, page) = get(&s, "/console/incidents", Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(r#"<table id="incidents">"#) && page.contains(r#"id="sysparm_query""#));
    assert_eq!(page.matches(r#"class="incident-link""#).count(), 3, "{page}");
    // Choices by their labels, each cell named for the phone layout.
    assert!(page.contains(r#"<td data-label="State">New</td>"#), "{page}");

    let (_, page) = get(&s, "/console/incidents?sysparm_query=short_descriptionLIKEmail", Some(&cookie)).await;
    assert_eq!(page.matches(r#"class="incident-link""#).count(), 1);
    assert!(page.contains("Beta mail") && !page.contains("Alpha printer"));
    assert!(page.contains(r#"value="short_descriptionLIKEmail""#), "the filter box keeps the query");

    // Sorted by a column, descending: Gamma first; a sort on anything else is ignored.
    let (_, page) = get(&s, "/console/incidents?sort=-short_description", Some(&cookie)).await;
    assert!(page.find("Gamma disk").unwrap() < page.find("Alpha printer").unwrap());
    assert!(page.contains(r#"aria-sort="descending""#));
    let (status, _) = get(&s, "/console/incidents?sort=password_hash", Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK);

    // A filter that cannot be read is shown as an alert, not a server error.
    let (status, page) = get(&s, "/console/incidents?sysparm_query=RLQUERYsys_audit", Some(&cookie)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains(r#"role="alert""#) && page.contains("could not be read"), "{page}");
    assert_eq!(page.matches(r#"class="incident-link""#).count(), 0);

    // An interactive account without read rights on incidents gets the 403 page.
    let password = add_interactive(&s, "loader", &["import_set_loader"]);
    let (cookie, _) = login(&s, "loader", &password).await;
    let (status, page) = get(&s, "/console/incidents", Some(&cookie)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(page.contains(r#"role="alert""#) && page.contains(r#"<nav aria-label="Main">"#));
}

/// 55 incidents: two pages of 50, with Previous/Next links that keep the filter and the sort; a
/// page past the end says so without failing.
#[tokio::test]
async fn the_incident_list_pages_by_fifty_keeping_filter_and_sort() {
    let (s, boss) = start(&[]);
    let rows: Vec<_> = (0..55).map(|n| serde_json::json!({"u_short_description": format!("Paged {n:02}")})).collect();
    let r = s
        .admin(s.http.post(s.url("/api/now/import/u_incident_import/insertMultiple?sysparm_sluice_sync=true")))
        .json(&serde_json::json!({"records": rows}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let (cookie, _) = login(&s, "boss", &boss).await;
    let list = "/console/incidents?sysparm_query=short_descriptionSTARTSWITHPaged&sort=short_description";
    let (status, page) = get(&s, list, Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page.matches(r#"class="incident-link""#).count(), 50);
    assert!(page.contains("1–50 of 55"), "{page}");
    assert!(page.contains("Page 1 of 2"), "{page}");
    let next = r#"<a rel="next" href="?sysparm_query=short_descriptionSTARTSWITHPaged&#38;sort=short_description&#38;page=2">"#;
    assert!(page.contains(next), "{page}");
    assert!(!page.contains(r#"rel="prev""#));

    let (_, page) = get(&s, &format!("{list}&page=2"), Some(&cookie)).await;
    assert_eq!(page.matches(r#"class="incident-link""#).count(), 5);
    assert!(page.contains("51–55 of 55") && page.contains("Paged 54") && !page.contains("Paged 49"), "{page}");
    assert!(page.contains(r#"rel="prev""#) && !page.contains(r#"rel="next""#), "{page}");

    let (status, page) = get(&s, &format!("{list}&page=9"), Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page.matches(r#"class="incident-link""#).count(), 0);
    assert!(page.contains("Page 9 of 2") || page.contains("No incidents match"), "{page}");
}

#[tokio::test]
async fn an_incident_shows_its_fields_and_activity_linked_to_the_import_row() {
    let (s, boss) = start(&[]);
    let (_, imported) =
        s.import(serde_json::json!({"u_short_description": "Link down", "u_correlation_id": "nm:7"})).await;
    let sys_id = crate::helpers::result0(&imported)["sys_id"].as_str().unwrap().to_owned();
    // Times are to the second: the note comes a second after the import.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let r = s
        .admin(s.http.patch(s.url(&format!("/api/now/table/incident/{sys_id}"))))
        .json(&serde_json::json!({"work_notes": "Called the carrier"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // The staging row the import wrote, as the API reports it.
    let (_, audit) = s
        .get(&format!("/api/now/table/sys_audit?sysparm_query=documentkey={sys_id}^fieldname=short_description"))
        .await;
    let source_row = audit["result"][0]["source_row"].as_str().unwrap().to_owned();

    let (cookie, _) = login(&s, "boss", &boss).await;
    let (status, page) = get(&s, &format!("/console/incidents/{sys_id}"), Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Link down") && page.contains(r#"<ol id="activity">"#), "{page}");
    assert!(page.contains("Called the carrier"), "the work note is in the stream");
    assert!(page.contains(&format!(r#"href="/console/import_sets/rows/{source_row}""#)), "{page}");
    assert!(page.matches(r#"class="activity-entry"#).count() >= 3, "{page}");
    // The work note (newest) comes before the import's changes.
    assert!(page.find("Called the carrier").unwrap() < page.find("staging-link").unwrap());

    let (status, _) = get(&s, "/console/incidents/0123456789abcdef0123456789abcdef", Some(&cookie)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = get(&s, "/console/incidents/not-an-id", Some(&cookie)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_incident_form_writes_through_the_table_path_as_the_logged_in_account() {
    let (s, boss) = start(&[]);
    let r = s
        .admin(s.http.post(s.url("/api/now/table/incident")))
        .json(&serde_json::json!({"short_description": "VPN flaps"}))
        .send()
        .await
        .unwrap();
    let created: serde_json::Value = r.json().await.unwrap();
    let sys_id = created["result"]["sys_id"].as_str().unwrap().to_owned();
    let path = format!("/console/incidents/{sys_id}");
    let (cookie, _) = login(&s, "boss", &boss).await;
    let (_, page) = get(&s, &path, Some(&cookie)).await;
    assert!(page.contains(r#"<form id="incident-form" method="post""#) && page.contains(r#"name="close_code""#));
    let csrf = csrf_of(&page);

    // Without the session's token nothing is written.
    let r = post_form(&s, &path, Some(&cookie), &[("work_notes", "forged")]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    let r = post_form(
        &s,
        &path,
        Some(&cookie),
        &[("csrf", &csrf), ("state", "2"), ("work_notes", "Looking at the tunnel")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, page) = get(&s, &path, Some(&cookie)).await;
    assert!(page.contains("Looking at the tunnel") && !page.contains("forged"));

    // Resolving without a resolution code: the business rules refuse, the page says which fields.
    let r =
        post_form(&s, &path, Some(&cookie), &[("csrf", &csrf), ("state", "6"), ("comments", "Fixed, I think")]).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let page = r.text().await.unwrap();
    assert!(page.contains(r#"role="alert""#) && page.contains("Resolution code"), "{page}");
    // What was chosen and typed is still there for the next try (nothing was saved).
    assert!(page.contains(r#"<option value="6" selected>"#), "the state chosen: {page}");
    assert!(page.contains(">Fixed, I think</textarea>"), "the comment typed: {page}");
    let pairs =
        [("csrf", csrf.as_str()), ("state", "6"), ("close_code", "Solution provided"), ("close_notes", "Rekeyed")];
    assert_eq!(post_form(&s, &path, Some(&cookie), &pairs).await.status(), StatusCode::SEE_OTHER);

    // History shows the console's writes as the account's, like an API write.
    let (_, incident) = s.get(&format!("/api/now/table/incident/{sys_id}")).await;
    assert_eq!(incident["result"]["state"], "6");
    assert_eq!(incident["result"]["close_code"], "Solution provided");
    let (_, audit) =
        s.get(&format!("/api/now/table/sys_audit?sysparm_query=documentkey={sys_id}^fieldname=state^newvalue=6")).await;
    assert_eq!(audit["result"][0]["user"], "boss", "{audit}");
    let (_, notes) =
        s.get(&format!("/api/now/table/sys_journal_field?sysparm_query=element_id={sys_id}^element=work_notes")).await;
    assert_eq!(notes["result"][0]["sys_created_by"], "boss", "{notes}");
    assert_eq!(notes["result"][0]["value"], "Looking at the tunnel");
}

/// The first admin, made by the first start, is the operator's own: it logs in to the console
/// (and its account says so), while accounts made later are web-service-only unless told.
#[tokio::test]
async fn the_first_admin_logs_in_to_the_console() {
    let s = Server::start_with(&[]);
    let (cookie, _) = login(&s, "admin", crate::helpers::ADMIN_PASSWORD).await;
    let (status, page) = get(&s, "/console", Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Admin audit"), "the admin's navigation: {page}");
    let shown = s.admin(client().get(s.url("/api/sluice/v1/accounts/admin"))).send().await.unwrap();
    let shown: serde_json::Value = shown.json().await.unwrap();
    assert_eq!(shown["result"]["web_service_only"], false, "{shown}");
}

/// A path under /console that names no page answers an HTML 404, as the pages do, not JSON.
#[tokio::test]
async fn unknown_console_paths_answer_an_html_page() {
    let (s, boss) = start(&[]);
    let (cookie, _) = login(&s, "boss", &boss).await;
    for cookie in [None, Some(cookie.as_str())] {
        let mut r = client().get(s.url("/console/no/such/page"));
        if let Some(c) = cookie {
            r = r.header(COOKIE, c);
        }
        let r = r.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        assert!(r.headers()[CONTENT_TYPE].to_str().unwrap().starts_with("text/html"), "{:?}", r.headers());
        let page = r.text().await.unwrap();
        assert!(page.contains("<main id=\"main\">") && page.contains("no such page"), "{page}");
    }
}
