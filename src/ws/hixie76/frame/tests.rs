use super::*;

/// What a client's stream decodes to, fed in the given pieces: the messages, then whether
/// it closed or failed.
fn decode_in(pieces: &[&[u8]], max: usize) -> (Vec<String>, Result<bool, FrameError>) {
    let mut decoder = Decoder::new(max);
    let (mut buf, mut messages) = (Vec::new(), Vec::new());
    for piece in pieces {
        buf.extend_from_slice(piece);
        loop {
            let decoded = match decoder.decode(&buf) {
                Ok(decoded) => decoded,
                Err(error) => return (messages, Err(error)),
            };
            let frame = decoded.frame.clone();
            if let Frame::Text(range) = &frame {
                messages.push(String::from_utf8(buf[range.clone()].to_vec()).unwrap());
            }
            buf.drain(..decoded.consumed);
            match frame {
                Frame::Close => return (messages, Ok(true)),
                Frame::Incomplete => break,
                Frame::Text(_) => {}
            }
        }
    }
    (messages, Ok(false))
}

/// Every way of cutting `stream` in two, and one byte at a time, decodes as in one piece.
fn every_split(stream: &[u8], max: usize) -> (Vec<String>, Result<bool, FrameError>) {
    let whole = decode_in(&[stream], max);
    for at in 0..=stream.len() {
        let (a, b) = stream.split_at(at);
        assert_eq!(decode_in(&[a, b], max), whole, "cut at {at}");
    }
    let bytes: Vec<&[u8]> = stream.chunks(1).collect();
    assert_eq!(decode_in(&bytes, max), whole, "a byte at a time");
    whole
}

#[test]
fn text_frames_and_the_close_decode_however_they_are_cut() {
    let stream = b"\x00hello\xff\x00\xff\x00h\xc3\xa9\xff\xff\x00\x00late\xff";
    let (messages, end) = every_split(stream, 1024);
    assert_eq!(messages, ["hello", "", "h\u{e9}"]);
    assert_eq!(end, Ok(true), "nothing is read past the close");
}

#[test]
fn length_prefixed_and_other_sentinel_frames_are_skipped() {
    // Type 0x80, length 130 (0x81 0x02), then a text frame; type 0x05 data up to 0xFF.
    let mut stream = vec![0x80, 0x81, 0x02];
    stream.extend_from_slice(&[0xAB; 130]);
    stream.extend_from_slice(b"\x05ignored\xff\x00kept\xff\xfe\x00\x00after\xff");
    let (messages, end) = every_split(&stream, 1024);
    assert_eq!(messages, ["kept", "after"]);
    assert_eq!(end, Ok(false));
}

#[test]
fn a_message_past_the_limit_fails_before_its_end_arrives() {
    let mut decoder = Decoder::new(4);
    assert_eq!(
        decoder.decode(b"\x00abcd").unwrap().frame,
        Frame::Incomplete
    );
    assert_eq!(decoder.decode(b"\x00abcde"), Err(FrameError::TooLarge));
    assert_eq!(every_split(b"\x00abcd\xff", 4).0, ["abcd"]);
    assert_eq!(
        every_split(b"\x00abcde\xff", 4).1,
        Err(FrameError::TooLarge)
    );
    // A skipped frame is bounded too, by its length or by its data.
    assert_eq!(
        every_split(&[0x80, 0x85, 0x00], 4).1,
        Err(FrameError::TooLarge)
    );
    assert_eq!(every_split(b"\x01abcdef", 4).1, Err(FrameError::TooLarge));
    // A length of many groups cannot overflow.
    let long = [vec![0x80], vec![0xFF; 40]].concat();
    assert_eq!(every_split(&long, usize::MAX).1, Err(FrameError::TooLarge));
}

#[test]
fn text_that_is_not_utf8_fails() {
    let (messages, end) = every_split(b"\x00ok\xff\x00\xc3\x28\xff", 64);
    assert_eq!(messages, ["ok"]);
    assert_eq!(end, Err(FrameError::NotUtf8));
}

#[test]
fn a_skipped_frame_is_dropped_from_the_buffer_as_it_arrives() {
    let mut decoder = Decoder::new(1 << 20);
    let step = decoder.decode(&[0x80, 0x88, 0x00, 1, 2, 3]).unwrap();
    assert_eq!(step.consumed, 6);
    assert_eq!(step.frame, Frame::Incomplete);
    let step = decoder.decode(&[0; 1021]).unwrap();
    assert_eq!(step.consumed, 1021);
    // Then the next frame starts.
    assert_eq!(
        decoder.decode(b"\x00a\xff").unwrap().frame,
        Frame::Text(1..2)
    );
}

#[test]
fn frames_are_encoded_as_the_draft_writes_them() {
    let mut out = Vec::new();
    encode_text(&mut out, "h\u{e9}");
    encode_close(&mut out);
    assert_eq!(out, b"\x00h\xc3\xa9\xff\xff\x00");
}
