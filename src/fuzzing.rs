//! Entry points for the fuzz targets (`fuzz/`) and their corpus replay (`tests/fuzz_corpus.rs`):
//! one per parser of bytes a client or an operator's file controls. Each takes any bytes,
//! runs the real parser and panics when one of its invariants does not hold.
//!
//! Targets that cut their input into reads ([`sniff`], [`inbound`], [`outbound`],
//! [`boundary`], [`hixie76_frames`]) take the cuts from its first bytes (see [`cut`]): the low three bits
//! of the first byte say how many bytes of cut pattern follow, and the rest is the stream.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::header::{ORIGIN, SEC_WEBSOCKET_KEY, USER_AGENT};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};

use crate::origin::AllowList;
use crate::policy::serve::read_first_bytes;
use crate::policy::sniff::{MAX_SNIFF, REQUEST, Sniff};
use crate::policy::xml;
use crate::prefixed::Prefixed;
use crate::session::Transport;
use crate::ws::handshake;

mod frames;
mod hixie76;
mod sockjs;
mod upstream;
pub use frames::{boundary, inbound, outbound};
pub use hixie76::{hixie76_frames, hixie76_handshake};
pub use sockjs::{sockjs_frames, sockjs_path};
pub use upstream::{upstream_answer, upstream_request};

/// Splits fuzz input into a cut pattern and the stream to cut: `data[0] & 7` pattern bytes
/// follow the first byte, each the length of one piece (0: an empty read), repeated until
/// the stream runs out. No pattern, or one of zeros only, means one piece.
pub fn cut(data: &[u8]) -> (Vec<usize>, &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return (Vec::new(), data);
    };
    let (pattern, stream) = rest.split_at(usize::from(first & 7).min(rest.len()));
    (pattern.iter().map(|&b| usize::from(b)).collect(), stream)
}

/// `stream` cut into pieces of the lengths in `pattern`, repeated.
pub fn pieces<'a>(stream: &'a [u8], pattern: &[usize]) -> Vec<&'a [u8]> {
    if pattern.iter().all(|&n| n == 0) {
        return vec![stream];
    }
    let (mut out, mut at) = (Vec::new(), 0);
    for &n in pattern.iter().cycle() {
        if at == stream.len() {
            break;
        }
        let end = (at + n).min(stream.len());
        out.push(&stream[at..end]);
        at = end;
    }
    out
}

