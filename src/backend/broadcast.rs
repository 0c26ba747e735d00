//! `broadcast`: every message goes to every client in the same room, the sender included, in
//! one order that all members see.
//!
//! An awake member has a bounded queue, served by its own task. Publishing never waits: a
//! member whose queue is full is removed from the room and closed as too slow (1008), so one
//! stalled client neither slows the others nor holds memory beyond its queue. Messages are
//! reference-counted, so a message sent to a thousand members is stored once.
//!
//! A member that has been silent for a while sleeps (see [`crate::ws::hibernate`]): it has no
//! task and no queue, and the publisher writes each message straight into its socket, framed
//! once per publish for all sleepers. When a message does not fit in a sleeper's socket, the
//! member wakes owing the rest, which its new session sends before anything else.

use std::collections::HashMap;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use futures_util::FutureExt;
use tokio::sync::{mpsc, oneshot};

use crate::session::{CloseReason, Payload, Session};
use crate::ws::hibernate::Hibernation;

/// Most messages from one client published at once (also bounded by the queue length, so
/// that the sender's own copies always fit in its queue).
const BATCH: usize = 64;

/// All rooms, by key. Rooms appear with their first member and go with their last.
pub struct Rooms {
    /// Live rooms. A std `Mutex`: held only to look up, insert or remove, never across `.await`.
    rooms: Mutex<HashMap<String, Arc<Room>>>,
    /// Wakes sleeping members.
    hibernation: Arc<Hibernation>,
    /// Messages an awake member's queue holds.
    queue_len: usize,
}

/// One room.
pub struct Room {
    /// The key, to remove the room when it empties.
    key: String,
    /// Key for the next member.
    next_id: AtomicU64,
    /// The members. Held while a message is handed to each member (a `try_send`, or a
    /// non-blocking write into a sleeper's socket: no waiting), which is also what gives every
    /// member the same order.
    members: Mutex<HashMap<u64, Member>>,
    hibernation: Arc<Hibernation>,
    queue_len: usize,
}

/// A member as the room sees it.
enum Member {
    /// Served by its task: messages queue for it.
    Awake {
        /// The member's bounded queue.
        queue: mpsc::Sender<Payload>,
        /// Dropped to tell the member it was removed for being too slow.
        _kick: oneshot::Sender<()>,
        /// Set when a publish woke the member: its new task takes its inbox and what is owed.
        handover: Option<Box<(Inbox, Bytes)>>,
    },
    /// Asleep: the publisher writes into its socket.
    Asleep {
        /// The socket, owned by the sleeping connection, open as long as this entry says
        /// asleep (it wakes, through [`Room::claim`], before it can close).
        fd: RawFd,
        /// Takes text frames only (web-socket-js).
        flash: bool,
        /// Its key among the sleepers, once it is in their set.
        sleeper: Option<usize>,
    },
    /// Removed for being too slow while it was waking: its new session sends what it owes
    /// (the rest of a frame, so that the stream stays whole), then closes with 1008.
    Dropped { owed: Bytes },
}

/// What a woken member's session finds in its room.
pub enum Claim {
    /// Its place, and the bytes it owes its client.
    Member(Membership, Bytes),
    /// It was removed as too slow; the bytes it owes its client.
    TooSlow(Bytes),
}

/// A member's end of its queue.
pub struct Inbox {
    queue: mpsc::Receiver<Payload>,
    kicked: oneshot::Receiver<()>,
}

/// A place in a room, held by the member's session; leaving the room when dropped (unless
/// the member fell asleep and keeps its place).
pub struct Membership {
    /// The room.
    pub room: Arc<Room>,
    /// The member's key in it.
    pub id: u64,
    inbox: Inbox,
    /// Dropping leaves the room.
    leave_on_drop: bool,
}

