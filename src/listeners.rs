//! The sockets the gateway serves: bound from the configuration (the master policy port
//! allowed to fail, with what to do about it), or taken from a service manager (socket
//! activation), and tried for `--check`.

use std::io;
use std::net::SocketAddr;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::config::Config;

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
pub(crate) fn check_listeners(config: &Config) -> Vec<String> {
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
