//! The SockJS transport (protocol 0.3.3): every route is also a SockJS base URL, so clients
//! of `sockjs-client` reach the same backends and rooms as every other client.
//!
//! Under a route's path: the greeting, `/info`, the iframe page ([`pages`]); the raw
//! `/websocket` and the SockJS-framed `/{server}/{session}/websocket`, both on the RFC 6455
//! transport ([`websocket`]); and the Comet transports, where one session lives across HTTP
//! requests ([`comet`], kept in a [`table`]): receiving requests, polling or streaming
//! ([`receive`]), and sending ones. [`frames`] and [`path`] are the pure protocol.

mod asleep;
pub(crate) mod comet;
pub(crate) mod frames;
pub(crate) mod pages;
mod parked;
pub(crate) mod path;
pub(crate) mod receive;
mod send;
mod serve;
pub(crate) mod table;
pub(crate) mod websocket;

use crate::slots::Slots;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode, Version};
use hyper::body::Incoming;
use tokio_util::task::TaskTracker;

use crate::body::Body;
use crate::config::{Limits, SockjsOptions};
use crate::handoff::Handoff;
use crate::origin::AllowList;
use crate::session::{Service, Transport};
use crate::shutdown::Shutdown;
use frames::Wrap;
use path::{Endpoint as At, Kind};
use serve::Reply;
use table::Table;

/// Where the iframe page loads sockjs-client from: the copy flashgate serves.
pub const SOCKJS_URL: &str = "/sockjs/sockjs.min.js";

/// What xhr-streaming sends first: 2 KiB of `h` (browsers that buffer the start of a
/// response then show the rest as it comes).
const XHR_PRELUDE: usize = 2048;

/// The SockJS endpoint of every route whose clients are served by `M` handlers.
pub struct Endpoint<M> {
    limits: Limits,
    shutdown: Shutdown,
    tracker: TaskTracker,
    /// Connection slots: a session holds one for its life.
    slots: Arc<Slots>,
    table: Table,
    /// The sessions asleep, as rooms reach them.
    dozing: Arc<asleep::Dozing>,
    iframe: pages::Iframe,
    _handlers: std::marker::PhantomData<fn() -> M>,
}

/// One SockJS request, as the router hands it over.
pub struct Ask<'a> {
    /// The route's path (the base URL's).
    pub route: &'a str,
    /// The route's SockJS settings.
    pub options: &'a SockjsOptions,
    /// Who may use it.
    pub allow: &'a AllowList,
    /// The client's connection.
    pub peer: SocketAddr,
    /// The client's address as the limits per address count it (a trusted proxy's
    /// `X-Forwarded-For`, else the peer's).
    pub client: std::net::IpAddr,
}

impl<M: Service> Endpoint<M> {
    /// A new endpoint; `sockjs_url` is where the iframe page loads sockjs-client from.
    pub fn new(
        limits: Limits,
        shutdown: Shutdown,
        tracker: TaskTracker,
        slots: Arc<Slots>,
        sockjs_url: &str,
    ) -> Arc<Self> {
        let asleep = slots.metrics().asleep();
        Arc::new(Endpoint {
            limits,
            shutdown,
            tracker,
            slots,
            table: Table::default(),
            dozing: Arc::new(asleep::Dozing::counted(asleep)),
            iframe: pages::Iframe::new(sockjs_url),
            _handlers: std::marker::PhantomData,
        })
    }

    /// The task that sends heartbeats and ends expired sessions, for the gateway's life. On
    /// shutdown it closes every session with 1001 (their backends see them end), and ends.
    pub fn sweep(self: &Arc<Self>) -> impl Future<Output = ()> + Send + use<M> {
        let endpoint = self.clone();
        let mut stop = self.shutdown.signal();
        async move {
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            loop {
                tokio::select! {
                    now = tick.tick() => endpoint.table.sweep(now, endpoint.limits.hibernate_after),
                    _ = &mut stop => return endpoint.table.shut_down(),
                }
            }
        }
    }

