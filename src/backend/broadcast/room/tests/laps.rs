//! The hand-out's laps: what is published during one joins it, and members that wake,
//! sleep again or leave meanwhile each get everything once, in order.

use super::*;

/// Run before a write, with its number.
type Hook = Box<dyn FnMut(usize) + Send>;

/// Many sleepers in one table, each with its own bytes; `hook` runs on the hand-out's
/// thread before the n-th write (counting from 1), as if the world moved meanwhile.
struct Table {
    got: Vec<Mutex<Vec<u8>>>,
    gone: Vec<AtomicBool>,
    writes: AtomicUsize,
    hook: Mutex<Option<Hook>>,
}

impl Table {
    fn new(n: usize) -> Arc<Table> {
        Arc::new(Table {
            got: (0..n).map(|_| Mutex::default()).collect(),
            gone: (0..n).map(|_| AtomicBool::new(false)).collect(),
            writes: AtomicUsize::new(0),
            hook: Mutex::default(),
        })
    }

    fn delivery(this: &Arc<Table>, key: usize) -> Delivery {
        Delivery::new(this.clone(), key, Framing::Rfc6455)
    }
}

impl Sleepers for Table {
    fn frame(&self, _: Framing, messages: &[Payload], out: &mut Vec<u8>) {
        for m in messages {
            if let Payload::Text(t) = m {
                out.extend_from_slice(t.as_bytes());
                out.push(b'|');
            }
        }
    }
    fn deliver(&self, key: usize, bytes: &[u8]) -> Delivered {
        let n = self.writes.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(hook) = lock(&self.hook).as_mut() {
            hook(n);
        }
        if self.gone[key].load(Ordering::Relaxed) {
            return Delivered::Gone;
        }
        lock(&self.got[key]).extend_from_slice(bytes);
        Delivered::All
    }
}

/// `n` members of one room, all asleep in `table`.
fn sleepers(rooms: &Rooms, table: &Arc<Table>, n: usize) -> Vec<Membership> {
    (0..n)
        .map(|key| {
            let mut member = rooms.enter("/chat");
            assert!(member.sleep(Table::delivery(table, key)).is_ok());
            member
        })
        .collect()
}

/// What `member` (key `key` in `table`) has had: written while asleep, then queued.
fn had(table: &Table, key: usize, member: &mut Membership) -> String {
    let mut out = String::from_utf8(lock(&table.got[key]).clone()).unwrap();
    if member.inbox.is_some() {
        for message in drain(member) {
            if let Payload::Text(t) = message {
                out.push_str(&t);
                out.push('|');
            }
        }
    }
    out
}

#[test]
fn a_publish_during_a_lap_goes_out_with_what_the_sleepers_ahead_were_due() {
    let rooms = Rooms::new(BOUND);
    let table = Table::new(300);
    let mut members = sleepers(&rooms, &table, 300);
    let room = members[0].room.clone();
    let later = room.clone();
    // At the tenth write, "2" is published: the hand-out is busy, so it waits for the next
    // checkpoint (after 64 sleepers), and the sleepers from there on take it with "1".
    *lock(&table.hook) = Some(Box::new(move |n| {
        if n == 10 {
            later.publish(&[text("2")]);
        }
    }));
    room.publish(&[text("1")]);
    for (key, member) in members.iter_mut().enumerate() {
        assert_eq!(had(&table, key, member), "1|2|", "sleeper {key}");
    }
    let writes = table.writes.load(Ordering::Relaxed);
    assert!(
        writes < 2 * 300 - 100,
        "{writes} writes: most sleepers took both in one"
    );
}

