//! Busy broadcast rooms, as heavy users make them: many members publishing at once, members
//! that read as fast as they can, and members that stop reading.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

const MEMBERS: usize = 100;
const EACH: usize = 200;

/// The gateway on a runtime (and threads) of its own, as a separate process would be: the
/// clients' work does not slow it down, so they can flood it.
struct Apart {
    main: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    _dir: tempfile::TempDir,
    _watchdog: Watchdog,
}

impl Apart {
    fn start() -> Apart {
        let dir = fixtures();
        let config = config(dir.path(), &[]).unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (bound, main) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                bound.send(listener.local_addr().unwrap()).unwrap();
                let listeners = flashgate::Listeners {
                    main: listener,
                    policy: None,
                    metrics: None,
                };
                let stop = async move {
                    let _ = stopped.await;
                };
                flashgate::run(listeners, config, stop).await.unwrap();
            });
        });
        Apart {
            main: main.recv().unwrap(),
            stop: Some(stop),
            thread: Some(thread),
            _dir: dir,
            _watchdog: Watchdog::start(),
        }
    }
}

impl Drop for Apart {
    fn drop(&mut self) {
        let _ = self.stop.take().unwrap().send(());
        let _ = self.thread.take().unwrap().join();
    }
}

/// A client whose socket has an 8 MiB receive buffer, as a client reading a busy room sets.
async fn big_buffer_client(gw: &Apart, path: &str) -> WsRaw {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(8 << 20).unwrap();
    socket.connect(&gw.main.into()).unwrap();
    socket.set_nonblocking(true).unwrap();
    let tcp = tokio::net::TcpStream::from_std(socket.into()).unwrap();
    let url = format!("ws://{}{path}", gw.main);
    let (ws, _) = within("handshake", tokio_tungstenite::client_async(url, tcp))
        .await
        .unwrap();
    ws
}

type WsRaw = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// Sends this member's `EACH` numbered messages of `burst` while reading the room's
/// `MEMBERS * EACH`; checks each sender's messages arrive once each, in order.
async fn burst(ws: &mut WsRaw, me: usize, burst: usize) {
    let (mut sink, mut stream) = ws.split();
    let writer = async {
        for seq in 0..EACH {
            sink.feed(Message::text(format!("{burst}:{me}:{seq}")))
                .await
                .unwrap();
        }
        sink.flush().await.unwrap();
    };
    let reader = async {
        let mut next: HashMap<usize, usize> = HashMap::new();
        for _ in 0..MEMBERS * EACH {
            let message = match stream.next().await {
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(Message::Ping(_))) => continue,
                other => panic!("member {me}, burst {burst}: {other:?}"),
            };
            let mut parts = message.split(':').map(|p| p.parse::<usize>().unwrap());
            let (b, sender, seq) = (
                parts.next().unwrap(),
                parts.next().unwrap(),
                parts.next().unwrap(),
            );
            assert_eq!(b, burst, "member {me}: a message of another burst");
            let expected = next.entry(sender).or_default();
            assert_eq!(
                seq, *expected,
                "member {me}: {sender}'s messages out of order"
            );
            *expected += 1;
        }
        assert_eq!(next.len(), MEMBERS);
        assert!(next.values().all(|&n| n == EACH));
    };
    // A bound for a hang, not a timing goal: 20,000 messages to each of 100 members.
    let bound = Duration::from_secs(120);
    let both = async { tokio::join!(writer, reader) };
    tokio::time::timeout(bound, both)
        .await
        .expect("the burst ends");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_members_publishing_at_once_each_get_every_message_once_in_order() {
    // Default settings.
    let gw = Apart::start();
    let mut members = Vec::new();
    for _ in 0..MEMBERS {
        members.push(big_buffer_client(&gw, "/chat?room=busy").await);
    }
    for round in 0..2 {
        let tasks: Vec<_> = members
            .into_iter()
            .enumerate()
            .map(|(me, mut ws)| {
                tokio::spawn(async move {
                    burst(&mut ws, me, round).await;
                    ws
                })
            })
            .collect();
        members = Vec::new();
        for task in tasks {
            members.push(task.await.expect("every member got every message"));
        }
        // Quiet for longer than --hibernate-after (1 s): the next burst finds the members
        // asleep, written to by the room directly until they wake.
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
}
