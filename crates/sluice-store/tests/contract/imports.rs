//! The contract of single-row imports, lists and accounts: numbering, import sets, coalescing,
//! audit, references, data policy, reopening and concurrency.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;

use serde_json::json;
use sluice_core::SysId;
use sluice_core::account::Role;
use sluice_core::staging::RowState;
use sluice_core::tables;
use sluice_core::validate::{self, ErrorCode, FieldError};
use sluice_store::{ListQuery, Page, Store, StoreError};

use crate::helpers::*;

pub async fn ping<S: Store + ?Sized>(store: &S) {
    store.ping().await.expect("ping");
}

/// Incident numbers start at INC0010001 and count up; one import set per staging table and
/// day, ISET0010001 first; a new day opens the next set and marks the old one processed.
pub async fn numbers_and_import_sets<S: Store + ?Sized>(store: &S) {
    let i = ready(store).await;
    let a = actor();
    let first = import(store, job(&i, json!({"u_short_description": "Disk full"}), &a, at(0))).await;
    let second = import(store, job(&i, json!({"u_short_description": "CPU hot"}), &a, at(60))).await;
    assert_eq!((first.state, second.state), (RowState::Inserted, RowState::Inserted));
    assert_eq!(first.display_value.as_deref(), Some("INC0010001"));
    assert_eq!(second.display_value.as_deref(), Some("INC0010002"));
    assert_eq!(first.import_set, "ISET0010001");
    assert_eq!(second.import_set, "ISET0010001");
    assert_ne!(first.target_sys_id, second.target_sys_id);
    assert!(first.errors.is_empty() && first.status_message.is_none(), "{first:?}");

    let inc = incident(store, &first).await;
    assert_eq!(inc["number"], "INC0010001");
    assert_eq!(inc["short_description"], "Disk full");
    assert_eq!(inc["sys_created_by"], "integration.alerts");
    assert_eq!(inc["sys_created_on"], at(0).to_string());
    assert_eq!((inc["impact"].as_str(), inc["urgency"].as_str(), inc["priority"].as_str()), ("3", "3", "5"));
    assert_eq!(inc["active"], "true");
    assert_eq!(incident(store, &second).await["number"], "INC0010002");

    // The staging rows point at their set, numbered in arrival order, and at their target.
    let sets = list(store, table(tables::SYS_IMPORT_SET), &[]).await;
    assert_eq!(sets.total, 1);
    let set = &sets.records[0];
    assert_eq!(
        (set["number"].as_str(), set["table_name"].as_str(), set["state"].as_str()),
        ("ISET0010001", "u_incident_import", "loading")
    );
    for (n, outcome) in [&first, &second].into_iter().enumerate() {
        let row = staged(store, &i, outcome).await;
        assert_eq!(row["sys_import_set"], set["sys_id"]);
        assert_eq!(row["sys_import_row"], n.to_string());
        assert_eq!(row["sys_import_state"], "inserted");
        assert_eq!(Some(&row["sys_target_sys_id"]), outcome.target_sys_id.as_ref());
        assert_eq!(row["sys_target_table"], "incident");
        assert_eq!(row["sys_transform_map"], "Incident Import");
        assert_eq!(row["sys_integration_version"], "1");
    }

    // The next day: a new import set; the incident counter simply continues.
    let third = import(store, job(&i, json!({"u_short_description": "Fan noise"}), &a, at(ONE_DAY))).await;
    assert_eq!(third.import_set, "ISET0010002");
    assert_eq!(third.display_value.as_deref(), Some("INC0010003"));
    assert_eq!(staged(store, &i, &third).await["sys_import_row"], "0");
    let sets = list(store, table(tables::SYS_IMPORT_SET), &[]).await;
    let states: Vec<_> = sets.records.iter().map(|s| (s["number"].as_str(), s["state"].as_str())).collect();
    assert_eq!(states, vec![("ISET0010001", "processed"), ("ISET0010002", "loading")]);
}

