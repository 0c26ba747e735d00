//! The configuration file (`--config FILE`, TOML): every command-line option, by its long
//! name with `_` for `-`, and `[[route]]` tables with each route's own settings
//! (`docs/CONFIG.md`). Its values are checked by the rules the command line's are, and a bad
//! one is reported with the file's name, the line and the column.
//!
//! A value it sets replaces the default only: one given on the command line or in the
//! environment ([`Given`]) wins.

use std::ops::Range;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;
use toml::Spanned;

use super::{BackendSpec, Config, RouteSpec, SockjsOptions, routes};
use crate::args::Given;
use crate::backend::proxy::TargetSpec;
use crate::origin::AllowList;
use span::Source;

mod span;
mod upstream;

/// The file as written: every key optional, none unknown.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    /// `--listen`.
    listen: Option<Spanned<String>>,
    /// `--policy-listen`: an address or `off`.
    policy_listen: Option<Spanned<String>>,
    /// `--metrics-listen`.
    metrics_listen: Option<Spanned<String>>,
    /// `--allow-origin`.
    allow_origin: Option<Spanned<Vec<String>>>,
    /// `--policy-file`.
    policy_file: Option<Spanned<PathBuf>>,
    /// `--route`, with each route's settings.
    route: Option<Vec<Route>>,
    /// `--proxy-target`.
    proxy_target: Option<Vec<Spanned<String>>>,
    /// `--tls-cert`.
    tls_cert: Option<PathBuf>,
    /// `--tls-key`.
    tls_key: Option<PathBuf>,
    /// `--tls-only`.
    tls_only: Option<bool>,
    /// `--log-format`.
    log_format: Option<crate::args::LogFormat>,
    /// `--user`.
    user: Option<Spanned<String>>,
    /// `--web-dir`.
    web_dir: Option<PathBuf>,
    /// `--assets-dir`.
    assets_dir: Option<PathBuf>,
    /// `--serve-hidden`.
    serve_hidden: Option<bool>,
    /// `--follow-symlinks`.
    follow_symlinks: Option<bool>,
    /// `--read-timeout`.
    read_timeout: Option<Spanned<String>>,
    /// `--handshake-timeout`.
    handshake_timeout: Option<Spanned<String>>,
    /// `--idle-timeout`.
    idle_timeout: Option<Spanned<String>>,
    /// `--hibernate-after`.
    hibernate_after: Option<Spanned<String>>,
    /// `--max-message-size`.
    max_message_size: Option<Spanned<usize>>,
    /// `--send-backlog`.
    send_backlog: Option<Spanned<usize>>,
    /// `--max-connections`.
    max_connections: Option<Spanned<usize>>,
    /// `--listen-backlog`.
    listen_backlog: Option<u32>,
    /// `--drain-timeout`.
    drain_timeout: Option<Spanned<String>>,
    /// `--per-ip-connections`.
    per_ip_connections: Option<Spanned<usize>>,
    /// `--per-ip-handshakes`.
    per_ip_handshakes: Option<u32>,
    /// `--trusted-proxy`.
    trusted_proxy: Option<Vec<Spanned<String>>>,
}

/// One `[[route]]` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Route {
    /// The route's path.
    path: Spanned<String>,
    /// Its backend's name.
    backend: Spanned<String>,
    /// A `close` backend's close code.
    code: Option<Spanned<u16>>,
    /// A `close` backend's close reason.
    reason: Option<Spanned<String>>,
    /// `[route.sockjs]`: SockJS on this route.
    sockjs: Option<Sockjs>,
    /// `[route.upstream]`: an upstream backend's settings.
    upstream: Option<upstream::Table>,
}

