//! The room without sockets: members' queues read directly, sleepers as in-memory
//! deliveries.

use super::*;
use crate::session::{Delivered, Framing, Sleepers, Woken};
use std::sync::atomic::AtomicBool;

/// A sleeping member's delivery: takes up to `room` bytes, then is full.
struct Sink {
    framing: Framing,
    room: AtomicUsize,
    got: Mutex<Vec<u8>>,
    framed: AtomicUsize,
    owed: Mutex<Option<Vec<u8>>>,
    /// The client has left the table (it woke).
    gone: AtomicBool,
}

impl Sink {
    fn new(framing: Framing, room: usize) -> Arc<Sink> {
        Arc::new(Sink {
            framing,
            room: AtomicUsize::new(room),
            got: Mutex::default(),
            framed: AtomicUsize::new(0),
            owed: Mutex::default(),
            gone: AtomicBool::new(false),
        })
    }
}

impl Sink {
    /// The room's handle to this sleeper.
    fn delivery(this: &Arc<Sink>) -> Delivery {
        Delivery::new(this.clone(), 0, this.framing)
    }
}

impl Sleepers for Sink {
    fn frame(&self, _: Framing, messages: &[Payload], out: &mut Vec<u8>) {
        self.framed.fetch_add(1, Ordering::Relaxed);
        for m in messages {
            if let Payload::Text(t) = m {
                out.extend_from_slice(t.as_bytes());
                out.push(b'|');
            }
        }
    }
    fn deliver(&self, _: usize, bytes: &[u8]) -> Delivered {
        if self.gone.load(Ordering::Relaxed) {
            return Delivered::Gone;
        }
        let n = bytes.len().min(self.room.load(Ordering::Relaxed));
        self.room.fetch_sub(n, Ordering::Relaxed);
        lock(&self.got).extend_from_slice(&bytes[..n]);
        if n == bytes.len() {
            return Delivered::All;
        }
        let mut slot = lock(&self.owed);
        assert!(slot.is_none(), "woken twice");
        *slot = Some(bytes[n..].to_vec());
        Delivered::Part
    }
}

const BOUND: Bound = Bound {
    backlog: 1000,
    grace: Duration::from_millis(50),
};

fn text(s: &str) -> Payload {
    Payload::Text(s.to_string().into())
}

/// What is queued for an awake member, taken as its task would.
fn drain(member: &mut Membership) -> Vec<Payload> {
    let inbox = member.inbox.as_mut().expect("awake");
    let mut out = Vec::new();
    while let Ok(message) = inbox.queue.try_recv() {
        inbox.took(&message);
        out.push(message);
    }
    out
}

fn kicked(member: &mut Membership) -> bool {
    let inbox = member.inbox.as_mut().expect("awake");
    matches!(
        inbox.kicked.try_recv(),
        Err(oneshot::error::TryRecvError::Closed)
    )
}

#[test]
fn every_member_gets_every_message_in_one_order() {
    let rooms = Rooms::new(BOUND);
    let mut members: Vec<_> = (0..3).map(|_| rooms.enter("/chat")).collect();
    let room = members[0].room.clone();
    room.publish(&[text("a"), text("b")]);
    room.publish(&[text("c")]);
    for member in &mut members {
        assert_eq!(drain(member), [text("a"), text("b"), text("c")]);
    }
    let other = rooms.enter("/chat?room=2");
    assert!(!Arc::ptr_eq(&other.room, &room), "rooms are apart by key");
}

#[test]
fn the_last_member_to_leave_takes_the_room_with_it() {
    let rooms = Rooms::new(BOUND);
    let first = rooms.enter("/chat");
    let second = rooms.enter("/chat");
    assert_eq!((rooms.len(), first.room.len()), (1, 2));
    drop(first);
    assert_eq!(rooms.len(), 1);
    drop(second);
    assert_eq!(rooms.len(), 0);
    // A new member makes a new room.
    let again = rooms.enter("/chat");
    assert_eq!((rooms.len(), again.room.len()), (1, 1));
}

#[test]
fn a_publish_is_framed_once_per_framing_for_all_sleepers() {
    let rooms = Rooms::new(BOUND);
    let mut sinks = Vec::new();
    let mut members = Vec::new();
    for i in 0..5 {
        let framing = [Framing::Rfc6455, Framing::Rfc6455Text][i % 2];
        let sink = Sink::new(framing, usize::MAX);
        let mut member = rooms.enter("/chat");
        assert!(member.sleep(Sink::delivery(&sink)).is_ok());
        assert!(member.inbox.is_none(), "a sleeper holds no queue");
        sinks.push(sink);
        members.push(member);
    }
    members[0].room.publish(&[text("hi"), text("there")]);
    let framed: usize = sinks.iter().map(|s| s.framed.load(Ordering::Relaxed)).sum();
    assert_eq!(framed, 2, "once per framing");
    for sink in &sinks {
        assert_eq!(&*lock(&sink.got), b"hi|there|");
        assert!(lock(&sink.owed).is_none());
    }
}

