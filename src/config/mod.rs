//! The validated configuration: what [`crate::args::Args`] and the configuration file
//! ([`file`]) become once every value has been checked. No clap type travels further than
//! this module.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;

use crate::args::{Args, Given};
use crate::backend::proxy::TargetSpec;
use crate::origin::AllowList;
use crate::policy::xml::{self, Grant};

mod file;
mod routes;
mod upstream;

pub use routes::{CLOSE_CODE, CLOSE_REASON};
pub use upstream::{UpstreamOptions, UpstreamSpec};

/// Everything the gateway needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the main listener binds.
    pub listen: SocketAddr,
    /// Where the master policy listener binds; `None` when turned off.
    pub policy_listen: Option<SocketAddr>,
    /// Where the metrics listener binds; `None` (the default) when there is none.
    pub metrics_listen: Option<SocketAddr>,
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
    /// The main port's certificate and key, when it speaks TLS.
    pub tls: Option<TlsFiles>,
    /// Plain HTTP is refused on the main port (TLS only).
    pub tls_only: bool,
    /// The proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// How log lines are written.
    pub log_format: crate::args::LogFormat,
    /// Who to become once the listeners are bound.
    pub user: Option<crate::privileges::RunAs>,
    /// The user's pages, served before ours (built in); none unless given.
    pub web_dir: Option<PathBuf>,
    /// The assets directory, the third-party files in its `vendor/`; looked for unless
    /// given (`assets::locate`).
    pub assets_dir: Option<PathBuf>,
    /// Whether dotfiles and symbolic links out of the served directories are served.
    pub exposure: crate::assets::Exposure,
    /// Timeouts and sizes.
    pub limits: Limits,
}

/// The main port's TLS certificate chain and private key (PEM files), read at start-up and
/// again on SIGHUP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, the server's first.
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
}

/// Both files or neither: `cert` and `key` as the options (`cert_name`, `key_name`) gave
/// them.
pub fn tls_files(
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    cert_name: &str,
    key_name: &str,
) -> anyhow::Result<Option<TlsFiles>> {
    match (cert, key) {
        (Some(cert), Some(key)) => Ok(Some(TlsFiles { cert, key })),
        (None, None) => Ok(None),
        (Some(_), None) => bail!("{cert_name} needs {key_name} too"),
        (None, Some(_)) => bail!("{key_name} needs {cert_name} too"),
    }
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
    /// Connections at once per client address; 0: no limit.
    pub per_ip_connections: usize,
    /// Handshakes per second per client address; 0: no limit.
    pub per_ip_handshakes: u32,
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendSpec {
    /// Each message goes back to its sender.
    Echo,
    /// Each message goes to every client in the same room, the sender included.
    Broadcast,
    /// Binary messages are relayed to a TCP target and back (the socket proxy).
    Proxy,
    /// Each client is relayed to the user's own TCP or XMLSocket server.
    Upstream(UpstreamSpec),
    /// Every session is closed at once with this code and reason (a route under
    /// maintenance, say). Built by [`BackendSpec::close`], which checks both.
    Close {
        /// The close code: 1000, or one of the applications' 3000-4999.
        code: u16,
        /// Why, at most [`MAX_CLOSE_REASON`] bytes.
        reason: String,
    },
}

/// The longest close reason, in bytes: what a close frame carries.
pub const MAX_CLOSE_REASON: usize = 123;

impl BackendSpec {
    /// The names of the backends, as the command line and the configuration file spell them.
    pub const NAMES: [&'static str; 4] = ["echo", "broadcast", "proxy", "close"];

    /// The name used on the command line and in logs.
    pub fn as_str(&self) -> &'static str {
        match self {
            BackendSpec::Echo => "echo",
            BackendSpec::Broadcast => "broadcast",
            BackendSpec::Proxy => "proxy",
            BackendSpec::Close { .. } => "close",
            BackendSpec::Upstream(upstream) => upstream.scheme(),
        }
    }

    /// A `close` backend, once its code and reason are checked: a code a server may send
    /// for this (1000, or 3000-4999), and a reason that fits a close frame.
    pub fn close(code: u16, reason: &str) -> Result<BackendSpec, String> {
        routes::check_close_code(code)?;
        routes::check_close_reason(reason)?;
        Ok(BackendSpec::Close {
            code,
            reason: reason.to_string(),
        })
    }
}

impl Config {
    /// Checks the command line and the `--config` file, and loads the policy file. A value
    /// that `given` does not hold is a default, which the configuration file replaces when it
    /// sets it: the command line and the environment win over the file, the file over the
    /// defaults.
    pub fn load(args: &Args, given: &Given) -> anyhow::Result<Config> {
        let mut config = Config::from_command_line(args)?;
        if let Some(path) = &args.config {
            file::apply(path, &mut config, given)?;
        }
        config.check_tls()?;
        Ok(config)
    }

    /// Checks the command line alone and loads the policy file. A `--config` file is refused
    /// here: only [`Config::load`] knows which values it may replace.
    pub fn from_args(args: &Args) -> anyhow::Result<Config> {
        if let Some(path) = &args.config {
            bail!(
                "--config {}: a configuration file needs to know which options were given (Config::load)",
                path.display()
            );
        }
        let config = Config::from_command_line(args)?;
        config.check_tls()?;
        Ok(config)
    }

    /// TLS-only needs TLS.
    fn check_tls(&self) -> anyhow::Result<()> {
        if self.tls_only && self.tls.is_none() {
            bail!("--tls-only needs --tls-cert and --tls-key");
        }
        Ok(())
    }

    fn from_command_line(args: &Args) -> anyhow::Result<Config> {
        let listen = resolve(&args.listen).context("--listen")?;
        let policy_listen = match &args.policy_listen {
            Some(text) => policy_listen(text).context("--policy-listen")?,
            None => Some(policy_port_of(listen)),
        };
        let metrics_listen = args
            .metrics_listen
            .as_deref()
            .map(resolve)
            .transpose()
            .context("--metrics-listen")?;
        let allow_origin = match args.allow_origin.is_empty() {
            true => None,
            false => Some(AllowList::parse(&args.allow_origin).context("--allow-origin")?),
        };
        let policy_file = args
            .policy_file
            .as_ref()
            .map(|p| load_policy_file(p.clone(), "--policy-file"))
            .transpose()?;
        let routes = routes::parse(&args.routes).context("--route")?;
        let user = args
            .user
            .as_deref()
            .map(crate::privileges::RunAs::look_up)
            .transpose()
            .context("--user")?;
        let proxy_targets = args
            .proxy_targets
            .iter()
            .map(|t| TargetSpec::parse(t))
            .collect::<Result<Vec<_>, _>>()
            .map_err(anyhow::Error::msg)
            .context("--proxy-target")?;
        for (option, value) in [
            ("max-message-size", args.max_message_size),
            ("send-backlog", args.send_backlog),
            ("max-connections", args.max_connections),
        ] {
            at_least(option, value).map_err(|why| anyhow::anyhow!("--{option} {why}"))?;
        }
        Ok(Config {
            listen,
            policy_listen,
            metrics_listen,
            allow_origin,
            policy_file,
            routes,
            proxy_targets,
            tls: tls_files(
                args.tls_cert.clone(),
                args.tls_key.clone(),
                "--tls-cert",
                "--tls-key",
            )?,
            tls_only: args.tls_only,
            trusted_proxies: (args.trusted_proxies.iter())
                .map(|p| parse_proxy(p))
                .collect::<Result<_, _>>()
                .context("--trusted-proxy")?,
            log_format: args.log_format,
            user,
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
                per_ip_connections: args.per_ip_connections,
                per_ip_handshakes: args.per_ip_handshakes,
            },
        })
    }

    /// The route configured for exactly `path`, if any.
    pub fn route(&self, path: &str) -> Option<&RouteSpec> {
        self.routes.iter().find(|r| r.path == path)
    }
}

