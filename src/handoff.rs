//! Taking a connection back from the HTTP server in the middle of a response: what lets a
//! SockJS receiver wait for its session's messages holding only its socket, without the HTTP
//! server's buffers and task.
//!
//! The main port gives the HTTP server each connection wrapped in [`Handing`], and every
//! request carries the connection's [`Handoff`]. A response body that wants the socket asks
//! for it ([`Handoff::ask`]) and returns `Pending`. The server then writes out what it has
//! buffered and flushes; at that flush nothing of the response is left in its buffers, and
//! the wrapper hands the socket to the asker. From then on the server sees a closed
//! connection: the body fails when polled again and the connection's task ends. The taker
//! writes the rest of the response itself, in the same framing, and then gives the
//! connection back ([`Handoff::resume`]) to be served for further requests.
//!
//! Bytes the client sent after the request whose response is handed off, already read by
//! the server, are lost with its buffers. No SockJS client sends any: a receiving request's
//! connection is busy until its response ends.

use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use crate::stream::Stream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::prefixed::Prefixed;
use crate::shutdown::ConnGuard;

/// Serves a connection given back after a handed-off response.
pub trait Resume: Send + Sync {
    /// Serves `stream` for further requests from `peer`, counted under `slot`; `early` is
    /// what the client has sent already. Closes it when that cannot be.
    fn resume(self: Arc<Self>, stream: Stream, early: &[u8], peer: SocketAddr, slot: ConnGuard);

    /// Runs `task` (finishing a handed-off response) as one of the gateway's tasks, which
    /// shutdown waits for.
    fn spawn(&self, task: Pin<Box<dyn Future<Output = ()> + Send>>);
}

/// What takes the socket.
pub type Taker = Box<dyn FnOnce(Stream) + Send>;

/// One connection's hand-off point, shared by its wrapper and its requests.
pub struct Handoff {
    /// Set by [`ask`](Self::ask): the wrapper's flush looks at nothing else.
    asked: AtomicBool,
    /// Set once the socket is handed over.
    taken: AtomicBool,
    /// Who asked, and the asking body's waker.
    taker: Mutex<Option<(Taker, Waker)>>,
    /// Who serves the connection afterwards.
    resume: Arc<dyn Resume>,
    /// The client.
    peer: SocketAddr,
    /// The connection's slot.
    slot: ConnGuard,
    /// Its slot may still be taken over by a session ([`adopt`](Self::adopt)).
    adoptable: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Handoff {
    /// The hand-off point of a connection from `peer` that holds `slot`, served afterwards
    /// by `resume`. A session may take its slot over when `adoptable`.
    pub fn new(
        resume: Arc<dyn Resume>,
        peer: SocketAddr,
        slot: ConnGuard,
        adoptable: bool,
    ) -> Arc<Handoff> {
        Arc::new(Handoff {
            asked: AtomicBool::new(false),
            taken: AtomicBool::new(false),
            taker: Mutex::new(None),
            resume,
            peer,
            slot,
            adoptable: AtomicBool::new(adoptable),
        })
    }

    /// The connection's slot, for the first session opened on it: the session and the
    /// connection then count as one, and the slot is held until both are over. `None`
    /// after the first, and on a connection whose slot is already a session's.
    pub fn adopt(&self) -> Option<ConnGuard> {
        self.adoptable
            .swap(false, Ordering::AcqRel)
            .then(|| self.slot.clone())
    }

    /// Asks for the socket once what the server has of the response is written: `taker`
    /// gets it, and `waker` (the asking body's) is woken after.
    pub fn ask(&self, taker: Taker, waker: Waker) {
        *lock(&self.taker) = Some((taker, waker));
        self.asked.store(true, Ordering::Release);
    }

    /// The asker is gone before the socket was handed over: it stays with the server.
    pub fn withdraw(&self) {
        self.asked.store(false, Ordering::Release);
        lock(&self.taker).take();
    }

    /// True once the socket has been handed over.
    pub fn taken(&self) -> bool {
        self.taken.load(Ordering::Acquire)
    }

    /// Where the connection goes once its handed-off response, a response of the session
    /// holding `slot`, is over: it is counted under the session's slot from then on.
    pub fn back(&self, slot: ConnGuard) -> Back {
        Back {
            resume: self.resume.clone(),
            peer: self.peer,
            slot,
        }
    }
}

/// Where a handed-off connection goes once its response is over.
#[derive(Clone)]
pub struct Back {
    resume: Arc<dyn Resume>,
    peer: SocketAddr,
    slot: ConnGuard,
}

impl Back {
    /// Gives the connection back to be served for further requests.
    pub fn resume(self, stream: Stream, early: &[u8]) {
        self.resume.resume(stream, early, self.peer, self.slot);
    }

    /// Runs `task` as one of the gateway's tasks.
    pub fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        self.resume.spawn(Box::pin(task));
    }
}

/// A connection as the HTTP server sees it: its socket until it is handed off, then a
/// closed connection.
pub struct Handing {
    inner: Option<Prefixed<Stream>>,
    handoff: Arc<Handoff>,
}

impl Handing {
    /// `inner`, handed off through `handoff` when asked.
    pub fn new(inner: Prefixed<Stream>, handoff: Arc<Handoff>) -> Handing {
        Handing {
            inner: Some(inner),
            handoff,
        }
    }

    /// The connection, unless it was handed off.
    pub fn into_inner(self) -> Option<Prefixed<Stream>> {
        self.inner
    }

    /// Hands the socket to whoever asked, if they still want it.
    fn hand_over(&mut self) {
        let Some((taker, waker)) = lock(&self.handoff.taker).take() else {
            return;
        };
        let Some(inner) = self.inner.take() else {
            return;
        };
        // The server has read the whole request before answering it: nothing of the
        // sniffed prefix is left to replay.
        let (tcp, _) = inner.into_parts();
        self.handoff.taken.store(true, Ordering::Release);
        taker(tcp);
        waker.wake();
    }
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "connection handed off")
}

impl AsyncRead for Handing {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match &mut self.inner {
            Some(inner) => Pin::new(inner).poll_read(cx, buf),
            None => Poll::Ready(Ok(())),
        }
    }
}

impl AsyncWrite for Handing {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.inner {
            Some(inner) => Pin::new(inner).poll_write(cx, buf),
            None => Poll::Ready(Err(gone())),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match &mut self.inner {
            Some(inner) => Pin::new(inner).poll_write_vectored(cx, bufs),
            None => Poll::Ready(Err(gone())),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.as_ref().is_some_and(|i| i.is_write_vectored())
    }

    /// The server calls this once its buffers are written out: where a hand-off happens.
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some(inner) = &mut self.inner else {
            return Poll::Ready(Ok(()));
        };
        std::task::ready!(Pin::new(inner).poll_flush(cx))?;
        if self.handoff.asked.load(Ordering::Acquire) {
            self.hand_over();
        }
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.inner {
            Some(inner) => Pin::new(inner).poll_shutdown(cx),
            None => Poll::Ready(Ok(())),
        }
    }
}
