//! One SockJS session over HTTP requests: what the client sent and what waits for it, shared
//! by the session's backend task ([`CometSession`]) and the requests that carry it (one
//! receiving request at a time, any number of sending ones).
//!
//! Both queues are bounded by what the client does: what it sends by `--max-message-size` per
//! request and by the backend taking it (a sending request waits while the backend is behind),
//! what waits for it by `--send-backlog` bytes: a client that stops polling is closed with
//! `c[1008,…]` and never slows anyone else.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;
use tungstenite::Utf8Bytes;

use super::frames;
use crate::session::{CloseReason, Closed, Payload, Session, text_only};
use crate::shutdown::Signal;

/// Where a session is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Made, its open frame not yet sent.
    New,
    /// Open.
    Open,
    /// Closed by the gateway or the backend: every receiving request gets this close frame,
    /// until the session expires.
    Closing(String),
    /// Gone: the backend has seen its end. Requests no longer find it.
    Gone,
}

impl Phase {
    /// New or open: messages still flow.
    fn live(&self) -> bool {
        matches!(self, Phase::New | Phase::Open)
    }
}

/// The state both sides share.
pub struct Comet {
    state: Mutex<State>,
    /// Rung for the backend: a message came, or the session ended.
    to_backend: Notify,
    /// Rung for the sending requests: the backend took what waited.
    taken: Notify,
    /// Bytes that may wait for the client before it is closed as too slow.
    backlog: usize,
    /// Bytes from the client that may wait for the backend.
    inbox: usize,
}

struct State {
    phase: Phase,
    /// From the client, not yet taken by the backend, and their bytes.
    incoming: VecDeque<Payload>,
    incoming_bytes: usize,
    /// For the client, not yet in a response, and their bytes.
    outgoing: Vec<Utf8Bytes>,
    outgoing_bytes: usize,
    /// The receiving request's body, to wake when there is something for it.
    receiver: Option<Waker>,
    /// A receiving request is attached.
    attached: bool,
    /// The backend waits for the client's next message: it has handled all before.
    idle: bool,
    /// Since when no receiving request is attached; the session expires a disconnect delay
    /// after it.
    alone_since: Instant,
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a receiving request gets on arrival.
pub enum Arrival {
    /// It is the session's receiver; the open frame first when `open`.
    Receiver { open: bool },
    /// Another receiving request is attached: `c[2010,…]`.
    Busy,
    /// The session is closing: what still waited, then its close frame.
    Closing(Vec<Utf8Bytes>, String),
    /// The session is gone.
    Gone,
}

/// What a receiving request takes when it is woken.
pub enum Take {
    /// Messages for the client.
    Messages(Vec<Utf8Bytes>),
    /// The close frame, after which the response ends.
    Close(String),
    /// Nothing yet.
    Nothing,
}

impl Comet {
    /// A new session; the open frame goes to its first receiving request.
    pub fn new(backlog: usize, inbox: usize) -> Arc<Comet> {
        Arc::new(Comet {
            state: Mutex::new(State {
                phase: Phase::New,
                incoming: VecDeque::new(),
                incoming_bytes: 0,
                outgoing: Vec::new(),
                outgoing_bytes: 0,
                receiver: None,
                attached: false,
                idle: false,
                alone_since: Instant::now(),
            }),
            to_backend: Notify::new(),
            taken: Notify::new(),
            backlog,
            inbox,
        })
    }

    /// A receiving request arrives.
    pub fn arrive(&self) -> Arrival {
        let mut state = lock(&self.state);
        match &state.phase {
            Phase::Gone => return Arrival::Gone,
            Phase::Closing(frame) => {
                let frame = frame.clone();
                let waiting = std::mem::take(&mut state.outgoing);
                state.outgoing_bytes = 0;
                state.alone_since = Instant::now();
                return Arrival::Closing(waiting, frame);
            }
            _ if state.attached => return Arrival::Busy,
            _ => {}
        }
        state.attached = true;
        let open = state.phase == Phase::New;
        state.phase = Phase::Open;
        Arrival::Receiver { open }
    }

    /// What waits for the attached receiver; `waker` is woken when more comes.
    pub fn take(&self, waker: &Waker) -> Take {
        let mut state = lock(&self.state);
        if !state.outgoing.is_empty() {
            state.outgoing_bytes = 0;
            return Take::Messages(std::mem::take(&mut state.outgoing));
        }
        if let Phase::Closing(frame) = &state.phase {
            return Take::Close(frame.clone());
        }
        if state.phase == Phase::Gone {
            return Take::Close(frames::close(3000, "Session gone"));
        }
        match &mut state.receiver {
            Some(w) if w.will_wake(waker) => {}
            slot => *slot = Some(waker.clone()),
        }
        Take::Nothing
    }

