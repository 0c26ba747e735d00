//! A room: its members, and publishing to them in one order.
//!
//! A publish hands its messages to every member: into awake members' queues, under the
//! members' lock (a queue push each, no waiting), and through sleeping members' deliveries,
//! outside it, so a publish to ten thousand sleepers (a socket write each) holds up no other
//! member. One publisher at a time hands out ([`handout`]): a publish that arrives meanwhile
//! joins the outbox, and the one handing out takes it in at its next checkpoint, together
//! with all that arrived since, framed once and written to each sleeper with what it was due
//! anyway, in one system call. So every member sees one order, a message reaches every
//! sleeper within one round of writes, and a room that falls behind catches up in fewer,
//! larger writes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::metrics::RoomGauges;
use crate::session::{Delivery, Payload};

/// What a queued message counts for besides its body: its slot in the queue.
pub const QUEUED_OVERHEAD: usize = 64;

/// What `message` counts for in a backlog.
pub(super) fn cost(message: &Payload) -> usize {
    message.len() + QUEUED_OVERHEAD
}

/// How far behind a member may fall.
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    /// Queued bytes past which a member is judged: closed if it takes nothing for `grace`.
    pub backlog: usize,
    /// How long a member over the bound may take nothing.
    pub grace: Duration,
}

impl Bound {
    /// Queued bytes past which a member is closed at once, whatever it takes.
    pub fn hard(&self) -> usize {
        self.backlog.saturating_mul(4)
    }
}

/// All rooms of one route, by key. Rooms appear with their first member and go with their
/// last. Cheap to clone.
#[derive(Clone)]
pub struct Rooms {
    inner: Arc<RoomsInner>,
}

struct RoomsInner {
    /// Live rooms. A std `Mutex`: held only to look up, insert or remove, never across
    /// `.await`. Taken before a room's members, never after.
    rooms: Mutex<HashMap<String, Arc<Room>>>,
    /// Every member's bound.
    bound: Bound,
    /// How many rooms and members there are, for the metrics.
    gauges: RoomGauges,
}

/// One room.
pub struct Room {
    /// The key, to remove the room when it empties.
    key: String,
    /// The rooms it belongs to, to leave them when it empties.
    rooms: Weak<RoomsInner>,
    /// Key for the next member.
    next_id: AtomicU64,
    /// The members. Held to push a publish into awake members' queues and to see who
    /// sleeps, never while writing to a socket.
    members: Mutex<HashMap<u64, Member>>,
    /// Messages published and not yet handed out, in publish order.
    outbox: Mutex<Outbox>,
    /// Rung when the outbox has room again.
    outbox_room: Condvar,
    /// Every member's bound.
    bound: Bound,
}

/// What waits to be handed out.
#[derive(Default)]
struct Outbox {
    /// Published, in order, not yet handed out.
    pending: Vec<Payload>,
    /// What `pending` costs.
    cost: usize,
    /// A publisher is handing out: it takes `pending` in at its next checkpoint.
    busy: bool,
    /// The last hand-out's generation, for members' tickets.
    generation: u32,
}

/// A member as the room sees it.
enum Member {
    /// Served by its task: messages queue for it. Boxed: most members of a large room sleep,
    /// and an entry is as large as its largest kind.
    Awake(Box<Awake>),
    /// Asleep: messages go through its transport's delivery handle; the ticket names its
    /// entry in the hand-out under way.
    Asleep(Delivery, Ticket),
    /// Closed as too slow while it was waking: its new session sends what its delivery owes
    /// (the rest of a frame, so that the stream stays whole), then closes with 1008.
    Dropped,
}

/// An awake member's end of its queue, as the room holds it.
struct Awake {
    /// The member's queue, bounded by `backlog` (an unbounded channel: the room counts).
    queue: mpsc::UnboundedSender<Payload>,
    /// What is queued, and how much the member has taken.
    backlog: Arc<Backlog>,
    /// Dropped to tell the member it was closed as too slow.
    _kick: oneshot::Sender<()>,
    /// Since when the backlog is over the bound, and what the member had taken then.
    over: Option<(Instant, u64)>,
    /// Set when a publish woke the member: its new session takes this inbox.
    handover: Option<Box<Inbox>>,
    /// Its entry in the hand-out under way, if it woke while asleep there: what it missed
    /// is queued for it before anything new.
    owes: Ticket,
}

