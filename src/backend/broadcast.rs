//! `broadcast`: every message goes to every client in the same room, the sender included, in
//! one order that all members see.
//!
//! Each member has a bounded queue. Publishing never waits: a member whose queue is full is
//! removed from the room and closed as too slow (1008), so one stalled client neither slows
//! the others nor holds memory beyond its queue. Messages are reference-counted, so a
//! message sent to a thousand members is stored once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{mpsc, oneshot};

use crate::session::{CloseReason, Payload, Session};

/// All rooms, by key. Rooms appear with their first member and go with their last.
#[derive(Default)]
pub struct Rooms {
    /// Live rooms. A std `Mutex`: held only to look up, insert or remove, never across `.await`.
    rooms: Mutex<HashMap<String, Arc<Room>>>,
}

/// One room.
pub struct Room {
    /// The key, to remove the room when it empties.
    key: String,
    /// Key for the next member.
    next_id: AtomicU64,
    /// The members' queues. Held while a message is handed to each member (`try_send`, no
    /// waiting), which is also what gives every member the same order.
    members: Mutex<HashMap<u64, Member>>,
}

/// A member's end of the room.
struct Member {
    /// The member's bounded queue.
    queue: mpsc::Sender<Payload>,
    /// Dropped to tell the member it was removed for being too slow.
    _kick: oneshot::Sender<()>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Rooms {
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

    /// Forgets `room` once its last member is gone (call after [`run`] returns).
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
    /// Hands `message` to every member; members whose queue is full are removed.
    pub fn publish(&self, message: &Payload) {
        lock(&self.members).retain(|_, member| member.queue.try_send(message.clone()).is_ok());
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

/// Takes part in `room` until the session ends or falls too far behind.
pub async fn run<S: Session>(session: &mut S, room: &Arc<Room>, queue_len: usize) {
    let (tx, mut queue) = mpsc::channel(queue_len);
    let (kick_tx, mut kicked) = oneshot::channel::<()>();
    let id = room.next_id.fetch_add(1, Ordering::Relaxed);
    lock(&room.members).insert(
        id,
        Member {
            queue: tx,
            _kick: kick_tx,
        },
    );

    loop {
        // Removed for being too slow (its end of `kick` dropped): no waiting involved, so
        // this costs one atomic load per message.
        if matches!(kicked.try_recv(), Err(oneshot::error::TryRecvError::Closed)) {
            session.close(CloseReason::TooSlow).await;
            break;
        }
        // Biased: what is queued for the client goes out before more of its input is read,
        // so a client's own messages never pile up in its own queue (reading waits while the
        // client is behind).
        tokio::select! {
            biased;
            outgoing = queue.recv() => {
                // `None`: the room let go of this member, which happens only on removal.
                let Some(message) = outgoing else {
                    session.close(CloseReason::TooSlow).await;
                    break;
                };
                // Race the write against removal: a client whose socket is full must not
                // stay stuck here while its queue overflows. Biased, so removal is looked
                // at only while the write waits.
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
                    sent = write => if sent.is_err() { break },
                    _ = &mut kicked => {
                        session.close(CloseReason::TooSlow).await;
                        break;
                    }
                }
            }
            incoming = session.recv() => match incoming {
                Some(message) => room.publish(&message),
                None => break,
            },
        }
    }
    lock(&room.members).remove(&id);
}
