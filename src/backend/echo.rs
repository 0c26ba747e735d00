//! `echo`: every message goes back to its sender.

use crate::session::Session;

/// Returns each message to its sender until the session ends. A client that stops reading
/// stops being read (TCP back-pressure), so it costs no memory.
pub async fn run<S: Session>(session: &mut S) {
    while let Some(message) = session.recv().await {
        if session.send(message).await.is_err() {
            break;
        }
    }
}