/// The first-bytes sniffer (`policy::sniff`) and the reads around it
/// (`policy::serve::read_first_bytes`, `Prefixed`).
///
/// Asserts: every prefix's answer is what the documented rule says; a decision, once made,
/// never changes as more bytes come; no decision needs more than `MAX_SNIFF` bytes; reading
/// the stream in any pieces gives the same decision as in one; the policy listener's path
/// (one read, then the ordinary path over the bytes it took) decides the same; and the
/// bytes handed on to HTTP are exactly the stream (of which the first 96 bytes are taken).
pub fn sniff(data: &[u8]) {
    use crate::policy::sniff::sniff;

    let (pattern, stream) = cut(data);
    // What follows the first bytes is only relayed: a few of them show that it is intact.
    let stream = &stream[..stream.len().min(SNIFF_STREAM)];
    let head = &stream[..stream.len().min(MAX_SNIFF + 1)];
    let mut decided = None;
    for len in 0..=head.len() {
        let prefix = &head[..len];
        let open = sniff(prefix, false);
        assert_eq!(open, sniff_rule(prefix, false), "{prefix:?}");
        assert_eq!(sniff(prefix, true), sniff_rule(prefix, true), "{prefix:?}");
        assert_ne!(sniff(prefix, true), Sniff::Incomplete, "{prefix:?}");
        if len >= MAX_SNIFF {
            assert_ne!(
                open,
                Sniff::Incomplete,
                "{prefix:?} needs more than MAX_SNIFF"
            );
        }
        match decided {
            Some(kind) => {
                assert_eq!(open, kind, "{prefix:?} changed the decision");
                assert_eq!(sniff(prefix, true), kind, "{prefix:?} changed the decision");
            }
            None if open != Sniff::Incomplete => decided = Some(open),
            None => {}
        }
    }

    // Empty pieces are left out: a read of nothing is the end of the stream.
    let cuts: Vec<&[u8]> = pieces(stream, &pattern)
        .into_iter()
        .filter(|p| !p.is_empty())
        .collect();
    let (whole, _, _) = first_bytes(Reads::new(vec![stream]));
    let (kind, len, rest) = first_bytes(Reads::new(cuts.clone()));
    assert_eq!(kind, whole, "cut as {pattern:?}");
    assert_ne!(kind, Sniff::Incomplete);
    assert_eq!(kind, sniff(&stream[..len], len == stream.len()));
    assert_eq!(
        kind == Sniff::Policy,
        sniff_rule(head, head.len() == stream.len()) == Sniff::Policy
    );
    assert_eq!(replay(Prefixed::new(rest, &stream[..len])), stream);

    // The policy listener: one read of at most MAX_SNIFF bytes, decided at once unless it
    // is empty or incomplete; then the ordinary path over those bytes and the rest.
    let mut reads = Reads::new(cuts);
    let first = reads.read_at_most(MAX_SNIFF);
    let quick = sniff(&first, false);
    if first.is_empty() || quick == Sniff::Incomplete {
        let (slow, _, _) = first_bytes(Prefixed::new(reads, &first));
        assert_eq!(slow, kind, "the policy listener's ordinary path");
    } else {
        assert_eq!(quick, kind, "the policy listener's quick path");
    }
}

/// How much of a stream [`sniff`] looks at.
const SNIFF_STREAM: usize = 4 * MAX_SNIFF;

/// The sniffer's rule, as its documentation states it: a policy request is the request
/// followed by NUL, `\n` or `\r\n`, or by the end of the stream after nothing or `\r`; more
/// is needed while the bytes could still become one.
fn sniff_rule(buf: &[u8], at_eof: bool) -> Sniff {
    let requests = [b"\0".as_slice(), b"\n", b"\r\n"].map(|t| [REQUEST, t].concat());
    if requests.iter().any(|r| buf.starts_with(r))
        || (at_eof && (buf == REQUEST || buf == [REQUEST, b"\r"].concat()))
    {
        Sniff::Policy
    } else if !at_eof && requests.iter().any(|r| r.starts_with(buf)) {
        Sniff::Incomplete
    } else {
        Sniff::Other
    }
}

/// Runs `read_first_bytes` over `stream`: the decision, the bytes it read, and the stream.
fn first_bytes<S: AsyncRead + Unpin>(mut stream: S) -> (Sniff, usize, S) {
    let first = block_on(read_first_bytes(&mut stream, Duration::from_secs(3600)))
        .expect("reading from memory does not fail");
    assert!(first.len <= MAX_SNIFF);
    (first.kind, first.len, stream)
}

/// Everything `stream` yields until its end.
fn replay<S: AsyncRead + Unpin>(mut stream: S) -> Vec<u8> {
    let mut out = Vec::new();
    block_on(stream.read_to_end(&mut out)).expect("reading from memory does not fail");
    out
}

fn block_on<F: Future>(future: F) -> F::Output {
    thread_local! {
        static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a current-thread runtime");
    }
    RUNTIME.with(|runtime| runtime.block_on(future))
}

/// A stream that yields `pieces`, each as one read or several when the reader's buffer is
/// smaller, then ends.
struct Reads<'a> {
    pieces: std::collections::VecDeque<&'a [u8]>,
}

impl<'a> Reads<'a> {
    fn new(pieces: Vec<&'a [u8]>) -> Self {
        Reads {
            pieces: pieces.into(),
        }
    }