/// What is queued for a member, shared by the room (which adds) and the member (which takes).
#[derive(Default)]
struct Backlog {
    /// Queued bytes, counted by [`cost`].
    bytes: AtomicUsize,
    /// Messages taken so far: progress, for the grace period.
    taken: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Rooms {
    /// No rooms yet; every member is bound by `bound`.
    #[cfg(test)]
    pub fn new(bound: Bound) -> Rooms {
        Rooms::counted(bound, RoomGauges::default())
    }

    /// No rooms yet; every member is bound by `bound`, and rooms and members count in
    /// `gauges`.
    pub fn counted(bound: Bound, gauges: RoomGauges) -> Rooms {
        Rooms {
            inner: Arc::new(RoomsInner {
                rooms: Mutex::default(),
                bound,
                gauges,
            }),
        }
    }

    /// Enters the room with `key`, created if needed.
    pub fn enter(&self, key: &str) -> Membership {
        let mut rooms = lock(&self.inner.rooms);
        let room = rooms
            .entry(key.to_string())
            .or_insert_with(|| {
                self.inner.gauges.rooms.inc();
                Arc::new(Room {
                    key: key.to_string(),
                    rooms: Arc::downgrade(&self.inner),
                    next_id: AtomicU64::new(0),
                    members: Mutex::default(),
                    outbox: Mutex::default(),
                    outbox_room: Condvar::new(),
                    bound: self.inner.bound,
                })
            })
            .clone();
        // Under the rooms' lock: a room found here cannot be forgotten before it has this
        // member.
        let id = room.next_id.fetch_add(1, Ordering::Relaxed);
        let (awake, inbox) = room.awake();
        lock(&room.members).insert(id, Member::Awake(awake));
        self.inner.gauges.members.inc();
        drop(rooms);
        Membership {
            room,
            id,
            inbox: Some(inbox),
        }
    }

    /// Number of live rooms.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        lock(&self.inner.rooms).len()
    }
}

impl Room {
    /// A new queue: the room's end and the member's.
    fn awake(&self) -> (Box<Awake>, Box<Inbox>) {
        let (queue, rx) = mpsc::unbounded_channel();
        let (kick, kicked) = oneshot::channel();
        let backlog = Arc::new(Backlog::default());
        let awake = Box::new(Awake {
            queue,
            backlog: backlog.clone(),
            _kick: kick,
            over: None,
            handover: None,
            owes: Ticket::NONE,
        });
        let inbox = Box::new(Inbox {
            queue: rx,
            kicked,
            backlog,
        });
        (awake, inbox)
    }

    /// The entry of a sleeper whose socket was full: it wakes owing the rest, and what
    /// follows queues for it, in the inbox its new session takes.
    fn waking(&self) -> Member {
        let (mut awake, inbox) = self.awake();
        awake.handover = Some(inbox);
        Member::Awake(awake)
    }

    /// Removes the member `id`, and the room from its rooms once it is empty.
    fn remove(&self, id: u64) {
        let empty = {
            let mut members = lock(&self.members);
            members.remove(&id);
            members.is_empty()
        };
        if empty && let Some(rooms) = self.rooms.upgrade() {
            let mut rooms = lock(&rooms.rooms);
            if let Some(live) = rooms.get(&self.key)
                && std::ptr::eq(Arc::as_ptr(live), self)
                && lock(&self.members).is_empty()
            {
                rooms.remove(&self.key);
                self.gauges().rooms.dec();
            }
        }
    }

    /// The gauges of the rooms this one is in (none once they are gone).
    pub(super) fn gauges(&self) -> RoomGauges {
        (self.rooms.upgrade()).map_or_else(RoomGauges::default, |rooms| rooms.gauges.clone())
    }

    /// Every member's bound.
    pub(super) fn bound(&self) -> &Bound {
        &self.bound
    }

