//! SockJS sessions asleep, as rooms reach them: [`Dozing`], the SockJS transport's
//! [`Sleepers`] table.
//!
//! A session whose client has been silent for `--hibernate-after`, and whose receiving
//! response streams (chunked, xhr-streaming, eventsource or htmlfile), falls asleep: its
//! backend hands a room its place here (a [`Delivery`](crate::session::Delivery)), and the
//! room writes each publish, framed once per framing, straight into the parked response
//! instead of queueing it for the session's task. The session's task waits meanwhile for
//! what wakes it: a message from the client, its response full or ended, a write that did
//! not fit, the client gone, or shutdown.

use std::borrow::Cow;
use std::sync::Arc;

use sharded_slab::Slab;

use super::comet::Comet;
use super::frames::{self, Wrap};
use crate::session::{Delivered, Framing, Payload, Sleepers, text_only};

/// The sleeping sessions, by key.
#[derive(Default)]
pub struct Dozing {
    slab: Slab<Arc<Comet>>,
    /// How many sleep, for the metrics.
    asleep: prometheus_client::metrics::gauge::Gauge,
}

impl Dozing {
    /// An empty table; each session in it counts in `asleep`.
    pub fn counted(asleep: prometheus_client::metrics::gauge::Gauge) -> Dozing {
        Dozing {
            slab: Slab::new(),
            asleep,
        }
    }

    /// Puts `comet` in the table; its key, or `None` when the table is full.
    pub fn put(&self, comet: Arc<Comet>) -> Option<usize> {
        let key = self.slab.insert(comet)?;
        self.asleep.inc();
        Some(key)
    }

    /// Takes the session `key` out: from now on the key reaches nothing.
    pub fn take(&self, key: usize) {
        if self.slab.remove(key) {
            self.asleep.dec();
        }
    }
}

impl Sleepers for Dozing {
    fn frame(&self, framing: Framing, messages: &[Payload], out: &mut Vec<u8>) {
        let wrap = match framing {
            Framing::SockjsEventsource => Wrap::Event,
            Framing::SockjsHtmlfile => Wrap::Script,
            _ => Wrap::Line,
        };
        let texts = messages.iter().map(|m| match m {
            Payload::Text(text) => Cow::Borrowed(text.as_str()),
            binary => Cow::Owned(text_only(binary.clone()).as_str().to_owned()),
        });
        wrap.put(true, out, |out| frames::messages(texts, out));
    }

    fn deliver(&self, key: usize, bytes: &[u8]) -> Delivered {
        match self.slab.get(key) {
            Some(comet) => comet.deliver(key, bytes),
            None => Delivered::Gone,
        }
    }
}
