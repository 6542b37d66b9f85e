//! Request counts by route, method and status and the claim and report latency histograms, rendered in
//! Prometheus' text format with whether the database answers and the queue's fleet-wide numbers.
//! Counts and the histogram are per process (Prometheus sums the servers); the queue's numbers
//! are read from the database, so every server reports the same totals.

use crate::queue::stats::QueueStats;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// The route label of requests that matched no route (refused before routing, or unknown).
pub const UNMATCHED: &str = "unmatched";

/// The counters of one server process.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    claims: Mutex<Histogram>,
    reports: Mutex<Histogram>,
}

/// The upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// A Prometheus histogram over [`BUCKETS`].
#[derive(Debug, Default)]
struct Histogram {
    /// Observations at or below each bound (not cumulative here; summed when rendered).
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, took: Duration) {
        let seconds = took.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|&b| seconds <= b) {
            self.buckets[i] += 1;
        }
        self.count += 1;
        self.sum += seconds;
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (bound, n) in BUCKETS.iter().zip(self.buckets) {
            cumulative += n;
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum {}\n{name}_count {}", self.sum, self.count);
    }
}

/// A histogram behind a lock a panic may have poisoned (its numbers are still usable).
fn locked(h: &Mutex<Histogram>) -> std::sync::MutexGuard<'_, Histogram> {
    h.lock().unwrap_or_else(|e| e.into_inner())
}

impl Metrics {
    /// Counts one answered request.
    pub fn record(&self, route: &str, method: &str, status: u16) {
        // A poisoned lock only means a panic mid-increment: the counts are still usable.
        let mut requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        *requests
            .entry((route.to_string(), method.to_string(), status))
            .or_default() += 1;
    }

    /// Observes how long one claim took.
    pub fn observe_claim(&self, took: Duration) {
        locked(&self.claims).observe(took);
    }

    /// Observes how long recording one result took.
    pub fn observe_report(&self, took: Duration) {
        locked(&self.reports).observe(took);
    }

    /// The text exposition format (version 0.0.4); the queue's numbers when they could be read.
    pub fn render(&self, database_up: bool, queue: Option<QueueStats>) -> String {
        let mut out = String::new();
        out.push_str("# HELP psy_server_http_requests_total HTTP requests answered, by route, method and status.\n");
        out.push_str("# TYPE psy_server_http_requests_total counter\n");
        let requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        for ((route, method, status), count) in requests.iter() {
            // Writing to a String cannot fail.
            let _ = writeln!(
                out,
                "psy_server_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{status}\"}} {count}",
                escape(route),
                escape(method)
            );
        }
        out.push_str("# HELP psy_server_database_up Whether the database answered a query just now (1) or not (0).\n");
        out.push_str("# TYPE psy_server_database_up gauge\n");
        let _ = writeln!(out, "psy_server_database_up {}", u8::from(database_up));
        locked(&self.claims).render(
            &mut out,
            "psy_server_claim_duration_seconds",
            "Time to answer a claim (one transaction), by this server.",
        );
        locked(&self.reports).render(
            &mut out,
            "psy_server_report_duration_seconds",
            "Time to record a result, by this server.",
        );
        if let Some(q) = queue {
            for (name, kind, help, value) in [
                (
                    "psy_queue_jobs_queued",
                    "gauge",
                    "Jobs waiting for an agent (queue depth), fleet-wide.",
                    q.queued_jobs,
                ),
                (
                    "psy_queue_jobs_leased",
                    "gauge",
                    "Jobs under a lease (attempts running), fleet-wide.",
                    q.leased_jobs,
                ),
                (
                    "psy_queue_agents_registered",
                    "gauge",
                    "Agents registered with the fleet.",
                    q.agents,
                ),
                (
                    "psy_queue_agents_active",
                    "gauge",
                    "Agents holding a lease now, fleet-wide.",
                    q.active_agents,
                ),
                (
                    "psy_queue_lease_expiries_total",
                    "counter",
                    "Leases that expired and whose job was claimed again, fleet-wide.",
                    q.lease_expiries,
                ),
            ] {
                let _ = writeln!(
                    out,
                    "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
                );
            }
        }
        out
    }
}

/// A label value as the format wants it.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::{Metrics, QueueStats};
    use std::time::Duration;

    #[test]
    fn renders_counters_and_the_database_gauge() {
        let m = Metrics::default();
        m.record("/api/whoami", "GET", 200);
        m.record("/api/whoami", "GET", 200);
        m.record("un\"matched", "GET", 401);
        m.observe_claim(Duration::from_millis(3));
        m.observe_claim(Duration::from_secs(60));
        m.observe_report(Duration::from_millis(20));
        let text = m.render(false, None);
        assert!(text.contains(
            "psy_server_http_requests_total{route=\"/api/whoami\",method=\"GET\",status=\"200\"} 2\n"
        ), "{text}");
        assert!(text.contains("route=\"un\\\"matched\""), "{text}");
        assert!(text.contains("psy_server_database_up 0\n"), "{text}");
        for line in [
            "psy_server_claim_duration_seconds_bucket{le=\"0.0025\"} 0\n",
            "psy_server_claim_duration_seconds_bucket{le=\"0.005\"} 1\n",
            "psy_server_claim_duration_seconds_bucket{le=\"10\"} 1\n",
            "psy_server_claim_duration_seconds_bucket{le=\"+Inf\"} 2\n",
            "psy_server_claim_duration_seconds_count 2\n",
            "psy_server_report_duration_seconds_bucket{le=\"0.01\"} 0\n",
            "psy_server_report_duration_seconds_bucket{le=\"0.025\"} 1\n",
            "psy_server_report_duration_seconds_count 1\n",
        ] {
            assert!(text.contains(line), "no {line:?} in {text}");
        }
        assert!(!text.contains("psy_queue_"), "{text}");
        let queue = QueueStats {
            queued_jobs: 7,
            leased_jobs: 2,
            agents: 3,
            active_agents: 2,
            lease_expiries: 1,
        };
        let text = m.render(true, Some(queue));
        for line in [
            "psy_queue_jobs_queued 7\n",
            "psy_queue_jobs_leased 2\n",
            "psy_queue_agents_registered 3\n",
            "psy_queue_agents_active 2\n",
            "# TYPE psy_queue_lease_expiries_total counter\npsy_queue_lease_expiries_total 1\n",
        ] {
            assert!(text.contains(line), "no {line:?} in {text}");
        }
    }
}
