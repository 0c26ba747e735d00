//! Upstream routes as configured: the server's URL (`ws://`, `wss://`, `tcp://`,
//! `tcp+xmlsocket://`) parsed, and the route's settings for it.

use std::path::PathBuf;
use std::time::Duration;

use crate::backend::proxy::ProxyTarget;
use crate::backend::proxy_header;
use crate::backend::relay::Wire;

/// An upstream route's server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamSpec {
    /// The server.
    pub target: ProxyTarget,
    /// How it frames messages.
    pub wire: Wire,
    /// `wss://`: the connection is TLS.
    pub tls: bool,
    /// A WebSocket server's path and query (`/` when the URL has none); empty for TCP.
    pub resource: String,
    /// The route's settings.
    pub options: UpstreamOptions,
}

/// A route's settings for its upstream; each `None` takes the gateway's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamOptions {
    /// How long connecting may take (TCP, TLS and the WebSocket handshake):
    /// `--handshake-timeout` unless set.
    pub connect_timeout: Option<Duration>,
    /// How long a write to the server may wait before the session ends: `--idle-timeout`
    /// unless set.
    pub write_timeout: Option<Duration>,
    /// The PROXY header the server is sent first, if any.
    pub proxy_header: Option<proxy_header::Version>,
    /// A WebSocket server learns the client's address (`X-Forwarded-For`, `Forwarded`).
    pub forwarded: bool,
    /// A WebSocket server gets the client's cookies.
    pub cookies: bool,
    /// The largest message either way: `--max-message-size` unless set.
    pub max_message_size: Option<usize>,
    /// `wss://`: the CA certificates (PEM) to trust instead of the system's.
    pub ca_file: Option<PathBuf>,
}

impl Default for UpstreamOptions {
    fn default() -> Self {
        UpstreamOptions {
            connect_timeout: None,
            write_timeout: None,
            proxy_header: None,
            forwarded: true,
            cookies: false,
            max_message_size: None,
            ca_file: None,
        }
    }
}

impl UpstreamSpec {
    /// The URL's scheme, which names the backend in logs.
    pub fn scheme(&self) -> &'static str {
        match (self.wire, self.tls) {
            (Wire::Raw, _) => "tcp",
            (Wire::XmlSocket, _) => "tcp+xmlsocket",
            (Wire::WebSocket, false) => "ws",
            (Wire::WebSocket, true) => "wss",
        }
    }

    /// The URL as it could be written back.
    pub fn url(&self) -> String {
        format!("{}://{}{}", self.scheme(), self.target, self.resource)
    }
}

/// The schemes of upstream URLs.
pub const SCHEMES: [&str; 4] = ["ws://", "wss://", "tcp://", "tcp+xmlsocket://"];

/// An upstream server: `ws://HOST[:PORT][/PATH][?QUERY]`, `wss://…`, `tcp://HOST:PORT` or
/// `tcp+xmlsocket://HOST:PORT` (the TCP ones with `?proxy-protocol=v1|v2`); `None` when
/// `text` names no upstream.
pub fn parse(text: &str) -> Result<Option<UpstreamSpec>, String> {
    let Some(scheme) = SCHEMES.into_iter().find(|s| text.starts_with(s)) else {
        return Ok(None);
    };
    let rest = &text[scheme.len()..];
    let bad = |why: String| format!("upstream {text:?}: {why}");
    let mut options = UpstreamOptions::default();
    let (wire, tls) = match scheme {
        "ws://" => (Wire::WebSocket, false),
        "wss://" => (Wire::WebSocket, true),
        "tcp://" => (Wire::Raw, false),
        _ => (Wire::XmlSocket, false),
    };
    if wire == Wire::WebSocket {
        // The path and query go to the server as they are.
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, resource) = rest.split_at(split);
        let port = if tls { 443 } else { 80 };
        let target = authority_target(authority, port).map_err(bad)?;
        if resource.contains(['#', ' ']) || resource.bytes().any(|b| b.is_ascii_control()) {
            return Err(bad("the path may not hold spaces or a fragment".into()));
        }
        let resource = match resource.starts_with('?') || resource.is_empty() {
            true => format!("/{resource}"),
            false => resource.to_string(),
        };
        return Ok(Some(UpstreamSpec {
            target,
            wire,
            tls,
            resource,
            options,
        }));
    }
    let (addr, query) = rest.split_once('?').unwrap_or((rest, ""));
    let target = ProxyTarget::parse(addr).map_err(bad)?;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let Some(version) = pair.strip_prefix("proxy-protocol=") else {
            let known = "known: proxy-protocol=v1, proxy-protocol=v2";
            return Err(bad(format!("unknown setting {pair:?} ({known})")));
        };
        options.proxy_header = Some(proxy_version(version).map_err(bad)?);
    }
    Ok(Some(UpstreamSpec {
        target,
        wire,
        tls,
        resource: String::new(),
        options,
    }))
}

