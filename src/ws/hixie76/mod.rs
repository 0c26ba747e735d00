//! hixie-76 WebSockets (draft-ietf-hybi-thewebsocketprotocol-00, also draft-hixie-76) and
//! hixie-75: what Safari 5, iOS 4-5, Chrome 6-13, old WebKit TVs and the hixie-76 build of
//! web-socket-js speak.
//!
//! [`handshake`] and [`frame`] are the protocol, pure.

pub(crate) mod frame;
pub(crate) mod handshake;
