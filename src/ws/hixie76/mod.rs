//! hixie-76 WebSockets (draft-ietf-hybi-thewebsocketprotocol-00, also draft-hixie-76) and
//! hixie-75: what Safari 5, iOS 4-5, Chrome 6-13, old WebKit TVs and the hixie-76 build of
//! web-socket-js speak.
//!
//! [`handshake`] and [`frame`] are the protocol, pure.

pub(crate) mod frame;
pub(crate) mod handshake;
pub(crate) mod session;

use std::sync::Arc;

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use tokio_util::task::TaskTracker;

use crate::body::Body;
use crate::config::Limits;
use crate::session::Service;
use crate::shutdown::Shutdown;
use crate::ws::hibernate::Client;
use crate::ws::upgraded::when_upgraded;
use handshake::Opening;
use session::HixieSession;

/// The scheme of the URLs the gateway answers under (`wss` once it speaks TLS).
const SCHEME: &str = "ws";

/// The hixie WebSocket endpoint of every route. Its clients never sleep: a sleeper's
/// framing and its wake-up (which, with no pings, is only a read) are the RFC 6455
/// transport's.
pub struct Endpoint {
    /// Timeouts and sizes.
    limits: Limits,
    /// The stop switch.
    shutdown: Shutdown,
    /// Every connection task, so shutdown can wait for them.
    tracker: TaskTracker,
}

impl Endpoint {
    /// A new endpoint.
    pub fn new(limits: Limits, shutdown: Shutdown, tracker: TaskTracker) -> Arc<Endpoint> {
        Arc::new(Endpoint {
            limits,
            shutdown,
            tracker,
        })
    }

    /// Answers an accepted hixie handshake with its 101 head at once, and, once the
    /// connection is upgraded, reads the 8-byte body and sends the answer (hixie-76), then
    /// serves the client with `handler`.
    pub fn upgrade<M: Service>(
        &self,
        req: &mut Request<Incoming>,
        opening: &Opening,
        mut handler: M,
        client: Client,
    ) -> Response<Body> {
        let (limits, stop) = (self.limits, self.shutdown.clone());
        let keys = opening.keys;
        when_upgraded(&self.tracker, req, move |conn| async move {
            let peer = client.peer;
            let mut session = HixieSession::new(
                conn,
                peer,
                stop.signal(),
                limits.idle_timeout,
                limits.max_message_size,
            );
            if let Some(keys) = keys
                && let Err(why) = session.answer(keys, limits.handshake_timeout).await
            {
                tracing::info!(%peer, transport = %client.transport, why, "hixie-76 handshake not finished");
                return;
            }
            handler.serve(&mut session).await;
            tracing::debug!(%peer, transport = %client.transport, "websocket closed");
            drop(client);
        });
        switching(opening)
    }
}

/// The 101 head of an accepted handshake; the 16-byte answer follows it on the upgraded
/// connection. hyper writes the header names in lower case: the draft's clients compare them
/// in lower case.
fn switching(opening: &Opening) -> Response<Body> {
    let mut res = Response::new(crate::body::empty());
    *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    res.extensions_mut()
        .insert(hyper::ext::ReasonPhrase::from_static(
            opening.draft.reason().as_bytes(),
        ));
    let headers = res.headers_mut();
    for (name, value) in opening.fields(SCHEME) {
        headers.append(name, value);
    }
    res
}
