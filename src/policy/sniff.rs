//! Recognising `<policy-file-request/>` in the first bytes of a connection. Pure: bytes in,
//! decision out, so partial reads are tested without sockets.

/// What Flash Player sends, before its terminating NUL, to ask for a socket policy.
pub const REQUEST: &[u8] = b"<policy-file-request/>";

/// The most bytes [`sniff`] ever needs to decide: the request and a `\r\n` terminator.
pub const MAX_SNIFF: usize = REQUEST.len() + 2;

/// The decision about the bytes a connection has sent so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniff {
    /// Still a prefix of a policy request: read more (or give up at the timeout).
    Incomplete,
    /// A complete policy request: answer with the policy.
    Policy,
    /// Not a policy request (on the main port: HTTP).
    Other,
}

/// Decides what `buf`, the bytes received so far, is. `at_eof` says the peer has finished
/// sending (half-closed), so nothing more will come.
///
/// Accepted terminators: NUL (Flash Player), `\n` or `\r\n` (typed into netcat), or the end of
/// the stream (`printf '<policy-file-request/>' | nc`). Bytes after the terminator are ignored.
pub fn sniff(buf: &[u8], at_eof: bool) -> Sniff {
    if buf.len() < REQUEST.len() {
        return if !at_eof && REQUEST.starts_with(buf) {
            Sniff::Incomplete
        } else {
            Sniff::Other
        };
    }
    if !buf.starts_with(REQUEST) {
        return Sniff::Other;
    }
    match &buf[REQUEST.len()..] {
        [] | [b'\r'] if at_eof => Sniff::Policy,
        [] | [b'\r'] => Sniff::Incomplete,
        [0, ..] | [b'\n', ..] | [b'\r', b'\n', ..] => Sniff::Policy,
        _ => Sniff::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_terminated_request_is_policy() {
        assert_eq!(sniff(b"<policy-file-request/>\0", false), Sniff::Policy);
    }

    #[test]
    fn newline_and_crlf_terminated_requests_are_policy() {
        assert_eq!(sniff(b"<policy-file-request/>\n", false), Sniff::Policy);
        assert_eq!(sniff(b"<policy-file-request/>\r\n", false), Sniff::Policy);
    }

    #[test]
    fn request_ended_by_eof_is_policy() {
        assert_eq!(sniff(b"<policy-file-request/>", true), Sniff::Policy);
        assert_eq!(sniff(b"<policy-file-request/>\r", true), Sniff::Policy);
    }

    #[test]
    fn every_proper_prefix_is_incomplete() {
        for n in 0..REQUEST.len() {
            assert_eq!(
                sniff(&REQUEST[..n], false),
                Sniff::Incomplete,
                "prefix of {n} bytes"
            );
        }
        assert_eq!(sniff(REQUEST, false), Sniff::Incomplete);
        assert_eq!(sniff(b"<policy-file-request/>\r", false), Sniff::Incomplete);
    }

    #[test]
    fn truncated_request_at_eof_is_not_policy() {
        assert_eq!(sniff(b"<policy-file-req", true), Sniff::Other);
        assert_eq!(sniff(b"", true), Sniff::Other);
    }

    #[test]
    fn http_is_decided_from_the_first_byte() {
        assert_eq!(sniff(b"G", false), Sniff::Other);
        assert_eq!(sniff(b"GET / HTTP/1.1\r\n", false), Sniff::Other);
    }

    #[test]
    fn near_misses_are_not_policy() {
        assert_eq!(sniff(b"<policy-file-request>\0", false), Sniff::Other);
        assert_eq!(sniff(b"<policy-file-request/>x", false), Sniff::Other);
        assert_eq!(sniff(b"<POLICY-FILE-REQUEST/>\0", false), Sniff::Other);
        assert_eq!(sniff(b"<policy-file-request/>\rx", false), Sniff::Other);
    }

    #[test]
    fn the_decision_never_needs_more_than_max_sniff_bytes() {
        let mut long = REQUEST.to_vec();
        long.extend_from_slice(b"\r\n");
        assert_eq!(long.len(), MAX_SNIFF);
        assert_eq!(sniff(&long, false), Sniff::Policy);
        long.push(b'!');
        assert_eq!(
            sniff(&long, false),
            Sniff::Policy,
            "bytes after the terminator are ignored"
        );
    }
}
