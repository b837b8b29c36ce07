//! `sluice load FILE`: bulk load from a JSON lines or CSV file through the Import Set pipeline
//! (`sluice_server::offline::Loader`): every record staged as received, checked against the
//! integration's contract, transformed, committed with history, in one multi import set. The
//! file is read twice: once to refuse a file that does not parse (nothing loaded), once to load.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use serde_json::{Map, Value};
use sluice_core::staging::RowState;
use sluice_core::tables::Catalog;
use sluice_store::StateCounts;

use crate::data::{DataArgs, open_store};

/// Records per transaction.
const BATCH: usize = 500;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// One JSON object per line.
    Jsonl,
    /// A header line of column names (or labels), then one record per line.
    Csv,
}

#[derive(Args)]
pub struct LoadArgs {
    /// The file: *.jsonl / *.ndjson (one JSON object per line) or *.csv (a header line).
    file: PathBuf,
    /// The integration (its name or its staging table).
    #[arg(long, default_value = "u_incident_import")]
    integration: String,
    /// The account the rows are staged as (history and statistics name it).
    #[arg(long = "as", value_name = "ACCOUNT", default_value = "admin")]
    account: String,
    /// The file's format, when its extension does not say.
    #[arg(long, value_enum)]
    format: Option<Format>,
    #[command(flatten)]
    data: DataArgs,
    /// Folder of integration definitions (*.toml); the built-in ones when unset.
    #[arg(long, env = "SLUICE_INTEGRATIONS")]
    integrations: Option<PathBuf>,
}

fn format_of(path: &Path, given: Option<Format>) -> anyhow::Result<Format> {
    if let Some(f) = given {
        return Ok(f);
    }
    match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("jsonl" | "ndjson") => Ok(Format::Jsonl),
        Some("csv") => Ok(Format::Csv),
        _ => bail!("{}: say --format jsonl or --format csv", path.display()),
    }
}

/// The records of a file, each with the bytes read so far; a record that does not parse ends it
/// with an error naming its line.
enum Records {
    Jsonl { path: PathBuf, reader: BufReader<File>, line: String, number: u64, read: u64 },
    Csv { path: PathBuf, headers: csv::StringRecord, rows: csv::StringRecordsIntoIter<BufReader<File>> },
}

impl Records {
    fn open(path: &Path, format: Format) -> anyhow::Result<Self> {
        let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let reader = BufReader::with_capacity(1 << 16, file);
        let path = path.to_owned();
        Ok(match format {
            Format::Jsonl => Self::Jsonl { path, reader, line: String::new(), number: 0, read: 0 },
            Format::Csv => {
                let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(reader);
                let headers = reader.headers().with_context(|| format!("{}: the header line", path.display()))?.clone();
                Self::Csv { path, headers, rows: reader.into_records() }
            }
        })
    }
}

impl Iterator for Records {
    type Item = anyhow::Result<(Map<String, Value>, u64)>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Self::Jsonl { path, reader, line, number, read } => loop {
                line.clear();
                let n = match reader.read_line(line) {
                    Ok(n) => n,
                    Err(e) => return Some(Err(anyhow::anyhow!("{}: line {}: {e}", path.display(), *number + 1))),
                };
                if n == 0 {
                    return None;
                }
                *number += 1;
                *read += n as u64;
                if line.trim().is_empty() {
                    continue;
                }
                return Some(match serde_json::from_str::<Value>(line) {
                    Ok(Value::Object(m)) => Ok((m, *read)),
                    Ok(_) => Err(anyhow::anyhow!("{}: line {number}: not a JSON object", path.display())),
                    Err(e) => Err(anyhow::anyhow!("{}: line {number}: {e}", path.display())),
                });
            },
            Self::Csv { path, headers, rows } => {
                let row = match rows.next()? {
                    Ok(row) => row,
                    Err(e) => return Some(Err(anyhow::anyhow!("{}: {e}", path.display()))),
                };
                let read = row.position().map_or(0, |p| p.byte());
                let record = headers
                    .iter()
                    .zip(row.iter())
                    .filter(|(_, v)| !v.is_empty())
                    .map(|(h, v)| (h.to_owned(), Value::String(v.to_owned())))
                    .collect();
                Some(Ok((record, read)))
            }
        }
    }
}

pub async fn run(args: LoadArgs) -> anyhow::Result<()> {
    let format = format_of(&args.file, args.format)?;
    let integrations = crate::integrations::load(args.integrations.as_deref(), &Catalog::builtin())?;
    let Some(integration) =
        integrations.iter().find(|i| i.name() == args.integration || i.definition.staging_table == args.integration)
    else {
        bail!("no integration named {}", args.integration);
    };
    let mut total = 0u64;
    for record in Records::open(&args.file, format)? {
        record?;
        total += 1;
    }
    let size = std::fs::metadata(&args.file)?.len();
    let store = open_store(&args.data).await?;
    let result = load(store.as_ref(), integration, &args, format, size).await;
    store.close().await;
    let (counts, multi, errors) = result?;
    println!(
        "loaded {total} records from {} into {} (multi import set {})",
        args.file.display(),
        integration.definition.staging_table,
        multi.as_deref().unwrap_or("-")
    );
    println!("{}", crate::replay::outcomes_line(&counts));
    for e in errors.iter().take(10) {
        eprintln!("{e}");
    }
    if counts.error > 0 {
        bail!(
            "{} record(s) in error: they are stored (`sluice replay --integration {}` after a fix)",
            counts.error,
            integration.name()
        );
    }
    Ok(())
}

type Loaded = (StateCounts, Option<String>, Vec<String>);

async fn load(
    store: &dyn sluice_store::Store,
    integration: &sluice_core::integration::Integration,
    args: &LoadArgs,
    format: Format,
    size: u64,
) -> anyhow::Result<Loaded> {
    let mut loader = sluice_server::offline::Loader::new(store, integration, &args.account).await?;
    let bar = crate::progress::bytes(size, "loading");
    let mut counts = StateCounts::default();
    let mut errors = Vec::new();
    let mut number = 0u64;
    let mut records = Records::open(&args.file, format)?.peekable();
    while records.peek().is_some() {
        let mut batch = Vec::with_capacity(BATCH);
        let mut read = 0;
        for record in records.by_ref().take(BATCH) {
            let (record, at) = record?;
            batch.push(record);
            read = at;
        }
        for outcome in loader.batch(batch).await? {
            number += 1;
            counts.add(outcome.state, 1);
            if outcome.state == RowState::Error {
                let why: Vec<String> = outcome
                    .errors
                    .iter()
                    .map(|e| format!("{}: {}", e.path.as_deref().unwrap_or(&e.field), e.message))
                    .collect();
                errors.push(format!("record {number}: {}", why.join("; ")));
            }
        }
        bar.set_position(read);
        bar.set_message(format!("{} inserted, {} error", counts.inserted, counts.error));
    }
    bar.finish_and_clear();
    Ok((counts, loader.multi_import_set().map(str::to_owned), errors))
}
