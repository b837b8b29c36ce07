//! Saved console filters: per account, a name once per account (saving it again replaces it),
//! the limits refused with their reason, deleted one by one and with their account.

use sluice_core::account::Role;
use sluice_store::saved_filter::{MAX_NAME_CHARS, MAX_PER_ACCOUNT};
use sluice_store::{AccountAction, FilterRefusal, SaveFilter, SavedFilter, Store};

use crate::accounts::{change, create};

fn filter(id: &str, user_name: &str, name: &str, query: &str) -> SavedFilter {
    SavedFilter {
        id: id.into(),
        user_name: user_name.into(),
        name: name.into(),
        query: query.into(),
        sort: "-number".into(),
        saved_ms: 1_800_000_000_000,
    }
}

async fn names<S: Store + ?Sized>(store: &S, user_name: &str) -> Vec<(String, String)> {
    let found = store.saved_filters(user_name.into()).await.expect("list");
    found.into_iter().map(|f| (f.name, f.query)).collect()
}

pub async fn saved_filters_per_account_with_limits<S: Store + ?Sized>(store: &S) {
    let saved = |id: &str, replaced| SaveFilter::Saved { id: id.into(), replaced };
    assert_eq!(store.save_filter(filter("f1", "alice", "P1", "priority=1")).await.expect("save"), saved("f1", false));
    assert_eq!(
        store.save_filter(filter("f2", "alice", "Open", "active=true")).await.expect("save"),
        saved("f2", false)
    );
    assert_eq!(
        store.save_filter(filter("f3", "bob", "P1", "priority=1^active=true")).await.expect("save"),
        saved("f3", false)
    );
    // By name, and only the account's own.
    assert_eq!(
        names(store, "alice").await,
        [("Open".into(), "active=true".into()), ("P1".into(), "priority=1".into())]
    );
    assert_eq!(names(store, "bob").await, [("P1".into(), "priority=1^active=true".into())]);
    assert!(names(store, "carol").await.is_empty());

    // The same name again replaces the query and keeps the first id.
    assert_eq!(store.save_filter(filter("f9", "alice", "P1", "priority<=2")).await.expect("save"), saved("f1", true));
    let alice = store.saved_filters("alice".into()).await.expect("list");
    let p1 = alice.iter().find(|f| f.name == "P1").expect("P1");
    assert_eq!((p1.id.as_str(), p1.query.as_str(), p1.sort.as_str()), ("f1", "priority<=2", "-number"));

    // The limits, each with its reason; nothing stored.
    let long = "n".repeat(MAX_NAME_CHARS + 1);
    for (f, why) in [
        (filter("x1", "alice", &long, ""), FilterRefusal::NameTooLong),
        (filter("x2", "alice", " ", ""), FilterRefusal::NameEmpty),
        (filter("x3", "alice", "big", &"q".repeat(5000)), FilterRefusal::QueryTooLong),
    ] {
        assert_eq!(store.save_filter(f).await.expect("save"), SaveFilter::Refused(why));
    }
    for i in 2..MAX_PER_ACCOUNT {
        let outcome = store.save_filter(filter(&format!("m{i}"), "alice", &format!("more {i}"), "")).await;
        assert!(matches!(outcome.expect("save"), SaveFilter::Saved { replaced: false, .. }), "filter {i}");
    }
    assert_eq!(names(store, "alice").await.len() as u64, MAX_PER_ACCOUNT);
    assert_eq!(
        store.save_filter(filter("over", "alice", "one more", "")).await.expect("save"),
        SaveFilter::Refused(FilterRefusal::TooMany)
    );
    // Replacing one at the limit is still allowed; another account is not held back.
    assert_eq!(
        store.save_filter(filter("zz", "alice", "Open", "active=false")).await.expect("save"),
        saved("f2", true)
    );
    assert!(matches!(
        store.save_filter(filter("b2", "bob", "one more", "")).await.expect("save"),
        SaveFilter::Saved { .. }
    ));

    // Deleted one by one, only by its owner.
    assert!(!store.delete_saved_filter("bob".into(), "f1".into()).await.expect("delete"));
    assert!(store.delete_saved_filter("alice".into(), "f1".into()).await.expect("delete"));
    assert!(!store.delete_saved_filter("alice".into(), "f1".into()).await.expect("delete"));
    assert_eq!(names(store, "alice").await.len() as u64, MAX_PER_ACCOUNT - 1);
}

/// Deleting an account deletes its filters, and only its.
pub async fn deleting_an_account_deletes_its_filters<S: Store + ?Sized>(store: &S) {
    store.change_account(change("root", create(&[Role::Admin], "$argon2id$r", true), 0)).await.expect("root");
    store.change_account(change("agent", create(&[Role::Itil], "$argon2id$a", false), 1)).await.expect("agent");
    store.save_filter(filter("a1", "agent", "Mine", "assigned_to=agent")).await.expect("save");
    store.save_filter(filter("r1", "root", "All", "")).await.expect("save");
    store.change_account(change("agent", AccountAction::Delete, 2)).await.expect("delete").expect("found");
    assert!(names(store, "agent").await.is_empty(), "the deleted account's filters remain");
    assert_eq!(names(store, "root").await, [("All".into(), String::new())]);
}
