//! hixie-76 WebSockets (draft-ietf-hybi-thewebsocketprotocol-00, also draft-hixie-76) and
//! hixie-75: what Safari 5, iOS 4-5, Chrome 6-13, old WebKit TVs and the hixie-76 build of
//! web-socket-js speak.
//!
//! [`handshake`] and [`frame`] are the protocol, pure; [`session`] serves a client over
//! the RFC 6455 transport's connection, and the WebSocket endpoint (`ws::Endpoint`) serves
//! it, puts it to sleep and wakes it as it does RFC 6455 clients.

pub(crate) mod frame;
pub(crate) mod handshake;
pub(crate) mod session;

use http::{Response, StatusCode};

use crate::body::Body;
use handshake::Opening;

/// The 101 head of an accepted handshake; the 16-byte answer follows it on the upgraded
/// connection, its location under `scheme` (`ws`, or `wss` over TLS). hyper writes the
/// header names in lower case: the draft's clients compare them in lower case.
pub fn switching(opening: &Opening, scheme: &str) -> Response<Body> {
    let mut res = Response::new(crate::body::empty());
    *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    res.extensions_mut()
        .insert(hyper::ext::ReasonPhrase::from_static(
            opening.draft.reason().as_bytes(),
        ));
    let headers = res.headers_mut();
    for (name, value) in opening.fields(scheme) {
        headers.append(name, value);
    }
    res
}
