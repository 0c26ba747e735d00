//! `sockjs`: a SockJS (protocol 0.3.3) server's echo under load on one transport, as
//! sockjs-client drives it, or its memory per idle streaming session (`--idle`).
//!
//! - `xhr-streaming`: N sessions, each with a streaming response open
//!   (`POST BASE/{server}/{session}/xhr_streaming`) and a keep-alive connection of its own for
//!   `xhr_send`; K messages in flight per session, each `xhr_send` carrying what is free of
//!   them as one batch, one `xhr_send` at a time. A response that ends at the server's
//!   response limit is opened again at once, and nothing new is sent until it is open.
//! - `xhr-polling`: N sessions, each on one keep-alive connection: `xhr_send` of K messages,
//!   then `xhr` until all K are back.
//! - `websocket`: N SockJS WebSockets (`BASE/{server}/{session}/websocket`), K in flight,
//!   each message a frame of its own (`["…"]`).
//!
//! Every message carries its session's sequence number and every echo is checked against
//! what was sent, in order; anything the protocol does not lead one to expect (another
//! status, a close frame, a second open frame, a message never sent) ends the run with an
//! error.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::http::{self, Event};
use crate::stats::{self, Phase};
use crate::wire::{self, Target};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Transport {
    XhrStreaming,
    XhrPolling,
    Websocket,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// http://IP:PORT/BASE: a SockJS base URL (a route of flashgate's, a prefix of
    /// sockjs-node's).
    #[arg(long)]
    pub url: String,
    #[arg(long, value_enum, default_value = "xhr-streaming")]
    pub transport: Transport,
    /// Sessions.
    #[arg(short = 'n', long, default_value_t = 100)]
    pub sessions: usize,
    /// Messages in flight per session.
    #[arg(short = 'k', long, default_value_t = 16)]
    pub inflight: usize,
    /// Payload bytes per message (at least 10: the sequence number is written in it).
    #[arg(short = 's', long, default_value_t = 32)]
    pub size: usize,
    /// No load: open C xhr-streaming sessions (prelude and open frame read, the response
    /// left open), hold them for 3 s and report the server's resident memory per session.
    #[arg(long)]
    pub idle: bool,
    /// Sessions to hold, with --idle.
    #[arg(short = 'c', long, default_value_t = 10_000)]
    pub connections: usize,
    /// The server's process id, with --idle (its VmRSS is read from /proc).
    #[arg(long)]
    pub pid: Option<u32>,
    #[command(flatten)]
    pub time: crate::Timing,
}

/// Digits of the sequence number at the start of each message.
const SEQ: usize = 10;
/// The most any read may wait while messages are in flight.
const PATIENCE: Duration = Duration::from_secs(10);