    /// One read of at most `max` bytes.
    fn read_at_most(&mut self, max: usize) -> Vec<u8> {
        let Some(piece) = self.pieces.front_mut() else {
            return Vec::new();
        };
        let n = piece.len().min(max);
        let out = piece[..n].to_vec();
        *piece = &piece[n..];
        if piece.is_empty() {
            self.pieces.pop_front();
        }
        out
    }
}

impl AsyncRead for Reads<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let got = self.read_at_most(buf.remaining());
        buf.put_slice(&got);
        Poll::Ready(Ok(()))
    }
}

/// The `--policy-file` validator (`policy::xml::validate`).
///
/// Asserts: an error names a line of the file; an accepted file is well-formed (see
/// `well_formed`) and grants something, each grant to a domain without white space and to
/// ports that name at least port 1; and a line break added at the end changes nothing.
pub fn policy_file(data: &[u8]) {
    match xml::validate(data) {
        Ok(grants) => {
            assert!(well_formed(data), "accepted, but not well-formed");
            assert!(!grants.is_empty());
            for grant in &grants {
                assert!(!grant.domain.is_empty(), "{grant:?}");
                assert!(!grant.domain.contains(char::is_whitespace), "{grant:?}");
                assert!(xml::lowest_port(&grant.to_ports) >= 1, "{grant:?}");
            }
            let mut more = data.to_vec();
            more.push(b'\n');
            assert_eq!(xml::validate(&more), Ok(grants), "with a final line break");
        }
        Err(error) => {
            let lines = 1 + data.iter().filter(|&&b| b == b'\n').count();
            assert!(
                (1..=lines).contains(&error.line),
                "{error} of {lines} lines"
            );
            assert!(!error.message.is_empty());
            let _ = error.to_string();
        }
    }
}

/// Whether the elements of `src` make a well-formed XML document, read with quick-xml: one
/// root element, every element closed, and around the root nothing but white space (XML's:
/// space, tab, CR, LF), comments, processing instructions and (before it) a document type.
fn well_formed(src: &[u8]) -> bool {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_reader(src);
    let (mut depth, mut roots) = (0usize, 0);
    loop {
        let Ok(event) = reader.read_event() else {
            return false;
        };
        let outside = depth == 0;
        match event {
            Event::Eof => return depth == 0 && roots == 1,
            Event::Start(_) | Event::Empty(_) if outside && roots == 1 => return false,
            Event::Start(_) => {
                roots += usize::from(outside);
                depth += 1;
            }
            Event::Empty(_) => roots += usize::from(outside),
            Event::End(_) if outside => return false,
            Event::End(_) => depth -= 1,
            Event::Text(text) if outside && !text.bytes().all(|b| b" \t\r\n".contains(&b)) => {
                return false;
            }
            Event::CData(_) | Event::GeneralRef(_) if outside => return false,
            Event::DocType(_) if roots > 0 => return false,
            _ => {}
        }
    }
}

