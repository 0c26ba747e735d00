//! A hand-out under way: the room's one publisher writing to its sleeping members.
//!
//! The hand-out keeps what has been published and not yet written to every sleeper (its
//! log), and walks the sleepers round and round, writing to each, in one system call, all
//! it has not had yet. What is published meanwhile joins the log at the next checkpoint
//! (every [`stride`](Handout::stride) sleepers): the sleepers still ahead in the lap take it
//! with what they were due anyway, those behind in the next lap. So a message reaches every
//! sleeper within one lap of being published, instead of waiting for the lap under way to
//! end, and a room that falls behind still writes once per sleeper per lap.
//!
//! Each batch taken in is framed once per framing, into one buffer per framing: a sleeper's
//! due is a suffix of it, since a sleeper is always due from a batch's start.
//!
//! The members' lock is held only at checkpoints that take something in, or settle once a
//! lap is done ([`pass`]): to put
//! the new batch in awake members' queues, to add who fell asleep, and to settle those who
//! woke (what they missed goes in their queue before the new batch). A member's
//! [`Ticket`] names its entry here, so none of that looks anything up.
//!
//! [`pass`]: Handout::pass

use std::collections::HashMap;

use super::{Member, Room, cost};
use crate::session::{Delivered, Delivery, Payload};
use log::Log;

/// A member's entry in the hand-out under way, if the hand-out of that generation is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Ticket {
    /// The hand-out it belongs to; 0 for none.
    generation: u32,
    /// The entry.
    index: u32,
}

impl Ticket {
    /// No entry.
    pub const NONE: Ticket = Ticket {
        generation: 0,
        index: 0,
    };
}

/// A sleeper as the hand-out sees it.
struct Entry {
    /// The member's key.
    id: u64,
    /// Its client.
    delivery: Delivery,
    /// The number of the first message it has not had.
    from: u64,
    state: State,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// Asleep: written to as the lap comes by.
    Live,
    /// Its socket was full: it wakes owing the rest, and its queue takes what follows.
    Full,
    /// It woke before a write reached it: what it missed goes to its queue.
    Gone,
    /// Settled, or its member left.
    Dead,
}

/// See the module's documentation.
pub(super) struct Handout {
    generation: u32,
    /// Messages not yet written to every sleeper.
    log: Log,
    entries: Vec<Entry>,
    /// The next entry the walk comes to.
    cursor: usize,
    /// Live entries due a write.
    owing: usize,
    /// Full and Gone entries, settled at the next pass.
    unsettled: usize,
    /// Dead entries, cleared out when they are many.
    dead: usize,
    /// While a pass follows a clear-out: where each old entry went (`u32::MAX`: removed).
    remap: Option<Vec<u32>>,
}

impl Handout {
    /// A hand-out of `generation` (never 0), with nothing taken in yet.
    pub fn new(generation: u32) -> Handout {
        Handout {
            generation,
            log: Log::default(),
            entries: Vec::new(),
            cursor: 0,
            owing: 0,
            unsettled: 0,
            dead: 0,
            remap: None,
        }
    }

    /// The number the next message will have.
    pub fn head(&self) -> u64 {
        self.log.head()
    }

    /// What the log costs.
    pub fn cost(&self) -> usize {
        self.log.cost()
    }

    /// True when every sleeper has had everything and every woken one is settled.
    pub fn done(&self) -> bool {
        self.owing == 0 && self.unsettled == 0
    }

    /// True when no sleeper is due a write.
    pub fn caught_up(&self) -> bool {
        self.owing == 0
    }

    /// Sleepers visited between checkpoints: a sixteenth of a lap, so taking in costs the
    /// members' lock at most sixteen times a lap.
    pub fn stride(&self) -> usize {
        (self.entries.len() / 16).max(64)
    }

    fn entry(&self, ticket: Ticket, id: u64) -> Option<usize> {
        let mut index = ticket.index as usize;
        if let Some(remap) = &self.remap {
            index = *remap.get(index)? as usize;
        }
        (ticket.generation == self.generation
            && self.entries.get(index).is_some_and(|e| e.id == id))
        .then_some(index)
    }