    /// Answers a SockJS request at `at` (not a WebSocket one: the router upgrades those).
    /// `admit` makes the backend's handler when the request opens a session.
    pub async fn handle(
        self: &Arc<Self>,
        req: Request<Incoming>,
        at: At<'_>,
        ask: Ask<'_>,
        admit: impl FnOnce(Transport) -> Result<M, String>,
    ) -> Response<Body> {
        let headers = req.headers();
        let origin = headers.get(header::ORIGIN).cloned();
        if let Some(origin) = &origin {
            let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
            let origin = origin.to_str().unwrap_or("");
            // The gateway's own origin is its iframe page's, which only allowed origins may
            // frame (see `pages::Iframe`).
            if !ask.allow.allows(origin, host) && !AllowList::is_own(origin, host) {
                tracing::warn!(peer = %ask.peer, route = %ask.route, origin = ?origin, "sockjs refused: origin not allowed");
                return crate::body::text(
                    StatusCode::FORBIDDEN,
                    "origin not allowed (see --allow-origin)",
                );
            }
        }
        let method = req.method().clone();
        let asked = headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS).cloned();
        let grant = |res: &mut Response<Body>| {
            pages::cors(res.headers_mut(), origin.as_ref(), asked.as_ref())
        };
        let (session, kind) = match at {
            At::Greeting => {
                return match method {
                    Method::GET | Method::HEAD => pages::greeting(),
                    _ => pages::not_allowed("GET"),
                };
            }
            At::Info => {
                let mut res = match method {
                    Method::GET => pages::info(ask.options.websocket, ask.options.cookie),
                    Method::OPTIONS => pages::options("OPTIONS, GET"),
                    _ => return pages::not_allowed("OPTIONS, GET"),
                };
                grant(&mut res);
                return res;
            }
            At::Iframe => {
                return match method {
                    Method::GET | Method::HEAD => {
                        self.iframe.answer(headers, ask.allow.frame_ancestors())
                    }
                    _ => pages::not_allowed("GET"),
                };
            }
            At::RawWebsocket => return pages::bare(StatusCode::NOT_FOUND),
            At::Session { session, kind } => (session, kind),
        };
        let cookie = ask.options.cookie.then(|| req.headers().clone());
        let handoff = req.extensions().get::<Arc<Handoff>>().cloned();
        let chunked = req.version() == Version::HTTP_11;
        let close = crate::ws::handshake::has_token(req.headers(), &header::CONNECTION, "close");
        let reply = |wrap, limit, prelude| Reply {
            wrap,
            limit,
            prelude,
            handoff: handoff.clone(),
            chunked,
            close,
        };
        let mut res = 'answer: {
            match (kind, &method) {
                (Kind::Xhr | Kind::XhrSend | Kind::XhrStreaming, &Method::OPTIONS) => {
                    let mut res = pages::options("OPTIONS, POST");
                    grant(&mut res);
                    res
                }
                (Kind::Xhr, &Method::POST) => {
                    let mut res = self
                        .receive(session, &ask, reply(Wrap::Line, 1, String::new()), admit)
                        .await;
                    grant(&mut res);
                    typed(res, "application/javascript; charset=UTF-8")
                }
                (Kind::XhrStreaming, &Method::POST) => {
                    let prelude = format!("{}\n", "h".repeat(XHR_PRELUDE));
                    let limit = ask.options.response_limit;
                    let mut res = self
                        .receive(session, &ask, reply(Wrap::Line, limit, prelude), admit)
                        .await;
                    grant(&mut res);
                    streaming(typed(res, "application/javascript; charset=UTF-8"))
                }
                (Kind::Eventsource, &Method::GET) => {
                    let limit = ask.options.response_limit;
                    let prelude = "\r\n".to_string();
                    let mut res = self
                        .receive(session, &ask, reply(Wrap::Event, limit, prelude), admit)
                        .await;
                    grant(&mut res);
                    streaming(typed(res, "text/event-stream"))
                }
                (Kind::Htmlfile, &Method::GET) => match path::callback(req.uri().query()) {
                    Ok(callback) => {
                        let limit = ask.options.response_limit;
                        let head = pages::htmlfile_head(&callback);
                        let res = self
                            .receive(session, &ask, reply(Wrap::Script, limit, head), admit)
                            .await;
                        streaming(typed(res, "text/html; charset=UTF-8"))
                    }
                    Err(why) => break 'answer pages::refused(why),
                },
                (Kind::Jsonp, &Method::GET) => match path::callback(req.uri().query()) {
                    Ok(callback) => {
                        let wrap = Wrap::Callback(callback);
                        let mut res = self
                            .receive(session, &ask, reply(wrap, 1, String::new()), admit)
                            .await;
                        res.headers_mut().insert(
                            header::X_CONTENT_TYPE_OPTIONS,
                            HeaderValue::from_static("nosniff"),
                        );
                        typed(res, "application/javascript; charset=UTF-8")
                    }
                    Err(why) => break 'answer pages::refused(why),
                },
                (Kind::XhrSend, &Method::POST) => {
                    let mut res = send::xhr(self, req, session, &ask).await;
                    grant(&mut res);
                    res
                }
                (Kind::JsonpSend, &Method::POST) => send::jsonp(self, req, session, &ask).await,
                (Kind::Xhr | Kind::XhrSend | Kind::XhrStreaming | Kind::JsonpSend, _) => {
                    return pages::not_allowed("OPTIONS, POST");
                }
                (Kind::Eventsource | Kind::Htmlfile | Kind::Jsonp | Kind::Websocket, _) => {
                    return pages::not_allowed("GET");
                }
            }
        };
        if res.status() != StatusCode::NOT_FOUND {
            if method != Method::OPTIONS {
                pages::no_cache(res.headers_mut());
            }
            if let Some(request) = &cookie {
                pages::jsessionid(res.headers_mut(), request);
            }
        }
        res
    }
}

/// `res` with its content type (unless it is an error with its own).
fn typed(mut res: Response<Body>, content_type: &'static str) -> Response<Body> {
    if res.status() == StatusCode::OK {
        res.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    res
}

/// `res` marked so that proxies pass it on as it comes.
fn streaming(mut res: Response<Body>) -> Response<Body> {
    res.headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    res
}
