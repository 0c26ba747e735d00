//! One SockJS session over HTTP requests: what the client sent and what waits for it, shared
//! by the session's backend task ([`CometSession`]) and the requests that carry it (one
//! receiving request at a time, any number of sending ones).
//!
//! A receiving request's response, once its first bytes are out, waits as a [`Parked`]
//! connection in the session: the backend task writes the session's messages into it when it
//! next waits for the client ([`Session::recv`](crate::session::Session::recv)), and the
//! endpoint's sweep writes its heartbeats. The response ends after its limit (one frame for
//! polling), or with the session's close frame.
//!
//! Both queues are bounded by what the client does: what it sends by `--max-message-size` per
//! request and by the backend taking it (a sending request waits while the backend is behind),
//! what waits for it by `--send-backlog` bytes: a client that stops polling is closed with
//! `c[1008,…]` and never slows anyone else.

mod response;
mod session;
mod sleep;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;
use tungstenite::Utf8Bytes;

use super::frames;
use super::parked::{After, Parked};
use crate::session::Payload;
pub use session::CometSession;

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
    /// Rung for the backend: a message came, a receiver is parked, or the session ended.
    to_backend: Notify,
    /// Rung for the sending requests: the backend took what waited.
    taken: Notify,
    /// Bytes that may wait for the client before it is closed as too slow.
    backlog: usize,
    /// Bytes from the client that may wait for the backend.
    inbox: usize,
    /// How long a waiting response may go without a frame.
    heartbeat: Duration,
}

struct State {
    phase: Phase,
    /// From the client, not yet taken by the backend, and their bytes.
    incoming: VecDeque<Payload>,
    incoming_bytes: usize,
    /// For the client, not yet in a response, and their bytes.
    outgoing: Vec<Utf8Bytes>,
    outgoing_bytes: usize,
    /// The receiving request's connection, once its response waits.
    parked: Option<Parked>,
    /// A receiving request is attached.
    attached: bool,
    /// The backend waits for the client's next message: it has handled all before.
    idle: bool,
    /// Since when no receiving request is attached; the session expires a disconnect delay
    /// after it.
    alone_since: Instant,
    /// When the client last sent a message.
    heard: Instant,
    /// The sweep found the client silent: the backend's task may put the session to sleep.
    drowsy: bool,
    /// Asleep under this key in the endpoint's [`Dozing`](super::asleep::Dozing) table.
    asleep: Option<usize>,
    /// Something asks the sleeping session to wake.
    wake: bool,
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a receiving request gets on arrival.
pub enum Arrival {
    /// It is the session's receiver: the open frame first when `open`, then what `waiting`.
    Receiver { open: bool, waiting: Vec<Utf8Bytes> },
    /// Another receiving request is attached: `c[2010,…]`.
    Busy,
    /// The session is closing: what still waited, then its close frame.
    Closing(Vec<Utf8Bytes>, String),
    /// The session is gone.
    Gone,
}

impl Comet {
    /// A new session; the open frame goes to its first receiving request.
    pub fn new(backlog: usize, inbox: usize, heartbeat: Duration) -> Arc<Comet> {
        Arc::new(Comet {
            state: Mutex::new(State {
                phase: Phase::New,
                incoming: VecDeque::new(),
                incoming_bytes: 0,
                outgoing: Vec::new(),
                outgoing_bytes: 0,
                parked: None,
                attached: false,
                idle: false,
                alone_since: Instant::now(),
                heard: Instant::now(),
                drowsy: false,
                asleep: None,
                wake: false,
            }),
            to_backend: Notify::new(),
            taken: Notify::new(),
            backlog,
            inbox,
            heartbeat,
        })
    }

    /// A receiving request arrives. It takes what waits for the client, unless it is
    /// `polling` and has the open frame to send (one frame per polling response).
    pub fn arrive(&self, polling: bool) -> Arrival {
        let mut state = lock(&self.state);
        // A receiver whose client has just gone away may not have been seen to go yet.
        if state.parked.as_mut().is_some_and(|p| p.client_gone()) && state.interrupted() {
            self.to_backend.notify_one();
        }
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
        let waiting = match !(open && polling) {
            true => {
                state.outgoing_bytes = 0;
                std::mem::take(&mut state.outgoing)
            }
            false => Vec::new(),
        };
        Arrival::Receiver { open, waiting }
    }

    /// The receiving request's response waits for more: the backend writes to `parked`
    /// from now on.
    pub fn park(&self, parked: Parked) {
        let mut state = lock(&self.state);
        state.parked = Some(parked);
        match &state.phase {
            Phase::New | Phase::Open => {}
            Phase::Closing(frame) => {
                let frame = frame.clone();
                state.end_parked(&frame);
            }
            Phase::Gone => state.end_parked(&frames::close(3000, "Session gone")),
        }
        drop(state);
        self.to_backend.notify_one();
    }

