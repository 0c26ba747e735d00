//! The policy document: written with quick-xml from the allow-list, or read from a hand-written
//! file and validated with quick-xml. Pure: no I/O.

use std::fmt;

use bytes::Bytes;
use quick_xml::Reader;
use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesStart, BytesText, Event};

/// What one `<allow-access-from>` grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// A host name, a `*.example.com` pattern, or `*`.
    pub domain: String,
    /// `*`, or a comma-separated list of ports and `low-high` ranges.
    pub to_ports: String,
}

/// Writes the policy for `grants`, terminated by the NUL byte Flash expects.
///
/// `master` adds `<site-control permitted-cross-domain-policies="master-only"/>`, which belongs
/// only in the master policy (the one on port 843).
pub fn build(grants: &[Grant], master: bool) -> Bytes {
    let mut writer = prologue();
    let _ = writer
        .create_element("cross-domain-policy")
        .write_inner_content(|w| {
            if master {
                w.create_element("site-control")
                    .with_attribute(("permitted-cross-domain-policies", "master-only"))
                    .write_empty()?;
            }
            for grant in grants {
                w.create_element("allow-access-from")
                    .with_attribute(("domain", grant.domain.as_str()))
                    .with_attribute(("to-ports", grant.to_ports.as_str()))
                    .write_empty()?;
            }
            Ok(())
        });
    let mut out = writer.into_inner();
    out.push(0);
    Bytes::from(out)
}

/// A policy document's writer, its XML declaration and DOCTYPE written. Writing into a Vec
/// cannot fail, so the writes' results (here and in the callers) are infallible.
pub(super) fn prologue() -> Writer<Vec<u8>> {
    let mut writer = Writer::new_with_indent(Vec::with_capacity(512), b' ', 2);
    let _ = writer.write_event(Event::Decl(BytesDecl::new("1.0", None, None)));
    let _ = writer.write_event(Event::DocType(BytesText::from_escaped(
        r#"cross-domain-policy SYSTEM "/xml/dtds/cross-domain-policy.dtd""#,
    )));
    writer
}

/// A problem in a hand-written policy file, with the line it is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyFileError {
    /// 1-based line number of the problem.
    pub line: usize,
    /// What is wrong, in words.
    pub message: String,
}

impl fmt::Display for PolicyFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for PolicyFileError {}

/// Checks a hand-written socket policy and returns what it grants.
///
/// It must be well-formed XML with a single `<cross-domain-policy>` root holding only
/// `<site-control>`, `<allow-access-from>` (with `domain` and a valid `to-ports`) and
/// `<allow-http-request-headers-from>`, and must grant something.
pub fn validate(src: &[u8]) -> Result<Vec<Grant>, PolicyFileError> {
    let line_at = |pos: u64| {
        let pos = (pos as usize).min(src.len());
        1 + src[..pos].iter().filter(|&&b| b == b'\n').count()
    };
    let fail = |pos: u64, message: String| PolicyFileError {
        line: line_at(pos),
        message,
    };

    if let Some(pos) = src.iter().position(|&b| b == 0) {
        return Err(fail(
            pos as u64,
            "contains a NUL byte, which would end the policy early".into(),
        ));
    }
    if src.iter().all(u8::is_ascii_whitespace) {
        return Err(fail(0, "the policy file is empty".into()));
    }

    let mut reader = Reader::from_reader(src);
    let mut grants = Vec::new();
    let mut depth = 0usize;
    let mut seen_root = false;
    loop {
        let start = reader.buffer_position();
        let event = reader
            .read_event()
            .map_err(|e| fail(reader.error_position(), format!("not well-formed XML: {e}")))?;
        let (element, empty) = match event {
            Event::Eof => break,
            Event::Start(e) => (e, false),
            Event::Empty(e) => (e, true),
            Event::End(_) => {
                depth -= 1;
                continue;
            }
            // XML's white space only: a form feed or a no-break space is text.
            Event::Text(t) if depth == 0 && !t.bytes().all(|b| b" \t\r\n".contains(&b)) => {
                return Err(fail(start, "text outside the root element".into()));
            }
            Event::GeneralRef(_) | Event::CData(_) if depth == 0 => {
                return Err(fail(start, "text outside the root element".into()));
            }
            Event::DocType(_) if seen_root => {
                return Err(fail(
                    start,
                    "<!DOCTYPE> belongs before the root element".into(),
                ));
            }
            _ => continue,
        };
        let name = element.name().as_ref().to_string();
        match depth {
            0 if seen_root => return Err(fail(start, "more than one root element".into())),
            0 if name != "cross-domain-policy" => {
                return Err(fail(
                    start,
                    format!("the root element is <{name}>, expected <cross-domain-policy>"),
                ));
            }
            0 => seen_root = true,
            1 => {
                if let Some(grant) = check_child(&name, &element).map_err(|m| fail(start, m))? {
                    grants.push(grant);
                }
            }
            _ => {
                return Err(fail(
                    start,
                    format!("unexpected <{name}> nested inside a policy element"),
                ));
            }
        }
        if !empty {
            depth += 1;
        }
    }
    if depth > 0 {
        return Err(fail(
            src.len() as u64,
            "the file ends before its elements are closed".into(),
        ));
    }
    if !seen_root {
        return Err(fail(
            src.len() as u64,
            "no <cross-domain-policy> element".into(),
        ));
    }
    if grants.is_empty() {
        return Err(fail(
            src.len() as u64,
            "the policy grants nothing: add <allow-access-from domain=\"...\" to-ports=\"...\"/>"
                .into(),
        ));
    }
    Ok(grants)
}