pub async fn run(args: Args) -> anyhow::Result<serde_json::Value> {
    let (addr, base) = http::parse_url(&args.url)?;
    if args.idle {
        return idle(&args, addr, &base).await;
    }
    if args.size < SEQ {
        bail!("--size must be at least {SEQ}");
    }
    if args.inflight == 0 {
        bail!("-k must be at least 1");
    }
    let ids = Ids::new(&base);
    let phase = Arc::new(Phase::default());
    let load = Load {
        size: args.size,
        inflight: args.inflight,
    };
    let mut opened = Vec::with_capacity(args.sessions);
    for batch in (0..args.sessions).collect::<Vec<_>>().chunks(200) {
        let mut pending = Vec::new();
        for &i in batch {
            let transport = args.transport;
            let (path, send) = match transport {
                Transport::XhrStreaming => (ids.path(i, "xhr_streaming"), ids.path(i, "xhr_send")),
                Transport::XhrPolling => (ids.path(i, "xhr"), ids.path(i, "xhr_send")),
                Transport::Websocket => (ids.path(i, "websocket"), String::new()),
            };
            pending.push(tokio::spawn(async move {
                Opened::open(transport, addr, &path, &send).await
            }));
        }
        for p in pending {
            opened.push(p.await??);
        }
    }
    let mut tasks = Vec::with_capacity(opened.len());
    for session in opened {
        let phase = phase.clone();
        tasks.push(tokio::spawn(async move {
            match session {
                Opened::Streaming(recv, send) => streaming(recv, send, load, &phase).await,
                Opened::Polling(poll) => polling(poll, load, &phase).await,
                Opened::Websocket(stream, leftover) => {
                    websocket(stream, leftover, load, &phase).await
                }
            }
        }));
    }
    let elapsed = stats::measure(&phase, args.time.warmup, args.time.duration).await;
    let mut total = Tally::new();
    for task in tasks {
        let tally = task.await??;
        total.messages += tally.messages;
        total.requests += tally.requests;
        total.reopened += tally.reopened;
        total.latency.add(&tally.latency)?;
    }
    let rate = total.messages as f64 / elapsed.as_secs_f64();
    let mut out = serde_json::json!({
        "mode": "sockjs",
        "transport": format!("{:?}", args.transport),
        "sessions": args.sessions,
        "messages": total.messages,
        "seconds": elapsed.as_secs_f64(),
    });
    let fields = out.as_object_mut().unwrap();
    match args.transport {
        Transport::XhrStreaming => {
            fields.insert("msgs_per_s".into(), rate.into());
            fields.insert("xhr_sends".into(), total.requests.into());
            fields.insert("responses_reopened".into(), total.reopened.into());
        }
        Transport::XhrPolling => {
            fields.insert("round_trips_per_s".into(), rate.into());
            fields.insert("requests".into(), total.requests.into());
        }
        Transport::Websocket => {
            fields.insert("msgs_per_s".into(), rate.into());
        }
    }
    fields.extend(
        stats::percentiles(&total.latency)
            .as_object()
            .unwrap()
            .clone(),
    );
    Ok(out)
}

/// `--idle`: C streaming sessions held open, the server's memory before and after.
async fn idle(args: &Args, addr: SocketAddr, base: &str) -> anyhow::Result<serde_json::Value> {
    let pid = args.pid.context("--idle needs --pid")?;
    if args.transport != Transport::XhrStreaming {
        bail!("--idle holds xhr-streaming sessions");
    }
    let ids = Ids::new(base);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = crate::idle::rss(pid)?;
    let mut held = Vec::with_capacity(args.connections);
    // A few hundred sessions at a time, not a thundering herd.
    for batch in (0..args.connections).collect::<Vec<_>>().chunks(200) {
        let mut pending = Vec::new();
        for &i in batch {
            let path = ids.path(i, "xhr_streaming");
            pending.push(tokio::spawn(async move {
                let mut session = Streaming::start(addr, &path).await?;
                session.until_open().await?;
                anyhow::Ok(session)
            }));
        }
        for p in pending {
            held.push(p.await??);
        }
    }
    // Long enough for a server to put its idle sessions to sleep, if it does.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = crate::idle::rss(pid)?;
    let per = after.saturating_sub(before) as f64 / args.connections as f64;
    drop(held);
    Ok(serde_json::json!({
        "mode": "sockjs",
        "transport": "XhrStreaming",
        "sessions": args.connections,
        "rss_before": before,
        "rss_after": after,
        "bytes_per_conn": per,
    }))
}

/// Session URLs unique to this run: a server keeps a session for a while after its client
/// has gone (5 s by default), and a run must not meet the sessions of the one before it.
pub struct Ids {
    base: String,
    nonce: u64,
}

impl Ids {
    pub fn new(base: &str) -> Ids {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Ids {
            base: base.to_string(),
            nonce: now.as_micros() as u64 ^ (u64::from(std::process::id()) << 40),
        }
    }

    /// `BASE/{server}/{session}/{what}` of session `i`.
    pub fn path(&self, i: usize, what: &str) -> String {
        format!(
            "{}/{:03}/lg{:x}-{i}/{what}",
            self.base,
            i % 1000,
            self.nonce
        )
    }
}

/// What each session sends.
#[derive(Clone, Copy)]
struct Load {
    size: usize,
    inflight: usize,
}

/// What a session counted while measuring.
struct Tally {
    /// Echoes received.
    messages: u64,
    /// Sending (xhr_send) or polling (xhr_send and xhr) requests made.
    requests: u64,
    /// Streaming responses that ended at their limit and were opened again.
    reopened: u64,
    latency: Histogram<u64>,
}

