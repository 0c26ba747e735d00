//! The command line. The doc comments below are the `--help` text; every option can also be
//! set from a `FLASHGATE_*` environment variable, or in the `--config` file.
//! [`crate::config::Config`] validates the result; [`Given`] tells it which values are only
//! defaults, which the file may replace.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::BoolishValueParser;
use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser};

/// How log lines are written (`--log-format`).
#[derive(clap::ValueEnum, serde::Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One line of text per event, for people.
    #[default]
    Text,
    /// One JSON object per event, for a log collector.
    Json,
}

/// Flash-era and modern web clients, one realtime backend: Flash socket policies,
/// the web-socket-js polyfill and an RFC 6455 WebSocket endpoint in one process.
#[derive(Parser, Debug, Clone)]
#[command(version, about, long_about = None)]
pub struct Args {
    /// TOML configuration file: any option below, and per-route settings (see
    /// docs/CONFIG.md). Options on the command line or in the environment win over it.
    #[arg(long, env = "FLASHGATE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Main listener: HTTP, WebSocket and inline Flash policy requests.
    #[arg(
        long,
        env = "FLASHGATE_LISTEN",
        default_value = "127.0.0.1:8080",
        value_name = "ADDR"
    )]
    pub listen: String,

    /// Flash master policy listener, or `off` [default: port 843 on the --listen host].
    #[arg(long, env = "FLASHGATE_POLICY_LISTEN", value_name = "ADDR|off")]
    pub policy_listen: Option<String>,

    /// Where to serve Prometheus metrics (`/metrics`), `/healthz` and `/readyz`: an address
    /// of its own, off unless set [default: off].
    #[arg(long, env = "FLASHGATE_METRICS_LISTEN", value_name = "ADDR")]
    pub metrics_listen: Option<String>,

    /// Origin allowed to use the gateway (repeat, or comma-separate); `*` allows any. It guards
    /// WebSocket upgrades, CORS on the SWFs and the Flash policy's domains. Not authentication:
    /// Flash and native clients can send any Origin [default: the gateway's own pages].
    #[arg(
        long = "allow-origin",
        env = "FLASHGATE_ALLOW_ORIGIN",
        value_delimiter = ',',
        value_name = "ORIGIN"
    )]
    pub allow_origin: Vec<String>,

    /// Serve this hand-written socket policy instead of the generated one (checked at start-up).
    #[arg(long, env = "FLASHGATE_POLICY_FILE", value_name = "FILE")]
    pub policy_file: Option<PathBuf>,

    /// WebSocket route PATH=BACKEND (repeat, or comma-separate); backends: echo, broadcast,
    /// proxy (the WebSocket-to-TCP socket proxy), close[:CODE[:REASON]] (every session closed
    /// at once; 3000 "Go away!" unless given), or your own server's URL, to which each client
    /// is relayed: ws://HOST[:PORT]/PATH, wss://…, tcp://HOST:PORT, tcp+xmlsocket://HOST:PORT
    /// (a TCP one's ?proxy-protocol=v1|v2 sends a PROXY header first)
    /// [default: /echo=echo,/chat=broadcast,/socket=proxy].
    #[arg(
        long = "route",
        env = "FLASHGATE_ROUTE",
        value_delimiter = ',',
        value_name = "PATH=BACKEND"
    )]
    pub routes: Vec<String>,

    /// TCP target the socket proxy may connect to, HOST:PORT, or `self` for the gateway's own
    /// main listener (repeat, or comma-separate). Clients pick one with `?target=HOST:PORT`
    /// (default: the first); any other is refused. Never an open proxy [default: self].
    #[arg(
        long = "proxy-target",
        env = "FLASHGATE_PROXY_TARGET",
        value_delimiter = ',',
        value_name = "HOST:PORT"
    )]
    pub proxy_targets: Vec<String>,

    /// Once the listeners are bound, run as this user (its group alone): start as root to bind
    /// port 843, serve as nobody. Without it a gateway started as root warns that it stays root.
    #[arg(long, env = "FLASHGATE_USER", value_name = "NAME")]
    pub user: Option<String>,

    /// TLS certificate chain (PEM) for the main port, with --tls-key: it then serves
    /// https:// and wss:// and, on the same port, plain clients (the first bytes decide).
    /// Reloaded on SIGHUP.
    #[arg(long, env = "FLASHGATE_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,

    /// The certificate's private key (PEM: PKCS #8, PKCS #1 or SEC1).
    #[arg(long, env = "FLASHGATE_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,

    /// With TLS, refuse plain HTTP on the main port (400); Flash policy requests, which
    /// never come over TLS, are still answered.
    #[arg(long, env = "FLASHGATE_TLS_ONLY", value_parser = BoolishValueParser::new())]
    pub tls_only: bool,

    /// Log lines as `text` (for people) or `json` (one object per line, for a collector).
    #[arg(
        long,
        env = "FLASHGATE_LOG_FORMAT",
        value_enum,
        default_value = "text",
        value_name = "FORMAT"
    )]
    pub log_format: LogFormat,

    /// Directory of pages of your own, served before flashgate's (which are built in: a
    /// page of the same name here replaces one of them) [default: none].
    #[arg(long, env = "FLASHGATE_WEB_DIR", value_name = "DIR")]
    pub web_dir: Option<PathBuf>,

    /// Directory of the static assets, the third-party files in its `vendor/` [default: the
    /// first that exists of `assets/` beside the binary, /usr/share/flashgate/assets, and the
    /// checkout the binary was built from].
    #[arg(long, env = "FLASHGATE_ASSETS_DIR", value_name = "DIR")]
    pub assets_dir: Option<PathBuf>,

    /// Serve files and directories whose name starts with `.` (without it they are 404).
    #[arg(long, env = "FLASHGATE_SERVE_HIDDEN", value_parser = BoolishValueParser::new())]
    pub serve_hidden: bool,

    /// Follow symbolic links that lead out of the served directories (without it such a link is
    /// 404; links that stay inside are always followed).
    #[arg(long, env = "FLASHGATE_FOLLOW_SYMLINKS", value_parser = BoolishValueParser::new())]
    pub follow_symlinks: bool,

    /// Time a new connection has to send its first bytes, and a policy request to complete
    /// (Flash Player waits 3 s per policy attempt).
    #[arg(long, env = "FLASHGATE_READ_TIMEOUT", default_value = "3s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub read_timeout: Duration,

    /// Time an HTTP client has to send its request headers (and a WebSocket its handshake,
    /// hixie-76's 8-byte key included).
    #[arg(long, env = "FLASHGATE_HANDSHAKE_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub handshake_timeout: Duration,

    /// A WebSocket client silent this long is pinged; one silent as long again is closed (1001).
    /// A hixie-76 client, which has no pings, is closed.
    #[arg(long, env = "FLASHGATE_IDLE_TIMEOUT", default_value = "60s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub idle_timeout: Duration,

    /// A WebSocket client (echo, broadcast) silent this long gives back its task and buffers
    /// and waits in the kernel until it speaks again or a message comes for it (pings and the
    /// idle timeout still apply); 0s: never.
    #[arg(long, env = "FLASHGATE_HIBERNATE_AFTER", default_value = "1s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub hibernate_after: Duration,

    /// Largest WebSocket message accepted, in bytes; a larger one closes the connection (1009).
    /// The socket proxy streams bytes and takes messages of any size.
    #[arg(long, env = "FLASHGATE_MAX_MESSAGE_SIZE", default_value_t = 1 << 20, value_name = "BYTES")]
    pub max_message_size: usize,

    /// Bytes that may wait for one broadcast member (each message counts its length and 64).
    /// A member over it that reads nothing for 2 s, or any member past four times it, is
    /// closed (1008) so that it never slows the others.
    #[arg(
        long,
        env = "FLASHGATE_SEND_BACKLOG",
        default_value_t = 4 << 20,
        value_name = "BYTES"
    )]
    pub send_backlog: usize,

    /// Most connections served at once; further ones wait in the listen queue.
    #[arg(
        long,
        env = "FLASHGATE_MAX_CONNECTIONS",
        default_value_t = 10_000,
        value_name = "N"
    )]
    pub max_connections: usize,

    /// Connections the kernel queues for each listener before they are accepted (it caps
    /// this at `net.core.somaxconn`). Large, so that a burst of clients waits here rather
    /// than in SYN retries of a second or more.
    #[arg(
        long,
        env = "FLASHGATE_LISTEN_BACKLOG",
        default_value_t = 4096,
        value_name = "N"
    )]
    pub listen_backlog: u32,

    /// Connections one client address may hold at once (an IPv6 client: its /64); more
    /// are answered 429. 0: no limit. Flash policy requests are always answered.
    #[arg(
        long,
        env = "FLASHGATE_PER_IP_CONNECTIONS",
        default_value_t = 0,
        value_name = "N"
    )]
    pub per_ip_connections: usize,

    /// WebSocket handshakes and new SockJS sessions one client address may start each
    /// second (and as many at once); more are answered 429 with Retry-After. 0: no limit.
    #[arg(
        long,
        env = "FLASHGATE_PER_IP_HANDSHAKES",
        default_value_t = 0,
        value_name = "PER_SECOND"
    )]
    pub per_ip_handshakes: u32,

    /// A proxy in front of the gateway, ADDR or ADDR/BITS (repeat, or comma-separate):
    /// its X-Forwarded-For names the client that the limits per address count.
    #[arg(
        long = "trusted-proxy",
        env = "FLASHGATE_TRUSTED_PROXY",
        value_delimiter = ',',
        value_name = "CIDR"
    )]
    pub trusted_proxies: Vec<String>,

    /// On SIGINT/SIGTERM, how long to wait for clients to finish after telling them to go.
    #[arg(long, env = "FLASHGATE_DRAIN_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub drain_timeout: Duration,

    /// Check the configuration (policy, routes, origins, assets), list each route and the
    /// servers it connects to, and exit: 0 if usable, 1 if not.
    #[arg(long)]
    pub check: bool,

    /// Print the `/ruffle-config.js` script (Ruffle's socketProxy setting for the --listen
    /// address and the proxy targets) and exit.
    #[arg(long)]
    pub print_ruffle_config: bool,
}

