//! `echo`: N connections, K messages in flight each, payload S bytes: messages per second and
//! round-trip latency. Over WebSocket (text or binary frames; wss:// too), hixie-76
//! WebSocket (text) or raw TCP (S-byte chunks).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use hdrhistogram::Histogram;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::stats::{self, Phase};
use crate::wire::{self, Target};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// ws://IP:PORT/PATH, wss://IP:PORT/PATH, hixie76://IP:PORT/PATH or tcp://IP:PORT.
    #[arg(long)]
    pub url: String,
    /// The CA (PEM) a wss:// server's certificate is checked against.
    #[arg(long)]
    pub ca: Option<std::path::PathBuf>,
    /// Connections.
    #[arg(short = 'n', long, default_value_t = 100)]
    pub connections: usize,
    /// Messages in flight per connection.
    #[arg(short = 'k', long, default_value_t = 16)]
    pub inflight: usize,
    /// Payload bytes per message.
    #[arg(short = 's', long, default_value_t = 32)]
    pub size: usize,
    /// Binary frames instead of text.
    #[arg(long)]
    pub binary: bool,
    /// The server relays a byte stream (a socket proxy): count echoed payload bytes in units
    /// of S, whatever frames they come back in.
    #[arg(long)]
    pub stream: bool,
    #[command(flatten)]
    pub time: crate::Timing,
}

pub async fn run(args: Args) -> anyhow::Result<serde_json::Value> {
    let target = Target::parse(&args.url)?;
    let payload = vec![b'x'; args.size];
    let message: Arc<[u8]> = match target {
        Target::Ws { .. } | Target::Wss { .. } => {
            wire::client_frame(if args.binary { 2 } else { 1 }, &payload).into()
        }
        Target::Tls { .. } => bail!("echo speaks to ws://, wss://, hixie76:// or tcp://"),
        Target::Tcp { .. } => payload.into(),
        Target::Hixie76 { .. } if args.binary => bail!("hixie-76 has no binary frames"),
        Target::Hixie76 { .. } => wire::hixie76_frame(&payload).into(),
    };
    let phase = Arc::new(Phase::default());
    let shape = Shape {
        size: args.size,
        inflight: args.inflight,
        stream: args.stream,
    };
    // Every connection is open before any of them starts.
    let mut plain = Vec::new();
    let mut secure = Vec::new();
    match target.is_tls() {
        true => {
            let tls = wire::tls_connector(args.ca.as_deref())?;
            for _ in 0..args.connections {
                secure.push(wire::connect_tls(&target, &tls).await?);
            }
        }
        false => {
            for _ in 0..args.connections {
                plain.push(wire::connect(&target).await?);
            }
        }
    }
    let mut tasks = Vec::new();
    for (stream, leftover) in plain {
        let (message, phase, target) = (message.clone(), phase.clone(), target.clone());
        tasks.push(tokio::spawn(async move {
            connection(stream, leftover, &target, &message, shape, &phase).await
        }));
    }
    for (stream, leftover) in secure {
        let (message, phase, target) = (message.clone(), phase.clone(), target.clone());
        tasks.push(tokio::spawn(async move {
            connection(stream, leftover, &target, &message, shape, &phase).await
        }));
    }
    let elapsed = stats::measure(&phase, args.time.warmup, args.time.duration).await;
    let mut total = 0;
    let mut latency = stats::histogram();
    for task in tasks {
        let (count, h) = task.await??;
        total += count;
        latency.add(&h)?;
    }
    let mut out = serde_json::json!({
        "mode": "echo",
        "msgs_per_s": total as f64 / elapsed.as_secs_f64(),
        "messages": total,
        "seconds": elapsed.as_secs_f64(),
    });
    out.as_object_mut()
        .unwrap()
        .extend(stats::percentiles(&latency).as_object().unwrap().clone());
    Ok(out)
}

/// What one connection sends and how echoes are counted.
#[derive(Clone, Copy)]
struct Shape {
    /// Payload bytes per message.
    size: usize,
    /// Messages in flight.
    inflight: usize,
    /// Count payload bytes, not frames.
    stream: bool,
}

/// One connection's loop: keep `k` messages in flight, count and time the echoes.
async fn connection<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    leftover: Vec<u8>,
    target: &Target,
    message: &[u8],
    shape: Shape,
    phase: &Phase,
) -> anyhow::Result<(u64, Histogram<u64>)> {
    let Shape {
        size,
        inflight: k,
        stream: by_bytes,
    } = shape;
    let ws = matches!(target, Target::Ws { .. } | Target::Wss { .. });
    let hixie = matches!(target, Target::Hixie76 { .. });
    let mut latency = stats::histogram();
    let mut count = 0u64;
    let mut sent: VecDeque<Instant> = VecDeque::with_capacity(k);
    let mut out = Vec::with_capacity(message.len() * k);
    let now = Instant::now();
    for _ in 0..k {
        out.extend_from_slice(message);
        sent.push_back(now);
    }
    stream.write_all(&out).await?;
    stream.flush().await?; // TLS: the records out now (plain TCP: nothing to do)

    let mut buf = vec![0u8; (64 * 1024).max(4 * message.len())];
    let mut filled = leftover.len();
    buf[..filled].copy_from_slice(&leftover);
    let mut tcp_bytes = 0usize;
    loop {
        // Complete echoes in what has arrived.
        let mut done = 0;
        let mut at = 0;
        if ws {
            while let Some(frame) = wire::parse_frame(&buf[at..filled])? {
                match frame.opcode {
                    0..=2 if by_bytes => tcp_bytes += frame.len,
                    1 | 2 if frame.fin => done += 1,
                    0..=2 | 9 | 10 => {}
                    8 => bail!("the server closed the connection"),
                    other => bail!("unexpected opcode {other}"),
                }
                at += frame.total();
            }
            if by_bytes {
                done = tcp_bytes / size;
                tcp_bytes %= size;
            }
        } else if hixie {
            while let Some(len) = wire::parse_hixie76_frame(&buf[at..filled])? {
                done += 1;
                at += len;
            }
        } else {
            tcp_bytes += filled;
            done = tcp_bytes / size;
            tcp_bytes %= size;
            at = filled;
        }
        buf.copy_within(at..filled, 0);
        filled -= at;

        if done > 0 {
            let now = Instant::now();
            let measuring = phase.get() == Phase::MEASURE;
            out.clear();
            for _ in 0..done {
                let t = sent.pop_front().expect("an echo answers a message");
                if measuring {
                    latency.record(stats::micros(now - t))?;
                    count += 1;
                }
                out.extend_from_slice(message);
                sent.push_back(now);
            }
            if phase.get() == Phase::STOP {
                return Ok((count, latency));
            }
            stream.write_all(&out).await?;
            stream.flush().await?; // TLS: the records out now (plain TCP: nothing to do)
        }
        if filled == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf[filled..]))
            .await
            .map_err(|_| anyhow::anyhow!("no echo for 10 s"))??;
        if n == 0 {
            bail!("the server closed the connection");
        }
        filled += n;
    }
}
