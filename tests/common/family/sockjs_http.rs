//! A SockJS session over HTTP, by hand: its sending requests, and the frames of its
//! receiving ones, each transport wrapping them its own way.

use std::net::SocketAddr;

use super::super::http_stream::Stream;
use super::{Got, Sockjs};

/// A SockJS session over HTTP: the gateway, the session's URL base, and the receiving
/// response that streams, while one is open.
pub struct Http {
    gw: SocketAddr,
    base: String,
    stream: Option<Stream>,
}

impl Http {
    pub fn new(gw: SocketAddr, base: String) -> Http {
        Http {
            gw,
            base,
            stream: None,
        }
    }

    /// Sends `text` in a sending request of `transport`.
    pub async fn send(&self, transport: Sockjs, text: &str) {
        let (gw, base) = (self.gw, &self.base);
        let json = serde_json::to_string(&[text]).unwrap();
        let (target, headers, body, status) = match transport == Sockjs::JsonpPolling {
            true => {
                let form = percent_encoding::utf8_percent_encode(
                    &json,
                    percent_encoding::NON_ALPHANUMERIC,
                );
                let form = format!("d={form}");
                let kind = ("Content-Type", "application/x-www-form-urlencoded");
                (format!("{base}/jsonp_send"), vec![kind], form, 200)
            }
            false => (format!("{base}/xhr_send"), vec![], json, 204),
        };
        let sent =
            Stream::open_from("127.0.0.1", gw, "POST", &target, &headers, body.as_bytes()).await;
        assert_eq!(sent.head.status, status, "{target}");
    }

    /// The next SockJS frames over HTTP: a streaming response's next chunk (opening one when
    /// none is open, or the last one ended), or a polling request's answer; and the client's
    /// address on a request opened for it.
    pub async fn frames(&mut self, transport: Sockjs) -> (Vec<String>, Option<SocketAddr>) {
        let Http { gw, base, stream } = self;
        let (method, target) = match transport {
            Sockjs::XhrStreaming => ("POST", format!("{base}/xhr_streaming")),
            Sockjs::XhrPolling => ("POST", format!("{base}/xhr")),
            Sockjs::EventSource => ("GET", format!("{base}/eventsource")),
            Sockjs::HtmlFile => ("GET", format!("{base}/htmlfile?c=cb")),
            Sockjs::JsonpPolling => ("GET", format!("{base}/jsonp?c=cb")),
            Sockjs::WebSocket => unreachable!("a WebSocket"),
        };
        let mut opened = None;
        if matches!(transport, Sockjs::XhrPolling | Sockjs::JsonpPolling) {
            let poll = Stream::open(*gw, method, &target, b"").await;
            let addr = poll.tcp.local_addr().unwrap();
            assert_eq!(poll.head.status, 200, "{target}");
            let body = poll.body().await;
            let frames: Vec<String> = match transport {
                Sockjs::XhrPolling => body.lines().map(str::to_string).collect(),
                // One call a script: sockjs-client's callback is gone once it was called.
                _ => {
                    let call = body
                        .strip_prefix("/**/cb(")
                        .and_then(|c| c.strip_suffix(");\r\n"));
                    let end = tail(&body);
                    let call = call.filter(|c| !c.contains(");\r\n"));
                    vec![js_string(
                        call.unwrap_or_else(|| panic!("not one call: …{end:?}")),
                    )]
                }
            };
            return (frames, Some(addr));
        }
        loop {
            if stream.is_none() {
                let mut open = Stream::open(*gw, method, &target, b"").await;
                opened = Some(open.tcp.local_addr().unwrap());
                assert_eq!(open.head.status, 200, "{target}");
                open.chunk().await.expect("a prelude"); // the prelude, or the page's head
                *stream = Some(open);
            }
            let Some(chunk) = stream.as_mut().unwrap().chunk().await else {
                *stream = None; // past the response limit: the next one
                continue;
            };
            let frames = match transport {
                Sockjs::XhrStreaming => chunk.lines().map(str::to_string).collect(),
                Sockjs::EventSource => chunk
                    .split("\r\n\r\n")
                    .filter_map(|event| event.strip_prefix("data: "))
                    .map(str::to_string)
                    .collect(),
                _ => chunk
                    .split("</script>\r\n")
                    .filter(|s| !s.is_empty())
                    .map(|script| {
                        let call = script.strip_prefix("<script>\np(").expect("a script");
                        js_string(call.strip_suffix(");\n").expect("a call"))
                    })
                    .collect(),
            };
            return (frames, opened);
        }
    }
}

/// The messages and the close in one SockJS frame (`h` and `o` carry none).
pub fn decode_frame(frame: &str) -> Vec<Got> {
    match frame.split_at(1) {
        ("h" | "o", "") => Vec::new(),
        ("a", json) => serde_json::from_str::<Vec<String>>(json)
            .unwrap_or_else(|e| panic!("{e}: {frame:?}"))
            .into_iter()
            .map(Got::Text)
            .collect(),
        ("c", json) => {
            let (code, reason): (u16, String) = serde_json::from_str(json).unwrap();
            vec![Got::Closed(Some(code), reason)]
        }
        _ => panic!("not a SockJS frame: {frame:?}"),
    }
}

/// A JavaScript string literal's value (the JSON subset the gateway writes).
fn js_string(literal: &str) -> String {
    serde_json::from_str(literal).unwrap_or_else(|e| panic!("{e}: {literal}"))
}

/// The last hundred characters of `text`: where a second frame would be.
fn tail(text: &str) -> String {
    let start = text.char_indices().rev().nth(99).map_or(0, |(i, _)| i);
    text[start..].to_string()
}
