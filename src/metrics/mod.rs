//! What the gateway counts, in Prometheus' terms (names `flashgate_…`, base units, counters
//! ending in `_total`), kept in a [`prometheus_client`] registry that `metrics::serve`
//! exposes on the metrics listener. Counting never waits: each metric is an atomic, and a
//! labelled family is looked up when a session opens or a request is refused, never per
//! message.
//!
//! A leaf: anything may count here, and this module names only what it counts.

mod labels;
pub mod serve;
mod traffic;

use labels::{ConnectLabels, Kind, LimitLabel, PolicyLabels, Refusal, RouteLabel, TlsLabel};
pub use labels::{KINDS, PER_IP_LIMITS, POLICY_OUTCOMES, TLS_OUTCOMES, kind_of};
pub use traffic::Traffic;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use prometheus_client::registry::Unit;

/// One upstream route's connection attempts, resolved once when the route is built.
#[derive(Clone, Debug)]
pub struct Connects {
    /// Attempts that connected.
    ok: Counter,
    /// Attempts that did not.
    failed: Counter,
    /// How long each attempt took, whatever came of it.
    seconds: Histogram,
}

impl Connects {
    /// An attempt that took `took` came to `ok`.
    pub fn record(&self, ok: bool, took: std::time::Duration) {
        match ok {
            true => self.ok.inc(),
            false => self.failed.inc(),
        };
        self.seconds.observe(took.as_secs_f64());
    }
}

/// One broadcast route's rooms and their members, resolved once when the route is built
/// (unregistered, counting nowhere, by default).
#[derive(Clone, Debug, Default)]
pub struct RoomGauges {
    /// Rooms with at least one member.
    pub rooms: Gauge,
    /// Members of them, awake or asleep.
    pub members: Gauge,
    /// Messages written straight into sleeping members' sockets: the route's messages
    /// out (an awake member's count in its session's tally).
    pub delivered: Counter,
    /// Their bytes: the route's bytes out.
    pub delivered_bytes: Counter,
}

/// The buckets of connect times: 250 µs to about 4 s, doubling.
fn connect_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.000_25, 2.0, 15))
}

