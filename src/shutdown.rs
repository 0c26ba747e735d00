//! Telling every task that the gateway is stopping, and the connection slots each
//! connection holds until its last task ends.
//!
//! Each connection holds a [`Signal`]: a `oneshot` receiver registered under a key. Polling a
//! oneshot is a lock-free atomic check, so a session can poll its signal on every message; a
//! `Notify`-based token (`CancellationToken`, `watch`) locks a shared waiter list on each poll.
//! The registry's `Mutex` is taken only when a connection starts or ends.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::sync::oneshot;

/// Holds one of the connection slots while any task of the connection lives (the HTTP task
/// hands a clone to the WebSocket task it upgrades into, which may hand it to a sleeper).
pub type ConnGuard = Arc<crate::slots::Held>;

/// The gateway's stop switch, cheap to clone.
#[derive(Clone, Default)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Set once by [`Shutdown::trigger`]; signals made after it are already fired.
    stopping: AtomicBool,
    /// Key for the next signal.
    next: AtomicU64,
    /// The live signals' senders. A std `Mutex` is right: it is never held across an `.await`.
    senders: Mutex<HashMap<u64, oneshot::Sender<()>>>,
}

impl Shutdown {
    /// A new signal that fires when [`trigger`](Self::trigger) is called (or at once, if it was).
    pub fn signal(&self) -> Signal {
        let (tx, rx) = oneshot::channel();
        let key = self.inner.next.fetch_add(1, Ordering::Relaxed);
        let mut senders = self.inner.senders.lock().unwrap_or_else(|e| e.into_inner());
        if self.inner.stopping.load(Ordering::Acquire) {
            drop(tx); // a dropped sender fires the signal
        } else {
            senders.insert(key, tx);
        }
        Signal {
            rx,
            key,
            owner: self.clone(),
        }
    }

    /// Fires every signal, now and future.
    pub fn trigger(&self) {
        let mut senders = self.inner.senders.lock().unwrap_or_else(|e| e.into_inner());
        self.inner.stopping.store(true, Ordering::Release);
        for (_, tx) in senders.drain() {
            let _ = tx.send(());
        }
    }

    /// True once [`trigger`](Self::trigger) has been called.
    pub fn is_stopping(&self) -> bool {
        self.inner.stopping.load(Ordering::Acquire)
    }
}

/// Completes when the gateway stops. Unregisters itself when dropped.
pub struct Signal {
    /// Fires (value or closed) on shutdown.
    rx: oneshot::Receiver<()>,
    /// This signal's entry in the registry.
    key: u64,
    /// The registry, to unregister from.
    owner: Shutdown,
}

impl Signal {
    /// True once the gateway is stopping: a look that registers nothing, for a task that
    /// has polled the signal before and so is woken when it fires.
    pub fn fired(&self) -> bool {
        self.owner.is_stopping()
    }
}

impl Future for Signal {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.rx).poll(cx).map(|_| ())
    }
}

impl Drop for Signal {
    fn drop(&mut self) {
        if !self.owner.is_stopping() {
            let mut senders = self
                .owner
                .inner
                .senders
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            senders.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn signals_fire_on_trigger_and_after_it() {
        let shutdown = Shutdown::default();
        let early = shutdown.signal();
        let waiting = tokio::spawn(early);
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!waiting.is_finished());
        shutdown.trigger();
        tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .unwrap()
            .unwrap();
        tokio::time::timeout(Duration::from_secs(1), shutdown.signal())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn dropped_signals_leave_the_registry() {
        let shutdown = Shutdown::default();
        let signals: Vec<_> = (0..10).map(|_| shutdown.signal()).collect();
        assert_eq!(shutdown.inner.senders.lock().unwrap().len(), 10);
        drop(signals);
        assert!(shutdown.inner.senders.lock().unwrap().is_empty());
    }
}
