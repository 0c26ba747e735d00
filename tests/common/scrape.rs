//! The metrics listener's exposition, scraped as `curl` gets it.

use std::time::{Duration, Instant};

use super::{TestGateway, get};

/// The exposition, as `curl` or `promtool` gets it: Prometheus' text format.
pub async fn scrape(gw: &TestGateway) -> String {
    let res = get(gw.metrics, "/metrics").await;
    assert_eq!(res.status, 200);
    assert_eq!(
        res.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    res.text()
}

/// The value of the sample `name` (labels included, as exposed), if exposed.
pub fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// Scrapes until `name` has `value` (the gateway counts a session's end once its task is
/// over), and gives the last exposition.
pub async fn until(gw: &TestGateway, name: &str, value: f64) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = scrape(gw).await;
        if sample(&text, name) == Some(value) {
            return text;
        }
        assert!(Instant::now() < deadline, "{name} never {value} in\n{text}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
