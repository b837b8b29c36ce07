//! Account management, API tokens and the admin audit.

use std::future::Future;

use serde_json::json;
use sluice_core::account::{AccountPolicy, AccountRate, IpNet, Role, parse_network};
use sluice_core::tables;
use sluice_store::{AccountAction, AccountChange, AdminAuditEntry, Store, StoreError};

use crate::helpers::*;

pub fn change(user_name: &str, action: AccountAction, secs: i64) -> AccountChange {
    AccountChange { user_name: user_name.into(), action, by: "root.admin".into(), now: at(secs) }
}

pub fn create(roles: &[Role], hash: &str, web_service_only: bool) -> AccountAction {
    AccountAction::Create {
        roles: roles.to_vec(),
        password_hash: hash.into(),
        web_service_only,
        policy: AccountPolicy::default(),
    }
}

pub fn update(active: Option<bool>, roles: Option<&[Role]>, web_service_only: Option<bool>) -> AccountAction {
    AccountAction::Update { active, roles: roles.map(<[Role]>::to_vec), web_service_only, networks: None, rate: None }
}

async fn apply<S: Store + ?Sized>(store: &S, c: AccountChange) -> Option<sluice_core::account::Account> {
    store.change_account(c).await.expect("change_account")
}

/// Create, disable, enable, change roles and flag, set a password: each change is stored,
/// visible through `account`, and raises the credentials version (and its time stamp).
pub async fn account_changes_raise_the_credentials_version<S: Store + ?Sized>(store: &S) {
    let users = table(tables::SYS_USER);
    let created = apply(store, change("partner", create(&[Role::ImportSetLoader], "$argon2id$1", false), 0))
        .await
        .expect("created");
    assert_eq!((created.user_name.as_str(), created.roles.as_slice()), ("partner", &[Role::ImportSetLoader][..]));
    assert!(created.active && !created.web_service_only);
    assert_eq!(created.credentials_version, 1);
    let row = get(store, users.clone(), created.sys_id.as_str()).await;
    assert_eq!(row["web_service_access_only"], "false");
    assert_eq!(row["credentials_changed_at"], at(0).to_string());
    assert_eq!(row["sys_created_by"], "root.admin");
    match store.change_account(change("partner", create(&[Role::Admin], "$argon2id$2", true), 1)).await {
        Err(StoreError::AccountExists(_)) => {}
        other => panic!("creating partner twice: {other:?}"),
    }

    let disabled = apply(store, change("partner", update(Some(false), None, None), 10)).await.expect("exists");
    assert!(!disabled.active);
    assert_eq!(disabled.credentials_version, 2);
    let found = store.account("partner".into()).await.expect("account").expect("a disabled account is found");
    assert_eq!(found, disabled);

    let enabled = apply(store, change("partner", update(Some(true), Some(&[Role::Itil, Role::Itil]), Some(true)), 20))
        .await
        .expect("exists");
    assert!(enabled.active && enabled.web_service_only);
    assert_eq!(enabled.roles, vec![Role::Itil]);
    assert_eq!(enabled.credentials_version, 3);

    let rotated =
        apply(store, change("partner", AccountAction::SetPassword { password_hash: "$argon2id$new".into() }, 30))
            .await
            .expect("exists");
    assert_eq!((rotated.password_hash.as_str(), rotated.credentials_version), ("$argon2id$new", 4));
    let row = get(store, users.clone(), created.sys_id.as_str()).await;
    assert_eq!(row["credentials_changed_at"], at(30).to_string());
    assert_eq!((row["sys_updated_by"].as_str(), row["sys_mod_count"].as_str()), ("root.admin", "3"));

    // Unknown accounts: nothing happens, `None`.
    for action in [
        update(Some(false), None, None),
        AccountAction::SetPassword { password_hash: "$argon2id$x".into() },
        AccountAction::Delete,
        AccountAction::AddToken { id: "t1".into(), digest: "ab".repeat(32), label: String::new(), integration: None },
        AccountAction::RevokeToken { id: "t1".into() },
    ] {
        assert_eq!(apply(store, change("nobody", action, 40)).await, None);
    }
    assert!(store.tokens("nobody".into()).await.expect("tokens").is_empty());
    // User names are exact: another case is another (unknown) account.
    assert_eq!(store.account("PARTNER".into()).await.expect("account"), None);
    // A name from a hostile client (Basic auth with a NUL) is no account, not an error.
    assert_eq!(store.account("partner\0".into()).await.expect("account with a NUL"), None);
    assert!(store.tokens("partner\0".into()).await.expect("tokens with a NUL").is_empty());
}

