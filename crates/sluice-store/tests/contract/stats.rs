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

    // Per hour: minutes 130 and 179 share the hour starting at minute 120; 185 is in the next;
    // minute 101 (left above) is in the hour starting at 60.
    store
        .add_stats(vec![
            d(130, "alerts", "u_a", "received", 2, 7_800_000, 7_800_000),
            d(179, "alerts", "u_a", "received", 3, 10_740_000, 10_740_000),
            d(179, "alerts", "u_a", "error:required", 1, 10_740_000, 10_740_000),
            d(185, "alerts", "u_a", "received", 7, 11_100_000, 11_100_000),
        ])
        .await
        .expect("add");
    let of_a = || StatsFilter { integration: Some("u_a".into()), ..StatsFilter::default() };
    let summed = |f: StatsFilter| async move {
        let hours = store.stats_per_hour(f).await.expect("per hour");
        hours.iter().map(|h| (h.start_minute, h.total.metric.clone(), h.total.value)).collect::<Vec<_>>()
    };
    assert_eq!(
        summed(of_a()).await,
        vec![
            (60, "received".to_owned(), 1),
            (120, "error:required".to_owned(), 1),
            (120, "received".to_owned(), 5),
            (180, "received".to_owned(), 7),
        ]
    );
    assert_eq!(
        summed(StatsFilter { since_minute: 150, ..of_a() }).await,
        vec![(120, "error:required".to_owned(), 1), (120, "received".to_owned(), 3), (180, "received".to_owned(), 7),]
    );
    let desk = StatsFilter { account: Some("desk".into()), ..StatsFilter::default() };
    assert_eq!(summed(desk).await, vec![(60, "received".to_owned(), 4)]);
    let hours = store.stats_per_hour(of_a()).await.expect("per hour");
    let first = hours.iter().find(|h| h.start_minute == 120 && h.total.metric == "received").expect("hour 120");
    assert_eq!((first.total.first_seen, first.total.last_seen), (7_800_000, 10_740_000));
}
