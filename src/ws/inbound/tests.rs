//! The decoder against frames cut every way, and what each intake refuses.

use super::*;

/// A client frame: `opcode`, `fin`, masked with a fixed mask.
fn frame(fin: bool, opcode: u8, body: &[u8]) -> Vec<u8> {
    codec::client_frame(fin, opcode, body, [0x37, 0xfa, 0x21, 0x3d])
}

/// Decodes `wire` cut into pieces of `piece` bytes: the payload, the replies, the end.
fn decode_in_pieces(wire: &[u8], piece: usize) -> (Vec<u8>, Vec<u8>, Option<End>) {
    decode_with(Intake::default(), wire, piece)
}

/// As [`decode_in_pieces`], for a stream that takes what `intake` says.
fn decode_with(intake: Intake, wire: &[u8], piece: usize) -> (Vec<u8>, Vec<u8>, Option<End>) {
    let (mut inbound, mut data, mut replies) = (Inbound::new(intake), BytesMut::new(), Vec::new());
    for chunk in wire.chunks(piece) {
        let mut buf = chunk.to_vec();
        if let Some(end) = inbound.decode(&mut buf, &mut data, &mut replies) {
            return (data.to_vec(), replies, Some(end));
        }
    }
    (data.to_vec(), replies, None)
}