/// No change may leave the store without an active admin.
pub async fn the_last_active_admin_stays<S: Store + ?Sized>(store: &S) {
    apply(store, change("root", create(&[Role::Admin], "$argon2id$r", true), 0)).await.expect("root");
    for action in [update(Some(false), None, None), update(None, Some(&[Role::Itil]), None), AccountAction::Delete] {
        match store.change_account(change("root", action.clone(), 1)).await {
            Err(StoreError::LastAdmin) => {}
            other => panic!("{action:?} on the last admin: {other:?}"),
        }
    }
    let root = store.account("root".into()).await.expect("account").expect("root");
    assert!(root.active && root.roles == [Role::Admin] && root.credentials_version == 1, "{root:?}");

    // A disabled second admin does not count; an active one does.
    apply(store, change("second", create(&[Role::Admin, Role::Itil], "$argon2id$s", true), 2)).await.expect("second");
    apply(store, change("second", update(Some(false), None, None), 3)).await.expect("second");
    assert!(matches!(store.change_account(change("root", AccountAction::Delete, 4)).await, Err(StoreError::LastAdmin)));
    apply(store, change("second", update(Some(true), None, None), 5)).await.expect("second");
    apply(store, change("root", update(None, Some(&[Role::Itil]), None), 6)).await.expect("root demoted");
    assert!(matches!(
        store.change_account(change("second", update(Some(false), None, None), 7)).await,
        Err(StoreError::LastAdmin)
    ));
    // Other changes to the last admin are fine.
    apply(store, change("second", AccountAction::SetPassword { password_hash: "$argon2id$s2".into() }, 8))
        .await
        .expect("second");
}

/// Deleting removes the credentials, roles and tokens but keeps the user record; the name
/// can become an account again, with a higher credentials version.
pub async fn deleting_keeps_the_user_record<S: Store + ?Sized>(store: &S) {
    let a = apply(store, change("gone", create(&[Role::Itil], "$argon2id$g", true), 0)).await.expect("created");
    apply(
        store,
        change(
            "gone",
            AccountAction::AddToken {
                id: "tok1".into(),
                digest: "cd".repeat(32),
                label: "x".into(),
                integration: None,
            },
            1,
        ),
    )
    .await
    .expect("token");
    let deleted = apply(store, change("gone", AccountAction::Delete, 2)).await.expect("deleted");
    assert_eq!(deleted.sys_id, a.sys_id);
    assert_eq!(store.account("gone".into()).await.expect("account"), None);
    assert!(store.accounts().await.expect("accounts").iter().all(|x| x.user_name != "gone"));
    assert!(store.tokens("gone".into()).await.expect("tokens").is_empty());
    assert_eq!(store.account_by_token("cd".repeat(32)).await.expect("lookup"), None);
    let row = get(store, table(tables::SYS_USER), a.sys_id.as_str()).await;
    assert_eq!((row["user_name"].as_str(), row["roles"].as_str(), row["password_hash"].as_str()), ("gone", "", ""));
    assert_eq!(apply(store, change("gone", AccountAction::Delete, 3)).await, None, "already deleted");

    let again = apply(store, change("gone", create(&[Role::ImportSetLoader], "$argon2id$g2", true), 4))
        .await
        .expect("re-created");
    assert_eq!(again.sys_id, a.sys_id, "the same user record");
    assert!(again.active && again.credentials_version > deleted.credentials_version, "{again:?}");
    assert_eq!(list(store, table(tables::SYS_USER), &[("user_name", "gone")]).await.total, 1);
}

