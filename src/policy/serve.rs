//! Answering policy requests on a connection: reading the first bytes with a deadline, and
//! replying. Used by both the master policy listener and the main listener.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::{Instant, timeout, timeout_at};

use super::sniff::{MAX_SNIFF, Sniff, sniff};

/// The first bytes of a connection and what they are.
pub struct FirstBytes {
    /// The decision.
    pub kind: Sniff,
    /// The bytes read to reach it; on the main port they are replayed to the HTTP parser.
    pub buf: [u8; MAX_SNIFF],
    /// How many bytes of `buf` were read.
    pub len: usize,
}

/// Reads until [`sniff`] decides, at most [`MAX_SNIFF`] bytes, or fails with `TimedOut`
/// when `limit` passes first. A peer that closes before sending anything gives `Sniff::Other`
/// with no bytes.
pub async fn read_first_bytes<S: AsyncRead + Unpin>(
    stream: &mut S,
    limit: Duration,
) -> io::Result<FirstBytes> {
    let deadline = Instant::now() + limit;
    let mut first = FirstBytes {
        kind: Sniff::Incomplete,
        buf: [0; MAX_SNIFF],
        len: 0,
    };
    while first.kind == Sniff::Incomplete {
        let read = timeout_at(deadline, stream.read(&mut first.buf[first.len..]))
            .await
            .map_err(|_| {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    "no complete request before the read timeout",
                )
            })??;
        first.len += read;
        first.kind = sniff(&first.buf[..first.len], read == 0);
    }
    Ok(first)
}

/// Sends the policy, then ends the connection without resetting it (see [`finish`]).
/// Everything is bounded by `limit`.
pub async fn reply<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    policy: &[u8],
    limit: Duration,
) -> io::Result<()> {
    timeout(limit, async {
        stream.write_all(policy).await?;
        finish(stream).await
    })
    .await
    .unwrap_or(Ok(()))
}

/// Ends a connection whose reply is sent, without resetting it: the write side is shut and
/// anything the client still sends (a typed newline, say) is read and dropped until it
/// closes, so the reply is never lost to a TCP reset. Unbounded in time: callers add the
/// deadline.
pub async fn finish<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S) -> io::Result<()> {
    stream.shutdown().await?;
    drain(stream).await
}

/// Reads and drops what the client sends until it closes, at most [`DRAIN_LIMIT`] bytes.
pub async fn drain<S: AsyncRead + Unpin>(stream: &mut S) -> io::Result<()> {
    let mut sink = [0u8; 256];
    let mut left: usize = DRAIN_LIMIT;
    while left > 0 {
        match stream.read(&mut sink).await? {
            0 => break,
            n => left = left.saturating_sub(n),
        }
    }
    Ok(())
}

/// The most a client may send after its request before the connection is simply closed.
pub const DRAIN_LIMIT: usize = 64 * 1024;
