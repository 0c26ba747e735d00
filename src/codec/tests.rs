use super::*;
use bytes::Bytes;
use tungstenite::protocol::Role;
use tungstenite::{Message, WebSocket};

/// What a real client (tungstenite) reads from `wire`.
fn read_all(wire: Vec<u8>, role: Role) -> Vec<Message> {
    let mut ws = WebSocket::from_raw_socket(std::io::Cursor::new(wire), role, None);
    let mut out = Vec::new();
    loop {
        match ws.read() {
            Ok(message) => out.push(message),
            // The end of the bytes, between frames.
            Err(tungstenite::Error::Protocol(
                tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
            ))
            | Err(tungstenite::Error::ConnectionClosed) => return out,
            Err(e) => panic!("{e}"),
        }
    }
}

const LENGTHS: [usize; 8] = [0, 1, 125, 126, 127, 65535, 65536, 70000];

#[test]
fn frames_of_every_length_read_back_as_the_messages() {
    let mut wire = Vec::new();
    let mut sent = Vec::new();
    for len in LENGTHS {
        let text: String = "é".repeat(len / 2) + &"a".repeat(len % 2);
        let bytes = Bytes::from((0..len).map(|i| i as u8).collect::<Vec<_>>());
        encode(&mut wire, &Payload::Text(text.clone().into()), false);
        encode(&mut wire, &Payload::Binary(bytes.clone()), false);
        sent.push(Message::text(text));
        sent.push(Message::binary(bytes));
    }
    assert_eq!(read_all(wire, Role::Client), sent);
}

#[test]
fn binary_for_a_text_only_client_is_the_data_url_text() {
    let mut wire = Vec::new();
    let payload = Payload::Binary(Bytes::from_static(&[0, 1, 2, 0xff]));
    encode(&mut wire, &payload, true);
    assert_eq!(
        read_all(wire, Role::Client),
        [Message::text(
            "data:application/octet-stream;base64,AAEC/w=="
        )]
    );
}

#[test]
fn client_frames_read_back_as_a_server_reads_them() {
    let mut wire = Vec::new();
    let mut sent = Vec::new();
    for (i, len) in LENGTHS.into_iter().enumerate() {
        let body: Vec<u8> = (0..len).map(|b| (b * 31 + i) as u8).collect();
        let mask = [i as u8, 0xa5, 0x3c, 0x7e];
        wire.extend(client_frame(true, opcode::BINARY, &body, mask));
        sent.push(Message::binary(body));
    }
    assert_eq!(read_all(wire, Role::Server), sent);
}

#[test]
fn the_header_says_what_the_frame_is() {
    let wire = client_frame(false, opcode::TEXT, &[0; 300], [1, 2, 3, 4]);
    let need = head_len(&wire).unwrap();
    assert_eq!(need, 8);
    let header = Header::parse(&wire[..need]);
    assert_eq!(
        header,
        Header {
            fin: false,
            rsv: 0,
            opcode: opcode::TEXT,
            len: 300,
            mask: Some([1, 2, 3, 4]),
        }
    );
    let mut server = Vec::new();
    encode_raw(&mut server, opcode::PING, &[9; 70000]);
    let need = head_len(&server).unwrap();
    assert_eq!((need, Header::parse(&server[..need]).len), (10, 70000));
    assert_eq!(head_len(&server[..1]), None);
}

#[test]
fn a_header_cut_anywhere_comes_out_whole() {
    for len in LENGTHS {
        let wire = client_frame(true, opcode::BINARY, &vec![0; len], [9, 8, 7, 6]);
        let need = head_len(&wire).unwrap();
        for cut in 0..=need {
            let mut buf = HeadBuf::default();
            let (first, used) = buf.take(&wire[..cut]);
            assert_eq!(used, cut);
            let header = match first {
                Some(header) => header,
                None => {
                    assert!(cut < need);
                    let (header, more) = buf.take(&wire[cut..]);
                    assert_eq!(more, need - cut, "len {len}, cut {cut}");
                    header.unwrap()
                }
            };
            assert_eq!((header.len, header.mask), (len as u64, Some([9, 8, 7, 6])));
            assert!(!buf.is_partial());
        }
    }
}

#[test]
fn the_mask_applied_by_words_matches_the_mask_applied_by_bytes() {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let data: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
    let by_bytes: Vec<u8> = data
        .iter()
        .enumerate()
        .map(|(i, b)| b ^ mask[i % 4])
        .collect();
    // In pieces of every size, the mask turning between them.
    for piece in 1..=17 {
        let mut turning = mask;
        let mut out = data.clone();
        for chunk in out.chunks_mut(piece) {
            unmask(&mut turning, chunk);
        }
        assert_eq!(out, by_bytes, "pieces of {piece}");
    }
}

#[test]
fn a_close_frame_carries_its_code_and_a_reason_cut_to_fit() {
    let mut wire = Vec::new();
    encode_close(&mut wire, 1008, &"é".repeat(100));
    match &read_all(wire, Role::Client)[..] {
        [Message::Close(Some(frame))] => {
            assert_eq!(u16::from(frame.code), 1008);
            assert_eq!(frame.reason.len(), 122, "cut at a character boundary");
        }
        other => panic!("{other:?}"),
    }
}
