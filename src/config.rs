//! The validated configuration: what [`crate::args::Args`] becomes once every value has been
//! checked. No clap type travels further than this file.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;

use crate::args::Args;
use crate::backend::proxy::TargetSpec;
use crate::origin::AllowList;
use crate::policy::xml::{self, Grant};

/// Everything the gateway needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the main listener binds.
    pub listen: SocketAddr,
    /// Where the master policy listener binds; `None` when turned off.
    pub policy_listen: Option<SocketAddr>,
    /// The allow-list given on the command line; `None` means the default, which depends on
    /// the address the main listener actually bound (see [`AllowList::serving`]).
    pub allow_origin: Option<AllowList>,
    /// A hand-written policy that replaces the generated one.
    pub policy_file: Option<PolicyFile>,
    /// WebSocket routes, path to backend.
    pub routes: Vec<RouteSpec>,
    /// The socket proxy's allowed targets; empty means the default, the gateway's own main
    /// listener (`self`, known once it is bound).
    pub proxy_targets: Vec<TargetSpec>,
    /// Our pages.
    pub web_dir: PathBuf,
    /// Our assets; third-party files in its `vendor/`.
    pub assets_dir: PathBuf,
    /// Whether dotfiles and symbolic links out of the served directories are served.
    pub exposure: crate::assets::Exposure,
    /// Timeouts and sizes.
    pub limits: Limits,
}

/// How long a broadcast member over its `--send-backlog` may take nothing before it is
/// closed as too slow.
pub const SLOW_GRACE: Duration = Duration::from_secs(2);

/// Timeouts and bounds, copied into every connection.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// First bytes of a connection, and a whole policy request.
    pub read_timeout: Duration,
    /// HTTP request headers.
    pub handshake_timeout: Duration,
    /// WebSocket silence before a ping, and again before closing.
    pub idle_timeout: Duration,
    /// Silence after which an echo or broadcast WebSocket sleeps; zero: never.
    pub hibernate_after: Duration,
    /// Largest incoming WebSocket message.
    pub max_message_size: usize,
    /// Bytes queued for one broadcast member past which it is closed as too slow, if it
    /// takes nothing for [`SLOW_GRACE`] (or at once past four times as much).
    pub send_backlog: usize,
    /// Connections served at once.
    pub max_connections: usize,
    /// Connections the kernel queues for each listener before they are accepted.
    pub listen_backlog: u32,
    /// How long shutdown waits for clients.
    pub drain_timeout: Duration,
}

/// A hand-written policy, read and validated at start-up.
#[derive(Debug, Clone)]
pub struct PolicyFile {
    /// Where it came from, for messages.
    pub path: PathBuf,
    /// The reply: the file's bytes and a NUL.
    pub reply: Bytes,
    /// What it grants, for the port-rule check.
    pub grants: Vec<Grant>,
}

/// One WebSocket route as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    /// Request path, e.g. `/chat`; the route owns everything under it too (`/chat/…`).
    pub path: String,
    /// What serves it.
    pub backend: BackendSpec,
    /// SockJS on it.
    pub sockjs: SockjsOptions,
}

/// SockJS (protocol 0.3.3) on a route, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SockjsOptions {
    /// The route is also a SockJS base URL.
    pub enabled: bool,
    /// Its WebSocket transports (SockJS-framed and raw) are on.
    pub websocket: bool,
    /// Session responses set a `JSESSIONID` cookie, for load balancers that stick to it.
    pub cookie: bool,
    /// Time between heartbeat frames while a receiving request has nothing to send.
    pub heartbeat: Duration,
    /// How long a session lives without a receiving request.
    pub disconnect_delay: Duration,
    /// Bytes after which a streaming response ends and the client opens another.
    pub response_limit: usize,
}

