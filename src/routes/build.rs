//! Each configured route with its backend, built once at start-up: the one place a backend
//! is chosen.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;

use super::{Route, Routes};
use crate::backend::{self, Backend};
use crate::config::{self, BackendSpec, Config};
use crate::metrics::{Connects, Metrics};
use crate::{session, tls};

/// The socket proxy's targets for a gateway whose main listener is `main`.
pub fn proxy_targets(config: &Config, main: SocketAddr) -> backend::proxy::Targets {
    backend::proxy::Targets::resolve(&config.proxy_targets, main)
}

/// Each configured route with its backend; upstream connections count in `metrics`.
pub fn build(config: &Config, main: SocketAddr, metrics: &Metrics) -> anyhow::Result<Routes> {
    let limits = &config.limits;
    let bound = backend::broadcast::Bound {
        backlog: limits.send_backlog,
        grace: config::SLOW_GRACE,
    };
    let list = config
        .routes
        .iter()
        .map(|spec| {
            Ok(Route {
                path: spec.path.clone(),
                backend: match &spec.backend {
                    BackendSpec::Echo => Backend::Echo,
                    BackendSpec::Broadcast => Backend::Broadcast(
                        backend::broadcast::Rooms::counted(bound, metrics.rooms(&spec.path)),
                    ),
                    BackendSpec::Proxy => Backend::Proxy {
                        targets: proxy_targets(config, main),
                        connect_timeout: limits.handshake_timeout,
                        write_timeout: limits.idle_timeout,
                    },
                    BackendSpec::Close { code, reason } => {
                        Backend::Close(Arc::new(session::CloseReason::Peer(*code, reason.clone())))
                    }
                    BackendSpec::Upstream(upstream) => Backend::Relay(Arc::new(
                        relay_to(upstream, limits, metrics.upstream(&spec.path))
                            .with_context(|| format!("route {}", spec.path))?,
                    )),
                },
                sockjs: spec.sockjs.clone(),
                traffic: Arc::new(metrics.traffic(&spec.path)),
            })
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(Routes::new(list))
}

/// An upstream route's relay settings: the route's own, or the gateway's limits.
fn relay_to(
    spec: &config::UpstreamSpec,
    limits: &config::Limits,
    counted: Connects,
) -> anyhow::Result<backend::relay::Upstream> {
    let options = &spec.options;
    let tls = match spec.tls {
        true => Some(tls::client(options.ca_file.as_deref())?),
        false => None,
    };
    Ok(backend::relay::Upstream {
        target: spec.target.clone(),
        wire: spec.wire,
        tls,
        resource: spec.resource.clone(),
        connect_timeout: options.connect_timeout.unwrap_or(limits.handshake_timeout),
        write_timeout: options.write_timeout.unwrap_or(limits.idle_timeout),
        proxy_header: options.proxy_header,
        tell: backend::relay::handshake::Tell {
            forwarded: options.forwarded,
            cookies: options.cookies,
        },
        max_message_size: options.max_message_size.unwrap_or(limits.max_message_size),
        counted,
    })
}
