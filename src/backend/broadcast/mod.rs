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
//! [`Delivery`](crate::session::Delivery) and writes through it, outside the room's lock, in
//! rounds that take in what is published meanwhile: a message waits at most one round for
//! any sleeper, framed once per framing ([`room`]). When a write does not fit, the delivery
//! owes the rest and wakes; the member's queue takes what follows.

mod room;

use std::sync::Arc;

use futures_util::FutureExt;
use tokio::sync::oneshot;

use crate::session::{CloseReason, Payload, Session};

pub use room::{Bound, Membership, Rooms};
use room::{Room, cost};

/// Most messages from one client published at once.
const BATCH: usize = 64;

/// Takes part in the room until the session ends, falls asleep, or is closed as too slow.
pub async fn run<S: Session>(session: &mut S, member: &mut Membership) {
    let (room, inbox) = member.parts();
    let Some(inbox) = inbox else {
        return; // asleep: nothing to serve
    };
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
                    let ended = gather(session, &mut batch, room.bound().backlog);
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
async fn too_slow<S: Session>(session: &mut S, room: &Arc<Room>, batch: &mut Vec<Payload>) {
    loop {
        batch.clear();
        let ended = gather(session, batch, room.bound().backlog);
        if !batch.is_empty() {
            room.publish(batch);
        }
        if ended || batch.len() < BATCH {
            break;
        }
    }
    session.close(CloseReason::TooSlow).await;
}
