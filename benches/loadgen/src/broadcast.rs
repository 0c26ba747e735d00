//! `broadcast`: M clients in one room, one publisher. With `--interval`, the publisher sends
//! one message per interval and the result is the delivery latency to everyone; with
//! `--burst B`, it sends B messages at once, waits until every client has all of them, and
//! repeats: the fan-out rate (deliveries per second). With `--sockjs-streaming F`, that share
//! of the members joins the room as SockJS xhr-streaming sessions instead (a mixed room):
//! they get each message as an `a["…"]` frame of their streaming response, and their latency
//! is measured as the WebSocket members' is.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::bail;
use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;

use crate::sockjs::{self, Streaming};
use crate::stats::{self, Phase};
use crate::wire::{self, Target};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// ws://IP:PORT/PATH of the room.
    #[arg(long)]
    pub url: String,
    /// Clients in the room, besides the publisher.
    #[arg(short = 'm', long, default_value_t = 1000)]
    pub members: usize,
    /// Milliseconds between messages (latency mode).
    #[arg(long, default_value_t = 50)]
    pub interval: u64,
    /// Messages per round, each round waiting for full delivery (rate mode).
    #[arg(long)]
    pub burst: Option<u64>,
    /// Payload bytes (at least 20: the send time is written in it).
    #[arg(short = 's', long, default_value_t = 32)]
    pub size: usize,
    /// Share of the members (0 to 1, spread evenly through the joining order) that join as
    /// SockJS xhr-streaming sessions (`POST BASE/{server}/{session}/xhr_streaming`).
    #[arg(long, default_value_t = 0.0)]
    pub sockjs_streaming: f64,
    /// http://IP:PORT/BASE: the room's SockJS base URL, for those members (default: the
    /// address and path of --url).
    #[arg(long)]
    pub sockjs_url: Option<String>,
    #[command(flatten)]
    pub time: crate::Timing,
}

struct Shared {
    /// The clock the send times in payloads count from.
    epoch: Instant,
    phase: Phase,
    /// Messages received by all members together.
    delivered: AtomicU64,
    /// Rung when `delivered` may have reached what the publisher waits for.
    progress: Notify,
    /// Members that have received at least one message, so are surely in the room (a
    /// server may join a client to its room after answering the handshake).
    joined: AtomicU64,
    /// Members whose connection failed, and the last reason.
    failed: AtomicU64,
    last_failure: std::sync::Mutex<String>,
}

impl Shared {
    /// A member received `got` messages; the first time it does, it counts as joined.
    fn received(&self, got: u64, joined: &mut bool) {
        if got == 0 {
            return;
        }
        if !*joined {
            *joined = true;
            self.joined.fetch_add(1, Ordering::Relaxed);
        }
        self.delivered.fetch_add(got, Ordering::Relaxed);
        self.progress.notify_one();
    }
}

