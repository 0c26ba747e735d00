//! A receiving request's response: polling (one frame, then the response ends) or streaming
//! (frames as they come, until the response limit; heartbeats while idle).

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};
use tungstenite::Utf8Bytes;

use super::comet::{Comet, Take};
use super::frames::{self, Wrap};

/// The body of the session's receiving request. Dropped before it has ended (the client went
/// away), it ends the session, as the protocol asks.
pub struct Receiving {
    comet: Arc<Comet>,
    wrap: Wrap,
    /// Frame bytes after which the response ends: 1 for polling.
    limit: usize,
    /// Frame bytes sent so far.
    sent: usize,
    /// What goes first, each its own chunk: a prelude, the open frame.
    first: VecDeque<Bytes>,
    heartbeat: Pin<Box<Sleep>>,
    every: Duration,
    /// Ended as the protocol says; the session no longer has it.
    done: bool,
}

impl Receiving {
    /// The receiver of `comet`, wrapping frames as `wrap` says; `prelude` goes first, then
    /// the open frame when `open`.
    pub fn new(
        comet: Arc<Comet>,
        wrap: Wrap,
        limit: usize,
        prelude: &str,
        open: bool,
        every: Duration,
    ) -> Receiving {
        let mut receiving = Receiving {
            comet,
            wrap,
            limit,
            sent: 0,
            first: VecDeque::new(),
            heartbeat: Box::pin(tokio::time::sleep(every)),
            every,
            done: false,
        };
        if !prelude.is_empty() {
            receiving.first.push_back(Bytes::from(prelude.to_owned()));
        }
        if open {
            let mut frame = String::new();
            receiving.push(frames::OPEN, &mut frame);
            receiving.first.push_back(Bytes::from(frame));
        }
        receiving
    }

    /// Appends `frame`, wrapped, to `out`, and ends the response once past the limit.
    fn push(&mut self, frame: &str, out: &mut String) {
        let before = out.len();
        self.wrap.frame(frame, out);
        self.sent += out.len() - before;
        if self.sent >= self.limit {
            self.finish();
        }
    }

    fn finish(&mut self) {
        if !self.done {
            self.done = true;
            self.comet.leave(false);
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
        if let Some(first) = this.first.pop_front() {
            return Poll::Ready(Some(Ok(Frame::data(first))));
        }
        if this.done {
            return Poll::Ready(None);
        }
        let mut out = String::new();
        match this.comet.take(cx.waker()) {
            Take::Messages(messages) => {
                let mut frame = String::new();
                frames::messages(messages.iter().map(|m| m.as_str()), &mut frame);
                this.push(&frame, &mut out);
            }
            Take::Close(frame) => {
                this.push(&frame, &mut out);
                this.finish();
            }
            Take::Nothing => {
                if this.heartbeat.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.push(frames::HEARTBEAT, &mut out);
            }
        }
        this.heartbeat.as_mut().reset(Instant::now() + this.every);
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(out)))))
    }

    fn is_end_stream(&self) -> bool {
        self.done && self.first.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

impl Drop for Receiving {
    fn drop(&mut self) {
        if !self.done {
            self.comet.leave(true);
        }
    }
}

/// A response that is whole at once: `prelude`, what still `waiting` for the client, and
/// `frame`, each its own chunk.
pub fn once(prelude: &str, wrap: &Wrap, waiting: &[Utf8Bytes], frame: &str) -> Chunks {
    let mut chunks = VecDeque::new();
    if !prelude.is_empty() {
        chunks.push_back(Bytes::from(prelude.to_owned()));
    }
    if !waiting.is_empty() {
        let mut messages = String::new();
        frames::messages(waiting.iter().map(|m| m.as_str()), &mut messages);
        let mut out = String::new();
        wrap.frame(&messages, &mut out);
        chunks.push_back(Bytes::from(out));
    }
    let mut out = String::new();
    wrap.frame(frame, &mut out);
    chunks.push_back(Bytes::from(out));
    Chunks(chunks)
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