/// A `[route.sockjs]` table: each key replaces one of [`SockjsOptions::for_backend`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Sockjs {
    /// [`SockjsOptions::enabled`].
    enabled: Option<Spanned<bool>>,
    /// [`SockjsOptions::websocket`].
    websocket: Option<bool>,
    /// [`SockjsOptions::cookie`].
    cookie: Option<bool>,
    /// [`SockjsOptions::heartbeat`].
    heartbeat: Option<Spanned<String>>,
    /// [`SockjsOptions::disconnect_delay`].
    disconnect_delay: Option<Spanned<String>>,
    /// [`SockjsOptions::response_limit`].
    response_limit: Option<Spanned<usize>>,
}

/// Reads the configuration file at `path`, checks all of it, and sets in `config` each value
/// it gives that `given` does not.
pub fn apply(path: &Path, config: &mut Config, given: &Given) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the configuration file {}", path.display()))?;
    let src = Source { path, text: &text };
    let file: File = toml::from_str(&text).map_err(|error| src.toml_error(&error))?;
    let set = Overlay { given };
    limits(&src, &file, &mut config.limits, &set)?;

    let listen = src.parse(file.listen.as_ref(), "listen", super::resolve)?;
    let policy_listen = src.parse(
        file.policy_listen.as_ref(),
        "policy_listen",
        super::policy_listen,
    )?;
    let moved = set.put("listen", &mut config.listen, listen);
    if !given.contains("policy-listen") {
        match policy_listen {
            Some(policy) => config.policy_listen = policy,
            None if moved => config.policy_listen = Some(super::policy_port_of(config.listen)),
            None => {}
        }
    }

    let metrics = src.parse(
        file.metrics_listen.as_ref(),
        "metrics_listen",
        super::resolve,
    )?;
    set.put(
        "metrics_listen",
        &mut config.metrics_listen,
        metrics.map(Some),
    );

    let allow = match file.allow_origin.as_ref() {
        Some(list) if !list.get_ref().is_empty() => {
            Some(Some(AllowList::parse(list.get_ref()).map_err(|why| {
                src.error(list.span(), format!("allow_origin: {why:#}"))
            })?))
        }
        _ => None,
    };
    set.put("allow_origin", &mut config.allow_origin, allow);

    let policy = match &file.policy_file {
        Some(file) => Some(Some(
            super::load_policy_file(file.get_ref().clone(), "policy_file")
                .map_err(|why| src.error(file.span(), format!("{why:#}")))?,
        )),
        None => None,
    };
    set.put("policy_file", &mut config.policy_file, policy);

    let routes = file.route.map(|list| route_list(&src, list)).transpose()?;
    set.put("route", &mut config.routes, routes);

    let mut targets = Vec::new();
    for target in file.proxy_target.iter().flatten() {
        let parsed = TargetSpec::parse(target.get_ref())
            .map_err(|why| src.error(target.span(), format!("proxy_target: {why}")))?;
        targets.push(parsed);
    }
    let targets = file.proxy_target.is_some().then_some(targets);
    set.put("proxy_target", &mut config.proxy_targets, targets);

    let user = match &file.user {
        Some(name) => Some(Some(
            crate::privileges::RunAs::look_up(name.get_ref())
                .map_err(|why| src.error(name.span(), format!("user: {why:#}")))?,
        )),
        None => None,
    };
    set.put("user", &mut config.user, user);
    set.put("log_format", &mut config.log_format, file.log_format);
    // The pair is one setting: the file's replaces the defaults' (none) unless the command
    // line gave either.
    if !given.contains("tls-cert") && !given.contains("tls-key") {
        let tls = super::tls_files(file.tls_cert, file.tls_key, "tls_cert", "tls_key")
            .with_context(|| format!("{}", src.path.display()))?;
        if tls.is_some() {
            config.tls = tls;
        }
    }
    set.put("tls_only", &mut config.tls_only, file.tls_only);
    let mut proxies = Vec::new();
    for proxy in file.trusted_proxy.iter().flatten() {
        let parsed = super::parse_proxy(proxy.get_ref())
            .map_err(|why| src.error(proxy.span(), format!("trusted_proxy: {why}")))?;
        proxies.push(parsed);
    }
    let proxies = file.trusted_proxy.is_some().then_some(proxies);
    set.put("trusted_proxy", &mut config.trusted_proxies, proxies);
    set.put("web_dir", &mut config.web_dir, file.web_dir.map(Some));
    set.put(
        "assets_dir",
        &mut config.assets_dir,
        file.assets_dir.map(Some),
    );
    set.put(
        "serve_hidden",
        &mut config.exposure.hidden,
        file.serve_hidden,
    );
    let follow = file.follow_symlinks;
    set.put(
        "follow_symlinks",
        &mut config.exposure.follow_symlinks,
        follow,
    );

    Ok(())
}

