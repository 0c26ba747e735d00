//! The routes as configured: `--route PATH=BACKEND` parsed, and the rules every route keeps
//! wherever it was given (the command line or the configuration file).

use anyhow::{Context, bail};

use super::{BackendSpec, MAX_CLOSE_REASON, RouteSpec};

/// The routes when none are configured.
pub fn defaults() -> Vec<RouteSpec> {
    vec![
        RouteSpec::new("/echo", BackendSpec::Echo),
        RouteSpec::new("/chat", BackendSpec::Broadcast),
        RouteSpec::new("/socket", BackendSpec::Proxy),
    ]
}

/// The `--route` values: each `PATH=BACKEND`; none gives the [`defaults`].
pub fn parse(specs: &[String]) -> anyhow::Result<Vec<RouteSpec>> {
    if specs.is_empty() {
        return Ok(defaults());
    }
    let mut routes: Vec<RouteSpec> = Vec::new();
    for spec in specs {
        let (path, backend) = spec
            .split_once('=')
            .with_context(|| format!("{spec:?} is not PATH=BACKEND"))?;
        let backend =
            parse_backend(backend.trim()).map_err(|why| anyhow::anyhow!("{spec:?}: {why}"))?;
        let path = path.trim();
        if let Err(why) = check_path(path, &routes) {
            bail!("{spec:?}: {why}");
        }
        routes.push(RouteSpec::new(path, backend));
    }
    Ok(routes)
}

/// A backend as `--route` names it: `echo`, `broadcast`, `proxy`,
/// `close[:CODE[:REASON]]` (3000 and "Go away!" unless given), or an upstream's URL
/// ([`super::upstream::parse`]).
pub fn parse_backend(text: &str) -> Result<BackendSpec, String> {
    if let Some(upstream) = super::upstream::parse(text)? {
        return Ok(BackendSpec::Upstream(upstream));
    }
    let mut parts = text.splitn(3, ':');
    let name = parts.next().unwrap_or_default();
    match (name, parts.next()) {
        ("echo", None) => Ok(BackendSpec::Echo),
        ("broadcast", None) => Ok(BackendSpec::Broadcast),
        ("proxy", None) => Ok(BackendSpec::Proxy),
        ("close", code) => {
            let code = match code {
                None => CLOSE_CODE,
                Some(code) => code
                    .trim()
                    .parse()
                    .map_err(|_| format!("close code {code:?} is not a number"))?,
            };
            BackendSpec::close(code, parts.next().unwrap_or(CLOSE_REASON))
        }
        _ => Err(format!(
            "unknown backend {text:?} (known: {}; close takes :CODE:REASON)",
            BackendSpec::NAMES.join(", ")
        )),
    }
}

/// The code a `close` backend closes with unless told otherwise.
pub const CLOSE_CODE: u16 = 3000;

/// The reason a `close` backend gives unless told otherwise.
pub const CLOSE_REASON: &str = "Go away!";

/// Why a `close` backend may not close with `code`, if it may not: it takes 1000 and the
/// applications' codes (3000-4999), not the codes that report what went wrong.
pub fn check_close_code(code: u16) -> Result<(), String> {
    match code {
        1000 | 3000..=4999 => Ok(()),
        _ => Err(format!(
            "close code {code} is not 1000 or an application's code (3000-4999)"
        )),
    }
}

/// Why `reason` does not fit a close frame, if it does not.
pub fn check_close_reason(reason: &str) -> Result<(), String> {
    match reason.len() > MAX_CLOSE_REASON {
        true => Err(format!(
            "the close reason is {} bytes, more than a close frame carries ({MAX_CLOSE_REASON})",
            reason.len()
        )),
        false => Ok(()),
    }
}

/// Why `path` cannot be one more route beside `routes`, if it cannot.
pub fn check_path(path: &str, routes: &[RouteSpec]) -> Result<(), String> {
    if !path.starts_with('/') || path.contains(['?', '#', ' ']) {
        return Err("the path must start with / and hold no query".into());
    }
    if path == "/" || path.ends_with('/') {
        return Err(
            "a route owns its path and everything under it: give a path without a trailing /"
                .into(),
        );
    }
    // A route owns everything under its path: it must not hide the gateway's own files.
    let hides = |own: &str| own == path || own.starts_with(&format!("{path}/"));
    let own = [
        "/assets.json",
        "/ruffle-config.js",
        "/hixie76/web_socket.js",
        "/ruffle/ruffle.js",
    ];
    if let Some(hidden) = own.into_iter().find(|own| hides(own)) {
        return Err(format!(
            "{path} would hide {hidden}, which the gateway serves"
        ));
    }
    if routes.iter().any(|r| r.path == path) {
        return Err(format!("{path} is routed twice"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_takes_an_optional_code_and_reason() {
        assert_eq!(
            parse_backend("close"),
            Ok(BackendSpec::Close {
                code: 3000,
                reason: "Go away!".into()
            })
        );
        assert_eq!(
            parse_backend("close:3001:Under maintenance: back at 10:00"),
            Ok(BackendSpec::Close {
                code: 3001,
                reason: "Under maintenance: back at 10:00".into()
            })
        );
        assert_eq!(
            parse_backend("close:1000"),
            Ok(BackendSpec::Close {
                code: 1000,
                reason: "Go away!".into()
            })
        );
    }

    #[test]
    fn close_refuses_codes_a_server_may_not_choose_and_long_reasons() {
        for code in ["1001", "1005", "1011", "2999", "5000", "x", "-1"] {
            let spec = format!("close:{code}:why");
            assert!(parse_backend(&spec).is_err(), "{spec} accepted");
        }
        assert!(parse_backend(&format!("close:4000:{}", "x".repeat(123))).is_ok());
        let long = parse_backend(&format!("close:4000:{}", "é".repeat(62))).unwrap_err();
        assert!(long.contains("124 bytes"), "{long}");
    }

    #[test]
    fn other_backends_take_no_arguments() {
        for spec in ["echo:1", "proxy:x", "nope", ""] {
            let why = parse_backend(spec).unwrap_err();
            assert!(why.contains("unknown backend"), "{spec}: {why}");
        }
    }
}
