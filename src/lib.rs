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
//! - `http`: each request to its handler, by `routes` (a WebSocket route owns its path and
//!   everything under it); the rest is the asset listing, `/ruffle-config.js` (`ruffle`),
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
//! - `origin`: the allow-list; `shutdown`: the stop switch and connection slots; `body`:
//!   HTTP bodies; `tls`: rustls settings (the `wss://` client side); `reach`: what
//!   `--check` lists of routes, the servers they connect to and the Flash policy, and where
//!   they contradict; `privileges`: `--user`, becoming an ordinary user once bound.
//!
//! The library takes bound listeners and a shutdown future ([`run`]), so tests run the real
//! gateway on port 0.

#![deny(unsafe_code)]

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
pub(crate) mod metrics;
pub(crate) mod observe;
pub(crate) mod origin;
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
pub(crate) mod tls;
pub(crate) mod ws;

pub use assets::VENDOR_FILES;

/// The RFC 6455 frame codec the gateway writes and parses by hand; public so that its
/// integration tests and its load generator build client frames with the same code.
#[doc(hidden)]
pub mod wire {
    pub use crate::codec::{Header, client_frame, encode_raw, head_len, opcode};
}

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::task::TaskTracker;

use config::{BackendSpec, Config};
use gateway::Gateway;
use origin::AllowList;

/// The bound sockets the gateway serves.
pub struct Listeners {
    /// HTTP, WebSocket and inline policies.
    pub main: TcpListener,
    /// The master policy listener (port 843), when there is one.
    pub policy: Option<TcpListener>,
    /// The metrics listener, when there is one.
    pub metrics: Option<TcpListener>,
}

/// Binds the configured addresses. A policy port that cannot be bound is not fatal: the
/// gateway warns, says how to fix it, and serves policies inline on the main port.
pub async fn bind(config: &Config) -> anyhow::Result<Listeners> {
    if let Some(listeners) = activated()? {
        return Ok(listeners);
    }
    let backlog = config.limits.listen_backlog;
    let main = listen(config.listen, backlog)
        .with_context(|| format!("cannot listen on {} (--listen)", config.listen))?;
    let policy = match config.policy_listen {
        None => None,
        Some(addr) => match listen(addr, backlog) {
            Ok(listener) => Some(listener),
            Err(error) => {
                tracing::warn!(
                    "cannot serve the master policy on {addr}: {}. Policies are still answered inline on the main \
                     port, but Flash Player tries port 843 first and waits 3 s for it before asking there",
                    why_not(addr, &error)
                );
                None
            }
        },
    };
    let metrics = match config.metrics_listen {
        Some(addr) => Some(
            listen(addr, backlog)
                .with_context(|| format!("cannot listen on {addr} (--metrics-listen)"))?,
        ),
        None => None,
    };
    Ok(Listeners {
        main,
        policy,
        metrics,
    })
}

/// The sockets a service manager bound and passed (socket activation: `LISTEN_FDS`, as
/// systemd sets it for `contrib/flashgate.socket`), in its order: the main listener, then
/// the master policy listener, then the metrics listener; none when nothing was passed.
fn activated() -> anyhow::Result<Option<Listeners>> {
    let mut passed = listenfd::ListenFd::from_env();
    if passed.len() == 0 {
        return Ok(None);
    }
    let mut take = |index: usize, name: &str| -> anyhow::Result<Option<TcpListener>> {
        let listener = passed.take_tcp_listener(index).with_context(|| {
            format!("socket {index} passed by the service manager ({name}) is not a TCP listener")
        })?;
        let Some(listener) = listener else {
            return Ok(None);
        };
        listener.set_nonblocking(true)?;
        Ok(Some(TcpListener::from_std(listener)?))
    };
    let main = take(0, "main")?.context("the service manager passed no main listener")?;
    let (policy, metrics) = (take(1, "policy")?, take(2, "metrics")?);
    tracing::info!(
        sockets = passed.len(),
        "listening on the sockets the service manager passed"
    );
    Ok(Some(Listeners {
        main,
        policy,
        metrics,
    }))
}

/// A listener on `addr` with a listen queue of `backlog` (the kernel caps it at
/// `net.core.somaxconn`): a burst of connections waits there instead of in SYN retries.
fn listen(addr: SocketAddr, backlog: u32) -> io::Result<TcpListener> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
    socket.set_nonblocking(true)?;
    TcpListener::from_std(socket.into())
}

/// Why `addr` cannot be listened on, and how to fix it.
fn why_not(addr: SocketAddr, error: &io::Error) -> String {
    match error.kind() {
        io::ErrorKind::PermissionDenied => {
            let binary = std::env::current_exe()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| "/path/to/flashgate".into());
            format!(
                "port {} needs privileges: run `sudo setcap cap_net_bind_service=+ep {binary}`, \
                 or start it as root with --user NAME (it serves as NAME once bound), or use --policy-listen with a port >= 1024 (behind a redirect from 843), or --policy-listen off",
                addr.port()
            )
        }
        io::ErrorKind::AddrInUse => format!("{addr} is already in use by another program"),
        _ => error.to_string(),
    }
}

/// Tries to bind the configured listeners (and releases them): problems, for `--check`.
fn check_listeners(config: &Config) -> Vec<String> {
    let mut problems = Vec::new();
    let mut listeners = vec![("--listen", config.listen)];
    listeners.extend(config.policy_listen.map(|addr| ("--policy-listen", addr)));
    listeners.extend(config.metrics_listen.map(|addr| ("--metrics-listen", addr)));
    for (option, addr) in listeners {
        if let Err(error) = std::net::TcpListener::bind(addr) {
            problems.push(format!(
                "cannot listen on {addr} ({option}): {}",
                why_not(addr, &error)
            ));
        }
    }
    problems
}

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
    problems.extend(check_listeners(config));
    (survey.report, problems)
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

/// Serves `listeners` until `shutdown` completes, then stops accepting, closes every
/// WebSocket with 1001, and waits up to the drain timeout for connections to finish.
pub async fn run(
    listeners: Listeners,
    config: Config,
    shutdown: impl Future<Output = ()>,
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
    let slots = slots::Slots::new(config.limits.max_connections, metrics.clone());
    let sockjs = sockjs::Endpoint::new(
        config.limits,
        shutdown_switch.clone(),
        tracker.clone(),
        slots.clone(),
        sockjs::SOCKJS_URL,
    );
    let routes = routes::build(&config, main_addr, &metrics)?;
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
    });

    gw.tracker.spawn(ws.watch(sleepers));
    gw.tracker.spawn(sockjs_ws.watch(framed_sleepers));
    gw.tracker.spawn(sockjs.sweep());
    tracing::info!(listener = %"main", addr = %main_addr, "listening");
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
