//! The label sets of the metrics, and every value a fixed label takes.

use prometheus_client::encoding::EncodeLabelSet;

/// The kind of client of a session: a transport's label, or `proxy` for the socket proxy.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Kind {
    /// `rfc6455`, `flash`, `hixie76`, `sockjs-…`, `proxy`.
    pub transport: &'static str,
}

/// Which listener a policy request came to, and what came of it.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PolicyLabels {
    /// `main` or `policy`.
    pub listener: &'static str,
    /// `served`, `not_policy` (something else came) or `failed` (nothing whole in time, or
    /// the connection failed).
    pub outcome: &'static str,
}

/// Why a WebSocket handshake was refused.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Refusal {
    /// `origin` (not on the allow-list), `bad_handshake`, `method` (not a GET),
    /// `upgrade_required` (a version or framing not spoken here), `not_found`, or
    /// `backend` (the route's backend turned the client away).
    pub reason: &'static str,
}

/// An upstream route.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabel {
    /// The route's path.
    pub route: String,
}

/// An upstream route, and what came of a connection attempt.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConnectLabels {
    /// The route's path.
    pub route: String,
    /// `ok`, or `failed` (refused, timed out, or a WebSocket handshake the server turned
    /// down).
    pub outcome: &'static str,
}

/// Every listener and outcome of a policy request that is counted.
pub const POLICY_OUTCOMES: [(&str, &str); 4] = [
    ("main", "served"),
    ("policy", "served"),
    ("policy", "not_policy"),
    ("policy", "failed"),
];

/// Every kind of session, as the `transport` label says it.
pub const KINDS: [&str; 10] = [
    "rfc6455",
    "flash",
    "hixie76",
    "sockjs-websocket",
    "sockjs-xhr-polling",
    "sockjs-xhr-streaming",
    "sockjs-eventsource",
    "sockjs-htmlfile",
    "sockjs-jsonp-polling",
    "proxy",
];

/// The index in [`KINDS`] of `transport` (a label not there is a bug: debug builds
/// stop, others count it as `rfc6455`).
pub fn kind_of(transport: &str) -> u8 {
    let found = KINDS.iter().position(|k| *k == transport);
    debug_assert!(found.is_some(), "{transport} is not in KINDS");
    found.unwrap_or(0) as u8
}

/// The limits per client address: connections at once, handshakes per second.
pub const PER_IP_LIMITS: [&str; 2] = ["connections", "handshakes"];

/// Which limit per client address refused.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LimitLabel {
    /// One of [`PER_IP_LIMITS`].
    pub limit: &'static str,
}

/// What a TLS handshake came to: done, failed (a client that does not speak TLS 1.2 or
/// later, or does not trust the certificate), or not finished within the handshake timeout.
pub const TLS_OUTCOMES: [&str; 3] = ["ok", "failed", "timeout"];

/// A TLS handshake's outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TlsLabel {
    /// One of [`TLS_OUTCOMES`].
    pub outcome: &'static str,
}

/// A route, and which way its traffic went.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FlowLabels {
    /// The route's path.
    pub route: String,
    /// `in` (from clients) or `out` (to them).
    pub direction: &'static str,
}

/// A route, and the close code its sessions ended with.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CloseLabels {
    /// The route's path.
    pub route: String,
    /// The code (`1000` to `1015` as they are, `3xxx` and `4xxx` for the ranges left to
    /// applications and libraries, `other` for any other), or `none` when the session
    /// ended without one.
    pub code: String,
}
