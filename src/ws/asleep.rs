//! The sockets of sleeping WebSocket connections, as rooms reach them: [`Beds`], the
//! transport's [`Sleepers`] table.
//!
//! A sleeping connection's socket lives in the table, not in the connection's record nor in
//! its room: the room holds a key ([`Delivery`]) and writes through the table. A key names
//! one bed, once: when the connection wakes it takes its socket out ([`Beds::take`]), which
//! waits for a write in progress, and from then on the key reaches nothing, even if the bed
//! is reused. So a room can never write into a socket that is not its member's, and no
//! descriptor is used after it is closed. Writes are ordinary non-blocking socket writes, in
//! safe code.
//!
//! The table is a `sharded_slab`: its entries lie together in pages that belong to it, so
//! what a sleeper keeps never sits among the memory its task and buffers gave back.

use prometheus_client::metrics::gauge::Gauge;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

use sharded_slab::Slab;
use tokio::sync::Notify;

use super::hixie76::frame::encode_text;
use crate::codec;
use crate::session::{Delivered, Framing, Payload, Sleepers, text_only};

/// Not in the sleepers' set yet.
const UNREGISTERED: u32 = u32::MAX;

/// A wake was asked for before the connection was in the set: it must not go in.
const WAKE_WANTED: u32 = u32::MAX - 1;

/// One sleeping connection's socket.
pub(super) struct Bed {
    /// The socket, non-blocking, out of tokio's hands while it sleeps.
    tcp: std::net::TcpStream,
    /// Its key in the sleepers' set once it is there ([`UNREGISTERED`] before, and
    /// [`WAKE_WANTED`] once a wake is asked for): what a full write rings.
    set_key: AtomicU32,
    /// What a room could not write without waiting: sent first when the connection wakes.
    /// Set once, by the one wake a bed gets.
    owed: OnceLock<Box<[u8]>>,
}

/// The sockets of sleeping connections, and where wakes are asked for.
#[derive(Default)]
pub struct Beds {
    /// The beds, by key.
    slab: Slab<Bed>,
    /// Wakes asked for: keys in the sleepers' set, each with its bed so that a set key
    /// since reused by another sleeper is not woken in its place.
    asked: Mutex<Vec<(usize, usize)>>,
    /// Rung with each request.
    pub notify: Notify,
    /// How many beds are taken, for the metrics.
    asleep: Gauge,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Beds {
    /// No beds taken; each one taken counts in `asleep`.
    pub fn counted(asleep: Gauge) -> Beds {
        Beds {
            asleep,
            ..Beds::default()
        }
    }

    /// Puts a sleeping connection's socket (non-blocking) in a bed; its key, and its
    /// descriptor (for the epoll set's tokens). Gives the socket back when the table is full.
    pub fn put(&self, tcp: std::net::TcpStream) -> Result<(usize, RawFd), std::net::TcpStream> {
        let fd = tcp.as_raw_fd();
        let bed = Bed {
            tcp,
            set_key: AtomicU32::new(UNREGISTERED),
            owed: OnceLock::new(),
        };
        let Some(entry) = self.slab.vacant_entry() else {
            return Err(bed.tcp);
        };
        let key = entry.key();
        entry.insert(bed);
        self.asleep.inc();
        Ok((key, fd))
    }

    /// Records that the connection in `bed` is in the sleepers' set under `set_key`; false
    /// when a wake was asked for already (it must stay awake), or the bed is gone.
    pub fn registered(&self, bed: usize, set_key: usize) -> bool {
        // Past the keys a bed can hold (billions of sleepers): it stays awake.
        let set_key = match u32::try_from(set_key) {
            Ok(key) if key < WAKE_WANTED => key,
            _ => return false,
        };
        self.slab.get(bed).is_some_and(|bed| {
            bed.set_key
                .compare_exchange(UNREGISTERED, set_key, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        })
    }

    /// The socket in `bed` and what is owed to its client, taken out: the key reaches no one
    /// from now on. Waits for a write to it in progress.
    pub fn take(&self, bed: usize) -> Option<(std::net::TcpStream, Box<[u8]>)> {
        let bed = self.slab.take(bed)?;
        self.asleep.dec();
        Some((bed.tcp, bed.owed.into_inner().unwrap_or_default()))
    }

    /// The address of the client in `bed` (unspecified if it cannot be read).
    pub fn peer(&self, bed: usize) -> std::net::SocketAddr {
        let peer = self.slab.get(bed).and_then(|bed| bed.tcp.peer_addr().ok());
        peer.unwrap_or_else(|| (std::net::Ipv4Addr::UNSPECIFIED, 0).into())
    }

    /// The wakes asked for since the last call: sleepers' set keys and beds.
    pub fn asked(&self) -> Vec<(usize, usize)> {
        std::mem::take(&mut *lock(&self.asked))
    }
}

impl Sleepers for Beds {
    fn frame(&self, framing: Framing, messages: &[Payload], out: &mut Vec<u8>) {
        if framing == Framing::Hixie76 {
            for message in messages {
                encode_text(out, &text_only(message.clone()));
            }
            return;
        }
        let text_only = framing == Framing::Rfc6455Text;
        for message in messages {
            codec::encode(out, message, text_only);
        }
    }

    fn deliver(&self, key: usize, bytes: &[u8]) -> Delivered {
        // The entry is held while it is written to: taking the bed waits for this.
        let Some(bed) = self.slab.get(key) else {
            return Delivered::Gone;
        };
        let mut sent = 0;
        while sent < bytes.len() {
            match (&bed.tcp).write(&bytes[sent..]) {
                Ok(0) => break,
                Ok(n) => sent += n,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                // Full (would block), or failed: the connection wakes and finds out which.
                Err(_) => break,
            }
        }
        if sent == bytes.len() {
            return Delivered::All;
        }
        if bed.owed.set(bytes[sent..].into()).is_err() {
            // A second wake: the first one's bytes are owed already, and these are lost. A
            // room never does this (it queues for a member once its write was cut short).
            tracing::error!("a sleeping connection was woken twice");
            return Delivered::Part;
        }
        let set_key = bed.set_key.swap(WAKE_WANTED, Ordering::AcqRel);
        if set_key < WAKE_WANTED {
            lock(&self.asked).push((set_key as usize, key));
            self.notify.notify_one();
        }
        // Not in the set yet: it sees the request as it tries to go in, and stays awake.
        Delivered::Part
    }
}

#[cfg(test)]
mod tests;
