//! Console sessions: created, found only while alive, renewed by use up to the absolute expiry,
//! deleted one by one, per account, and purged once expired.

use sluice_store::{Session, Store};

const MINUTE: i64 = 60_000;

fn session(digest: &str, user_name: &str, now: i64) -> Session {
    Session {
        digest: digest.into(),
        user_name: user_name.into(),
        csrf: format!("csrf-{digest}"),
        created_ms: now,
        idle_expires_ms: now + 30 * MINUTE,
        absolute_expires_ms: now + 60 * MINUTE,
    }
}

pub async fn sessions_expire_renew_and_delete<S: Store + ?Sized>(store: &S) {
    let t0 = 1_800_000_000_000_i64;
    let idle = 30 * MINUTE;
    store.create_session(session("aa", "alice", t0)).await.expect("create");
    store.create_session(session("bb", "alice", t0)).await.expect("create");
    store.create_session(session("cc", "bob", t0)).await.expect("create");
    // A digest is a key: the same one twice is refused.
    assert!(store.create_session(session("aa", "mallory", t0)).await.is_err());

    assert_eq!(store.touch_session("zz".into(), t0, idle).await.expect("touch"), None);
    // Read without renewing: as created, and not at all once idle past its expiry.
    let read = store.live_session("aa".into(), t0 + MINUTE).await.expect("read").expect("alive");
    assert_eq!(read, session("aa", "alice", t0));
    assert_eq!(store.live_session("aa".into(), t0 + 30 * MINUTE).await.expect("read"), None);
    assert_eq!(store.live_session("zz".into(), t0).await.expect("read"), None);
    let found = store.touch_session("aa".into(), t0 + 10 * MINUTE, idle).await.expect("touch").expect("alive");
    assert_eq!((found.user_name.as_str(), found.csrf.as_str()), ("alice", "csrf-aa"));
    // Used at minute 10: alive until minute 40, not the 30 it was created with.
    assert_eq!(found.idle_expires_ms, t0 + 40 * MINUTE);
    assert_eq!(store.live_session("aa".into(), t0 + 35 * MINUTE).await.expect("read"), Some(found.clone()));
    assert!(store.touch_session("aa".into(), t0 + 35 * MINUTE, idle).await.expect("touch").is_some());
    // Renewal stops at the absolute expiry (minute 60).
    let late = store.touch_session("aa".into(), t0 + 50 * MINUTE, idle).await.expect("touch").expect("alive");
    assert_eq!(late.idle_expires_ms, t0 + 60 * MINUTE);
    assert_eq!(store.touch_session("aa".into(), t0 + 60 * MINUTE, idle).await.expect("touch"), None);
    // Idle for more than 30 minutes: not found (the row stays until logout or purge).
    assert_eq!(store.touch_session("bb".into(), t0 + 31 * MINUTE, idle).await.expect("touch"), None);

    // Logout deletes the one row.
    assert!(store.delete_session("bb".into()).await.expect("delete"));
    assert!(!store.delete_session("bb".into()).await.expect("delete"));
    assert_eq!(store.touch_session("bb".into(), t0, idle).await.expect("touch"), None);

    // Every session of an account (its user name in any case).
    store.create_session(session("dd", "bob", t0)).await.expect("create");
    assert_eq!(store.delete_sessions_of("BOB".into()).await.expect("delete"), 2);
    assert_eq!(store.touch_session("cc".into(), t0 + MINUTE, idle).await.expect("touch"), None);

    // Purge: expired rows go, live ones stay.
    store.create_session(session("ee", "carol", t0 + 100 * MINUTE)).await.expect("create");
    assert_eq!(store.purge_sessions(t0 + 100 * MINUTE).await.expect("purge"), 1, "only alice's expired one");
    assert!(store.touch_session("ee".into(), t0 + 101 * MINUTE, idle).await.expect("touch").is_some());
    assert_eq!(store.purge_sessions(t0 + 100 * MINUTE).await.expect("purge"), 0);
}
