//! The built-in backends. They see only [`Session`]s (the socket proxy a
//! [`ByteSession`](crate::session::ByteSession)), never transports.

pub mod broadcast;
pub mod echo;
pub mod proxy;

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
}

/// How a backend let go of a session.
pub enum Outcome {
    /// The session is over.
    Ended,
    /// The session fell asleep ([`Session::is_asleep`]); a broadcast member keeps its place.
    Asleep(Option<broadcast::Membership>),
}

/// Runs `session` against its backend until the session ends or falls asleep; `member` is
/// the place a broadcast member that slept had kept.
///
/// Sessions are lent, never moved, down this chain: an `async fn` keeps what it is given for
/// its whole life, so a session moved through three of them would be held three times by
/// every open connection.
pub async fn run<S: Session>(
    target: &Target<'_>,
    session: &mut S,
    member: Option<broadcast::Membership>,
) -> Outcome {
    match target.kind {
        BackendKind::Echo => {
            echo::run(session).await;
            if session.is_asleep() {
                return Outcome::Asleep(None);
            }
        }
        BackendKind::Broadcast => {
            let member = member.unwrap_or_else(|| target.rooms.join(&target.room).enter());
            let room = member.room.clone();
            match broadcast::run(session, member).await {
                Some(member) => return Outcome::Asleep(Some(member)),
                None => target.rooms.leave(&room),
            }
        }
        // A relay carries bytes, not messages: it runs over a `ByteSession` of its own.
        BackendKind::Proxy => unreachable!("socket proxy sessions are relayed by proxy::run"),
    }
    Outcome::Ended
}
