//! SockJS framing over a WebSocket (`/{server}/{session}/websocket`): the open frame, each
//! message as `a["…"]`, heartbeats, the close frame; the client's messages as JSON strings
//! or arrays of them. The WebSocket itself is the RFC 6455 transport's.

use std::collections::VecDeque;
use std::time::Duration;

use super::frames;
use crate::session::{CloseReason, Closed, Delivery, Payload, Service, Session, text_only};

/// A backend's handler, spoken to in SockJS framing.
pub struct Framed<M> {
    inner: M,
    /// Time between heartbeats while nothing else is sent.
    heartbeat: Duration,
}

impl<M> Framed<M> {
    /// `inner`, framed, with a heartbeat every `heartbeat`.
    pub fn new(inner: M, heartbeat: Duration) -> Framed<M> {
        Framed { inner, heartbeat }
    }
}

impl<M: Service> Service for Framed<M> {
    async fn serve<S: Session>(&mut self, session: &mut S) {
        if session
            .send(Payload::Text(frames::OPEN.into()))
            .await
            .is_err()
        {
            return;
        }
        let mut framed = FramedSession {
            inner: session,
            queue: VecDeque::new(),
            heartbeat: self.heartbeat,
        };
        self.inner.serve(&mut framed).await;
    }

    fn sleep(&mut self, delivery: Delivery) -> Result<(), Delivery> {
        // Its endpoint never puts a connection to sleep; were it asked, it stays awake.
        Err(delivery)
    }

    fn closed(&mut self, code: u16) {
        self.inner.closed(code)
    }
}

/// A WebSocket session seen through SockJS framing.
struct FramedSession<'a, S> {
    inner: &'a mut S,
    /// Messages of a client frame that carried several, not yet taken.
    queue: VecDeque<Payload>,
    heartbeat: Duration,
}

impl<S: Session> Session for FramedSession<'_, S> {
    async fn recv(&mut self) -> Option<Payload> {
        loop {
            if let Some(message) = self.queue.pop_front() {
                return Some(message);
            }
            let incoming = tokio::select! {
                incoming = self.inner.recv() => incoming?,
                _ = tokio::time::sleep(self.heartbeat) => {
                    self.inner.send(Payload::Text(frames::HEARTBEAT.into())).await.ok()?;
                    self.inner.flush().await.ok()?;
                    continue;
                }
            };
            let parsed = match &incoming {
                Payload::Text(text) => frames::websocket_messages(text),
                Payload::Binary(_) => Err(frames::Refused::Broken),
            };
            match parsed {
                Ok(messages) => self.queue.extend(messages.into_iter().map(Payload::Text)),
                Err(_) => {
                    // Ended at once, without a close frame of SockJS's, as the protocol says.
                    tracing::debug!("sockjs websocket: broken framing, closing");
                    let reason = CloseReason::Peer(3000, "Broken framing.".into());
                    self.inner.close(reason).await;
                    return None;
                }
            }
        }
    }

    async fn send(&mut self, payload: Payload) -> Result<(), Closed> {
        let text = text_only(payload);
        let mut frame = String::with_capacity(text.len() + 8);
        frames::messages([text.as_str()], &mut frame);
        self.inner.send(Payload::Text(frame.into())).await
    }

    async fn flush(&mut self) -> Result<(), Closed> {
        self.inner.flush().await
    }

    async fn close(&mut self, reason: CloseReason) {
        let (code, why) = reason.code();
        let frame = frames::close(code, why);
        let _ = self.inner.send(Payload::Text(frame.into())).await;
        self.inner.close(reason).await;
    }

    fn is_asleep(&self) -> bool {
        self.inner.is_asleep()
    }

    fn farewell(&mut self) -> Option<(u16, tungstenite::Utf8Bytes)> {
        self.inner.farewell()
    }

    fn close_code(&self) -> Option<u16> {
        self.inner.close_code()
    }
}
