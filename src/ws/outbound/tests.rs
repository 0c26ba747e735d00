use bytes::BytesMut;

use super::Outbound;
use crate::codec::{self, opcode};

/// An unmasked frame, as a server sends it.
fn frame(fin: bool, op: u8, body: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    codec::encode_raw(&mut out, op, body);
    if !fin {
        out[0] &= 0x7f;
    }
    out.to_vec()
}

/// A close frame with `code` and `reason`.
fn close(code: u16, reason: &str) -> Vec<u8> {
    let mut out = BytesMut::new();
    codec::encode_close(&mut out, code, reason);
    out.to_vec()
}

/// What passes of `pieces`, fed one after the other, and how it ended.
fn pass(max: u64, pieces: &[&[u8]]) -> (Vec<u8>, Result<(), &'static str>) {
    let mut stream = Outbound::new(max);
    let mut out = BytesMut::new();
    for piece in pieces {
        if let Err(why) = stream.pass(piece, &mut out) {
            return (out.to_vec(), Err(why));
        }
    }
    (out.to_vec(), Ok(()))
}

/// A server's stream of every kind of frame, each length form included.
fn stream() -> Vec<u8> {
    let big = vec![b'x'; 70_000];
    [
        frame(true, opcode::TEXT, b"hello"),
        frame(false, opcode::BINARY, &[1; 126]),
        frame(true, opcode::PING, b"are you there"),
        frame(true, opcode::CONTINUATION, &big),
        frame(true, opcode::TEXT, b""),
        frame(true, opcode::PONG, b""),
        close(1000, "bye"),
    ]
    .concat()
}

#[test]
fn frames_pass_as_they_are_however_the_reads_cut_them() {
    let all = stream();
    let (whole, ended) = pass(1 << 20, &[&all]);
    assert_eq!(ended, Ok(()));
    assert_eq!(whole, all);
    for cut in (0..all.len()).step_by(7).chain([1, 2, 3, 9, 10, 11]) {
        let (a, b) = all.split_at(cut);
        assert_eq!(
            pass(1 << 20, &[a, b]),
            (all.clone(), Ok(())),
            "cut at {cut}"
        );
    }
    // Cut short: what passed is a prefix, a header's start held back until it is whole.
    for end in [1, 8, 9, 150, 300] {
        let bytes: Vec<&[u8]> = all[..end].chunks(1).collect();
        let (out, ended) = pass(1 << 20, &bytes);
        assert_eq!(ended, Ok(()));
        assert!(all.starts_with(&out) && out.len() <= end, "ended at {end}");
    }
}

#[test]
fn a_frame_cut_byte_by_byte_passes_whole() {
    let all = [frame(true, opcode::BINARY, &[7; 300]), close(4000, "done")].concat();
    let bytes: Vec<&[u8]> = all.chunks(1).collect();
    assert_eq!(pass(1000, &bytes), (all.clone(), Ok(())));
}

#[test]
fn the_boundary_is_known_between_and_inside_frames() {
    let mut stream = Outbound::new(100);
    let mut out = BytesMut::new();
    let text = frame(true, opcode::TEXT, b"abcdef");
    assert!(stream.at_boundary());
    stream.pass(&text[..4], &mut out).unwrap();
    assert!(!stream.at_boundary(), "inside a data frame");
    stream.pass(&text[4..], &mut out).unwrap();
    assert!(stream.at_boundary());
    let ping = frame(true, opcode::PING, b"p");
    stream.pass(&ping[..2], &mut out).unwrap();
    assert!(
        stream.at_boundary(),
        "a control frame is passed only once whole"
    );
    assert_eq!(out.len(), text.len());
    stream.pass(&ping[2..], &mut out).unwrap();
    assert!(!stream.closed());
    assert_eq!(stream.close_code(), None);
    stream.pass(&close(1001, ""), &mut out).unwrap();
    assert!(stream.closed());
    assert_eq!(stream.close_code(), Some(1001));
    assert_eq!(
        stream.pass(b"\x81\x00", &mut out),
        Err("frames after its close frame")
    );
}

#[test]
fn what_a_client_could_not_take_ends_the_stream_before_its_frame() {
    let hello = frame(true, opcode::TEXT, b"hello");
    let refused: &[(Vec<u8>, &str)] = &[
        (
            codec::client_frame(true, opcode::TEXT, b"hi", [1, 2, 3, 4]),
            "masked",
        ),
        ([vec![0xc1, 0x00]].concat(), "reserved bits"),
        (frame(true, opcode::CONTINUATION, b"x"), "continuation"),
        (frame(true, 0x3, b""), "unknown opcode"),
        (frame(false, opcode::PING, b""), "control frame"),
        (
            [vec![0x89, 126, 0, 126], vec![0; 126]].concat(),
            "control frame",
        ),
        (frame(true, opcode::BINARY, &[0; 101]), "largest size"),
        (close(1005, ""), "close code"),
        (vec![0x88, 0x01, 0x03], "one-byte body"),
        (
            [vec![0x88, 0x04, 0x03, 0xe8], vec![0xff, 0xfe]].concat(),
            "not valid UTF-8",
        ),
    ];
    for (bad, why) in refused {
        let (out, ended) = pass(100, &[&hello, bad]);
        assert_eq!(
            out, hello,
            "{why}: what came before passes, nothing of the bad frame"
        );
        let said = ended.expect_err(why);
        assert!(said.contains(why), "{said:?} says {why:?}");
    }
    // A new message inside a fragmented one.
    let first = frame(false, opcode::TEXT, b"a");
    let (out, ended) = pass(100, &[&first, &hello]);
    assert_eq!(out, first);
    assert!(ended.unwrap_err().contains("inside a fragmented"));
    // Fragments count together against the largest size.
    let (out, ended) = pass(
        100,
        &[
            &frame(false, opcode::BINARY, &[0; 60]),
            &frame(true, 0, &[0; 41]),
        ],
    );
    assert_eq!(out.len(), 62);
    assert!(ended.unwrap_err().contains("largest size"));
}

#[test]
fn a_message_of_exactly_the_largest_size_passes() {
    let parts = [
        frame(false, opcode::TEXT, &[b'a'; 60]),
        frame(true, 0, &[b'b'; 40]),
    ]
    .concat();
    assert_eq!(pass(100, &[&parts]), (parts.clone(), Ok(())));
}
