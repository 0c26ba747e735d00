//! The live SockJS sessions of the gateway, by route and session id, and their expiry.
//!
//! A session id is chosen by the client. So that another client who learns or guesses it
//! can neither read nor write that session, a session answers only requests from the
//! address that opened it; any other gets 404, as an unknown session does.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use super::comet::Comet;
use crate::shutdown::ConnGuard;

/// One session as the table holds it.
struct Entry {
    comet: Arc<Comet>,
    /// The client's address.
    owner: IpAddr,
    /// How long it lives without a receiving request.
    delay: Duration,
    /// Its connection slot: a session counts against `--max-connections` as one, with the
    /// connections that carry its receiving responses.
    slot: ConnGuard,
}

/// The sessions of each route, by id: found without building a key.
type Sessions = HashMap<Box<str>, HashMap<Box<str>, Entry>>;

/// The sessions.
#[derive(Default)]
pub struct Table {
    sessions: Mutex<Sessions>,
}

/// What a request found under a session id.
pub enum Found {
    /// The session, live.
    Session(Arc<Comet>),
    /// No session by that id for this client.
    None,
}

impl Table {
    fn lock(&self) -> MutexGuard<'_, Sessions> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The session `id` of `route`, if `client` opened it.
    pub fn find(&self, route: &str, id: &str, client: IpAddr) -> Found {
        let sessions = self.lock();
        match sessions.get(route).and_then(|route| route.get(id)) {
            Some(entry) if entry.owner == client => Found::Session(entry.comet.clone()),
            _ => Found::None,
        }
    }

    /// The session `id` of `route` for `client`, and its slot: the live one, or one made by
    /// `make` (which may refuse, giving its reason). `Err(None)` when the id belongs to
    /// another client.
    pub fn find_or_make<E>(
        &self,
        route: &str,
        id: &str,
        client: IpAddr,
        make: impl FnOnce() -> Result<(Arc<Comet>, Duration, ConnGuard), E>,
    ) -> Result<(Arc<Comet>, ConnGuard), Option<E>> {
        let mut sessions = self.lock();
        if let Some(entry) = sessions.get(route).and_then(|route| route.get(id)) {
            return match entry.owner == client {
                true => Ok((entry.comet.clone(), entry.slot.clone())),
                false => Err(None),
            };
        }
        let (comet, delay, slot) = make().map_err(Some)?;
        sessions.entry(route.into()).or_default().insert(
            id.into(),
            Entry {
                comet: comet.clone(),
                owner: client,
                delay,
                slot: slot.clone(),
            },
        );
        Ok((comet, slot))
    }

    /// Closes every session: the gateway stops.
    pub fn shut_down(&self) {
        let all: Vec<Arc<Comet>> = (self.lock().values())
            .flat_map(|route| route.values().map(|e| e.comet.clone()))
            .collect();
        for comet in all {
            comet.shut_down();
        }
    }

    /// Sends the heartbeats due at `now`, and ends and forgets the sessions that have expired.
    /// Sessions whose clients have been silent for `hibernate_after` are offered sleep.
    pub fn sweep(&self, now: Instant, hibernate_after: Duration) {
        let mut gone = Vec::new();
        for route in self.lock().values_mut() {
            route.retain(|_, entry| {
                let keep = !entry.comet.tick(entry.delay, hibernate_after, now);
                if !keep {
                    gone.push(entry.comet.clone());
                }
                keep
            });
        }
        for comet in gone {
            comet.expire();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;
    use crate::session::Session;
    use crate::sockjs::comet::CometSession;

    #[tokio::test]
    async fn an_expired_session_ends_on_the_backends_side_and_gives_back_its_slot() {
        let table = Table::default();
        let slots = crate::slots::Slots::new(1, Default::default());
        let peer: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let delay = Duration::from_millis(50);
        let (comet, _) = table
            .find_or_make("/r", "id", peer.ip(), || {
                let slot = slots.try_acquire().unwrap();
                Ok::<_, ()>((Comet::new(1024, 1024, Duration::from_secs(25)), delay, slot))
            })
            .unwrap();
        let mut session = CometSession::new(comet, peer);
        let backend = tokio::spawn(async move { session.recv().await });

        // Within the delay the session lives, and so does its backend.
        table.sweep(Instant::now(), Duration::ZERO);
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!backend.is_finished());
        assert_eq!(slots.available(), 0);

        tokio::time::sleep(delay).await;
        table.sweep(Instant::now(), Duration::ZERO);
        let seen = tokio::time::timeout(Duration::from_secs(1), backend).await;
        assert_eq!(seen.expect("the backend saw the end").unwrap(), None);
        assert_eq!(slots.available(), 1);
        assert!(matches!(table.find("/r", "id", peer.ip()), Found::None));
    }
}
