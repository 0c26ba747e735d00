//! A client or an upstream server (TCP, or WebSocket) that stops reading, against the real binary (its memory
//! read from /proc): the relay's back-pressure holds the other side back, the gateway stays
//! small, and once reading resumes every byte arrives, in order.

mod common;

use std::io::BufRead;
use std::net::SocketAddr;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use common::upstream::{Bytes, Checker, server};
use common::*;

const SEED: u64 = 0xb0a7_5eed;
const MIB: usize = 1 << 20;

/// The most the gateway's memory may grow while one side does not read.
const MAX_GROWTH: usize = 32 * MIB;

/// The most bytes one side may get off while the other does not read: what the kernel's
/// socket buffers on the way hold (up to a few MiB each here), and the gateway's one batch.
const MAX_IN_FLIGHT: usize = 48 * MIB;

/// More than that: a side that gets this far was never held back.
const NEVER_HELD: usize = 512 * MIB;

/// The real binary, with the route `route` (`/tcp=tcp://…`, say).
struct Gateway {
    child: Child,
    main: SocketAddr,
    _dir: tempfile::TempDir,
    _watchdog: Watchdog,
}

impl Gateway {
    fn spawn(route: &str) -> Gateway {
        let dir = fixtures();
        let mut child = binary(env!("CARGO_BIN_EXE_flashgate"))
            .args(["--listen", "127.0.0.1:0", "--policy-listen", "off"])
            .args(["--route", route])
            .arg("--web-dir")
            .arg(dir.path().join("web"))
            .arg("--assets-dir")
            .arg(dir.path().join("assets"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        // Reads its log to the end, so that it never waits on a full pipe.
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line
                    .contains("listener=main")
                    .then(|| line.split("addr=").nth(1))
                {
                    let addr = addr.and_then(|a| a.split_whitespace().next()).unwrap();
                    let _ = tx.send(addr.parse::<SocketAddr>().unwrap());
                }
            }
        });
        let main = rx.recv_timeout(WAIT).expect("a listening line");
        Gateway {
            child,
            main,
            _dir: dir,
            _watchdog: Watchdog::start(),
        }
    }

    /// Its resident memory, in bytes.
    fn rss(&self) -> usize {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        let kib: usize = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        kib * 1024
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `count` stays the same for a second: what it came to.
async fn held_back(count: &AtomicUsize) -> usize {
    within("the writer to be held back", async {
        let mut last = (usize::MAX, 0);
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let now = count.load(Ordering::SeqCst);
            assert!(now < NEVER_HELD, "{now} bytes, and never held back");
            last = match now == last.0 {
                true if last.1 == 3 => return now,
                true => (now, last.1 + 1),
                false => (now, 0),
            };
        }
    })
    .await
}

#[tokio::test]
async fn a_client_that_stops_reading_holds_the_server_back_and_then_gets_every_byte() {
    // A server that writes as fast as it may, for as long as the client is there.
    let written = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (count, done) = (written.clone(), stop.clone());
    let (addr, _) = server(move |mut tcp| {
        let (count, done) = (count.clone(), done.clone());
        async move {
            let (mut bytes, mut chunk) = (Bytes::new(SEED), vec![0u8; 64 << 10]);
            while !done.load(Ordering::SeqCst) {
                bytes.fill(&mut chunk);
                if tcp.write_all(&chunk).await.is_err() {
                    return;
                }
                count.fetch_add(chunk.len(), Ordering::SeqCst);
            }
        }
    })
    .await;
    let gw = Gateway::spawn(&format!("/tcp=tcp://{addr}"));
    let before = gw.rss();
    // The handshake, then nothing read.
    let mut client = raw_ws_to(gw.main, "/tcp").await;
    let held = held_back(&written).await;
    let grown = gw.rss().saturating_sub(before);
    eprintln!(
        "client not reading: the server wrote {held} bytes; the gateway grew by {grown} bytes"
    );
    assert!(held < MAX_IN_FLIGHT, "the server wrote {held} bytes");
    assert!(grown < MAX_GROWTH, "the gateway grew by {grown} bytes");

    // Reading again: everything the server wrote, in order, and more after it.
    let mut check = Checker::new(SEED);
    while check.seen < held + 4 * MIB {
        match server_frame(&mut client).await {
            (0x2, payload) => check.check(&payload),
            (0x9, _) => {}
            (opcode, _) => panic!("opcode {opcode} after {} bytes", check.seen),
        }
    }
    stop.store(true, Ordering::SeqCst);
}

