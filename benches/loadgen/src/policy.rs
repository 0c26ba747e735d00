//! `policy`: Flash socket policy replies per second (connect, ask, read the reply to EOF),
//! and per second of the server's CPU time when its pid is given.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::stats::{self, Phase};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// IP:PORT of the policy server.
    #[arg(long)]
    pub addr: std::net::SocketAddr,
    /// Requests at once.
    #[arg(short = 'c', long, default_value_t = 32)]
    pub concurrency: usize,
    /// The server's process id, to count its CPU time.
    #[arg(long)]
    pub pid: Option<u32>,
    #[command(flatten)]
    pub time: crate::Timing,
}

/// user + system CPU seconds of `pid`.
pub fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let rest = &stat[stat.rfind(')').context("bad stat")? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    Ok(ticks / 100.0)
}

pub async fn run(args: Args) -> anyhow::Result<serde_json::Value> {
    let phase = Arc::new(Phase::default());
    let done = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for _ in 0..args.concurrency {
        let (phase, done, addr) = (phase.clone(), done.clone(), args.addr);
        workers.push(tokio::spawn(async move {
            while phase.get() != Phase::STOP {
                let ok = tokio::time::timeout(Duration::from_secs(5), once(addr))
                    .await
                    .is_ok_and(|r| r.is_ok());
                if ok && phase.get() == Phase::MEASURE {
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    tokio::time::sleep(args.time.warmup).await;
    let cpu_before = args.pid.map(cpu_seconds).transpose()?;
    let elapsed = stats::measure(&phase, Duration::ZERO, args.time.duration).await;
    let cpu_after = args.pid.map(cpu_seconds).transpose()?;
    let replies = done.load(Ordering::Relaxed);
    for worker in workers {
        worker.await?;
    }
    let cpu = cpu_before.zip(cpu_after).map(|(b, a)| a - b);
    Ok(serde_json::json!({
        "mode": "policy",
        "replies_per_s": replies as f64 / elapsed.as_secs_f64(),
        "replies": replies,
        "server_cpu_s": cpu,
        "replies_per_cpu_s": cpu.filter(|c| *c > 0.0).map(|c| replies as f64 / c),
        "seconds": elapsed.as_secs_f64(),
    }))
}

async fn once(addr: std::net::SocketAddr) -> anyhow::Result<()> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.set_zero_linger()?;
    stream.write_all(b"<policy-file-request/>\0").await?;
    let mut reply = Vec::with_capacity(512);
    stream.read_to_end(&mut reply).await?;
    if reply.last() != Some(&0) || !reply.starts_with(b"<") {
        bail!("not a policy reply");
    }
    Ok(())
}
