//! flashgate: Flash-era and modern web clients, one realtime backend.
//!
//! # Layout
//!
//! - [`args`] → [`config`]: the command line, then the validated configuration.
//! - [`server`]: the main listener's accept loop; every connection on the
//!   main port is sniffed once ([`policy::sniff`]) and becomes a policy reply or HTTP
//!   ([`prefixed`] replays the sniffed bytes to the HTTP parser).
//! - [`policy`]: the Flash socket policy: pure recognition and XML, the reply, and the master
//!   policy listener, which answers most requests without a task.
//! - [`http`]: routes HTTP requests to [`ws`] (WebSocket upgrades) or [`assets`] (files).
//! - [`ws`]: the RFC 6455 handshake and a [`session::Session`] over a WebSocket; silent
//!   clients sleep without a task ([`ws::hibernate`]); the socket proxy's clients are a
//!   byte stream ([`ws::stream`]), their frames decoded in place ([`ws::inbound`]).
//! - [`session`]: what backends see of a client, whatever its transport.
//! - [`backend`]: `echo` and `broadcast`.
//! - [`backend`]'s `proxy`: the WebSocket-to-TCP socket proxy; [`ruffle`]: the
//!   `socketProxy` configuration that points Ruffle at it.
//! - [`origin`]: the allow-list; [`shutdown`]: the stop switch.
//!
//! The library takes bound listeners and a shutdown future ([`run`]), so tests run the real
//! gateway on port 0.

pub mod args;
pub mod assets;
pub mod backend;
pub mod config;
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod origin;
pub mod policy;
pub mod prefixed;
pub mod ruffle;
pub mod server;
pub mod session;
pub mod shutdown;
pub mod ws;

use std::future::Future;
use std::io;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;

use config::Config;
use origin::AllowList;
use server::Gateway;

/// The bound sockets the gateway serves.
pub struct Listeners {
    /// HTTP, WebSocket and inline policies.
    pub main: TcpListener,
    /// The master policy listener (port 843), when there is one.
    pub policy: Option<TcpListener>,
}

/// Binds the configured addresses. A policy port that cannot be bound is not fatal: the
/// gateway warns, says how to fix it, and serves policies inline on the main port.
pub async fn bind(config: &Config) -> anyhow::Result<Listeners> {
    let main = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {} (--listen)", config.listen))?;
    let policy = match config.policy_listen {
        None => None,
        Some(addr) => match TcpListener::bind(addr).await {
            Ok(listener) => Some(listener),
            Err(error) => {
                let why = match error.kind() {
                    io::ErrorKind::PermissionDenied => format!(
                        "port {} needs privileges: run `sudo setcap cap_net_bind_service=+ep $(which flashgate)`, \
                         or use --policy-listen with a port >= 1024 (behind a redirect from 843), or --policy-listen off",
                        addr.port()
                    ),
                    _ => error.to_string(),
                };
                tracing::warn!(
                    "cannot serve the master policy on {addr}: {why}. Policies are still answered inline on the main \
                     port, but Flash Player tries port 843 first and waits 3 s for it before asking there"
                );
                None
            }
        },
    };
    Ok(Listeners { main, policy })
}

/// Problems that would make the gateway start without what it promises; empty when fine.
pub fn check(config: &Config) -> Vec<String> {
    let mut problems = Vec::new();
    let files = assets::Files::new(&config.web_dir, &config.assets_dir);
    let missing = files.missing_vendor();
    if !missing.is_empty() {
        problems.push(format!(
            "missing in {}/vendor: {}; {}",
            config.assets_dir.display(),
            missing.join(", "),
            assets::FETCH_HINT
        ));
    }
    if !config.web_dir.join("index.html").is_file() {
        problems.push(format!(
            "no index.html in {} (--web-dir)",
            config.web_dir.display()
        ));
    }
    let (_, warnings) = policy::Policies::new(
        config,
        &allow_list(config, config.listen),
        config.listen,
        config.policy_listen,
    );
    problems.extend(warnings);
    problems
}

/// The `/ruffle-config.js` script for this configuration and main listener address.
pub fn ruffle_config(config: &Config, main: std::net::SocketAddr) -> String {
    let route = config
        .routes
        .iter()
        .find(|r| r.backend == config::BackendKind::Proxy);
    ruffle::config_script(
        &proxy_targets(config, main),
        route.map(|r| r.path.as_str()),
        main.port(),
    )
}

fn proxy_targets(config: &Config, main: std::net::SocketAddr) -> backend::proxy::Targets {
    backend::proxy::Targets::resolve(&config.proxy_targets, main)
}

fn allow_list(config: &Config, main: std::net::SocketAddr) -> AllowList {
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
    let files = assets::Files::new(&config.web_dir, &config.assets_dir);
    let missing = files.missing_vendor();
    if !missing.is_empty() {
        tracing::warn!("{} (missing: {})", assets::FETCH_HINT, missing.join(", "));
    }

    let targets = proxy_targets(&config, main_addr);
    let ruffle_config = ruffle_config(&config, main_addr).into();
    let (hibernation, sleepers) =
        ws::hibernate::Hibernation::new().context("cannot create the hibernation epoll set")?;
    let hibernation = Arc::new(hibernation);
    let send_queue = config.limits.send_queue;
    let gw = Arc::new(Gateway {
        hibernation: hibernation.clone(),
        targets,
        ruffle_config,
        slots: Arc::new(Semaphore::new(config.limits.max_connections)),
        config,
        allow,
        policies,
        files,
        rooms: backend::broadcast::Rooms::new(hibernation.clone(), send_queue),
        shutdown: Default::default(),
        tracker: TaskTracker::new(),
    });

    gw.tracker.spawn(ws::hibernate::watch(sleepers, gw.clone()));
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
