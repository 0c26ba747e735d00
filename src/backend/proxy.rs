//! `proxy`: the WebSocket-to-TCP socket proxy, what Ruffle's `socketProxy` and websockify
//! clients speak. Each binary message from the client is written to a TCP target; whatever the
//! target sends comes back as binary messages, byte for byte, in order.
//!
//! Targets come from an allow-list ([`Targets`]); a target not on it is refused before any
//! connection is made. The bytes go through [`pump`]: back-pressure is end to end (the
//! client is read only when what it sent before has been written to the target, and the
//! target is read only when the client has taken the previous batch, so memory per relay is
//! one batch each way), and a target that stops reading ends the session after the write
//! timeout.

use std::fmt;
use std::time::Duration;

use tokio::net::TcpStream;

use super::pump::{self, Outward, Pump};
use crate::session::{ByteService, ByteSession, CloseReason};

/// One TCP target, `host:port`. Hosts compare case-insensitively, ports exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyTarget {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl ProxyTarget {
    /// Parses `host:port` (`[v6]:port` for IPv6).
    pub fn parse(text: &str) -> Result<ProxyTarget, String> {
        let text = text.trim();
        let (host, port) = text
            .rsplit_once(':')
            .ok_or_else(|| format!("{text:?} is not HOST:PORT"))?;
        let bracketed = host.strip_prefix('[').and_then(|h| h.strip_suffix(']'));
        let host = bracketed.unwrap_or(host);
        let port: u16 = port
            .parse()
            .map_err(|_| format!("{text:?}: {port:?} is not a port"))?;
        let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':');
        if host.is_empty() || port == 0 || !host.chars().all(valid) {
            return Err(format!("{text:?} is not HOST:PORT"));
        }
        if host.contains(':')
            && (bracketed.is_none() || host.parse::<std::net::Ipv6Addr>().is_err())
        {
            return Err(format!("{text:?}: write IPv6 addresses as [ADDR]:PORT"));
        }
        Ok(ProxyTarget {
            host: host.to_ascii_lowercase(),
            port,
        })
    }
}

impl fmt::Display for ProxyTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.host.contains(':') {
            true => write!(f, "[{}]:{}", self.host, self.port),
            false => write!(f, "{}:{}", self.host, self.port),
        }
    }
}

/// A `--proxy-target` value: an address, or `self` for the gateway's own main listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetSpec {
    /// The main listener, whatever address it is bound to.
    Own,
    /// A TCP target.
    Addr(ProxyTarget),
}

impl TargetSpec {
    /// Parses `self` or `HOST:PORT`.
    pub fn parse(text: &str) -> Result<TargetSpec, String> {
        match text.trim() {
            "self" => Ok(TargetSpec::Own),
            other => ProxyTarget::parse(other).map(TargetSpec::Addr),
        }
    }
}

/// The targets the proxy may connect to. Never empty: by default, the gateway itself.
#[derive(Debug, Clone)]
pub struct Targets {
    /// In the order given, each marked when it is the gateway's own listener; the first is
    /// used when a client names none.
    list: Vec<(ProxyTarget, bool)>,
}

impl Targets {
    /// The targets of `specs` (the gateway itself when empty), with `self` resolved to the
    /// main listener `main` (on loopback when it listens on every address).
    pub fn resolve(specs: &[TargetSpec], main: std::net::SocketAddr) -> Targets {
        let ip = match main.ip() {
            ip if !ip.is_unspecified() => ip,
            std::net::IpAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::IpAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        };
        let own = ProxyTarget {
            host: ip.to_string(),
            port: main.port(),
        };
        let specs = match specs.is_empty() {
            true => &[TargetSpec::Own][..],
            false => specs,
        };
        let list = specs
            .iter()
            .map(|spec| match spec {
                TargetSpec::Own => (own.clone(), true),
                TargetSpec::Addr(target) => (target.clone(), false),
            })
            .collect();
        Targets { list }
    }

