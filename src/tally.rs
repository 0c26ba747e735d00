//! What each session did: its messages and bytes both ways, how long it lasted and how it
//! ended, counted by the session itself and added to its route's counters
//! ([`Traffic`]) in batches, then told in one access line when the client is gone
//! (target `flashgate::access`, INFO).
//!
//! The counting sits at the seam, between any transport and any backend: the router wraps
//! each client's service in [`Counted`] (or [`CountedBytes`]), which lends the backend its
//! session wrapped in turn. Counting a message adds to plain integers in the session's own
//! state; the route's atomics (shared by every core) are touched when the session is about
//! to wait for its client, every [`BATCH`] messages when it never does, and at its end.

use std::future::{Future, poll_fn};
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::BytesMut;
use tungstenite::Utf8Bytes;

use crate::metrics::{KINDS, Traffic, kind_of};
use crate::session::{
    ByteService, ByteSession, CloseReason, Closed, Delivery, Intake, Payload, Service, Session,
    Woken,
};

/// How many messages a session counts before it adds them to its route's counters, if it
/// has not waited meanwhile.
pub const BATCH: u64 = 256;

/// One session's counts.
pub struct Tally {
    /// Its route's counters.
    traffic: Arc<Traffic>,
    /// Who, for the line.
    peer: SocketAddr,
    /// How it came, as the metrics name it (`proxy` for the socket proxy's clients): its
    /// [`kind_of`], a byte where the name would take 16 (a sleeper keeps its tally).
    kind: u8,
    /// When it began.
    started: Instant,
    /// Messages in and out, then their bytes in and out, added to the route's counters.
    settled: [u64; 4],
    /// The same, counted since: not in the route's counters yet.
    owed: [u64; 4],
    /// The close code it ended with, once known.
    code: Option<u16>,
}

impl Tally {
    /// The tally of a session of `transport` (its metrics label) from `peer` on the route
    /// `traffic` counts.
    pub fn new(traffic: Arc<Traffic>, peer: SocketAddr, transport: &'static str) -> Tally {
        Tally {
            traffic,
            peer,
            kind: kind_of(transport),
            started: Instant::now(),
            settled: [0; 4],
            owed: [0; 4],
            code: None,
        }
    }

    /// `messages` messages of `bytes` bytes in all came from the client.
    fn took(&mut self, messages: u64, bytes: u64) {
        self.count(0, messages, bytes);
    }

    /// `messages` messages of `bytes` bytes went to the client.
    fn gave(&mut self, messages: u64, bytes: u64) {
        self.count(1, messages, bytes);
    }

    /// Counts one way (0 in, 1 out); settles every [`BATCH`] messages.
    fn count(&mut self, way: usize, messages: u64, bytes: u64) {
        self.owed[way] += messages;
        self.owed[2 + way] += bytes;
        if self.owed[0] + self.owed[1] >= BATCH {
            self.settle();
        }
    }

    /// Adds what is owed to the route's counters.
    fn settle(&mut self) {
        if self.owed == [0; 4] {
            return;
        }
        let t = &self.traffic;
        let owed = std::mem::take(&mut self.owed);
        for (settled, n) in self.settled.iter_mut().zip(owed) {
            *settled += n;
        }
        let [m_in, m_out, b_in, b_out] = owed;
        for (counter, n) in [
            (&t.messages_in, m_in),
            (&t.messages_out, m_out),
            (&t.bytes_in, b_in),
            (&t.bytes_out, b_out),
        ] {
            if n != 0 {
                counter.inc_by(n);
            }
        }
    }

    /// The session ended with `code`, unless an earlier code is known.
    fn ended_with(&mut self, code: Option<u16>) {
        self.code = self.code.or(code);
    }
}

impl Drop for Tally {
    fn drop(&mut self) {
        self.settle();
        self.traffic.closed(self.code);
        tracing::info!(
            target: "flashgate::access",
            peer = %self.peer,
            route = self.traffic.route(),
            transport = KINDS[usize::from(self.kind)],
            seconds = self.started.elapsed().as_secs_f64(),
            messages_in = self.settled[0],
            messages_out = self.settled[1],
            bytes_in = self.settled[2],
            bytes_out = self.settled[3],
            close = self.code,
            "session"
        );
    }
}

/// A message client's service, counted: lives as long as the client (asleep too), and
/// tells its line when dropped.
pub struct Counted<M> {
    /// The backend's service.
    inner: M,
    /// The client's counts.
    tally: Tally,
}

impl<M> Counted<M> {
    /// `inner`, counted in `tally`.
    pub fn new(inner: M, tally: Tally) -> Counted<M> {
        Counted { inner, tally }
    }
}

impl<M: Service> Service for Counted<M> {
    async fn serve<S: Session>(&mut self, session: &mut S) {
        let mut counted = CountedSession {
            inner: session,
            tally: &mut self.tally,
        };
        self.inner.serve(&mut counted).await;
        if !session.is_asleep() {
            self.tally.ended_with(session.close_code());
        }
        self.tally.settle();
    }

    fn sleeps(&self) -> bool {
        self.inner.sleeps()
    }

    fn sleep(&mut self, delivery: Delivery) -> Result<(), Delivery> {
        self.inner.sleep(delivery)
    }

    fn wake(&mut self) -> Woken {
        self.inner.wake()
    }