/// Where a session is when an echo arrives.
struct Echo<'a> {
    /// The sequence number the echo must carry; the next one after it.
    next: &'a mut u64,
    /// When each message still in flight was sent, oldest first.
    sent: &'a mut VecDeque<Instant>,
    size: usize,
    now: Instant,
    measuring: bool,
}

impl Tally {
    /// Counts an echo that arrived: checked against the message due, timed from its send.
    fn echoed(&mut self, at: Echo<'_>, message: &[u8]) -> anyhow::Result<()> {
        check(message, *at.next, at.size)?;
        *at.next += 1;
        let t = at
            .sent
            .pop_front()
            .context("an echo of a message never sent")?;
        if at.measuring {
            self.latency.record(stats::micros(at.now - t))?;
            self.messages += 1;
        }
        Ok(())
    }

    fn new() -> Tally {
        Tally {
            messages: 0,
            requests: 0,
            reopened: 0,
            latency: stats::histogram(),
        }
    }
}

/// A session whose receiving side is open (the open frame read), ready for load.
enum Opened {
    Streaming(Streaming, Http),
    Polling(Http),
    Websocket(TcpStream, Vec<u8>),
}

impl Opened {
    async fn open(
        transport: Transport,
        addr: SocketAddr,
        path: &str,
        send: &str,
    ) -> anyhow::Result<Opened> {
        Ok(match transport {
            Transport::XhrStreaming => {
                let mut recv = Streaming::start(addr, path).await?;
                recv.until_open().await?;
                Opened::Streaming(recv, Http::connect(addr, send).await?)
            }
            Transport::XhrPolling => {
                let mut poll = Http::connect(addr, send).await?;
                let request = http_post(addr, path, b"");
                poll.request(&request).await?;
                if poll.reader.body() != b"o\n" {
                    bail!(
                        "the first xhr answered {:?}, not the open frame",
                        lossy(poll.reader.body())
                    );
                }
                poll.reader.consume(poll.reader.body().len());
                poll.poll = request;
                Opened::Polling(poll)
            }
            Transport::Websocket => {
                let target = Target::Ws {
                    addr,
                    path: path.to_string(),
                };
                let (stream, leftover) = wire::connect(&target).await?;
                Opened::Websocket(stream, leftover)
            }
        })
    }
}

/// A whole `POST` of `body` to `path`.
fn http_post(addr: SocketAddr, path: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    http::post_head(&mut out, &http::post_prefix(addr, path), body.len());
    out.extend_from_slice(body);
    out
}

/// A keep-alive connection for requests one at a time: the sending one (xhr_send) of a
/// streaming session, or all of a polling session's.
struct Http {
    addr: SocketAddr,
    stream: TcpStream,
    reader: http::Reader,
    /// The head of an xhr_send up to its length, built once.
    send: Vec<u8>,
    /// A polling session's xhr, built once.
    poll: Vec<u8>,
    /// The request being built.
    out: Vec<u8>,
}

impl Http {
    async fn connect(addr: SocketAddr, send: &str) -> anyhow::Result<Http> {
        Ok(Http {
            addr,
            stream: http::connect(addr).await?,
            reader: http::Reader::new(4096),
            send: http::post_prefix(addr, send),
            poll: Vec::new(),
            out: Vec::with_capacity(4096),
        })
    }

    /// Builds, in `out`, the xhr_send of messages `first..first + count`: `["…","…"]`.
    fn build_send(&mut self, first: u64, count: usize, size: usize) {
        http::post_head(&mut self.out, &self.send, count * (size + 3) + 1);
        self.out.push(b'[');
        for i in 0..count {
            if i > 0 {
                self.out.push(b',');
            }
            self.out.push(b'"');
            push_message(&mut self.out, first + i as u64, size);
            self.out.push(b'"');
        }
        self.out.push(b']');
    }

    /// After a response: a new connection if the server asked to close this one.
    async fn keep_alive(&mut self) -> anyhow::Result<()> {
        if self.reader.must_reconnect() {
            self.stream = http::connect(self.addr).await?;
            self.reader.reset();
        }
        Ok(())
    }