/// The same correlation id (in any case) updates the active incident; an identical resend
/// changes nothing; every change is audited with old and new value, user and source row.
pub async fn coalesce_update_ignore_and_audit<S: Store + ?Sized>(store: &S) {
    let i = ready(store).await;
    let a = actor();
    let audit = table(tables::SYS_AUDIT);
    let payload =
        json!({"u_short_description": "Disk full", "u_correlation_id": "am:1", "u_impact": "2", "u_urgency": "2"});
    let inserted = import(store, job(&i, payload, &a, at(0))).await;
    assert_eq!(inserted.state, RowState::Inserted);
    let id = inserted.target_sys_id.clone().expect("target");

    // Every non-empty field of the new record is audited from "" (bookkeeping fields aren't).
    let trail = list(store, audit.clone(), &[("documentkey", &id)]).await;
    let created: Vec<_> = trail.records.iter().map(|r| r["fieldname"].as_str()).collect();
    for f in ["number", "short_description", "correlation_id", "impact", "urgency", "priority", "state"] {
        assert!(created.contains(&f), "{f} not audited on insert: {created:?}");
    }
    assert!(!created.contains(&"sys_mod_count") && !created.contains(&"description"), "{created:?}");
    let mut ids = std::collections::BTreeSet::new();
    for r in &trail.records {
        assert_eq!(r["oldvalue"], "", "{r:?}");
        assert_eq!(r["source_row"], inserted.staging_sys_id.as_str());
        // The columns every row of one change shares, and the ones derived from its own id.
        assert_eq!((r["tablename"].as_str(), r["documentkey"].as_str()), ("incident", id.as_str()), "{r:?}");
        assert_eq!(r["reason"], format!("Import Set u_incident_import row {}", inserted.staging_sys_id), "{r:?}");
        assert_eq!((r["record_checkpoint"].as_str(), r["sys_mod_count"].as_str()), ("0", "0"), "{r:?}");
        assert_eq!(r["internal_checkpoint"], r["sys_id"][..18], "{r:?}");
        for f in ["user", "sys_created_by", "sys_updated_by"] {
            assert_eq!(r[f], "integration.alerts", "{f}: {r:?}");
        }
        assert_eq!((&r["sys_created_on"], &r["sys_updated_on"]), (&at(0).to_string(), &at(0).to_string()));
        assert!(ids.insert(r["sys_id"].clone()), "one sys_id per row: {r:?}");
    }
    let before = trail.total;

    let changed = json!({"u_short_description": "Disk full again", "u_correlation_id": "AM:1", "u_impact": "2", "u_urgency": "1"});
    let updated = import(store, job(&i, changed.clone(), &a, at(60))).await;
    assert_eq!(updated.state, RowState::Updated, "{updated:?}");
    assert_eq!(updated.target_sys_id.as_deref(), Some(id.as_str()));
    assert_eq!(updated.display_value.as_deref(), Some("INC0010001"));
    assert_eq!(list(store, table(tables::INCIDENT), &[]).await.total, 1);

    let inc = incident(store, &updated).await;
    assert_eq!(inc["short_description"], "Disk full again");
    assert_eq!(inc["correlation_id"], "am:1", "the coalesce value identifies the record and is kept");
    assert_eq!((inc["urgency"].as_str(), inc["priority"].as_str()), ("1", "2"));
    assert_eq!(inc["sys_mod_count"], "1");
    assert_eq!(inc["sys_updated_on"], at(60).to_string());
    assert_eq!(staged(store, &i, &updated).await["sys_import_state"], "updated");

    let trail = list(store, audit.clone(), &[("documentkey", &id)]).await;
    let mut changes: Vec<_> = trail
        .records
        .iter()
        .filter(|r| r["source_row"] == updated.staging_sys_id.as_str())
        .map(|r| {
            assert_eq!(r["user"], "integration.alerts");
            assert_eq!(r["tablename"], "incident");
            assert_eq!(r["source_table"], "u_incident_import");
            assert_eq!(r["record_checkpoint"], "1");
            (r["fieldname"].clone(), r["oldvalue"].clone(), r["newvalue"].clone())
        })
        .collect();
    changes.sort();
    let expected: Vec<(String, String, String)> =
        [("priority", "3", "2"), ("short_description", "Disk full", "Disk full again"), ("urgency", "2", "1")]
            .iter()
            .map(|(f, o, n)| ((*f).into(), (*o).into(), (*n).into()))
            .collect();
    assert_eq!(changes, expected);
    assert_eq!(trail.total, before + 3);

    // The identical resend: nothing changes, nothing is audited.
    let resent = import(store, job(&i, changed, &a, at(120))).await;
    assert_eq!(resent.state, RowState::Ignored, "{resent:?}");
    assert_eq!(resent.status_message.as_deref(), Some("No field values changed"));
    assert_eq!(resent.target_sys_id.as_deref(), Some(id.as_str()));
    assert_eq!(incident(store, &resent).await["sys_mod_count"], "1");
    assert_eq!(list(store, audit.clone(), &[("documentkey", &id)]).await.total, before + 3);
    let row = staged(store, &i, &resent).await;
    assert_eq!(row["sys_import_state"], "ignored");
    assert_eq!(row["sys_import_state_comment"], "No field values changed");
    assert_eq!(row["sys_target_sys_id"], id);

    // A different correlation id is a different incident.
    let other = json!({"u_short_description": "Disk full", "u_correlation_id": "am:2"});
    let other = import(store, job(&i, other, &a, at(180))).await;
    assert_eq!(other.state, RowState::Inserted);
    assert_eq!(other.display_value.as_deref(), Some("INC0010002"));
}