    fn closed(&mut self, code: u16) {
        self.tally.ended_with(Some(code));
        self.inner.closed(code);
    }
}

/// A session lent to a backend, counted on its way.
struct CountedSession<'a, S> {
    inner: &'a mut S,
    tally: &'a mut Tally,
}

pin_project_lite::pin_project! {
    /// A session's `recv`, counted: what it gives is counted, and the session settles
    /// with its route when it is about to wait for its client (nothing else is due then).
    /// Written by hand, not as an `async fn`: it is on every message's way.
    struct Counting<'a, F> {
        #[pin]
        next: F,
        tally: &'a mut Tally,
    }
}

impl<F: Future<Output = Option<Payload>>> Future for Counting<'_, F> {
    type Output = Option<Payload>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Payload>> {
        let this = self.project();
        match this.next.poll(cx) {
            Poll::Pending => {
                this.tally.settle();
                Poll::Pending
            }
            Poll::Ready(got) => {
                if let Some(payload) = &got {
                    this.tally.took(1, payload.len() as u64);
                }
                Poll::Ready(got)
            }
        }
    }
}

impl<S: Session> Session for CountedSession<'_, S> {
    fn recv(&mut self) -> impl Future<Output = Option<Payload>> + Send {
        let CountedSession { inner, tally } = self;
        Counting {
            next: inner.recv(),
            tally,
        }
    }

    /// Counted as it is handed over: a send that fails ends the session, and at most that
    /// one message is counted unsent.
    fn send(&mut self, payload: Payload) -> impl Future<Output = Result<(), Closed>> + Send {
        self.tally.gave(1, payload.len() as u64);
        self.inner.send(payload)
    }

    fn flush(&mut self) -> impl Future<Output = Result<(), Closed>> + Send {
        self.inner.flush()
    }

    async fn close(&mut self, reason: CloseReason) {
        self.tally.ended_with(Some(reason.code().0));
        self.inner.close(reason).await
    }

    fn farewell(&mut self) -> Option<(u16, Utf8Bytes)> {
        let farewell = self.inner.farewell();
        if let Some((code, _)) = &farewell {
            self.tally.ended_with(Some(*code));
        }
        farewell
    }

    fn is_asleep(&self) -> bool {
        self.inner.is_asleep()
    }

    fn close_code(&self) -> Option<u16> {
        self.inner.close_code()
    }
}

/// A byte-stream client's service, counted; tells its line when its relay is over.
pub struct CountedBytes<B> {
    /// The backend's service.
    inner: B,
    /// The client's counts.
    tally: Tally,
}

impl<B> CountedBytes<B> {
    /// `inner`, counted in `tally`.
    pub fn new(inner: B, tally: Tally) -> CountedBytes<B> {
        CountedBytes { inner, tally }
    }
}

impl<B: ByteService> ByteService for CountedBytes<B> {
    fn intake(&self) -> Intake {
        self.inner.intake()
    }

    async fn serve<S: ByteSession>(self, session: &mut S) {
        let CountedBytes { inner, mut tally } = self;
        let mut counted = CountedByteSession {
            inner: session,
            tally: &mut tally,
        };
        inner.serve(&mut counted).await;
        tally.ended_with(session.close_code());
    }
}

/// A byte session lent to a backend, counted on its way: each write to the client is one
/// message; the client's messages, and the server's frames passed as they are, are counted
/// by the transport, which reads their headers.
struct CountedByteSession<'a, S> {
    inner: &'a mut S,
    tally: &'a mut Tally,
}

impl<S: ByteSession> ByteSession for CountedByteSession<'_, S> {
    async fn read_into(&mut self, into: &mut BytesMut) -> bool {
        let CountedByteSession { inner, tally } = self;
        let (messages, bytes) = inner.read_so_far();
        let more = {
            let mut next = pin!(inner.read_into(into));
            poll_fn(|cx| match next.as_mut().poll(cx) {
                Poll::Pending => {
                    tally.settle();
                    Poll::Pending
                }
                ready => ready,
            })
            .await
        };
        let (now, now_bytes) = inner.read_so_far();
        tally.took(now - messages, now_bytes - bytes);
        more
    }

    fn write(&mut self, bytes: &[u8]) {
        self.tally.gave(1, bytes.len() as u64);
        self.inner.write(bytes)
    }

    fn write_text(&mut self, text: &[u8]) {
        self.tally.gave(1, text.len() as u64);
        self.inner.write_text(text)
    }

    fn write_frames(&mut self, frames: &[u8]) -> Result<(), &'static str> {
        let (messages, bytes) = self.inner.frames_so_far();
        let result = self.inner.write_frames(frames);
        let (now, now_bytes) = self.inner.frames_so_far();
        self.tally.gave(now - messages, now_bytes - bytes);
        result
    }

    fn flush(&mut self) -> impl Future<Output = Result<(), Closed>> + Send {
        self.inner.flush()
    }

    async fn close(&mut self, reason: CloseReason) {
        self.tally.ended_with(Some(reason.code().0));
        self.inner.close(reason).await
    }

    fn finish(&mut self) -> impl Future<Output = ()> + Send {
        self.inner.finish()
    }

    fn close_code(&self) -> Option<u16> {
        self.inner.close_code()
    }

    fn read_so_far(&self) -> (u64, u64) {
        self.inner.read_so_far()
    }

    fn frames_so_far(&self) -> (u64, u64) {
        self.inner.frames_so_far()
    }
}
