//! `sluice outbox`: the forwarding outbox read from the data folder (every node's rows), and
//! dead rows queued again (as `POST …/outbox/retry` does, recorded in the admin audit).

use anyhow::bail;
use clap::{Args, Subcommand};
use sluice_core::DateTime;
use sluice_store::AdminAuditEntry;
use sluice_store::outbox::{DeliveryFilter, DeliveryState};

use crate::data::{DataArgs, open_store};

#[derive(Subcommand)]
pub enum OutboxCommand {
    /// Rows by state (every integration, or one), then the rows (newest change first).
    List(ListArgs),
    /// Queue dead rows again from their first attempt: all of an integration's, or one record's.
    Retry(RetryArgs),
}

#[derive(Args)]
pub struct ListArgs {
    /// Only this integration's rows.
    #[arg(long)]
    integration: Option<String>,
    /// pending, delivered or dead.
    #[arg(long)]
    state: Option<String>,
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    limit: u32,
    #[command(flatten)]
    data: DataArgs,
}

#[derive(Args)]
pub struct RetryArgs {
    /// The integration whose dead rows to queue again.
    integration: String,
    /// Only this record's row (its sys_id).
    #[arg(long)]
    record: Option<String>,
    #[command(flatten)]
    data: DataArgs,
}

fn time(ms: i64) -> String {
    DateTime::from_unix_ms(ms).to_string()
}

pub async fn run(command: OutboxCommand) -> anyhow::Result<()> {
    match command {
        OutboxCommand::List(args) => list(args).await,
        OutboxCommand::Retry(args) => retry(args).await,
    }
}

async fn list(args: ListArgs) -> anyhow::Result<()> {
    let state = match args.state.as_deref() {
        None => None,
        Some(s) => match DeliveryState::parse(s) {
            Some(state) => Some(state),
            None => bail!("--state is pending, delivered or dead, not {s:?}"),
        },
    };
    let store = open_store(&args.data).await?;
    let counts = store.outbox_counts(args.integration.clone()).await;
    let filter = DeliveryFilter { integration: args.integration.clone(), state, limit: args.limit };
    let rows = store.deliveries(filter).await;
    store.close().await;
    let (counts, rows) = (counts?, rows?);
    let age = counts
        .oldest_pending_ms
        .map_or("-".to_owned(), |ms| format!("{}s", (sluice_server::forward::now_ms() - ms).max(0) / 1000));
    println!(
        "pending {}  delivered {}  dead {}  oldest pending {age}\n",
        counts.pending, counts.delivered, counts.dead
    );
    println!(
        "{:<20} {:<32} {:<9} {:>4} {:<19} {:<16} LAST ERROR",
        "INTEGRATION", "RECORD", "STATE", "TRY", "UPDATED", "UPSTREAM"
    );
    if rows.is_empty() {
        println!("(none)");
    }
    for d in rows {
        println!(
            "{:<20} {:<32} {:<9} {:>4} {:<19} {:<16} {}",
            d.integration,
            d.record_sys_id,
            d.state.as_str(),
            d.attempts,
            time(d.updated_ms),
            if d.upstream_number.is_empty() { "-" } else { &d.upstream_number },
            d.last_error
        );
    }
    Ok(())
}

async fn retry(args: RetryArgs) -> anyhow::Result<()> {
    let store = open_store(&args.data).await?;
    let queued =
        store.retry_deliveries(args.integration.clone(), args.record.clone(), sluice_server::forward::now_ms()).await;
    let queued = match queued {
        Ok(n) => n,
        Err(e) => {
            store.close().await;
            return Err(e.into());
        }
    };
    let entry = AdminAuditEntry {
        id: 0,
        created_on: DateTime::now(),
        actor: crate::accounts::cli_actor(),
        action: "integrations.outbox.retry".into(),
        target: args.integration.clone(),
        details: serde_json::json!({"record_sys_id": args.record, "queued": queued}),
    };
    let recorded = store.record_admin_audit(entry).await;
    store.close().await;
    recorded?;
    println!("{queued} dead row(s) of {} queued again; a running node delivers them", args.integration);
    Ok(())
}