/// A row that failed validation is kept in staging with its errors and raw body; no incident.
pub async fn invalid_rows_are_staged_as_errors<S: Store + ?Sized>(store: &S) {
    let i = ready(store).await;
    // Odd spacing and a non-ASCII character: the stored payload is the body byte for byte.
    let raw = "{\"u_impact\": \"9\",   \"u_description\":\"caf\u{e9}\" ,\"u_short_description\": \"\"}";
    let job = job_raw(&i, raw, &actor(), at(0));
    let expected: Vec<FieldError> = job.verdict.clone().expect_err("the row is invalid");
    let outcome = import(store, job).await;
    assert_eq!(outcome.state, RowState::Error);
    assert_eq!(outcome.errors, expected);
    let codes: Vec<_> = outcome.errors.iter().map(|e| (e.field.as_str(), e.code)).collect();
    assert_eq!(codes, vec![("u_short_description", ErrorCode::FieldRequired), ("u_impact", ErrorCode::InvalidChoice)]);
    assert_eq!((outcome.target_sys_id.as_deref(), outcome.display_value.as_deref()), (None, None));
    assert_eq!(outcome.import_set, "ISET0010001");

    assert_eq!(list(store, table(tables::INCIDENT), &[]).await.total, 0);
    assert_eq!(list(store, table(tables::SYS_AUDIT), &[]).await.total, 0);

    let row = staged(store, &i, &outcome).await;
    assert_eq!(row["sys_id"], outcome.staging_sys_id.as_str());
    assert_eq!(row["sys_import_state"], "error");
    assert_eq!(row["sys_row_error"], validate::summary(&expected));
    assert!(row["sys_row_error"].contains("u_impact: \"9\" is not one of 1, 2, 3"), "{}", row["sys_row_error"]);
    let stored: Vec<FieldError> = serde_json::from_str(&row["sys_row_errors"]).expect("sys_row_errors is JSON");
    assert_eq!(stored, expected);
    assert_eq!(row["sys_target_sys_id"], "");
    assert_eq!(row["sys_payload"].as_bytes(), raw.as_bytes());
    assert_eq!((row["u_impact"].as_str(), row["u_description"].as_str()), ("9", "caf\u{e9}"));

    // The error row takes no incident number.
    let ok = import(store, crate::helpers::job(&i, json!({"u_short_description": "x"}), &actor(), at(1))).await;
    assert_eq!(ok.display_value.as_deref(), Some("INC0010001"));
    assert_eq!(staged(store, &i, &ok).await["sys_import_row"], "1");
}

/// A plan ignored by an on_before script: the row is staged as `ignored` with the script's
/// status message; no incident, no referenced record, no audit row, no number taken.
pub async fn ignored_plans_write_only_the_staging_row<S: Store + ?Sized>(store: &S) {
    let i = ready(store).await;
    let mut job = job(&i, json!({"u_short_description": "x", "u_caller": "new.person"}), &actor(), at(0));
    job.verdict.as_mut().expect("valid").ignore = Some("duplicate alert".into());
    let outcome = import(store, job).await;
    assert_eq!(outcome.state, RowState::Ignored);
    assert_eq!(outcome.status_message.as_deref(), Some("duplicate alert"));
    assert_eq!(outcome.target_sys_id, None);
    assert!(outcome.errors.is_empty());
    let row = staged(store, &i, &outcome).await;
    assert_eq!(row["sys_import_state"], "ignored");
    assert_eq!(row["sys_import_state_comment"], "duplicate alert");
    assert_eq!(row["sys_target_sys_id"], "");
    assert_eq!(list(store, table(tables::INCIDENT), &[]).await.total, 0);
    assert_eq!(list(store, table(tables::SYS_AUDIT), &[]).await.total, 0);
    assert_eq!(list(store, table(tables::SYS_USER), &[("user_name", "new.person")]).await.total, 0);

    let ok = import(store, crate::helpers::job(&i, json!({"u_short_description": "x"}), &actor(), at(1))).await;
    assert_eq!(ok.display_value.as_deref(), Some("INC0010001"));
}

