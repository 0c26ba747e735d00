//! `idle`: hold C connections open and read the server's resident memory before and after:
//! bytes per idle connection. Every connection must still be open when the memory is read:
//! one the server closed (a relay whose upstream refused it) holds nothing and would make the
//! rest look cheap.

use std::time::Duration;

use anyhow::{Context, bail};

use crate::wire::{self, Target};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// ws://IP:PORT/PATH, hixie76://IP:PORT/PATH or tcp://IP:PORT.
    #[arg(long)]
    pub url: String,
    /// Connections to hold.
    #[arg(short = 'c', long, default_value_t = 10_000)]
    pub connections: usize,
    /// The server's process id (its VmRSS is read from /proc).
    #[arg(long)]
    pub pid: u32,
}

/// Resident set size of `pid`, in bytes.
pub fn rss(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("no process {pid}"))?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS")?;
    Ok(kb * 1024)
}

pub async fn run(args: Args) -> anyhow::Result<serde_json::Value> {
    let target = Target::parse(&args.url)?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss(args.pid)?;
    let mut held = Vec::with_capacity(args.connections);
    // A few hundred handshakes at a time, not a thundering herd.
    for batch in (0..args.connections).collect::<Vec<_>>().chunks(200) {
        let mut pending = Vec::new();
        for _ in batch {
            let target = target.clone();
            pending.push(tokio::spawn(async move { wire::connect(&target).await }));
        }
        for p in pending {
            held.push(p.await??.0);
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss(args.pid)?;
    let per = after.saturating_sub(before) as f64 / args.connections as f64;
    let closed = held.iter().filter(|stream| closed(stream)).count();
    if closed > 0 {
        bail!(
            "the server closed {closed} of the {} connections before the memory was read",
            args.connections
        );
    }
    drop(held);
    Ok(serde_json::json!({
        "mode": "idle",
        "connections": args.connections,
        "rss_before": before,
        "rss_after": after,
        "bytes_per_conn": per,
    }))
}

/// Whether the server has closed `stream` or begun to: its end of the stream has arrived, the
/// connection failed, or what it sent starts with a WebSocket close frame (a server that
/// closes waits a while for the client's answer before it ends the stream).
fn closed(stream: &tokio::net::TcpStream) -> bool {
    let mut buf = [0u8; 512];
    for round in 0..64 {
        match stream.try_read(&mut buf) {
            Ok(0) => return true,
            Ok(_) if round == 0 && buf[0] == 0x88 => return true,
            Ok(_) => {}
            Err(e) => return e.kind() != std::io::ErrorKind::WouldBlock,
        }
    }
    false
}
