//! A client's payload, a JSON array of strings, read without copying: each string that has
//! no escape is a slice of the body itself; only one that has is decoded into new memory.
//!
//! It takes exactly what `serde_json` takes as a `Vec<String>` and gives the same strings
//! (the fuzz target `sockjs_frames` checks both); anything else is `None`, for the caller to
//! tell the protocol's errors apart.

use bytes::Bytes;
use tungstenite::Utf8Bytes;

use super::scan;

/// The strings of the JSON array `body`, or `None` when it is not one.
pub fn strings(body: &Bytes) -> Option<Vec<Utf8Bytes>> {
    // JSON is UTF-8 throughout; outside strings only its ASCII punctuation may be.
    std::str::from_utf8(body).ok()?;
    let mut at = skip_space(body, 0);
    if body.get(at) != Some(&b'[') {
        return None;
    }
    at = skip_space(body, at + 1);
    // Room for what a client usually sends at once, without growing: each string takes
    // at least its quotes and a comma.
    let mut out = Vec::with_capacity((body.len() / 16).clamp(1, 64));
    if body.get(at) == Some(&b']') {
        return (skip_space(body, at + 1) == body.len()).then_some(out);
    }
    loop {
        let (string, end) = string(body, at)?;
        out.push(string);
        at = skip_space(body, end);
        match body.get(at)? {
            b',' => at = skip_space(body, at + 1),
            b']' => return (skip_space(body, at + 1) == body.len()).then_some(out),
            _ => return None,
        }
    }
}

/// Where the JSON white space from `at` ends.
fn skip_space(body: &[u8], mut at: usize) -> usize {
    while matches!(body.get(at), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        at += 1;
    }
    at
}

/// The string that starts with the quote at `at`, and where it ends.
fn string(body: &Bytes, at: usize) -> Option<(Utf8Bytes, usize)> {
    if body.get(at) != Some(&b'"') {
        return None;
    }
    let start = at + 1;
    let word = |w| scan::any(w, 0x20, [b'"', b'\\']);
    let len = scan::find(&body[start..], word, |b| {
        b == b'"' || b == b'\\' || b < 0x20
    })?;
    let end = start + len;
    if body[end] != b'"' {
        return match body[end] {
            b'\\' => decoded(body, start),
            _ => None,
        };
    }
    // Between two quotes of a body that is UTF-8 (`strings` checked it first): UTF-8 too,
    // checked once for the whole body rather than once per string.
    let slice = body.slice(start..end);
    debug_assert!(std::str::from_utf8(&slice).is_ok());
    #[allow(unsafe_code)]
    // SAFETY: `body` is valid UTF-8 (checked in `strings`), and `start` and `end` are each
    // just past or at an ASCII quote, so both are character boundaries of it.
    let text = unsafe { Utf8Bytes::from_bytes_unchecked(slice) };
    Some((text, end + 1))
}

/// The string from `start` (just past its quote), which has escapes, decoded; and where it
/// ends.
fn decoded(body: &[u8], start: usize) -> Option<(Utf8Bytes, usize)> {
    let mut out: Vec<u8> = Vec::with_capacity(32);
    let mut at = start;
    loop {
        let b = *body.get(at)?;
        at += 1;
        match b {
            b'"' => break,
            0..0x20 => return None,
            b'\\' => {
                let escape = *body.get(at)?;
                at += 1;
                let short = match escape {
                    b'"' => b'"',
                    b'\\' => b'\\',
                    b'/' => b'/',
                    b'b' => 0x08,
                    b'f' => 0x0c,
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b't' => b'\t',
                    b'u' => {
                        let (c, next) = unicode(body, at)?;
                        at = next;
                        out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                        continue;
                    }
                    _ => return None,
                };
                out.push(short);
            }
            _ => out.push(b),
        }
    }
    let text = String::from_utf8(out).ok()?;
    Some((text.into(), at))
}

/// The character of the `\u` escape whose four digits start at `at` (with the low half
/// that follows a high surrogate), and where it ends.
fn unicode(body: &[u8], at: usize) -> Option<(char, usize)> {
    let high = hex4(body, at)?;
    if !(0xd800..0xe000).contains(&high) {
        return Some((char::from_u32(high)?, at + 4));
    }
    if high >= 0xdc00 || body.get(at + 4..at + 6)? != b"\\u" {
        return None;
    }
    let low = hex4(body, at + 6)?;
    if !(0xdc00..0xe000).contains(&low) {
        return None;
    }
    let c = char::from_u32(0x10000 + ((high - 0xd800) << 10) + (low - 0xdc00))?;
    Some((c, at + 10))
}

/// The four hex digits at `at`.
fn hex4(body: &[u8], at: usize) -> Option<u32> {
    body.get(at..at + 4)?
        .iter()
        .try_fold(0, |n, &d| Some(n << 4 | (d as char).to_digit(16)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `serde_json` makes of `body` as a `Vec<String>`.
    fn reference(body: &[u8]) -> Option<Vec<String>> {
        serde_json::from_slice(body).ok()
    }

    #[test]
    fn takes_what_serde_json_takes_and_gives_the_same_strings() {
        let cases: &[&[u8]] = &[
            br#"[]"#,
            br#" [ ] "#,
            b"\t[\r\n\"a\" ,\n \"b\"]\n",
            br#"["a","b"]"#,
            br#"["","x"]"#,
            br#"["\"\\\/\b\f\n\r\t"]"#,
            br#"["\u0041\u00e9\u2028\uFFFF"]"#,
            br#"["\ud83d\ude00"]"#,
            "[\"caf\u{e9} \u{1f600}\"]".as_bytes(),
            br#"["\ud83d"]"#,
            br#"["\ude00"]"#,
            br#"["\ud83d\u0041"]"#,
            br#"["\ud83dx"]"#,
            br#"["\u12"]"#,
            br#"["\u12g4"]"#,
            br#"["\x"]"#,
            b"[\"\x01\"]",
            b"[\"a\\\x01\"]",
            b"[\"\xff\"]",
            b"[\"\\n\xc3\"]",
            br#"["a",]"#,
            br#"[,"a"]"#,
            br#"["a" "b"]"#,
            br#"["a"]x"#,
            br#"["a"] ]"#,
            br#"["a""#,
            br#"["a"#,
            br#"["#,
            br#"[1]"#,
            br#"["a",1]"#,
            br#""a""#,
            br#"{}"#,
            b"",
            b" ",
        ];
        for &body in cases {
            let ours = strings(&Bytes::copy_from_slice(body))
                .map(|v| v.iter().map(|s| s.as_str().to_owned()).collect::<Vec<_>>());
            assert_eq!(ours, reference(body), "{:?}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn a_string_without_escapes_is_the_bodys_own_memory() {
        let body = Bytes::from_static(br#"["plain","es\"caped"]"#);
        let strings = strings(&body).unwrap();
        let plain = Bytes::from(strings[0].clone());
        assert_eq!(plain.as_ptr(), body[2..].as_ptr());
        assert_eq!(strings[1].as_str(), "es\"caped");
    }
}