/// The timeouts and sizes the file sets.
fn limits(
    src: &Source<'_>,
    file: &File,
    limits: &mut super::Limits,
    set: &Overlay<'_>,
) -> anyhow::Result<()> {
    for (key, value, target) in [
        ("read_timeout", &file.read_timeout, &mut limits.read_timeout),
        (
            "handshake_timeout",
            &file.handshake_timeout,
            &mut limits.handshake_timeout,
        ),
        ("idle_timeout", &file.idle_timeout, &mut limits.idle_timeout),
        (
            "hibernate_after",
            &file.hibernate_after,
            &mut limits.hibernate_after,
        ),
        (
            "drain_timeout",
            &file.drain_timeout,
            &mut limits.drain_timeout,
        ),
    ] {
        let duration = src.parse(value.as_ref(), key, duration)?;
        set.put(key, target, duration);
    }
    for (key, value, target) in [
        (
            "max_message_size",
            &file.max_message_size,
            &mut limits.max_message_size,
        ),
        ("send_backlog", &file.send_backlog, &mut limits.send_backlog),
        (
            "max_connections",
            &file.max_connections,
            &mut limits.max_connections,
        ),
        (
            "per_ip_connections",
            &file.per_ip_connections,
            &mut limits.per_ip_connections,
        ),
    ] {
        let size = src.size(value.as_ref(), key)?;
        set.put(key, target, size);
    }
    set.put(
        "listen_backlog",
        &mut limits.listen_backlog,
        file.listen_backlog,
    );
    set.put(
        "per_ip_handshakes",
        &mut limits.per_ip_handshakes,
        file.per_ip_handshakes,
    );
    Ok(())
}

/// The `[[route]]` tables, each checked as `--route` is and beside the ones before it; none
/// gives the defaults.
fn route_list(src: &Source<'_>, list: Vec<Route>) -> anyhow::Result<Vec<RouteSpec>> {
    if list.is_empty() {
        return Ok(routes::defaults());
    }
    let mut specs: Vec<RouteSpec> = Vec::new();
    for route in list {
        let path = &route.path;
        routes::check_path(path.get_ref(), &specs)
            .map_err(|why| src.error(path.span(), format!("path: {why}")))?;
        let backend = backend(src, &route)?;
        let sockjs = match &route.sockjs {
            Some(table) => sockjs(src, table, &backend)?,
            None => SockjsOptions::for_backend(&backend),
        };
        specs.push(RouteSpec {
            path: path.get_ref().clone(),
            backend,
            sockjs,
        });
    }
    Ok(specs)
}

