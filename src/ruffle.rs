//! `/ruffle-config.js`: Ruffle's `socketProxy` setting for this gateway, so that a page needs
//! one `<script>` line to let Flash sockets under Ruffle reach the allowed targets.
//!
//! Ruffle maps each `host:port` a Flash `Socket` connects to onto a WebSocket URL, matching
//! host and port as exact strings. The script computes the host names from the page's own
//! location at run time: Flash content connects to the host the page was loaded from.

use std::fmt::Write;

use crate::backend::proxy::Targets;

/// The script, for a socket-proxy route at `proxy_path` (none: the script says so and sets
/// nothing) and the gateway's main port.
pub fn config_script(targets: &Targets, proxy_path: Option<&str>, main_port: u16) -> String {
    let mut js = String::from(
        "// Ruffle's socketProxy for flashgate: Flash sockets to these host:port pairs go through\n\
         // flashgate's socket proxy. Load it before the SWF starts (after ruffle.js is fine).\n",
    );
    let Some(path) = proxy_path else {
        js.push_str("// No socket-proxy route is configured (see --route PATH=proxy).\n");
        return js;
    };
    js.push_str("(function () {\n");
    let _ = writeln!(
        js,
        "  var base = (location.protocol === \"https:\" ? \"wss://\" : \"ws://\") + location.host + {};",
        json_string(&format!("{path}?target="))
    );
    js.push_str("  var entries = [\n");
    let mut first = true;
    for (target, own) in targets.iter() {
        // The gateway itself is reached by whatever name the page used for it.
        let host = match own {
            true => "location.hostname".to_string(),
            false => json_string(&target.host),
        };
        let port = match own {
            true => main_port,
            false => target.port,
        };
        let _ = write!(
            js,
            "{}    {{ host: {host}, port: {port}, proxyUrl: base + {} }}",
            if first { "" } else { ",\n" },
            json_string(&target.to_string())
        );
        first = false;
    }
    js.push_str(
        "\n  ];\n  var ruffle = window.RufflePlayer = window.RufflePlayer || {};\n  \
         var config = ruffle.config = ruffle.config || {};\n  \
         config.socketProxy = (config.socketProxy || []).concat(entries);\n})();\n",
    );
    js
}

/// A JavaScript string literal (JSON's is one, and escapes `<` too, for inline use).
fn json_string(text: &str) -> String {
    serde_json::to_string(text)
        .expect("a string serialises")
        .replace('<', "\\u003c")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::proxy::TargetSpec;

    #[test]
    fn own_gateway_is_mapped_from_the_page_host() {
        let js = config_script(
            &Targets::resolve(&[], "0.0.0.0:8080".parse().unwrap()),
            Some("/socket"),
            8080,
        );
        assert!(
            js.contains(
                "{ host: location.hostname, port: 8080, proxyUrl: base + \"127.0.0.1:8080\" }"
            ),
            "{js}"
        );
        assert!(js.contains("\"/socket?target=\""), "{js}");
        assert!(js.contains("concat(entries)"));
    }

    #[test]
    fn listed_targets_are_mapped_by_name() {
        let specs = ["game.example:9000", "[::1]:7000"].map(|t| TargetSpec::parse(t).unwrap());
        let targets = Targets::resolve(&specs, "127.0.0.1:8080".parse().unwrap());
        let js = config_script(&targets, Some("/p"), 8080);
        assert!(
            js.contains(
                "{ host: \"game.example\", port: 9000, proxyUrl: base + \"game.example:9000\" },"
            ),
            "{js}"
        );
        assert!(
            js.contains("{ host: \"::1\", port: 7000, proxyUrl: base + \"[::1]:7000\" }"),
            "{js}"
        );
    }

    #[test]
    fn without_a_proxy_route_nothing_is_set() {
        let js = config_script(
            &Targets::resolve(&[], "127.0.0.1:1".parse().unwrap()),
            None,
            1,
        );
        assert!(!js.contains("socketProxy ="));
    }
}
