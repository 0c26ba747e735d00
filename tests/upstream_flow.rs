//! Bytes in bulk through the `tcp://` relay, against real servers started here: 50 MB each
//! way byte-exact, a server that ends or resets its connection in the middle, and one that
//! reads slowly.

mod common;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

use common::family::{FAMILIES, Family, Sockjs};
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
    let clients = FAMILIES.iter().map(|&family| async move {
        let mut client = family.connect(gw.main, "/tcp").await;
        client.send("x").await;
        let mut got = Vec::new();
        let close = loop {
            match client.recv().await {
                common::family::Got::Closed(code, reason) => break (code, reason),
                message => got.extend(client.bytes_of(message)),
            }
        };
        assert!(b"partial".starts_with(&got), "{family:?}: {got:?}");
        (family, close)
    });
    for (family, (code, reason)) in futures_util::future::join_all(clients).await {
        if family == Family::Hixie76 {
            assert_eq!((code, reason.as_str()), (None, ""));
            continue;
        }
        assert_eq!(code, Some(1011), "{family:?}: {reason}");
        assert!(reason.contains("reset"), "{family:?}: {reason}");
    }
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
async fn a_slow_server_slows_its_client_and_gets_every_message_in_order() {
    // 32 numbered messages of 8 KiB: 256 KiB, some seconds at the server's pace.
    let messages: Vec<String> = (0..32)
        .map(|i| format!("{i:04}:{}", "é".repeat(4093)))
        .collect();
    let len: usize = messages.iter().map(String::len).sum();
    let families = [
        Family::NativeBinary,
        Family::Hixie76,
        Family::Sockjs(Sockjs::XhrStreaming),
        Family::Sockjs(Sockjs::WebSocket),
    ];
    let runs = families.map(|family| {
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
