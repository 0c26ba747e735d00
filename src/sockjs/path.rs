//! What a path under a SockJS base URL asks for, pure.

/// A SockJS endpoint under a route's path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint<'a> {
    /// The base URL itself, with or without a slash: the greeting.
    Greeting,
    /// `/info`.
    Info,
    /// `/iframe.html`, or a versioned `/iframe-….html`.
    Iframe,
    /// `/websocket`: a plain WebSocket, without SockJS framing.
    RawWebsocket,
    /// `/{server}/{session}/{transport}`.
    Session {
        /// The session's id, chosen by the client.
        session: &'a str,
        /// The transport asked for.
        kind: Kind,
    },
}

/// A session transport's URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// SockJS framing over a WebSocket.
    Websocket,
    /// xhr-polling's receiving request.
    Xhr,
    /// xhr's sending request.
    XhrSend,
    /// xhr-streaming.
    XhrStreaming,
    /// eventsource.
    Eventsource,
    /// htmlfile.
    Htmlfile,
    /// jsonp-polling's receiving request.
    Jsonp,
    /// jsonp's sending request.
    JsonpSend,
}

impl Kind {
    /// The name in the URL.
    #[cfg(test)]
    pub fn name(self) -> &'static str {
        match self {
            Kind::Websocket => "websocket",
            Kind::Xhr => "xhr",
            Kind::XhrSend => "xhr_send",
            Kind::XhrStreaming => "xhr_streaming",
            Kind::Eventsource => "eventsource",
            Kind::Htmlfile => "htmlfile",
            Kind::Jsonp => "jsonp",
            Kind::JsonpSend => "jsonp_send",
        }
    }

    fn from_name(name: &str) -> Option<Kind> {
        Some(match name {
            "websocket" => Kind::Websocket,
            "xhr" => Kind::Xhr,
            "xhr_send" => Kind::XhrSend,
            "xhr_streaming" => Kind::XhrStreaming,
            "eventsource" => Kind::Eventsource,
            "htmlfile" => Kind::Htmlfile,
            "jsonp" => Kind::Jsonp,
            "jsonp_send" => Kind::JsonpSend,
            _ => return None,
        })
    }
}

/// The endpoint `rest` (what follows the route's path: empty, or from a `/`) names, if any.
pub fn parse(rest: &str) -> Option<Endpoint<'_>> {
    match rest {
        "" | "/" => return Some(Endpoint::Greeting),
        "/info" => return Some(Endpoint::Info),
        "/websocket" => return Some(Endpoint::RawWebsocket),
        _ => {}
    }
    let inner = rest.strip_prefix('/')?;
    if let Some(version) = inner
        .strip_prefix("iframe")
        .and_then(|v| v.strip_suffix(".html"))
    {
        let allowed = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._".contains(&b);
        return version.bytes().all(allowed).then_some(Endpoint::Iframe);
    }
    let mut parts = inner.split('/');
    let (Some(server), Some(session), Some(kind), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    // The server and session parts: anything but empty, and no dots.
    let part = |s: &str| !s.is_empty() && !s.contains('.');
    if !part(server) || !part(session) {
        return None;
    }
    Some(Endpoint::Session {
        session,
        kind: Kind::from_name(kind)?,
    })
}

/// The `c` (or `callback`) query parameter, checked; else what is wrong with it.
pub fn callback(query: Option<&str>) -> Result<String, &'static str> {
    let value = form_urlencoded_get(query.unwrap_or(""), &["c", "callback"]);
    let Some(value) = value else {
        return Err("\"callback\" parameter required");
    };
    match super::frames::valid_callback(&value) {
        true => Ok(value),
        false => Err("invalid \"callback\" parameter"),
    }
}

/// The first of `names` in a query string, percent-decoded.
fn form_urlencoded_get(query: &str, names: &[&str]) -> Option<String> {
    names.iter().find_map(|name| {
        query.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (key == *name).then(|| {
                percent_encoding::percent_decode_str(&value.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            })
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_protocols_static_urls() {
        assert_eq!(parse(""), Some(Endpoint::Greeting));
        assert_eq!(parse("/"), Some(Endpoint::Greeting));
        assert_eq!(parse("/info"), Some(Endpoint::Info));
        assert_eq!(parse("/websocket"), Some(Endpoint::RawWebsocket));
        for ok in [
            "/iframe.html",
            "/iframe-a.html",
            "/iframe-.html",
            "/iframe-0.1.2abc-dirty.2144.html",
        ] {
            assert_eq!(parse(ok), Some(Endpoint::Iframe), "{ok}");
        }
        for bad in [
            "/iframe.htm",
            "/iframe",
            "/IFRAME.HTML",
            "/iframe.HTML",
            "/iframe-/.html",
            "/a",
            "//",
            "///",
            "/a/a",
            "/a/a/",
            "/a.html",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn session_urls_take_any_server_and_session_but_empty_or_dotted() {
        assert_eq!(
            parse("/000/abc/xhr"),
            Some(Endpoint::Session {
                session: "abc",
                kind: Kind::Xhr
            })
        );
        assert_eq!(
            parse("/abcdefgh_i-j%20/abcdefg_i-j%20/xhr_streaming"),
            Some(Endpoint::Session {
                session: "abcdefg_i-j%20",
                kind: Kind::XhrStreaming
            })
        );
        for bad in [
            "///xhr",
            "/a./a/xhr",
            "/a/a./xhr",
            "/./././xhr",
            "//xhr",
            "/a/a/xhr/",
            "/a/a/nope",
            "/a/a/b/xhr",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
        for kind in [
            Kind::Websocket,
            Kind::Xhr,
            Kind::XhrSend,
            Kind::XhrStreaming,
            Kind::Eventsource,
            Kind::Htmlfile,
            Kind::Jsonp,
            Kind::JsonpSend,
        ] {
            let url = format!("/1/2/{}", kind.name());
            assert_eq!(parse(&url), Some(Endpoint::Session { session: "2", kind }));
        }
    }
}
