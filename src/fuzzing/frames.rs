//! The RFC 6455 frame targets: the byte-stream decoder of a client's frames, the check of a
//! server's frames on their way to the client, and the frame-boundary tracker.

use bytes::BytesMut;

use super::{cut, pieces};
use crate::session::Intake;
use crate::ws::boundary::Boundary;
use crate::ws::inbound::{End, Inbound};

/// The byte-stream frame decoder (`ws::inbound::Inbound::decode`), with the intake the
/// first byte's high bits choose (text taken, NUL-ended messages, a size limit, frames kept
/// as they are).
///
/// Asserts: the stream decoded in one piece, a byte at a time, or cut as the input says
/// gives the same payload bytes, the same pongs and the same end; a call never yields more
/// payload than it was given (a NUL, or a header completed, apart), nor anything after the
/// end; and the replies are pong frames. Frames kept as they are say, decoded again, what
/// the client's frames said, up to the end.
pub fn inbound(data: &[u8]) {
    let bits = data.first().map_or(0, |b| b >> 3);
    let intake = Intake {
        text: bits & 1 != 0,
        nul_ended: bits & 2 != 0,
        max_message: [u64::MAX, 0, 5, 200][usize::from(bits >> 2 & 3)],
        frames: bits & 16 != 0,
    };
    let (pattern, stream) = cut(data);
    let whole = decode(intake, &[stream]);
    let bytewise: Vec<&[u8]> = stream.chunks(1).collect();
    let same = |cut: (Vec<u8>, Vec<u8>, Option<End>), how: &str| {
        // Of a message refused by its payload, what came in earlier reads has passed (and
        // of the read that refused it, nothing): one read passes the least.
        if matches!(whole.2, Some(End::Failed(..))) {
            assert_eq!((&cut.1, &cut.2), (&whole.1, &whole.2), "{how}");
            assert!(
                cut.0.starts_with(&whole.0),
                "{how}: {:x?} after {:x?}",
                cut.0,
                whole.0
            );
        } else {
            assert_eq!(cut, whole, "{how}");
        }
    };
    same(decode(intake, &bytewise), "a byte at a time");
    same(
        decode(intake, &pieces(stream, &pattern)),
        &format!("cut as {pattern:?}"),
    );
    let (data, replies, _) = &whole;
    assert!(data.len() <= stream.len());
    let mut replies = replies.as_slice();
    while let [0x8a, len, rest @ ..] = replies {
        let len = usize::from(*len);
        assert!(len <= 125 && len <= rest.len(), "a pong of {len} bytes");
        replies = &rest[len..];
    }
    assert!(replies.is_empty(), "not a pong: {replies:x?}");
    if intake.frames {
        assert!(
            whole.1.is_empty(),
            "frames kept as they are are the server's to answer"
        );
        let plain = Intake {
            frames: false,
            ..intake
        };
        let (said, pongs, end) = decode(plain, &[stream]);
        let (again, pongs_again, _) = decode(plain, &[&whole.0]);
        match end {
            // The frames kept stop before a frame refused by its header.
            Some(End::Failed(..)) => assert!(said.starts_with(&again) || again.starts_with(&said)),
            _ => assert_eq!((again, pongs_again), (said, pongs)),
        }
    }
}

/// A WebSocket server's frames checked on their way to the client
/// (`ws::outbound::Outbound::pass`), with a size limit the first byte chooses.
///
/// Asserts: passed in one piece, a byte at a time, or cut as the input says, the same bytes
/// pass with the same outcome; no more passes than came; what passed passes again unchanged;
/// and after a close frame nothing passes.
pub fn outbound(data: &[u8]) {
    use crate::ws::outbound::Outbound;
    let max = [u64::MAX, 0, 5, 200][usize::from(data.first().map_or(0, |b| b >> 6))];
    let pass = |pieces: &[&[u8]]| {
        let (mut stream, mut out) = (Outbound::new(max), BytesMut::new());
        for piece in pieces {
            if let Err(why) = stream.pass(piece, &mut out) {
                return (out.to_vec(), Err(why), stream.closed());
            }
        }
        (out.to_vec(), Ok(()), stream.closed())
    };
    let (pattern, stream) = cut(data);
    let whole = pass(&[stream]);
    let bytewise: Vec<&[u8]> = stream.chunks(1).collect();
    assert_eq!(pass(&bytewise), whole, "a byte at a time");
    assert_eq!(pass(&pieces(stream, &pattern)), whole, "cut as {pattern:?}");
    let (passed, _, closed) = &whole;
    assert!(passed.len() <= stream.len());
    let again = pass(&[passed]);
    assert_eq!((&again.0, again.1, again.2), (passed, Ok(()), *closed));
    if *closed {
        let after = pass(&[passed, b"\x81\x00"]);
        assert_eq!(
            (&after.0, after.2),
            (passed, true),
            "nothing after the close"
        );
        assert!(after.1.is_err());
    }
}