    /// Writes `request` and reads its response, whose body is then in `reader.body()`;
    /// returns the status.
    async fn request(&mut self, request: &[u8]) -> anyhow::Result<u16> {
        self.stream.write_all(request).await?;
        let mut status = None;
        loop {
            match self.reader.poll()? {
                Event::Head(s) => status = Some(s),
                Event::End => break,
                Event::More => {
                    let read = self.reader.read_from(&mut self.stream);
                    let n = tokio::time::timeout(PATIENCE, read)
                        .await
                        .map_err(|_| anyhow::anyhow!("no response for {PATIENCE:?}"))??;
                    if n == 0 && !self.reader.ends_with_close() {
                        bail!("the server closed the connection");
                    }
                }
            }
        }
        self.keep_alive().await?;
        status.context("a response without a head")
    }

    /// Sends `self.out` and checks that it was answered 204.
    async fn send_out(&mut self) -> anyhow::Result<()> {
        let out = std::mem::take(&mut self.out);
        let status = self.request(&out).await;
        self.out = out;
        check_sent(status?, self.reader.body())?;
        self.reader.consume(self.reader.body().len());
        Ok(())
    }
}

/// An xhr_send must be answered 204.
fn check_sent(status: u16, body: &[u8]) -> anyhow::Result<()> {
    if status != 204 {
        bail!("xhr_send answered {status}: {:?}", lossy(body));
    }
    Ok(())
}

/// A session's streaming response (`xhr_streaming`): its connection, the request that opens
/// it again when it ends, and where the protocol has got to.
pub struct Streaming {
    addr: SocketAddr,
    stream: TcpStream,
    reader: http::Reader,
    /// `POST …/xhr_streaming`, built once.
    request: Vec<u8>,
    /// The current response's prelude has arrived: the stream is open.
    open: bool,
    /// The session's open frame has arrived.
    opened: bool,
    /// Responses that ended (at the server's response limit) and were opened again.
    pub reopened: u64,
}

impl Streaming {
    /// Connects and asks for the streaming response of the session at `path`.
    pub async fn start(addr: SocketAddr, path: &str) -> anyhow::Result<Streaming> {
        let mut stream = http::connect(addr).await?;
        let request = http_post(addr, path, b"");
        stream.write_all(&request).await?;
        Ok(Streaming {
            addr,
            stream,
            reader: http::Reader::new(8192),
            request,
            open: false,
            opened: false,
            reopened: 0,
        })
    }

    /// Reads until the session's open frame has arrived.
    pub async fn until_open(&mut self) -> anyhow::Result<()> {
        loop {
            self.process(|_| bail!("a message before the open frame"))
                .await?;
            if self.opened {
                return Ok(());
            }
            tokio::time::timeout(PATIENCE, self.read())
                .await
                .map_err(|_| anyhow::anyhow!("no open frame for {PATIENCE:?}"))??;
        }
    }

    /// Reads what the socket holds (cancel-safe).
    pub async fn read(&mut self) -> anyhow::Result<()> {
        let n = self.reader.read_from(&mut self.stream).await?;
        if n == 0 && !self.reader.ends_with_close() {
            bail!("the server closed a streaming connection");
        }
        Ok(())
    }

    /// Handles what has arrived: `each` gets every message of every array frame. A response
    /// that ends is asked for again at once (the session keeps what comes meanwhile). Returns
    /// how many messages there were.
    pub async fn process(
        &mut self,
        mut each: impl FnMut(&[u8]) -> anyhow::Result<()>,
    ) -> anyhow::Result<u64> {
        let mut messages = 0;
        loop {
            let event = self.reader.poll()?;
            let body = self.reader.body();
            let mut at = 0;
            while let Some(end) = body[at..].iter().position(|&b| b == b'\n') {
                let line = &body[at..at + end];
                at += end + 1;
                if !self.open {
                    if line.len() != 2048 || line.iter().any(|&b| b != b'h') {
                        bail!(
                            "a streaming response that does not start with 2048 h: {:?}",
                            lossy(&line[..line.len().min(80)])
                        );
                    }
                    self.open = true;
                    continue;
                }
                match frame(line)? {
                    Frame::Open if !self.opened => self.opened = true,
                    Frame::Open => bail!("a second open frame"),
                    Frame::Heartbeat => {}
                    Frame::Array(_) if !self.opened => bail!("a message before the open frame"),
                    Frame::Array(inner) => messages += strings(inner, &mut each)?,
                    Frame::Close(_) => bail!("the server closed the session: {}", lossy(line)),
                }
            }
            self.reader.consume(at);
            match event {
                Event::Head(200) => {}
                Event::Head(status) => bail!("xhr_streaming answered {status}"),
                Event::More => return Ok(messages),
                Event::End => {
                    if !self.reader.body().is_empty() {
                        bail!("a streaming response ended in the middle of a frame");
                    }
                    if !self.open {
                        bail!("a streaming response ended before its prelude");
                    }
                    self.open = false;
                    self.reopened += 1;
                    if self.reader.must_reconnect() {
                        self.stream = http::connect(self.addr).await?;
                        self.reader.reset();
                    }
                    self.stream.write_all(&self.request).await?;
                }
            }
        }
    }
}

