//! The SockJS parsers: what a path under a route asks for, and the payloads clients send.

use crate::sockjs::frames::{self, Wrap};
use crate::sockjs::path::{self, Endpoint};

/// The SockJS path parser (`sockjs::path::parse`), on the input as a path.
///
/// Asserts: a session URL's id is what lies between its second and third slashes, never
/// empty and without a dot; the greeting is only `` or `/`.
pub fn sockjs_path(data: &[u8]) {
    let Ok(rest) = std::str::from_utf8(data) else {
        return;
    };
    match path::parse(rest) {
        Some(Endpoint::Session { session, .. }) => {
            let parts: Vec<&str> = rest.split('/').collect();
            assert_eq!(parts.len(), 4, "{rest:?}");
            assert_eq!(parts[2], session);
            assert!(!session.is_empty() && !session.contains('.'), "{rest:?}");
        }
        Some(Endpoint::Greeting) => assert!(rest.is_empty() || rest == "/"),
        Some(Endpoint::Iframe) => {
            assert!(rest.starts_with("/iframe") && rest.ends_with(".html"))
        }
        _ => {}
    }
}

/// The payload parsers (`sockjs::frames`), on the input as a sending request's body and as
/// a WebSocket message.
///
/// Asserts: the array reader takes exactly what `serde_json` takes, with the same strings;
/// what a client sent comes back, framed as `a[...]`, as the same strings; and no message,
/// in an htmlfile script, can end the script early.
pub fn sockjs_frames(data: &[u8]) {
    let _ = frames::form_field_d(data);
    let body = bytes::Bytes::copy_from_slice(data);
    let reference: Option<Vec<String>> = serde_json::from_slice(data).ok();
    let ours = frames::array::strings(&body);
    let ours_owned = ours
        .as_ref()
        .map(|v| v.iter().map(|s| s.as_str().to_owned()).collect::<Vec<_>>());
    assert_eq!(
        ours_owned, reference,
        "the array reader and serde_json differ"
    );
    let mut parsed = vec![frames::client_messages(&body)];
    if let Ok(text) = tungstenite::Utf8Bytes::try_from(body.clone()) {
        parsed.push(frames::websocket_messages(&text));
    }
    for messages in parsed.into_iter().flatten() {
        let mut frame = String::new();
        frames::messages(messages.iter().map(|m| m.as_str()), &mut frame);
        let array = frame.strip_prefix('a').expect("a message frame");
        let back: Vec<String> = serde_json::from_str(array).expect("a frame is JSON");
        assert!(back.iter().eq(messages.iter().map(|m| m.as_str())));
        let mut script = String::new();
        Wrap::Script.frame(&frame, &mut script);
        assert_eq!(script.matches("</script>").count(), 1, "{script:?}");
    }
}
