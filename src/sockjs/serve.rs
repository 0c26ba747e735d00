//! Receiving requests: each finds its session or opens it, and is answered with what the
//! session has; and the task that serves a session with its backend, asleep while the
//! client is silent and its response streams.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Response, StatusCode};

use super::comet::{Arrival, Comet, CometSession};
use super::frames::{self, Wrap};
use super::parked::Ongoing;
use super::receive::{self, Receiving};
use super::{Ask, Endpoint, pages};
use crate::body::Body;
use crate::handoff::Handoff;
use crate::session::{CloseReason, Delivery, Service, Session, Transport, Woken};

impl<M: Service> Endpoint<M> {
    /// A receiving request for session `id`: opens it if new, and answers with what the
    /// session has, as `wrap` frames it, for up to `limit` bytes.
    pub(super) async fn receive(
        self: &Arc<Self>,
        id: &str,
        ask: &Ask<'_>,
        reply: Reply,
        admit: impl FnOnce(Transport) -> Result<M, String>,
    ) -> Response<Body> {
        let Reply {
            wrap,
            limit,
            ref prelude,
            ..
        } = reply;
        let made = self.table.find_or_make(ask.route, id, ask.peer.ip(), || {
            if self.shutdown.is_stopping() {
                let why = "the gateway is stopping";
                return Err((StatusCode::SERVICE_UNAVAILABLE, why.to_string()));
            }
            let too_many = |r: crate::per_ip::Refused| {
                (StatusCode::TOO_MANY_REQUESTS, r.message().to_string())
            };
            self.slots.handshake(ask.client).map_err(too_many)?;
            // The connection that opens the session lends it its slot; a second session
            // on the same connection takes one of its own.
            let slot = match reply.handoff.as_ref().and_then(|h| h.adopt()) {
                Some(slot) => slot,
                None => self.slots.try_acquire().ok_or_else(|| {
                    let why = "too many connections (see --max-connections)";
                    (StatusCode::SERVICE_UNAVAILABLE, why.to_string())
                })?,
            };
            slot.count_against(ask.client).map_err(too_many)?;
            let transport = wrap_transport(&wrap, limit);
            let handler = admit(transport).map_err(|why| (StatusCode::FORBIDDEN, why))?;
            slot.counts_in(transport.as_str());
            let comet = Comet::new(
                self.limits.send_backlog,
                self.limits.max_message_size,
                ask.options.heartbeat,
            );
            self.start(comet.clone(), handler, ask.peer, transport);
            Ok((comet, ask.options.disconnect_delay, slot))
        });
        let (comet, slot) = match made {
            Ok(made) => made,
            Err(None) => return pages::bare(StatusCode::NOT_FOUND),
            Err(Some((status, why))) => {
                tracing::warn!(peer = %ask.peer, route = %ask.route, "sockjs session refused: {why}");
                return crate::body::text(status, &why);
            }
        };
        let mut arrival = comet.arrive(limit == 1);
        if matches!(arrival, Arrival::Busy) {
            // The receiver before may have just gone away, its connection's end not yet
            // seen: a moment for it to be, before this one is turned away.
            tokio::time::sleep(Duration::from_millis(50)).await;
            arrival = comet.arrive(limit == 1);
        }
        let body = match arrival {
            Arrival::Receiver { open, waiting } => {
                let (first, sent) = receive::first(prelude, &wrap, open, &waiting);
                if sent >= limit {
                    comet.leave(false);
                    crate::body::boxed(first)
                } else {
                    let Some(handoff) = reply.handoff else {
                        comet.leave(false);
                        return pages::refused("this connection cannot stream");
                    };
                    let then = Ongoing {
                        back: handoff.back(slot),
                        chunked: reply.chunked,
                        close: reply.close,
                        wrap,
                        limit,
                        sent,
                        patience: self.limits.read_timeout,
                    };
                    crate::body::boxed(Receiving::new(comet, first, then, handoff))
                }
            }
            Arrival::Busy => {
                let busy = frames::close(2010, "Another connection still open");
                crate::body::boxed(receive::once(prelude, &wrap, &[], &busy))
            }
            // A jsonp script calls back once (sockjs-client drops its callback then): what
            // waited, and the close frame for the next poll (each gets it until expiry).
            Arrival::Closing(waiting, _)
                if matches!(wrap, Wrap::Callback(_)) && !waiting.is_empty() =>
            {
                crate::body::boxed(receive::first(prelude, &wrap, false, &waiting).0)
            }
            Arrival::Closing(waiting, frame) => {
                crate::body::boxed(receive::once(prelude, &wrap, &waiting, &frame))
            }
            Arrival::Gone => return pages::bare(StatusCode::NOT_FOUND),
        };
        Response::new(body)
    }

    /// Serves `comet` with `handler` on a task of its own until the session ends. While the
    /// client is silent and its response streams, the session sleeps: a room writes to it
    /// directly ([`asleep`]), and the task waits for what wakes it.
    fn start(
        self: &Arc<Self>,
        comet: Arc<Comet>,
        mut handler: M,
        peer: SocketAddr,
        transport: Transport,
    ) {
        let endpoint = self.clone();
        self.tracker.spawn(async move {
            tracing::info!(%peer, %transport, "sockjs session opened");
            let mut session = CometSession::new(comet.clone(), peer);
            if !handler.sleeps() {
                session = session.awake();
            }
            loop {
                handler.serve(&mut session).await;
                if !session.is_asleep() {
                    break;
                }
                session.wake();
                let Some(key) = endpoint.dozing.put(comet.clone()) else {
                    continue;
                };
                let mut slept = false;
                if let Some(framing) = comet.fall_asleep(key) {
                    let delivery = Delivery::new(endpoint.dozing.clone(), key, framing);
                    if handler.sleep(delivery).is_ok() {
                        session.doze().await;
                        slept = true;
                    }
                }
                // Out of the table before the backend takes the client back: a room's write
                // from now on reaches nothing, and the backend queues it instead.
                comet.wake_up();
                endpoint.dozing.take(key);
                let woken = slept.then(|| handler.wake());
                match woken {
                    None | Some(Woken::Resumed) => {}
                    Some(Woken::TooSlow) => {
                        session.close(CloseReason::TooSlow).await;
                        break;
                    }
                    Some(Woken::Gone) => break,
                }
            }
            comet.close_normally();
            tracing::debug!(%peer, %transport, "sockjs session ended");
        });
    }
}

/// How a receiving request is answered.
pub(super) struct Reply {
    /// How its frames are wrapped.
    pub(super) wrap: Wrap,
    /// Frame bytes after which its response ends.
    pub(super) limit: usize,
    /// What goes before the first frame.
    pub(super) prelude: String,
    /// Its connection's hand-off point.
    pub(super) handoff: Option<Arc<Handoff>>,
    /// HTTP/1.1 (a chunked response).
    pub(super) chunked: bool,
    /// The client asked to close the connection after it.
    pub(super) close: bool,
}

/// The transport a session is logged under: the one its first receiving request used.
fn wrap_transport(wrap: &Wrap, limit: usize) -> Transport {
    match (wrap, limit) {
        (Wrap::Line, 1) => Transport::SockjsXhr,
        (Wrap::Line, _) => Transport::SockjsXhrStreaming,
        (Wrap::Event, _) => Transport::SockjsEventsource,
        (Wrap::Script, _) => Transport::SockjsHtmlfile,
        (Wrap::Callback(_), _) => Transport::SockjsJsonp,
    }
}
