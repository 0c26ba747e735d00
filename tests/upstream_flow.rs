//! Bytes in bulk through the `tcp://` relay, against real servers started here: 50 MB each
//! way byte-exact; a server that ends or resets its connection in the middle, and one that
//! reads slowly, with every client family.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

use common::family::{FAMILIES, Got, assert_close};
use common::upstream::{Bytes, Checker, Record, server, tcp_echo};
use common::*;

/// How much goes through in bulk.
const TOTAL: usize = 50 << 20;

/// What bounds a bulk transfer: a debug build on a busy machine, short of the watchdog.
const BULK: Duration = Duration::from_secs(100);

const SEED: u64 = 0x5eed_f1a5_6a7e;

/// Reads binary messages off `stream` (the client's half) until `len` bytes have come,
/// each checked against the stream of `seed`.
async fn read_checked<S>(stream: &mut S, seed: u64, len: usize)
where
    S: futures_util::Stream<Item = tungstenite::Result<Message>> + Unpin,
{
    let mut check = Checker::new(seed);
    while check.seen < len {
        match stream.next().await {
            Some(Ok(Message::Binary(bytes))) => check.check(&bytes),
            Some(Ok(Message::Ping(_))) => {}
            other => panic!("after {} bytes: {other:?}", check.seen),
        }
    }
    assert_eq!(check.seen, len, "no more than was sent");
}

#[tokio::test]
async fn fifty_megabytes_in_messages_of_every_size_come_back_from_a_tcp_echo_byte_exact() {
    let (echo, _) = tcp_echo().await;
    let gw = TestGateway::start(&["--route", &format!("/tcp=tcp://{echo}")]).await;
    let (mut sink, mut stream) = gw.ws("/tcp").await.split();
    let writer = async {
        let (mut bytes, mut sizes, mut sent) = (Bytes::new(SEED), Bytes::new(7), 0);
        while sent < TOTAL {
            // 1 B to 64 KiB, as many small ones as large ones.
            let size = 1 << (sizes.next_u64() % 17);
            let size = (size + (sizes.next_u64() as usize % size)).min(64 << 10);
            let size = size.min(TOTAL - sent);
            sink.send(Message::binary(bytes.take(size))).await.unwrap();
            sent += size;
        }
    };
    let both = async { tokio::join!(writer, read_checked(&mut stream, SEED, TOTAL)) };
    tokio::time::timeout(BULK, both)
        .await
        .expect("50 MB there and back within the bound");
}

#[tokio::test]
async fn fifty_megabytes_from_a_tcp_server_reach_the_client_byte_exact_then_1000() {
    let (addr, _) = server(|mut tcp| async move {
        let mut bytes = Bytes::new(SEED);
        let mut left = TOTAL;
        while left > 0 {
            let chunk = bytes.take(left.min(256 << 10));
            tcp.write_all(&chunk).await.unwrap();
            left -= chunk.len();
        }
    })
    .await;
    let gw = TestGateway::start(&["--route", &format!("/tcp=tcp://{addr}")]).await;
    let mut ws = gw.ws("/tcp").await;
    tokio::time::timeout(BULK, read_checked(&mut ws, SEED, TOTAL))
        .await
        .expect("50 MB within the bound");
    // The server ended its connection once it had sent everything: a normal close.
    let (frame, messages) = close_frame(&mut ws).await;
    assert_eq!(messages, 0, "nothing past what the server sent");
    let frame = frame.expect("a close frame");
    assert_eq!(u16::from(frame.code), 1000);
    assert_eq!(frame.reason.as_str(), "target closed");
}

#[tokio::test]
async fn a_server_that_ends_mid_stream_gives_every_family_all_it_sent_then_1000() {
    // A server that, once it has read a byte, sends 256 KiB and ends its connection: past
    // a streaming SockJS response's limit, in many reads.
    const LEN: usize = 256 << 10;
    let (addr, _) = server(|mut tcp| async move {
        let mut byte = [0u8; 1];
        tcp.read_exact(&mut byte).await.unwrap();
        tcp.write_all(&Bytes::new(SEED).take(LEN)).await.unwrap();
    })
    .await;
    let gw = TestGateway::start(&["--route", &format!("/tcp=tcp://{addr}")]).await;
    let clients = FAMILIES.map(|family| async move {
        let mut client = family.connect(gw.main, "/tcp").await;
        client.send("x").await;
        let mut check = Checker::new(SEED);
        while check.seen < LEN {
            check.check(&client.recv_bytes().await);
        }
        assert_eq!(check.seen, LEN, "{family:?}: no more than was sent");
        let Got::Closed(code, reason) = client.recv().await else {
            panic!("{family:?}: the close, next")
        };
        assert_close(family, (code, reason), 1000, "target closed");
    });
    futures_util::future::join_all(clients).await;
}