/// A plan whose on_before script was told another action than the commit finds (a concurrent
/// row committed in between): nothing is written, the row is staged `pending` to be judged
/// again; ignored plans are checked too. A plan judged right commits as usual.
pub async fn raced_plans_write_nothing_and_stay_pending<S: Store + ?Sized>(store: &S) {
    use sluice_core::transform::{Action, RACED};
    let i = ready(store).await;
    let a = actor();
    let payload = |n: &str| json!({"u_short_description": n, "u_correlation_id": "race:1"});
    let judged = |n: &str, action: Action, ignore: bool, at| {
        let mut job = job(&i, payload(n), &a, at);
        let plan = job.verdict.as_mut().expect("valid");
        plan.judged_action = Some(action);
        plan.ignore = ignore.then(|| "nothing to resolve".to_owned());
        job
    };
    let assert_raced = |outcome: &sluice_store::ImportOutcome| {
        assert_eq!(outcome.state, RowState::Pending, "{outcome:?}");
        assert_eq!(outcome.status_message.as_deref(), Some(RACED));
        assert_eq!(outcome.target_sys_id, None);
    };
    // Judged "update", but nothing to update: no incident, no number taken.
    let raced = import(store, judged("one", Action::Update, false, at(0))).await;
    assert_raced(&raced);
    let row = staged(store, &i, &raced).await;
    assert_eq!((row["sys_import_state"].as_str(), row["sys_target_sys_id"].as_str()), ("pending", ""));
    assert_eq!(row["sys_import_state_comment"], RACED);
    assert_eq!(list(store, table(tables::INCIDENT), &[]).await.total, 0);
    // Judged "insert" and ignored, found nothing: ignored as the script said.
    let ignored = import(store, judged("two", Action::Insert, true, at(1))).await;
    assert_eq!(ignored.state, RowState::Ignored, "{ignored:?}");

    let first = import(store, judged("three", Action::Insert, false, at(2))).await;
    assert_eq!(first.state, RowState::Inserted, "{first:?}");
    assert_eq!(first.display_value.as_deref(), Some("INC0010001"));
    // Judged "insert" (and ignored, or not) while the record now exists: raced.
    assert_raced(&import(store, judged("four", Action::Insert, false, at(3))).await);
    assert_raced(&import(store, judged("five", Action::Insert, true, at(4))).await);
    let updated = import(store, judged("six", Action::Update, false, at(5))).await;
    assert_eq!(updated.state, RowState::Updated, "{updated:?}");
    let incidents = list(store, table(tables::INCIDENT), &[]).await;
    assert_eq!(incidents.total, 1);
    assert_eq!(incidents.records[0]["short_description"], "six");
}

/// References: an unknown caller becomes a user, reused whatever the case; a sys_id or an
/// e-mail address also finds a user; an unknown group (on_unknown = ignore) stays empty and
/// is reported in the status message.
pub async fn reference_lookups<S: Store + ?Sized>(store: &S) {
    let i = ready(store).await;
    let a = actor();
    let users = table(tables::SYS_USER);

    let first =
        import(store, job(&i, json!({"u_short_description": "a", "u_caller": "monitoring.bot"}), &a, at(0))).await;
    assert_eq!(first.state, RowState::Inserted);
    assert_eq!(first.status_message, None);
    let caller = incident(store, &first).await["caller_id"].clone();
    assert!(SysId::is_valid(&caller), "{caller:?}");
    let user = get(store, users.clone(), &caller).await;
    assert_eq!((user["user_name"].as_str(), user["name"].as_str()), ("monitoring.bot", "monitoring.bot"));
    assert_eq!((user["email"].as_str(), user["active"].as_str()), ("", "true"));
    assert_eq!(list(store, users.clone(), &[]).await.total, 1);

    let second =
        import(store, job(&i, json!({"u_short_description": "b", "u_caller": "Monitoring.BOT"}), &a, at(1))).await;
    assert_eq!(incident(store, &second).await["caller_id"], caller);
    let by_id =
        import(store, job(&i, json!({"u_short_description": "c", "u_caller": caller.clone()}), &a, at(2))).await;
    assert_eq!(incident(store, &by_id).await["caller_id"], caller);
    assert_eq!(list(store, users.clone(), &[]).await.total, 1, "the caller is reused, not duplicated");

    // An e-mail address becomes the new user's e-mail, and is found again by it.
    let mail =
        import(store, job(&i, json!({"u_short_description": "d", "u_caller": "Ops@Example.com"}), &a, at(3))).await;
    let mail_user = incident(store, &mail).await["caller_id"].clone();
    assert_ne!(mail_user, caller);
    assert_eq!(get(store, users.clone(), &mail_user).await["email"], "Ops@Example.com");
    let again =
        import(store, job(&i, json!({"u_short_description": "e", "u_caller": "ops@example.COM"}), &a, at(4))).await;
    assert_eq!(incident(store, &again).await["caller_id"], mail_user);
    assert_eq!(list(store, users.clone(), &[]).await.total, 2);

    // Unknown group: the incident is created, the field left empty, the row says why.
    let grouped =
        import(store, job(&i, json!({"u_short_description": "f", "u_assignment_group": "Database"}), &a, at(5))).await;
    assert_eq!(grouped.state, RowState::Inserted);
    let message = grouped.status_message.clone().expect("a status message for the unknown group");
    assert!(message.contains("assignment_group") && message.contains("Database"), "{message}");
    assert_eq!(incident(store, &grouped).await["assignment_group"], "");
    assert_eq!(list(store, table(tables::SYS_USER_GROUP), &[]).await.total, 0);
    assert_eq!(staged(store, &i, &grouped).await["sys_import_state_comment"], message);
}

