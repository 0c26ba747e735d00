//! `connect`: connections per second: open, (WebSocket: upgrade, close handshake), close.
//! Against raw TCP: connect, half-close, wait for the server's close. `tls://`: a full TLS
//! handshake, then close_notify, and the server's close; `wss://`: the same with the
//! WebSocket upgrade and close handshake in between.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::stats::{self, Phase};
use crate::wire::{self, Target};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// ws://IP:PORT/PATH, wss://IP:PORT/PATH, tls://IP:PORT or tcp://IP:PORT.
    #[arg(long)]
    pub url: String,
    /// The CA (PEM) a wss:// or tls:// server's certificate is checked against.
    #[arg(long)]
    pub ca: Option<std::path::PathBuf>,
    /// Connections being opened at once.
    #[arg(short = 'c', long, default_value_t = 32)]
    pub concurrency: usize,
    #[command(flatten)]
    pub time: crate::Timing,
}

pub async fn run(args: Args) -> anyhow::Result<serde_json::Value> {
    let target = Target::parse(&args.url)?;
    let tls = match target.is_tls() {
        true => Some(wire::tls_connector(args.ca.as_deref())?),
        false => None,
    };
    let phase = Arc::new(Phase::default());
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let close = wire::client_frame(8, &1000u16.to_be_bytes());
    let mut workers = Vec::new();
    for _ in 0..args.concurrency {
        let (target, tls, phase, done, failed, close) = (
            target.clone(),
            tls.clone(),
            phase.clone(),
            done.clone(),
            failed.clone(),
            close.clone(),
        );
        workers.push(tokio::spawn(async move {
            while phase.get() != Phase::STOP {
                let ok = tokio::time::timeout(
                    Duration::from_secs(5),
                    once(&target, tls.as_ref(), &close),
                )
                .await
                .is_ok_and(|r| r.is_ok());
                if phase.get() == Phase::MEASURE {
                    match ok {
                        true => done.fetch_add(1, Ordering::Relaxed),
                        false => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            }
        }));
    }
    let elapsed = stats::measure(&phase, args.time.warmup, args.time.duration).await;
    let counted = done.load(Ordering::Relaxed);
    for worker in workers {
        worker.await?;
    }
    Ok(serde_json::json!({
        "mode": "connect",
        "conns_per_s": counted as f64 / elapsed.as_secs_f64(),
        "connections": counted,
        "failed": failed.load(Ordering::Relaxed),
        "seconds": elapsed.as_secs_f64(),
    }))
}

async fn once(
    target: &Target,
    tls: Option<&tokio_rustls::TlsConnector>,
    close: &[u8],
) -> anyhow::Result<()> {
    if let Some(tls) = tls {
        let (mut stream, _) = wire::connect_tls(target, tls).await?;
        stream.get_ref().0.set_zero_linger()?;
        if let Target::Wss { .. } = target {
            stream.write_all(close).await?;
        }
        // close_notify after the WebSocket's close frame, or after the handshake alone.
        stream.shutdown().await?;
        let mut buf = [0u8; 256];
        // A server may close without close_notify of its own: that is its close too.
        while stream.read(&mut buf).await.unwrap_or(0) > 0 {}
        return Ok(());
    }
    let (mut stream, _) = wire::connect(target).await?;
    // No TIME_WAIT on the client: thousands of connections a second would run out of ports.
    stream.set_zero_linger()?;
    match target {
        Target::Ws { .. } => stream.write_all(close).await?,
        Target::Tcp { .. } => stream.shutdown().await?,
        Target::Hixie76 { .. } => stream.write_all(&[0xff, 0x00]).await?,
        Target::Wss { .. } | Target::Tls { .. } => unreachable!("TLS is handled above"),
    }
    // Until the server closes (after its close frame, for WebSocket).
    let mut buf = [0u8; 256];
    while stream.read(&mut buf).await? > 0 {}
    Ok(())
}
