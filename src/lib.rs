//! flashgate: Flash-era and modern web clients, one realtime backend.
//!
//! # Layout
//!
//! Layers point one way: the server and routing, then the transports (each makes sessions),
//! then [`session`], which the backends also build on. A backend never learns a transport,
//! and a transport never names a backend (see `docs/ARCHITECTURE.md`).
//!
//! - [`args`] → [`config`]: the command line and the `--config` file, then the validated
//!   configuration.
//! - `server`: the accept loops; every connection on the main port is sniffed once
//!   (`policy::sniff`) and becomes a policy reply or HTTP (`prefixed` replays the sniffed
//!   bytes to the HTTP parser). `gateway` is the state every connection shares.
//! - `http`: each request to its handler (`access` logs it), by `routes` (a WebSocket
//!   route owns its path and everything under it); the rest is the asset listing, `/ruffle-config.js` (`ruffle`),
//!   `/crossdomain.xml` (`policy::url`) and static files (`assets`: a `--web-dir`, then our
//!   pages built into the binary, then the third-party files wherever `assets::locate`
//!   finds them).
//! - `policy`: the Flash socket policy: pure recognition and XML, the reply, and the master
//!   policy listener, which answers most requests without a task.
//! - Transports: `ws`, the RFC 6455 handshake and its sessions: messages over tungstenite,
//!   or a byte stream decoded as it is read (the socket proxy's, a TCP relay's; or, for a
//!   relay to a WebSocket server, the client's frames as they came, and the server's
//!   checked on their way, `ws::outbound`); silent clients sleep without a task
//!   (`ws::hibernate`), their sockets in a table their rooms write through (`ws::asleep`).
//!   `ws::hixie76`: the hixie-76 and hixie-75 drafts (Safari 5, old WebKit): the key rule
//!   and MD5 answer, the `0x00 … 0xFF` framing (both pure), and a session over the same
//!   batched connection, which sleeps as RFC 6455 ones do.
//!   `sockjs`: SockJS 0.3.3 under every route's path: its framing over the RFC 6455
//!   transport, and the Comet transports (polling and streaming HTTP responses), whose
//!   sessions live across requests. A response that waits leaves the HTTP server
//!   (`handoff`) and is parked in its session; silent streaming sessions sleep, their rooms
//!   writing into them (`sockjs::asleep`).
//! - `session`: the seam. What backends see of a client (`Session`, `ByteSession`), what
//!   transports hand their clients to (`Service`, `ByteService`), and the `Delivery` handle.
//!   `tally` sits on it: the router wraps each client's service so that its session is
//!   counted on the way (messages, bytes, close code: its route's metrics in batches, and
//!   one access line when the client is gone), whatever its transport and backend.
//! - `backend`: `echo`, `broadcast` rooms, the socket `proxy`, `close`, and the `relay` to
//!   the user's own WebSocket, TCP or XMLSocket server (its client handshake, pure;
//!   `xmlsocket` framing, `proxy_header`), each route's `Backend` built once at start-up;
//!   `pump` moves a byte stream client's bytes to a TCP server and back, for the proxy and
//!   the relays alike (a `ws://` server's frames included: `relay::frames`).
//! - `codec`: RFC 6455 frames written and parsed by hand (pure), and `batched`: socket
//!   reads and writes batched while data flows, with no buffers while it does not; both
//!   serve a client's connection (`ws`) and an upstream server's (`backend::relay`) alike.
//! - `metrics`: what is counted (Prometheus' families; a connection's slot lowers its
//!   session's gauge when given back) and the metrics listener (`/metrics`, `/healthz`,
//!   `/readyz`, whose checks `observe` gathers from the configuration).
//! - `listeners`: the sockets served, bound from the configuration or passed by a service
//!   manager (socket activation), and tried for `--check`.
//! - `stream`: a connection's socket, plain or TLS (a `rustls::ServerConnection` driven over
//!   the socket's own non-blocking calls), what the server, `handoff` and every transport
//!   hold; `tls`: rustls settings, the `wss://` client side and `tls::server`, the main
//!   port's certificate (loaded, checked, read again on SIGHUP) and handshake.
//! - `slots`: the connection slots (`--max-connections`), each also counting against its
//!   client's address (`per_ip`: connections at once and handshakes per second, the
//!   client named by a trusted proxy's `X-Forwarded-For`).
//! - `origin`: the allow-list; `shutdown`: the stop switch and connection slots; `body`:
//!   HTTP bodies; `reach`: what
//!   `--check` lists of routes, the servers they connect to and the Flash policy, and where
//!   they contradict; `privileges`: `--user`, becoming an ordinary user once bound.
//!
//! The library takes bound listeners and a shutdown future ([`run`]), so tests run the real
//! gateway on port 0.

