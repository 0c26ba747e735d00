//! The routing table: each WebSocket route owns its path and everything under it, so a
//! transport that uses sub-paths can live on the same route.

mod build;

pub use build::{build, proxy_targets};

use crate::backend::Backend;
use crate::config::SockjsOptions;

/// A route: a path and the backend that serves it.
pub struct Route {
    /// The path, e.g. `/chat`; the route also owns every path under it (`/chat/…`).
    pub path: String,
    /// What serves it.
    pub backend: Backend,
    /// SockJS on it.
    pub sockjs: SockjsOptions,
    /// What flows through it.
    pub traffic: std::sync::Arc<crate::metrics::Traffic>,
}

/// The routes, longest path first.
pub struct Routes(Vec<Route>);

impl Routes {
    /// The routes of `list`.
    pub fn new(mut list: Vec<Route>) -> Routes {
        list.sort_by_key(|r| std::cmp::Reverse(r.path.len()));
        Routes(list)
    }

    /// The route owning `path`, and what follows the route's own path (empty, or from a `/`).
    pub fn find<'p>(&self, path: &'p str) -> Option<(&Route, &'p str)> {
        self.0.iter().find_map(|route| {
            let rest = path.strip_prefix(route.path.as_str())?;
            (rest.is_empty() || rest.starts_with('/')).then_some((route, rest))
        })
    }
}