    /// All targets in order, each with whether it is the gateway itself.
    pub fn iter(&self) -> impl Iterator<Item = (&ProxyTarget, bool)> {
        self.list.iter().map(|(target, own)| (target, *own))
    }

    /// The target for a request's `?target=`: it must be on the list. Without one, the first.
    pub fn pick(&self, requested: Option<&str>) -> Result<&ProxyTarget, String> {
        let Some(requested) = requested else {
            return Ok(&self.list[0].0);
        };
        let wanted = ProxyTarget::parse(requested)?;
        self.list
            .iter()
            .map(|(target, _)| target)
            .find(|t| **t == wanted)
            .ok_or_else(|| format!("proxy target {wanted} is not allowed (see --proxy-target)"))
    }
}

/// One client's relay: where it goes.
pub struct Relay {
    /// The target, from the allow-list.
    pub target: ProxyTarget,
    /// How long the connection to it may take.
    pub connect_timeout: Duration,
    /// How long a write to it may wait before the session ends.
    pub write_timeout: Duration,
}

impl ByteService for Relay {
    async fn serve<S: ByteSession>(self, session: &mut S) {
        let target = &self.target;
        let connect = TcpStream::connect((target.host.as_str(), target.port));
        let stream = match tokio::time::timeout(self.connect_timeout, connect).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => {
                let why = format!("cannot connect to {target}: {error}");
                return session.close(CloseReason::UpstreamFailed(why)).await;
            }
            Err(_) => {
                let why = format!("cannot connect to {target}: timed out");
                return session.close(CloseReason::UpstreamFailed(why)).await;
            }
        };
        let _ = stream.set_nodelay(true);
        tracing::debug!(%target, "socket proxy connected");
        let pump = Pump {
            server: target,
            write_timeout: self.write_timeout,
            outward: Outward::Binary,
        };
        pump::run(session, stream, pump).await;
        tracing::debug!(%target, "socket proxy closed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_and_print() {
        for (text, host, port, shown) in [
            ("127.0.0.1:8080", "127.0.0.1", 8080, "127.0.0.1:8080"),
            (
                "Game.Example:9000",
                "game.example",
                9000,
                "game.example:9000",
            ),
            ("[::1]:843", "::1", 843, "[::1]:843"),
        ] {
            let target = ProxyTarget::parse(text).unwrap();
            assert_eq!((target.host.as_str(), target.port), (host, port));
            assert_eq!(target.to_string(), shown);
        }
        for bad in [
            "",
            "host",
            "host:",
            ":80",
            "host:0",
            "host:99999",
            "a b:80",
            "::1:80",
            "h/x:1",
        ] {
            assert!(ProxyTarget::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn only_listed_targets_are_picked() {
        let specs = ["a.example:1", "b.example:2", "self"].map(|t| TargetSpec::parse(t).unwrap());
        let targets = Targets::resolve(&specs, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(targets.pick(None).unwrap().host, "a.example");
        assert_eq!(targets.pick(Some("B.example:2")).unwrap().port, 2);
        assert!(targets.pick(Some("b.example:3")).is_err());
        assert!(targets.pick(Some("c.example:1")).is_err());
        assert!(targets.pick(Some("garbage")).is_err());
        assert_eq!(targets.pick(Some("127.0.0.1:8080")).unwrap().port, 8080);
        let own: Vec<_> = targets.iter().map(|(_, own)| own).collect();
        assert_eq!(own, [false, false, true]);
    }

    #[test]
    fn own_target_is_loopback_for_a_wildcard_listener() {
        let own = Targets::resolve(&[], "0.0.0.0:8080".parse().unwrap());
        assert_eq!(own.iter().count(), 1);
        assert_eq!(own.pick(None).unwrap().to_string(), "127.0.0.1:8080");
        let own = Targets::resolve(&[TargetSpec::Own], "[::]:8080".parse().unwrap());
        assert_eq!(own.pick(None).unwrap().to_string(), "[::1]:8080");
    }
}