#![deny(unsafe_code)]

pub(crate) mod access;
pub mod args;
pub(crate) mod assets;
pub(crate) mod backend;
pub(crate) mod batched;
pub(crate) mod body;
pub(crate) mod codec;
pub mod config;
#[doc(hidden)]
pub mod fuzzing;
pub(crate) mod gateway;
pub(crate) mod handoff;
pub(crate) mod http;
pub(crate) mod listeners;
pub(crate) mod metrics;
pub(crate) mod observe;
pub(crate) mod origin;
pub(crate) mod per_ip;
pub(crate) mod policy;
pub(crate) mod prefixed;
pub mod privileges;
pub(crate) mod reach;
pub(crate) mod routes;
pub(crate) mod ruffle;
pub(crate) mod server;
pub(crate) mod session;
pub(crate) mod shutdown;
pub(crate) mod slots;
pub(crate) mod sockjs;
pub(crate) mod stream;
pub(crate) mod tally;
pub(crate) mod tls;
pub(crate) mod ws;

pub use assets::VENDOR_FILES;
pub use listeners::{Listeners, bind};

/// The RFC 6455 frame codec the gateway writes and parses by hand; public so that its
/// integration tests and its load generator build client frames with the same code.
#[doc(hidden)]
pub mod wire {
    pub use crate::codec::{Header, client_frame, encode_raw, head_len, opcode};
}

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio_util::task::TaskTracker;

use config::{BackendSpec, Config};
use gateway::Gateway;
use origin::AllowList;

/// What `--check` lists (each route, the servers it connects to, the Flash policy), and the
/// problems that would make the gateway start without what it promises (none when fine).
pub fn check(config: &Config) -> (String, Vec<String>) {
    let mut problems = Vec::new();
    let survey = reach::survey(config, &allow_list(config, config.listen));
    problems.extend(survey.problems);
    let files = assets::Files::new(
        config.web_dir.as_deref(),
        config.assets_dir.as_deref(),
        config.exposure,
    );
    problems.extend(files.problems());
    let (_, warnings) = policy::Policies::new(
        config,
        &allow_list(config, config.listen),
        config.listen,
        config.policy_listen,
    );
    problems.extend(warnings);
    problems.extend(listeners::check_listeners(config));
    let mut report = survey.report;
    if let Some(files) = &config.tls {
        match tls::server::load(files) {
            Ok(loaded) => {
                report.push_str(&tls::server::describe(files, &loaded, config.tls_only));
                problems.extend(loaded.problems(files));
            }
            Err(error) => problems.push(format!("TLS: {error:#}")),
        }
    }
    (report, problems)
}

/// The `/ruffle-config.js` script for this configuration and main listener address.
pub fn ruffle_config(config: &Config, main: SocketAddr) -> String {
    let route = config
        .routes
        .iter()
        .find(|r| r.backend == BackendSpec::Proxy);
    ruffle::config_script(
        &routes::proxy_targets(config, main),
        route.map(|r| r.path.as_str()),
        main.port(),
    )
}

fn allow_list(config: &Config, main: SocketAddr) -> AllowList {
    config
        .allow_origin
        .clone()
        .unwrap_or_else(|| AllowList::serving(main))
}

/// Asks a running gateway to read its TLS certificate and key again (what SIGHUP does);
/// requests made while one is under way come to one more.
#[derive(Clone, Default)]
pub struct Reload(Arc<tokio::sync::Notify>);

impl Reload {
    /// Asks for a reload.
    pub fn trigger(&self) {
        self.0.notify_one();
    }
}

/// Serves `listeners` until `shutdown` completes, then stops accepting, closes every
/// WebSocket with 1001, and waits up to the drain timeout for connections to finish.
pub async fn run(
    listeners: Listeners,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    run_with(listeners, config, shutdown, Reload::default()).await
}