/// Every metric of one gateway.
pub struct Metrics {
    /// What the families are registered in.
    registry: Registry,
    /// Sessions open now, by kind ([`KINDS`]' order).
    sessions_open: Vec<Gauge>,
    /// Sessions opened since start, by kind.
    sessions: Vec<Counter>,
    /// Flash socket policy requests, by [`POLICY_OUTCOMES`]' listener and outcome: resolved
    /// once, as a policy request is the cheapest thing the gateway answers.
    policy_requests: Vec<Counter>,
    /// WebSocket handshakes refused, by reason.
    upgrades_refused: Family<Refusal, Counter>,
    /// Connection attempts to upstream servers, by route and outcome.
    upstream_connects: Family<ConnectLabels, Counter>,
    /// How long they took, by route.
    upstream_connect_seconds: Family<RouteLabel, Histogram, fn() -> Histogram>,
    /// Broadcast rooms, by route.
    rooms: Family<RouteLabel, Gauge>,
    /// Their members, by route.
    room_members: Family<RouteLabel, Gauge>,
    /// Connections asleep.
    asleep: Gauge,
    /// TLS handshakes on the main port, by [`TLS_OUTCOMES`].
    tls_handshakes: Vec<Counter>,
    /// How long they took.
    tls_handshake_seconds: Histogram,
    /// Refusals by a limit per client address, by [`PER_IP_LIMITS`].
    per_ip_refused: Vec<Counter>,
    /// Each route's traffic.
    traffic: traffic::Families,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("flashgate");
        let open = Family::<Kind, Gauge>::default();
        let opened = Family::<Kind, Counter>::default();
        // Every kind is there from the start, at 0: a dashboard sees none missing.
        let sessions_open = KINDS.map(|transport| open.get_or_create_owned(&Kind { transport }));
        let sessions = KINDS.map(|transport| opened.get_or_create_owned(&Kind { transport }));
        let policy_requests = Family::<PolicyLabels, Counter>::default();
        let policy = POLICY_OUTCOMES.map(|(listener, outcome)| {
            policy_requests.get_or_create_owned(&PolicyLabels { listener, outcome })
        });
        let upgrades_refused = Family::<Refusal, Counter>::default();
        registry.register(
            "sessions_open",
            "Sessions open now (a WebSocket connection, or a SockJS session), by transport",
            open,
        );
        registry.register(
            "sessions",
            "Sessions opened since start, by transport",
            opened,
        );
        registry.register(
            "policy_requests",
            "Flash socket policy requests, by listener and outcome",
            policy_requests,
        );
        registry.register(
            "upgrades_refused",
            "WebSocket handshakes refused, by reason",
            upgrades_refused.clone(),
        );
        let upstream_connects = Family::<ConnectLabels, Counter>::default();
        let upstream_connect_seconds =
            Family::<RouteLabel, Histogram, fn() -> Histogram>::new_with_constructor(
                connect_buckets,
            );
        registry.register(
            "upstream_connects",
            "Connection attempts to upstream servers (TCP, PROXY header, TLS and WebSocket handshake), by route and outcome",
            upstream_connects.clone(),
        );
        registry.register_with_unit(
            "upstream_connect",
            "How long connection attempts to upstream servers took, by route",
            Unit::Seconds,
            upstream_connect_seconds.clone(),
        );
        let (rooms, room_members) = (Family::default(), Family::default());
        registry.register(
            "rooms",
            "Broadcast rooms with at least one member, by route",
            rooms.clone(),
        );
        registry.register(
            "room_members",
            "Members of broadcast rooms, awake or asleep, by route",
            room_members.clone(),
        );
        let asleep = Gauge::default();
        registry.register(
            "connections_asleep",
            "Silent connections asleep: no task and no buffers, the socket waiting in the kernel (WebSocket, hixie-76, SockJS streaming)",
            asleep.clone(),
        );
        let handshakes = Family::<TlsLabel, Counter>::default();
        let tls_handshakes =
            TLS_OUTCOMES.map(|outcome| handshakes.get_or_create_owned(&TlsLabel { outcome }));
        registry.register(
            "tls_handshakes",
            "TLS handshakes on the main port, by outcome",
            handshakes,
        );
        let tls_handshake_seconds = connect_buckets();
        registry.register_with_unit(
            "tls_handshake",
            "How long TLS handshakes on the main port took, whatever came of them",
            Unit::Seconds,
            tls_handshake_seconds.clone(),
        );
        let per_ip = Family::<LimitLabel, Counter>::default();
        let per_ip_refused =
            PER_IP_LIMITS.map(|limit| per_ip.get_or_create_owned(&LimitLabel { limit }));
        registry.register(
            "per_ip_refused",
            "Connections and handshakes refused by a limit per client address, by limit",
            per_ip,
        );
        let traffic = traffic::Families::registered(&mut registry);
        Metrics {
            traffic,
            per_ip_refused: per_ip_refused.into(),
            tls_handshakes: tls_handshakes.into(),
            tls_handshake_seconds,
            registry,
            asleep,
            rooms,
            room_members,
            upstream_connects,
            upstream_connect_seconds,
            sessions_open: sessions_open.into(),
            sessions: sessions.into(),
            policy_requests: policy.into(),
            upgrades_refused,
        }
    }
}

impl Metrics {
    /// A session of kind `kind` ([`kind_of`]) opened.
    pub fn session_opened(&self, kind: u8) {
        self.sessions[usize::from(kind)].inc();
        self.sessions_open[usize::from(kind)].inc();
    }

    /// A session of kind `kind` ended.
    pub fn session_ended(&self, kind: u8) {
        self.sessions_open[usize::from(kind)].dec();
    }

