//! The metrics listener (`--metrics-listen`): `GET /metrics` (the exposition), `/healthz`
//! (the process answers) and `/readyz` (it can serve: its listeners are bound, its assets
//! are in place, and every upstream server of its routes accepts a TCP connection). Off by
//! default, and never on the public port unless the operator puts it there.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::header::{ACCEPT, CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use super::Metrics;
use crate::body::{Body, text};

/// The OpenMetrics text format's content type.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Prometheus' older text format's.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What `/readyz` looks at, gathered at start-up.
pub struct Ready {
    /// Each listener the configuration asks for: its name, and where it listens or why it
    /// does not.
    pub listeners: Vec<(&'static str, Result<SocketAddr, String>)>,
    /// What is missing of the assets, looked at on each request (files can go away).
    pub assets: Box<dyn Fn() -> Vec<String> + Send + Sync>,
    /// Each route's upstream server: the route's path, and `host:port`.
    pub upstreams: Vec<(String, String)>,
    /// How long a connection to an upstream server may take.
    pub connect_timeout: Duration,
}

/// Serves the metrics listener until `stop` completes.
pub async fn run(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    ready: Arc<Ready>,
    stop: impl Future<Output = ()>,
) {
    tokio::pin!(stop);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "metrics listener: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut stop => return,
        };
        let (metrics, ready) = (metrics.clone(), ready.clone());
        let service = service_fn(move |req| {
            let (metrics, ready) = (metrics.clone(), ready.clone());
            async move { Ok::<_, Infallible>(answer(req, &metrics, &ready).await) }
        });
        tokio::spawn(async move {
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(Duration::from_secs(60), conn).await;
        });
    }
}

/// One request to the metrics listener.
async fn answer(req: Request<Incoming>, metrics: &Metrics, ready: &Ready) -> Response<Body> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "GET only");
    }
    match req.uri().path() {
        "/metrics" => {
            // What Prometheus asks for first; anyone else gets the older text format.
            let openmetrics = req
                .headers()
                .get_all(ACCEPT)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .any(|v| v.contains("application/openmetrics-text"));
            let (body, kind) = match openmetrics {
                true => (metrics.encode(), OPENMETRICS),
                false => (prometheus_text(&metrics.encode()), PROMETHEUS_TEXT),
            };
            let mut res = text(StatusCode::OK, body.trim_end());
            res.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static(kind));
            res
        }
        "/healthz" => text(StatusCode::OK, "ok"),
        "/readyz" => {
            let (ok, report) = readiness(ready).await;
            let status = match ok {
                true => StatusCode::OK,
                false => StatusCode::SERVICE_UNAVAILABLE,
            };
            text(status, report.trim_end())
        }
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: /metrics, /healthz, /readyz",
        ),
    }
}

/// Each check, one line each (`ok …` or `FAILED …`), and whether all passed.
async fn readiness(ready: &Ready) -> (bool, String) {
    let mut lines = Vec::new();
    for (name, bound) in &ready.listeners {
        lines.push(match bound {
            Ok(addr) => (true, format!("listener {name}: listening on {addr}")),
            Err(why) => (false, format!("listener {name}: {why}")),
        });
    }
    let missing = (ready.assets)();
    lines.push(match missing.is_empty() {
        true => (true, "assets: in place".to_string()),
        false => (false, format!("assets: {}", missing.join("; "))),
    });
    let checks = ready.upstreams.iter().map(|(route, target)| async move {
        let reached = tokio::time::timeout(
            ready.connect_timeout,
            tokio::net::TcpStream::connect(target.as_str()),
        )
        .await;
        match reached {
            Ok(Ok(_)) => (
                true,
                format!("upstream of {route}: {target} accepts connections"),
            ),
            Ok(Err(error)) => (false, format!("upstream of {route}: {target}: {error}")),
            Err(_) => (
                false,
                format!(
                    "upstream of {route}: {target}: no answer in {:?}",
                    ready.connect_timeout
                ),
            ),
        }
    });
    lines.extend(futures_util::future::join_all(checks).await);
    let ok = lines.iter().all(|(ok, _)| *ok);
    let report = lines
        .iter()
        .map(|(ok, line)| format!("{} {line}\n", if *ok { "ok" } else { "FAILED" }))
        .collect();
    (ok, report)
}

/// `openmetrics` (as [`Metrics::encode`] writes it) in Prometheus' older text format
/// (0.0.4), for a scraper that does not ask for OpenMetrics: `curl`, `promtool`, older
/// Prometheus servers. The samples are the same; a counter's `HELP` and `TYPE` name its
/// samples (`…_total`), as that format wants, and the OpenMetrics-only lines (`UNIT`, `EOF`)
/// go.
pub fn prometheus_text(openmetrics: &str) -> String {
    let counters: Vec<&str> = openmetrics
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len() + 16 * counters.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let named = ["# HELP ", "# TYPE "].iter().find_map(|tag| {
            let rest = line.strip_prefix(tag)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(&name)
                .then(|| format!("{tag}{name}_total {tail}"))
        });
        match named {
            Some(renamed) => out.push_str(&renamed),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_older_text_format_names_counters_by_their_samples() {
        let metrics = Metrics::default();
        let hixie76 = crate::metrics::kind_of("hixie76");
        metrics.session_opened(hixie76);
        metrics.session_opened(hixie76);
        let text = metrics.encode();

        let old = prometheus_text(&text);
        for line in [
            "# HELP flashgate_sessions_total Sessions opened since start, by transport.",
            "# TYPE flashgate_sessions_total counter",
            "flashgate_sessions_total{transport=\"hixie76\"} 2",
            "# TYPE flashgate_sessions_open gauge",
        ] {
            assert!(old.lines().any(|l| l == line), "{line} in\n{old}");
        }
        assert!(!old.contains("# EOF") && !old.contains("# TYPE flashgate_sessions counter"));
    }
}