impl Drop for Membership {
    fn drop(&mut self) {
        if self.leave_on_drop {
            lock(&self.room.members).remove(&self.id);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Rooms {
    /// No rooms yet; members' queues hold `queue_len` messages.
    pub fn new(hibernation: Arc<Hibernation>, queue_len: usize) -> Rooms {
        Rooms {
            rooms: Mutex::default(),
            hibernation,
            queue_len,
        }
    }

    /// The room with `key`, created if needed.
    pub fn join(&self, key: &str) -> Arc<Room> {
        let mut rooms = lock(&self.rooms);
        rooms
            .entry(key.to_string())
            .or_insert_with(|| {
                Arc::new(Room {
                    key: key.to_string(),
                    next_id: AtomicU64::new(0),
                    members: Mutex::default(),
                    hibernation: self.hibernation.clone(),
                    queue_len: self.queue_len,
                })
            })
            .clone()
    }

    /// Number of live rooms.
    pub fn len(&self) -> usize {
        lock(&self.rooms).len()
    }

    /// True when no room is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets `room` once its last member is gone.
    pub fn leave(&self, room: &Arc<Room>) {
        let mut rooms = lock(&self.rooms);
        if let Some(live) = rooms.get(&room.key)
            && Arc::ptr_eq(live, room)
            && lock(&room.members).is_empty()
        {
            rooms.remove(&room.key);
        }
    }
}

impl Room {
    /// A new queue: the room's end and the member's.
    fn awake(&self, handover: Option<Box<(Inbox, Bytes)>>) -> (Member, Inbox) {
        let (queue, rx) = mpsc::channel(self.queue_len);
        let (kick, kicked) = oneshot::channel();
        let member = Member::Awake {
            queue,
            _kick: kick,
            handover,
        };
        (member, Inbox { queue: rx, kicked })
    }

    /// Adds a member.
    pub fn enter(self: &Arc<Self>) -> Membership {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (member, inbox) = self.awake(None);
        lock(&self.members).insert(id, member);
        Membership {
            room: self.clone(),
            id,
            inbox,
            leave_on_drop: true,
        }
    }

    /// Hands `messages` to every member, in order: into awake members' queues (members whose
    /// queue is full are removed), straight into sleeping members' sockets.
    pub fn publish(&self, messages: &[Payload]) {
        // Framed once for all sleepers: for RFC 6455 clients, and for Flash clients.
        let mut framed: [Option<Vec<u8>>; 2] = [None, None];
        lock(&self.members).retain(|_, member| match member {
            Member::Awake {
                queue, handover, ..
            } => {
                if messages.iter().all(|m| queue.try_send(m.clone()).is_ok()) {
                    return true;
                }
                // Too slow. One still waking keeps its entry for what it owes.
                match handover.take() {
                    Some(handover) => {
                        *member = Member::Dropped { owed: handover.1 };
                        true
                    }
                    None => false,
                }
            }
            Member::Dropped { .. } => true,
            Member::Asleep { fd, flash, sleeper } => {
                let frames = framed[usize::from(*flash)].get_or_insert_with(|| {
                    let mut out = Vec::new();
                    for m in messages {
                        crate::ws::frame::encode(&mut out, m, *flash);
                    }
                    out
                });
                let sent = send_now(*fd, frames);
                if sent < frames.len() {
                    // The socket is full (or failed): the member wakes, owing the rest.
                    let (fd, sleeper) = (*fd, *sleeper);
                    let (awake, inbox) = self.awake(None);
                    let owed = Bytes::copy_from_slice(&frames[sent..]);
                    *member = awake;
                    if let Member::Awake { handover, .. } = member {
                        *handover = Some(Box::new((inbox, owed)));
                    }
                    // Not yet among the sleepers: `dozed` sees the handover and wakes it.
                    if let Some(key) = sleeper {
                        self.hibernation.wake(key, fd);
                    }
                }
                true
            }
        });
    }

    /// A sleeping member's new session takes its place: its inbox (new, or left by the
    /// publish that woke it) and the bytes it owes its client. `None` if it has no place.
    pub fn claim(self: &Arc<Self>, id: u64) -> Option<Claim> {
        let mut members = lock(&self.members);
        let member = members.get_mut(&id)?;
        let (inbox, owed) = match member {
            Member::Asleep { .. } => {
                let (awake, inbox) = self.awake(None);
                *member = awake;
                (inbox, Bytes::new())
            }
            Member::Awake { handover, .. } => {
                let handover = handover.take()?;
                (handover.0, handover.1)
            }
            Member::Dropped { owed } => {
                let owed = std::mem::take(owed);
                members.remove(&id);
                return Some(Claim::TooSlow(owed));
            }
        };
        let membership = Membership {
            room: self.clone(),
            id,
            inbox,
            leave_on_drop: true,
        };
        Some(Claim::Member(membership, owed))
    }

    /// The member falls asleep on `fd`, unless something is queued for it or it was removed
    /// (then it gets its membership back, to go on awake). Follow with [`dozed`](Self::dozed).
    pub fn doze(
        &self,
        mut membership: Membership,
        fd: RawFd,
        flash: bool,
    ) -> Result<(), Membership> {
        let mut members = lock(&self.members);
        let waiting = !membership.inbox.queue.is_empty();
        match members.get_mut(&membership.id) {
            Some(member) if !waiting => {
                *member = Member::Asleep {
                    fd,
                    flash,
                    sleeper: None,
                };
                membership.leave_on_drop = false;
                Ok(())
            }
            _ => Err(membership),
        }
    }

    /// The sleeping member `id` is in the sleepers' set under `key`: a publish that finds
    /// its socket full can wake it now; one that already did is answered here.
    pub fn dozed(&self, id: u64, fd: RawFd, key: usize) {
        let mut members = lock(&self.members);
        match members.get_mut(&id) {
            Some(Member::Asleep { sleeper, .. }) => *sleeper = Some(key),
            _ => self.hibernation.wake(key, fd),
        }
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        lock(&self.members).len()
    }

    /// True when the room has no members.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Writes as much of `data` into the socket `fd` as it takes without waiting.
fn send_now(fd: RawFd, data: &[u8]) -> usize {
    let mut sent = 0;
    while sent < data.len() {
        let rest = &data[sent..];
        // SAFETY: `fd` is an open socket (see `Member::Asleep`), and `rest` is valid for
        // reads of its length.
        let n = unsafe {
            libc::send(
                fd,
                rest.as_ptr().cast(),
                rest.len(),
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            )
        };
        if n > 0 {
            sent += n as usize;
        } else if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted
        {
            continue;
        } else {
            break;
        }
    }
    sent
}

/// Takes part in the room until the session ends or falls too far behind (`None`), or
/// falls asleep (its membership, to sleep with).
pub async fn run<S: Session>(session: &mut S, mut member: Membership) -> Option<Membership> {
    let batch_max = BATCH.min(member.room.queue_len);
    let mut batch = Vec::new();
    loop {
        let inbox = &mut member.inbox;
        // Removed for being too slow (its end of `kick` dropped): no waiting involved, so
        // this costs one atomic load per message.
        if matches!(
            inbox.kicked.try_recv(),
            Err(oneshot::error::TryRecvError::Closed)
        ) {
            session.close(CloseReason::TooSlow).await;
            return None;
        }
        // Biased: what is queued for the client goes out before more of its input is read,
        // so a client's own messages never pile up in its own queue (reading waits while the
        // client is behind).
        tokio::select! {
            biased;
            outgoing = inbox.queue.recv() => {
                // `None`: the room let go of this member, which happens only on removal.
                let Some(message) = outgoing else {
                    session.close(CloseReason::TooSlow).await;
                    return None;
                };
                // Race the write against removal: a client whose socket is full must not
                // stay stuck here while its queue overflows. Biased, so removal is looked
                // at only while the write waits.
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
                    sent = write => if sent.is_err() { return None },
                    _ = &mut inbox.kicked => {
                        session.close(CloseReason::TooSlow).await;
                        return None;
                    }
                }
            }
            incoming = session.recv() => match incoming {
                Some(message) => {
                    // Everything the client has already sent goes out as one publish: one
                    // write per sleeping member for the lot.
                    batch.push(message);
                    let mut ended = false;
                    while batch.len() < batch_max {
                        match session.recv().now_or_never() {
                            Some(Some(message)) => batch.push(message),
                            Some(None) => {
                                ended = true;
                                break;
                            }
                            None => break,
                        }
                    }
                    member.room.publish(&batch);
                    batch.clear();
                    if ended {
                        return session.is_asleep().then_some(member);
                    }
                }
                None if session.is_asleep() => return Some(member),
                None => return None,
            },
        }
    }
}
