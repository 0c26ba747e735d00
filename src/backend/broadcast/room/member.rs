//! A member's side of its room: its queue, and its place, kept while it sleeps.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::{mpsc, oneshot};

use super::{Backlog, Member, Room, cost, lock};
use crate::session::{Delivery, Payload, Woken};

/// A member's end of its queue.
pub struct Inbox {
    /// What the room published for the member.
    pub(in crate::backend::broadcast) queue: mpsc::UnboundedReceiver<Payload>,
    /// Closed when the member is dropped as too slow.
    pub(in crate::backend::broadcast) kicked: oneshot::Receiver<()>,
    /// What is queued, shared with the room.
    pub(super) backlog: Arc<Backlog>,
}

impl Inbox {
    /// Takes `message` off the backlog's count.
    pub(in crate::backend::broadcast) fn took(&self, message: &Payload) {
        self.backlog
            .bytes
            .fetch_sub(cost(message), Ordering::Relaxed);
        self.backlog.taken.fetch_add(1, Ordering::Relaxed);
    }
}

/// A place in a room, held by the member's handler for as long as the client is there
/// (awake or asleep); dropping it leaves the room.
pub struct Membership {
    /// The room.
    pub(in crate::backend::broadcast) room: Arc<Room>,
    /// The member's key in it.
    pub(in crate::backend::broadcast) id: u64,
    /// Its queue while awake; `None` while the client sleeps (the room then holds its
    /// delivery, and the queue's memory is given back). Boxed: a sleeper holds a pointer.
    pub(in crate::backend::broadcast) inbox: Option<Box<Inbox>>,
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.room.remove(self.id);
        self.room.gauges().members.dec();
    }
}

impl Membership {
    /// The room, and the member's queue (none while it sleeps).
    pub(in crate::backend::broadcast) fn parts(&mut self) -> (&Arc<Room>, Option<&mut Inbox>) {
        (&self.room, self.inbox.as_deref_mut())
    }

    /// The client's connection fell asleep and `delivery` reaches it. `Err` hands it back
    /// when something is queued for the member, or it was closed as too slow: it goes on
    /// awake.
    pub fn sleep(&mut self, delivery: Delivery) -> Result<(), Delivery> {
        let mut members = lock(&self.room.members);
        let Some(inbox) = &self.inbox else {
            return Err(delivery);
        };
        match members.get_mut(&self.id) {
            Some(member) if inbox.queue.is_empty() => {
                let Member::Awake(awake) = member else {
                    return Err(delivery);
                };
                // Still owed by a hand-out under way: it writes to the new delivery.
                let owes = awake.owes;
                *member = Member::Asleep(delivery, owes);
                self.inbox = None;
                Ok(())
            }
            _ => Err(delivery),
        }
    }

    /// The client's connection woke: the room lets go of its delivery, and the member has a
    /// queue again.
    pub fn wake(&mut self) -> Woken {
        if self.inbox.is_some() {
            return Woken::Resumed; // it never fell asleep
        }
        let mut members = lock(&self.room.members);
        let Some(member) = members.get_mut(&self.id) else {
            return Woken::Gone;
        };
        match member {
            Member::Asleep(_, owes) => {
                let (mut awake, inbox) = self.room.awake();
                awake.owes = *owes;
                *member = Member::Awake(awake);
                self.inbox = Some(inbox);
                Woken::Resumed
            }
            Member::Awake(awake) => match awake.handover.take() {
                Some(inbox) => {
                    self.inbox = Some(inbox);
                    Woken::Resumed
                }
                None => Woken::Gone,
            },
            Member::Dropped => {
                members.remove(&self.id);
                Woken::TooSlow
            }
        }
    }
}
