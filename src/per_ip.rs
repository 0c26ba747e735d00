//! Limits per client address (`--per-ip-connections`, `--per-ip-handshakes`): how many
//! connections one address holds at once, and how many WebSocket handshakes and new SockJS
//! sessions it starts each second. A client behind a trusted proxy (`--trusted-proxy`) is
//! known by the `X-Forwarded-For` the proxy wrote; anyone else by its socket's address.
//!
//! An IPv6 client is counted by its /64, the block one subscriber is given (it may pick any
//! address in it). The table holds an address only while it has a connection open or a
//! handshake budget still refilling, so it stays as small as the clients active in the
//! last second.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::Instant;

use http::HeaderMap;
use ipnet::IpNet;

/// The limits, and what each counted address has used.
pub struct PerIp {
    /// Connections at once per address; 0: no limit.
    connections: u32,
    /// Handshakes per second per address (and as many at once); 0: no limit.
    handshakes: u32,
    /// The proxies whose `X-Forwarded-For` is believed.
    trusted: Vec<IpNet>,
    table: Mutex<Table>,
}

/// The addresses counted: one lock per connection's start and end and per handshake,
/// never per message. A connection keeps the number of its address's entry (4 bytes in
/// its slot), not the address.
#[derive(Default)]
struct Table {
    entries: slab::Slab<(Key, Entry)>,
    by_key: HashMap<Key, usize>,
    /// The size at which stale entries are next swept out.
    sweep_at: usize,
}

impl Table {
    /// The entry of `key`, made if need be.
    fn entry(&mut self, key: Key, fresh: impl FnOnce() -> Entry) -> (usize, &mut Entry) {
        let at = match self.by_key.get(&key) {
            Some(&at) => at,
            None => {
                let at = self.entries.insert((key, fresh()));
                self.by_key.insert(key, at);
                at
            }
        };
        (at, &mut self.entries[at].1)
    }

    fn remove(&mut self, at: usize) {
        let (key, _) = self.entries.remove(at);
        self.by_key.remove(&key);
    }
}

/// What one address has used.
struct Entry {
    /// Its connections open now.
    open: u32,
    /// Handshakes it may still start now, refilled at `handshakes` per second.
    tokens: f64,
    /// When `tokens` was last brought up to date.
    at: Instant,
}

/// A client address as counted: IPv4 as it is, IPv6 by its /64.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Key(IpAddr);

impl Key {
    pub fn of(ip: IpAddr) -> Key {
        Key(match ip.to_canonical() {
            IpAddr::V6(v6) => {
                let block = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(block))
            }
            v4 => v4,
        })
    }
}

/// A refusal: which limit, and when to try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    /// `connections` or `handshakes` (the metric's label).
    pub limit: &'static str,
    /// Seconds until a retry may succeed (`Retry-After`).
    pub retry_after: u64,
}

impl Refused {
    /// What the client is told.
    pub fn message(&self) -> &'static str {
        match self.limit {
            "connections" => "too many connections from your address (see --per-ip-connections)",
            _ => {
                "too many new connections from your address: try again shortly (see --per-ip-handshakes)"
            }
        }
    }
}

impl PerIp {
    pub fn new(connections: usize, handshakes: u32, trusted: Vec<IpNet>) -> PerIp {
        PerIp {
            connections: u32::try_from(connections).unwrap_or(u32::MAX),
            handshakes,
            trusted,
            table: Mutex::new(Table::default()),
        }
    }

