//! What each connection holds, pinned: a refactor that makes a sleeping or an awake
//! connection larger fails here, not in a benchmark weeks later. The bounds are today's
//! sizes with a little room; lower them when a change shrinks what a connection holds.

use std::mem::size_of;

use bytes::Bytes;
use tokio::net::{TcpListener, TcpStream};

use super::asleep::Bed;
use super::conn::Conn;
use super::hibernate::{Client, Sleeper};
use super::message_session::MessageSession;
use super::{Endpoint, Start, Then, resume, serve};
use crate::backend::Handler;
use crate::config::{Config, Limits};
use crate::tally::{Counted, Tally};

/// A sleeping connection: its entry among the sleepers, and its socket's bed.
#[test]
fn a_sleeping_connection_holds_under_a_quarter_kibibyte() {
    let sleeper = size_of::<Sleeper<Counted<Handler>>>();
    let bed = size_of::<Bed>();
    println!("sleeper {sleeper} B, bed {bed} B");
    // 72 B of it are the entry itself; the rest is what the client's session did so far
    // (its tally: the access line and its route's counts, kept across its sleeps).
    assert!(sleeper <= 192, "a sleeper entry grew to {sleeper} B");
    assert!(bed <= 32, "a sleeper's bed grew to {bed} B");
}

fn limits() -> Limits {
    use clap::Parser;
    let args = crate::args::Args::try_parse_from(["flashgate"]).unwrap();
    Config::from_args(&args).unwrap().limits
}

/// An awake connection: its task (the session, its state while served) and its session.
#[tokio::test]
async fn an_awake_connection_holds_its_task_and_session_once() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let _client = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (tcp, peer) = listener.accept().await.unwrap();
    let (endpoint, _poll) = Endpoint::<Counted<Handler>>::new(
        limits(),
        Default::default(),
        Default::default(),
        Default::default(),
    )
    .unwrap();
    let permit = crate::slots::Slots::new(1, Default::default())
        .try_acquire()
        .unwrap();
    let client = Client {
        peer,
        transport: crate::session::Transport::Rfc6455,
        guard: permit,
    };
    let start = Start {
        conn: Conn::new(crate::stream::Stream::plain(tcp), Bytes::new()),
        client,
        handler: Counted::new(
            Handler::Solo(crate::backend::Solo::Echo),
            Tally::new(Default::default(), peer, "rfc6455"),
        ),
        then: Then::Serve,
    };
    let task = serve(endpoint.clone(), Box::new(start));
    let (task, session, conn) = (
        size_of_val(&task),
        size_of::<MessageSession>(),
        size_of::<Conn>(),
    );
    println!("serve {task} B, session {session} B, conn {conn} B");
    assert!(task <= 1536, "a connection's task grew to {task} B");
    assert!(session <= 576, "a session grew to {session} B");
    assert!(conn <= 144, "a connection grew to {conn} B");
    let _ = resume::<Counted<Handler>>;
}