/// Accounts: created with roles, found by name, listed, never duplicated; a user created by
/// an import (no password) can become an account.
pub async fn accounts<S: Store + ?Sized>(store: &S) {
    assert!(store.accounts().await.expect("accounts").is_empty());
    assert_eq!(store.account("alice".into()).await.expect("account"), None);

    let created = store
        .add_account(new_account("alice", &[Role::Itil, Role::ImportSetLoader], "$argon2id$alice"))
        .await
        .expect("add alice");
    assert_eq!(created.user_name, "alice");
    assert_eq!(created.roles, vec![Role::Itil, Role::ImportSetLoader]);
    assert!(created.active);
    let found = store.account("alice".into()).await.expect("account").expect("alice exists");
    assert_eq!(found, created);
    assert_eq!(found.password_hash, "$argon2id$alice");

    let user = get(store, table(tables::SYS_USER), found.sys_id.as_str()).await;
    assert_eq!((user["user_name"].as_str(), user["roles"].as_str()), ("alice", "itil,import_set_loader"));
    assert_eq!((user["web_service_access_only"].as_str(), user["sys_created_by"].as_str()), ("true", "test"));

    match store.add_account(new_account("alice", &[Role::Admin], "$argon2id$other")).await {
        Err(StoreError::AccountExists(_)) => {}
        other => panic!("adding alice twice: {other:?}"),
    }
    let unchanged = store.account("alice".into()).await.expect("account").expect("alice");
    assert_eq!(unchanged, created, "a refused add changes nothing");

    // A caller created by an import is a user without credentials, not an account...
    let i = ready(store).await;
    let outcome = import(store, job(&i, json!({"u_short_description": "x", "u_caller": "bot"}), &actor(), at(0))).await;
    let caller = incident(store, &outcome).await["caller_id"].clone();
    assert_eq!(store.account("bot".into()).await.expect("account"), None);
    let names: Vec<_> = store.accounts().await.expect("accounts").into_iter().map(|a| a.user_name).collect();
    assert_eq!(names, vec!["alice"]);

    // ...until an account is added for it: the same user record gains roles and a password.
    let upgraded = store.add_account(new_account("bot", &[Role::Admin], "$argon2id$bot")).await.expect("add bot");
    assert_eq!(upgraded.sys_id.as_str(), caller);
    let bot = store.account("bot".into()).await.expect("account").expect("bot is an account");
    assert_eq!((bot.sys_id.as_str(), bot.roles.as_slice()), (caller.as_str(), &[Role::Admin][..]));
    assert_eq!(list(store, table(tables::SYS_USER), &[]).await.total, 2);
    let names: Vec<_> = store.accounts().await.expect("accounts").into_iter().map(|a| a.user_name).collect();
    assert_eq!(names, vec!["alice", "bot"]);
    assert!(matches!(
        store.add_account(new_account("bot", &[Role::Itil], "$argon2id$again")).await,
        Err(StoreError::AccountExists(_))
    ));
}

