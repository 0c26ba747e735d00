//! Hibernation: an echo or broadcast WebSocket that has been silent for a while
//! (`--hibernate-after`) gives back its task, its buffers and its timers, and waits as a bare
//! socket in one epoll set shared by every sleeper. A sleeper costs a slab entry of a few dozen bytes instead of a
//! task of about a kilobyte and a half, so a gateway holding many quiet clients (kiosks,
//! dashboards waiting for a rare event) holds little more than their sockets.
//!
//! A sleeper keeps its backend's handler ([`Service`]), so it wakes into the backend (and the
//! broadcast room) it had; its socket lies in the transport's table of sleeping sockets
//! ([`Beds`]), through which a room reaches a sleeping member.
//!
//! One task, [`watch`], owns the epoll set. A sleeper wakes into a new session when its
//! socket has something to read (a message, a close, the end of the stream); when its room
//! has a message that does not fit in its socket; when its idle
//! timeout comes, to be pinged (and put back to sleep); when that ping went unanswered for
//! another idle timeout, to be closed (1001); and when the gateway shuts down, to be closed
//! like every other session.
//!
//! A session falls asleep only between messages with nothing unsent ([`super::conn::Conn::at_rest`]),
//! so the new session starts exactly where the old one stopped.

use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Registry, Token};
use slab::Slab;
use tokio::io::unix::AsyncFd;
use tokio::time::Instant;

use super::asleep::Beds;
use crate::session::{Service, Transport};
use crate::shutdown::{ConnGuard, Signal};
use crate::slots::Held;

/// Events taken from the epoll set per system call.
const EVENTS: usize = 256;

/// How often the heap is looked at for memory to give back.
const TRIM_EVERY: Duration = Duration::from_millis(250);

/// Connections that fall asleep before the heap is trimmed, once no more follow for a while.
const TRIM_AFTER: usize = 64;

/// Connections that fall asleep before the heap is trimmed even while more follow.
const TRIM_AT_ONCE: usize = 4096;

/// A connection put down to sleep, or given back when it could not (or woken).
pub struct Parked<M> {
    /// Its socket's bed.
    pub bed: usize,
    /// The socket's descriptor, for the epoll set (the bed owns the socket).
    pub fd: RawFd,
    /// Its backend's handler.
    pub handler: M,
    /// The client.
    pub client: Client,
    /// A ping went out and has not been answered.
    pub pinged: bool,
}

/// A sleeping connection: its socket and what a new session needs to serve it.
pub(super) struct Sleeper<M> {
    /// Its socket's bed.
    bed: usize,
    /// The socket's descriptor, for the epoll set (the bed owns the socket).
    fd: RawFd,
    /// Its backend's handler.
    handler: M,
    /// How it is connected.
    transport: Transport,
    /// Its connection slot.
    slot: Slot,
    /// A ping went out and has not been answered.
    pinged: bool,
    /// When it fell asleep, in milliseconds of the set's [`Hibernation::clock`]: its idle
    /// timeout counts from here.
    since: u32,
}

/// Who a WebSocket client is, besides its socket.
pub struct Client {
    /// Its address, for logs.
    pub peer: SocketAddr,
    /// How it is connected.
    pub transport: Transport,
    /// Its connection slot.
    pub guard: ConnGuard,
}

/// A sleeper's connection slot, out of its shared box when no one else holds it: a small
/// allocation that outlives the session's would sit between the freed ones and keep the
/// heap from giving their pages back.
enum Slot {
    Owned(Held),
    Shared(ConnGuard),
}

impl<M> Sleeper<M> {
    /// Back to a connection; `peer` is its address (read from its socket: a sleeper does not
    /// keep it).
    fn parked(self, peer: SocketAddr) -> Parked<M> {
        let guard = match self.slot {
            Slot::Owned(permit) => Arc::new(permit),
            Slot::Shared(guard) => guard,
        };
        let client = Client {
            peer,
            transport: self.transport,
            guard,
        };
        Parked {
            bed: self.bed,
            fd: self.fd,
            handler: self.handler,
            client,
            pinged: self.pinged,
        }
    }

    fn fd(&self) -> RawFd {
        self.fd
    }
}

/// Why a sleeper is woken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wake {
    /// Its socket has something to read, its room has more for it than the socket takes,
    /// or the gateway is stopping.
    Readable,
    /// Its idle timeout came: ping it.
    Ping,
    /// Its ping went unanswered for an idle timeout: close it.
    Expired,
}