    /// The receiving request left: it ended as the protocol says (`aborted` false), or the
    /// client went away in the middle of it, which ends the session.
    pub fn leave(&self, aborted: bool) {
        let mut state = lock(&self.state);
        state.attached = false;
        state.receiver = None;
        state.alone_since = Instant::now();
        if aborted && state.phase.live() {
            state.phase = Phase::Closing(frames::close(1002, "Connection interrupted"));
            drop(state);
            self.to_backend.notify_one();
        }
    }

    /// Messages from a sending request, for the backend. Waits while more than the inbox
    /// bound waits for the backend, then until the backend has handled them (up to
    /// `patience`), so that what it answers is there for the next receiving request. False
    /// when the session is closing or gone.
    pub async fn receive(&self, messages: Vec<String>, patience: Duration) -> bool {
        for message in messages {
            loop {
                let taken = self.taken.notified();
                {
                    let mut state = lock(&self.state);
                    if !state.phase.live() {
                        return false;
                    }
                    if state.incoming_bytes < self.inbox || state.incoming.is_empty() {
                        state.incoming_bytes += message.len();
                        state.incoming.push_back(Payload::Text(message.into()));
                        state.idle = false;
                        break;
                    }
                }
                taken.await;
            }
            self.to_backend.notify_one();
        }
        let handled = async {
            loop {
                let taken = self.taken.notified();
                {
                    let state = lock(&self.state);
                    if (state.incoming.is_empty() && state.idle) || !state.phase.live() {
                        return;
                    }
                }
                taken.await;
            }
        };
        let _ = tokio::time::timeout(patience, handled).await;
        true
    }

    /// Ends the session with `frame` (a close frame): receivers get it until it expires.
    fn closing(&self, frame: String) {
        let waker = {
            let mut state = lock(&self.state);
            if !state.phase.live() {
                return;
            }
            state.phase = Phase::Closing(frame);
            state.receiver.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        self.to_backend.notify_one();
    }

    /// The backend is done with it: closed with 1000 unless it was closed already.
    pub fn close_normally(&self) {
        self.closing(frames::close(1000, "Normal closure"));
    }

    /// True when it has had no receiver for `delay`, or has ended and been told: it can go.
    pub fn expired(&self, delay: Duration, now: Instant) -> bool {
        let state = lock(&self.state);
        state.phase == Phase::Gone
            || (!state.attached && now.duration_since(state.alone_since) >= delay)
    }

    /// Marks it gone, telling the backend.
    pub fn expire(&self) {
        let waker = {
            let mut state = lock(&self.state);
            state.phase = Phase::Gone;
            state.receiver.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        self.to_backend.notify_one();
    }
}

/// The backend's side of a SockJS session.
pub struct CometSession {
    comet: Arc<Comet>,
    stop: Signal,
    /// The client, for logs.
    peer: std::net::SocketAddr,
}

impl CometSession {
    /// The backend's side of `comet`, for a client at `peer`; it ends when `stop` fires.
    pub fn new(comet: Arc<Comet>, stop: Signal, peer: std::net::SocketAddr) -> CometSession {
        CometSession { comet, stop, peer }
    }
}

impl Session for CometSession {
    async fn recv(&mut self) -> Option<Payload> {
        loop {
            let woken = self.comet.to_backend.notified();
            {
                let mut state = lock(&self.comet.state);
                if let Some(message) = state.incoming.pop_front() {
                    state.incoming_bytes -= message.len();
                    drop(state);
                    self.comet.taken.notify_waiters();
                    return Some(message);
                }
                if !state.phase.live() {
                    return None;
                }
                state.idle = true;
            }
            self.comet.taken.notify_waiters();
            tokio::select! {
                _ = woken => {}
                _ = &mut self.stop => {
                    self.comet.closing(frames::close(1001, "Server shutting down"));
                    return None;
                }
            }
        }
    }

    async fn send(&mut self, payload: Payload) -> Result<(), Closed> {
        let text = text_only(payload);
        let waker = {
            let mut state = lock(&self.comet.state);
            if !state.phase.live() {
                return Err(Closed);
            }
            if state.outgoing_bytes + text.len() > self.comet.backlog {
                drop(state);
                let (code, reason) = CloseReason::TooSlow.announce(self.peer);
                self.comet.closing(frames::close(code, reason));
                return Err(Closed);
            }
            state.outgoing_bytes += text.len();
            state.outgoing.push(text);
            state.receiver.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), Closed> {
        Ok(())
    }

    async fn close(&mut self, reason: CloseReason) {
        let (code, why) = reason.announce(self.peer);
        self.comet.closing(frames::close(code, why));
    }
}