    /// The receiving request left before its response waited: it ended as the protocol
    /// says (`aborted` false), or the client went away in the middle of it, which ends the
    /// session.
    pub fn leave(&self, aborted: bool) {
        let mut state = lock(&self.state);
        if aborted {
            if state.interrupted() {
                drop(state);
                self.to_backend.notify_one();
            }
        } else {
            state.detach();
        }
    }

    /// Writes what waits into the parked response. The backend's task calls this when it
    /// waits for the client, so what it sent meanwhile goes out in one write.
    fn flush(&self, state: &mut State) {
        state.send_waiting();
    }

    /// Watches the parked response's connection (for the backend's task): ready when its
    /// client went away, which ends the session.
    fn poll_parked(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = lock(&self.state);
        match state.parked.as_mut().map(|p| p.poll_io(cx)) {
            Some(Poll::Ready(())) => {
                state.interrupted();
                Poll::Ready(())
            }
            _ => Poll::Pending,
        }
    }

    /// Messages from a sending request, for the backend. Waits while more than the inbox
    /// bound waits for the backend, then, unless a streaming response waits, until the
    /// backend has handled them (up to `patience`), so that what it answers is there for the
    /// next polling request. False when the session is closing or gone.
    pub async fn receive(&self, messages: Vec<Utf8Bytes>, patience: Duration) -> bool {
        let mut messages = messages.into_iter().peekable();
        while messages.peek().is_some() {
            let taken = self.taken.notified();
            {
                let mut state = lock(&self.state);
                if !state.phase.live() {
                    return false;
                }
                // As many as the inbox takes, under one lock and for one wake of the backend.
                while state.incoming_bytes < self.inbox || state.incoming.is_empty() {
                    let Some(message) = messages.next() else {
                        break;
                    };
                    state.incoming_bytes += message.len();
                    state.incoming.push_back(Payload::Text(message));
                }
                state.idle = false;
                state.heard = Instant::now();
            }
            self.to_backend.notify_one();
            if messages.peek().is_some() {
                taken.await;
            }
        }
        // A streaming response carries the answers as they come: nothing to wait for.
        if lock(&self.state)
            .parked
            .as_ref()
            .is_some_and(|p| p.streams())
        {
            return true;
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

    /// Ends the session with `frame` (a close frame): the parked response gets it now, and
    /// every receiving request after until the session expires.
    fn closing(&self, frame: String) {
        {
            let mut state = lock(&self.state);
            if !state.phase.live() {
                return;
            }
            state.end_parked(&frame);
            state.phase = Phase::Closing(frame);
        }
        self.to_backend.notify_one();
    }

    /// The gateway stops: the session is closed with 1001.
    pub fn shut_down(&self) {
        self.closing(frames::close(1001, "Server shutting down"));
    }

    /// The backend is done with it: closed with 1000 unless it was closed already.
    pub fn close_normally(&self) {
        self.closing(frames::close(1000, "Normal closure"));
    }

    /// The sweep's look at the session at `now`: a heartbeat for a parked response that
    /// has had nothing for a while; true when the session has had no receiver for `delay`,
    /// or has ended and been told, and can go.
    /// A session whose client has been silent for `hibernate_after` (unless zero) is
    /// offered sleep.
    pub fn tick(&self, delay: Duration, hibernate_after: Duration, now: Instant) -> bool {
        let mut state = lock(&self.state);
        let silent = !hibernate_after.is_zero()
            && now.duration_since(state.heard) >= hibernate_after
            && state.asleep.is_none()
            && !state.drowsy;
        if silent && state.sleepable().is_some() {
            state.drowsy = true;
            self.to_backend.notify_one();
        }
        if let Some(parked) = state.parked.as_mut() {
            match parked.heartbeat(self.heartbeat, now) {
                After::Waits if parked.owed() == 0 => {}
                // The backend's task waits for the socket to take the rest.
                After::Waits => self.to_backend.notify_one(),
                After::Full => {
                    state.parked.take().expect("parked").finish();
                    state.detach();
                    self.to_backend.notify_one();
                }
                After::Gone => {
                    state.interrupted();
                    self.to_backend.notify_one();
                }
            }
        }
        state.phase == Phase::Gone
            || (!state.attached && now.duration_since(state.alone_since) >= delay)
    }

    /// Marks it gone, telling the backend.
    pub fn expire(&self) {
        lock(&self.state).phase = Phase::Gone;
        self.to_backend.notify_one();
    }
}