    /// Takes in `fresh` (possibly nothing) under the members' lock: queues it for awake
    /// members, settles those who woke or filled up, and enters those who fell asleep.
    pub fn pass(
        &mut self,
        room: &Room,
        members: &mut HashMap<u64, Member>,
        fresh: &mut Vec<Payload>,
    ) {
        self.clear_out();
        let old = self.head();
        self.log.append(fresh);
        let fresh_cost: usize = self.log.since(old).iter().map(cost).sum();
        let mut now = None;
        members.retain(|id, member| {
            let owed = match member {
                Member::Awake(awake) => match self.entry(awake.owes, *id) {
                    // It woke while the hand-out had it: what it missed comes first.
                    Some(k) => {
                        awake.owes = Ticket::NONE;
                        self.settle(k)
                    }
                    None => old,
                },
                Member::Asleep(delivery, ticket) => {
                    match self.entry(*ticket, *id) {
                        None => {
                            *ticket = self.enter(*id, delivery.clone(), old);
                            return true;
                        }
                        Some(k) => {
                            *ticket = self.ticket(k);
                            let entry = &mut self.entries[k];
                            if !entry.delivery.same(delivery) {
                                // It woke and fell asleep again: write to it as it is now.
                                match entry.state {
                                    State::Full | State::Gone => self.unsettled -= 1,
                                    State::Dead => self.dead -= 1,
                                    State::Live => {}
                                }
                                entry.delivery = delivery.clone();
                                entry.state = State::Live;
                                entry.from = entry.from.max(self.log.base());
                                return true;
                            }
                            if entry.state != State::Full {
                                return true;
                            }
                            // Its socket was full: it wakes owing the rest, and what
                            // follows queues for it.
                            let from = self.settle(k);
                            *member = room.waking();
                            from
                        }
                    }
                }
                Member::Dropped => return true,
            };
            let Member::Awake(awake) = member else {
                return true; // settled members are awake
            };
            let due = self.log.since(owed);
            if due.is_empty() {
                return true;
            }
            let due_cost = if owed == old {
                fresh_cost
            } else {
                due.iter().map(cost).sum()
            };
            if room.queue(awake, due, due_cost, &mut now) {
                return true;
            }
            // Too slow. One still waking keeps its entry, for what its delivery owes.
            match awake.handover.take() {
                Some(_) => {
                    *member = Member::Dropped;
                    true
                }
                None => false,
            }
        });
        self.remap = None;
        // Full or Gone entries nobody settled: their members left.
        let head = self.head();
        self.owing = 0;
        for entry in &mut self.entries {
            match entry.state {
                State::Full | State::Gone => {
                    entry.state = State::Dead;
                    self.dead += 1;
                }
                State::Live if entry.from < head => self.owing += 1,
                _ => {}
            }
        }
        self.unsettled = 0;
    }

    /// A new entry for a sleeper due from `from`, and its ticket.
    fn enter(&mut self, id: u64, delivery: Delivery, from: u64) -> Ticket {
        self.entries.push(Entry {
            id,
            delivery,
            from,
            state: State::Live,
        });
        self.ticket(self.entries.len() - 1)
    }

    fn ticket(&self, k: usize) -> Ticket {
        Ticket {
            generation: self.generation,
            index: k as u32,
        }
    }

    /// Entry `k` is done with: the number of the first message its member is still due.
    fn settle(&mut self, k: usize) -> u64 {
        let entry = &mut self.entries[k];
        if matches!(entry.state, State::Full | State::Gone) {
            self.unsettled -= 1;
        }
        if entry.state != State::Dead {
            self.dead += 1;
        }
        entry.state = State::Dead;
        entry.from
    }

    /// Visits up to `stride` sleepers from where the walk left off, writing to each what it
    /// is due; returns how many messages it wrote in all, and their payload bytes.
    pub fn walk(&mut self, stride: usize) -> (u64, u64) {
        let head = self.head();
        let len = self.entries.len();
        let Handout {
            log,
            entries,
            cursor,
            owing,
            unsettled,
            ..
        } = self;
        let mut wrote = (0, 0);
        // What is due from one message on, summed once per walk: sleepers are mostly due
        // from the same one.
        let mut summed: Option<(u64, u64)> = None;
        for _ in 0..stride {
            if *owing == 0 {
                break;
            }
            let entry = &mut entries[*cursor];
            *cursor = (*cursor + 1) % len;
            if entry.state != State::Live || entry.from == head {
                continue;
            }
            let due = entry.from;
            let delivered = entry
                .delivery
                .deliver(log.framed(entry.from, &entry.delivery));
            if delivered != Delivered::Gone {
                let bytes = match summed {
                    Some((from, bytes)) if from == due => bytes,
                    _ => {
                        let bytes = log.since(due).iter().map(|m| m.len() as u64).sum();
                        summed = Some((due, bytes));
                        bytes
                    }
                };
                wrote = (wrote.0 + (head - due), wrote.1 + bytes);
            }
            match delivered {
                Delivered::All => entry.from = head,
                Delivered::Part => {
                    entry.from = head;
                    entry.state = State::Full;
                    *unsettled += 1;
                }
                Delivered::Gone => {
                    entry.state = State::Gone;
                    *unsettled += 1;
                }
            }
            *owing -= 1;
        }
        wrote
    }

    /// Drops from the log what every entry has had, and dead entries once they are half.
    /// Called where no member holds a ticket that the change would confuse: at the start of
    /// a pass, which then rewrites every ticket it meets.
    pub fn trim(&mut self) {
        let keep = self
            .entries
            .iter()
            .filter(|e| e.state != State::Dead)
            .map(|e| e.from)
            .min()
            .unwrap_or(self.head());
        self.log.trim(keep);
    }

    /// Removes dead entries once they are half of all. The pass that calls this first
    /// rewrites the ticket of every member that still has an entry, through `remap`.
    fn clear_out(&mut self) {
        self.trim();
        if self.dead < 64 || self.dead * 2 < self.entries.len() {
            return;
        }
        let mut remap = Vec::with_capacity(self.entries.len());
        let mut kept = 0u32;
        let mut cursor = None;
        for (i, entry) in self.entries.iter().enumerate() {
            if i >= self.cursor && cursor.is_none() && entry.state != State::Dead {
                cursor = Some(kept as usize);
            }
            remap.push(if entry.state == State::Dead {
                u32::MAX
            } else {
                kept += 1;
                kept - 1
            });
        }
        self.entries.retain(|e| e.state != State::Dead);
        self.cursor = cursor.unwrap_or(0);
        self.dead = 0;
        self.remap = Some(remap);
    }
}

mod log;

/// The generation after `g`: never 0, which means none.
pub(super) fn next_generation(g: u32) -> u32 {
    g.wrapping_add(1).max(1)
}
