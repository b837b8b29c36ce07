//! `sluice check-config`: what `sluice serve` would run with (the configuration file, the
//! `SLUICE_*` variables, the defaults), each setting with its source, checked as `serve` checks
//! it (TLS files, trusted proxies, the database URL, the integration definitions) without
//! opening the database or the port.

use anyhow::Context;
use clap::{Command, CommandFactory, FromArgMatches};
use sluice_core::tables::Catalog;

use crate::config::{self, ConfigFile};
use crate::serve::ServeArgs;

pub fn run(cli: &Command, file: &ConfigFile) -> anyhow::Result<()> {
    let mut report = String::new();
    let result = check(cli, file, &mut report);
    crate::docs_out::print(report.as_bytes())?;
    result
}

/// The settings into `out`, a line each, then the verdict.
fn check(cli: &Command, file: &ConfigFile, out: &mut String) -> anyhow::Result<()> {
    use std::fmt::Write;
    match &file.path {
        Some(path) => writeln!(out, "# configuration file {}", path.display())?,
        None => writeln!(out, "# no configuration file (--config or {})", config::ENV)?,
    }
    let matches = cli.clone().try_get_matches_from(["sluice", "serve"]).context("the settings do not parse")?;
    let (_, serve) = matches.subcommand().context("serve")?;
    // In the order of `serve --help` (the file's defaults moved their flags to the end of `cli`).
    let listed = crate::Cli::command();
    let serve_cmd = listed.find_subcommand("serve").context("serve")?;
    for arg in serve_cmd.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        if arg.is_hide_set() || long == "config" || long == "help" {
            continue;
        }
        let id = arg.get_id().as_str();
        match serve.get_raw(id) {
            None => writeln!(out, "{long} (unset)")?,
            Some(values) => {
                let value = if arg.is_hide_env_values_set() {
                    "(set, not shown)".to_owned()
                } else {
                    values.map(|v| v.to_string_lossy().into_owned()).collect::<Vec<_>>().join(",")
                };
                writeln!(out, "{long} = {value}  ({})", config::source(serve, id, long, file))?;
            }
        }
    }
    let args = ServeArgs::from_arg_matches(serve)?;
    let integrations = args.integrations_dir().map(ToOwned::to_owned);
    for path in args.tls_files() {
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    }
    args.settings()?;
    let loaded = crate::integrations::load(integrations.as_deref(), &Catalog::builtin())?;
    let names: Vec<&str> = loaded.iter().map(|i| i.name()).collect();
    writeln!(out, "# integrations: {}", names.join(", "))?;
    writeln!(out, "configuration ok")?;
    Ok(())
}
