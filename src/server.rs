//! Accepting connections: the main listener (sniffed: Flash policy request or HTTP) and the
//! master policy listener, with a connection limit and graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};

use crate::gateway::Gateway;
use crate::handoff::{Handing, Handoff, Resume};
use crate::policy::serve::{read_first_bytes, reply};
use crate::policy::sniff::{MAX_SNIFF, Sniff};
use crate::prefixed::Prefixed;
use crate::shutdown::ConnGuard;
use crate::stream::{Secure, Stream};
use crate::tls::server::is_client_hello;

/// Accepts on the main `listener` until shutdown.
pub async fn accept_loop(listener: TcpListener, gw: Arc<Gateway>) {
    let mut stop = gw.shutdown.signal();
    loop {
        // Accept first, then wait for a slot: a loop waiting in accept() must not hold a
        // slot, or an idle listener (the policy port) keeps one that the main port needs.
        // While the gateway is full, this loop holds the one connection it accepted and the
        // others wait in the listen queue.
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: back off, never stop accepting.
                    tracing::warn!(%error, "accept failed");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(100)) => continue,
                        _ = &mut stop => break,
                    }
                }
            },
            _ = &mut stop => break,
        };
        let guard = tokio::select! {
            guard = gw.slots.acquire() => guard,
            _ = &mut stop => break,
        };
        let _ = stream.set_nodelay(true);
        let gw = gw.clone();
        gw.tracker
            .clone()
            .spawn(serve_main(stream, peer, gw, guard));
    }
}

/// `future`'s output, or `None` when the gateway stops first: a connection that has not said
/// what it is yet (a browser's spare connection, say) must not hold up shutdown.
async fn until_stopped<T>(gw: &Gateway, future: impl std::future::Future<Output = T>) -> Option<T> {
    tokio::select! {
        output = future => Some(output),
        _ = gw.shutdown.signal() => None,
    }
}

/// The master policy port: a policy request gets the master policy; anything else is closed.
/// [`crate::policy::listener`] answers most requests itself and sends the others here.
pub async fn serve_policy<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    peer: SocketAddr,
    gw: Arc<Gateway>,
    _guard: ConnGuard,
) {
    let limit = gw.config.limits.read_timeout;
    let Some(first) = until_stopped(&gw, read_first_bytes(&mut stream, limit)).await else {
        return;
    };
    match first {
        Ok(first) if first.kind == Sniff::Policy => {
            tracing::info!(%peer, listener = "policy", "policy served");
            gw.metrics.policy("policy", "served");
            let _ = reply(&mut stream, &gw.policies.master, limit).await;
        }
        Ok(_) => {
            tracing::info!(%peer, listener = "policy", "not a policy request: closed");
            gw.metrics.policy("policy", "not_policy");
        }
        Err(error) => {
            tracing::info!(%peer, listener = "policy", %error, "closed");
            gw.metrics.policy("policy", "failed");
        }
    }
}

/// The main port: sniff, then either the inline policy or HTTP (and WebSocket upgrades).
async fn serve_main(mut stream: TcpStream, peer: SocketAddr, gw: Arc<Gateway>, guard: ConnGuard) {
    let limits = gw.config.limits;
    let first = match until_stopped(&gw, read_first_bytes(&mut stream, limits.read_timeout)).await {
        None => return,
        Some(Ok(first)) => first,
        Some(Err(error)) => {
            tracing::debug!(%peer, %error, "closed before a request");
            return;
        }
    };
    match first.kind {
        Sniff::Policy => {
            tracing::info!(%peer, listener = "main", "policy served");
            gw.metrics.policy("main", "served");
            let _ = reply(&mut stream, &gw.policies.inline, limits.read_timeout).await;
            return;
        }
        Sniff::Other if first.len == 0 => return,
        Sniff::Other | Sniff::Incomplete => {}
    }

    let first = &first.buf[..first.len];
    // A client reaching us directly counts against its address from here; one behind a
    // trusted proxy, once its request names it.
    if !gw.slots.per_ip().trusts(peer.ip())
        && let Err(refused) = guard.count_against(peer.ip())
    {
        tracing::debug!(%peer, "connection refused: {}", refused.message());
        if !is_client_hello(first) {
            let answer = too_many(&refused);
            let _ = reply(&mut stream, answer.as_bytes(), limits.read_timeout).await;
        }
        return;
    }
    let stream = match &gw.tls {
        Some(tls) if is_client_hello(first) => {
            let started = std::time::Instant::now();
            let shaken = until_stopped(&gw, tls.accept(stream, first, limits.handshake_timeout));
            match shaken.await {
                None => return,
                Some(Ok(stream)) => {
                    gw.metrics.tls_handshake("ok", started.elapsed());
                    Prefixed::new(stream, &[])
                }
                Some(Err(error)) => {
                    let outcome = match error.kind() {
                        std::io::ErrorKind::TimedOut => "timeout",
                        _ => "failed",
                    };
                    gw.metrics.tls_handshake(outcome, started.elapsed());
                    tracing::info!(%peer, %error, "TLS handshake failed");
                    return;
                }
            }
        }
        _ if gw.config.tls_only => {
            tracing::info!(%peer, "plain HTTP refused: this port speaks TLS only (--tls-only)");
            let _ = reply(&mut stream, TLS_ONLY, limits.read_timeout).await;
            return;
        }
        _ => Prefixed::new(Stream::plain(stream), first),
    };
    serve_http(stream, peer, gw, guard, true).await;
}