/// Checks one child of `<cross-domain-policy>`; returns the grant of an `<allow-access-from>`.
fn check_child(name: &str, element: &BytesStart<'_>) -> Result<Option<Grant>, String> {
    let mut domain = None;
    let mut to_ports = None;
    for attr in element.attributes() {
        let attr = attr.map_err(|e| format!("bad attribute in <{name}>: {e}"))?;
        let value = attr
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|e| format!("bad attribute value in <{name}>: {e}"))?
            .into_owned();
        match attr.key.as_ref() {
            "domain" => domain = Some(value),
            "to-ports" => to_ports = Some(value),
            "permitted-cross-domain-policies" if name == "site-control" => {
                const KNOWN: [&str; 5] = [
                    "none",
                    "master-only",
                    "by-content-type",
                    "by-ftp-filename",
                    "all",
                ];
                if !KNOWN.contains(&value.as_str()) {
                    return Err(format!(
                        "permitted-cross-domain-policies=\"{value}\" is not one of {}",
                        KNOWN.join(", ")
                    ));
                }
            }
            _ => {}
        }
    }
    match name {
        "site-control" | "allow-http-request-headers-from" => Ok(None),
        "allow-access-from" => {
            let domain = domain
                .filter(|d| !d.trim().is_empty())
                .ok_or("<allow-access-from> needs a domain attribute")?;
            if domain.contains(char::is_whitespace) {
                return Err(format!("domain=\"{domain}\" contains white space"));
            }
            let to_ports = to_ports
                .ok_or("<allow-access-from> needs a to-ports attribute in a socket policy")?;
            check_ports(&to_ports)?;
            Ok(Some(Grant { domain, to_ports }))
        }
        _ => Err(format!(
            "unknown element <{name}>: a socket policy holds <site-control> and <allow-access-from>"
        )),
    }
}

/// Checks a `to-ports` value: `*`, or a comma-separated list of ports and `low-high` ranges.
fn check_ports(value: &str) -> Result<(), String> {
    if value.trim() == "*" {
        return Ok(());
    }
    let port = |s: &str| -> Result<u16, String> {
        s.trim()
            .parse::<u16>()
            .ok()
            .filter(|&p| p > 0)
            .ok_or_else(|| {
                format!(
                    "to-ports=\"{value}\": \"{}\" is not a port number",
                    s.trim()
                )
            })
    };
    for part in value.split(',') {
        match part.split_once('-') {
            Some((low, high)) => {
                if port(low)? > port(high)? {
                    return Err(format!(
                        "to-ports=\"{value}\": range \"{}\" runs backwards",
                        part.trim()
                    ));
                }
            }
            None => {
                port(part)?;
            }
        }
    }
    Ok(())
}