/// As [`run`], reading the TLS certificate again each time `reload` is triggered.
pub async fn run_with(
    listeners: Listeners,
    config: Config,
    shutdown: impl Future<Output = ()>,
    reload: Reload,
) -> anyhow::Result<()> {
    let main_addr = listeners.main.local_addr()?;
    let policy_addr = listeners
        .policy
        .as_ref()
        .map(|l| l.local_addr())
        .transpose()?;
    let allow = allow_list(&config, main_addr);
    let (policies, warnings) = policy::Policies::new(&config, &allow, main_addr, policy_addr);
    for warning in warnings {
        tracing::warn!("{warning}");
    }
    let files = assets::Files::new(
        config.web_dir.as_deref(),
        config.assets_dir.as_deref(),
        config.exposure,
    );
    for problem in files.problems() {
        tracing::warn!("{problem}");
    }

    let ruffle_config = ruffle_config(&config, main_addr).into();
    let shutdown_switch = crate::shutdown::Shutdown::default();
    let tracker = TaskTracker::new();
    let metrics = Arc::<metrics::Metrics>::default();
    let (ws, sleepers) = ws::Endpoint::new(
        config.limits,
        shutdown_switch.clone(),
        tracker.clone(),
        metrics.asleep(),
    )
    .context("cannot create the hibernation epoll set")?;
    // SockJS-framed WebSockets never sleep: a sleeper's framing has no SockJS form yet.
    let framed_limits = config::Limits {
        hibernate_after: std::time::Duration::ZERO,
        ..config.limits
    };
    let (sockjs_ws, framed_sleepers) = ws::Endpoint::new(
        framed_limits,
        shutdown_switch.clone(),
        tracker.clone(),
        metrics.asleep(),
    )
    .context("cannot create the hibernation epoll set")?;
    let per_ip = per_ip::PerIp::new(
        config.limits.per_ip_connections,
        config.limits.per_ip_handshakes,
        config.trusted_proxies.clone(),
    );
    let slots = slots::Slots::limited(config.limits.max_connections, metrics.clone(), per_ip);
    let sockjs = sockjs::Endpoint::new(
        config.limits,
        shutdown_switch.clone(),
        tracker.clone(),
        slots.clone(),
        sockjs::SOCKJS_URL,
    );
    let routes = routes::build(&config, main_addr, &metrics)?;
    let tls = config
        .tls
        .as_ref()
        .map(tls::server::Acceptor::new)
        .transpose()?;
    let ready = observe::ready(&config, main_addr, policy_addr);
    let gw = Arc::new(Gateway {
        metrics,
        main_addr,
        ws: ws.clone(),
        sockjs: sockjs.clone(),
        sockjs_ws: sockjs_ws.clone(),
        routes,
        ruffle_config,
        slots,
        config,
        allow,
        policies,
        files,
        shutdown: shutdown_switch,
        tracker,
        tls,
    });

    gw.tracker.spawn(ws.watch(sleepers));
    gw.tracker.spawn(sockjs_ws.watch(framed_sleepers));
    gw.tracker.spawn(sockjs.sweep());
    let tls_on = if gw.tls.is_some() {
        "TLS and plain"
    } else {
        "plain"
    };
    let tls_on = if gw.config.tls_only {
        "TLS only"
    } else {
        tls_on
    };
    tracing::info!(listener = %"main", addr = %main_addr, speaks = tls_on, "listening");
    tracing::info!(allow = %gw.allow, "demo page: http://{main_addr}/");
    let mut loops = vec![tokio::spawn(server::accept_loop(
        listeners.main,
        gw.clone(),
    ))];
    if let (Some(listener), Some(addr)) = (listeners.policy, policy_addr) {
        tracing::info!(listener = %"policy", addr = %addr, "listening");
        loops.push(tokio::spawn(policy::listener::accept_loop(
            listener,
            gw.clone(),
        )));
    }

    if let Some(listener) = listeners.metrics {
        tracing::info!(listener = %"metrics", addr = %listener.local_addr()?, "listening");
        let stop = gw.shutdown.signal();
        loops.push(tokio::spawn(metrics::serve::run(
            listener,
            gw.metrics.clone(),
            Arc::new(ready),
            stop,
        )));
    }

    loops.push(tokio::spawn(reloads(gw.clone(), reload)));

    shutdown.await;
    tracing::info!("shutting down: closing connections");
    gw.shutdown.trigger();
    for accept in loops {
        let _ = accept.await;
    }
    gw.tracker.close();
    if tokio::time::timeout(gw.config.limits.drain_timeout, gw.tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            left = gw.tracker.len(),
            "drain timeout: dropping the remaining connections"
        );
    }
    tracing::info!("stopped");
    Ok(())
}

/// Reads the certificate again on each `reload`, until the gateway stops.
async fn reloads(gw: Arc<Gateway>, reload: Reload) {
    let mut stop = gw.shutdown.signal();
    loop {
        tokio::select! {
            () = reload.0.notified() => {}
            _ = &mut stop => return,
        }
        match &gw.tls {
            Some(tls) => match tls.reload() {
                Ok(()) => tracing::info!("reload: the TLS certificate and key were read again"),
                Err(error) => tracing::error!("reload: {error:#}; the certificate served stays"),
            },
            None => tracing::info!(
                "reload: nothing to read again (no TLS); the configuration is read at start, so restart to change it"
            ),
        }
    }
}
