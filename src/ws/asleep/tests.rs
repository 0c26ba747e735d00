use super::*;
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use crate::session::Delivery;

fn frames(delivery: &Delivery, text: &'static str) -> Vec<u8> {
    let mut out = Vec::new();
    delivery.frame(&[Payload::Text(text.into())], &mut out);
    out
}

/// A connected pair of real sockets on `listener`: (the client's end, the gateway's,
/// non-blocking).
fn pair(listener: &TcpListener) -> (TcpStream, TcpStream) {
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (ours, _) = listener.accept().unwrap();
    ours.set_nonblocking(true).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    (client, ours)
}

/// A connection that wakes (or is lost) takes its socket out of its bed while a room may
/// still hold its key. What the room writes then must reach no one: were the room to write
/// to a descriptor number, the next socket opened would get that number, and the room
/// would write one client's messages into another's connection.
#[test]
fn a_room_never_writes_into_another_clients_socket() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let beds = Arc::new(Beds::default());
    let (mut first, ours) = pair(&listener);
    let (bed, fd) = beds.put(ours).unwrap();
    let room = Delivery::new(beds.clone(), bed, Framing::Rfc6455);
    let frame = frames(&room, "for the first client only");
    assert_eq!(room.deliver(&frame), Delivered::All);
    let mut got = vec![0; frame.len()];
    first.read_exact(&mut got).unwrap();
    assert_eq!(got, frame);
    // The connection leaves its bed, and is closed.
    let (socket, owed) = beds.take(bed).unwrap();
    assert!(owed.is_empty());
    drop(socket);
    // The next connection gets the freed descriptor number, and maybe the same bed.
    let (mut second, theirs) = pair(&listener);
    let reused = [second.as_raw_fd(), theirs.as_raw_fd()].contains(&fd);
    let (again, _) = beds.put(theirs).unwrap();
    // The room's stale key reaches no one.
    assert_eq!(room.deliver(&frame), Delivered::Gone);
    second
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut stray = [0; 1];
    assert!(second.read(&mut stray).is_err(), "the new client got data");
    // A key for the new bed does reach the new client.
    let fresh = Delivery::new(beds.clone(), again, Framing::Rfc6455);
    assert_eq!(fresh.deliver(&frame), Delivered::All);
    second.read_exact(&mut got).unwrap();
    assert!(
        reused || again != bed,
        "nothing was reused: the test proved little"
    );
}

#[test]
fn a_full_socket_takes_what_fits_and_the_rest_is_owed() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let beds = Arc::new(Beds::default());
    let (_client, ours) = pair(&listener);
    let (bed, _) = beds.put(ours).unwrap();
    let delivery = Delivery::new(beds.clone(), bed, Framing::Rfc6455);
    let big = vec![7u8; 64 << 20];
    assert_eq!(delivery.deliver(&big), Delivered::Part);
    assert!(
        !beds.registered(bed, 3),
        "a wake was asked for: it must stay awake"
    );
    let (_, owed) = beds.take(bed).unwrap();
    assert!(
        !owed.is_empty() && owed.len() < big.len(),
        "owed {}",
        owed.len()
    );
    assert!(big.ends_with(&owed));
}

#[test]
fn a_full_write_after_registration_rings_the_alarm_with_its_keys() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let beds = Arc::new(Beds::default());
    let (_client, ours) = pair(&listener);
    let (bed, _) = beds.put(ours).unwrap();
    assert!(beds.registered(bed, 5));
    let delivery = Delivery::new(beds.clone(), bed, Framing::Rfc6455Text);
    assert_eq!(delivery.deliver(&vec![1u8; 64 << 20]), Delivered::Part);
    assert_eq!(beds.asked(), [(5, bed)]);
}

#[test]
fn text_only_framing_turns_binary_into_text() {
    let beds = Arc::new(Beds::default());
    let delivery = Delivery::new(beds, 0, Framing::Rfc6455Text);
    let mut out = Vec::new();
    delivery.frame(
        &[Payload::Binary(bytes::Bytes::from_static(&[0, 1]))],
        &mut out,
    );
    assert_eq!(out[0], 0x81, "a text frame");
}

#[test]
fn hixie_76_sleepers_get_hixie_text_frames_and_binary_as_text() {
    let beds = Beds::default();
    let mut out = Vec::new();
    let messages = [
        Payload::Text("h\u{e9}".into()),
        Payload::Binary(bytes::Bytes::from_static(&[0, 1, 2, 0xFF])),
    ];
    beds.frame(Framing::Hixie76, &messages, &mut out);
    let want = [
        &b"\x00h\xc3\xa9\xff"[..],
        b"\x00data:application/octet-stream;base64,AAEC/w==\xff",
    ]
    .concat();
    assert_eq!(out, want);
}
