//! The console's admin pages (accounts, one account and its forms, the admin audit) and the
//! incidents list's saved filters, through HTTP as a browser without JavaScript uses them. Every
//! console write is checked through the API too: the console calls what the API calls.

use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, LOCATION};
use serde_json::Value;

use crate::console::{add_interactive, csrf_of, get, login, post_form, start};
use crate::helpers::Server;

/// Status of an API call with Basic credentials (an itil account's read of incidents).
async fn api_status(s: &Server, user: &str, password: &str) -> StatusCode {
    let r = s.http.get(s.url("/api/now/table/incident?sysparm_limit=1")).basic_auth(user, Some(password));
    r.send().await.unwrap().status()
}

async fn bearer_status(s: &Server, token: &str) -> StatusCode {
    let r = s.http.get(s.url("/api/now/table/incident?sysparm_limit=1")).bearer_auth(token);
    r.send().await.unwrap().status()
}

/// The text of `<code id="secret">` on a page that shows a secret once.
fn secret_of(page: &str) -> String {
    let start = page.find(r#"<code id="secret">"#).expect("a secret on the page") + r#"<code id="secret">"#.len();
    page[start..start + page[start..].find("</code>").unwrap()].to_owned()
}

/// The admin audit through the API, newest first.
async fn audit(s: &Server) -> Vec<Value> {
    let (status, body) = s.get("/api/sluice/v1/admin_audit").await;
    assert_eq!(status, 200, "{body}");
    body["result"].as_array().unwrap().clone()
}

#[tokio::test]
async fn admin_pages_answer_403_to_an_itil_account() {
    let (s, boss) = start(&[]);
    let agent = add_interactive(&s, "agent", &["itil"]);
    let (cookie, _) = login(&s, "agent", &agent).await;
    for path in ["/console/accounts", "/console/accounts/boss", "/console/admin_audit"] {
        let (status, page) = get(&s, path, Some(&cookie)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        assert!(page.contains(r#"role="alert""#) && page.contains("Request id"), "{path}: {page}");
        assert!(!page.contains(r#"href="/console/accounts""#), "{path}: the admin navigation shown to itil");
    }
    // The forms too, with the session's own token: nothing changes.
    let (_, home) = get(&s, "/console", Some(&cookie)).await;
    let csrf = csrf_of(&home);
    let r = post_form(&s, "/console/accounts/boss/rotate", Some(&cookie), &[("csrf", &csrf), ("password", "")]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r =
        post_form(&s, "/console/accounts/boss/active", Some(&cookie), &[("csrf", &csrf), ("active", "false")]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(api_status(&s, "boss", &boss).await, StatusCode::OK, "boss's password survived");
    assert!(audit(&s).await.iter().all(|e| e["target"] != "account:boss" || e["action"] == "account.create"));
}

#[tokio::test]
async fn rotating_in_the_console_is_the_apis_rotation() {
    let (s, boss) = start(&[]);
    let old = s.add_account("partner", &["itil"]);
    let (cookie, _) = login(&s, "boss", &boss).await;

    let (status, list) = get(&s, "/console/accounts", Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(list.contains(r#"href="/console/accounts/partner""#) && list.contains("web services only"), "{list}");
    let (status, page) = get(&s, "/console/accounts/partner", Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK);
    let csrf = csrf_of(&page);

    // A form without this session's token changes nothing.
    let r = post_form(&s, "/console/accounts/partner/rotate", Some(&cookie), &[("password", "")]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let wrong = "0".repeat(43);
    let r = post_form(&s, "/console/accounts/partner/rotate", Some(&cookie), &[("csrf", &wrong)]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(api_status(&s, "partner", &old).await, StatusCode::OK, "a refused form rotated the password");
    assert!(!audit(&s).await.iter().any(|e| e["action"] == "account.rotate_password"));

    // A password too short is refused as the API refuses it, in the page's alert.
    let r = post_form(&s, "/console/accounts/partner/rotate", Some(&cookie), &[("csrf", &csrf), ("password", "short")])
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let refused = r.text().await.unwrap();
    assert!(refused.contains(r#"<div role="alert">"#) && refused.contains("12"), "{refused}");

    // Empty: a generated password, shown once, not cached.
    let r =
        post_form(&s, "/console/accounts/partner/rotate", Some(&cookie), &[("csrf", &csrf), ("password", "")]).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()[CACHE_CONTROL], "no-store");
    let new = secret_of(&r.text().await.unwrap());
    assert!(new.len() >= 12, "{new}");
    assert_eq!(api_status(&s, "partner", &old).await, StatusCode::UNAUTHORIZED, "the old password still works");
    assert_eq!(api_status(&s, "partner", &new).await, StatusCode::OK, "the new password does not work");
    let (_, page) = get(&s, "/console/accounts/partner", Some(&cookie)).await;
    assert!(!page.contains(&new), "the password is shown again");

    // Typed by the admin: no secret page, the page says so.
    let typed = "typed-by-the-admin-1";
    let r =
        post_form(&s, "/console/accounts/partner/rotate", Some(&cookie), &[("csrf", &csrf), ("password", typed)]).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("The password was changed."));
    assert_eq!(api_status(&s, "partner", typed).await, StatusCode::OK);

    // Recorded as the API records it: by the logged-in admin, on the account.
    let entries = audit(&s).await;
    let rotations: Vec<_> = entries.iter().filter(|e| e["action"] == "account.rotate_password").collect();
    assert_eq!(rotations.len(), 2);
    assert!(rotations.iter().all(|e| e["actor"] == "boss" && e["target"] == "account:partner"), "{rotations:?}");

    // The console's admin audit shows them, filtered by action.
    let (status, page) = get(&s, "/console/admin_audit?action=account.rotate_password", Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        page.matches(r#"<td class="audit-action" data-label="Action">account.rotate_password</td>"#).count(),
        2,
        "{page}"
    );
    assert!(
        !page.contains(r#"<td class="audit-action" data-label="Action">account.create</td>"#),
        "the filter lists other actions"
    );
    let (_, all) = get(&s, "/console/admin_audit", Some(&cookie)).await;
    assert!(all.contains(r#"<td class="audit-action" data-label="Action">account.create</td>"#));
    let (status, api) = s.get("/api/sluice/v1/admin_audit?action=account.rotate_password").await;
    assert_eq!((status, api["result"].as_array().unwrap().len()), (200, 2), "{api}");
}

#[tokio::test]
async fn tokens_and_deactivation_from_the_console() {
    let (s, boss) = start(&[]);
    let password = s.add_account("partner", &["itil"]);
    let (cookie, _) = login(&s, "boss", &boss).await;
    let (_, page) = get(&s, "/console/accounts/partner", Some(&cookie)).await;
    let csrf = csrf_of(&page);

    let r =
        post_form(&s, "/console/accounts/partner/tokens", Some(&cookie), &[("csrf", &csrf), ("label", "alertmanager")])
            .await;
    assert_eq!(r.status(), StatusCode::OK);
    let token = secret_of(&r.text().await.unwrap());
    assert_eq!(bearer_status(&s, &token).await, StatusCode::OK);
    let (status, body) = s.get("/api/sluice/v1/accounts/partner/tokens").await;
    assert_eq!(status, 200);
    let id = body["result"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(body["result"][0]["label"], "alertmanager");
    let (_, page) = get(&s, "/console/accounts/partner", Some(&cookie)).await;
    assert!(page.contains(&id) && page.contains("alertmanager") && !page.contains(&token), "{page}");
    assert!(page.contains(r#"<td class="token-use">API token (Bearer)</td>"#), "{page}");
    // A routing key (PagerDuty Events API v2) says which integration it is bound to.
    let made = s
        .admin(s.http.post(s.url("/api/sluice/v1/accounts/partner/tokens")))
        .json(&serde_json::json!({"label": "pd", "integration": "pagerduty"}))
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), StatusCode::CREATED);
    let (_, page) = get(&s, "/console/accounts/partner", Some(&cookie)).await;
    assert!(page.contains(r#"<td class="token-use">Routing key of pagerduty</td>"#), "{page}");

    let revoke = format!("/console/accounts/partner/tokens/{id}/revoke");
    let r = post_form(&s, &revoke, Some(&cookie), &[("csrf", &csrf)]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(bearer_status(&s, &token).await, StatusCode::UNAUTHORIZED, "a revoked token still works");
    let r = post_form(&s, &revoke, Some(&cookie), &[("csrf", &csrf)]).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "revoking twice");
    assert!(r.text().await.unwrap().contains("no such token"));

    let r =
        post_form(&s, "/console/accounts/partner/active", Some(&cookie), &[("csrf", &csrf), ("active", "false")]).await;
    assert_eq!(
        (r.status(), r.headers()[LOCATION].to_str().unwrap()),
        (StatusCode::SEE_OTHER, "/console/accounts/partner")
    );
    assert_eq!(api_status(&s, "partner", &password).await, StatusCode::UNAUTHORIZED, "deactivated but works");
    let (_, page) = get(&s, "/console/accounts/partner", Some(&cookie)).await;
    assert!(page.contains(r#"<td id="account-active">inactive</td>"#), "{page}");
    let r =
        post_form(&s, "/console/accounts/partner/active", Some(&cookie), &[("csrf", &csrf), ("active", "true")]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(api_status(&s, "partner", &password).await, StatusCode::OK);

    let actions: Vec<String> =
        audit(&s).await.iter().map(|e| e["action"].as_str().unwrap_or_default().to_owned()).collect();
    assert_eq!(&actions[..4], ["account.update", "account.update", "account.token_revoke", "account.token_create"]);
}

#[tokio::test]
async fn saved_filters_belong_to_their_account() {
    let (s, _) = start(&[]);
    let agent = add_interactive(&s, "agent", &["itil"]);
    let other = add_interactive(&s, "other", &["itil"]);
    let (mine, _) = login(&s, "agent", &agent).await;
    let (theirs, _) = login(&s, "other", &other).await;
    let (_, page) = get(&s, "/console/incidents?sysparm_query=priority%3D1&sort=-number", Some(&mine)).await;
    assert!(page.contains(r#"<label for="filter-name">Save this filter as</label>"#), "{page}");
    let csrf = csrf_of(&page);

    let form = [("csrf", csrf.as_str()), ("name", "My P1s"), ("sysparm_query", "priority=1"), ("sort", "-number")];
    let r = post_form(&s, "/console/incidents/filters", Some(&mine), &form[1..]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "saved without the CSRF token");
    let r = post_form(&s, "/console/incidents/filters", Some(&mine), &form).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let target = "/console/incidents?sysparm_query=priority%3D1&sort=-number";
    assert_eq!(r.headers()[LOCATION], target);

    let (_, list) = get(&s, "/console/incidents", Some(&mine)).await;
    let link = format!(r#"<a class="saved-filter" href="{}">My P1s</a>"#, target.replace('&', "&#38;"));
    assert!(list.contains(&link), "{list}");
    let (_, list_of_other) = get(&s, "/console/incidents", Some(&theirs)).await;
    assert!(!list_of_other.contains("My P1s"), "another account sees the filter");

    // Another account cannot delete it; its owner can.
    let at = list.find("/console/incidents/filters/").unwrap() + "/console/incidents/filters/".len();
    let id = &list[at..at + 32];
    let delete = format!("/console/incidents/filters/{id}/delete");
    let other_csrf = csrf_of(&list_of_other);
    let r = post_form(&s, &delete, Some(&theirs), &[("csrf", &other_csrf)]).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(get(&s, "/console/incidents", Some(&mine)).await.1.contains("My P1s"));

    // Refusals are the list's alert: no name, a name too long.
    let long = "n".repeat(101);
    for name in ["  ", long.as_str()] {
        let r = post_form(&s, "/console/incidents/filters", Some(&mine), &[("csrf", &csrf), ("name", name)]).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let page = r.text().await.unwrap();
        assert!(page.contains(r#"role="alert" id="save-filter-error">Not saved: "#), "{page}");
    }

    let r = post_form(&s, &delete, Some(&mine), &[("csrf", &csrf)]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(!get(&s, "/console/incidents", Some(&mine)).await.1.contains("My P1s"));
}

#[tokio::test]
async fn accounts_are_created_from_the_console_as_through_the_api() {
    let (s, boss) = start(&[]);
    let (cookie, _) = login(&s, "boss", &boss).await;
    let (_, list) = get(&s, "/console/accounts", Some(&cookie)).await;
    let csrf = csrf_of(&list);
    let form = |name: &'static str, roles: &[(&'static str, &'static str)]| {
        let mut pairs = vec![("csrf", csrf.clone()), ("name", name.to_owned()), ("web_service_only", "false".into())];
        pairs.extend(roles.iter().map(|(k, v)| (*k, (*v).to_owned())));
        pairs.push(("networks", "127.0.0.1\n10.0.0.0/8".into()));
        pairs
    };
    let post = |pairs: Vec<(&'static str, String)>| {
        let (s, cookie) = (&s, cookie.clone());
        async move {
            let borrowed: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
            post_form(s, "/console/accounts", Some(&cookie), &borrowed).await
        }
    };

    // Refused as the API refuses: no role, a bad name; nothing created.
    for (pairs, needle) in
        [(form("desk", &[]), "at least one role"), (form("no spaces", &[("role_itil", "on")]), "name")]
    {
        let r = post(pairs).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let page = r.text().await.unwrap();
        assert!(page.contains(r#"<div role="alert"><p>Not created:"#) && page.contains(needle), "{page}");
    }
    assert_eq!(s.get("/api/sluice/v1/accounts/desk").await.0, 404);

    // Created with a generated password, shown once; it logs in to the console (interactive).
    let r = post(form("desk", &[("role_itil", "on")])).await;
    assert_eq!(r.status(), StatusCode::OK);
    let password = secret_of(&r.text().await.unwrap());
    let (status, body) = s.get("/api/sluice/v1/accounts/desk").await;
    assert_eq!(status, 200);
    let account = &body["result"];
    assert_eq!(
        (account["roles"].clone(), account["web_service_only"].clone()),
        (serde_json::json!(["itil"]), false.into())
    );
    assert_eq!(account["networks"], serde_json::json!(["127.0.0.1/32", "10.0.0.0/8"]));
    login(&s, "desk", &password).await;
    let created = audit(&s).await.into_iter().find(|e| e["target"] == "account:desk").expect("an audit entry");
    assert_eq!((created["action"].as_str(), created["actor"].as_str()), (Some("account.create"), Some("boss")));

    // The same name again: the API's conflict.
    let r = post(form("desk", &[("role_itil", "on")])).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("desk"));
}
