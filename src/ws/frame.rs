//! Server-to-client WebSocket frames, written by hand: every data frame the gateway sends
//! (sessions queue them on their connection, and a broadcast room writes them straight into
//! sleeping members' sockets), and the socket proxy's control frames ([`super::stream`]).
//! tungstenite writes only the control frames of the other routes. A message becomes one unmasked frame (RFC 6455 5.2), and a
//! binary message for a Flash client becomes its text form
//! ([`crate::session::text_only`]), as the session would send it.

use bytes::BufMut;

use crate::session::{Payload, text_only};

/// Appends `payload` as one frame for a client (`flash`: one that takes text frames only).
pub fn encode(out: &mut impl BufMut, payload: &Payload, flash: bool) {
    match (payload, flash) {
        (Payload::Text(text), _) => encode_raw(out, 0x1, text.as_bytes()),
        (Payload::Binary(bytes), false) => encode_raw(out, 0x2, bytes),
        (binary, true) => encode_raw(out, 0x1, text_only(binary.clone()).as_bytes()),
    }
}

/// Appends one frame with `opcode` and `body`.
pub(crate) fn encode_raw(out: &mut impl BufMut, opcode: u8, body: &[u8]) {
    out.put_u8(0x80 | opcode);
    match body.len() {
        n @ 0..=125 => out.put_u8(n as u8),
        n @ 126..=0xffff => {
            out.put_u8(126);
            out.put_u16(n as u16);
        }
        n => {
            out.put_u8(127);
            out.put_u64(n as u64);
        }
    }
    out.put_slice(body);
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use tungstenite::protocol::Role;
    use tungstenite::{Message, WebSocket};

    /// What a real client (tungstenite) reads from `wire`.
    fn read_all(wire: Vec<u8>) -> Vec<Message> {
        let mut ws = WebSocket::from_raw_socket(std::io::Cursor::new(wire), Role::Client, None);
        let mut out = Vec::new();
        loop {
            match ws.read() {
                Ok(message) => out.push(message),
                // The end of the bytes, between frames.
                Err(tungstenite::Error::Protocol(
                    tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
                )) => return out,
                Err(e) => panic!("{e}"),
            }
        }
    }

    #[test]
    fn frames_of_every_length_read_back_as_the_messages() {
        let mut wire = Vec::new();
        let mut sent = Vec::new();
        for len in [0usize, 1, 125, 126, 127, 65535, 65536, 70000] {
            let text: String = "é".repeat(len / 2) + &"a".repeat(len % 2);
            let bytes = Bytes::from((0..len).map(|i| i as u8).collect::<Vec<_>>());
            encode(&mut wire, &Payload::Text(text.clone().into()), false);
            encode(&mut wire, &Payload::Binary(bytes.clone()), false);
            sent.push(Message::text(text));
            sent.push(Message::binary(bytes));
        }
        assert_eq!(read_all(wire), sent);
    }

    #[test]
    fn binary_for_flash_is_the_data_url_text() {
        let mut wire = Vec::new();
        let payload = Payload::Binary(Bytes::from_static(&[0, 1, 2, 0xff]));
        encode(&mut wire, &payload, true);
        assert_eq!(
            read_all(wire),
            [Message::text(
                "data:application/octet-stream;base64,AAEC/w=="
            )]
        );
    }
}
