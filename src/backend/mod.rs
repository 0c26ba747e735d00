//! The built-in backends. They see only [`Session`]s, never transports.

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
    /// Per-client queue bound.
    pub send_queue: usize,
    /// The socket proxy's target, checked against the allow-list at the handshake.
    pub proxy: Option<proxy::ProxyTarget>,
    /// How long the socket proxy may take to connect.
    pub connect_timeout: std::time::Duration,
}

/// Runs `session` against its backend until the session ends.
///
/// Sessions are lent, never moved, down this chain: an `async fn` keeps what it is given for
/// its whole life, so a session moved through three of them would be held three times by
/// every open connection.
pub async fn run<S: Session>(target: Target<'_>, session: &mut S) {
    match target.kind {
        BackendKind::Echo => echo::run(session).await,
        BackendKind::Broadcast => {
            let room = target.rooms.join(&target.room);
            broadcast::run(session, &room, target.send_queue).await;
            target.rooms.leave(&room);
        }
        BackendKind::Proxy => match &target.proxy {
            // Boxed: the relay's state is the largest, and echo and broadcast clients (most
            // of the open connections) should not carry its size.
            Some(to) => Box::pin(proxy::run(session, to, target.connect_timeout)).await,
            None => unreachable!("proxy routes pick their target at the handshake"),
        },
    }
}
