//! What the gateway reaches, for `--check`: each route and the server it connects to, the
//! socket proxy's targets, and what the Flash policy grants, listed together, and checked
//! against each other so that they never contradict: a policy file must grant the main port
//! to the pages the origin allow-list admits (and grant no page it refuses), and no route
//! may relay to the gateway itself.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use crate::backend::proxy::{ProxyTarget, Targets};
use crate::config::{BackendSpec, Config, UpstreamSpec};
use crate::origin::AllowList;
use crate::policy::{self, xml};

/// The listing, and what contradicts.
pub struct Survey {
    /// What `--check` prints.
    pub report: String,
    /// Each contradiction, said as a problem to fix.
    pub problems: Vec<String>,
}

/// Surveys `config`, whose origin allow-list is `allow`.
pub fn survey(config: &Config, allow: &AllowList) -> Survey {
    let main = config.listen;
    let mut report = String::from("routes:\n");
    let mut problems = Vec::new();
    // Each server the gateway connects to, and who connects to it.
    let mut hosts: Vec<(String, Vec<String>)> = Vec::new();
    let mut reaches = |target: &ProxyTarget, who: String| {
        let key = target.to_string();
        match hosts.iter_mut().find(|(host, _)| *host == key) {
            Some((_, list)) => list.push(who),
            None => hosts.push((key, vec![who])),
        }
    };
    for route in &config.routes {
        let sockjs = if route.sockjs.enabled {
            " (and SockJS)"
        } else {
            ""
        };
        let what = match &route.backend {
            BackendSpec::Upstream(up) => {
                reaches(&up.target, format!("route {}", route.path));
                if is_gateway(&up.target, config) {
                    problems.push(format!(
                        "route {} relays to {}, which is the gateway itself: its clients would loop",
                        route.path, up.target
                    ));
                }
                format!("relay to {}{}", up.url(), settings(up))
            }
            BackendSpec::Proxy => {
                let targets = Targets::resolve(&config.proxy_targets, main);
                for (target, own) in targets.iter() {
                    let who = match own {
                        true => format!("socket proxy {} (the gateway itself)", route.path),
                        false => format!("socket proxy {}", route.path),
                    };
                    reaches(target, who);
                }
                "socket proxy to --proxy-target".to_string()
            }
            other => other.as_str().to_string(),
        };
        let _ = writeln!(report, "  {:<16} {what}{sockjs}", route.path);
    }
    report.push_str("servers the gateway connects to:\n");
    if hosts.is_empty() {
        report.push_str("  none\n");
    }
    for (host, who) in &hosts {
        let _ = writeln!(report, "  {host:<24} by {}", who.join(", "));
    }
    let grants = policy::grants(config, allow, main);
    let _ = writeln!(
        report,
        "Flash socket policy ({}):",
        match &config.policy_file {
            Some(file) => format!("from {}", file.path.display()),
            None => "made from --allow-origin".into(),
        }
    );
    for grant in &grants {
        let _ = writeln!(
            report,
            "  domain=\"{}\" to-ports=\"{}\"",
            grant.domain, grant.to_ports
        );
    }
    if config.policy_file.is_some() {
        problems.extend(policy_problems(&grants, allow, main));
    }
    Survey { report, problems }
}

/// A relay's settings that differ from the gateway's, for the listing.
fn settings(up: &UpstreamSpec) -> String {
    let o = &up.options;
    let mut said = Vec::new();
    if let Some(version) = o.proxy_header {
        said.push(match version {
            crate::backend::proxy_header::Version::V1 => "PROXY v1".into(),
            crate::backend::proxy_header::Version::V2 => "PROXY v2".into(),
        });
    }
    if let Some(timeout) = o.connect_timeout {
        said.push(format!(
            "connect timeout {}",
            humantime::format_duration(timeout)
        ));
    }
    if let Some(timeout) = o.write_timeout {
        said.push(format!(
            "write timeout {}",
            humantime::format_duration(timeout)
        ));
    }
    if let Some(size) = o.max_message_size {
        said.push(format!("messages up to {size} B"));
    }
    if up.wire == crate::backend::relay::Wire::WebSocket && !o.forwarded {
        said.push("does not tell the client's address".into());
    }
    if up.wire == crate::backend::relay::Wire::WebSocket && o.cookies {
        said.push("passes cookies".into());
    }
    if let Some(file) = &o.ca_file {
        said.push(format!("trusts {}", file.display()));
    }
    match said.is_empty() {
        true => String::new(),
        false => format!(" ({})", said.join(", ")),
    }
}

/// True when `target` is one of the gateway's own listeners.
fn is_gateway(target: &ProxyTarget, config: &Config) -> bool {
    let Ok(ip) = target.host.parse::<IpAddr>() else {
        return target.host == "localhost"
            && listens_on(config, target.port, IpAddr::from([127, 0, 0, 1]));
    };
    listens_on(config, target.port, ip)
}

/// True when a listener of the gateway's takes connections to `ip:port`.
fn listens_on(config: &Config, port: u16, ip: IpAddr) -> bool {
    let listeners = std::iter::once(config.listen).chain(config.policy_listen);
    listeners.into_iter().any(|addr: SocketAddr| {
        addr.port() == port
            && (addr.ip() == ip
                || (addr.ip().is_unspecified() && (ip.is_loopback() || ip.is_unspecified())))
    })
}

/// Where a hand-written policy and the origin allow-list disagree.
fn policy_problems(grants: &[xml::Grant], allow: &AllowList, main: SocketAddr) -> Vec<String> {
    let port = main.port();
    let mut problems = Vec::new();
    let to_main: Vec<&xml::Grant> = grants
        .iter()
        .filter(|g| xml::grants_port(&g.to_ports, port))
        .collect();
    if to_main.is_empty() {
        problems.push(format!(
            "the policy file grants no page the main port {port}: web-socket-js on Flash Player cannot reach any route"
        ));
        return problems;
    }
    let Some(hosts) = allow.listed_hosts() else {
        return problems;
    };
    for host in &hosts {
        if !to_main.iter().any(|g| xml::grants_domain(&g.domain, host)) {
            problems.push(format!(
                "--allow-origin admits pages from {host}, but the policy file grants them no socket on port {port}"
            ));
        }
    }
    for grant in to_main.iter().filter(|g| g.domain != "*") {
        if !hosts
            .iter()
            .any(|host| xml::grants_domain(&grant.domain, host))
        {
            problems.push(format!(
                "the policy file grants port {port} to domain=\"{}\", whose pages --allow-origin refuses (403)",
                grant.domain
            ));
        }
    }
    problems
}