fn bytes(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

#[test]
fn frames_of_every_length_encoding_arrive_whole_however_they_are_cut() {
    let bodies = [
        bytes(0),
        bytes(1),
        bytes(125),
        bytes(126),
        bytes(65535),
        bytes(65536),
    ];
    let wire: Vec<u8> = bodies.iter().flat_map(|b| frame(true, 2, b)).collect();
    let all: Vec<u8> = bodies.concat();
    for piece in [1, 2, 3, 5, 13, 14, 1000, wire.len()] {
        let (data, replies, end) = decode_in_pieces(&wire, piece);
        assert!(data == all, "cut into {piece}-byte pieces");
        assert_eq!((replies.len(), end), (0, None));
    }
}

#[test]
fn fragments_and_pings_between_them_keep_the_bytes_in_order() {
    let mut wire = frame(false, 2, b"hello ");
    wire.extend(frame(true, 9, b"are you there"));
    wire.extend(frame(false, 0, b"wide "));
    wire.extend(frame(true, 0xa, b""));
    wire.extend(frame(true, 0, b"world"));
    wire.extend(frame(true, 2, b"!"));
    for piece in [1, 4, 7, wire.len()] {
        let (data, replies, end) = decode_in_pieces(&wire, piece);
        assert_eq!(data, b"hello wide world!");
        assert_eq!(replies, [&[0x8a, 13][..], b"are you there"].concat());
        assert_eq!(end, None);
    }
}

#[test]
fn a_close_ends_the_stream_and_nothing_after_it_is_read() {
    let mut wire = frame(true, 2, b"last");
    wire.extend(frame(
        true,
        8,
        &[&1000u16.to_be_bytes()[..], b"bye"].concat(),
    ));
    wire.extend(frame(true, 2, b"ignored"));
    assert_eq!(
        decode_in_pieces(&wire, wire.len()),
        (b"last".to_vec(), vec![], Some(End::Closed(Some(1000))))
    );
    let bare = frame(true, 8, b"");
    assert_eq!(decode_in_pieces(&bare, 1).2, Some(End::Closed(None)));
}

#[test]
fn what_the_protocol_forbids_ends_with_the_code_that_says_why() {
    let unmasked = vec![0x82, 1, b'x'];
    let mut reserved = frame(true, 2, b"x");
    reserved[0] |= 0x40;
    let mut in_message = frame(false, 2, b"a");
    in_message.extend(frame(true, 2, b"b"));
    let long_ping = frame(true, 9, &[0; 126]);
    let cases: [(Vec<u8>, u16); 10] = [
        (unmasked, 1002),
        (reserved, 1002),
        (frame(true, 0, b"x"), 1002),
        (frame(true, 1, b"text"), 1003),
        (in_message, 1002),
        (frame(false, 9, b""), 1002),
        (long_ping, 1002),
        (frame(true, 3, b""), 1002),
        (frame(true, 8, &[3, 0xe8, 0xff]), 1007),
        (frame(true, 8, &1005u16.to_be_bytes()), 1002),
    ];
    for (wire, code) in cases {
        match decode_in_pieces(&wire, 1).2 {
            Some(End::Failed(got, _)) => assert_eq!(got, code, "{wire:x?}"),
            other => panic!("{wire:x?}: {other:?}"),
        }
    }
}

/// What a relay to a TCP server takes: text too.
const TEXT: Intake = Intake {
    text: true,
    nul_ended: false,
    max_message: 64,
    frames: false,
};

/// What a relay that passes frames to a WebSocket server takes.
const FRAMES: Intake = Intake {
    frames: true,
    ..TEXT
};

/// What a relay to an XMLSocket server takes.
const XMLSOCKET: Intake = Intake {
    nul_ended: true,
    ..TEXT
};

#[test]
fn text_streams_through_when_taken_and_its_utf8_is_checked_across_frames_and_reads() {
    let euro = "\u{20ac}".as_bytes();
    let mut wire = frame(false, 1, &[b"price ", &euro[..2]].concat());
    wire.extend(frame(true, 9, b""));
    wire.extend(frame(true, 0, &[&euro[2..], b"5"].concat()));
    wire.extend(frame(true, 2, b"\xff"));
    for piece in [1, 2, 5, wire.len()] {
        let (data, replies, end) = decode_with(TEXT, &wire, piece);
        assert_eq!(data, [b"price ", euro, b"5\xff"].concat(), "by {piece}");
        assert_eq!((replies, end), (vec![0x8a, 0], None));
    }
    for bad in [&b"\xc3\x28"[..], b"\xed\xa0\x80", b"cut \xe2\x82"] {
        for piece in [1, 3, 100] {
            let end = decode_with(TEXT, &frame(true, 1, bad), piece).2;
            assert!(
                matches!(end, Some(End::Failed(1007, _))),
                "{bad:x?}: {end:?}"
            );
        }
    }
    // A character cut by the end of its message is not finished by the next one.
    let mut wire = frame(true, 1, b"\xe2\x82");
    wire.extend(frame(true, 1, b"\xac"));
    assert!(matches!(
        decode_with(TEXT, &wire, 1).2,
        Some(End::Failed(1007, _))
    ));
}

#[test]
fn xmlsocket_messages_end_with_a_nul_and_one_holding_a_nul_is_refused() {
    let mut wire = frame(true, 1, b"<a/>");
    wire.extend(frame(false, 1, b"<b>"));
    wire.extend(frame(true, 0, b"</b>"));
    wire.extend(frame(true, 1, b""));
    wire.extend(frame(true, 2, b"bin"));
    for piece in [1, 6, wire.len()] {
        let (data, _, end) = decode_with(XMLSOCKET, &wire, piece);
        assert_eq!(data, b"<a/>\0<b></b>\0\0bin\0", "by {piece}");
        assert_eq!(end, None);
    }
    let mut wire = frame(true, 1, b"ok");
    wire.extend(frame(true, 1, b"two\0messages"));
    // Read a byte at a time, the start of the message streams on, but never its NUL: the
    // server never reads it as a message.
    let (data, _, end) = decode_with(XMLSOCKET, &wire, 1);
    assert!(matches!(end, Some(End::Failed(1003, _))), "{end:?}");
    assert_eq!(data, b"ok\0two");
}

#[test]
fn a_message_past_the_largest_taken_ends_the_stream_with_1009() {
    let (_, _, end) = decode_with(TEXT, &frame(true, 2, &[7; 64]), 1);
    assert_eq!(end, None);
    let end = decode_with(TEXT, &frame(true, 2, &[7; 65]), 1).2;
    assert!(matches!(end, Some(End::Failed(1009, _))), "{end:?}");
    // Fragments count together; a new message starts from nothing.
    let mut wire = frame(false, 2, &[1; 40]);
    wire.extend(frame(true, 0, &[2; 24]));
    wire.extend(frame(true, 2, &[3; 64]));
    assert_eq!(decode_with(TEXT, &wire, 7).2, None);
    wire.extend(frame(false, 2, &[1; 40]));
    wire.extend(frame(true, 0, &[2; 25]));
    let (data, _, end) = decode_with(TEXT, &wire, 7);
    assert!(matches!(end, Some(End::Failed(1009, _))), "{end:?}");
    assert_eq!(data.len(), 64 + 64 + 40);
}

#[test]
fn frames_pass_as_they_came_masks_included_and_control_frames_are_not_answered() {
    let mut wire = frame(false, 1, b"hel");
    wire.extend(frame(true, 9, b"ping!"));
    wire.extend(frame(true, 0, b"lo"));
    wire.extend(frame(true, 2, &[0, 1, 2]));
    wire.extend(frame(true, 10, b""));
    wire.extend(frame(true, 8, b"\x03\xe8bye"));
    for piece in [1, 2, 3, 7, wire.len()] {
        let (data, replies, end) = decode_with(FRAMES, &wire, piece);
        assert_eq!(data, wire, "by {piece}: the same frames, the same masks");
        assert_eq!((replies, end), (vec![], Some(End::Closed(Some(1000)))));
    }
}

#[test]
fn frames_kept_are_still_checked_and_stop_before_a_frame_refused_by_its_header() {
    let hello = frame(true, 1, b"hello");
    let cases: [(Vec<u8>, u16); 4] = [
        (frame(true, 1, &[0xff]), 1007),
        (frame(true, 2, &[0; 65]), 1009),
        (frame(false, 9, b""), 1002),
        (frame(true, 8, &1005u16.to_be_bytes()), 1002),
    ];
    for (bad, code) in cases {
        let wire = [hello.clone(), bad.clone()].concat();
        let (data, _, end) = decode_with(FRAMES, &wire, wire.len());
        assert!(
            matches!(end, Some(End::Failed(got, _)) if got == code),
            "{bad:x?}: {end:?}"
        );
        // Refused by its header, or taken back: nothing of it passes.
        assert_eq!(data, hello, "{bad:x?}");
    }
    let mut inbound = Inbound::new(FRAMES);
    let (mut out, mut replies) = (BytesMut::new(), Vec::new());
    let mut text = frame(true, 1, b"abcdef");
    let (head, tail) = text.split_at_mut(8);
    assert_eq!(inbound.decode(head, &mut out, &mut replies), None);
    assert!(!inbound.at_boundary(), "inside a frame");
    assert_eq!(inbound.decode(tail, &mut out, &mut replies), None);
    assert!(inbound.at_boundary());
}

#[test]
fn a_frame_refused_by_its_payload_is_taken_back_when_all_of_it_came_in_this_read() {
    let bad = frame(true, 1, b"ok \xff");
    let mut inbound = Inbound::new(FRAMES);
    let (mut out, mut replies) = (BytesMut::new(), Vec::new());
    let (mut first, mut second) = (bad[..8].to_vec(), bad[8..].to_vec());
    assert_eq!(inbound.decode(&mut first, &mut out, &mut replies), None);
    let end = inbound.decode(&mut second, &mut out, &mut replies);
    assert!(matches!(end, Some(End::Failed(1007, _))));
    // Begun in an earlier read: what passed of it stays, and the stream is cut inside it.
    assert_eq!(out.len(), 8);
    assert!(!inbound.at_boundary());
    // A message whose last character is cut off, in one read.
    let wire = [frame(true, 1, b"fine"), frame(true, 1, b"\xe2\x82")].concat();
    let (data, _, end) = decode_with(FRAMES, &wire, wire.len());
    assert!(matches!(end, Some(End::Failed(1007, _))));
    assert_eq!(data, frame(true, 1, b"fine"));
}

/// A frame whose 7-bit length is written in the 16-bit form, as RFC 6455 allows a client to.
fn long_form(opcode: u8, body: &[u8]) -> Vec<u8> {
    let key = [0x37, 0xfa, 0x21, 0x3d];
    let mut wire = vec![0x80 | opcode, 0x80 | 126];
    wire.extend((body.len() as u16).to_be_bytes());
    wire.extend(key);
    wire.extend(body.iter().enumerate().map(|(i, b)| b ^ key[i & 3]));
    wire
}

#[test]
fn whole_frames_read_at_once_come_out_as_they_do_byte_by_byte() {
    let text = Intake {
        text: true,
        ..Intake::default()
    };
    let xmlsocket = Intake {
        nul_ended: true,
        ..text
    };
    let frames = Intake {
        frames: true,
        ..text
    };
    let small = Intake {
        max_message: 200,
        ..text
    };
    let run = |tail: &[Vec<u8>]| -> Vec<u8> {
        let mut wire = frame(true, 2, b"one");
        wire.extend(frame(true, 1, "двa".as_bytes()));
        wire.extend(long_form(2, b"short, written long"));
        wire.extend(frame(true, 2, &[b'y'; 300]));
        wire.extend(frame(true, 1, &[b'x'; 200]));
        wire.extend(frame(false, 1, b"frag"));
        wire.extend(frame(true, 0, b"ment"));
        wire.extend(frame(true, 9, b"ping"));
        tail.iter().for_each(|f| wire.extend(f));
        wire
    };
    let tails = [
        vec![frame(true, 2, b"after")],
        vec![frame(true, 1, b"caf\xc3"), frame(true, 2, b"never")],
        vec![frame(true, 1, b"nul\0inside")],
        vec![frame(true, 2, b"")],
        vec![frame(true, 8, &1000u16.to_be_bytes())],
        vec![long_form(1, b"\xff")],
        vec![frame(true, 2, &bytes(201))],
    ];
    for intake in [text, xmlsocket, frames, small] {
        for (i, tail) in tails.iter().enumerate() {
            let wire = run(tail);
            let whole = decode_with(intake, &wire, wire.len());
            for piece in [1, 2, 7, 64] {
                let cut = decode_with(intake, &wire, piece);
                // Of a message refused by its payload, what came in earlier reads has passed.
                assert!(cut.0.starts_with(&whole.0), "{intake:?}, {piece}");
                assert_eq!(
                    (&cut.1, &cut.2),
                    (&whole.1, &whole.2),
                    "{intake:?}, {piece}"
                );
                if !matches!(whole.2, Some(End::Failed(..))) {
                    assert_eq!(cut.0, whole.0, "{intake:?}, {piece}");
                }
            }
            // And what the whole read gave is what the messages say.
            let (data, _, end) = whole;
            if intake.frames {
                continue;
            }
            assert!(data.starts_with(b"one"), "{intake:?}: {data:?}");
            if intake == small {
                assert_eq!(
                    end,
                    Some(End::Failed(close_code::TOO_BIG, "message too large"))
                );
                continue;
            }
            if intake.nul_ended {
                assert!(data.starts_with("one\0двa\0short, written long\0".as_bytes()));
            }
            let code = end.map(|end| match end {
                End::Failed(code, _) => code,
                End::Closed(code) => code.unwrap_or(0),
            });
            let nul = if intake.nul_ended { Some(1003) } else { None };
            let expected = [None, Some(1007), nul, None, Some(1000), Some(1007), nul];
            assert_eq!(code, expected[i], "{intake:?}, tail {i}");
        }
    }
}

#[test]
fn binary_frames_read_together_come_out_as_their_payloads_side_by_side() {
    // The socket proxy's intake: each payload is unmasked as it moves back over the headers.
    let lengths = [0, 1, 7, 8, 9, 16, 31, 125, 126, 300, 3];
    let mut wire = Vec::new();
    let mut payloads = Vec::new();
    for (i, len) in lengths.into_iter().enumerate() {
        let body: Vec<u8> = (0..len).map(|j| (i * 31 + j) as u8).collect();
        wire.extend(frame(true, 2, &body));
        payloads.extend(body);
    }
    wire.extend(frame(true, 8, &1000u16.to_be_bytes()));
    for piece in [wire.len(), 1, 5, 64] {
        let (data, replies, end) = decode_with(Intake::default(), &wire, piece);
        assert_eq!(data, payloads, "in pieces of {piece}");
        assert!(replies.is_empty());
        assert_eq!(end, Some(End::Closed(Some(1000))));
    }
}
