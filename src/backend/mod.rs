//! The built-in backends. They see only [`Session`]s, never transports.

pub mod broadcast;
pub mod echo;

use crate::config::BackendKind;
use crate::session::Session;

/// Where a session goes once its transport is established.
pub struct Target<'a> {
    /// Which backend.
    pub kind: BackendKind,
    /// The broadcast room key (route path, plus `?room=` when given).
    pub room: String,
    /// The rooms of the broadcast backend.
    pub rooms: &'a broadcast::Rooms,
    /// Per-client queue bound.
    pub send_queue: usize,
}

/// Runs `session` against its backend until the session ends.
pub async fn run<S: Session>(target: Target<'_>, session: S) {
    match target.kind {
        BackendKind::Echo => echo::run(session).await,
        BackendKind::Broadcast => {
            let room = target.rooms.join(&target.room);
            broadcast::run(session, &room, target.send_queue).await;
            target.rooms.leave(&room);
        }
    }
}