/// The sleepers. Shared: sessions fall asleep from their own tasks.
pub struct Hibernation<M> {
    /// Adds sockets to the epoll set [`watch`] waits on.
    registry: Registry,
    state: Mutex<State<M>>,
    /// The sleepers' sockets, where rooms reach them and ask for them to be woken.
    beds: Arc<Beds>,
    /// Sleepers' times count from here, in milliseconds that wrap (so an idle timeout may
    /// be up to 49 days).
    clock: Instant,
}

struct State<M> {
    sleepers: Slab<Sleeper<M>>,
    /// Fell asleep since the heap was last trimmed.
    since_trim: usize,
    /// False once the gateway stops: no one falls asleep any more.
    open: bool,
}

/// A sleeper's key in the epoll set: its slab key and its descriptor, so that an event can
/// never be taken for another socket's.
fn token(key: usize, fd: RawFd) -> Token {
    Token(key << 32 | fd as u32 as usize)
}

fn untoken(token: Token) -> (usize, RawFd) {
    (token.0 >> 32, token.0 as u32 as RawFd)
}

impl<M: Service> Hibernation<M> {
    /// A new epoll set: the shared half, and the half [`watch`] owns; each sleeper counts
    /// in `asleep`.
    pub fn new(
        asleep: prometheus_client::metrics::gauge::Gauge,
    ) -> io::Result<(Hibernation<M>, Poll)> {
        let poll = Poll::new()?;
        let registry = poll.registry().try_clone()?;
        let state = Mutex::new(State {
            sleepers: Slab::new(),
            since_trim: 0,
            open: true,
        });
        Ok((
            Hibernation {
                registry,
                state,
                beds: Arc::new(Beds::counted(asleep)),
                clock: Instant::now(),
            },
            poll,
        ))
    }

    fn lock(&self) -> MutexGuard<'_, State<M>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Now, in milliseconds of [`clock`](Self::clock).
    fn now(&self) -> u32 {
        self.clock.elapsed().as_millis() as u32
    }

    /// The sleepers' sockets.
    pub fn beds(&self) -> &Arc<Beds> {
        &self.beds
    }

    /// Puts a connection to sleep; gives it back when it cannot sleep (the gateway is
    /// stopping, its room asked for it to wake meanwhile, or the socket could not be added
    /// to the set).
    pub fn sleep(&self, parked: Parked<M>) -> Result<(), Parked<M>> {
        let mut state = self.lock();
        if !state.open {
            return Err(parked);
        }
        let key = state.sleepers.vacant_key();
        let fd = parked.fd;
        if let Err(error) =
            self.registry
                .register(&mut SourceFd(&fd), token(key, fd), Interest::READABLE)
        {
            tracing::warn!(peer = %parked.client.peer, %error, "cannot put a connection to sleep");
            return Err(parked);
        }
        if !self.beds.registered(parked.bed, key) {
            let _ = self.registry.deregister(&mut SourceFd(&fd));
            return Err(parked);
        }
        tracing::debug!(peer = %parked.client.peer, "websocket asleep");
        state.since_trim += 1;
        let Parked {
            bed,
            fd,
            handler,
            client,
            pinged,
        } = parked;
        let slot = match Arc::try_unwrap(client.guard) {
            Ok(permit) => Slot::Owned(permit),
            Err(guard) => Slot::Shared(guard),
        };
        state.sleepers.insert(Sleeper {
            bed,
            fd,
            handler,
            transport: client.transport,
            slot,
            pinged,
            since: self.now(),
        });
        Ok(())
    }

    /// Takes the sleeper `key` out of the set.
    fn take(&self, state: &mut State<M>, key: usize) -> Sleeper<M> {
        let sleeper = state.sleepers.remove(key);
        // It is about to be registered with tokio; an error here leaves nothing behind
        // (the set forgets a descriptor when it is closed).
        let _ = self.registry.deregister(&mut SourceFd(&sleeper.fd()));
        sleeper
    }
}

/// What the hibernation task needs besides the sleepers.
pub struct Watch<F> {
    /// Fires when the gateway stops.
    pub stop: Signal,
    /// A sleeper silent this long is pinged, and closed if silent as long again.
    pub idle_timeout: Duration,
    /// Serves a woken connection (spawns its new session).
    pub wake: F,
}

