//! A route's `[route.upstream]` table: its settings for the server its backend URL names.

use serde::Deserialize;
use toml::Spanned;

use super::span::Source;
use crate::backend::relay::Wire;
use crate::config::UpstreamSpec;
use crate::config::upstream::proxy_version;

/// A `[route.upstream]` table: each key replaces one of [`crate::config::UpstreamOptions`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Table {
    /// How long connecting may take.
    connect_timeout: Option<Spanned<String>>,
    /// How long a write to the server may wait.
    write_timeout: Option<Spanned<String>>,
    /// `v1` or `v2`: the PROXY header to send first.
    proxy_protocol: Option<Spanned<String>>,
    /// WebSocket: tell the server the client's address.
    forwarded: Option<Spanned<bool>>,
    /// WebSocket: pass the client's cookies on.
    cookies: Option<Spanned<bool>>,
    /// The largest message either way.
    max_message_size: Option<Spanned<usize>>,
    /// `wss://`: the CA certificates to trust instead of the system's.
    ca_file: Option<Spanned<std::path::PathBuf>>,
}

/// Sets in `spec` what `table` gives, each checked against the kind of server it names.
pub(super) fn apply(
    src: &Source<'_>,
    table: &Table,
    spec: &mut UpstreamSpec,
) -> anyhow::Result<()> {
    let options = &mut spec.options;
    for (key, value, target) in [
        (
            "upstream.connect_timeout",
            &table.connect_timeout,
            &mut options.connect_timeout,
        ),
        (
            "upstream.write_timeout",
            &table.write_timeout,
            &mut options.write_timeout,
        ),
    ] {
        if let Some(duration) = src.parse(value.as_ref(), key, super::duration)? {
            if duration.is_zero() {
                let span = value.as_ref().map_or(0..0, Spanned::span);
                return Err(src.error(span, format!("{key} must be more than 0s")));
            }
            *target = Some(duration);
        }
    }
    if let Some(version) = src.parse(
        table.proxy_protocol.as_ref(),
        "upstream.proxy_protocol",
        proxy_version,
    )? {
        options.proxy_header = Some(version);
    }
    if let Some(size) = src.size(table.max_message_size.as_ref(), "upstream.max_message_size")? {
        options.max_message_size = Some(size);
    }
    let websocket = spec.wire == Wire::WebSocket;
    let only_websocket = |key: &str, span| {
        let why = format!("upstream.{key}: only a WebSocket upstream (ws://, wss://) takes it");
        Err(src.error(span, why))
    };
    for (key, value, target) in [
        ("forwarded", &table.forwarded, &mut options.forwarded),
        ("cookies", &table.cookies, &mut options.cookies),
    ] {
        if let Some(value) = value {
            if !websocket {
                return only_websocket(key, value.span());
            }
            *target = *value.get_ref();
        }
    }
    if let Some(file) = &table.ca_file {
        if !spec.tls {
            let why = "upstream.ca_file: only a wss:// upstream takes it";
            return Err(src.error(file.span(), why));
        }
        crate::tls::roots_from(file.get_ref())
            .map_err(|why| src.error(file.span(), format!("upstream.ca_file: {why:#}")))?;
        options.ca_file = Some(file.get_ref().clone());
    }
    Ok(())
}
