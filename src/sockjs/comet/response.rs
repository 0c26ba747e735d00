//! A session's side of its parked response: writing what waits into it, and the receiver
//! leaving, at the response's end or with its client.

use tokio::time::Instant;

use super::{Phase, State};
use crate::sockjs::frames;
use crate::sockjs::parked::After;

impl State {
    /// The receiver left as the protocol says. A session asleep wakes: rooms wrote into
    /// that response, and must not write into the next.
    pub(super) fn detach(&mut self) {
        self.attached = false;
        self.alone_since = Instant::now();
        if self.asleep.take().is_some() {
            self.wake = true;
        }
    }

    /// The receiver's client went away in the middle of a response, which ends a live
    /// session (true when it did).
    pub(super) fn interrupted(&mut self) -> bool {
        self.parked = None;
        self.detach();
        let live = self.phase.live();
        if live {
            self.phase = Phase::Closing(frames::close(1002, "Connection interrupted"));
        }
        live
    }

    /// Writes what waits for the client into the parked response, as one frame.
    pub(super) fn send_waiting(&mut self) {
        let Some(parked) = self.parked.as_mut() else {
            return;
        };
        if self.outgoing.is_empty() {
            return;
        }
        let after = parked.send_messages(&self.outgoing);
        self.outgoing.clear();
        self.outgoing_bytes = 0;
        self.after(after);
    }

    /// What follows a write into the parked response: true when the session was
    /// interrupted.
    pub(super) fn after(&mut self, after: After) -> bool {
        match after {
            After::Waits => false,
            After::Full => {
                self.parked.take().expect("parked").finish();
                self.detach();
                false
            }
            After::Gone => self.interrupted(),
        }
    }

    /// Ends the parked response with what waits, then `frame`.
    pub(super) fn end_parked(&mut self, frame: &str) {
        self.send_waiting();
        let Some(mut parked) = self.parked.take() else {
            return;
        };
        if !matches!(parked.send(frame), After::Gone) {
            parked.finish();
        }
        self.detach();
    }
}
