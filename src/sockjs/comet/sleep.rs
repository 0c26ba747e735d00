//! A session asleep: the backend's task waits, and rooms write into the parked response
//! through the endpoint's [`Dozing`](super::super::asleep::Dozing) table.

use super::{Comet, State, lock};
use crate::session::{Delivered, Framing};

impl State {
    /// How a room frames for the session if it falls asleep now; `None` when it cannot:
    /// only a live session whose streaming response waits, with nothing queued either way.
    pub(super) fn sleepable(&self) -> Option<Framing> {
        if !self.phase.live() || !self.incoming.is_empty() || !self.outgoing.is_empty() {
            return None;
        }
        self.parked.as_ref()?.sleepable()
    }
}

impl Comet {
    /// The session's task fell asleep under `key`: how a room frames for it, or `None`
    /// when it must stay awake after all.
    pub fn fall_asleep(&self, key: usize) -> Option<Framing> {
        let mut state = lock(&self.state);
        let framing = state.sleepable()?;
        state.asleep = Some(key);
        state.wake = false;
        Some(framing)
    }

    /// The session's task woke: writes for the key it slept under reach nothing from now on,
    /// and a response that rooms filled meanwhile ends.
    pub fn wake_up(&self) {
        let mut state = lock(&self.state);
        state.asleep = None;
        state.wake = false;
        if state.parked.as_ref().is_some_and(|p| p.full()) {
            state.parked.take().expect("parked").finish();
            state.detach();
        }
    }

    /// A room's write to the sleeping session `key`: into its parked response, as far as
    /// the socket takes it now. What does not fit is owed, and the session wakes, as it
    /// does once its response is full.
    pub fn deliver(&self, key: usize, bytes: &[u8]) -> Delivered {
        let mut state = lock(&self.state);
        if state.asleep != Some(key) {
            return Delivered::Gone;
        }
        let Some(parked) = state.parked.as_mut() else {
            return Delivered::Gone;
        };
        let delivered = match parked.deliver(bytes) {
            Ok(true) if !parked.full() => return Delivered::All,
            Ok(true) => Delivered::All,
            Ok(false) => Delivered::Part,
            Err(_) => {
                state.interrupted();
                Delivered::Part
            }
        };
        state.wake = true;
        drop(state);
        self.to_backend.notify_one();
        delivered
    }
}