impl SockjsOptions {
    /// The protocol's defaults, for a route whose backend speaks messages.
    pub fn for_backend(backend: &BackendSpec) -> SockjsOptions {
        SockjsOptions {
            // SockJS carries text: the socket proxy's byte stream has no place in it.
            enabled: !matches!(backend, BackendSpec::Proxy),
            websocket: true,
            cookie: false,
            heartbeat: Duration::from_secs(25),
            disconnect_delay: Duration::from_secs(5),
            response_limit: 128 * 1024,
        }
    }
}

impl RouteSpec {
    /// A route at `path` served by `backend`, with SockJS as the protocol's defaults say.
    pub fn new(path: &str, backend: BackendSpec) -> RouteSpec {
        RouteSpec {
            path: path.to_string(),
            sockjs: SockjsOptions::for_backend(&backend),
            backend,
        }
    }
}

/// The built-in backends, as configured ([`crate::backend::Backend`] is what is built from
/// them at start-up).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendSpec {
    /// Each message goes back to its sender.
    Echo,
    /// Each message goes to every client in the same room, the sender included.
    Broadcast,
    /// Binary messages are relayed to a TCP target and back (the socket proxy).
    Proxy,
}

impl BackendSpec {
    /// The name used on the command line and in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            BackendSpec::Echo => "echo",
            BackendSpec::Broadcast => "broadcast",
            BackendSpec::Proxy => "proxy",
        }
    }
}

impl Config {
    /// Checks the command line and loads the policy file.
    pub fn from_args(args: &Args) -> anyhow::Result<Config> {
        let listen = resolve(&args.listen).context("--listen")?;
        let policy_listen = match args.policy_listen.as_deref().map(str::trim) {
            Some("off") => None,
            Some(addr) => Some(resolve(addr).context("--policy-listen")?),
            None => Some(SocketAddr::new(listen.ip(), 843)),
        };
        let allow_origin = match args.allow_origin.is_empty() {
            true => None,
            false => Some(AllowList::parse(&args.allow_origin).context("--allow-origin")?),
        };
        let policy_file = args
            .policy_file
            .as_ref()
            .map(|p| load_policy_file(p.clone()))
            .transpose()?;
        let routes = parse_routes(&args.routes).context("--route")?;
        let proxy_targets = args
            .proxy_targets
            .iter()
            .map(|t| TargetSpec::parse(t))
            .collect::<Result<Vec<_>, _>>()
            .map_err(anyhow::Error::msg)
            .context("--proxy-target")?;
        if args.max_message_size < 125 {
            bail!("--max-message-size must be at least 125 bytes");
        }
        if args.send_backlog < 1024 {
            bail!("--send-backlog must be at least 1024 bytes");
        }
        if args.max_connections == 0 {
            bail!("--max-connections must be at least 1");
        }
        Ok(Config {
            listen,
            policy_listen,
            allow_origin,
            policy_file,
            routes,
            proxy_targets,
            web_dir: args.web_dir.clone(),
            assets_dir: args.assets_dir.clone(),
            exposure: crate::assets::Exposure {
                hidden: args.serve_hidden,
                follow_symlinks: args.follow_symlinks,
            },
            limits: Limits {
                read_timeout: args.read_timeout,
                handshake_timeout: args.handshake_timeout,
                idle_timeout: args.idle_timeout,
                hibernate_after: args.hibernate_after,
                max_message_size: args.max_message_size,
                send_backlog: args.send_backlog,
                max_connections: args.max_connections,
                listen_backlog: args.listen_backlog,
                drain_timeout: args.drain_timeout,
            },
        })
    }

    /// The route configured for exactly `path`, if any.
    pub fn route(&self, path: &str) -> Option<&RouteSpec> {
        self.routes.iter().find(|r| r.path == path)
    }
}

fn resolve(addr: &str) -> anyhow::Result<SocketAddr> {
    addr.to_socket_addrs()
        .with_context(|| format!("{addr:?} is not an address like 127.0.0.1:8080"))?
        .next()
        .with_context(|| format!("{addr:?} resolves to no address"))
}

