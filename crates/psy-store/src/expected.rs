//! The rules every backend follows for expected durations and for runs a killed psy left
//! running, kept here once so SQLite, PostgreSQL and the memory fake agree by construction.

use psy_model::events::RunSummary;
use psy_model::{TestId, TestStatus};
use std::collections::HashMap;
use std::time::Duration;

/// The middle value, or the mean of the two middle values (to the microsecond) for an even
/// count; `None` for an empty window.
pub(crate) fn median(window: &mut [u64]) -> Option<Duration> {
    window.sort_unstable();
    let n = window.len();
    let (lo, hi) = (*window.get(n.checked_sub(1)? / 2)?, window[n / 2]);
    Some(Duration::from_micros(
        lo.saturating_add(hi).saturating_mul(500),
    ))
}

/// Expected durations: each id's median over its recent pass/fail window, and for ids
/// without one the duration imported last.
pub(crate) fn expected_durations(
    mut imported: HashMap<TestId, Duration>,
    windows: HashMap<String, Vec<u64>>,
) -> HashMap<TestId, Duration> {
    imported.extend(
        windows
            .into_iter()
            .filter_map(|(id, mut window)| Some((TestId(id), median(&mut window)?))),
    );
    imported
}

/// What can still be known of a run left running: counts rebuilt from the recorded
/// verdicts, tests without one as not run, and the end of its last recorded attempt (`last_end`)
/// as its finish time (its start if none was recorded). Returns the finish time and totals.
pub(crate) fn aborted_summary(
    started_at_ms: u64,
    total: usize,
    verdicts: impl IntoIterator<Item = TestStatus>,
    last_end: Option<u64>,
) -> (u64, RunSummary) {
    let mut summary = RunSummary {
        total,
        ..RunSummary::default()
    };
    let mut recorded = 0;
    for status in verdicts {
        summary.count(status);
        recorded += 1;
    }
    summary.not_run = summary.total.saturating_sub(recorded);
    let finished = last_end.unwrap_or(started_at_ms).max(started_at_ms);
    summary.duration_ms = finished - started_at_ms;
    (finished, summary)
}

#[cfg(test)]
mod tests {
    use super::median;
    use std::time::Duration;

    #[test]
    fn median_of_odd_even_and_empty_windows() {
        assert_eq!(median(&mut [30, 10, 20]), Some(Duration::from_millis(20)));
        assert_eq!(median(&mut [10, 11]), Some(Duration::from_micros(10_500)));
        assert_eq!(median(&mut []), None);
    }
}