    /// Publishes `messages` to every member, after everything published before: hands them
    /// out now, or leaves them to the publisher handing out already. Waits only while the
    /// outbox holds more than a member's bound.
    ///
    /// A hand-out that is more than one stride long goes on on a blocking thread, so that
    /// the publisher's task, and every other task of its thread, runs meanwhile: it is the
    /// publisher's next messages that the lap under way takes in.
    pub fn publish(self: &Arc<Self>, messages: &[Payload]) {
        let generation = {
            let mut outbox = lock(&self.outbox);
            while outbox.busy && outbox.cost > self.bound.backlog {
                outbox = self
                    .outbox_room
                    .wait(outbox)
                    .unwrap_or_else(|e| e.into_inner());
            }
            outbox.pending.extend_from_slice(messages);
            outbox.cost += messages.iter().map(cost).sum::<usize>();
            if outbox.busy {
                return;
            }
            outbox.busy = true;
            outbox.generation = handout::next_generation(outbox.generation);
            outbox.generation
        };
        let mut handout = Handout::new(generation);
        let mut fresh = Vec::new();
        if !self.checkpoint(&mut handout, &mut fresh) {
            return;
        }
        self.wrote(handout.walk(handout.stride()));
        let runtime = tokio::runtime::Handle::try_current();
        match runtime {
            Ok(runtime) if !handout.done() => {
                let room = self.clone();
                runtime.spawn_blocking(move || room.hand_out(handout, fresh));
            }
            _ => self.hand_out(handout, fresh),
        }
    }

    /// Walks and takes in until the hand-out is done.
    fn hand_out(&self, mut handout: Handout, mut fresh: Vec<Payload>) {
        while self.checkpoint(&mut handout, &mut fresh) {
            self.wrote(handout.walk(handout.stride()));
        }
    }

    /// Counts `messages` (of `bytes` bytes) written straight into sleeping members' sockets.
    fn wrote(&self, (messages, bytes): (u64, u64)) {
        if messages != 0
            && let Some(rooms) = self.rooms.upgrade()
        {
            rooms.gauges.delivered.inc_by(messages);
            rooms.gauges.delivered_bytes.inc_by(bytes);
        }
    }

    /// Takes in what waits in the outbox, if the log has room, or settles who woke once the
    /// lap is done; false when the hand-out is over.
    fn checkpoint(&self, handout: &mut Handout, fresh: &mut Vec<Payload>) -> bool {
        let take = {
            let mut outbox = lock(&self.outbox);
            if outbox.pending.is_empty() {
                if handout.done() {
                    outbox.busy = false;
                    return false;
                }
                // Nothing new: settle who woke or filled up once the lap is done.
                handout.caught_up()
            } else if handout.cost() <= self.bound.backlog || handout.caught_up() {
                std::mem::swap(fresh, &mut outbox.pending);
                outbox.cost = 0;
                true
            } else {
                false // the log is full: the lap under way frees it
            }
        };
        if take {
            self.outbox_room.notify_all();
            handout.pass(self, &mut lock(&self.members), fresh);
        } else if handout.cost() > self.bound.backlog {
            handout.trim();
        }
        true
    }

    /// Queues `messages` (costing `cost`) for an awake member; false when it is too far
    /// behind and must go.
    fn queue(
        &self,
        awake: &mut Awake,
        messages: &[Payload],
        cost: usize,
        now: &mut Option<Instant>,
    ) -> bool {
        // Counted before it is queued: the member takes it off the count only once it has
        // it, so the count never falls below what is queued.
        let backlog = awake.backlog.bytes.fetch_add(cost, Ordering::Relaxed) + cost;
        for message in messages {
            // Fails only when the member has let go of its queue: it is leaving anyway.
            let _ = awake.queue.send(message.clone());
        }
        if backlog <= self.bound.backlog {
            awake.over = None;
            return true;
        }
        if backlog > self.bound.hard() {
            return false;
        }
        let now = *now.get_or_insert_with(Instant::now);
        let taken = awake.backlog.taken.load(Ordering::Relaxed);
        match awake.over {
            Some((since, then)) if then == taken => now.duration_since(since) < self.bound.grace,
            // Newly over, or it took something since: the grace period starts again.
            _ => {
                awake.over = Some((now, taken));
                true
            }
        }
    }

    /// Number of members.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        lock(&self.members).len()
    }
}

mod handout;
mod member;

use handout::{Handout, Ticket};
use member::Inbox;
pub use member::Membership;

#[cfg(test)]
mod tests;
