//! What a hand-out has taken in and not yet written to every sleeper, framed once per batch
//! per framing.

use super::super::cost;
use crate::session::{Delivery, Framing, Payload};

/// One framing's copy of the log.
#[derive(Default)]
struct Framed {
    bytes: Vec<u8>,
    /// Where each framed batch starts in `bytes`, in the order of [`Log::batches`].
    starts: Vec<usize>,
}

/// Messages by number: `messages[i]` is number `base + i`.
#[derive(Default)]
pub(super) struct Log {
    messages: Vec<Payload>,
    base: u64,
    /// What `messages` costs, by [`cost`].
    cost: usize,
    /// The number of the first message of each batch, in order. A sleeper is always due
    /// from a batch's start, so what it is due is a suffix of each framing's copy.
    batches: Vec<u64>,
    framed: [Framed; Framing::COUNT],
}

impl Log {
    /// The number the next message will have.
    pub fn head(&self) -> u64 {
        self.base + self.messages.len() as u64
    }

    /// The number of the oldest message kept.
    pub fn base(&self) -> u64 {
        self.base
    }

    /// What the log costs.
    pub fn cost(&self) -> usize {
        self.cost
    }

    /// Adds `batch` (emptied), numbered from [`head`](Self::head).
    pub fn append(&mut self, batch: &mut Vec<Payload>) {
        if batch.is_empty() {
            return;
        }
        self.cost += batch.iter().map(cost).sum::<usize>();
        self.batches.push(self.head());
        self.messages.append(batch);
    }

    /// The messages from number `from` on.
    pub fn since(&self, from: u64) -> &[Payload] {
        &self.messages[(from - self.base) as usize..]
    }

    /// Everything from number `from` (a batch's start) on, framed for `delivery`: framed
    /// once per batch per framing, by the first delivery that needs it.
    pub fn framed(&mut self, from: u64, delivery: &Delivery) -> &[u8] {
        let head = self.head();
        let copy = &mut self.framed[delivery.framing().index()];
        for &start in &self.batches[copy.starts.len()..] {
            copy.starts.push(copy.bytes.len());
            let end = self.batches.get(copy.starts.len()).copied().unwrap_or(head);
            let messages = &self.messages[(start - self.base) as usize..(end - self.base) as usize];
            delivery.frame(messages, &mut copy.bytes);
        }
        let batch = self.batches.partition_point(|&b| b < from);
        debug_assert_eq!(self.batches.get(batch), Some(&from));
        &copy.bytes[copy.starts[batch]..]
    }

    /// Drops the messages before number `keep` (a batch's start, or the head).
    pub fn trim(&mut self, keep: u64) {
        let batches = self.batches.partition_point(|&b| b < keep);
        if batches == 0 {
            return;
        }
        let messages = (keep - self.base) as usize;
        self.cost -= self.messages[..messages].iter().map(cost).sum::<usize>();
        self.messages.drain(..messages);
        self.base = keep;
        self.batches.drain(..batches);
        for copy in &mut self.framed {
            if copy.starts.len() < batches {
                // Never framed this far: nothing of it is needed.
                copy.bytes.clear();
                copy.starts.clear();
                continue;
            }
            let cut = copy
                .starts
                .get(batches)
                .copied()
                .unwrap_or(copy.bytes.len());
            copy.bytes.drain(..cut);
            copy.starts.drain(..batches);
            for start in &mut copy.starts {
                *start -= cut;
            }
        }
    }
}
