//! What every connection shares: the configuration and what was built from it at start-up.

use std::sync::Arc;

use bytes::Bytes;
use tokio_util::task::TaskTracker;

use crate::assets::Files;
use crate::backend::Handler;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::origin::AllowList;
use crate::policy::Policies;
use crate::routes::Routes;
use crate::shutdown::Shutdown;
use crate::slots::Slots;
use crate::sockjs::websocket::Framed;
use crate::tally::Counted;
use crate::ws::Endpoint;

/// State shared by every connection.
pub struct Gateway {
    /// The validated configuration.
    pub config: Config,
    /// The main listener's address.
    pub main_addr: std::net::SocketAddr,
    /// Who may connect (resolved against the bound address).
    pub allow: AllowList,
    /// The policy replies.
    pub policies: Policies,
    /// Static files.
    pub files: Files,
    /// The WebSocket routes and their backends.
    pub routes: Routes,
    /// The WebSocket endpoint of every route.
    pub ws: Arc<Endpoint<Counted<Handler>>>,
    /// The SockJS endpoint of every route.
    pub sockjs: Arc<crate::sockjs::Endpoint<Counted<Handler>>>,
    /// The WebSocket endpoint of SockJS-framed WebSockets.
    pub sockjs_ws: Arc<Endpoint<Framed<Counted<Handler>>>>,
    /// The `/ruffle-config.js` script.
    pub ruffle_config: Bytes,
    /// The stop switch.
    pub shutdown: Shutdown,
    /// Every connection task, so shutdown can wait for them.
    pub tracker: TaskTracker,
    /// Caps connections served at once.
    pub slots: Arc<Slots>,
    /// What is counted.
    pub metrics: Arc<Metrics>,
    /// The main port's TLS side, when it has one.
    pub tls: Option<crate::tls::server::Acceptor>,
}
