//! `broadcast`: every message goes to every client in the same room, the sender included, in
//! one order that all members see.
//!
//! An awake member has a queue, served by its own task, bounded in bytes by what its client
//! does ([`Bound`]): publishing never waits, and a member is closed as too slow (1008) only when
//! its backlog has stayed over the bound for a grace period while its client took nothing, or
//! has grown past four times the bound. So a member that reads keeps its place however busy
//! the room is, one that stalls neither slows the others nor holds memory beyond the bound, and
//! messages are reference-counted, so a message sent to a thousand members is stored once.
//!
//! A member whose connection sleeps has no task and no queue: the room holds its transport's
//! [`Delivery`] and writes each publish through it, framed once per publish per framing. When
//! a publish does not fit, the delivery owes the rest and wakes; the member's queue takes what
//! follows.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use futures_util::FutureExt;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::session::{CloseReason, Delivery, Framing, Payload, Session, Woken};

/// Most messages from one client published at once.
const BATCH: usize = 64;

/// What a queued message counts for besides its body: its slot in the queue.
pub const QUEUED_OVERHEAD: usize = 64;

/// What `message` counts for in a backlog.
fn cost(message: &Payload) -> usize {
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
}

/// One room.
pub struct Room {
    /// The key, to remove the room when it empties.
    key: String,
    /// The rooms it belongs to, to leave them when it empties.
    rooms: Weak<RoomsInner>,
    /// Key for the next member.
    next_id: AtomicU64,
    /// The members. Held while a publish hands its messages to each member (into a queue, or
    /// through a sleeper's delivery without waiting), which is what gives every member the
    /// same order.
    members: Mutex<HashMap<u64, Member>>,
    /// Every member's bound.
    bound: Bound,
}

/// A member as the room sees it.
enum Member {
    /// Served by its task: messages queue for it.
    Awake(Awake),
    /// Asleep: messages go through its transport's delivery handle.
    Asleep(Arc<dyn Delivery>),
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
    handover: Option<Inbox>,
}

/// What is queued for a member, shared by the room (which adds) and the member (which takes).
#[derive(Default)]
struct Backlog {
    /// Queued bytes, counted by [`cost`].
    bytes: AtomicUsize,
    /// Messages taken so far: progress, for the grace period.
    taken: AtomicU64,
}

/// A member's end of its queue.
pub struct Inbox {
    queue: mpsc::UnboundedReceiver<Payload>,
    kicked: oneshot::Receiver<()>,
    backlog: Arc<Backlog>,
}