/// Tokens are found by digest (with their account, active or not) and revoked by id.
pub async fn api_tokens<S: Store + ?Sized>(store: &S) {
    let owner =
        apply(store, change("sender", create(&[Role::ImportSetLoader], "$argon2id$s", true), 0)).await.expect("sender");
    let digest = "0f".repeat(32);
    let add = AccountAction::AddToken {
        id: "tok-a".into(),
        digest: digest.clone(),
        label: "alertmanager".into(),
        integration: None,
    };
    let after = apply(store, change("sender", add, 5)).await.expect("token added");
    assert_eq!(after.credentials_version, owner.credentials_version, "tokens leave the password cache alone");
    let add = AccountAction::AddToken {
        id: "tok-b".into(),
        digest: "1e".repeat(32),
        label: String::new(),
        integration: None,
    };
    apply(store, change("sender", add, 6)).await.expect("second token");

    let tokens = store.tokens("sender".into()).await.expect("tokens");
    let ids: Vec<_> = tokens.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["tok-a", "tok-b"]);
    assert_eq!(
        (tokens[0].label.as_str(), tokens[0].created_on, tokens[0].created_by.as_str()),
        ("alertmanager", at(5), "root.admin")
    );

    let found = store.account_by_token(digest.clone()).await.expect("lookup").expect("found");
    assert_eq!((found.token.id.as_str(), found.digest.as_str()), ("tok-a", digest.as_str()));
    assert_eq!(found.account.user_name, "sender");
    assert_eq!(store.account_by_token("2d".repeat(32)).await.expect("lookup"), None);

    apply(store, change("sender", update(Some(false), None, None), 7)).await.expect("disabled");
    let found = store.account_by_token(digest.clone()).await.expect("lookup").expect("still found");
    assert!(!found.account.active, "the caller decides: a disabled account's token does not authenticate");

    let revoke = |id: &str| change("sender", AccountAction::RevokeToken { id: id.into() }, 8);
    assert!(apply(store, revoke("tok-a")).await.is_some());
    assert_eq!(apply(store, revoke("tok-a")).await, None, "revoked already");
    assert_eq!(store.account_by_token(digest).await.expect("lookup"), None);
    assert_eq!(store.tokens("sender".into()).await.expect("tokens").len(), 1);
}

/// A token bound to an integration (a PagerDuty routing key) keeps its binding: listed with it,
/// found by digest with it, audited with it; unbound tokens have none.
pub async fn routing_keys<S: Store + ?Sized>(store: &S) {
    apply(store, change("pd", create(&[Role::ImportSetLoader], "$argon2id$p", true), 0)).await.expect("pd");
    let bound = AccountAction::AddToken {
        id: "rk".into(),
        digest: "3c".repeat(32),
        label: "zabbix".into(),
        integration: Some("pagerduty".into()),
    };
    apply(store, change("pd", bound, 1)).await.expect("bound");
    let plain =
        AccountAction::AddToken { id: "pl".into(), digest: "4d".repeat(32), label: String::new(), integration: None };
    apply(store, change("pd", plain, 2)).await.expect("plain");

    let tokens = store.tokens("pd".into()).await.expect("tokens");
    let bindings: Vec<_> = tokens.iter().map(|t| (t.id.as_str(), t.integration.as_deref())).collect();
    assert_eq!(bindings, [("rk", Some("pagerduty")), ("pl", None)]);
    let found = store.account_by_token("3c".repeat(32)).await.expect("lookup").expect("found");
    assert_eq!((found.token.integration.as_deref(), found.account.user_name.as_str()), (Some("pagerduty"), "pd"));
    let found = store.account_by_token("4d".repeat(32)).await.expect("lookup").expect("found");
    assert_eq!(found.token.integration, None);

    let (entries, _) = store.admin_audit(Some("account.token_create".into()), 10, 0).await.expect("audit");
    let details: Vec<_> = entries.iter().map(|e| e.details.clone()).collect();
    assert_eq!(
        details,
        [
            serde_json::json!({"token_id": "pl", "label": ""}),
            serde_json::json!({"token_id": "rk", "label": "zabbix", "integration": "pagerduty"})
        ]
    );
}

