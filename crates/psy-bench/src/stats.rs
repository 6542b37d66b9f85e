//! Order statistics of a sample of durations.

use std::time::Duration;

/// Summary of one measured series.
#[derive(Debug, Clone)]
pub(crate) struct Series {
    pub(crate) name: String,
    pub(crate) min: Duration,
    pub(crate) median: Duration,
    pub(crate) p90: Duration,
    pub(crate) p99: Duration,
    pub(crate) max: Duration,
}

impl Series {
    pub(crate) fn new(name: impl Into<String>, mut samples: Vec<Duration>) -> Self {
        samples.sort();
        let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
        Series {
            name: name.into(),
            min: at(0.0),
            median: at(0.5),
            p90: at(0.9),
            p99: at(0.99),
            max: at(1.0),
        }
    }

    pub(crate) fn header() -> String {
        format!(
            "{:52} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "what", "min ms", "median", "p90", "p99", "max"
        )
    }

    pub(crate) fn row(&self) -> String {
        let ms = |d: Duration| format!("{:.3}", d.as_secs_f64() * 1e3);
        format!(
            "{:52} {:>9} {:>9} {:>9} {:>9} {:>9}",
            self.name,
            ms(self.min),
            ms(self.median),
            ms(self.p90),
            ms(self.p99),
            ms(self.max)
        )
    }
}