/// Equality filters (ANDed), limit and offset over insertion order, and the total count.
pub async fn list_filters_and_pages<S: Store + ?Sized>(store: &S) {
    let i = ready(store).await;
    let a = actor();
    let rows = [("network", "1"), ("database", "1"), ("network", "2"), ("network", "1"), ("database", "3")];
    for (n, (category, urgency)) in rows.iter().enumerate() {
        let payload = json!({"u_short_description": format!("row {n}"), "u_category": category, "u_urgency": urgency});
        assert_eq!(import(store, job(&i, payload, &a, at(n as i64))).await.state, RowState::Inserted);
    }
    let incidents = table(tables::INCIDENT);
    let numbers = |page: &Page| page.records.iter().map(|r| r["number"].clone()).collect::<Vec<_>>();
    let query =
        |pairs: &[(&str, &str)], limit, offset| ListQuery { filter: equals(pairs), limit, offset, count_up_to: None };

    let all = store.list(incidents.clone(), query(&[], 100, 0)).await.expect("list");
    assert_eq!(all.total, 5);
    assert_eq!(numbers(&all), ["INC0010001", "INC0010002", "INC0010003", "INC0010004", "INC0010005"]);

    let network = list(store, incidents.clone(), &[("category", "network")]).await;
    assert_eq!(network.total, 3);
    assert_eq!(numbers(&network), ["INC0010001", "INC0010003", "INC0010004"]);
    assert!(network.records.iter().all(|r| r["category"] == "network"));

    let both = list(store, incidents.clone(), &[("category", "network"), ("urgency", "1")]).await;
    assert_eq!((both.total, numbers(&both)), (2, vec!["INC0010001".to_owned(), "INC0010004".to_owned()]));

    let page1 = store.list(incidents.clone(), query(&[("category", "network")], 2, 0)).await.expect("list");
    let page2 = store.list(incidents.clone(), query(&[("category", "network")], 2, 2)).await.expect("list");
    let page3 = store.list(incidents.clone(), query(&[("category", "network")], 2, 4)).await.expect("list");
    assert_eq!((page1.total, page2.total, page3.total), (3, 3, 3), "total ignores limit and offset");
    assert_eq!(numbers(&page1), ["INC0010001", "INC0010003"]);
    assert_eq!(numbers(&page2), ["INC0010004"]);
    assert!(page3.records.is_empty());

    let middle = store.list(incidents.clone(), query(&[], 2, 1)).await.expect("list");
    assert_eq!((middle.total, numbers(&middle)), (5, vec!["INC0010002".to_owned(), "INC0010003".to_owned()]));

    // A bounded count stops one past the bound ("more than 2"); an unreached bound is exact.
    let bounded =
        |n| ListQuery { filter: equals(&[("category", "network")]), limit: 1, offset: 0, count_up_to: Some(n) };
    let over = store.list(incidents.clone(), bounded(2)).await.expect("list");
    assert_eq!((over.total, numbers(&over)), (3, vec!["INC0010001".to_owned()]));
    let at_one = store.list(incidents.clone(), bounded(1)).await.expect("list");
    assert_eq!(at_one.total, 2, "counted to one past the bound of 1");
    assert_eq!(store.list(incidents.clone(), bounded(10)).await.expect("list").total, 3);

    let none = list(store, incidents.clone(), &[("category", "hardware")]).await;
    assert_eq!((none.total, none.records.len()), (0, 0));

    // Records carry every stored field.
    let one = &list(store, incidents, &[("number", "INC0010005")]).await.records[0];
    assert_eq!((one["short_description"].as_str(), one["category"].as_str()), ("row 4", "database"));
    assert_eq!(one["priority"], "5");
}

