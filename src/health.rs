//! `sluice health`: asks a running sluice's `/healthz` (or `/readyz`) over plain HTTP and exits
//! 0 only on a 200 answer, for container health checks and scripts (no curl needed).

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;

#[derive(Args)]
pub struct HealthArgs {
    /// The URL to ask (plain http; a local address).
    #[arg(long, default_value = "http://127.0.0.1:8080/healthz")]
    url: String,
    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 3)]
    timeout: u64,
}

pub fn run(args: HealthArgs) -> anyhow::Result<()> {
    let rest = args.url.strip_prefix("http://").context("--url: only http:// URLs (health checks stay local)")?;
    let (authority, path) = rest.split_once('/').map_or((rest, "/"), |(a, p)| (a, p));
    let path = if path == "/" { "/".to_owned() } else { format!("/{path}") };
    let timeout = Duration::from_secs(args.timeout.max(1));
    let address = authority
        .to_socket_addrs()
        .with_context(|| format!("--url: {authority} is not host:port"))?
        .next()
        .with_context(|| format!("{authority} has no address"))?;
    let mut stream =
        TcpStream::connect_timeout(&address, timeout).with_context(|| format!("cannot connect to {authority}"))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n")?;
    let mut answer = Vec::new();
    stream.take(64 * 1024).read_to_end(&mut answer).context("no answer")?;
    let text = String::from_utf8_lossy(&answer);
    let status_line = text.lines().next().unwrap_or_default();
    let status = status_line.split_whitespace().nth(1).unwrap_or_default();
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b).trim();
    println!("{status} {body}");
    if status != "200" {
        bail!("{} answered {status_line}", args.url);
    }
    Ok(())
}