/// The answer to a request over a limit per client address: 429, and when to try again.
pub fn too_many(refused: &crate::per_ip::Refused) -> String {
    let body = refused.message();
    format!(
        "HTTP/1.1 429 Too Many Requests\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Retry-After: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}\n",
        refused.retry_after,
        body.len() + 1
    )
}

/// The answer to plain HTTP on a TLS-only port.
const TLS_ONLY: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n\
Content-Length: 57\r\nConnection: close\r\n\r\n\
This port speaks TLS only: use https:// and wss:// here.\n";

/// HTTP (and WebSocket upgrades) on a connection, until it closes or is handed off. The
/// first SockJS session opened on it may take over its slot when `adoptable`.
async fn serve_http(
    stream: Prefixed<Stream>,
    peer: SocketAddr,
    gw: Arc<Gateway>,
    guard: ConnGuard,
    adoptable: bool,
) {
    let limits = gw.config.limits;
    // The address the client reached: a relay's PROXY header tells it to the upstream.
    let local = stream.get_ref().tcp().local_addr().unwrap_or(gw.main_addr);
    let secure = stream.get_ref().is_tls();
    let handoff = Handoff::new(gw.clone(), peer, guard.clone(), adoptable);
    let io = TokioIo::new(Handing::new(stream, handoff.clone()));
    let service = {
        let gw = gw.clone();
        let handoff = handoff.clone();
        service_fn(move |mut req| {
            req.extensions_mut().insert(handoff.clone());
            if secure {
                req.extensions_mut().insert(Secure);
            }
            let (gw, guard) = (gw.clone(), guard.clone());
            crate::access::logged(req, peer, move |req| {
                crate::http::handle(req, gw, peer, local, guard)
            })
        })
    };
    let mut stop = gw.shutdown.signal();
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.handshake_timeout)
        .serve_connection(io, service)
        .with_upgrades();
    tokio::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        _ = &mut stop => {
            conn.as_mut().graceful_shutdown();
            tokio::time::timeout(limits.drain_timeout, conn).await.unwrap_or(Ok(()))
        }
    };
    match result {
        // A handed-off response's body ends the HTTP server's side with an error.
        Err(_) if handoff.taken() => {}
        Err(error) => tracing::debug!(%peer, %error, "http connection ended"),
        Ok(()) => {}
    }
}

/// A connection given back after a handed-off response is served again, counted under
/// its session's slot (a session and the connection that carries it count as one); it is
/// closed instead once the gateway stops.
impl Resume for Gateway {
    fn resume(self: Arc<Self>, stream: Stream, early: &[u8], peer: SocketAddr, slot: ConnGuard) {
        if self.shutdown.is_stopping() || early.len() > MAX_SNIFF {
            return;
        }
        let stream = Prefixed::new(stream, early);
        let tracker = self.tracker.clone();
        tracker.spawn(serve_http(stream, peer, self, slot, false));
    }

    fn spawn(&self, task: Pin<Box<dyn Future<Output = ()> + Send>>) {
        self.tracker.spawn(task);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_tls_only_answer_says_its_own_length() {
        let text = std::str::from_utf8(super::TLS_ONLY).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let length = head
            .lines()
            .find_map(|line| line.strip_prefix("Content-Length: "))
            .unwrap();
        assert_eq!(length.parse::<usize>().unwrap(), body.len());
    }
}