/// xhr-streaming: K messages in flight, sent by xhr_send, echoed on the stream.
async fn streaming(
    mut recv: Streaming,
    mut send: Http,
    load: Load,
    phase: &Phase,
) -> anyhow::Result<Tally> {
    let Load { size, inflight: k } = load;
    let mut tally = Tally::new();
    let mut sent: VecDeque<Instant> = VecDeque::with_capacity(k);
    let (mut next_send, mut next_echo) = (0u64, 0u64);
    let mut posting = false;
    let reopened = recv.reopened;
    loop {
        if phase.get() == Phase::STOP {
            tally.reopened = recv.reopened - reopened;
            return Ok(tally);
        }
        if recv.open && !posting && sent.len() < k {
            let count = k - sent.len();
            send.build_send(next_send, count, size);
            send.stream.write_all(&send.out).await?;
            let now = Instant::now();
            sent.extend(std::iter::repeat_n(now, count));
            next_send += count as u64;
            posting = true;
            if phase.get() == Phase::MEASURE {
                tally.requests += 1;
            }
        }
        tokio::select! {
            read = recv.read() => read?,
            read = send.reader.read_from(&mut send.stream) => {
                if read? == 0 {
                    bail!("the server closed an xhr_send connection");
                }
            }
            _ = tokio::time::sleep(PATIENCE) => {
                bail!("nothing from the server for {PATIENCE:?}, {} messages in flight", sent.len())
            }
        }
        let now = Instant::now();
        let measuring = phase.get() == Phase::MEASURE;
        recv.process(|message| {
            let echo = Echo {
                next: &mut next_echo,
                sent: &mut sent,
                size,
                now,
                measuring,
            };
            tally.echoed(echo, message)
        })
        .await?;
        loop {
            match send.reader.poll()? {
                Event::Head(status) => check_sent(status, b"")?,
                Event::End => {
                    send.reader.consume(send.reader.body().len());
                    send.keep_alive().await?;
                    posting = false;
                }
                Event::More => break,
            }
        }
    }
}

/// xhr-polling: xhr_send of K messages, then xhr until all K are back.
async fn polling(mut poll: Http, load: Load, phase: &Phase) -> anyhow::Result<Tally> {
    let Load { size, inflight: k } = load;
    let mut tally = Tally::new();
    let mut next = 0u64;
    let request = std::mem::take(&mut poll.poll);
    loop {
        if phase.get() == Phase::STOP {
            return Ok(tally);
        }
        poll.build_send(next, k, size);
        let t = Instant::now();
        poll.send_out().await?;
        let mut requests = 1;
        let mut echoed = 0;
        while echoed < k {
            let status = poll.request(&request).await?;
            requests += 1;
            let now = Instant::now();
            let body = poll.reader.body();
            if status != 200 {
                bail!("xhr answered {status}: {:?}", lossy(body));
            }
            let measuring = phase.get() == Phase::MEASURE;
            let mut at = 0;
            while let Some(end) = body[at..].iter().position(|&b| b == b'\n') {
                let line = &body[at..at + end];
                at += end + 1;
                match frame(line)? {
                    Frame::Heartbeat => {}
                    Frame::Array(inner) => {
                        strings(inner, |message| {
                            if echoed == k {
                                bail!("an echo of a message never sent");
                            }
                            check(message, next, size)?;
                            next += 1;
                            echoed += 1;
                            if measuring {
                                tally.latency.record(stats::micros(now - t))?;
                                tally.messages += 1;
                            }
                            Ok(())
                        })?;
                    }
                    Frame::Open => bail!("a second open frame"),
                    Frame::Close(_) => bail!("the server closed the session: {}", lossy(line)),
                }
            }
            if at != body.len() {
                bail!(
                    "an xhr response that is not whole frames: {:?}",
                    lossy(body)
                );
            }
            poll.reader.consume(at);
        }
        if phase.get() == Phase::MEASURE {
            tally.requests += requests;
        }
    }
}

