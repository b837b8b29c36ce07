//! `sluice export`, `sluice import` and `sluice backup`: moving a SQLite deployment to
//! PostgreSQL (or to another SQLite folder) through a portable dump, and copying a live SQLite
//! database. The work is `sluice_transfer`'s; this is the command line. Row counts go to
//! stderr, so that the dump can go to stdout.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use sluice_transfer as transfer;

use crate::data::DataArgs;

#[derive(Args)]
pub struct ExportArgs {
    /// Folder holding the SQLite database (a running server's folder is fine: one snapshot).
    #[arg(long, env = "SLUICE_DATA", default_value = "./sluice-data")]
    data: PathBuf,
    /// Write the dump to this new file instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
}

#[derive(Args)]
pub struct ImportArgs {
    /// The dump written by `sluice export` (`-` or nothing: stdin).
    #[arg(value_name = "FILE")]
    file: Option<PathBuf>,
    /// The target: PostgreSQL with --database, else SQLite in --data. It must hold no rows yet.
    #[command(flatten)]
    data: DataArgs,
}

#[derive(Args)]
pub struct BackupArgs {
    /// Folder holding the SQLite database (the server may be running).
    #[arg(long, env = "SLUICE_DATA", default_value = "./sluice-data")]
    data: PathBuf,
    /// The copy: a new file, a complete SQLite database (restore: it becomes DATA/sluice.db).
    #[arg(value_name = "FILE")]
    file: PathBuf,
}

fn report(table: &str, rows: u64) {
    eprintln!("{table}: {rows}");
}

pub fn export(args: ExportArgs) -> anyhow::Result<()> {
    let bar = crate::progress::spinner("exporting");
    let report = |table: &str, rows: u64| bar.suspend(|| report(table, rows));
    let summary = match &args.output {
        None => transfer::export(&args.data, std::io::stdout().lock(), report)?,
        Some(path) => {
            let file = std::fs::File::create_new(path).with_context(|| format!("cannot create {}", path.display()))?;
            let written = transfer::export(&args.data, &file, report).and_then(|s| Ok((s, file.sync_all()?)));
            match written {
                Ok((summary, ())) => summary,
                Err(e) => {
                    // No half dump left behind to be imported by mistake.
                    let _ = std::fs::remove_file(path);
                    return Err(e.into());
                }
            }
        }
    };
    bar.finish_and_clear();
    eprintln!("exported {} rows of {} tables from {}", summary.rows, summary.tables, args.data.display());
    Ok(())
}

pub async fn import(args: ImportArgs) -> anyhow::Result<()> {
    let (input, bar): (Box<dyn BufRead>, _) = match &args.file {
        Some(path) if path.as_os_str() != "-" => {
            let file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
            let bar = crate::progress::bytes(file.metadata()?.len(), "importing");
            (Box::new(BufReader::with_capacity(1 << 16, bar.wrap_read(file))), bar)
        }
        _ => {
            let bar = crate::progress::spinner("importing");
            (Box::new(BufReader::with_capacity(1 << 16, bar.wrap_read(std::io::stdin().lock()))), bar)
        }
    };
    let report = |table: &str, rows: u64| bar.suspend(|| report(table, rows));
    let summary = match &args.data.database {
        Some(url) => {
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                bail!("--database (SLUICE_DATABASE_URL) must be a postgres:// URL");
            }
            transfer::load_postgres(url, input, report).await?
        }
        None => transfer::load_sqlite(&args.data.data, input, report).await?,
    };
    bar.finish_and_clear();
    eprintln!("imported {} rows of {} tables into {}", summary.rows, summary.tables, args.data.describe());
    Ok(())
}

pub fn backup(args: BackupArgs) -> anyhow::Result<()> {
    let bytes = transfer::backup(&args.data, &args.file)?;
    eprintln!("backed up {} to {} ({bytes} bytes)", args.data.display(), args.file.display());
    Ok(())
}