/// A trusted proxy: an address, or a network as ADDR/BITS.
pub(crate) fn parse_proxy(text: &str) -> anyhow::Result<ipnet::IpNet> {
    let text = text.trim();
    if let Ok(ip) = text.parse::<std::net::IpAddr>() {
        return Ok(ipnet::IpNet::from(ip));
    }
    let net: ipnet::IpNet = text.parse().map_err(|_| {
        anyhow::anyhow!("{text:?} is neither an address nor ADDR/BITS (e.g. 10.0.0.0/8)")
    })?;
    Ok(net.trunc())
}

/// The least value of the size limit `--option`, checked wherever it is set: why `value` is
/// too small, if it is.
fn at_least(option: &str, value: usize) -> Result<(), String> {
    let (least, unit) = match option {
        "max-message-size" | "upstream.max-message-size" => (125, " bytes"),
        "send-backlog" => (1024, " bytes"),
        "max-connections" => (1, ""),
        _ => (0, ""),
    };
    match value < least {
        true => Err(format!("must be at least {least}{unit}")),
        false => Ok(()),
    }
}

/// Where the master policy listener binds unless told: port 843 on the main listener's host.
fn policy_port_of(listen: SocketAddr) -> SocketAddr {
    SocketAddr::new(listen.ip(), 843)
}

/// A `--policy-listen` value: an address, or `off`.
fn policy_listen(text: &str) -> anyhow::Result<Option<SocketAddr>> {
    match text.trim() {
        "off" => Ok(None),
        addr => resolve(addr).map(Some),
    }
}

fn resolve(addr: &str) -> anyhow::Result<SocketAddr> {
    addr.to_socket_addrs()
        .with_context(|| format!("{addr:?} is not an address like 127.0.0.1:8080"))?
        .next()
        .with_context(|| format!("{addr:?} resolves to no address"))
}

/// Reads and validates the policy file at `path`, given as `option`.
fn load_policy_file(path: PathBuf, option: &str) -> anyhow::Result<PolicyFile> {
    let src = std::fs::read(&path).with_context(|| format!("{option} {}", path.display()))?;
    let grants = xml::validate(&src).with_context(|| format!("{option} {}", path.display()))?;
    let mut reply = src;
    reply.push(0);
    Ok(PolicyFile {
        path,
        reply: reply.into(),
        grants,
    })
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
    fn the_command_line_alone_refuses_a_configuration_file_it_cannot_rank() {
        let why = Config::from_args(&args(&["--config", "flashgate.toml"])).unwrap_err();
        assert!(why.to_string().contains("Config::load"), "{why}");
    }

    #[test]
    fn a_close_route_comes_from_the_command_line_too() {
        let config = Config::from_args(&args(&["--route", "/maint=close:4000:Back soon"])).unwrap();
        let route = config.route("/maint").unwrap();
        assert_eq!(
            route.backend,
            BackendSpec::close(4000, "Back soon").unwrap()
        );
        assert!(route.sockjs.enabled, "SockJS stays on for a close route");
        assert!(Config::from_args(&args(&["--route", "/maint=close:1005"])).is_err());
    }

    #[test]
    fn durations_read_like_humans_write_them() {
        let config = Config::from_args(&args(&["--idle-timeout", "1m 30s"])).unwrap();
        assert_eq!(config.limits.idle_timeout, Duration::from_secs(90));
    }
}