    /// Whether `ip` is a proxy whose `X-Forwarded-For` is believed.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.trusted.iter().any(|net| net.contains(&ip))
    }

    /// Whether connections are counted at all.
    pub fn counts_connections(&self) -> bool {
        self.connections > 0
    }

    /// The client a request from `peer` comes from: `peer` itself, or, from a trusted proxy,
    /// the last address in `X-Forwarded-For` that is not a trusted proxy too (the ones
    /// before it were written by whoever the client is, and prove nothing). A header that
    /// does not parse leaves the proxy's own address.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let mut hops = Vec::new();
        for value in headers.get_all("x-forwarded-for") {
            let Ok(value) = value.to_str() else {
                return peer;
            };
            for hop in value.split(',') {
                match hop.trim().parse::<IpAddr>() {
                    Ok(ip) => hops.push(ip),
                    Err(_) => return peer,
                }
            }
        }
        hops.into_iter()
            .rev()
            .find(|ip| !self.trusts(*ip))
            .unwrap_or(peer)
    }

    /// One more connection from `ip`, if its address has room for it: the number to
    /// [`PerIp::leave`] with (never 0).
    pub fn enter(&self, ip: IpAddr) -> Result<u32, Refused> {
        let now = Instant::now();
        let mut table = self.lock();
        let (at, entry) = table.entry(Key::of(ip), || self.fresh(now));
        if entry.open >= self.connections {
            let stale = entry.open == 0 && self.refilled(entry, now);
            if stale {
                table.remove(at);
            }
            return Err(Refused {
                limit: "connections",
                retry_after: 1,
            });
        }
        entry.open += 1;
        Ok(u32::try_from(at + 1).expect("fewer entries than connections"))
    }

    /// A connection [`PerIp::enter`] counted ended.
    pub fn leave(&self, entered: u32) {
        let now = Instant::now();
        let mut table = self.lock();
        let at = entered as usize - 1;
        if let Some((_, entry)) = table.entries.get_mut(at) {
            entry.open = entry.open.saturating_sub(1);
            if entry.open == 0 && self.refilled(entry, now) {
                table.remove(at);
            }
        }
    }

    /// One more handshake from `ip`, if its budget allows it now.
    pub fn handshake(&self, ip: IpAddr) -> Result<(), Refused> {
        if self.handshakes == 0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut table = self.lock();
        if table.entries.len() >= table.sweep_at {
            let Table {
                entries, by_key, ..
            } = &mut *table;
            entries.retain(|_, (key, e)| {
                let keep = e.open > 0 || !self.refilled(e, now);
                if !keep {
                    by_key.remove(key);
                }
                keep
            });
            table.sweep_at = (table.entries.len() * 2).max(1024);
        }
        let (_, entry) = table.entry(Key::of(ip), || self.fresh(now));
        self.refilled(entry, now);
        if entry.tokens < 1.0 {
            let wait = (1.0 - entry.tokens) / f64::from(self.handshakes);
            return Err(Refused {
                limit: "handshakes",
                retry_after: wait.ceil().max(1.0) as u64,
            });
        }
        entry.tokens -= 1.0;
        Ok(())
    }

    fn fresh(&self, now: Instant) -> Entry {
        Entry {
            open: 0,
            tokens: f64::from(self.handshakes),
            at: now,
        }
    }

    /// Brings `entry`'s budget up to `now`: whether it is full (nothing left to remember).
    fn refilled(&self, entry: &mut Entry, now: Instant) -> bool {
        let full = f64::from(self.handshakes);
        let elapsed = now.saturating_duration_since(entry.at).as_secs_f64();
        entry.tokens = (entry.tokens + elapsed * full).min(full);
        entry.at = now;
        entry.tokens >= full
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        // A panic while counting leaves counts, not broken invariants: go on with them.
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Addresses remembered now.
    #[cfg(test)]
    fn remembered(&self) -> usize {
        self.lock().entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn connections_are_bounded_per_address_and_forgotten_when_gone() {
        let limits = PerIp::new(2, 0, vec![]);
        let (a, b) = (ip("192.0.2.1"), ip("192.0.2.2"));
        let first = limits.enter(a).unwrap();
        assert_eq!(limits.enter(a), Ok(first), "one entry per address");
        assert_eq!(limits.enter(a).unwrap_err().limit, "connections");
        let other = limits.enter(b).unwrap();
        assert_ne!(other, first, "another address has its own count");
        limits.leave(first);
        assert_eq!(limits.enter(a), Ok(first));
        for entered in [first, first, other] {
            limits.leave(entered);
        }
        assert_eq!(limits.remembered(), 0);
        assert!(limits.enter(a).is_ok(), "a forgotten address starts again");
    }

    #[test]
    fn ipv6_counts_by_its_64_and_mapped_ipv4_as_ipv4() {
        assert_eq!(
            Key::of(ip("2001:db8:1:2:aaaa::1")),
            Key::of(ip("2001:db8:1:2:ffff::9"))
        );
        assert_ne!(
            Key::of(ip("2001:db8:1:2::1")),
            Key::of(ip("2001:db8:1:3::1"))
        );
        assert_eq!(Key::of(ip("::ffff:192.0.2.7")), Key::of(ip("192.0.2.7")));
    }

    #[test]
    fn handshakes_take_from_a_budget_that_refills() {
        let limits = PerIp::new(0, 3, vec![]);
        let client = ip("198.51.100.4");
        for _ in 0..3 {
            assert_eq!(limits.handshake(client), Ok(()));
        }
        let refused = limits.handshake(client).unwrap_err();
        assert_eq!((refused.limit, refused.retry_after), ("handshakes", 1));
        assert_eq!(limits.handshake(ip("198.51.100.5")), Ok(()));
        std::thread::sleep(std::time::Duration::from_millis(400));
        assert_eq!(
            limits.handshake(client),
            Ok(()),
            "a third of a second refills one"
        );
    }

    #[test]
    fn forwarded_for_is_believed_from_trusted_proxies_only() {
        let limits = PerIp::new(1, 0, vec!["10.0.0.0/8".parse().unwrap()]);
        let mut headers = HeaderMap::new();
        headers.append(
            "x-forwarded-for",
            "203.0.113.9, 198.51.100.1".parse().unwrap(),
        );
        headers.append("x-forwarded-for", "10.1.1.1".parse().unwrap());
        // The proxy at 10.1.1.1 forwarded for 198.51.100.1; what that one said is a claim.
        assert_eq!(limits.client(ip("10.0.0.5"), &headers), ip("198.51.100.1"));
        assert_eq!(
            limits.client(ip("192.0.2.50"), &headers),
            ip("192.0.2.50"),
            "an untrusted peer's header is ignored"
        );
        let mut bad = HeaderMap::new();
        bad.insert("x-forwarded-for", "not-an-address".parse().unwrap());
        assert_eq!(limits.client(ip("10.0.0.5"), &bad), ip("10.0.0.5"));
        assert_eq!(
            limits.client(ip("::ffff:10.0.0.5"), &HeaderMap::new()),
            ip("::ffff:10.0.0.5")
        );
        assert!(limits.trusts(ip("::ffff:10.2.3.4")));
    }
}