fn load_policy_file(path: PathBuf) -> anyhow::Result<PolicyFile> {
    let src = std::fs::read(&path).with_context(|| format!("--policy-file {}", path.display()))?;
    let grants =
        xml::validate(&src).with_context(|| format!("--policy-file {}", path.display()))?;
    let mut reply = src;
    reply.push(0);
    Ok(PolicyFile {
        path,
        reply: reply.into(),
        grants,
    })
}

fn parse_routes(specs: &[String]) -> anyhow::Result<Vec<RouteSpec>> {
    if specs.is_empty() {
        return Ok(vec![
            RouteSpec::new("/echo", BackendSpec::Echo),
            RouteSpec::new("/chat", BackendSpec::Broadcast),
            RouteSpec::new("/socket", BackendSpec::Proxy),
        ]);
    }
    let mut routes: Vec<RouteSpec> = Vec::new();
    for spec in specs {
        let (path, backend) = spec
            .split_once('=')
            .with_context(|| format!("{spec:?} is not PATH=BACKEND"))?;
        let backend = match backend.trim() {
            "echo" => BackendSpec::Echo,
            "broadcast" => BackendSpec::Broadcast,
            "proxy" => BackendSpec::Proxy,
            other => bail!("{spec:?}: unknown backend {other:?} (known: echo, broadcast, proxy)"),
        };
        let path = path.trim();
        if !path.starts_with('/') || path.contains(['?', '#', ' ']) {
            bail!("{spec:?}: the path must start with / and hold no query");
        }
        if path == "/" || path.ends_with('/') {
            bail!(
                "{spec:?}: a route owns its path and everything under it: give a path without a trailing /"
            );
        }
        // A route owns everything under its path: it must not hide the gateway's own files.
        let hides = |own: &str| own == path || own.starts_with(&format!("{path}/"));
        let own = [
            "/assets.json",
            "/ruffle-config.js",
            "/hixie76/web_socket.js",
            "/ruffle/ruffle.js",
        ];
        if let Some(hidden) = own.into_iter().find(|own| hides(own)) {
            bail!("{spec:?}: {path} would hide {hidden}, which the gateway serves");
        }
        if routes.iter().any(|r| r.path == path) {
            bail!("{spec:?}: {path} is routed twice");
        }
        routes.push(RouteSpec::new(path, backend));
    }
    Ok(routes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn args(list: &[&str]) -> Args {
        Args::try_parse_from(std::iter::once("flashgate").chain(list.iter().copied())).unwrap()
    }

    #[test]
    fn defaults_route_echo_and_chat_and_policy_on_843() {
        let config = Config::from_args(&args(&[])).unwrap();
        assert_eq!(config.route("/echo").unwrap().backend, BackendSpec::Echo);
        assert_eq!(
            config.route("/chat").unwrap().backend,
            BackendSpec::Broadcast
        );
        assert_eq!(config.policy_listen, Some("127.0.0.1:843".parse().unwrap()));
    }

    #[test]
    fn policy_listener_can_be_turned_off() {
        let config = Config::from_args(&args(&["--policy-listen", "off"])).unwrap();
        assert_eq!(config.policy_listen, None);
    }

    #[test]
    fn bad_routes_are_rejected() {
        for bad in [
            "/x",
            "/x=nope",
            "x=echo",
            "/a=echo,/a=broadcast",
            "/assets.json=echo",
            "/=echo",
            "/chat/=echo",
            "/hixie76=echo",
            "/ruffle=broadcast",
        ] {
            assert!(
                Config::from_args(&args(&["--route", bad])).is_err(),
                "{bad} accepted"
            );
        }
    }

    #[test]
    fn durations_read_like_humans_write_them() {
        let config = Config::from_args(&args(&["--idle-timeout", "1m 30s"])).unwrap();
        assert_eq!(config.limits.idle_timeout, Duration::from_secs(90));
    }
}
