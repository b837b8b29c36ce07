//! `sluice`: the command line. `serve` runs the gateway (`serve.rs`, the application itself is
//! `sluice_server::Application`); `account` manages the accounts that call it (`accounts.rs`);
//! `integrations check` and `plan` read definitions offline (`integrations.rs`); `replay` runs
//! stored rows again (`replay.rs`) and `load` runs a file's records through the pipeline
//! (`load.rs`); `stats` prints statistics (`stats.rs`); `export`, `import` and `backup` move and
//! copy the data (`transfer.rs`); `bench` drives a running server (`bench.rs`); `check-config`,
//! `health`, `version`, `completions` and `man` serve operators and packagers
//! (`check_config.rs`, `health.rs`, `docs_out.rs`). `--config FILE` of every command:
//! `config.rs`; `--data`/`--database`: `data.rs`.

mod accounts;
mod bench;
mod check_config;
mod config;
mod data;
mod docs_out;
mod health;
mod integrations;
mod load;
mod log_sink;
mod outbox;
mod progress;
mod replay;
mod serve;
mod stats;
mod transfer;

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

// Every request allocates many small strings on several threads; glibc's allocator showed up as
// about a tenth of the request threads' time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

unsafe extern "C" {
    /// mimalloc's own: returns the calling thread's freed memory to the system.
    fn mi_collect(force: bool);
}

fn release_allocator_memory() {
    // SAFETY: a plain call into the allocator this binary links; it takes no pointers.
    unsafe { mi_collect(true) }
}

/// The version and the commit it was built from (build.rs).
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("SLUICE_BUILD_COMMIT"), ")");

#[derive(Parser)]
#[command(name = "sluice", version = VERSION, about = "Incident intake gateway speaking ServiceNow's Import Set and Table APIs")]
struct Cli {
    /// A TOML file of settings, one key per flag (`listen = "0.0.0.0:8080"`); a flag or its
    /// SLUICE_* variable overrides the file (docs/configuration.md).
    #[arg(long, global = true, env = config::ENV, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API.
    Serve(Box<serve::ServeArgs>),
    /// Manage the accounts that call sluice.
    #[command(subcommand)]
    Account(accounts::AccountCommand),
    /// Work with integration definitions.
    #[command(subcommand)]
    Integrations(integrations::IntegrationsCommand),
    /// Drive a running sluice with concurrent creates and print throughput and latency.
    Bench(bench::BenchArgs),
    /// Run an integration's current definition again on its stored staging rows.
    Replay(replay::ReplayArgs),
    /// Load records from a JSON lines or CSV file through an integration's Import Set pipeline.
    Load(load::LoadArgs),
    /// Create or bring the database schema up to date, then exit (`serve` does it too).
    Migrate {
        #[command(flatten)]
        data: data::DataArgs,
    },
    /// Print request statistics per account and integration.
    Stats(stats::StatsArgs),
    /// Read the forwarding outbox and queue dead deliveries again.
    #[command(subcommand)]
    Outbox(outbox::OutboxCommand),
    /// Write every table of a SQLite data folder to a portable dump (JSON lines).
    Export(transfer::ExportArgs),
    /// Load a dump into a new PostgreSQL (--database) or SQLite (--data) database.
    Import(transfer::ImportArgs),
    /// Copy a SQLite database to a new file while the server runs.
    Backup(transfer::BackupArgs),
    /// Check what `serve` would run with (configuration file, SLUICE_* variables, defaults) and
    /// print each setting with its source.
    CheckConfig,
    /// Ask a running sluice's /healthz; exit 0 only when it answers 200 (container health checks).
    Health(health::HealthArgs),
    /// Print the version and the commit this binary was built from.
    Version,
    /// Print shell completions (bash, zsh, fish, elvish, powershell) to standard output.
    Completions(docs_out::CompletionsArgs),
    /// Write the man pages (sluice.1 to standard output, or every page into a folder).
    Man(docs_out::ManArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn main() -> anyhow::Result<()> {
    sluice_server::authenticate::set_release_memory(release_allocator_memory);
    // A panic's message comes after the log lines that led to it.
    let report_panic = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        log_sink::flush();
        report_panic(info);
    }));
    let args: Vec<OsString> = std::env::args_os().collect();
    let command = Cli::command();
    let file = match config::find(&args) {
        Some(path) => config::read(&path, &command)?,
        None => config::ConfigFile::default(),
    };
    let command = config::apply(command, &file);
    let cli = Cli::from_arg_matches(&command.clone().get_matches_from(args)).unwrap_or_else(|e| e.exit());
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let result = run(cli, &runtime, &command, &file);
    log_sink::flush();
    result
}

fn run(
    cli: Cli,
    runtime: &tokio::runtime::Runtime,
    command: &clap::Command,
    file: &config::ConfigFile,
) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => runtime.block_on(serve::run(*args)),
        Command::Account(cmd) => {
            init_logs(LogFormat::Text);
            runtime.block_on(accounts::run(cmd))
        }
        Command::Integrations(cmd) => integrations::run(cmd),
        Command::Bench(args) => runtime.block_on(bench::run(args)),
        Command::Replay(args) => {
            init_logs(LogFormat::Text);
            runtime.block_on(replay::run(args))
        }
        Command::Load(args) => {
            init_logs(LogFormat::Text);
            runtime.block_on(load::run(args))
        }
        Command::Migrate { data } => {
            init_logs(LogFormat::Text);
            runtime.block_on(async {
                let store = data::open_store(&data).await?;
                store.close().await;
                println!("schema up to date ({})", data.describe());
                anyhow::Ok(())
            })
        }
        Command::Stats(args) => runtime.block_on(stats::run(args)),
        Command::Outbox(command) => runtime.block_on(outbox::run(command)),
        Command::Export(args) => transfer::export(args),
        Command::Import(args) => {
            init_logs(LogFormat::Text);
            runtime.block_on(transfer::import(args))
        }
        Command::Backup(args) => transfer::backup(args),
        Command::CheckConfig => check_config::run(command, file),
        Command::Health(args) => health::run(args),
        Command::Completions(args) => docs_out::completions(args),
        Command::Man(args) => docs_out::man(args),
        Command::Version => {
            println!("sluice {VERSION}");
            Ok(())
        }
    }
}

/// Log lines to standard error in blocks (`log_sink.rs`), filtered by `SLUICE_LOG` (default
/// `info`).
fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SLUICE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(log_sink::LogSink::start());
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}