#[tokio::test]
async fn a_server_that_stops_reading_holds_the_client_back_and_then_gets_every_byte() {
    // A server that reads nothing until told how much to read, then checks it.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (go, target) = tokio::sync::oneshot::channel::<usize>();
    let upstream = tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        let len = target.await.unwrap();
        let (mut check, mut chunk) = (Checker::new(SEED), vec![0u8; 64 << 10]);
        while check.seen < len {
            let n = tcp.read(&mut chunk).await.unwrap();
            assert!(
                n > 0,
                "the gateway ended the connection after {}",
                check.seen
            );
            check.check(&chunk[..n]);
        }
        check.seen
    });
    let gw = Gateway::spawn(&format!("/tcp=tcp://{addr}"));
    let before = gw.rss();
    let mut client = raw_ws_to(gw.main, "/tcp").await;

    // Binary messages of 64 KiB as fast as they go, until a write waits for a second.
    const SIZE: usize = 64 << 10;
    let mut bytes = Bytes::new(SEED);
    let (mut frame, mut at, mut queued) = (Vec::new(), 0, 0);
    loop {
        if at == frame.len() {
            assert!(queued < NEVER_HELD, "{queued} bytes, and never held back");
            frame = client_frame(true, 0x2, &bytes.take(SIZE));
            (at, queued) = (0, queued + SIZE);
        }
        match tokio::time::timeout(Duration::from_secs(1), client.write(&frame[at..])).await {
            Ok(written) => at += written.unwrap(),
            Err(_) => break,
        }
    }
    let held = queued - SIZE + at * SIZE / frame.len();
    let grown = gw.rss().saturating_sub(before);
    eprintln!(
        "server not reading: the client got {held} bytes off; the gateway grew by {grown} bytes"
    );
    assert!(held < MAX_IN_FLIGHT, "the client got {held} bytes off");
    assert!(grown < MAX_GROWTH, "the gateway grew by {grown} bytes");

    // The server reads again: all of it, in order, and more after it.
    let more = 64;
    go.send(queued + more * SIZE).unwrap();
    within("the rest to be written", async {
        client.write_all(&frame[at..]).await.unwrap();
        for _ in 0..more {
            let frame = client_frame(true, 0x2, &bytes.take(SIZE));
            client.write_all(&frame).await.unwrap();
        }
    })
    .await;
    let read = within("the server to read everything", upstream).await;
    assert_eq!(read.unwrap(), queued + more * SIZE);
}

#[tokio::test]
async fn a_client_that_stops_reading_holds_a_websocket_server_back_and_then_gets_every_message() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    // A WebSocket server that sends 64 KiB binary messages as fast as it may.
    let sent = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (count, done) = (sent.clone(), stop.clone());
    let (addr, _) = server(move |tcp| {
        let (count, done) = (count.clone(), done.clone());
        async move {
            let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                return;
            };
            let mut bytes = Bytes::new(SEED);
            while !done.load(Ordering::SeqCst) {
                let message = Message::binary(bytes.take(64 << 10));
                if ws.send(message).await.is_err() {
                    return;
                }
                count.fetch_add(64 << 10, Ordering::SeqCst);
            }
        }
    })
    .await;
    let gw = Gateway::spawn(&format!("/ws=ws://{addr}/"));
    let before = gw.rss();
    let mut client = raw_ws_to(gw.main, "/ws").await;
    let held = held_back(&sent).await;
    let grown = gw.rss().saturating_sub(before);
    eprintln!(
        "client not reading: the WebSocket server sent {held} bytes; the gateway grew by {grown} bytes"
    );
    assert!(held < MAX_IN_FLIGHT, "the server sent {held} bytes");
    assert!(grown < MAX_GROWTH, "the gateway grew by {grown} bytes");

    // Reading again: every message the server sent, in order, and more after them.
    let mut check = Checker::new(SEED);
    while check.seen < held + 4 * MIB {
        match server_frame(&mut client).await {
            (0x2, payload) => {
                assert_eq!(payload.len(), 64 << 10, "one message for one");
                check.check(&payload);
            }
            (0x9, _) => {}
            (opcode, _) => panic!("opcode {opcode} after {} bytes", check.seen),
        }
    }
    stop.store(true, Ordering::SeqCst);
}