/// The business rules' data policy rejects a row without touching the incident; only active
/// incidents are coalesced, so a closed one is not reopened by a later alert.
pub async fn data_policy_and_active_only_coalesce<S: Store + ?Sized>(store: &S) {
    let i = lifecycle_integration();
    store.prepare_staging(i.staging.clone()).await.expect("prepare staging");
    let a = actor();
    let audit = table(tables::SYS_AUDIT);
    let opened =
        import(store, job(&i, json!({"u_short_description": "x", "u_correlation_id": "am:9"}), &a, at(0))).await;
    assert_eq!(opened.state, RowState::Inserted);
    let id = opened.target_sys_id.clone().expect("target");
    let audited = list(store, audit.clone(), &[("documentkey", &id)]).await.total;

    let refused = json!({"u_short_description": "x", "u_correlation_id": "am:9", "u_state": "6"});
    let refused = import(store, job(&i, refused, &a, at(10))).await;
    assert_eq!(refused.state, RowState::Error, "{refused:?}");
    let fields: Vec<_> = refused.errors.iter().map(|e| (e.field.as_str(), e.code)).collect();
    assert_eq!(fields, vec![("close_code", ErrorCode::DataPolicy), ("close_notes", ErrorCode::DataPolicy)]);
    let inc = get(store, table(tables::INCIDENT), &id).await;
    assert_eq!((inc["state"].as_str(), inc["sys_mod_count"].as_str()), ("1", "0"), "the incident is untouched");
    assert_eq!(list(store, audit.clone(), &[("documentkey", &id)]).await.total, audited);
    let row = staged(store, &i, &refused).await;
    assert_eq!(row["sys_import_state"], "error");
    assert!(row["sys_row_error"].contains("close_code"), "{}", row["sys_row_error"]);

    let resolve = json!({"u_short_description": "x", "u_correlation_id": "am:9", "u_state": "6",
        "u_close_code": "Solution provided", "u_close_notes": "rebooted"});
    let resolved = import(store, job(&i, resolve, &a, at(20))).await;
    assert_eq!(resolved.state, RowState::Updated, "{resolved:?}");
    let inc = incident(store, &resolved).await;
    assert_eq!((inc["state"].as_str(), inc["active"].as_str()), ("6", "true"));
    assert_eq!(inc["resolved_at"], at(20).to_string());

    let closed = import(
        store,
        job(&i, json!({"u_short_description": "x", "u_correlation_id": "am:9", "u_state": "7"}), &a, at(30)),
    )
    .await;
    assert_eq!(closed.state, RowState::Updated, "{closed:?}");
    assert_eq!(incident(store, &closed).await["active"], "false");

    // The closed incident no longer matches: the same correlation id opens a new one.
    let again =
        import(store, job(&i, json!({"u_short_description": "x", "u_correlation_id": "am:9"}), &a, at(40))).await;
    assert_eq!(again.state, RowState::Inserted, "{again:?}");
    assert_ne!(again.target_sys_id.as_deref(), Some(id.as_str()));
    assert_eq!(list(store, table(tables::INCIDENT), &[("correlation_id", "am:9")]).await.total, 2);

    // A refused insert does not use up a number.
    let refused = json!({"u_short_description": "y", "u_correlation_id": "am:10", "u_state": "7"});
    assert_eq!(import(store, job(&i, refused, &a, at(50))).await.state, RowState::Error);
    let next = import(store, job(&i, json!({"u_short_description": "z"}), &a, at(60))).await;
    assert_eq!(next.display_value.as_deref(), Some("INC0010003"), "{next:?}");
}

/// Preparing a staging table twice is harmless and keeps its rows.
pub async fn prepare_staging_is_idempotent<S: Store + ?Sized>(store: &S) {
    let i = ready(store).await;
    let first = import(store, job(&i, json!({"u_short_description": "a"}), &actor(), at(0))).await;
    store.prepare_staging(i.staging.clone()).await.expect("prepare again");
    store.prepare_staging(i.staging.clone()).await.expect("and again");
    let second = import(store, job(&i, json!({"u_short_description": "b"}), &actor(), at(1))).await;
    assert_eq!(second.display_value.as_deref(), Some("INC0010002"));
    assert_eq!(list(store, i.staging.clone(), &[]).await.total, 2);
    assert_eq!(staged(store, &i, &first).await["sys_import_state"], "inserted");
}