/// The options set on the command line or in the environment, by their long names
/// (`policy-listen`): the others are defaults, which a configuration file may replace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Given(Vec<String>);

impl Given {
    /// What `matches` holds that was not a default.
    pub fn of(matches: &ArgMatches) -> Given {
        let given = Args::command()
            .get_arguments()
            .filter(|arg| {
                matches!(
                    matches.value_source(arg.get_id().as_str()),
                    Some(ValueSource::CommandLine | ValueSource::EnvVariable)
                )
            })
            .filter_map(|arg| arg.get_long().map(str::to_string))
            .collect();
        Given(given)
    }

    /// True when the option `--long` was set on the command line or in the environment.
    pub fn contains(&self, long: &str) -> bool {
        self.0.iter().any(|given| given == long)
    }
}

/// The process's command line and what of it was given; on a bad one, clap's message and
/// exit, as [`Parser::parse`] does.
pub fn parse() -> (Args, Given) {
    try_parse_from(std::env::args_os()).unwrap_or_else(|error| error.exit())
}

/// The command line `argv` (the program's name first) and what of it was given.
pub fn try_parse_from<I, T>(argv: I) -> Result<(Args, Given), clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let mut command = Args::command();
    let matches = command.try_get_matches_from_mut(argv)?;
    let args = Args::from_arg_matches(&matches).map_err(|error| error.format(&mut command))?;
    Ok((args, Given::of(&matches)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_tells_flags_and_variables_from_defaults() {
        let (_, given) = try_parse_from(["flashgate", "--listen", "127.0.0.1:8080"]).unwrap();
        assert!(
            given.contains("listen"),
            "a flag equal to its default is still given"
        );
        assert!(!given.contains("idle-timeout"));
        assert!(!given.contains("route"));
        assert!(!given.contains("serve-hidden"));
        let (_, given) =
            try_parse_from(["flashgate", "--serve-hidden", "--route", "/a=echo"]).unwrap();
        assert!(given.contains("serve-hidden") && given.contains("route"));
    }
}
