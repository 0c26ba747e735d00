//! The backend's side of a SockJS session over HTTP requests.

use std::sync::Arc;

use super::{Comet, lock};
use crate::session::{CloseReason, Closed, Payload, Session, text_only};
use crate::sockjs::frames;

/// The backend's side of a SockJS session. It ends when the session does: closed by
/// either side, expired, or on shutdown, when the endpoint closes every session.
pub struct CometSession {
    comet: Arc<Comet>,
    /// The client, for logs.
    peer: std::net::SocketAddr,
    /// `recv` ended so that the session can sleep.
    asleep: bool,
    /// Its backend lets it sleep ([`Service::sleeps`](crate::session::Service::sleeps)).
    sleeps: bool,
    /// The code of the close frame it ended with, once it did.
    code: Option<u16>,
}

impl CometSession {
    /// The backend's side of `comet`, for a client at `peer`.
    pub fn new(comet: Arc<Comet>, peer: std::net::SocketAddr) -> CometSession {
        CometSession {
            comet,
            peer,
            asleep: false,
            sleeps: true,
            code: None,
        }
    }

    /// The session never sleeps: its backend keeps something that speaks on its own.
    pub fn awake(mut self) -> CometSession {
        self.sleeps = false;
        self
    }

    /// Serves the session awake again, after `recv` ended for it to sleep.
    pub fn wake(&mut self) {
        self.asleep = false;
    }

    /// Waits, asleep, until something wakes the session: a message from the client, its
    /// response full, ended or owing, its client gone, or its end.
    pub async fn doze(&mut self) {
        loop {
            let woken = self.comet.to_backend.notified();
            {
                let state = lock(&self.comet.state);
                if state.wake
                    || state.asleep.is_none()
                    || !state.phase.live()
                    || !state.incoming.is_empty()
                    || state.parked.is_none()
                {
                    break;
                }
            }
            tokio::select! {
                _ = woken => {}
                _ = std::future::poll_fn(|cx| self.comet.poll_parked(cx)) => {}
            }
        }
    }
}

impl Session for CometSession {
    async fn recv(&mut self) -> Option<Payload> {
        loop {
            let woken = self.comet.to_backend.notified();
            {
                let mut state = lock(&self.comet.state);
                if let Some(message) = state.incoming.pop_front() {
                    // Sending requests wait for room in the inbox, or for the backend to
                    // have handled everything (rung below, when it waits): only the first
                    // are told of each message taken.
                    let was_full = state.incoming_bytes >= self.comet.inbox;
                    state.incoming_bytes -= message.len();
                    drop(state);
                    if was_full {
                        self.comet.taken.notify_waiters();
                    }
                    return Some(message);
                }
                self.comet.flush(&mut state);
                if !state.phase.live() {
                    return None;
                }
                state.idle = true;
                if std::mem::take(&mut state.drowsy) && self.sleeps && state.sleepable().is_some() {
                    self.asleep = true;
                    return None;
                }
            }
            self.comet.taken.notify_waiters();
            tokio::select! {
                _ = woken => {}
                _ = std::future::poll_fn(|cx| self.comet.poll_parked(cx)) => {}
            }
        }
    }

    async fn send(&mut self, payload: Payload) -> Result<(), Closed> {
        let text = text_only(payload);
        let mut state = lock(&self.comet.state);
        if !state.phase.live() {
            return Err(Closed);
        }
        let owed = state.parked.as_ref().map_or(0, |p| p.owed());
        if state.outgoing_bytes + owed + text.len() > self.comet.backlog {
            drop(state);
            let (code, reason) = CloseReason::TooSlow.announce(self.peer);
            self.comet.closing(frames::close(code, reason));
            self.code = self.code.or(Some(code));
            return Err(Closed);
        }
        state.outgoing_bytes += text.len();
        state.outgoing.push(text);
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), Closed> {
        let mut state = lock(&self.comet.state);
        self.comet.flush(&mut state);
        match state.phase.live() {
            true => Ok(()),
            false => Err(Closed),
        }
    }

    fn is_asleep(&self) -> bool {
        self.asleep
    }

    async fn close(&mut self, reason: CloseReason) {
        let (code, why) = reason.announce(self.peer);
        self.comet.closing(frames::close(code, why));
        self.code = self.code.or(Some(code));
    }

    fn close_code(&self) -> Option<u16> {
        self.code
    }
}
