//! A sleeping WebSocket as a room reaches it: a [`Delivery`] that owns the socket.
//!
//! The sleeping connection ([`super::hibernate`]) and the room each hold the same
//! [`Asleep`] through an `Arc`, so the socket stays open while either can write to it: a
//! connection lost on any path closes its socket only once the room has let go, and a
//! descriptor number can never be reused under a room that still writes to it. Writes are
//! ordinary non-blocking socket writes, in safe code.

use std::io::{self, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use tokio::sync::Notify;

use super::codec;
use crate::session::{Delivery, Framing, Payload};

/// Not in the sleepers' set yet.
const UNREGISTERED: usize = usize::MAX;

/// A wake was asked for before the connection was in the set: it must not go in.
const WAKE_WANTED: usize = usize::MAX - 1;

/// A sleeping connection's socket, and what a room needs to write to it or wake it.
pub struct Asleep {
    /// The socket, non-blocking, out of tokio's hands while it sleeps.
    tcp: std::net::TcpStream,
    /// Its framing.
    framing: Framing,
    /// Its key in the sleepers' set once it is there ([`UNREGISTERED`] before, and
    /// [`WAKE_WANTED`] once a wake is asked for): what [`wake`](Delivery::wake) rings.
    key: AtomicUsize,
    /// What a room could not write without waiting: sent first when the connection wakes.
    /// Set once, by the one wake a delivery gets.
    owed: OnceLock<Box<[u8]>>,
    /// Where wakes are asked for.
    alarm: Arc<Alarm>,
}

/// Sleepers that rooms asked to wake, for the hibernation task.
#[derive(Default)]
pub struct Alarm {
    /// Keys in the sleepers' set, each with the address of its [`Asleep`] so that a key
    /// since reused by another sleeper is not woken in its place.
    asked: Mutex<Vec<(usize, usize)>>,
    /// Rung with each request.
    pub notify: Notify,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Alarm {
    /// The wakes asked for since the last call: keys and [`Asleep::id`]s.
    pub fn take(&self) -> Vec<(usize, usize)> {
        std::mem::take(&mut *lock(&self.asked))
    }
}

impl Asleep {
    /// A sleeping connection on `tcp` (non-blocking), whose wakes are asked of `alarm`.
    pub fn new(tcp: std::net::TcpStream, framing: Framing, alarm: Arc<Alarm>) -> Asleep {
        Asleep {
            tcp,
            framing,
            key: AtomicUsize::new(UNREGISTERED),
            owed: OnceLock::new(),
            alarm,
        }
    }

    /// Identifies this sleeper among the live ones.
    pub fn id(&self) -> usize {
        std::ptr::from_ref(self) as usize
    }

    /// The socket.
    pub fn tcp(&self) -> &std::net::TcpStream {
        &self.tcp
    }

    /// Records that the connection is in the sleepers' set under `key`; false when a wake
    /// was asked for already, and it must stay awake.
    pub fn registered(&self, key: usize) -> bool {
        self.key
            .compare_exchange(UNREGISTERED, key, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// The socket and what is owed to the client, once no room holds this any more.
    pub fn into_parts(self) -> (std::net::TcpStream, Box<[u8]>) {
        (self.tcp, self.owed.into_inner().unwrap_or_default())
    }
}

impl Delivery for Asleep {
    fn framing(&self) -> Framing {
        self.framing
    }

    fn frame(&self, messages: &[Payload], out: &mut Vec<u8>) {
        let text_only = self.framing == Framing::Rfc6455Text;
        for message in messages {
            codec::encode(out, message, text_only);
        }
    }

    fn offer(&self, bytes: &[u8]) -> usize {
        let mut sent = 0;
        while sent < bytes.len() {
            match (&self.tcp).write(&bytes[sent..]) {
                Ok(0) => break,
                Ok(n) => sent += n,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                // Full (would block), or failed: the connection wakes and finds out which.
                Err(_) => break,
            }
        }
        sent
    }

    fn wake(&self, owed: &[u8]) {
        if self.owed.set(owed.into()).is_err() {
            tracing::error!("a sleeping connection was woken twice: the second wake is ignored");
            return;
        }
        let key = self.key.swap(WAKE_WANTED, Ordering::AcqRel);
        if key < WAKE_WANTED {
            lock(&self.alarm.asked).push((key, self.id()));
            self.alarm.notify.notify_one();
        }
        // Not in the set yet: it sees the request as it tries to go in, and stays awake.
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsRawFd;
    use std::time::Duration;

    /// A connected pair of real sockets: (the client's end, the gateway's, non-blocking).
    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (ours, _) = listener.accept().unwrap();
        ours.set_nonblocking(true).unwrap();
        client
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        (client, ours)
    }

    fn frames(delivery: &dyn Delivery, text: &'static str) -> Vec<u8> {
        let mut out = Vec::new();
        delivery.frame(&[Payload::Text(text.into())], &mut out);
        out
    }

    /// The error paths of falling asleep and waking drop the connection's own hold on the
    /// socket while a room may still write to it. The socket must outlive the room's hold:
    /// were it closed, the next socket opened would get its descriptor number, and the room
    /// would write one client's messages into another's connection.
    #[test]
    fn a_room_never_writes_into_another_clients_socket() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut first = TcpStream::connect(addr).unwrap();
        let (ours, _) = listener.accept().unwrap();
        ours.set_nonblocking(true).unwrap();
        let fd = ours.as_raw_fd();
        let asleep = Arc::new(Asleep::new(ours, Framing::Rfc6455, Arc::default()));
        let room: Arc<dyn Delivery> = asleep.clone();
        // The connection is lost on an error path: its own hold goes first.
        drop(asleep);
        // The next connection: its sockets take the lowest free descriptor numbers.
        let second = TcpStream::connect(addr).unwrap();
        let (mut theirs, _) = listener.accept().unwrap();
        assert_ne!(
            second.as_raw_fd(),
            fd,
            "a descriptor the room holds was reused"
        );
        assert_ne!(
            theirs.as_raw_fd(),
            fd,
            "a descriptor the room holds was reused"
        );
        let frame = frames(&*room, "for the first client only");
        assert_eq!(room.offer(&frame), frame.len());
        first
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut got = vec![0; frame.len()];
        first.read_exact(&mut got).unwrap();
        assert_eq!(got, frame);
        theirs
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut stray = [0; 1];
        assert!(theirs.read(&mut stray).is_err(), "the new client got data");
        // Once the room lets go, the socket closes: the client sees the end.
        drop(room);
        assert_eq!(first.read(&mut stray).unwrap(), 0);
    }

    #[test]
    fn a_full_socket_takes_what_fits_and_the_rest_is_owed() {
        let (_client, ours) = pair();
        let asleep = Arc::new(Asleep::new(ours, Framing::Rfc6455, Arc::default()));
        let big = vec![7u8; 64 << 20];
        let sent = asleep.offer(&big);
        assert!(sent > 0 && sent < big.len(), "sent {sent}");
        asleep.wake(&big[sent..]);
        assert!(
            !asleep.registered(3),
            "a wake was asked for: it must stay awake"
        );
        let asleep = Arc::into_inner(asleep).unwrap();
        let (_, owed) = asleep.into_parts();
        assert_eq!(owed.len(), big.len() - sent);
    }

    #[test]
    fn a_wake_after_registration_rings_the_alarm_with_its_key() {
        let (_client, ours) = pair();
        let alarm = Arc::new(Alarm::default());
        let asleep = Asleep::new(ours, Framing::Rfc6455Text, alarm.clone());
        assert!(asleep.registered(5));
        asleep.wake(b"rest");
        assert_eq!(alarm.take(), [(5, asleep.id())]);
        // Asked once: a second request rings nothing more, and owes nothing more.
        asleep.wake(b"more");
        assert!(alarm.take().is_empty());
        assert_eq!(&*asleep.into_parts().1, b"rest");
    }

    #[test]
    fn text_only_framing_turns_binary_into_text() {
        let (_client, ours) = pair();
        let asleep = Asleep::new(ours, Framing::Rfc6455Text, Arc::default());
        let mut out = Vec::new();
        asleep.frame(
            &[Payload::Binary(bytes::Bytes::from_static(&[0, 1]))],
            &mut out,
        );
        assert_eq!(out[0], 0x81, "a text frame");
    }
}