#[tokio::test]
async fn a_server_that_resets_mid_stream_closes_every_family_with_1011_and_why() {
    // A server that, once it has read a byte, sends the start of a message, then resets.
    let (addr, _) = server(|mut tcp| async move {
        let mut byte = [0u8; 1];
        tcp.read_exact(&mut byte).await.unwrap();
        tcp.write_all(b"partial").await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let std = tcp.into_std().unwrap();
        socket2::SockRef::from(&std)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(std); // RST, not FIN
    })
    .await;
    let gw = TestGateway::start(&["--route", &format!("/tcp=tcp://{addr}")]).await;
    let clients = FAMILIES.map(|family| async move {
        let mut client = family.connect(gw.main, "/tcp").await;
        client.send("x").await;
        // What came before the reset, if anything, then the close.
        let mut got = Vec::new();
        let close = loop {
            match client.recv().await {
                Got::Closed(code, reason) => break (code, reason),
                message => got.extend(client.bytes_of(message)),
            }
        };
        assert!(b"partial".starts_with(&got), "{family:?}: {got:?}");
        assert_close(family, close, 1011, "reset");
    });
    futures_util::future::join_all(clients).await;
}

/// A server that reads 16 KiB every 50 ms, records it, and says `done` once it has read
/// `len` bytes.
async fn slow_reader(len: usize) -> (std::net::SocketAddr, Record) {
    let record = Record::default();
    let rec = record.clone();
    let (addr, _) = server(move |mut tcp| {
        let rec = rec.clone();
        async move {
            let (mut chunk, mut read) = (vec![0u8; 16 << 10], 0);
            while read < len {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let n = tcp.read(&mut chunk).await.unwrap();
                assert!(n > 0, "the gateway ended the connection");
                rec.push(&chunk[..n]);
                read += n;
            }
            tcp.write_all(b"done").await.unwrap();
            let _ = tcp.read(&mut chunk).await;
        }
    })
    .await;
    (addr, record)
}

#[tokio::test]
async fn a_server_reading_16_kib_every_50_ms_gets_every_familys_messages_in_order() {
    // 32 numbered messages of 8 KiB: 256 KiB, about a second at the server's pace.
    let messages: Vec<String> = (0..32)
        .map(|i| format!("{i:04}:{}", "é".repeat(4093)))
        .collect();
    let len: usize = messages.iter().map(String::len).sum();
    let runs = FAMILIES.map(|family| {
        let messages = &messages;
        async move {
            let (addr, record) = slow_reader(len).await;
            let gw = TestGateway::start(&["--route", &format!("/slow=tcp://{addr}")]).await;
            let mut client = family.connect(gw.main, "/slow").await;
            for message in messages {
                client.send(message).await;
            }
            assert_eq!(client.recv_len(4).await, b"done", "{family:?}");
            assert_eq!(record.bytes(), messages.concat().as_bytes(), "{family:?}");
        }
    });
    futures_util::future::join_all(runs).await;
}

#[tokio::test]
async fn a_client_sending_more_than_the_way_holds_waits_for_a_slow_server() {
    // 32 MiB to a server that reads 64 KiB every 10 ms: more than the sockets on the way
    // hold, so the client can only finish once the server has read most of it.
    const LEN: usize = 32 << 20;
    let read = Arc::new(AtomicUsize::new(0));
    let count = read.clone();
    let (addr, _) = server(move |mut tcp| {
        let count = count.clone();
        async move {
            let (mut check, mut chunk) = (Checker::new(SEED), vec![0u8; 64 << 10]);
            while check.seen < LEN {
                tokio::time::sleep(Duration::from_millis(10)).await;
                let n = tcp.read(&mut chunk).await.unwrap();
                assert!(n > 0, "the gateway ended the connection");
                check.check(&chunk[..n]);
                count.store(check.seen, Ordering::SeqCst);
            }
            tcp.write_all(b"done").await.unwrap();
            let _ = tcp.read(&mut chunk).await;
        }
    })
    .await;
    let gw = TestGateway::start(&["--route", &format!("/slow=tcp://{addr}")]).await;
    let mut ws = gw.ws("/slow").await;
    let mut bytes = Bytes::new(SEED);
    let sending = async {
        for _ in 0..LEN / (64 << 10) {
            ws.send(Message::binary(bytes.take(64 << 10)))
                .await
                .unwrap();
        }
    };
    tokio::time::timeout(BULK, sending)
        .await
        .expect("sent within the bound");
    let read_when_sent = read.load(Ordering::SeqCst);
    eprintln!("the slow server had read {read_when_sent} of {LEN} bytes when the client was done");
    // What the way holds is far less than 24 MiB (see tests/upstream_memory.rs).
    assert!(read_when_sent >= LEN - (24 << 20), "{read_when_sent}");
    assert_eq!(binary_until(&mut ws, 4).await, b"done");
}

/// Binary messages from `ws` until `len` bytes have come.
async fn binary_until(ws: &mut Ws, len: usize) -> Vec<u8> {
    let mut got = Vec::new();
    while got.len() < len {
        match next_message(ws).await {
            Message::Binary(bytes) => got.extend_from_slice(&bytes),
            other => panic!("expected binary, got {other:?}"),
        }
    }
    got
}
