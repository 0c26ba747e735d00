//! The URL policy Flash Player fetches over HTTP (`/crossdomain.xml`) before a SWF from
//! another site may load data with `URLLoader` or open a `NetConnection` here: the same
//! domains as the socket policy, without its ports (a URL policy has none), and no NUL.
//! Pure: no I/O.

use super::xml::Grant;
use bytes::Bytes;

/// The media type Flash Player's `by-content-type` meta-policy asks for.
pub const CONTENT_TYPE: &str = "text/x-cross-domain-policy";

/// Writes the URL policy granting each domain of `grants` once, in their order. It is the
/// site's master policy, so it also says no other policy file on this host counts.
pub fn build(grants: &[Grant]) -> Bytes {
    let mut domains: Vec<&str> = Vec::with_capacity(grants.len());
    for grant in grants {
        if !domains.contains(&grant.domain.as_str()) {
            domains.push(&grant.domain);
        }
    }
    let mut writer = super::xml::prologue();
    let _ = writer
        .create_element("cross-domain-policy")
        .write_inner_content(|w| {
            w.create_element("site-control")
                .with_attribute(("permitted-cross-domain-policies", "master-only"))
                .write_empty()?;
            for domain in domains {
                w.create_element("allow-access-from")
                    .with_attribute(("domain", domain))
                    .write_empty()?;
            }
            Ok(())
        });
    let mut out = writer.into_inner();
    out.push(b'\n');
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(domain: &str, to_ports: &str) -> Grant {
        Grant {
            domain: domain.into(),
            to_ports: to_ports.into(),
        }
    }

    #[test]
    fn each_domain_once_without_ports_or_nul() {
        let policy = build(&[
            grant("a.example", "80"),
            grant("*.b.example", "843"),
            grant("a.example", "8080"),
        ]);
        let text = std::str::from_utf8(&policy).unwrap();
        assert_eq!(text.matches("<allow-access-from").count(), 2, "{text}");
        assert!(
            text.contains(r#"<allow-access-from domain="a.example"/>"#),
            "{text}"
        );
        assert!(
            text.contains(r#"<allow-access-from domain="*.b.example"/>"#),
            "{text}"
        );
        assert!(!text.contains("to-ports") && !policy.contains(&0), "{text}");
        assert!(
            text.contains(r#"permitted-cross-domain-policies="master-only""#),
            "{text}"
        );
    }

    #[test]
    fn domains_are_escaped() {
        let policy = build(&[grant("a\"b<c", "80")]);
        let text = std::str::from_utf8(&policy).unwrap();
        assert!(text.contains(r#"domain="a&quot;b&lt;c""#), "{text}");
    }
}