/// What a store wrote is there after it is closed and opened again; numbering continues.
pub async fn survives_reopen<S: Store, F: Fn() -> Fut, Fut: Future<Output = S>>(open: F) {
    let store = open().await;
    let i = ready(&store).await;
    let a = actor();
    let payload = json!({"u_short_description": "Disk full", "u_correlation_id": "am:7", "u_caller": "bot"});
    let first = import(&store, job(&i, payload, &a, at(0))).await;
    let second = import(&store, job(&i, json!({"u_short_description": "b"}), &a, at(1))).await;
    store.add_account(new_account("alice", &[Role::Admin], "$argon2id$alice")).await.expect("add alice");
    store.close().await;
    assert!(
        matches!(
            store.import(job(&i, json!({"u_short_description": "late"}), &a, at(2))).await,
            Err(StoreError::Closed)
        ),
        "a closed store refuses writes"
    );
    drop(store);

    let store = open().await;
    store.ping().await.expect("ping after reopen");
    let i = ready(&store).await;
    assert_eq!(incident(&store, &first).await["number"], "INC0010001");
    assert_eq!(incident(&store, &second).await["number"], "INC0010002");
    assert_eq!(staged(&store, &i, &second).await["sys_import_state"], "inserted");
    assert_eq!(list(&store, table(tables::INCIDENT), &[]).await.total, 2);
    assert!(list(&store, table(tables::SYS_AUDIT), &[]).await.total > 0);
    let alice = store.account("alice".into()).await.expect("account").expect("alice survives");
    assert_eq!(alice.roles, vec![Role::Admin]);

    let third = import(&store, job(&i, json!({"u_short_description": "c"}), &a, at(2))).await;
    assert_eq!(third.display_value.as_deref(), Some("INC0010003"));
    assert_eq!(third.import_set, "ISET0010001", "today's import set is still open");
    assert_eq!(staged(&store, &i, &third).await["sys_import_row"], "2");
    let coalesced = json!({"u_short_description": "Disk still full", "u_correlation_id": "AM:7"});
    let coalesced = import(&store, job(&i, coalesced, &a, at(3))).await;
    assert_eq!(coalesced.state, RowState::Updated);
    assert_eq!(coalesced.target_sys_id, first.target_sys_id);
    store.close().await;
}

/// Concurrent imports without a correlation id each get their own number, none skipped.
pub async fn concurrent_inserts_get_distinct_numbers<S: Store>(store: Arc<S>) {
    let i = ready(store.as_ref()).await;
    let a = actor();
    let tasks: Vec<_> = (0..100)
        .map(|n| {
            let store = store.clone();
            let job = job(&i, json!({"u_short_description": format!("alert {n}")}), &a, at(0));
            tokio::spawn(async move { store.import(job).await })
        })
        .collect();
    let mut numbers = BTreeSet::new();
    let mut targets = BTreeSet::new();
    for task in tasks {
        let outcome = task.await.expect("task").expect("import");
        assert_eq!(outcome.state, RowState::Inserted, "{outcome:?}");
        assert_eq!(outcome.import_set, "ISET0010001");
        numbers.insert(outcome.display_value.expect("number"));
        targets.insert(outcome.target_sys_id.expect("target"));
    }
    let expected: BTreeSet<String> = (10_001..=10_100).map(|n| format!("INC{n:07}")).collect();
    assert_eq!(numbers, expected);
    assert_eq!(targets.len(), 100);
    assert_eq!(list(store.as_ref(), table(tables::INCIDENT), &[]).await.total, 100);
    assert_eq!(list(store.as_ref(), table(tables::SYS_IMPORT_SET), &[]).await.total, 1);
    let rows: BTreeSet<_> = list(store.as_ref(), i.staging.clone(), &[])
        .await
        .records
        .into_iter()
        .map(|r| r["sys_import_row"].clone())
        .collect();
    assert_eq!(rows, (0..100).map(|n| n.to_string()).collect(), "row numbers within the set are unique");
}

/// Concurrent imports with one correlation id create exactly one incident; the rest update it.
pub async fn concurrent_coalesce_inserts_once<S: Store>(store: Arc<S>) {
    let i = ready(store.as_ref()).await;
    let a = actor();
    let tasks: Vec<_> = (0..50)
        .map(|n| {
            let store = store.clone();
            let payload = json!({"u_short_description": format!("flapping {n}"), "u_correlation_id": "am:storm"});
            let job = job(&i, payload, &a, at(0));
            tokio::spawn(async move { store.import(job).await })
        })
        .collect();
    let mut inserted = 0;
    let mut updated = 0;
    let mut targets = BTreeSet::new();
    for task in tasks {
        let outcome = task.await.expect("task").expect("import");
        match outcome.state {
            RowState::Inserted => inserted += 1,
            RowState::Updated => updated += 1,
            other => panic!("unexpected {other:?}: {outcome:?}"),
        }
        assert_eq!(outcome.display_value.as_deref(), Some("INC0010001"));
        targets.insert(outcome.target_sys_id.expect("target"));
    }
    assert_eq!((inserted, updated), (1, 49));
    assert_eq!(targets.len(), 1);
    let page = list(store.as_ref(), table(tables::INCIDENT), &[]).await;
    assert_eq!(page.total, 1);
    assert_eq!(page.records[0]["sys_mod_count"], "49");
}
