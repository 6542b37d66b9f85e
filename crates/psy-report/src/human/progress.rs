//! The live progress bar shown when the report goes to a terminal, with an ETA that counts
//! down from the run's expected duration (from recorded durations) from the first second.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Counts shown next to the bar.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Counts {
    pub(crate) passed: usize,
    pub(crate) failed: usize,
    pub(crate) flaky: usize,
    pub(crate) running: usize,
}

pub(crate) struct Progress {
    bar: ProgressBar,
    /// The run's expected duration in ms, 0 while unknown; read by the bar's `eta` key.
    expected_ms: Arc<AtomicU64>,
}

impl Progress {
    pub(crate) fn new(target: ProgressDrawTarget, color: bool) -> Self {
        let bar = ProgressBar::with_draw_target(Some(0), target);
        let expected_ms = Arc::new(AtomicU64::new(0));
        // The templates are constants; a parse failure would be a bug caught by the unit test.
        if let Ok(style) = style(color) {
            let expected = Arc::clone(&expected_ms);
            bar.set_style(style.with_key(
                "eta",
                move |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                    let expected = match expected.load(Ordering::Relaxed) {
                        0 => None,
                        ms => Some(Duration::from_millis(ms)),
                    };
                    let total = state.len().unwrap_or(0);
                    let _ = w.write_str(&eta(state.elapsed(), state.pos(), total, expected));
                },
            ));
        }
        Progress { bar, expected_ms }
    }

    /// Starts the clock; `expected_ms` is the run's expected duration, if any test has history.
    pub(crate) fn start(&self, total: usize, expected_ms: Option<u64>) {
        self.expected_ms
            .store(expected_ms.map_or(0, |ms| ms.max(1)), Ordering::Relaxed);
        self.bar.set_length(total as u64);
        self.bar.reset_elapsed();
        // Ticks keep the elapsed time and spinner moving while long tests run.
        self.bar.enable_steady_tick(Duration::from_millis(250));
    }

    pub(crate) fn update(&self, done: usize, counts: Counts) {
        self.bar.set_position(done as u64);
        self.bar.set_message(format!(
            "{} passed, {} failed, {} flaky, {} running",
            counts.passed, counts.failed, counts.flaky, counts.running
        ));
    }

    /// Runs `f` (which writes lines) with the bar cleared, then redraws it below them.
    pub(crate) fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.bar.suspend(f)
    }

    pub(crate) fn clear(&self) {
        self.bar.finish_and_clear();
    }
}

/// Time left: the expected duration minus the time elapsed while the run is within it, then
/// (or without an expectation) the time per finished test so far; `?` before anything is known.
pub(crate) fn eta(elapsed: Duration, done: u64, total: u64, expected: Option<Duration>) -> String {
    if total > 0 && done >= total {
        return "0s".to_string();
    }
    if let Some(left) = expected.and_then(|e| e.checked_sub(elapsed)) {
        if !left.is_zero() {
            return short(left);
        }
    }
    if done == 0 {
        return "?".to_string();
    }
    short(elapsed.mul_f64((total - done) as f64 / done as f64))
}

/// `45s`, `2m05s`, `1h02m`: whole seconds, rounded up so a countdown never shows 0s early.
fn short(d: Duration) -> String {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m{:02}s", secs / 60, secs % 60),
        _ => format!("{}h{:02}m", secs / 3600, (secs % 3600) / 60),
    }
}

fn style(color: bool) -> Result<ProgressStyle, indicatif::style::TemplateError> {
    let template = if color {
        "{spinner:.green} [{elapsed_precise}] [{wide_bar:.cyan/blue}] {pos}/{len} {msg} ETA {eta}"
    } else {
        "{spinner} [{elapsed_precise}] [{wide_bar}] {pos}/{len} {msg} ETA {eta}"
    };
    Ok(ProgressStyle::with_template(template)?.progress_chars("=> "))
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Progress")
            .field("position", &self.bar.position())
            .field("length", &self.bar.length())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_parse() {
        assert!(style(false).is_ok());
        assert!(style(true).is_ok());
        let p = Progress::new(ProgressDrawTarget::hidden(), true);
        p.start(3, Some(5000));
        p.update(
            2,
            Counts {
                passed: 1,
                failed: 1,
                flaky: 0,
                running: 1,
            },
        );
        assert_eq!(p.bar.position(), 2);
        assert_eq!(p.bar.length(), Some(3));
        assert_eq!(p.bar.message(), "1 passed, 1 failed, 0 flaky, 1 running");
        p.clear();
    }

    #[test]
    fn eta_counts_down_from_the_expectation_then_follows_the_rate() {
        let s = Duration::from_secs;
        // From the first second, before any test finished.
        assert_eq!(eta(s(0), 0, 10, Some(s(90))), "1m30s");
        assert_eq!(
            eta(Duration::from_millis(1500), 0, 10, Some(s(90))),
            "1m29s"
        );
        // Without history: unknown until a test finishes, then by the rate so far.
        assert_eq!(eta(s(3), 0, 10, None), "?");
        assert_eq!(eta(s(10), 5, 10, None), "10s");
        // Past the expectation the rate takes over.
        assert_eq!(eta(s(100), 8, 10, Some(s(90))), "25s");
        assert_eq!(eta(s(100), 0, 10, Some(s(90))), "?");
        assert_eq!(eta(s(5), 10, 10, Some(s(90))), "0s");
        assert_eq!(eta(s(7200), 1, 2, None), "2h00m");
    }
}
