//! The master policy listener (port 843), answering most requests in the accept loop itself.
//!
//! Flash Player connects and sends its request at once, so the request is usually already
//! there when the connection is accepted. Then one non-blocking read, one write and a
//! shutdown answer it: no task, no timer, no registration with the event loop. The socket
//! lingers in a bounded list until the client has closed it, so the reply is never lost to
//! a reset, and is closed at the next sweep; a client still connected by then takes the
//! ordinary path. So does every connection whose request is not all there at once: a task
//! reads it with a deadline ([`crate::server::serve_policy`]).

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, MissedTickBehavior, interval};

use super::serve::{DRAIN_LIMIT, drain};
use super::sniff::{MAX_SNIFF, Sniff, sniff};
use crate::gateway::Gateway;
use crate::prefixed::Prefixed;
use crate::server::serve_policy;
use crate::shutdown::ConnGuard;

/// Answered sockets waiting for their client to close, at most.
const MAX_LINGERING: usize = 4096;

/// How often lingering sockets are checked, and how long each lingers at least.
const SWEEP: Duration = Duration::from_millis(20);

/// Connections accepted per wake-up before the loop lets other tasks run.
const ACCEPT_BATCH: usize = 64;

/// An answered socket waiting for its client to close.
struct Lingering {
    socket: std::net::TcpStream,
    peer: SocketAddr,
    since: Instant,
    guard: ConnGuard,
}

/// Accepts on `listener` until shutdown.
pub async fn accept_loop(listener: TcpListener, gw: Arc<Gateway>) {
    let wait = gw.config.limits.read_timeout;
    let listener = match listener
        .into_std()
        .map(|l| defer_accept(l, wait))
        .and_then(|listener| {
            #[allow(unsafe_code)]
            // SAFETY: `AsyncFd` requires that the descriptor stay open, and the same, while it
            // is registered. A std `TcpListener` owns its descriptor, and the `AsyncFd` owns
            // the listener, dropping it only after deregistering it.
            let registered = unsafe { AsyncFd::register(listener) };
            registered.map_err(io::Error::from)
        }) {
        Ok(listener) => listener,
        Err(error) => {
            tracing::error!(%error, "policy listener unusable");
            return;
        }
    };
    let mut stop = gw.shutdown.signal();
    let mut lingering = VecDeque::new();
    let mut sweep = interval(SWEEP);
    sweep.set_missed_tick_behavior(MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            biased;
            _ = &mut stop => break,
            _ = sweep.tick(), if !lingering.is_empty() => {
                if let Some(before) = Instant::now().checked_sub(SWEEP) {
                    sweep_lingering(&mut lingering, before, &gw);
                }
            }
            ready = listener.readable() => {
                let mut ready = match ready {
                    Ok(ready) => ready,
                    Err(error) => {
                        tracing::error!(%error, "policy listener failed");
                        break;
                    }
                };
                for _ in 0..ACCEPT_BATCH {
                    let (socket, peer) = match ready.try_io(|l| accept(l.get_ref())) {
                        Ok(Ok(accepted)) => accepted,
                        Ok(Err(error)) => {
                            // Out of file descriptors and the like: back off, keep going.
                            tracing::warn!(%error, "accept failed");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            break;
                        }
                        Err(_would_block) => break,
                    };
                    if lingering.len() == MAX_LINGERING {
                        // Full: sweep now.
                        sweep_lingering(&mut lingering, Instant::now(), &gw);
                    }
                    // Accept first, then wait for a slot (see `server::accept_loop`). Lingering
                    // sockets hold slots: sweep them before waiting for one.
                    let guard = match gw.slots.try_acquire() {
                        Some(guard) => guard,
                        None => {
                            sweep_lingering(&mut lingering, Instant::now(), &gw);
                            tokio::select! {
                                guard = gw.slots.acquire() => guard,
                                _ = &mut stop => break,
                            }
                        }
                    };
                    if let Some(answered) = answer(socket, peer, guard, &gw) {
                        lingering.push_back(answered);
                    }
                }
            }
        }
    }
}

