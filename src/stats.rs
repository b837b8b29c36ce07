//! `sluice stats`: request statistics per account and per integration over a time window, as a
//! table, read from the data folder (what every node has flushed; a running node flushes every
//! second).

use anyhow::bail;
use clap::Args;
use sluice_core::stats::Summary;
use sluice_server::stats::{Window, summarise};
use sluice_store::StatsFilter;

use crate::data::{DataArgs, open_store};

#[derive(Args)]
pub struct StatsArgs {
    /// 1h, 24h, 7d or all.
    #[arg(long, default_value = "24h")]
    window: String,
    #[command(flatten)]
    data: DataArgs,
}

pub async fn run(args: StatsArgs) -> anyhow::Result<()> {
    let Some(window) = Window::parse(&args.window) else {
        bail!("--window is 1h, 24h, 7d or all, not {:?}", args.window);
    };
    let store = open_store(&args.data).await?;
    let filter = StatsFilter { since_minute: window.since_minute_now(), ..StatsFilter::default() };
    let totals = store.stats(filter).await;
    store.close().await;
    let totals = totals?;
    println!("Requests in the last {} (window {})\n", window_text(window), window.as_str());
    print_table("ACCOUNT", &summarise(&totals, |t| &t.account));
    println!();
    print_table("INTEGRATION", &summarise(totals.iter().filter(|t| !t.integration.is_empty()), |t| &t.integration));
    Ok(())
}

fn window_text(window: Window) -> &'static str {
    match window {
        Window::Hour => "hour",
        Window::Day => "24 hours",
        Window::Week => "7 days",
        Window::All => "whole history",
    }
}

fn ms(v: Option<u64>, any: bool) -> String {
    match v {
        Some(v) => format!("≤{v}"),
        None if any => ">30000".into(),
        None => "-".into(),
    }
}

fn print_table(title: &str, rows: &std::collections::BTreeMap<String, Summary>) {
    println!(
        "{title:<28} {:>9} {:>9} {:>8} {:>8} {:>8} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7}  LAST SEEN",
        "RECEIVED",
        "INSERTED",
        "UPDATED",
        "IGNORED",
        "SKIPPED",
        "ERROR",
        "UNAUTH",
        "FORBID",
        "THROTL",
        "P50ms",
        "P90ms",
        "P99ms"
    );
    if rows.is_empty() {
        println!("(none)");
    }
    for (name, s) in rows {
        let p = s.percentiles();
        let any = s.received > 0;
        let last =
            s.last_seen.map(|ms| sluice_core::DateTime::from_unix_ms(ms).to_string()).unwrap_or_else(|| "-".into());
        println!(
            "{name:<28} {:>9} {:>9} {:>8} {:>8} {:>8} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7}  {last}",
            s.received,
            s.inserted,
            s.updated,
            s.ignored,
            s.skipped,
            s.error,
            s.unauthorized,
            s.forbidden,
            s.throttled,
            ms(p.p50, any),
            ms(p.p90, any),
            ms(p.p99, any),
        );
        if !s.errors_by_code.is_empty() {
            let codes: Vec<String> = s.errors_by_code.iter().map(|(c, n)| format!("{c}={n}")).collect();
            println!("{:<28} errors: {}", "", codes.join(" "));
        }
    }
}
