//! A broadcast member that stops reading: closed as too slow, its memory bounded. A file of
//! its own, so that the process's memory is this test's alone.

mod common;

use common::*;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// The process's resident memory, in bytes.
fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_stops_reading_is_closed_with_1008_and_holds_bounded_memory() {
    // 1 MiB of backlog: closed past 4 MiB at the latest.
    let gw = TestGateway::start(&["--send-backlog", "1048576"]).await;
    let mut stalled = gw.ws("/chat?room=flood").await;
    let mut publisher = gw.ws("/chat?room=flood").await;
    let before = rss();
    // 64 MiB through the room; the stalled member reads nothing meanwhile.
    const COUNT: usize = 1024;
    flood_reading_own_copies(&mut publisher, COUNT, &"m".repeat(64 * 1024)).await;
    let grown = rss().saturating_sub(before);
    assert!(
        grown < 32 << 20,
        "memory grew by {} MiB for a member that reads nothing",
        grown >> 20
    );
    // What the stalled member is sent is whole and in order, then the close says why.
    let (received, frame) = numbered_until_close(&mut stalled, |_| {}).await;
    assert!(received < COUNT, "the stalled member was not closed");
    assert_eq!(frame.code, CloseCode::Policy);
}