#[test]
fn members_that_wake_sleep_again_or_leave_during_a_lap_each_get_everything_once() {
    let rooms = Rooms::new(BOUND);
    let table = Table::new(300);
    let members = Arc::new(Mutex::new(
        sleepers(&rooms, &table, 300)
            .into_iter()
            .map(Some)
            .collect::<Vec<_>>(),
    ));
    let room = lock(&members)[0].as_ref().unwrap().room.clone();
    let (hook_members, hook_table, hook_room) = (members.clone(), table.clone(), room.clone());
    *lock(&table.hook) = Some(Box::new(move |n| {
        let mut members = lock(&hook_members);
        match n {
            // Two thirds wake before the lap reaches them (their sockets leave the table),
            // a few leave, and "2" is published.
            5 => {
                for key in 100..300 {
                    let member = members[key].as_mut().unwrap();
                    assert_eq!(member.wake(), Woken::Resumed);
                    hook_table.gone[key].store(true, Ordering::Relaxed);
                }
                for member in &mut members[290..] {
                    *member = None;
                }
                hook_room.publish(&[text("2")]);
            }
            // Later in the lap, once the woken are settled: "3" is published, and the pass
            // that takes it in first clears out their entries.
            70 => {
                hook_room.publish(&[text("3")]);
            }
            _ => {}
        }
    }));
    room.publish(&[text("1")]);
    *lock(&table.hook) = None;
    room.publish(&[text("4")]);
    let mut members = lock(&members);
    for (key, member) in members.iter_mut().enumerate() {
        let Some(member) = member else { continue };
        assert_eq!(had(&table, key, member), "1|2|3|4|", "member {key}");
    }
}

#[test]
fn a_sleeper_that_wakes_and_sleeps_again_before_the_lap_reaches_it_gets_it_at_its_new_place() {
    let rooms = Rooms::new(BOUND);
    let table = Table::new(200);
    let mut members = sleepers(&rooms, &table, 100);
    let room = members[0].room.clone();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let (back, woke) = std::sync::mpsc::channel::<()>();
    let rx = Mutex::new(rx);
    *lock(&table.hook) = Some(Box::new(move |n| {
        if n == 1 {
            // Hold the lap at its first write while members 50..100 wake and sleep again.
            back.send(()).unwrap();
            lock(&rx).recv().unwrap();
        }
    }));
    let publisher = {
        let room = room.clone();
        std::thread::spawn(move || room.publish(&[text("1")]))
    };
    woke.recv().unwrap();
    for (key, member) in members.iter_mut().enumerate().skip(50) {
        assert_eq!(member.wake(), Woken::Resumed);
        table.gone[key].store(true, Ordering::Relaxed);
        assert!(member.sleep(Table::delivery(&table, key + 100)).is_ok());
    }
    room.publish(&[text("2")]);
    tx.send(()).unwrap();
    publisher.join().unwrap();
    for (key, member) in members.iter_mut().enumerate() {
        let place = if key >= 50 { key + 100 } else { key };
        assert_eq!(had(&table, place, member), "1|2|", "member {key}");
    }
}

#[test]
fn a_long_hand_out_goes_on_off_the_publishers_thread() {
    let rooms = Rooms::new(BOUND);
    let table = Table::new(1000);
    let mut members = sleepers(&rooms, &table, 1000);
    let room = members[0].room.clone();
    let (reached, at) = std::sync::mpsc::channel::<()>();
    let (release, held) = std::sync::mpsc::channel::<()>();
    let held = Mutex::new(held);
    // Write 200 is past the first stride: it is held until the test lets it go.
    *lock(&table.hook) = Some(Box::new(move |n| {
        if n == 200 {
            reached.send(()).unwrap();
            let _ = lock(&held).recv_timeout(Duration::from_secs(10));
        }
    }));
    let runtime = Arc::new(
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap(),
    );
    let publisher = {
        let (room, runtime) = (room.clone(), runtime.clone());
        std::thread::spawn(move || runtime.block_on(async { room.publish(&[text("1")]) }))
    };
    at.recv_timeout(Duration::from_secs(10))
        .expect("the hand-out reached write 200");
    let waited = std::time::Instant::now();
    while !publisher.is_finished() && waited.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let returned = publisher.is_finished();
    // Meanwhile the publisher's thread publishes again: it joins the hand-out under way.
    if returned {
        runtime.block_on(async { room.publish(&[text("2")]) });
    }
    release.send(()).unwrap();
    publisher.join().unwrap();
    assert!(returned, "the publisher waited for the whole hand-out");
    let waited = std::time::Instant::now();
    while lock(&room.outbox).busy && waited.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(5));
    }
    for (key, member) in members.iter_mut().enumerate() {
        assert_eq!(had(&table, key, member), "1|2|", "sleeper {key}");
    }
}