/// SockJS over WebSocket: K messages in flight, each its own frame `["…"]`.
async fn websocket(
    mut stream: TcpStream,
    leftover: Vec<u8>,
    load: Load,
    phase: &Phase,
) -> anyhow::Result<Tally> {
    let Load { size, inflight: k } = load;
    let mut tally = Tally::new();
    // One frame, built once; each message's sequence number is written into it.
    let mut payload = vec![b'x'; size + 4];
    payload[..2].copy_from_slice(b"[\"");
    payload[size + 2..].copy_from_slice(b"\"]");
    let len = payload.len();
    let mut message = wire::client_frame(1, &payload);
    let mut out = Vec::with_capacity(message.len() * k);
    let mut sent: VecDeque<Instant> = VecDeque::with_capacity(k);
    let (mut next_send, mut next_echo) = (0u64, 0u64);
    let mut opened = false;
    let mut buf = vec![0u8; 64 * 1024];
    let mut filled = leftover.len();
    buf[..filled].copy_from_slice(&leftover);
    loop {
        let now = Instant::now();
        let measuring = phase.get() == Phase::MEASURE;
        let mut at = 0;
        while let Some(f) = wire::parse_frame(&buf[at..filled])? {
            let text = &buf[at + f.header..at + f.total()];
            match f.opcode {
                1 if f.fin => match frame(text)? {
                    Frame::Open if !opened => opened = true,
                    Frame::Open => bail!("a second open frame"),
                    Frame::Heartbeat => {}
                    Frame::Array(_) if !opened => bail!("a message before the open frame"),
                    Frame::Array(inner) => {
                        strings(inner, |m| {
                            let echo = Echo {
                                next: &mut next_echo,
                                sent: &mut sent,
                                size,
                                now,
                                measuring,
                            };
                            tally.echoed(echo, m)
                        })?;
                    }
                    Frame::Close(_) => bail!("the server closed the session: {}", lossy(text)),
                },
                9 | 10 => {}
                8 => bail!("the server closed the WebSocket"),
                other => bail!("unexpected frame: opcode {other}, fin {}", f.fin),
            }
            at += f.total();
        }
        buf.copy_within(at..filled, 0);
        filled -= at;
        if phase.get() == Phase::STOP {
            return Ok(tally);
        }
        if opened && sent.len() < k {
            out.clear();
            let now = Instant::now();
            while sent.len() < k {
                wire::patch_payload(&mut message, len, 2, &digits(next_send));
                out.extend_from_slice(&message);
                sent.push_back(now);
                next_send += 1;
            }
            stream.write_all(&out).await?;
        }
        if filled == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        let n = tokio::time::timeout(
            PATIENCE,
            tokio::io::AsyncReadExt::read(&mut stream, &mut buf[filled..]),
        )
        .await
        .map_err(|_| anyhow::anyhow!("nothing from the server for {PATIENCE:?}"))??;
        if n == 0 {
            bail!("the server closed the connection");
        }
        filled += n;
    }
}

/// The decimal digits of `seq`, zero-padded.
fn digits(mut seq: u64) -> [u8; SEQ] {
    let mut out = [b'0'; SEQ];
    for d in out.iter_mut().rev() {
        *d = b'0' + (seq % 10) as u8;
        seq /= 10;
    }
    out
}

/// Appends message `seq` of a session: its sequence number, then `x` up to `size` bytes.
fn push_message(out: &mut Vec<u8>, seq: u64, size: usize) {
    out.extend_from_slice(&digits(seq));
    out.extend(std::iter::repeat_n(b'x', size - SEQ));
}

