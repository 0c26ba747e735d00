//! What flows through each route: messages and their bytes both ways, and how its sessions
//! ended. A session counts on its own and adds its counts here in batches
//! ([`crate::tally`]), so these atomics are touched per batch, not per message.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use super::labels::{CloseLabels, FlowLabels};

/// The families, registered once.
#[derive(Clone, Debug, Default)]
pub(super) struct Families {
    /// Messages, by route and direction.
    messages: Family<FlowLabels, Counter>,
    /// Their bytes, by route and direction.
    bytes: Family<FlowLabels, Counter>,
    /// Sessions ended, by route and close code.
    closes: Family<CloseLabels, Counter>,
}

impl Families {
    /// The families, registered in `registry`.
    pub(super) fn registered(registry: &mut Registry) -> Families {
        let families = Families::default();
        registry.register(
            "messages",
            "Messages from clients (in) and to them (out), by route; a byte stream's bytes are counted, not its messages, where it has none",
            families.messages.clone(),
        );
        registry.register_with_unit(
            "payload",
            "Bytes of messages (their payloads, not their framing) from clients (in) and to them (out), by route",
            prometheus_client::registry::Unit::Bytes,
            families.bytes.clone(),
        );
        registry.register(
            "closes",
            "Sessions ended, by route and the close code that ended them (sent or received; none when the connection ended without one)",
            families.closes.clone(),
        );
        families
    }

    /// The counters of the route at `route`.
    pub(super) fn traffic(&self, route: &str) -> Traffic {
        let flow = |family: &Family<FlowLabels, Counter>, direction| {
            family.get_or_create_owned(&FlowLabels {
                route: route.to_string(),
                direction,
            })
        };
        Traffic {
            messages_in: flow(&self.messages, "in"),
            messages_out: flow(&self.messages, "out"),
            bytes_in: flow(&self.bytes, "in"),
            bytes_out: flow(&self.bytes, "out"),
            closes: self.closes.clone(),
            route: route.to_string(),
        }
    }
}

/// One route's counters, resolved once when the route is built (unregistered, counting
/// nowhere, by default).
#[derive(Clone, Debug, Default)]
pub struct Traffic {
    /// Messages from clients.
    pub messages_in: Counter,
    /// Messages to clients.
    pub messages_out: Counter,
    /// Their bytes, from clients.
    pub bytes_in: Counter,
    /// Their bytes, to clients.
    pub bytes_out: Counter,
    /// Sessions ended, by close code (looked up once per session).
    closes: Family<CloseLabels, Counter>,
    /// The route's path.
    route: String,
}

impl Traffic {
    /// The route's path.
    pub fn route(&self) -> &str {
        &self.route
    }

    /// A session of this route ended with `code` (`None`: without one).
    pub fn closed(&self, code: Option<u16>) {
        let code = match code {
            Some(code @ 1000..=1015) => code.to_string(),
            Some(3000..=3999) => "3xxx".into(),
            Some(4000..=4999) => "4xxx".into(),
            Some(_) => "other".into(),
            None => "none".into(),
        };
        let labels = CloseLabels {
            route: self.route.clone(),
            code,
        };
        self.closes.get_or_create(&labels).inc();
    }
}
