//! Sending requests: `xhr_send` (a JSON array of strings) and `jsonp_send` (the same, raw or
//! as the form field `d`). A body is read up to `--max-message-size` (413 past it) within
//! the read timeout (408), and its messages go to the session's backend in order; the
//! request waits while the backend is behind.

use bytes::{Bytes, BytesMut};
use http::{Request, Response, StatusCode};
use http_body::Body as _;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tungstenite::Utf8Bytes;

use super::frames::{self, Refused};
use super::table::Found;
use super::{Ask, Endpoint, pages};
use crate::body::Body;
use crate::session::Service;

/// `xhr_send`: 204 once the messages are the backend's.
pub async fn xhr<M: Service>(
    endpoint: &Endpoint<M>,
    req: Request<Incoming>,
    session: &str,
    ask: &Ask<'_>,
) -> Response<Body> {
    let body = match read(endpoint, req).await {
        Ok(body) => body,
        Err(res) => return res,
    };
    match deliver(endpoint, session, ask, frames::client_messages(&body)).await {
        Some(res) => res,
        None => pages::response(StatusCode::NO_CONTENT, "text/plain; charset=UTF-8", ""),
    }
}

/// `jsonp_send`: `ok` once the messages are the backend's.
pub async fn jsonp<M: Service>(
    endpoint: &Endpoint<M>,
    req: Request<Incoming>,
    session: &str,
    ask: &Ask<'_>,
) -> Response<Body> {
    let form = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let body = match read(endpoint, req).await {
        Ok(body) => body,
        Err(res) => return res,
    };
    let payload = match form {
        true => frames::form_field_d(&body).unwrap_or_default().into(),
        false => body,
    };
    match deliver(endpoint, session, ask, frames::client_messages(&payload)).await {
        Some(res) => res,
        None => pages::response(StatusCode::OK, "text/plain; charset=UTF-8", "ok"),
    }
}

/// The request's body, or the answer when it is too large or too slow.
async fn read<M>(endpoint: &Endpoint<M>, req: Request<Incoming>) -> Result<Bytes, Response<Body>> {
    let limit = endpoint.limits.max_message_size;
    let body = whole(req.into_body(), limit);
    match tokio::time::timeout(endpoint.limits.read_timeout, body).await {
        Ok(Ok(body)) => Ok(body),
        Ok(Err(Unread::TooLarge)) => Err(crate::body::text(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("a message is at most {limit} bytes (see --max-message-size)"),
        )),
        Ok(Err(Unread::Broken)) => Err(crate::body::text(
            StatusCode::BAD_REQUEST,
            "the body broke off",
        )),
        Err(_) => Err(crate::body::text(
            StatusCode::REQUEST_TIMEOUT,
            "the body did not arrive in time (see --read-timeout)",
        )),
    }
}

/// Why a body was not read.
enum Unread {
    /// It is longer than the limit (said by its length, or found while reading).
    TooLarge,
    /// It broke off.
    Broken,
}

/// The whole of `body`, up to `limit` bytes. A body that comes in one piece, as most do,
/// is that piece, not a copy.
async fn whole(mut body: Incoming, limit: usize) -> Result<Bytes, Unread> {
    if body.size_hint().lower() > limit as u64 {
        return Err(Unread::TooLarge);
    }
    let mut first = Bytes::new();
    let mut joined: Option<BytesMut> = None;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(|_| Unread::Broken)?.into_data() else {
            continue;
        };
        let len = joined.as_ref().map_or(first.len(), |j| j.len());
        if len + data.len() > limit {
            return Err(Unread::TooLarge);
        }
        match &mut joined {
            Some(joined) => joined.extend_from_slice(&data),
            None if first.is_empty() => first = data,
            None => {
                let mut both = BytesMut::with_capacity(len + data.len());
                both.extend_from_slice(&first);
                both.extend_from_slice(&data);
                joined = Some(both);
            }
        }
    }
    Ok(joined.map_or(first, BytesMut::freeze))
}

/// Hands `messages` to session `id`; the answer when that fails, `None` when it is done.
async fn deliver<M>(
    endpoint: &Endpoint<M>,
    id: &str,
    ask: &Ask<'_>,
    messages: Result<Vec<Utf8Bytes>, Refused>,
) -> Option<Response<Body>> {
    let messages = match messages {
        Ok(messages) => messages,
        Err(why) => return Some(pages::refused(why.message())),
    };
    let Found::Session(comet) = endpoint.table.find(ask.route, id, ask.peer.ip()) else {
        return Some(pages::bare(StatusCode::NOT_FOUND));
    };
    match comet.receive(messages, endpoint.limits.read_timeout).await {
        true => None,
        // Closing: the messages have nowhere to go, as for a session that is gone.
        false => Some(pages::bare(StatusCode::NOT_FOUND)),
    }
}