/// The WebSocket handshake checks (`ws::handshake::check`) over an HTTP request head, as
/// hyper would hand it over (parsed by httparse; heads it refuses are skipped).
///
/// Asserts, for the default allow-list, an explicit one and `*`: an accepted request is a
/// `GET` upgrade to version 13 with a 16-byte key, its accept value is 20 bytes of base64,
/// its room name is valid, its origin (if any) allowed, and its transport the documented
/// guess when the query does not say; a refusal has one of the four statuses, 403 only for
/// an origin; and `*` changes the answer only where the origin was refused.
pub fn handshake(data: &[u8]) {
    let Some((method, version, headers, query)) = request_head(data) else {
        return;
    };
    let lists = [
        AllowList::serving("127.0.0.1:8080".parse().expect("an address")),
        AllowList::parse(&["http://a.example:8080".into()]).expect("an origin"),
    ];
    let any = AllowList::parse(&["*".into()]).expect("*");
    let anyone = handshake::check(&method, version, &headers, query.as_deref(), &any);
    for allow in lists.iter().chain([&any]) {
        let result = handshake::check(&method, version, &headers, query.as_deref(), allow);
        match &result {
            Ok(accepted) => {
                assert!(version >= http::Version::HTTP_11, "upgraded over HTTP/1.0");
                accepted_invariants(accepted, &method, &headers, &query, allow)
            }
            Err(rejection) => {
                assert!(
                    [
                        StatusCode::METHOD_NOT_ALLOWED,
                        StatusCode::UPGRADE_REQUIRED,
                        StatusCode::BAD_REQUEST,
                        StatusCode::FORBIDDEN,
                    ]
                    .contains(&rejection.status),
                    "{rejection:?}"
                );
                assert!(!rejection.reason.is_empty());
                if rejection.status == StatusCode::FORBIDDEN {
                    assert!(headers.contains_key(ORIGIN), "403 without an Origin");
                }
            }
        }
        let forbidden = matches!(&result, Err(r) if r.status == StatusCode::FORBIDDEN);
        if !forbidden {
            assert_eq!(result, anyone, "`*` changed more than the origin check");
        }
    }
}

/// Method, headers and query of an HTTP request head, or `None` where hyper would refuse it.
fn request_head(data: &[u8]) -> Option<(Method, http::Version, HeaderMap, Option<String>)> {
    let mut slots = [httparse::EMPTY_HEADER; 100];
    let mut request = httparse::Request::new(&mut slots);
    if !request.parse(data).ok()?.is_complete() {
        return None;
    }
    let method = Method::from_bytes(request.method?.as_bytes()).ok()?;
    let version = match request.version? {
        0 => http::Version::HTTP_10,
        _ => http::Version::HTTP_11,
    };
    let uri: http::Uri = request.path?.parse().ok()?;
    let mut headers = HeaderMap::new();
    for header in request.headers.iter() {
        headers.append(
            HeaderName::from_bytes(header.name.as_bytes()).ok()?,
            HeaderValue::from_bytes(header.value).ok()?,
        );
    }
    Some((method, version, headers, uri.query().map(str::to_owned)))
}

fn accepted_invariants(
    accepted: &handshake::Accepted,
    method: &Method,
    headers: &HeaderMap,
    query: &Option<String>,
    allow: &AllowList,
) {
    use base64::Engine;
    let base64 = base64::engine::general_purpose::STANDARD;

    assert_eq!(method, Method::GET);
    assert!(
        headers.contains_key(http::header::HOST),
        "upgraded without a Host"
    );
    assert!(handshake::is_upgrade(headers));
    assert_eq!(
        headers
            .get(http::header::SEC_WEBSOCKET_VERSION)
            .map(|v| v.as_bytes()),
        Some(&b"13"[..])
    );
    let key = headers.get(SEC_WEBSOCKET_KEY).expect("a key");
    assert_eq!(base64.decode(key.as_bytes()).map(|k| k.len()), Ok(16));
    assert_eq!(base64.decode(&accepted.accept_key).map(|k| k.len()), Ok(20));
    if let Some(room) = &accepted.room {
        assert!((1..=64).contains(&room.len()), "{room:?}");
        assert!(
            room.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)),
            "{room:?}"
        );
    }
    let origin = headers.get(ORIGIN);
    if let Some(origin) = origin {
        let host = headers
            .get(http::header::HOST)
            .and_then(|v| v.to_str().ok());
        let origin = origin.to_str().unwrap_or("\u{fffd}");
        assert!(allow.allows(origin, host), "{origin:?} for {host:?}");
    }
    let says = query
        .as_deref()
        .unwrap_or("")
        .split('&')
        .any(|pair| pair == "flash=1" || pair == "flash=0");
    if !says {
        let flash = origin.is_some() && !headers.contains_key(USER_AGENT);
        assert_eq!(accepted.transport == Transport::Flash, flash);
    }
}