impl Inbox {
    /// Takes `message` off the backlog's count.
    fn took(&self, message: &Payload) {
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
    room: Arc<Room>,
    /// The member's key in it.
    id: u64,
    /// Its queue while awake; `None` while the client sleeps (the room then holds its
    /// delivery, and the queue's memory is given back).
    inbox: Option<Inbox>,
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.room.remove(self.id);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Rooms {
    /// No rooms yet; every member is bound by `bound`.
    pub fn new(bound: Bound) -> Rooms {
        Rooms {
            inner: Arc::new(RoomsInner {
                rooms: Mutex::default(),
                bound,
            }),
        }
    }

    /// Enters the room with `key`, created if needed.
    pub fn enter(&self, key: &str) -> Membership {
        let mut rooms = lock(&self.inner.rooms);
        let room = rooms
            .entry(key.to_string())
            .or_insert_with(|| {
                Arc::new(Room {
                    key: key.to_string(),
                    rooms: Arc::downgrade(&self.inner),
                    next_id: AtomicU64::new(0),
                    members: Mutex::default(),
                    bound: self.inner.bound,
                })
            })
            .clone();
        // Under the rooms' lock: a room found here cannot be forgotten before it has this
        // member.
        let id = room.next_id.fetch_add(1, Ordering::Relaxed);
        let (awake, inbox) = room.awake();
        lock(&room.members).insert(id, Member::Awake(awake));
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
    fn awake(&self) -> (Awake, Inbox) {
        let (queue, rx) = mpsc::unbounded_channel();
        let (kick, kicked) = oneshot::channel();
        let backlog = Arc::new(Backlog::default());
        let awake = Awake {
            queue,
            backlog: backlog.clone(),
            _kick: kick,
            over: None,
            handover: None,
        };
        let inbox = Inbox {
            queue: rx,
            kicked,
            backlog,
        };
        (awake, inbox)
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
            }
        }
    }

    /// Hands `messages` to every member, in order: into awake members' queues (closing those
    /// too far behind), and through sleeping members' deliveries.
    pub fn publish(&self, messages: &[Payload]) {
        let cost: usize = messages.iter().map(cost).sum();
        // Framed once per framing, for all sleepers that share it.
        let mut framed: [Option<Vec<u8>>; Framing::COUNT] = Default::default();
        let mut now = None;
        lock(&self.members).retain(|_, member| match member {
            Member::Awake(awake) => {
                if self.queue(awake, messages, cost, &mut now) {
                    return true;
                }
                // Too slow. One still waking keeps its entry, for what its delivery owes.
                match awake.handover.take() {
                    Some(_) => {
                        *member = Member::Dropped;
                        true
                    }
                    None => false,
                }
            }
            Member::Dropped => true,
            Member::Asleep(delivery) => {
                let frames = framed[delivery.framing().index()].get_or_insert_with(|| {
                    let mut out = Vec::new();
                    delivery.frame(messages, &mut out);
                    out
                });
                let sent = delivery.offer(frames);
                if sent < frames.len() {
                    // The client's socket is full (or failed): it wakes owing the rest, and
                    // what follows queues for it.
                    delivery.wake(&frames[sent..]);
                    let (mut awake, inbox) = self.awake();
                    awake.handover = Some(inbox);
                    *member = Member::Awake(awake);
                }
                true
            }
        });
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

impl Membership {
    /// The client's connection fell asleep and `delivery` reaches it. `Err` hands it back
    /// when something is queued for the member, or it was closed as too slow: it goes on
    /// awake.
    pub fn sleep(&mut self, delivery: Arc<dyn Delivery>) -> Result<(), Arc<dyn Delivery>> {
        let mut members = lock(&self.room.members);
        let Some(inbox) = &self.inbox else {
            return Err(delivery);
        };
        match members.get_mut(&self.id) {
            Some(member @ Member::Awake(_)) if inbox.queue.is_empty() => {
                *member = Member::Asleep(delivery);
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
            Member::Asleep(_) => {
                let (awake, inbox) = self.room.awake();
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

/// Takes part in the room until the session ends, falls asleep, or is closed as too slow.
pub async fn run<S: Session>(session: &mut S, member: &mut Membership) {
    let Some(inbox) = member.inbox.as_mut() else {
        return; // asleep: nothing to serve
    };
    let room = &member.room;
    let mut batch = Vec::new();
    loop {
        // Closed as too slow (its end of `kick` dropped): no waiting involved, so this costs
        // one atomic load per message.
        if matches!(
            inbox.kicked.try_recv(),
            Err(oneshot::error::TryRecvError::Closed)
        ) {
            return too_slow(session, room, &mut batch).await;
        }
        // Biased: what is queued for the client goes out before more of its input is read,
        // so a client's own messages never pile up in its own queue (reading waits while the
        // client is behind).
        tokio::select! {
            biased;
            outgoing = inbox.queue.recv() => {
                // `None`: the room let go of this member, which happens only on removal.
                let Some(message) = outgoing else {
                    return too_slow(session, room, &mut batch).await;
                };
                inbox.took(&message);
                // Race the write against removal: a client whose socket is full must not
                // stay stuck here while it falls further behind. Biased, so removal is
                // looked at only while the write waits.
                let queue = &inbox.queue;
                let write = async {
                    session.send(message).await?;
                    // Nothing more queued: send what we have now.
                    if queue.is_empty() {
                        session.flush().await?;
                    }
                    Ok::<(), crate::session::Closed>(())
                };
                tokio::select! {
                    biased;
                    sent = write => if sent.is_err() { return },
                    _ = &mut inbox.kicked => return too_slow(session, room, &mut batch).await,
                }
            }
            incoming = session.recv() => match incoming {
                Some(message) => {
                    // Everything the client has already sent goes out as one publish: one
                    // write per sleeping member for the lot.
                    batch.push(message);
                    let ended = gather(session, &mut batch, room.bound.backlog);
                    room.publish(&batch);
                    batch.clear();
                    if ended {
                        return;
                    }
                }
                None => return,
            },
        }
    }
}

/// Adds to `batch` what the client has already sent, up to [`BATCH`] messages or `bytes`;
/// true when the session ended meanwhile. A publish then never puts more than the bound in
/// its own sender's queue.
fn gather<S: Session>(session: &mut S, batch: &mut Vec<Payload>, bytes: usize) -> bool {
    let mut cost: usize = batch.iter().map(cost).sum();
    while batch.len() < BATCH && cost < bytes {
        match session.recv().now_or_never() {
            Some(Some(message)) => {
                cost += self::cost(&message);
                batch.push(message);
            }
            Some(None) => return true,
            None => break,
        }
    }
    false
}

/// Closes a member that fell too far behind, after publishing what its client had already
/// sent: a message a client has sent reaches the room even if its sender is then closed.
async fn too_slow<S: Session>(session: &mut S, room: &Room, batch: &mut Vec<Payload>) {
    loop {
        batch.clear();
        let ended = gather(session, batch, room.bound.backlog);
        if !batch.is_empty() {
            room.publish(batch);
        }
        if ended || batch.len() < BATCH {
            break;
        }
    }
    session.close(CloseReason::TooSlow).await;
}

#[cfg(test)]
mod tests;
