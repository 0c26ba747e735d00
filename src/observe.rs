//! What the metrics listener's `/readyz` looks at, gathered from the configuration and the
//! bound listeners at start-up.

use std::net::SocketAddr;

use crate::assets::Files;
use crate::config::{BackendSpec, Config};
use crate::metrics::serve::Ready;

/// The readiness checks of a gateway serving `config` on `main` (and `policy`, when bound).
pub fn ready(config: &Config, main: SocketAddr, policy: Option<SocketAddr>) -> Ready {
    let mut listeners = vec![("main", Ok(main))];
    if let Some(wanted) = config.policy_listen {
        let why = format!("{wanted} is not bound: policies are answered inline only");
        listeners.push(("policy", policy.ok_or(why)));
    }
    let files = Files::new(
        config.web_dir.as_deref(),
        config.assets_dir.as_deref(),
        config.exposure,
    );
    let upstreams = config
        .routes
        .iter()
        .filter_map(|route| match &route.backend {
            BackendSpec::Upstream(up) => Some((route.path.clone(), up.target.to_string())),
            _ => None,
        })
        .collect();
    Ready {
        listeners,
        assets: Box::new(move || files.problems()),
        upstreams,
        connect_timeout: config.limits.handshake_timeout,
    }
}