/// The lowest port a `to-ports` value grants (`*` grants port 1). Adobe's rule: a policy served
/// from a port at or above 1024 cannot grant ports below 1024.
pub fn lowest_port(to_ports: &str) -> u16 {
    to_ports
        .split([',', '-'])
        .filter_map(|p| match p.trim() {
            "*" => Some(1),
            p => p.parse().ok(),
        })
        .min()
        .unwrap_or(u16::MAX)
}

/// True when a `to-ports` value (`*`, or ports and ranges separated by commas) grants `port`.
pub fn grants_port(to_ports: &str, port: u16) -> bool {
    to_ports.split(',').map(str::trim).any(|part| {
        let (low, high) = part.split_once('-').unwrap_or((part, part));
        part == "*"
            || matches!((low.trim().parse::<u16>(), high.trim().parse::<u16>()), (Ok(low), Ok(high)) if (low..=high).contains(&port))
    })
}

/// True when a policy's `domain` value (`*`, `*.example.com` or a host) grants pages from
/// `host`.
pub fn grants_domain(domain: &str, host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match domain.strip_prefix("*.") {
        _ if domain == "*" => true,
        Some(parent) => {
            let parent = parent.to_ascii_lowercase();
            let host = host.to_ascii_lowercase();
            host == parent || host.ends_with(&format!(".{parent}"))
        }
        None => domain.eq_ignore_ascii_case(host),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_and_domains_granted_read_as_flash_reads_them() {
        assert!(grants_port("*", 8080));
        assert!(grants_port("80, 8000-9000", 8443));
        assert!(!grants_port("80,443", 8080));
        assert!(grants_domain("*.example.com", "play.example.com"));
        assert!(grants_domain("*.example.com", "example.com"));
        assert!(!grants_domain("*.example.com", "badexample.com"));
        assert!(grants_domain("Kiosk.Local", "kiosk.local"));
        assert!(grants_domain("::1", "[::1]"));
    }

    fn grant(domain: &str, to_ports: &str) -> Grant {
        Grant {
            domain: domain.into(),
            to_ports: to_ports.into(),
        }
    }

    #[test]
    fn master_policy_has_site_control_and_ends_in_nul() {
        let xml = build(&[grant("localhost", "8080")], true);
        assert_eq!(xml.last(), Some(&0));
        let text = std::str::from_utf8(&xml[..xml.len() - 1]).unwrap();
        assert!(
            text.contains(r#"<site-control permitted-cross-domain-policies="master-only"/>"#),
            "{text}"
        );
        assert!(
            text.contains(r#"<allow-access-from domain="localhost" to-ports="8080"/>"#),
            "{text}"
        );
        assert_eq!(
            validate(&xml[..xml.len() - 1]).unwrap(),
            vec![grant("localhost", "8080")]
        );
    }

    #[test]
    fn non_master_policy_has_no_site_control() {
        let xml = build(&[grant("*", "8080,8443")], false);
        assert!(!std::str::from_utf8(&xml).unwrap().contains("site-control"));
    }

    #[test]
    fn attribute_values_are_escaped() {
        let xml = build(&[grant("a\"b<c", "1")], false);
        let text = std::str::from_utf8(&xml[..xml.len() - 1]).unwrap();
        assert!(text.contains("a&quot;b&lt;c"), "{text}");
    }

    #[test]
    fn empty_file_is_rejected() {
        let err = validate(b"  \n\n").unwrap_err();
        assert!(err.message.contains("empty"), "{err}");
    }

    #[test]
    fn malformed_xml_names_the_line() {
        let src = b"<cross-domain-policy>\n  <allow-access-from domain=\"*\" to-ports=\"80\"/>\n</cross-domain-polic>\n";
        let err = validate(src).unwrap_err();
        assert_eq!(err.line, 3, "{err}");
        assert!(err.message.contains("not well-formed"), "{err}");
    }

    #[test]
    fn missing_to_ports_is_rejected_with_its_line() {
        let src = b"<?xml version=\"1.0\"?>\n<cross-domain-policy>\n<allow-access-from domain=\"*\"/>\n</cross-domain-policy>";
        let err = validate(src).unwrap_err();
        assert_eq!(err.line, 3);
        assert!(err.message.contains("to-ports"), "{err}");
    }

    #[test]
    fn bad_ports_are_rejected() {
        for bad in ["", "http", "0", "70000", "90-80", "80,,81"] {
            let src = format!(
                r#"<cross-domain-policy><allow-access-from domain="*" to-ports="{bad}"/></cross-domain-policy>"#
            );
            assert!(
                validate(src.as_bytes()).is_err(),
                "to-ports={bad:?} accepted"
            );
        }
    }

    #[test]
    fn wrong_root_unknown_child_and_no_grant_are_rejected() {
        assert!(
            validate(b"<policy/>")
                .unwrap_err()
                .message
                .contains("root element")
        );
        assert!(
            validate(b"<cross-domain-policy><allow/></cross-domain-policy>")
                .unwrap_err()
                .message
                .contains("unknown element")
        );
        assert!(
            validate(b"<cross-domain-policy/>")
                .unwrap_err()
                .message
                .contains("grants nothing")
        );
        assert!(
            validate(b"<cross-domain-policy></cross-domain-policy><x/>")
                .unwrap_err()
                .message
                .contains("more than one root")
        );
    }

    #[test]
    fn an_element_left_open_is_rejected() {
        let src = b"<cross-domain-policy>\n<allow-access-from domain=\"*\" to-ports=\"80\"/>\n";
        let err = validate(src).unwrap_err();
        assert_eq!(err.line, 3, "{err}");
        assert!(err.message.contains("closed"), "{err}");
        let inner = b"<cross-domain-policy><allow-access-from domain=\"*\" to-ports=\"80\">";
        assert!(validate(inner).is_err());
    }

    #[test]
    fn only_xml_white_space_may_surround_the_root() {
        let root = r#"<cross-domain-policy><allow-access-from domain="*" to-ports="80"/></cross-domain-policy>"#;
        assert!(validate(format!(" \t\r\n{root}\r\n").as_bytes()).is_ok());
        for around in ["\u{c}", "\u{a0}", "\u{3000}"] {
            let err = validate(format!("{root}{around}").as_bytes()).unwrap_err();
            assert!(err.message.contains("text outside"), "{around:?}: {err}");
        }
    }

    #[test]
    fn references_and_cdata_outside_the_root_are_text_outside_it() {
        let root = r#"<cross-domain-policy><allow-access-from domain="*" to-ports="80"/></cross-domain-policy>"#;
        for src in [
            format!("&amp;{root}"),
            format!("{root}&#65;"),
            format!("{root}<![CDATA[x]]>"),
        ] {
            let err = validate(src.as_bytes()).unwrap_err();
            assert!(err.message.contains("text outside"), "{src}: {err}");
        }
    }

    #[test]
    fn a_doctype_comes_before_the_root_only() {
        let grant = r#"<allow-access-from domain="*" to-ports="80"/>"#;
        for src in [
            format!("<cross-domain-policy><!DOCTYPE x>{grant}</cross-domain-policy>"),
            format!("<cross-domain-policy>{grant}</cross-domain-policy><!DOCTYPE x>"),
        ] {
            let err = validate(src.as_bytes()).unwrap_err();
            assert!(err.message.contains("DOCTYPE"), "{src}: {err}");
        }
    }

    #[test]
    fn nul_inside_the_file_is_rejected() {
        assert!(
            validate(b"<cross-domain-policy>\0</cross-domain-policy>")
                .unwrap_err()
                .message
                .contains("NUL")
        );
    }

    #[test]
    fn a_typical_hand_written_policy_passes() {
        let src = br#"<?xml version="1.0"?>
<!DOCTYPE cross-domain-policy SYSTEM "/xml/dtds/cross-domain-policy.dtd">
<cross-domain-policy>
  <!-- games -->
  <site-control permitted-cross-domain-policies="master-only"/>
  <allow-access-from domain="*.example.com" to-ports="507,516-523"/>
  <allow-access-from domain="*" to-ports="*"/>
</cross-domain-policy>
"#;
        let grants = validate(src).unwrap();
        assert_eq!(grants.len(), 2);
        assert_eq!(lowest_port(&grants[0].to_ports), 507);
        assert_eq!(lowest_port(&grants[1].to_ports), 1);
    }
}
