//! A receiving request's response: its first bytes (a prelude, the open frame, what waited)
//! through the HTTP server, then, when it is to go on, the connection handed off and parked in
//! the session ([`super::parked`]), which writes the rest.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tungstenite::Utf8Bytes;

use super::comet::Comet;
use super::frames::{self, Wrap};
use super::parked::{Ongoing, Parked};
use crate::handoff::Handoff;

/// The body of the session's receiving request while it goes through the HTTP server.
/// Dropped before its connection is handed off (the client went away), it ends the session,
/// as the protocol asks.
pub struct Receiving {
    comet: Arc<Comet>,
    handoff: Arc<Handoff>,
    /// What goes first.
    first: Chunks,
    /// How the response goes on once parked; taken when the hand-off is asked for.
    then: Option<Ongoing>,
}

impl Receiving {
    /// The receiver of `comet`: `first`, then the rest of `then` written by the session.
    pub fn new(
        comet: Arc<Comet>,
        first: Chunks,
        then: Ongoing,
        handoff: Arc<Handoff>,
    ) -> Receiving {
        Receiving {
            comet,
            handoff,
            first,
            then: Some(then),
        }
    }
}

impl Body for Receiving {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if let Some(first) = this.first.0.pop_front() {
            return Poll::Ready(Some(Ok(Frame::data(first))));
        }
        if this.handoff.taken() {
            // The HTTP server lets go of the connection: the session writes the rest.
            return Poll::Ready(Some(Err(std::io::Error::other("handed off"))));
        }
        if let Some(then) = this.then.take() {
            let comet = this.comet.clone();
            let park = Box::new(move |tcp| comet.park(Parked::new(tcp, then)));
            this.handoff.ask(park, cx.waker().clone());
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        false
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

impl Drop for Receiving {
    fn drop(&mut self) {
        if !self.handoff.taken() {
            self.handoff.withdraw();
            self.comet.leave(true);
        }
    }
}

/// The first chunks of a receiver's response: `prelude`, the open frame when `open`, and
/// what was `waiting`, as `wrap` frames them; and the frame bytes among them.
pub fn first(prelude: &str, wrap: &Wrap, open: bool, waiting: &[Utf8Bytes]) -> (Chunks, usize) {
    let mut chunks = Chunks::with(prelude);
    let mut sent = 0;
    if open {
        sent += chunks.frame(wrap, frames::OPEN);
    }
    if !waiting.is_empty() {
        sent += chunks.messages(wrap, waiting);
    }
    (chunks, sent)
}

/// A response that is whole at once: `prelude`, what still `waiting` for the client, and
/// `frame`, each its own chunk.
pub fn once(prelude: &str, wrap: &Wrap, waiting: &[Utf8Bytes], frame: &str) -> Chunks {
    let mut chunks = Chunks::with(prelude);
    if !waiting.is_empty() {
        chunks.messages(wrap, waiting);
    }
    chunks.frame(wrap, frame);
    chunks
}

impl Chunks {
    /// The body, starting with `prelude` unless it is empty.
    fn with(prelude: &str) -> Chunks {
        let mut chunks = VecDeque::with_capacity(3);
        if !prelude.is_empty() {
            chunks.push_back(Bytes::copy_from_slice(prelude.as_bytes()));
        }
        Chunks(chunks)
    }

    /// Appends `frame`, wrapped, as a chunk; how long it is wrapped.
    fn frame(&mut self, wrap: &Wrap, frame: &str) -> usize {
        self.put(wrap, |out| out.extend_from_slice(frame.as_bytes()))
    }

    /// Appends the frame of `messages`, wrapped, as a chunk; how long it is wrapped.
    fn messages(&mut self, wrap: &Wrap, messages: &[Utf8Bytes]) -> usize {
        self.put(wrap, |out| {
            frames::messages(messages.iter().map(|m| m.as_str()), out)
        })
    }

    /// Appends the frame `write` writes, wrapped (the HTTP server chunks the body itself).
    fn put(&mut self, wrap: &Wrap, write: impl FnOnce(&mut Vec<u8>)) -> usize {
        let mut out = Vec::new();
        let len = wrap.put(false, &mut out, write);
        self.0.push_back(Bytes::from(out));
        len
    }
}

/// A body of a few chunks known in advance.
pub struct Chunks(VecDeque<Bytes>);

impl Body for Chunks {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Poll::Ready(self.get_mut().0.pop_front().map(|b| Ok(Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_empty()
    }
}