/// Wakes sleepers until the gateway stops, then wakes them all (their new sessions see the
/// stop and close with 1001). Runs as one task for the gateway's life; `watch.wake` serves
/// each woken connection.
pub async fn watch<M: Service>(
    poll: Poll,
    hibernation: Arc<Hibernation<M>>,
    watch: Watch<impl Fn(Parked<M>, Wake)>,
) {
    #[allow(unsafe_code)]
    // SAFETY: `AsyncFd` requires that the descriptor stay open, and the same, for as long
    // as it is registered. The epoll descriptor is owned by `poll`, which the `AsyncFd`
    // owns and drops only after deregistering it.
    let registered =
        unsafe { AsyncFd::register_with_interest(poll, tokio::io::Interest::READABLE) };
    let mut poll = match registered.map_err(io::Error::from) {
        Ok(poll) => poll,
        Err(error) => {
            // Sessions then never sleep: they are refused and stay awake.
            tracing::error!(%error, "hibernation unavailable");
            hibernation.lock().open = false;
            return;
        }
    };
    let Watch {
        mut stop,
        idle_timeout,
        wake,
    } = watch;
    let mut sweep = tokio::time::interval(
        (idle_timeout / 8).clamp(Duration::from_millis(10), Duration::from_secs(1)),
    );
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut trim = tokio::time::interval(TRIM_EVERY);
    trim.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut trim_seen = 0;
    let mut events = Events::with_capacity(EVENTS);
    let mut woken = Vec::new();
    loop {
        tokio::select! {
            ready = poll.readable_mut() => {
                let Ok(mut ready) = ready else { continue };
                if let Err(error) = ready.get_inner_mut().poll(&mut events, Some(Duration::ZERO)) {
                    tracing::warn!(%error, "hibernation: epoll_wait failed");
                }
                if events.is_empty() {
                    ready.clear_ready();
                    continue;
                }
                let mut state = hibernation.lock();
                for event in &events {
                    let (key, fd) = untoken(event.token());
                    if state.sleepers.get(key).is_some_and(|s| s.fd() == fd) {
                        woken.push((hibernation.take(&mut state, key), Wake::Readable));
                    }
                }
            }
            _ = sweep.tick() => {
                let now = hibernation.now();
                let idle_ms = u32::try_from(idle_timeout.as_millis()).unwrap_or(u32::MAX);
                let mut state = hibernation.lock();
                let due: Vec<usize> = state
                    .sleepers
                    .iter()
                    .filter(|(_, s)| now.wrapping_sub(s.since) >= idle_ms)
                    .map(|(key, _)| key)
                    .collect();
                for key in due {
                    let sleeper = hibernation.take(&mut state, key);
                    let why = if sleeper.pinged { Wake::Expired } else { Wake::Ping };
                    woken.push((sleeper, why));
                }
            }
            _ = hibernation.beds.notify.notified() => {
                let asked = hibernation.beds.asked();
                let mut state = hibernation.lock();
                for (key, bed) in asked {
                    if state.sleepers.get(key).is_some_and(|s| s.bed == bed) {
                        woken.push((hibernation.take(&mut state, key), Wake::Readable));
                    }
                }
            }
            _ = trim.tick() => {
                let mut state = hibernation.lock();
                // After a wave of connections has fallen asleep (their tasks are freed as
                // they go), or during a long one.
                let settled = state.since_trim == trim_seen;
                trim_seen = state.since_trim;
                if (settled && state.since_trim >= TRIM_AFTER) || state.since_trim >= TRIM_AT_ONCE {
                    state.since_trim = 0;
                    trim_seen = 0;
                    drop(state);
                    // Off the runtime's threads: it walks the whole heap.
                    tokio::task::spawn_blocking(give_back_memory);
                }
            }
            _ = &mut stop => {
                let mut state = hibernation.lock();
                state.open = false;
                let keys: Vec<usize> = state.sleepers.iter().map(|(key, _)| key).collect();
                for key in keys {
                    woken.push((hibernation.take(&mut state, key), Wake::Readable));
                }
                drop(state);
                wake_all(&hibernation, &wake, &mut woken);
                return;
            }
        }
        wake_all(&hibernation, &wake, &mut woken);
    }
}

/// Returns the heap's free pages to the system. What sleepers gave back (tasks, buffers)
/// lies scattered between live allocations, where the allocator would otherwise keep it.
fn give_back_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    // SAFETY: malloc_trim has no preconditions: it only returns free heap pages to the
    // system, under the allocator's own lock, and may be called from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Serves each woken sleeper.
fn wake_all<M>(
    hibernation: &Hibernation<M>,
    wake: &impl Fn(Parked<M>, Wake),
    woken: &mut Vec<(Sleeper<M>, Wake)>,
) {
    for (sleeper, why) in woken.drain(..) {
        let peer = hibernation.beds.peer(sleeper.bed);
        tracing::debug!(%peer, wake = ?why, "websocket awake");
        wake(sleeper.parked(peer), why);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_carry_key_and_descriptor() {
        for (key, fd) in [(0, 0), (1, 7), (123_456, 65_535), (u32::MAX as usize, 3)] {
            assert_eq!(untoken(token(key, fd)), (key, fd));
        }
    }
}