/// Asks the kernel to hand connections over only once their first bytes have arrived
/// (`TCP_DEFER_ACCEPT`), so that the request is there to read when one is accepted. A client
/// that sends nothing is handed over anyway after about `wait` (rounded up to whole seconds
/// and the kernel's retransmission schedule), and then meets the read timeout.
#[cfg(target_os = "linux")]
fn defer_accept(listener: std::net::TcpListener, wait: Duration) -> std::net::TcpListener {
    use std::os::fd::AsRawFd;
    let seconds = wait.as_secs_f64().ceil().clamp(1.0, 3600.0) as libc::c_int;
    #[allow(unsafe_code)]
    // SAFETY: setsockopt reads `optlen` bytes at `optval`: here a live c_int on the stack,
    // with its own size. The descriptor belongs to `listener`, borrowed for the call, so it
    // is open and no other socket's.
    let done = unsafe {
        libc::setsockopt(
            listener.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_DEFER_ACCEPT,
            (&seconds as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if done != 0 {
        let error = io::Error::last_os_error();
        tracing::debug!(%error, "TCP_DEFER_ACCEPT not available");
    }
    listener
}

/// Elsewhere connections are accepted as they come; those whose request follows a little
/// later take the ordinary path.
#[cfg(not(target_os = "linux"))]
fn defer_accept(listener: std::net::TcpListener, _wait: Duration) -> std::net::TcpListener {
    listener
}

/// Accepts a connection, non-blocking from the start (one system call, where std's
/// `accept` and `set_nonblocking` take two).
fn accept(listener: &std::net::TcpListener) -> io::Result<(std::net::TcpStream, SocketAddr)> {
    #[cfg(target_os = "linux")]
    let (socket, peer) =
        socket2::SockRef::from(listener).accept4(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC)?;
    #[cfg(not(target_os = "linux"))]
    let (socket, peer) = {
        let (socket, peer) = socket2::SockRef::from(listener).accept()?;
        socket.set_nonblocking(true)?;
        (socket, peer)
    };
    let peer = peer
        .as_socket()
        .ok_or_else(|| io::Error::other("not an IP peer"))?;
    Ok((socket.into(), peer))
}

/// Answers a fresh connection if its request is all there; otherwise hands it to a task.
fn answer(
    socket: std::net::TcpStream,
    peer: SocketAddr,
    guard: ConnGuard,
    gw: &Arc<Gateway>,
) -> Option<Lingering> {
    let mut first = [0u8; MAX_SNIFF];
    let len = match (&socket).read(&mut first) {
        Ok(len) => len,
        Err(error) if error.kind() == io::ErrorKind::WouldBlock => 0,
        Err(error) => {
            tracing::info!(%peer, listener = "policy", %error, "closed");
            gw.metrics.policy("policy", "failed");
            return None;
        }
    };
    // A read of nothing says nothing (WouldBlock) or that the client closed: the ordinary
    // path tells them apart, with the read timeout.
    if len == 0 || sniff(&first[..len], false) == Sniff::Incomplete {
        spawn_ordinary(socket, peer, guard, gw, &first[..len]);
        return None;
    }
    if sniff(&first[..len], false) == Sniff::Other {
        tracing::info!(%peer, listener = "policy", "not a policy request: closed");
        gw.metrics.policy("policy", "not_policy");
        return None;
    }
    tracing::info!(%peer, listener = "policy", "policy served");
    gw.metrics.policy("policy", "served");
    let policy = gw.policies.master.clone();
    let sent = match (&socket).write(&policy) {
        Ok(sent) => sent,
        Err(error) if error.kind() == io::ErrorKind::WouldBlock => 0,
        Err(_) => return None,
    };
    if sent < policy.len() {
        // A policy larger than the socket's send buffer: the rest goes out from a task.
        spawn_rest(socket, peer, guard, gw, policy.slice(sent..));
        return None;
    }
    if socket.shutdown(Shutdown::Write).is_err() {
        return None;
    }
    Some(Lingering {
        socket,
        peer,
        since: Instant::now(),
        guard,
    })
}

/// Closes the lingering sockets answered before `before` whose client has closed; those
/// still connected go on the ordinary path, which waits for them with the read timeout.
fn sweep_lingering(lingering: &mut VecDeque<Lingering>, before: Instant, gw: &Arc<Gateway>) {
    while lingering.front().is_some_and(|l| l.since <= before) {
        let Lingering {
            socket,
            peer,
            guard,
            ..
        } = lingering.pop_front().expect("checked");
        if !client_still_there(&socket) {
            continue; // closing now resets nothing
        }
        let Ok(mut stream) = TcpStream::from_std(socket) else {
            continue;
        };
        let limit = gw.config.limits.read_timeout;
        gw.tracker.spawn(async move {
            let _guard = guard;
            let _ = tokio::time::timeout(limit, drain(&mut stream)).await;
            tracing::debug!(%peer, listener = "policy", "closed");
        });
    }
}

/// Reads and drops what the client sent after its request: true while it is still
/// connected and within [`DRAIN_LIMIT`], false once it has closed (or reset, or sent too
/// much).
fn client_still_there(socket: &std::net::TcpStream) -> bool {
    let mut sink = [0u8; 256];
    let mut left = DRAIN_LIMIT;
    loop {
        match (&*socket).read(&mut sink) {
            Ok(0) => return false,
            Ok(n) if n >= left => return false,
            Ok(n) => left -= n,
            Err(e) => return e.kind() == io::ErrorKind::WouldBlock,
        }
    }
}

/// The ordinary path, for a request that is not all there yet (`first` is what came).
fn spawn_ordinary(
    socket: std::net::TcpStream,
    peer: SocketAddr,
    guard: ConnGuard,
    gw: &Arc<Gateway>,
    first: &[u8],
) {
    let Ok(stream) = TcpStream::from_std(socket) else {
        return;
    };
    let stream = Prefixed::new(stream, first);
    gw.tracker
        .spawn(serve_policy(stream, peer, gw.clone(), guard));
}

/// Sends the rest of a reply that did not fit in one write, then ends as usual.
fn spawn_rest(
    socket: std::net::TcpStream,
    peer: SocketAddr,
    guard: ConnGuard,
    gw: &Arc<Gateway>,
    rest: bytes::Bytes,
) {
    let Ok(mut stream) = TcpStream::from_std(socket) else {
        return;
    };
    let limit = gw.config.limits.read_timeout;
    gw.tracker.spawn(async move {
        let _guard = guard;
        let _ = super::serve::reply(&mut stream, &rest, limit).await;
        tracing::debug!(%peer, listener = "policy", "closed");
    });
}
