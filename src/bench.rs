//! `sluice bench`: a small HTTP/1.1 load generator for sluice's create paths. N keep-alive
//! connections send requests back to back for a duration; it prints requests/s, latency
//! percentiles and errors. Written on tokio's TCP stream (no client library), so the numbers
//! measure the server, and it runs wherever sluice runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Scenario {
    /// `POST /api/now/import/{staging}`: one incident per request.
    Import,
    /// `POST /api/now/import/{staging}/insertMultiple?sysparm_sluice_sync=true` with `--rows` rows.
    InsertMultiple,
    /// `POST /api/now/table/incident`.
    Table,
}

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Server address (host:port, plain http).
    #[arg(long, default_value = sluice_server::defaults::LISTEN)]
    pub target: String,
    #[arg(long, value_enum, default_value = "import")]
    pub scenario: Scenario,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// How long to send, in seconds.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    #[arg(long, default_value = "admin")]
    pub user: String,
    #[arg(long, env = "SLUICE_BENCH_PASSWORD")]
    pub password: String,
    #[arg(long, default_value = "u_incident_import")]
    pub staging_table: String,
    /// Rows per insertMultiple request.
    #[arg(long, default_value_t = 100)]
    pub rows: usize,
}

fn row(conn: usize, n: u64, i: usize) -> String {
    format!(
        r#"{{"u_short_description":"Disk usage above 95% on db-{i}","u_description":"Filesystem /var/lib/pgsql at 96%","u_caller":"monitoring.bot","u_category":"database","u_impact":"2","u_urgency":"1","u_correlation_id":"bench:{conn}:{n}:{i}:{}","u_contact_type":"monitoring"}}"#,
        std::process::id()
    )
}

fn request(args: &BenchArgs, auth: &str, conn: usize, n: u64) -> (Vec<u8>, u64) {
    let (path, body, rows) = match args.scenario {
        Scenario::Import => (format!("/api/now/import/{}", args.staging_table), row(conn, n, 0), 1),
        Scenario::InsertMultiple => {
            let records: Vec<String> = (0..args.rows).map(|i| row(conn, n, i)).collect();
            (
                format!("/api/now/import/{}/insertMultiple?sysparm_sluice_sync=true", args.staging_table),
                format!(r#"{{"records":[{}]}}"#, records.join(",")),
                args.rows as u64,
            )
        }
        Scenario::Table => (
            "/api/now/table/incident".to_owned(),
            format!(r#"{{"short_description":"bench {conn} {n}","impact":"2","urgency":"1"}}"#),
            1,
        ),
    };
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Basic {auth}\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: {}\r\n\r\n",
        args.target,
        body.len()
    );
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body.as_bytes());
    (bytes, rows)
}

/// Reads one response; returns its status.
async fn read_response(stream: &mut BufReader<TcpStream>, line: &mut String) -> anyhow::Result<u16> {
    line.clear();
    if stream.read_line(line).await? == 0 {
        bail!("connection closed");
    }
    let status: u16 = line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).context("bad status line")?;
    let mut length = 0usize;
    loop {
        line.clear();
        stream.read_line(line).await?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    stream.read_exact(&mut body).await?;
    Ok(status)
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", args.user, args.password));
    let args = Arc::new(args);
    let stop = Arc::new(AtomicBool::new(false));
    let rows_done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for conn in 0..args.connections {
        let (args, auth, stop, rows_done) = (args.clone(), auth.clone(), stop.clone(), rows_done.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            let mut stream = None;
            let mut line = String::new();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                if stream.is_none() {
                    match TcpStream::connect(&args.target).await {
                        Ok(s) => {
                            let _ = s.set_nodelay(true);
                            stream = Some(BufReader::new(s));
                        }
                        Err(_) => {
                            errors += 1;
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    }
                }
                let s = stream.as_mut().expect("connected");
                n += 1;
                let (bytes, rows) = request(&args, &auth, conn, n);
                let sent = Instant::now();
                let outcome = match s.get_mut().write_all(&bytes).await {
                    Ok(()) => read_response(s, &mut line).await,
                    Err(e) => Err(e.into()),
                };
                match outcome {
                    Ok(201) => {
                        latencies.push(sent.elapsed());
                        rows_done.fetch_add(rows, Ordering::Relaxed);
                    }
                    Ok(_) => errors += 1,
                    Err(_) => {
                        errors += 1;
                        stream = None;
                    }
                }
            }
            (latencies, errors)
        }));
    }
    tokio::time::sleep(Duration::from_secs(args.duration)).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await?;
        latencies.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let pct = |p: f64| -> f64 {
        if latencies.is_empty() {
            return 0.0;
        }
        let i = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[i].as_secs_f64() * 1000.0
    };
    let rows = rows_done.load(Ordering::Relaxed);
    println!(
        "scenario={:?} connections={} duration={:.1}s requests={} rows={} errors={}",
        args.scenario,
        args.connections,
        elapsed,
        latencies.len(),
        rows,
        errors
    );
    println!(
        "requests/s={:.0} rows/s={:.0} latency_ms p50={:.2} p90={:.2} p99={:.2} max={:.2}",
        latencies.len() as f64 / elapsed,
        rows as f64 / elapsed,
        pct(0.50),
        pct(0.90),
        pct(0.99),
        pct(1.0)
    );
    Ok(())
}