/// An echo must be the message that was sent `seq`-th.
fn check(message: &[u8], seq: u64, size: usize) -> anyhow::Result<()> {
    if message.len() != size
        || message[..SEQ] != digits(seq)
        || message[SEQ..].iter().any(|&b| b != b'x')
    {
        bail!(
            "expected the echo of message {seq} ({size} bytes), got {:?}",
            lossy(&message[..message.len().min(80)])
        );
    }
    Ok(())
}

/// A SockJS frame: a line of a streaming or polling response, or a WebSocket message.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    Open,
    Heartbeat,
    /// `a[…]`: what is inside the brackets.
    Array(&'a [u8]),
    Close(&'a [u8]),
}

pub fn frame(line: &[u8]) -> anyhow::Result<Frame<'_>> {
    Ok(match line {
        b"o" => Frame::Open,
        b"h" => Frame::Heartbeat,
        [b'a', b'[', inner @ .., b']'] => Frame::Array(inner),
        [b'c', b'[', inner @ .., b']'] => Frame::Close(inner),
        _ => bail!(
            "not a SockJS frame: {:?}",
            lossy(&line[..line.len().min(80)])
        ),
    })
}

/// Calls `each` with every string in `inner`, the inside of an array frame, as it is on the
/// wire: the messages of this load generator have nothing that JSON escapes, so an escape is
/// a surprise. Returns how many there were.
pub fn strings(
    inner: &[u8],
    mut each: impl FnMut(&[u8]) -> anyhow::Result<()>,
) -> anyhow::Result<u64> {
    let mut count = 0;
    let mut at = 0;
    loop {
        if inner.get(at) != Some(&b'"') {
            bail!("not an array of strings: [{}]", lossy(inner));
        }
        let Some(len) = inner[at + 1..]
            .iter()
            .position(|&b| b == b'"' || b == b'\\')
        else {
            bail!("an unterminated string: [{}]", lossy(inner));
        };
        let end = at + 1 + len;
        if inner[end] == b'\\' {
            bail!("an escape in a message that had none: [{}]", lossy(inner));
        }
        each(&inner[at + 1..end])?;
        count += 1;
        at = end + 1;
        match inner.get(at) {
            None => return Ok(count),
            Some(b',') => at += 1,
            Some(_) => bail!("not an array of strings: [{}]", lossy(inner)),
        }
    }
}

fn lossy(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_and_their_strings() {
        assert_eq!(frame(b"o").unwrap(), Frame::Open);
        assert_eq!(frame(b"h").unwrap(), Frame::Heartbeat);
        assert_eq!(frame(b"a[\"x\"]").unwrap(), Frame::Array(b"\"x\""));
        assert!(frame(b"hh").is_err() && frame(b"a[").is_err());
        let mut got = Vec::new();
        let n = strings(b"\"ab\",\"\",\"c\"", |s| {
            got.push(s.to_vec());
            Ok(())
        })
        .unwrap();
        assert_eq!((n, got), (3, vec![b"ab".to_vec(), vec![], b"c".to_vec()]));
        for bad in [&b"1"[..], b"\"a\\\"b\"", b"\"a\"x", b"\"a"] {
            assert!(strings(bad, |_| Ok(())).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn messages_check_against_their_number() {
        let mut m = Vec::new();
        push_message(&mut m, 42, 32);
        assert_eq!(&m[..SEQ], b"0000000042");
        assert_eq!(m.len(), 32);
        check(&m, 42, 32).unwrap();
        assert!(check(&m, 43, 32).is_err() && check(&m[..31], 42, 32).is_err());
    }

    #[test]
    fn an_xhr_send_body_has_the_length_it_says() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let mut http = Http::connect(addr, "/echo/000/a/xhr_send").await.unwrap();
            http.build_send(7, 3, 12);
            let text = String::from_utf8(http.out.clone()).unwrap();
            let (head, body) = text.split_once("\r\n\r\n").unwrap();
            assert!(head.ends_with(&format!("Content-Length: {}", body.len())));
            assert_eq!(body, r#"["0000000007xx","0000000008xx","0000000009xx"]"#);
        });
    }
}
