//! The connection slots (`--max-connections`): each connection holds one while any of its
//! tasks lives, a sleeping connection too, and a SockJS session holds one for its life. A
//! slot also says what its connection became: once it is a session, the slot counts in the
//! gauge of its kind of session, and lowers it when it is given back, however the session
//! ended. A slot may also count against its client's address ([`crate::per_ip`]) until it
//! is given back.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU32, Ordering};

use tokio::sync::Semaphore;

use crate::metrics::Metrics;
use crate::per_ip::{PerIp, Refused};

/// Every slot of a gateway, and where their sessions are counted.
pub struct Slots {
    /// One permit per free slot.
    free: Semaphore,
    /// The gauges of open sessions.
    metrics: Arc<Metrics>,
    /// The limits per client address.
    per_ip: PerIp,
}

/// One slot, held: given back when dropped. As small as the permit it replaces (a sleeper
/// keeps one).
pub struct Held {
    /// Whose slot it is.
    slots: Arc<Slots>,
    /// What the connection became: 0 for nothing yet, else 1 + its kind of session
    /// ([`Metrics::kind`]).
    session: AtomicU8,
    /// The entry of the client address it counts against ([`PerIp::enter`]), once it
    /// does; 0 until then.
    client: AtomicU32,
}

impl Slots {
    /// `count` slots, whose sessions count in `metrics`, with no limit per address.
    #[cfg(test)]
    pub fn new(count: usize, metrics: Arc<Metrics>) -> Arc<Slots> {
        Slots::limited(count, metrics, PerIp::new(0, 0, Vec::new()))
    }

    /// `count` slots, and `per_ip`'s limits on each client address.
    pub fn limited(count: usize, metrics: Arc<Metrics>, per_ip: PerIp) -> Arc<Slots> {
        Arc::new(Slots {
            free: Semaphore::new(count),
            metrics,
            per_ip,
        })
    }

    /// The limits per client address.
    pub fn per_ip(&self) -> &PerIp {
        &self.per_ip
    }

    /// One more WebSocket handshake or SockJS session from `client`, if its budget allows
    /// (a refusal is counted).
    pub fn handshake(&self, client: IpAddr) -> Result<(), Refused> {
        self.per_ip
            .handshake(client)
            .inspect_err(|refused| self.metrics.per_ip_refused(refused.limit))
    }

    /// A slot, once one is free.
    pub async fn acquire(self: &Arc<Self>) -> Arc<Held> {
        let permit = self
            .free
            .acquire()
            .await
            .expect("the semaphore is never closed");
        permit.forget();
        self.held()
    }

    /// A slot, if one is free now.
    pub fn try_acquire(self: &Arc<Self>) -> Option<Arc<Held>> {
        self.free.try_acquire().ok()?.forget();
        Some(self.held())
    }

    /// What the sessions of these slots count in.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// How many slots are free.
    #[cfg(test)]
    pub fn available(&self) -> usize {
        self.free.available_permits()
    }

    fn held(self: &Arc<Self>) -> Arc<Held> {
        Arc::new(Held {
            slots: self.clone(),
            session: AtomicU8::new(0),
            client: AtomicU32::new(0),
        })
    }
}

impl Held {
    /// The connection is now a session of `transport` (a [`crate::metrics::KINDS`] label):
    /// it is counted, and counts as open until the slot is given back. A slot counts once.
    pub fn counts_in(&self, transport: &'static str) {
        let metrics = &self.slots.metrics;
        let kind = crate::metrics::kind_of(transport);
        if (self.session)
            .compare_exchange(0, kind + 1, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            metrics.session_opened(kind);
        }
    }
}

impl Held {
    /// The slot counts against `client`'s connections from now until it is given back, if
    /// `client` has room for one more (a refusal is counted). A slot counts against one
    /// address, once: asked again, it says yes.
    pub fn count_against(&self, client: IpAddr) -> Result<(), Refused> {
        let per_ip = &self.slots.per_ip;
        if !per_ip.counts_connections() || self.client.load(Ordering::Relaxed) != 0 {
            return Ok(());
        }
        let entered = per_ip
            .enter(client)
            .inspect_err(|refused| self.slots.metrics.per_ip_refused(refused.limit))?;
        let set = self
            .client
            .compare_exchange(0, entered, Ordering::Relaxed, Ordering::Relaxed);
        if set.is_err() {
            per_ip.leave(entered);
        }
        Ok(())
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        match *self.client.get_mut() {
            0 => {}
            entered => self.slots.per_ip.leave(entered),
        }
        if let Some(kind) = self.session.get_mut().checked_sub(1) {
            self.slots.metrics.session_ended(kind);
        }
        self.slots.free.add_permits(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_slot_is_given_back_when_dropped_and_its_session_counts_until_then() {
        let metrics = Arc::new(Metrics::default());
        let slots = Slots::new(2, metrics.clone());
        let (a, b) = (slots.try_acquire().unwrap(), slots.acquire().await);
        assert!(slots.try_acquire().is_none(), "both slots are held");
        a.counts_in("flash");
        a.counts_in("rfc6455"); // a slot counts once
        let open = |text: &str, kind: &str| {
            let name = format!("flashgate_sessions_open{{transport=\"{kind}\"}} ");
            text.lines()
                .find_map(|l| l.strip_prefix(&name)?.parse::<i64>().ok())
        };
        let text = metrics.encode();
        assert_eq!(
            (open(&text, "flash"), open(&text, "rfc6455")),
            (Some(1), Some(0))
        );
        drop(a);
        assert_eq!(open(&metrics.encode(), "flash"), Some(0));
        assert_eq!(slots.available(), 1);
        drop(b);
        assert_eq!(slots.available(), 2);
    }

    #[test]
    fn a_held_slot_is_as_small_as_a_semaphore_permit() {
        assert!(size_of::<Held>() <= size_of::<tokio::sync::OwnedSemaphorePermit>());
    }
}