pub async fn run(args: Args) -> anyhow::Result<serde_json::Value> {
    let target = Target::parse(&args.url)?;
    if args.size < 20 {
        bail!("--size must be at least 20");
    }
    if !(0.0..=1.0).contains(&args.sockjs_streaming) {
        bail!("--sockjs-streaming is a share, from 0 to 1");
    }
    let sockjs_base = match &args.sockjs_url {
        Some(url) => crate::http::parse_url(url)?,
        None => match &target {
            Target::Ws { addr, path } => (*addr, path.split('?').next().unwrap_or("").to_string()),
            Target::Tcp { .. }
            | Target::Hixie76 { .. }
            | Target::Wss { .. }
            | Target::Tls { .. } => {
                bail!("a room's url is ws://IP:PORT/PATH")
            }
        },
    };
    let ids = sockjs::Ids::new(&sockjs_base.1);
    let share = args.sockjs_streaming;
    // Member i is a SockJS one when the count of SockJS members so far goes up at i.
    let is_sockjs = |i: usize| ((i + 1) as f64 * share).floor() > (i as f64 * share).floor();
    let sockjs_members = (0..args.members).filter(|&i| is_sockjs(i)).count();
    let shared = Arc::new(Shared {
        epoch: Instant::now(),
        phase: Phase::default(),
        delivered: AtomicU64::new(0),
        progress: Notify::new(),
        joined: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        last_failure: Default::default(),
    });
    let mut members = Vec::with_capacity(args.members);
    for batch in (0..args.members).collect::<Vec<_>>().chunks(200) {
        let mut pending = Vec::new();
        for &i in batch {
            let target = target.clone();
            let sockjs = is_sockjs(i).then(|| (sockjs_base.0, ids.path(i, "xhr_streaming")));
            pending.push(tokio::spawn(async move {
                Ok(match sockjs {
                    Some((addr, path)) => {
                        let mut session = Streaming::start(addr, &path).await?;
                        session.until_open().await?;
                        Joined::Sockjs(session)
                    }
                    None => {
                        let (stream, leftover) = wire::connect(&target).await?;
                        Joined::Ws(stream, leftover)
                    }
                })
            }));
        }
        for p in pending {
            let joined: Joined = p.await.map_err(anyhow::Error::from).and_then(|j| j)?;
            let shared = shared.clone();
            members.push(tokio::spawn(async move {
                let result = match joined {
                    Joined::Ws(stream, leftover) => member(stream, leftover, shared.clone()).await,
                    Joined::Sockjs(session) => sockjs_member(session, shared.clone()).await,
                };
                if let Err(error) = &result {
                    shared.failed.fetch_add(1, Ordering::Relaxed);
                    *shared.last_failure.lock().unwrap() = error.to_string();
                }
                result
            }));
        }
    }
    let (publisher, leftover) = wire::connect(&target).await?;
    let (mut read, mut write) = publisher.into_split();
    // The publisher's own copies come back too: read and drop them.
    drop(leftover);
    tokio::spawn(async move {
        let mut sink = vec![0u8; 64 * 1024];
        while matches!(read.read(&mut sink).await, Ok(n) if n > 0) {}
    });

    let publish = {
        let shared = shared.clone();
        let size = args.size;
        async move {
            let mut payload = vec![b' '; size];
            let members = args.members as u64;
            // Probe until every member has heard something, then count from there.
            let joining = Instant::now();
            while shared.joined.load(Ordering::Relaxed) < members {
                let ts = shared.epoch.elapsed().as_nanos() as u64;
                payload[..20].copy_from_slice(format!("{ts:020}").as_bytes());
                write.write_all(&wire::client_frame(1, &payload)).await?;
                tokio::time::sleep(Duration::from_millis(20)).await;
                if joining.elapsed() > Duration::from_secs(60) {
                    bail!(
                        "only {} of {members} members joined the room",
                        shared.joined.load(Ordering::Relaxed)
                    );
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            let base = shared.delivered.load(Ordering::Relaxed);
            let mut sent = 0u64;
            while shared.phase.get() != Phase::STOP {
                let count = args.burst.unwrap_or(1);
                let mut batch = Vec::new();
                for _ in 0..count {
                    let ts = shared.epoch.elapsed().as_nanos() as u64;
                    payload[..20].copy_from_slice(format!("{ts:020}").as_bytes());
                    batch.extend_from_slice(&wire::client_frame(1, &payload));
                }
                write.write_all(&batch).await?;
                sent += count;
                match args.burst {
                    Some(_) => {
                        let want = base + sent * members;
                        // Until everyone has it; at the end of the run members stop reading.
                        let waiting = Instant::now();
                        while shared.delivered.load(Ordering::Relaxed) < want
                            && shared.phase.get() != Phase::STOP
                        {
                            let notified = shared.progress.notified();
                            if shared.delivered.load(Ordering::Relaxed) >= want {
                                break;
                            }
                            let _ =
                                tokio::time::timeout(Duration::from_millis(100), notified).await;
                            if waiting.elapsed() > Duration::from_secs(10) {
                                bail!(
                                    "deliveries stalled at {} of {want}; {} members failed ({})",
                                    shared.delivered.load(Ordering::Relaxed),
                                    shared.failed.load(Ordering::Relaxed),
                                    shared.last_failure.lock().unwrap()
                                );
                            }
                        }
                    }
                    None => tokio::time::sleep(Duration::from_millis(args.interval)).await,
                }
            }
            anyhow::Ok(())
        }
    };
    let publisher = tokio::spawn(publish);
    // The clock starts once everyone is in the room.
    while shared.joined.load(Ordering::Relaxed) < args.members as u64 && !publisher.is_finished() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(args.time.warmup + Duration::from_millis(500)).await;
    let start_count = shared.delivered.load(Ordering::Relaxed);
    let elapsed = stats::measure(&shared.phase, Duration::ZERO, args.time.duration).await;
    let deliveries = shared.delivered.load(Ordering::Relaxed) - start_count;
    publisher.await??;
    let mut latency = stats::histogram();
    for m in members {
        latency.add(&m.await??)?;
    }
    let mut out = serde_json::json!({
        "mode": "broadcast",
        "members": args.members,
        "sockjs_members": sockjs_members,
        "deliveries_per_s": deliveries as f64 / elapsed.as_secs_f64(),
        "deliveries": deliveries,
        "seconds": elapsed.as_secs_f64(),
    });
    out.as_object_mut()
        .unwrap()
        .extend(stats::percentiles(&latency).as_object().unwrap().clone());
    Ok(out)
}

/// A member in the room, its handshake done.
enum Joined {
    Ws(TcpStream, Vec<u8>),
    Sockjs(Streaming),
}

/// A SockJS xhr-streaming member: as `member`, with messages from its streaming response
/// (opened again whenever it ends at the server's response limit).
async fn sockjs_member(
    mut session: Streaming,
    shared: Arc<Shared>,
) -> anyhow::Result<Histogram<u64>> {
    let mut latency = stats::histogram();
    let mut joined = false;
    loop {
        let now = shared.epoch.elapsed().as_nanos() as u64;
        let measuring = shared.phase.get() == Phase::MEASURE;
        let got = session
            .process(|message| {
                let Some(stamp) = message.get(..20) else {
                    bail!("a message of {} bytes in the room", message.len());
                };
                let sent: u64 = std::str::from_utf8(stamp)?.parse()?;
                if measuring {
                    latency.record((now.saturating_sub(sent) / 1000).max(1))?;
                }
                Ok(())
            })
            .await?;
        shared.received(got, &mut joined);
        if shared.phase.get() == Phase::STOP {
            return Ok(latency);
        }
        // Wake up now and then to notice the end of the run.
        if let Ok(read) = tokio::time::timeout(Duration::from_millis(100), session.read()).await {
            read?;
        }
    }
}

/// One member: counts messages and records each one's delivery latency while measuring.
async fn member(
    mut stream: TcpStream,
    leftover: Vec<u8>,
    shared: Arc<Shared>,
) -> anyhow::Result<Histogram<u64>> {
    let mut latency = stats::histogram();
    let mut joined = false;
    let mut buf = vec![0u8; 16 * 1024];
    let mut filled = leftover.len();
    buf[..filled].copy_from_slice(&leftover);
    loop {
        let mut at = 0;
        let mut got = 0;
        let now = shared.epoch.elapsed().as_nanos() as u64;
        while let Some(frame) = wire::parse_frame(&buf[at..filled])? {
            if frame.opcode == 1 && frame.len >= 20 {
                let start = at + frame.header;
                let sent: u64 = std::str::from_utf8(&buf[start..start + 20])?.parse()?;
                if shared.phase.get() == Phase::MEASURE {
                    latency.record((now.saturating_sub(sent) / 1000).max(1))?;
                }
                got += 1;
            }
            at += frame.total();
        }
        shared.received(got, &mut joined);
        buf.copy_within(at..filled, 0);
        filled -= at;
        if shared.phase.get() == Phase::STOP {
            return Ok(latency);
        }
        if filled == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        // Wake up now and then to notice the end of the run.
        let Ok(read) =
            tokio::time::timeout(Duration::from_millis(100), stream.read(&mut buf[filled..])).await
        else {
            continue;
        };
        let n = read?;
        if n == 0 {
            bail!("the server closed a member");
        }
        filled += n;
    }
}
