//! Counters and histograms shared by the HTTP side and the scheduler, written out in the
//! Prometheus text format by `GET /metrics`.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the latency histograms' buckets.
const TTFT_BUCKETS: [f64; 12] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];
const ITL_BUCKETS: [f64; 12] = [0.002, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.15, 0.25, 0.5, 1.0];

pub struct Metrics {
    /// (route, status) -> count.
    requests: Mutex<Vec<(String, u16, u64)>>,
    prompt_tokens: AtomicU64,
    generated_tokens: AtomicU64,
    /// Requests admitted by the HTTP side that no slot has taken yet.
    pub queued: AtomicUsize,
    /// Slots running a request.
    pub active: AtomicUsize,
    pub slots: AtomicUsize,
    cancelled: AtomicU64,
    ttft: Mutex<Histogram<12>>,
    itl: Mutex<Histogram<12>>,
}

struct Histogram<const N: usize> {
    bounds: [f64; N],
    counts: [u64; N],
    count: u64,
    sum: f64,
}

impl<const N: usize> Histogram<N> {
    fn new(bounds: [f64; N]) -> Self {
        Histogram { bounds, counts: [0; N], count: 0, sum: 0.0 }
    }

    fn observe(&mut self, secs: f64) {
        if let Some(i) = self.bounds.iter().position(|&b| secs <= b) {
            self.counts[i] += 1;
        }
        self.count += 1;
        self.sum += secs;
    }

    fn write(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (b, c) in self.bounds.iter().zip(self.counts) {
            cumulative += c;
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {cumulative}");
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{le=\"+Inf\"}} {}\n{name}_sum {}\n{name}_count {}",
            self.count, self.sum, self.count
        );
    }
}

impl Metrics {
    pub fn new(slots: usize) -> Metrics {
        Metrics {
            requests: Mutex::default(),
            prompt_tokens: AtomicU64::new(0),
            generated_tokens: AtomicU64::new(0),
            queued: AtomicUsize::new(0),
            active: AtomicUsize::new(0),
            slots: AtomicUsize::new(slots),
            cancelled: AtomicU64::new(0),
            ttft: Mutex::new(Histogram::new(TTFT_BUCKETS)),
            itl: Mutex::new(Histogram::new(ITL_BUCKETS)),
        }
    }

    pub fn count_request(&self, route: &str, status: u16) {
        let mut r = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        match r.iter_mut().find(|(rt, st, _)| rt == route && *st == status) {
            Some(e) => e.2 += 1,
            None => r.push((route.to_string(), status, 1)),
        }
    }

    pub fn add_prompt(&self, n: usize) {
        self.prompt_tokens.fetch_add(n as u64, Relaxed);
    }

    pub fn add_generated(&self, n: usize) {
        self.generated_tokens.fetch_add(n as u64, Relaxed);
    }

    pub fn add_cancelled(&self) {
        self.cancelled.fetch_add(1, Relaxed);
    }

    pub fn observe_ttft(&self, d: Duration) {
        self.ttft.lock().unwrap_or_else(|e| e.into_inner()).observe(d.as_secs_f64());
    }

    pub fn observe_itl(&self, d: Duration) {
        self.itl.lock().unwrap_or_else(|e| e.into_inner()).observe(d.as_secs_f64());
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# HELP lamina_requests_total HTTP requests answered, by route and status.");
        let _ = writeln!(out, "# TYPE lamina_requests_total counter");
        for (route, status, n) in self.requests.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = writeln!(out, "lamina_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}");
        }
        let scalar = |out: &mut String, name: &str, kind: &str, help: &str, v: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
        };
        scalar(
            &mut out,
            "lamina_prompt_tokens_total",
            "counter",
            "Prompt tokens of admitted requests.",
            self.prompt_tokens.load(Relaxed),
        );
        scalar(
            &mut out,
            "lamina_generated_tokens_total",
            "counter",
            "Tokens sampled.",
            self.generated_tokens.load(Relaxed),
        );
        scalar(
            &mut out,
            "lamina_cancelled_total",
            "counter",
            "Requests whose client left before the end.",
            self.cancelled.load(Relaxed),
        );
        scalar(
            &mut out,
            "lamina_queue_depth",
            "gauge",
            "Requests waiting for a slot.",
            self.queued.load(Relaxed) as u64,
        );
        scalar(&mut out, "lamina_active_slots", "gauge", "Slots running a request.", self.active.load(Relaxed) as u64);
        scalar(&mut out, "lamina_slots", "gauge", "Slots (--parallel).", self.slots.load(Relaxed) as u64);
        self.ttft.lock().unwrap_or_else(|e| e.into_inner()).write(
            &mut out,
            "lamina_time_to_first_token_seconds",
            "From a request's arrival to its first sampled token.",
        );
        self.itl.lock().unwrap_or_else(|e| e.into_inner()).write(
            &mut out,
            "lamina_inter_token_latency_seconds",
            "Between consecutive sampled tokens of one request.",
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_buckets() {
        let m = Metrics::new(4);
        m.count_request("/v1/completions", 200);
        m.count_request("/v1/completions", 200);
        m.add_generated(5);
        m.observe_ttft(Duration::from_millis(30));
        m.observe_ttft(Duration::from_secs(100));
        let text = m.render();
        assert!(text.contains("lamina_requests_total{route=\"/v1/completions\",status=\"200\"} 2"), "{text}");
        assert!(text.contains("lamina_generated_tokens_total 5"));
        assert!(text.contains("lamina_slots 4"));
        assert!(text.contains("lamina_time_to_first_token_seconds_bucket{le=\"0.05\"} 1"));
        assert!(text.contains("lamina_time_to_first_token_seconds_bucket{le=\"+Inf\"} 2"));
        assert!(text.contains("lamina_time_to_first_token_seconds_count 2"));
    }
}
