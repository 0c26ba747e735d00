//! How a message session ends: the close handshake, bounded, and the close code that says
//! why a read failed.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::time::timeout;
use tungstenite::Error;
use tungstenite::error::{CapacityError, ProtocolError};
use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::coding::CloseCode;

use super::{CLOSE_WAIT, MessageSession};

impl MessageSession {
    /// Closes a client that did not answer its ping within the idle timeout (1001).
    pub async fn close_idle(&mut self) {
        tracing::info!(peer = %self.peer, "closing: idle timeout");
        self.close_with(CloseCode::Away, "idle timeout").await;
    }

    /// Sends a close frame and waits (bounded) for the client's reply, then lets go.
    pub(super) async fn close_with(&mut self, code: CloseCode, reason: &str) {
        self.close_within(code, reason, CLOSE_WAIT).await
    }

    /// [`close_with`](Self::close_with), waiting up to `wait` for the frame to go out and
    /// the reply to come back.
    ///
    /// Boxed: a connection closes once, and this future (a timer, the close frame, the reads
    /// that wait for the reply) would otherwise be part of every open connection's state,
    /// through every `async fn` that may close.
    pub(super) fn close_within<'a>(
        &'a mut self,
        code: CloseCode,
        reason: &str,
        wait: Duration,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        self.code = self.code.or(Some(code.into()));
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        Box::pin(async move {
            let (ws, watch) = (&mut self.ws, &mut self.watch);
            let handshake = timeout(wait, async {
                if ws.close(Some(frame)).await.is_ok() {
                    while let Some(Ok(_)) = ws.next().await {}
                }
            });
            // A close begun before the gateway stops (a slow client's, which may wait as
            // long as the idle timeout) ends when it stops; one begun after has its own bound.
            tokio::select! {
                _ = handshake => {}
                _ = watch.stopped() => {}
            }
        })
    }

    /// Sends what is still queued under tungstenite once it considers the connection closed
    /// (its reply to the client's close frame, say), within [`CLOSE_WAIT`].
    pub(super) async fn send_queued(&mut self) {
        let _ = timeout(CLOSE_WAIT, self.ws.get_mut().flush()).await;
    }

    /// Answers a failed read with the close code that says why, and logs it.
    pub(super) async fn fail(&mut self, error: Error) {
        let peer = self.peer;
        let (code, reason) = match &error {
            Error::ConnectionClosed | Error::AlreadyClosed => return self.send_queued().await,
            Error::Io(_) => return,
            Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) => return,
            Error::Capacity(CapacityError::MessageTooLong { .. }) => {
                let reason = format!("message too big (limit {} bytes)", self.max_message_size);
                tracing::warn!(%peer, %error, "closing: 1009");
                self.close_with(CloseCode::Size, &reason).await;
                return;
            }
            Error::Utf8(_) => (CloseCode::Invalid, "text message is not valid UTF-8"),
            Error::Capacity(_) => (CloseCode::Size, "frame too big"),
            _ => (CloseCode::Protocol, "protocol error"),
        };
        tracing::warn!(%peer, %error, code = u16::from(code), "closing");
        self.close_with(code, reason).await;
    }
}