#[test]
fn a_full_sleeper_wakes_owing_the_rest_and_what_follows_queues_for_it() {
    let rooms = Rooms::new(BOUND);
    let sink = Sink::new(Framing::Rfc6455, 4);
    let mut member = rooms.enter("/chat");
    assert!(member.sleep(Sink::delivery(&sink)).is_ok());
    let room = member.room.clone();
    room.publish(&[text("hello")]);
    assert_eq!(&*lock(&sink.got), b"hell");
    assert_eq!(lock(&sink.owed).as_deref(), Some(&b"o|"[..]));
    room.publish(&[text("next")]);
    assert_eq!(
        lock(&sink.got).len(),
        4,
        "nothing more through the delivery"
    );
    // Its connection wakes: it takes the queue the publish left for it.
    assert_eq!(member.wake(), Woken::Resumed);
    assert_eq!(drain(&mut member), [text("next")]);
    // The room let go of the delivery.
    assert_eq!(Arc::strong_count(&sink), 1);
}

#[test]
fn a_woken_sleeper_lets_go_of_its_delivery_and_gets_a_queue() {
    let rooms = Rooms::new(BOUND);
    let sink = Sink::new(Framing::Rfc6455, usize::MAX);
    let mut member = rooms.enter("/chat");
    assert!(member.sleep(Sink::delivery(&sink)).is_ok());
    assert_eq!(Arc::strong_count(&sink), 2);
    assert_eq!(member.wake(), Woken::Resumed);
    assert_eq!(Arc::strong_count(&sink), 1);
    member.room.clone().publish(&[text("awake")]);
    assert_eq!(drain(&mut member), [text("awake")]);
}

#[test]
fn a_member_with_something_queued_stays_awake() {
    let rooms = Rooms::new(BOUND);
    let mut member = rooms.enter("/chat");
    member.room.clone().publish(&[text("pending")]);
    let sink = Sink::new(Framing::Rfc6455, usize::MAX);
    assert!(member.sleep(Sink::delivery(&sink)).is_err());
    assert_eq!(drain(&mut member), [text("pending")]);
}

#[test]
fn a_member_over_the_bound_that_takes_nothing_goes_after_the_grace_period() {
    let rooms = Rooms::new(BOUND);
    let mut slow = rooms.enter("/chat");
    let room = slow.room.clone();
    let big = text(&"x".repeat(600));
    room.publish(&[big.clone(), big.clone()]);
    assert!(
        !kicked(&mut slow),
        "over the bound, but within the grace period"
    );
    std::thread::sleep(BOUND.grace + Duration::from_millis(10));
    room.publish(&[text("more")]);
    assert!(kicked(&mut slow));
    assert_eq!(room.len(), 0);
}

#[test]
fn a_member_over_the_bound_that_keeps_taking_stays() {
    let rooms = Rooms::new(BOUND);
    let mut reader = rooms.enter("/chat");
    let room = reader.room.clone();
    let burst: Vec<Payload> = (0..10).map(|_| text(&"x".repeat(200))).collect();
    room.publish(&burst);
    // Slowly, but it takes something between publishes: far past the grace period in all,
    // and still over the bound, it keeps its place.
    for _ in 0..8 {
        std::thread::sleep(BOUND.grace / 2 + Duration::from_millis(5));
        let inbox = reader.inbox.as_mut().unwrap();
        let message = inbox.queue.try_recv().unwrap();
        inbox.took(&message);
        room.publish(&[text("tick")]);
        assert!(!kicked(&mut reader));
    }
    let backlog = reader
        .inbox
        .as_ref()
        .unwrap()
        .backlog
        .bytes
        .load(Ordering::Relaxed);
    assert!(backlog > BOUND.backlog, "still over: {backlog}");
    assert_eq!(room.len(), 1);
}

#[test]
fn past_four_times_the_bound_a_member_goes_at_once() {
    let rooms = Rooms::new(BOUND);
    let mut flooded = rooms.enter("/chat");
    let room = flooded.room.clone();
    room.publish(&[text(&"x".repeat(BOUND.hard()))]);
    assert!(kicked(&mut flooded));
}

#[test]
fn a_member_dropped_while_waking_is_told_it_was_too_slow() {
    let rooms = Rooms::new(BOUND);
    let sink = Sink::new(Framing::Rfc6455, 0);
    let mut member = rooms.enter("/chat");
    assert!(member.sleep(Sink::delivery(&sink)).is_ok());
    let room = member.room.clone();
    // Full at once: it wakes owing the frame, then falls far behind before its task runs.
    room.publish(&[text("first")]);
    room.publish(&[text(&"x".repeat(BOUND.hard()))]);
    assert_eq!(room.len(), 1, "kept while it wakes, for what it owes");
    assert_eq!(member.wake(), Woken::TooSlow);
    assert_eq!(lock(&sink.owed).as_deref(), Some(&b"first|"[..]));
    assert_eq!(room.len(), 0);
}

