//! Request counts by route, method and status, rendered in Prometheus' text format with
//! whether the database answers. Counts are per process: Prometheus sums the servers.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

/// The route label of requests that matched no route (refused before routing, or unknown).
pub const UNMATCHED: &str = "unmatched";

/// The counters of one server process.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
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

    /// The text exposition format (version 0.0.4).
    pub fn render(&self, database_up: bool) -> String {
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
    use super::Metrics;

    #[test]
    fn renders_counters_and_the_database_gauge() {
        let m = Metrics::default();
        m.record("/api/whoami", "GET", 200);
        m.record("/api/whoami", "GET", 200);
        m.record("un\"matched", "GET", 401);
        let text = m.render(false);
        assert!(text.contains(
            "psy_server_http_requests_total{route=\"/api/whoami\",method=\"GET\",status=\"200\"} 2\n"
        ), "{text}");
        assert!(text.contains("route=\"un\\\"matched\""), "{text}");
        assert!(text.contains("psy_server_database_up 0\n"), "{text}");
    }
}