/// Every account change leaves one admin-audit entry (who, what, target, details, when);
/// other actions are recorded as given; entries come newest first, paged, with a total, all of
/// them or of one action.
pub async fn admin_audit<S: Store + ?Sized>(store: &S) {
    let (entries, total) = store.admin_audit(None, 10, 0).await.expect("audit");
    assert_eq!((entries.len(), total), (0, 0));

    store.add_account(new_account("boot", &[Role::Admin], "$argon2id$b")).await.expect("add");
    apply(store, change("ops", create(&[Role::Itil], "$argon2id$o", true), 1)).await.expect("ops");
    apply(store, change("ops", update(Some(false), Some(&[Role::Itil, Role::ImportSetLoader]), None), 2))
        .await
        .expect("ops");
    apply(store, change("ops", AccountAction::SetPassword { password_hash: "$argon2id$o2".into() }, 3))
        .await
        .expect("ops");
    let add =
        AccountAction::AddToken { id: "tk".into(), digest: "aa".repeat(32), label: "bulk".into(), integration: None };
    apply(store, change("ops", add, 4)).await.expect("ops");
    apply(store, change("ops", AccountAction::RevokeToken { id: "tk".into() }, 5)).await.expect("ops");
    apply(store, change("ops", AccountAction::Delete, 6)).await.expect("ops");
    // Refused and unknown changes leave nothing.
    let _ = store.change_account(change("boot", AccountAction::Delete, 7)).await;
    apply(store, change("nobody", AccountAction::Delete, 7)).await;
    store
        .record_admin_audit(AdminAuditEntry {
            id: 0,
            created_on: at(8),
            actor: "boot".into(),
            action: "integrations.reload".into(),
            target: "integrations".into(),
            details: json!({"outcome": "reloaded", "integrations": ["u_incident_import"]}),
        })
        .await
        .expect("record");

    let (entries, total) = store.admin_audit(None, 100, 0).await.expect("audit");
    assert_eq!(total, 8);
    let actions: Vec<_> = entries.iter().map(|e| (e.action.as_str(), e.target.as_str(), e.actor.as_str())).collect();
    assert_eq!(
        actions,
        [
            ("integrations.reload", "integrations", "boot"),
            ("account.delete", "account:ops", "root.admin"),
            ("account.token_revoke", "account:ops", "root.admin"),
            ("account.token_create", "account:ops", "root.admin"),
            ("account.rotate_password", "account:ops", "root.admin"),
            ("account.update", "account:ops", "root.admin"),
            ("account.create", "account:ops", "root.admin"),
            ("account.create", "account:boot", "test"),
        ]
    );
    assert!(entries.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    assert_eq!(entries[0].created_on, at(8));
    assert_eq!(entries[0].details["integrations"][0], "u_incident_import");
    assert_eq!(entries[5].created_on, at(2));
    assert_eq!(entries[5].details["active"], json!({"from": true, "to": false}));
    assert_eq!(entries[5].details["roles"]["to"], json!(["itil", "import_set_loader"]));
    assert_eq!(entries[6].details, json!({"roles": ["itil"], "web_service_only": true}));
    assert_eq!(entries[3].details["label"], "bulk");
    let text = serde_json::to_string(&entries.iter().map(|e| e.details.clone()).collect::<Vec<_>>()).unwrap();
    assert!(!text.contains("argon2") && !text.contains(&"aa".repeat(32)), "no secrets in the audit: {text}");

    let (page, total) = store.admin_audit(None, 3, 2).await.expect("audit");
    assert_eq!(total, 8);
    let ids: Vec<_> = page.iter().map(|e| e.id).collect();
    assert_eq!(ids, entries[2..5].iter().map(|e| e.id).collect::<Vec<_>>());
    assert!(store.admin_audit(None, 10, 100).await.expect("audit").0.is_empty());

    // One action only: its entries, counted alone, paged the same way.
    let (created, total) = store.admin_audit(Some("account.create".into()), 10, 0).await.expect("audit");
    assert_eq!(total, 2);
    let targets: Vec<_> = created.iter().map(|e| e.target.as_str()).collect();
    assert_eq!(targets, ["account:ops", "account:boot"]);
    let (second, total) = store.admin_audit(Some("account.create".into()), 1, 1).await.expect("audit");
    assert_eq!((second.len(), total, second[0].target.as_str()), (1, 2, "account:boot"));
    assert_eq!(store.admin_audit(Some("no.such".into()), 10, 0).await.expect("audit"), (Vec::new(), 0));
}

/// Source networks and a rate limit are stored with the account, changed on their own,
/// cleared again, raise the credentials version and are recorded in the admin audit.
pub async fn account_policies<S: Store + ?Sized>(store: &S) {
    let nets: Vec<IpNet> = ["10.0.0.0/8", "2001:db8::/32"].iter().map(|n| parse_network(n).unwrap()).collect();
    let policy = AccountPolicy { networks: nets.clone(), rate: Some(AccountRate { per_second: 5, burst: 10 }) };
    let action = AccountAction::Create {
        roles: vec![Role::ImportSetLoader],
        password_hash: "$argon2id$x".into(),
        web_service_only: true,
        policy: policy.clone(),
    };
    let created = apply(store, change("fenced", action, 0)).await.expect("created");
    assert_eq!(created.policy, policy);
    assert_eq!(store.account("fenced".into()).await.unwrap().unwrap().policy, policy);

    let only_v6 = vec![nets[1]];
    let set_networks = AccountAction::Update {
        active: None,
        roles: None,
        web_service_only: None,
        networks: Some(only_v6.clone()),
        rate: None,
    };
    let changed = apply(store, change("fenced", set_networks, 1)).await.expect("changed");
    assert_eq!(changed.policy.networks, only_v6);
    assert_eq!(changed.policy.rate, policy.rate, "the rate is left alone");
    assert!(changed.credentials_version > created.credentials_version);

    let clear = AccountAction::Update {
        active: None,
        roles: None,
        web_service_only: None,
        networks: Some(vec![]),
        rate: Some(None),
    };
    let cleared = apply(store, change("fenced", clear, 2)).await.expect("cleared");
    assert_eq!(cleared.policy, AccountPolicy::default());
    assert_eq!(store.account("fenced".into()).await.unwrap().unwrap().policy, AccountPolicy::default());

    let (audit, _) = store.admin_audit(None, 10, 0).await.expect("audit");
    assert_eq!(audit[0].details["rate"], json!({"from": {"per_second": 5, "burst": 10}, "to": null}));
    assert_eq!(audit[1].details["networks"], json!({"from": ["10.0.0.0/8", "2001:db8::/32"], "to": ["2001:db8::/32"]}));
    assert_eq!(audit[2].details["networks"], json!(["10.0.0.0/8", "2001:db8::/32"]));
}

/// Account changes and their audit are there after the store is closed and opened again.
pub async fn account_changes_survive_reopen<S: Store, F: Fn() -> Fut, Fut: Future<Output = S>>(open: F) {
    let store = open().await;
    store.change_account(change("persist", create(&[Role::Admin], "$argon2id$p", false), 0)).await.expect("create");
    let rotate = AccountAction::SetPassword { password_hash: "$argon2id$q".into() };
    store.change_account(change("persist", rotate, 1)).await.expect("rotate");
    store.close().await;
    drop(store);
    let store = open().await;
    let a = store.account("persist".into()).await.expect("account").expect("persist");
    assert_eq!((a.password_hash.as_str(), a.credentials_version, a.web_service_only), ("$argon2id$q", 2, false));
    assert_eq!(store.admin_audit(None, 10, 0).await.expect("audit").1, 2);
    store.close().await;
}