#[test]
fn members_stay_apart_when_they_leave_and_enter_at_once() {
    let rooms = Rooms::new(BOUND);
    let stop = Arc::new(AtomicBool::new(false));
    let churn = {
        let (rooms, stop) = (rooms.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                drop(rooms.enter("/busy"));
            }
        })
    };
    // Every member that entered is in the one live room, never in a forgotten one.
    for _ in 0..2000 {
        let member = rooms.enter("/busy");
        let live = lock(&rooms.inner.rooms).get("/busy").cloned();
        assert!(live.is_some_and(|live| Arc::ptr_eq(&live, &member.room)));
    }
    stop.store(true, Ordering::Relaxed);
    churn.join().unwrap();
}

/// A sleeper whose first write waits until the test lets it go.
struct Gated {
    inner: Arc<Sink>,
    gate: Mutex<Option<std::sync::mpsc::Receiver<()>>>,
    entered: std::sync::mpsc::SyncSender<()>,
    offers: AtomicUsize,
}

impl Gated {
    /// A gated sleeper; the sender lets its first write go on, the receiver says when that
    /// write has begun.
    fn new() -> (
        Arc<Gated>,
        std::sync::mpsc::Sender<()>,
        std::sync::mpsc::Receiver<()>,
    ) {
        let (release, gate) = std::sync::mpsc::channel();
        let (entered, writing) = std::sync::mpsc::sync_channel(1);
        let gated = Arc::new(Gated {
            inner: Sink::new(Framing::Rfc6455, usize::MAX),
            gate: Mutex::new(Some(gate)),
            entered,
            offers: AtomicUsize::new(0),
        });
        (gated, release, writing)
    }
}

impl Sleepers for Gated {
    fn frame(&self, framing: Framing, messages: &[Payload], out: &mut Vec<u8>) {
        self.inner.frame(framing, messages, out)
    }
    fn deliver(&self, key: usize, bytes: &[u8]) -> Delivered {
        self.offers.fetch_add(1, Ordering::Relaxed);
        if let Some(gate) = lock(&self.gate).take() {
            self.entered.send(()).unwrap();
            gate.recv().unwrap();
        }
        self.inner.deliver(key, bytes)
    }
}

#[test]
fn a_slow_write_to_a_sleeper_holds_up_no_one_and_what_waits_goes_out_together() {
    let rooms = Rooms::new(BOUND);
    let (gated, release, writing) = Gated::new();
    let mut sleeper = rooms.enter("/chat");
    let delivery = Delivery::new(gated.clone(), 0, Framing::Rfc6455);
    assert!(sleeper.sleep(delivery).is_ok());
    let mut awake = rooms.enter("/chat");
    let room = sleeper.room.clone();
    let first = {
        let room = room.clone();
        std::thread::spawn(move || room.publish(&[text("1")]))
    };
    writing.recv().unwrap();
    // The first publish is writing to the sleeper: the room is not locked meanwhile, and
    // later publishes join the outbox and return at once.
    assert_eq!(room.len(), 2);
    room.publish(&[text("2")]);
    room.publish(&[text("3")]);
    assert_eq!(
        drain(&mut awake),
        [text("1")],
        "handed out in order, after 1"
    );
    release.send(()).unwrap();
    first.join().unwrap();
    assert_eq!(drain(&mut awake), [text("2"), text("3")]);
    assert_eq!(&*lock(&gated.inner.got), b"1|2|3|");
    // 2 and 3 went to the sleeper framed together, in one write.
    assert_eq!(gated.offers.load(Ordering::Relaxed), 2);
    assert_eq!(gated.inner.framed.load(Ordering::Relaxed), 2);
}

#[test]
fn a_sleeping_members_place_in_its_room_is_small() {
    // Most members of a large room sleep: their entry is their delivery (a pointer to their
    // transport's table and their key in it) and their ticket for the hand-out.
    let member = std::mem::size_of::<Member>();
    let handler = std::mem::size_of::<crate::backend::Handler>();
    assert!(member <= 40, "a room entry grew to {member} B");
    assert!(handler <= 24, "a member's handler grew to {handler} B");
}

#[test]
fn a_sleeper_that_wakes_while_a_publish_is_on_its_way_gets_it_in_its_queue() {
    let rooms = Rooms::new(BOUND);
    let (gated, release, writing) = Gated::new();
    let mut member = rooms.enter("/chat");
    assert!(
        member
            .sleep(Delivery::new(gated.clone(), 0, Framing::Rfc6455))
            .is_ok()
    );
    let room = member.room.clone();
    let publish = std::thread::spawn(move || room.publish(&[text("on its way")]));
    writing.recv().unwrap();
    // The member wakes before the write: its room takes it back, its socket leaves the table.
    assert_eq!(member.wake(), Woken::Resumed);
    gated.inner.gone.store(true, Ordering::Relaxed);
    release.send(()).unwrap();
    publish.join().unwrap();
    // Not written, not lost: queued for it, first.
    assert!(lock(&gated.inner.got).is_empty());
    member.room.clone().publish(&[text("next")]);
    assert_eq!(drain(&mut member), [text("on its way"), text("next")]);
}

mod laps;
