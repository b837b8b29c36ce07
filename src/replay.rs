//! `sluice replay`: works on the data folder directly (with or without a running server: the
//! database serialises the writers), printing progress on standard error and a summary on
//! standard output. The work is `sluice_server::offline::replay`.

use std::path::PathBuf;

use anyhow::bail;
use clap::Args;
use sluice_core::tables::Catalog;
use sluice_server::pipeline::replay::ReplayRequest;

use crate::data::{DataArgs, open_store};

#[derive(Args)]
pub struct ReplayArgs {
    /// The integration (its name or its staging table).
    #[arg(long)]
    integration: String,
    /// Which rows: error, skipped, ignored, inserted or updated.
    #[arg(long, default_value = "error")]
    state: String,
    /// Only rows staged at or after this time (yyyy-MM-dd HH:mm:ss, UTC).
    #[arg(long)]
    since: Option<String>,
    #[command(flatten)]
    data: DataArgs,
    /// Folder of integration definitions (*.toml); the built-in u_incident_import when unset.
    #[arg(long, env = "SLUICE_INTEGRATIONS")]
    integrations: Option<PathBuf>,
}

pub async fn run(args: ReplayArgs) -> anyhow::Result<()> {
    let integrations = crate::integrations::load(args.integrations.as_deref(), &Catalog::builtin())?;
    let Some(integration) = integrations
        .into_iter()
        .find(|i| i.name() == args.integration || i.definition.staging_table == args.integration)
    else {
        bail!("no integration named {}", args.integration);
    };
    let who = std::env::var("USER").map(|u| format!("sluice replay (user {u})")).unwrap_or("sluice replay".into());
    let request = ReplayRequest::parse(Some(&args.state), args.since.as_deref(), who)?;
    let store = open_store(&args.data).await?;
    let interactive = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let bar = crate::progress::items(0, "replaying");
    let result = sluice_server::offline::replay(store.as_ref(), &integration, &request, |s| {
        let o = &s.outcomes;
        let counts = format!(
            "{} inserted, {} updated, {} ignored, {} skipped, {} error",
            o.inserted, o.updated, o.ignored, o.skipped, o.error
        );
        if interactive {
            bar.set_length(s.matched);
            bar.set_position(s.replayed);
            bar.set_message(counts);
        } else {
            // Logs and pipes get a line per batch instead of a bar.
            eprintln!("replayed {}/{} {} rows: {counts}", s.replayed, s.matched, request.state.as_str());
        }
    })
    .await;
    bar.finish_and_clear();
    store.close().await;
    let summary = result?;
    let o = &summary.outcomes;
    println!(
        "{}: replayed {} of {} {} rows with version {}",
        integration.name(),
        summary.replayed,
        summary.matched,
        request.state.as_str(),
        integration.definition.version
    );
    println!("{}", outcomes_line(o));
    if summary.not_replayed > 0 {
        println!("{} row(s) changed meanwhile or failed and were left as they were", summary.not_replayed);
    }
    Ok(())
}

/// The summary line of rows' outcomes (`replay`, `load`).
pub fn outcomes_line(o: &sluice_store::StateCounts) -> String {
    format!(
        "inserted {}  updated {}  ignored {}  skipped {}  error {}",
        o.inserted, o.updated, o.ignored, o.skipped, o.error
    )
}
