//! The live progress bar shown when the report goes to a terminal.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
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
}

impl Progress {
    pub(crate) fn new(target: ProgressDrawTarget, color: bool) -> Self {
        let bar = ProgressBar::with_draw_target(Some(0), target);
        // The templates are constants; a parse failure would be a bug caught by the unit test.
        if let Ok(style) = style(color) {
            bar.set_style(style);
        }
        Progress { bar }
    }

    pub(crate) fn start(&self, total: usize) {
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
        p.start(3);
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
}