/// A PROXY protocol version as written: `v1` or `v2`.
pub fn proxy_version(text: &str) -> Result<proxy_header::Version, String> {
    match text {
        "v1" => Ok(proxy_header::Version::V1),
        "v2" => Ok(proxy_header::Version::V2),
        other => Err(format!("PROXY protocol {other:?} is not v1 or v2")),
    }
}

/// `HOST[:PORT]` of a URL, with `port` when it names none.
fn authority_target(authority: &str, port: u16) -> Result<ProxyTarget, String> {
    if authority.contains('@') {
        return Err("credentials in the URL are not supported".into());
    }
    let has_port = match authority.rfind(']') {
        Some(close) => authority[close..].contains(':'),
        None => authority.contains(':'),
    };
    match has_port {
        true => ProxyTarget::parse(authority),
        false => ProxyTarget::parse(&format!("{authority}:{port}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str) -> UpstreamSpec {
        parse(text).unwrap().expect("an upstream")
    }

    #[test]
    fn tcp_routes_name_their_server_and_its_proxy_header() {
        let up = spec("tcp://10.0.0.5:5000");
        assert_eq!(
            (up.target.to_string(), up.wire, up.options.proxy_header),
            ("10.0.0.5:5000".into(), Wire::Raw, None)
        );
        let up = spec("tcp+xmlsocket://chat.example:9000?proxy-protocol=v2");
        assert_eq!(up.target.to_string(), "chat.example:9000");
        assert_eq!(
            (up.wire, up.options.proxy_header),
            (Wire::XmlSocket, Some(proxy_header::Version::V2))
        );
        assert!(parse("tcp://nowhere").unwrap_err().contains("HOST:PORT"));
        assert!(
            parse("tcp://h:1?proxy-protocol=v3")
                .unwrap_err()
                .contains("v3")
        );
        assert!(
            parse("tcp://h:1?x=1")
                .unwrap_err()
                .contains("unknown setting")
        );
    }

    #[test]
    fn websocket_routes_keep_their_path_and_query_and_default_their_port() {
        let up = spec("ws://game.example/socket?app=7");
        assert_eq!(
            (up.target.to_string(), up.wire, up.tls, up.resource.as_str()),
            (
                "game.example:80".into(),
                Wire::WebSocket,
                false,
                "/socket?app=7"
            )
        );
        assert_eq!(up.url(), "ws://game.example:80/socket?app=7");
        let up = spec("wss://[::1]:8443");
        assert_eq!(
            (up.target.to_string(), up.tls, up.resource.as_str()),
            ("[::1]:8443".into(), true, "/")
        );
        assert_eq!(
            spec("wss://Game.Example?x").target.to_string(),
            "game.example:443"
        );
        assert_eq!(spec("ws://h:1?x").resource, "/?x");
        assert!(
            parse("ws://user:pw@h/")
                .unwrap_err()
                .contains("credentials")
        );
        assert!(parse("ws://h/a b").unwrap_err().contains("spaces"));
        assert!(parse("ws:///path").is_err());
        assert_eq!(parse("echo").unwrap(), None);
    }
}
