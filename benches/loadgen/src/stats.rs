//! Counting and latency histograms, merged across connections.

use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;

/// Where a run is: warming up (0, the default), measuring, or stopping. Every connection
/// reads it.
#[derive(Default)]
pub struct Phase(AtomicU8);

impl Phase {
    pub const MEASURE: u8 = 1;
    pub const STOP: u8 = 2;

    pub fn get(&self) -> u8 {
        self.0.load(Ordering::Relaxed)
    }

    pub fn set(&self, phase: u8) {
        self.0.store(phase, Ordering::Relaxed)
    }
}

/// Microsecond latencies from 1 µs to 100 s.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 100_000_000, 3).expect("valid bounds")
}

pub fn micros(d: Duration) -> u64 {
    (d.as_micros() as u64).max(1)
}

/// p50/p99/p999 in microseconds, as JSON fields.
pub fn percentiles(h: &Histogram<u64>) -> serde_json::Value {
    serde_json::json!({
        "p50_us": h.value_at_quantile(0.50),
        "p99_us": h.value_at_quantile(0.99),
        "p999_us": h.value_at_quantile(0.999),
        "samples": h.len(),
    })
}

/// Warm-up, then the measured window; returns its length.
pub async fn measure(phase: &Phase, warmup: Duration, duration: Duration) -> Duration {
    tokio::time::sleep(warmup).await;
    let start = tokio::time::Instant::now();
    phase.set(Phase::MEASURE);
    tokio::time::sleep(duration).await;
    phase.set(Phase::STOP);
    start.elapsed()
}