    /// The handles of the upstream route at `route`.
    pub fn upstream(&self, route: &str) -> Connects {
        let counter = |outcome| {
            let labels = ConnectLabels {
                route: route.to_string(),
                outcome,
            };
            self.upstream_connects.get_or_create_owned(&labels)
        };
        let label = RouteLabel {
            route: route.to_string(),
        };
        Connects {
            ok: counter("ok"),
            failed: counter("failed"),
            seconds: self.upstream_connect_seconds.get_or_create_owned(&label),
        }
    }

    /// A TLS handshake that took `took` came to `outcome` (one of [`TLS_OUTCOMES`]).
    pub fn tls_handshake(&self, outcome: &'static str, took: std::time::Duration) {
        if let Some(at) = TLS_OUTCOMES.iter().position(|o| *o == outcome) {
            self.tls_handshakes[at].inc();
        }
        self.tls_handshake_seconds.observe(took.as_secs_f64());
    }

    /// The traffic counters of the route at `route`.
    pub fn traffic(&self, route: &str) -> Traffic {
        self.traffic.traffic(route)
    }

    /// The gauge of connections asleep, for the tables they sleep in.
    pub fn asleep(&self) -> Gauge {
        self.asleep.clone()
    }

    /// The gauges of the broadcast route at `route`.
    pub fn rooms(&self, route: &str) -> RoomGauges {
        let label = RouteLabel {
            route: route.to_string(),
        };
        let traffic = self.traffic(route);
        RoomGauges {
            rooms: self.rooms.get_or_create_owned(&label),
            members: self.room_members.get_or_create_owned(&label),
            delivered: traffic.messages_out,
            delivered_bytes: traffic.bytes_out,
        }
    }

    /// A policy request on `listener` came to `outcome`.
    pub fn policy(&self, listener: &'static str, outcome: &'static str) {
        let found = POLICY_OUTCOMES
            .iter()
            .position(|pair| *pair == (listener, outcome));
        debug_assert!(
            found.is_some(),
            "{listener} {outcome} is not in POLICY_OUTCOMES"
        );
        if let Some(at) = found {
            self.policy_requests[at].inc();
        }
    }

    /// A WebSocket handshake was refused with `status`, by the handshake's checks or (when
    /// `by_backend`) by the route's backend.
    pub fn refused(&self, status: u16, by_backend: bool) {
        let reason = match (by_backend, status) {
            (true, _) => "backend",
            (false, 403) => "origin",
            (false, 405) => "method",
            (false, 426) => "upgrade_required",
            (false, 404) => "not_found",
            (false, _) => "bad_handshake",
        };
        self.upgrades_refused
            .get_or_create(&Refusal { reason })
            .inc();
    }

    /// A limit per client address (one of [`PER_IP_LIMITS`]) refused a connection or a
    /// handshake.
    pub fn per_ip_refused(&self, limit: &str) {
        let at = PER_IP_LIMITS.iter().position(|l| *l == limit);
        debug_assert!(at.is_some(), "{limit} is not in PER_IP_LIMITS");
        self.per_ip_refused[at.unwrap_or(0)].inc();
    }

    /// The exposition, in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String does not fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_counted_shows_in_the_exposition_under_its_labels() {
        let metrics = Metrics::default();
        let hixie76 = kind_of("hixie76");
        metrics.session_opened(hixie76);
        metrics.session_opened(hixie76);
        metrics.session_ended(hixie76);
        metrics.policy("policy", "served");
        metrics.refused(403, false);
        metrics.refused(400, true);
        let text = metrics.encode();
        for line in [
            "flashgate_sessions_total{transport=\"hixie76\"} 2",
            "flashgate_sessions_open{transport=\"hixie76\"} 1",
            "flashgate_policy_requests_total{listener=\"policy\",outcome=\"served\"} 1",
            "flashgate_upgrades_refused_total{reason=\"origin\"} 1",
            "flashgate_upgrades_refused_total{reason=\"backend\"} 1",
            "flashgate_sessions_open{transport=\"proxy\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }
}
