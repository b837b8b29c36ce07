//! `sluice integrations check` and `sluice integrations plan`: definitions read offline.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::bail;
use clap::{Args, Subcommand};
use sluice_core::integration::DefinitionProblem;
use sluice_core::tables::Catalog;
use sluice_server::defaults;

#[derive(Subcommand)]
pub enum IntegrationsCommand {
    /// Check every definition in a folder and report each problem with file and key.
    Check { dir: PathBuf },
    /// Print an integration's plan (Markdown), as GET /api/sluice/v1/integrations/NAME/plan serves it.
    Plan(PlanArgs),
}

/// The integration and the `serve` settings its plan describes (same flags and variables).
#[derive(Args)]
pub struct PlanArgs {
    /// The integration's name.
    name: String,
    /// Folder of integration definitions (*.toml); the built-in u_incident_import when unset.
    #[arg(long, env = "SLUICE_INTEGRATIONS")]
    integrations: Option<PathBuf>,
    #[arg(long, env = "SLUICE_LISTEN", default_value = defaults::LISTEN)]
    listen: String,
    #[arg(long, env = "SLUICE_PUBLIC_URL")]
    public_url: Option<String>,
    #[arg(long, env = "SLUICE_MAX_BODY_BYTES", default_value_t = defaults::MAX_BODY_BYTES)]
    max_body_bytes: usize,
    #[arg(long, env = "SLUICE_REQUEST_TIMEOUT", default_value_t = defaults::REQUEST_TIMEOUT_SECS)]
    request_timeout: u64,
    /// Served with --tls-cert (the file is not read: only HTTPS yes or no matters here).
    #[arg(long, env = "SLUICE_TLS_CERT", value_name = "FILE")]
    tls_cert: Option<PathBuf>,
}

pub fn run(command: IntegrationsCommand) -> anyhow::Result<()> {
    match command {
        IntegrationsCommand::Check { dir } => check(&dir),
        IntegrationsCommand::Plan(args) => print_plan(&args),
    }
}

/// Each problem on standard error; the error says how many.
pub fn report(problems: &[DefinitionProblem]) -> anyhow::Error {
    for p in problems {
        eprintln!("{p}");
    }
    anyhow::anyhow!("{} problem(s) in the integration definitions", problems.len())
}

/// The integrations of `dir`, or the built-in one; problems reported ([`report`]).
pub fn load(dir: Option<&Path>, catalog: &Catalog) -> anyhow::Result<Vec<sluice_core::integration::Integration>> {
    sluice_server::active_integrations(dir, catalog).map_err(|p| report(&p))
}

fn check(dir: &Path) -> anyhow::Result<()> {
    let loaded = sluice_server::load_integrations(dir, &Catalog::builtin()).map_err(|p| report(&p))?;
    for i in &loaded {
        println!("ok  {} (version {}, staging table {})", i.origin, i.definition.version, i.definition.staging_table);
    }
    Ok(())
}

fn print_plan(args: &PlanArgs) -> anyhow::Result<()> {
    let integrations = load(args.integrations.as_deref(), &Catalog::builtin())?;
    let Some(integration) = integrations.iter().find(|i| i.name() == args.name) else {
        let names: Vec<&str> = integrations.iter().map(|i| i.name()).collect();
        bail!("no integration named {} (there are: {})", args.name, names.join(", "));
    };
    let settings = sluice_server::integration_plan::Settings::new(
        args.public_url.as_deref(),
        &args.listen,
        args.tls_cert.is_some(),
        args.max_body_bytes,
        Duration::from_secs(args.request_timeout.max(1)),
    );
    print!(
        "{}",
        sluice_server::integration_plan::markdown(&sluice_server::integration_plan::document(integration, &settings))
    );
    Ok(())
}
