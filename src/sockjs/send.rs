//! Sending requests: `xhr_send` (a JSON array of strings) and `jsonp_send` (the same, raw or
//! as the form field `d`). A body is read up to `--max-message-size` (413 past it) within
//! the read timeout (408), and its messages go to the session's backend in order; the
//! request waits while the backend is behind.

use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

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
        true => frames::form_field_d(&body).unwrap_or_default(),
        false => body.to_vec(),
    };
    match deliver(endpoint, session, ask, frames::client_messages(&payload)).await {
        Some(res) => res,
        None => pages::response(StatusCode::OK, "text/plain; charset=UTF-8", "ok"),
    }
}

/// The request's body, or the answer when it is too large or too slow.
async fn read<M>(
    endpoint: &Endpoint<M>,
    req: Request<Incoming>,
) -> Result<bytes::Bytes, Response<Body>> {
    let limit = endpoint.limits.max_message_size;
    let body = Limited::new(req.into_body(), limit).collect();
    match tokio::time::timeout(endpoint.limits.read_timeout, body).await {
        Ok(Ok(body)) => Ok(body.to_bytes()),
        Ok(Err(error))
            if error
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(crate::body::text(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("a message is at most {limit} bytes (see --max-message-size)"),
            ))
        }
        Ok(Err(_)) => Err(crate::body::text(
            StatusCode::BAD_REQUEST,
            "the body broke off",
        )),
        Err(_) => Err(crate::body::text(
            StatusCode::REQUEST_TIMEOUT,
            "the body did not arrive in time (see --read-timeout)",
        )),
    }
}

/// Hands `messages` to session `id`; the answer when that fails, `None` when it is done.
async fn deliver<M>(
    endpoint: &Endpoint<M>,
    id: &str,
    ask: &Ask<'_>,
    messages: Result<Vec<String>, Refused>,
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
