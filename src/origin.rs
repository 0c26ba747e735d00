//! The allow-list: which web origins may use the gateway. One list guards WebSocket upgrades,
//! CORS on the SWFs and the domains in the Flash policy.
//!
//! It is not authentication: a browser cannot lie about `Origin`, but Flash Player, native
//! clients and scripts can send any `Origin` they like (or none).

use std::fmt;
use std::net::SocketAddr;

use anyhow::{Context, bail};

/// A web origin, `scheme://host:port`, normalised (lower case, explicit port).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// `http` or `https`.
    scheme: String,
    /// Host name or address, lower case; IPv6 addresses keep their brackets.
    host: String,
    /// The port, with the scheme's default filled in.
    port: u16,
}

impl Origin {
    /// Parses an `Origin` header value or a command-line origin.
    pub fn parse(s: &str) -> anyhow::Result<Origin> {
        let (scheme, rest) = s
            .split_once("://")
            .context("an origin looks like http://host:port")?;
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            _ => bail!("origin {s:?}: the scheme must be http or https"),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ']) {
            bail!("origin {s:?}: only scheme://host[:port], without a path");
        }
        let (host, port) = match rest.rfind(':') {
            Some(i) if !rest[i..].contains(']') => {
                let port = rest[i + 1..]
                    .parse()
                    .with_context(|| format!("origin {s:?}: bad port"))?;
                (&rest[..i], port)
            }
            _ => (rest, default_port),
        };
        if host.is_empty() {
            bail!("origin {s:?}: no host");
        }
        Ok(Origin {
            scheme,
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    /// The host, as a Flash policy `domain` names it.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// True when this origin names `host` (a `Host` header value) on the same port.
    fn is_host(&self, host_header: &str) -> bool {
        let default_port = if self.scheme == "https" { 443 } else { 80 };
        let (host, port) = match host_header.rfind(':') {
            Some(i) if !host_header[i..].contains(']') => {
                (&host_header[..i], host_header[i + 1..].parse().ok())
            }
            _ => (host_header, Some(default_port)),
        };
        port == Some(self.port) && host.eq_ignore_ascii_case(&self.host)
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

/// Which origins may connect.
#[derive(Debug, Clone)]
pub struct AllowList {
    /// `*` was given: every origin is allowed.
    any: bool,
    /// Also allow a page whose origin is the host it asks (`Origin` matches `Host`): a page the
    /// gateway served itself, under whatever name the client used. On by default only.
    same_host: bool,
    /// The origins listed.
    origins: Vec<Origin>,
}

impl AllowList {
    /// The list given on the command line (`*` allows everything).
    pub fn parse(list: &[String]) -> anyhow::Result<AllowList> {
        let mut allow = AllowList {
            any: false,
            same_host: false,
            origins: Vec::new(),
        };
        for item in list.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
            if item == "*" {
                allow.any = true;
            } else {
                allow.origins.push(Origin::parse(item)?);
            }
        }
        Ok(allow)
    }

    /// The default: the origins of the gateway's own pages, i.e. the same host a request
    /// names, plus `localhost`, `127.0.0.1`, `[::1]` and the listen address on the main port.
    pub fn serving(main: SocketAddr) -> AllowList {
        let port = main.port();
        let mut hosts = vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
            "[::1]".to_string(),
        ];
        if !main.ip().is_unspecified() && !main.ip().is_loopback() {
            hosts.push(match main {
                SocketAddr::V4(a) => a.ip().to_string(),
                SocketAddr::V6(a) => format!("[{}]", a.ip()),
            });
        }
        let origins = hosts
            .into_iter()
            .map(|host| Origin {
                scheme: "http".into(),
                host,
                port,
            })
            .collect();
        AllowList {
            any: false,
            same_host: true,
            origins,
        }
    }

    /// True when an `Origin` header value is allowed for a request to `host` (its `Host`).
    pub fn allows(&self, origin: &str, host: Option<&str>) -> bool {
        if self.any {
            return true;
        }
        let Ok(origin) = Origin::parse(origin) else {
            return false; // `null` (file: pages, sandboxed frames) and garbage
        };
        (self.same_host && host.is_some_and(|h| origin.is_host(h)))
            || self.origins.contains(&origin)
    }

    /// True when an `Origin` header value names the gateway itself, as a request's `Host`
    /// names it: the origin of the pages it serves (SockJS's iframe page among them).
    pub fn is_own(origin: &str, host: Option<&str>) -> bool {
        Origin::parse(origin).is_ok_and(|origin| host.is_some_and(|h| origin.is_host(h)))
    }

    /// The origins' hosts, when the list names every origin it allows (not `*`, nor the
    /// default's "the host the request names").
    pub fn listed_hosts(&self) -> Option<Vec<&str>> {
        (!self.any && !self.same_host).then(|| self.origins.iter().map(|o| o.host()).collect())
    }

    /// The `frame-ancestors` sources of a Content-Security-Policy that lets only allowed
    /// origins (and the gateway's own pages) frame a page; `None` when any origin is allowed.
    pub fn frame_ancestors(&self) -> Option<String> {
        if self.any {
            return None;
        }
        let mut sources = vec!["'self'".to_string()];
        sources.extend(self.origins.iter().map(|o| o.to_string()));
        Some(sources.join(" "))
    }

    /// The `domain` values for a Flash policy: `*` when any origin is allowed or the gateway
    /// answers under names it cannot know (listening on every address), else the listed hosts.
    pub fn policy_domains(&self, main: SocketAddr) -> Vec<String> {
        if self.any || (self.same_host && main.ip().is_unspecified()) {
            return vec!["*".to_string()];
        }
        let mut domains: Vec<String> = Vec::new();
        for origin in &self.origins {
            let host = origin
                .host()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string();
            if !domains.contains(&host) {
                domains.push(host);
            }
        }
        domains
    }
}

impl fmt::Display for AllowList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.any {
            return f.write_str("*");
        }
        let mut parts: Vec<String> = self.origins.iter().map(|o| o.to_string()).collect();
        if self.same_host {
            parts.push("same host".into());
        }
        f.write_str(&parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_normalise_case_and_default_ports() {
        assert_eq!(
            Origin::parse("HTTP://Example.COM").unwrap(),
            Origin::parse("http://example.com:80").unwrap()
        );
        assert_eq!(Origin::parse("https://a.b/").unwrap().port, 443);
        assert_eq!(Origin::parse("http://[::1]:8080").unwrap().host, "[::1]");
    }

    #[test]
    fn bad_origins_are_rejected() {
        for bad in [
            "example.com",
            "ftp://x",
            "http://",
            "http://x/path",
            "http://x:99999",
            "null",
        ] {
            assert!(Origin::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn explicit_list_allows_only_its_origins() {
        let allow = AllowList::parse(&["http://a.example:8080".into()]).unwrap();
        assert!(allow.allows("http://a.example:8080", Some("gw:1")));
        assert!(!allow.allows("http://a.example", Some("gw:1")));
        assert!(
            !allow.allows("http://gw:1", Some("gw:1")),
            "same host is only in the default"
        );
        assert!(!allow.allows("null", None));
    }

    #[test]
    fn star_allows_everything() {
        let allow = AllowList::parse(&["*".into()]).unwrap();
        assert!(allow.allows("null", None));
        assert_eq!(
            allow.policy_domains("127.0.0.1:1".parse().unwrap()),
            vec!["*"]
        );
    }

    #[test]
    fn default_allows_own_pages_under_any_host_name() {
        let main: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let allow = AllowList::serving(main);
        assert!(allow.allows("http://localhost:8080", None));
        assert!(allow.allows("http://kiosk.lan:8080", Some("kiosk.lan:8080")));
        assert!(!allow.allows("http://evil.example:8080", Some("kiosk.lan:8080")));
        assert!(!allow.allows("http://localhost:9090", Some("localhost:8080")));
        assert_eq!(
            allow.policy_domains(main),
            vec!["localhost", "127.0.0.1", "::1"]
        );
        assert_eq!(
            AllowList::serving("0.0.0.0:80".parse().unwrap())
                .policy_domains("0.0.0.0:80".parse().unwrap()),
            vec!["*"]
        );
    }
}
