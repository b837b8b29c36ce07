//! Request statistics: additive counters from several nodes, sums over windows, retention.

use sluice_store::{StatsDelta, StatsFilter, StatsTotal, Store};

/// Retention: staged rows older than the cut-off are purged unless pending; import sets are
/// purged once empty; incidents stay.
/// Statistics counters: the same key added twice (two nodes, or two flushes) adds up and
/// widens first/last seen; reads sum minutes at or after the window start, per account,
/// integration and name, filtered by account or integration.
pub async fn stats_add_up_per_key_and_sum_over_windows<S: Store + ?Sized>(store: &S) {
    let d =
        |minute: i64, account: &str, integration: &str, metric: &str, value: i64, first: i64, last: i64| StatsDelta {
            minute,
            account: account.into(),
            integration: integration.into(),
            metric: metric.into(),
            value,
            first_seen: first,
            last_seen: last,
        };
    store.add_stats(vec![]).await.expect("nothing to add");
    store
        .add_stats(vec![
            d(100, "alerts", "u_a", "received", 2, 6_000_100, 6_000_900),
            d(100, "alerts", "u_a", "error:required", 1, 6_000_200, 6_000_200),
            d(101, "alerts", "u_a", "received", 1, 6_060_000, 6_060_000),
            d(101, "desk", "", "received", 4, 6_060_500, 6_061_000),
        ])
        .await
        .expect("add");
    // Another node flushing the same minute and key.
    store.add_stats(vec![d(100, "alerts", "u_a", "received", 3, 6_000_050, 6_000_500)]).await.expect("add");

    let total = |t: &[StatsTotal], account: &str, metric: &str| {
        t.iter().find(|x| x.account == account && x.metric == metric).map(|x| (x.value, x.first_seen, x.last_seen))
    };
    let all = store.stats(StatsFilter::default()).await.expect("stats");
    assert_eq!(all.len(), 3);
    assert_eq!(total(&all, "alerts", "received"), Some((6, 6_000_050, 6_060_000)));
    assert_eq!(total(&all, "alerts", "error:required"), Some((1, 6_000_200, 6_000_200)));
    assert_eq!(total(&all, "desk", "received"), Some((4, 6_060_500, 6_061_000)));

    let recent = store.stats(StatsFilter { since_minute: 101, ..StatsFilter::default() }).await.expect("stats");
    assert_eq!(total(&recent, "alerts", "received"), Some((1, 6_060_000, 6_060_000)));
    assert_eq!(total(&recent, "alerts", "error:required"), None);

    let of_a = StatsFilter { integration: Some("u_a".into()), ..StatsFilter::default() };
    let of_a = store.stats(of_a).await.expect("stats");
    assert!(of_a.iter().all(|t| t.integration == "u_a" && t.account == "alerts"), "{of_a:?}");
    let desk = StatsFilter { account: Some("desk".into()), ..StatsFilter::default() };
    assert_eq!(store.stats(desk).await.expect("stats").len(), 1);
    let nobody = StatsFilter { account: Some("nobody".into()), ..StatsFilter::default() };
    assert!(store.stats(nobody).await.expect("stats").is_empty());

    // Retention: minutes before the cut go, the rest stays.
    assert_eq!(store.purge_stats(101).await.expect("purge"), 2);
    let left = store.stats(StatsFilter::default()).await.expect("stats");
    assert_eq!(total(&left, "alerts", "received"), Some((1, 6_060_000, 6_060_000)));
    assert_eq!(total(&left, "desk", "received"), Some((4, 6_060_500, 6_061_000)));
    assert_eq!(store.purge_stats(101).await.expect("purge"), 0);
}