/// Decodes `pieces` in turn: the payload, the replies and the end.
fn decode(intake: Intake, pieces: &[&[u8]]) -> (Vec<u8>, Vec<u8>, Option<End>) {
    let (mut inbound, mut data, mut replies) = (Inbound::new(intake), BytesMut::new(), Vec::new());
    for piece in pieces {
        let mut buf = piece.to_vec();
        let (before, had) = (replies.len(), data.len());
        let end = inbound.decode(&mut buf, &mut data, &mut replies);
        // A NUL ends a message, and a frame takes at least six bytes.
        let (n, most) = (data.len() - had, piece.len() + piece.len() / 6 + 1);
        let most = match (intake.frames, intake.nul_ended) {
            // A header, or a control frame, held back until whole.
            (true, _) => piece.len() + crate::codec::MAX_HEAD + 125,
            (false, true) => most,
            (false, false) => piece.len(),
        };
        assert!(n <= most, "{n} payload bytes out of {}", piece.len());
        assert!(replies.len() >= before, "replies were taken back");
        if end.is_some() {
            return (data.to_vec(), replies, end);
        }
    }
    (data.to_vec(), replies, None)
}

/// The frame-boundary tracker (`ws::boundary::Boundary::feed`).
///
/// Asserts: after every byte, `at_rest` says what a plain walk over whole frames says (the
/// end of a frame, and no fragmented message open); and fed in one piece or cut as the input
/// says, it says the same at the end of each piece.
pub fn boundary(data: &[u8]) {
    let (pattern, stream) = cut(data);
    let expected = rest_points(stream);
    let mut boundary = Boundary::default();
    let mut bytewise = vec![boundary.at_rest()];
    for byte in stream {
        boundary.feed(std::slice::from_ref(byte));
        bytewise.push(boundary.at_rest());
    }
    assert_eq!(bytewise, expected, "a byte at a time");

    let mut whole = Boundary::default();
    whole.feed(stream);
    assert_eq!(whole.at_rest(), expected[stream.len()], "in one piece");

    let (mut cut, mut at) = (Boundary::default(), 0);
    for piece in pieces(stream, &pattern) {
        cut.feed(piece);
        at += piece.len();
        assert_eq!(cut.at_rest(), expected[at], "cut as {pattern:?}, at {at}");
    }
}

/// For each prefix length of `stream`, whether it ends between messages: a walk over whole
/// frames, each header read where it lies.
fn rest_points(stream: &[u8]) -> Vec<bool> {
    let mut at_rest = vec![false; stream.len() + 1];
    at_rest[0] = true;
    let (mut at, mut fragmented) = (0usize, false);
    while let [first, second, rest @ ..] = &stream[at..] {
        let (fin, opcode) = (first & 0x80 != 0, first & 0x0f);
        let length_bytes = match second & 0x7f {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let mask = if second & 0x80 != 0 { 4 } else { 0 };
        let Some(length) = rest.get(..length_bytes) else {
            break;
        };
        if rest.len() < length_bytes + mask {
            break;
        }
        let payload = match length_bytes {
            0 => u64::from(second & 0x7f),
            _ => length.iter().fold(0u64, |n, &b| n << 8 | u64::from(b)),
        };
        match opcode {
            1 | 2 => fragmented = !fin,
            0 if fin => fragmented = false,
            _ => {}
        }
        let end = ((at + 2 + length_bytes + mask) as u64).saturating_add(payload);
        if end > stream.len() as u64 {
            break;
        }
        at = end as usize;
        at_rest[at] = !fragmented;
    }
    at_rest
}