/// A route's backend, with a `close` backend's code and reason (which no other takes).
fn backend(src: &Source<'_>, route: &Route) -> anyhow::Result<BackendSpec> {
    let name = &route.backend;
    if route.upstream.is_some() && super::upstream::parse(name.get_ref()) == Ok(None) {
        let why = "upstream: only an upstream backend (ws://, wss://, tcp://, tcp+xmlsocket://) takes this table";
        return Err(src.error(name.span(), why));
    }
    let backend = match name.get_ref().as_str() {
        "echo" => BackendSpec::Echo,
        "broadcast" => BackendSpec::Broadcast,
        "proxy" => BackendSpec::Proxy,
        "close" => {
            let code = route.code.as_ref();
            let reason = route.reason.as_ref();
            if let Some(code) = code {
                routes::check_close_code(*code.get_ref())
                    .map_err(|why| src.error(code.span(), format!("code: {why}")))?;
            }
            if let Some(reason) = reason {
                routes::check_close_reason(reason.get_ref())
                    .map_err(|why| src.error(reason.span(), format!("reason: {why}")))?;
            }
            return Ok(BackendSpec::Close {
                code: code.map_or(routes::CLOSE_CODE, |c| *c.get_ref()),
                reason: reason
                    .map_or(routes::CLOSE_REASON, |r| r.get_ref())
                    .to_string(),
            });
        }
        other => match super::upstream::parse(other) {
            Ok(Some(mut spec)) => {
                if let Some(table) = &route.upstream {
                    upstream::apply(src, table, &mut spec)?;
                }
                BackendSpec::Upstream(spec)
            }
            Err(why) => return Err(src.error(name.span(), format!("backend: {why}"))),
            Ok(None) => {
                let known = BackendSpec::NAMES.join(", ");
                let why = format!(
                    "backend: unknown backend {other:?} (known: {known}, or an upstream's ws://, wss://, tcp:// or tcp+xmlsocket:// URL)"
                );
                return Err(src.error(name.span(), why));
            }
        },
    };
    let extra = route.code.as_ref().map(|c| ("code", c.span()));
    let extra = extra.or(route.reason.as_ref().map(|r| ("reason", r.span())));
    if let Some((key, span)) = extra {
        let why = format!("{key}: only a close backend takes a code and a reason");
        return Err(src.error(span, why));
    }
    Ok(backend)
}

/// A route's SockJS settings: the protocol's defaults for `backend`, and what the table sets.
fn sockjs(
    src: &Source<'_>,
    table: &Sockjs,
    backend: &BackendSpec,
) -> anyhow::Result<SockjsOptions> {
    let mut options = SockjsOptions::for_backend(backend);
    if let Some(enabled) = &table.enabled {
        if *enabled.get_ref() && *backend == BackendSpec::Proxy {
            let why = "sockjs.enabled: SockJS carries text: the socket proxy's byte stream has no place in it";
            return Err(src.error(enabled.span(), why));
        }
        options.enabled = *enabled.get_ref();
    }
    options.websocket = table.websocket.unwrap_or(options.websocket);
    options.cookie = table.cookie.unwrap_or(options.cookie);
    for (key, value, target) in [
        ("sockjs.heartbeat", &table.heartbeat, &mut options.heartbeat),
        (
            "sockjs.disconnect_delay",
            &table.disconnect_delay,
            &mut options.disconnect_delay,
        ),
    ] {
        if let Some(duration) = src.parse(value.as_ref(), key, duration)? {
            if duration.is_zero() {
                return Err(src.error(value_span(value), format!("{key} must be more than 0s")));
            }
            *target = duration;
        }
    }
    if let Some(limit) = &table.response_limit {
        if *limit.get_ref() == 0 {
            let why = "sockjs.response_limit must be at least 1 byte";
            return Err(src.error(limit.span(), why));
        }
        options.response_limit = *limit.get_ref();
    }
    Ok(options)
}

/// The span of a value known to be there.
fn value_span<T>(value: &Option<Spanned<T>>) -> Range<usize> {
    value.as_ref().map_or(0..0, Spanned::span)
}

/// A duration as the command line takes it (`25s`, `1m 30s`).
fn duration(text: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(text)
        .map_err(|why| format!("{text:?} is not a duration like 25s or 1m 30s ({why})"))
}

/// Sets configuration values the command line and the environment left to their defaults.
struct Overlay<'a> {
    /// What they set.
    given: &'a Given,
}

impl Overlay<'_> {
    /// Sets `target` to `value`, if the file gave one and the option `key` (the file's name
    /// for it) was not given: true when it did.
    fn put<T>(&self, key: &str, target: &mut T, value: Option<T>) -> bool {
        match value {
            Some(value) if !self.given.contains(&key.replace('_', "-")) => {
                *target = value;
                true
            }
            _ => false,
        }
    }
}
