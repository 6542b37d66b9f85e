//! The report for people: a live progress bar on a terminal, a line per failing, flaky or retried
//! test as it happens (with its output, by default), and at the end the failing tests' output
//! again and a totals table.

mod color;
mod discovery;
mod layers;
mod lines;
mod options;
mod output;
mod progress;
mod summary;

pub use color::ColorChoice;
pub use discovery::DiscoveryView;
pub use layers::LayerView;
pub use options::{HumanOptions, Verbosity};

use crate::{ReportError, Reporter};
use color::{Painter, Style};
use indicatif::ProgressDrawTarget;
use lines::Finished;
use progress::{Counts, Progress};
use psy_model::events::RunSummary;
use psy_model::{AttemptResult, OutputDisplay, Resources, RunEvent, RunId, TestId, TestStatus};
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io::{self, IsTerminal, Write};
use std::time::Instant;

/// Writes the human report to stderr or to any writer.
pub struct HumanReporter<W: Write + Send> {
    out: W,
    /// Names the output in errors.
    target: &'static str,
    progress: Option<Progress>,
    paint: Painter,
    options: HumanOptions,
    run_id: Option<RunId>,
    started: Option<Instant>,
    total: usize,
    tally: RunSummary,
    running: usize,
    warned: HashSet<String>,
    /// Limits of each test's current attempt (for `peak X of Y`); dropped when the test finishes.
    limits: HashMap<TestId, Resources>,
    /// Each unfinished test's latest finished attempt.
    last_attempt: HashMap<TestId, AttemptResult>,
    /// The last failed attempt of each running test: with `--repeat`, a failing verdict is
    /// explained by its failing repetition even when a later one passed.
    last_failure: HashMap<TestId, AttemptResult>,
    /// Failed tests in the order they finished, for the end of the report.
    failures: Vec<Finished>,
    /// Passing tests whose output the end of the report shows (`success_output` final).
    successes: Vec<Finished>,
    ended: bool,
}

impl HumanReporter<io::Stderr> {
    /// Reports to stderr: with a live progress bar when stderr is a terminal, otherwise plain
    /// lines. Colour follows `options.color`, the terminal and `NO_COLOR`.
    pub fn stderr(options: HumanOptions) -> Self {
        let tty = io::stderr().is_terminal();
        let color = options
            .color
            .should_color(tty, std::env::var_os("NO_COLOR").as_deref());
        let progress =
            (tty && !options.quiet()).then(|| Progress::new(ProgressDrawTarget::stderr(), color));
        Self::build(io::stderr(), "stderr", options, color, progress)
    }
}

impl<W: Write + Send> HumanReporter<W> {
    /// Reports to `out` as plain lines, never with a bar. A writer is not a terminal, so
    /// [`ColorChoice::Auto`] means no colour here; [`ColorChoice::Always`] still colours.
    pub fn new(out: W, options: HumanOptions) -> Self {
        let color = options.color.should_color(false, None);
        Self::build(out, "the given writer", options, color, None)
    }

    fn build(
        out: W,
        target: &'static str,
        options: HumanOptions,
        color: bool,
        progress: Option<Progress>,
    ) -> Self {
        HumanReporter {
            out,
            target,
            progress,
            paint: Painter { enabled: color },
            options,
            run_id: None,
            started: None,
            total: 0,
            tally: RunSummary::default(),
            running: 0,
            warned: HashSet::new(),
            limits: HashMap::new(),
            last_attempt: HashMap::new(),
            last_failure: HashMap::new(),
            failures: Vec::new(),
            successes: Vec::new(),
            ended: false,
        }
    }

    /// The writer, e.g. to inspect what a test reporter wrote.
    pub fn into_inner(self) -> W {
        self.out
    }

    fn emit(&mut self, lines: &[String]) -> Result<(), ReportError> {
        let out = &mut self.out;
        let mut write = || -> io::Result<()> {
            for line in lines {
                writeln!(out, "{line}")?;
            }
            out.flush()
        };
        let result = match &self.progress {
            Some(bar) => bar.suspend(write),
            None => write(),
        };
        result.map_err(|source| ReportError::HumanWrite {
            target: self.target,
            source,
        })
    }

    fn refresh_bar(&self) {
        if let Some(bar) = &self.progress {
            let t = &self.tally;
            let counts = Counts {
                passed: t.passed,
                failed: t.failed + t.timed_out + t.oom + t.errors,
                flaky: t.flaky,
                running: self.running,
            };
            bar.update(t.passed + t.flaky + counts.failed, counts);
        }
    }

    fn test_finished(&mut self, finished: Finished) -> Result<(), ReportError> {
        let status = finished.result.status;
        self.tally.count(status);
        let failed = !status.is_success(false);
        let (display, line_shown) = if failed {
            (self.options.failure_output, true)
        } else if status == TestStatus::Flaky {
            (self.options.success_output, !self.options.quiet())
        } else {
            (self.options.success_output, self.options.pass_lines())
        };
        let with_output = display.is_immediate() && finished.last.is_some();
        let mut lines = Vec::new();
        if line_shown || with_output {
            lines.push(finished.line(self.paint));
        }
        if let Some(last) = finished.last.as_ref().filter(|_| with_output) {
            lines.extend(output::attempt_output(
                self.paint,
                self.options.logs.of_run(self.run_id.as_ref()),
                last,
                self.options.max_output_bytes,
            ));
        }
        if !lines.is_empty() {
            self.emit(&lines)?;
        }
        if failed {
            self.failures.push(finished);
        } else if display.is_final() {
            self.successes.push(finished);
        }
        Ok(())
    }

    /// The failing tests again (with their output when `failure_output` is final), the
    /// output of passing tests when `success_output` is final, and the totals; once, at the end
    /// of the run or on abort.
    fn end(&mut self, summary: Option<&RunSummary>) -> Result<(), ReportError> {
        if self.ended {
            return Ok(());
        }
        self.ended = true;
        if let Some(bar) = self.progress.take() {
            bar.clear();
        }
        let aborted = summary.is_none();
        let summary = summary.cloned().unwrap_or_else(|| {
            let mut s = self.tally.clone();
            s.total = self.total;
            let finished = s.passed + s.flaky + s.failed + s.timed_out + s.oom + s.errors;
            s.not_run = self.total.saturating_sub(finished);
            s.duration_ms = self.started.map_or(0, |t| t.elapsed().as_millis() as u64);
            s
        });
        let (p, max) = (self.paint, self.options.max_output_bytes);
        let logs = self.options.logs.of_run(self.run_id.as_ref());
        let mut lines = Vec::new();
        // Quiet shows an output once: `immediate-final` is `immediate` there.
        let at_end = |d: OutputDisplay| d.is_final() && !(self.options.quiet() && d.is_immediate());
        if at_end(self.options.success_output) {
            for f in &self.successes {
                lines.push(String::new());
                lines.extend(summary::test_section(p, logs, f, true, max));
            }
        }
        let with_output = at_end(self.options.failure_output);
        if with_output {
            for f in &self.failures {
                lines.push(String::new());
                lines.extend(summary::test_section(p, logs, f, true, max));
            }
        } else if !self.failures.is_empty() {
            lines.push(String::new());
            for f in &self.failures {
                lines.extend(summary::test_section(p, logs, f, false, max));
            }
        }
        if self.options.quiet() {
            lines.push(summary::one_line(
                p,
                &summary,
                self.run_id.as_ref(),
                aborted,
            ));
        } else {
            lines.extend(summary::table(
                p,
                &summary,
                self.run_id.as_ref(),
                &self.options.show_again,
                aborted,
            ));
        }
        self.emit(&lines)
    }
}

impl<W: Write + Send> Reporter for HumanReporter<W> {
    fn on_event(&mut self, event: &RunEvent) -> Result<(), ReportError> {
        match event {
            RunEvent::RunStarted {
                run_id,
                total,
                expected_ms,
                ..
            } => {
                self.run_id = Some(run_id.clone());
                self.total = *total;
                self.started = Some(Instant::now());
                if !self.options.quiet() {
                    let mut line = format!(
                        "Running {} (run {run_id}",
                        crate::format::count(*total, "test")
                    );
                    if let Some(ms) = expected_ms {
                        line.push_str(&format!(", about {}", crate::format::duration(*ms)));
                    }
                    line.push(')');
                    self.emit(&[self.paint.paint(Style::Bold, &line)])?;
                }
                // After the header, so the bar's first frame is drawn below it.
                if let Some(bar) = &self.progress {
                    bar.start(*total, *expected_ms);
                }
            }
            RunEvent::Warning { message } => {
                if self.warned.insert(message.clone()) {
                    let line = format!(
                        "{} {}",
                        lines::label(self.paint, "WARN", Style::Yellow),
                        crate::text::escape(message)
                    );
                    self.emit(&[line])?;
                }
            }
            RunEvent::AttemptStarted {
                test_id,
                attempt,
                resources,
                ..
            } => {
                self.running += 1;
                self.limits.insert(test_id.clone(), resources.clone());
                if self.options.verbosity >= Verbosity::Verbose && *attempt == 1 {
                    self.emit(&[lines::start_line(self.paint, test_id.as_str())])?;
                }
            }
            RunEvent::AttemptFinished { result } => {
                self.running = self.running.saturating_sub(1);
                if result.status != psy_model::AttemptStatus::Pass {
                    self.last_failure
                        .insert(result.test_id.clone(), result.clone());
                }
                self.last_attempt
                    .insert(result.test_id.clone(), result.clone());
            }
            RunEvent::AttemptRetrying {
                test_id,
                next_attempt,
            } => {
                if !self.options.quiet() {
                    let failed = self.last_attempt.get(test_id);
                    let mut out = vec![lines::retry_line(
                        self.paint,
                        test_id.as_str(),
                        *next_attempt,
                        failed,
                        self.limits.get(test_id),
                    )];
                    if let Some(a) = failed.filter(|_| self.options.failure_output.is_immediate()) {
                        out.extend(output::attempt_output(
                            self.paint,
                            self.options.logs.of_run(self.run_id.as_ref()),
                            a,
                            self.options.max_output_bytes,
                        ));
                    }
                    self.emit(&out)?;
                }
            }
            RunEvent::TestFinished { result } => {
                let failure = self.last_failure.remove(&result.test_id);
                let last = self.last_attempt.remove(&result.test_id);
                let finished = Finished {
                    last: if result.status.is_success(false) {
                        last
                    } else {
                        failure.or(last)
                    },
                    resources: self.limits.remove(&result.test_id),
                    result: result.clone(),
                };
                self.test_finished(finished)?;
            }
            RunEvent::RunFinished { run_id, summary } => {
                self.run_id = Some(run_id.clone());
                self.end(Some(summary))?;
            }
        }
        self.refresh_bar();
        Ok(())
    }

    fn finish(&mut self) -> Result<(), ReportError> {
        self.end(None)?;
        self.out.flush().map_err(|source| ReportError::HumanWrite {
            target: self.target,
            source,
        })
    }
}

impl<W: Write + Send> fmt::Debug for HumanReporter<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HumanReporter")
            .field("target", &self.target)
            .field("progress", &self.progress)
            .field("options", &self.options)
            .field("run_id", &self.run_id)
            .field("tally", &self.tally)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bar path: lines still reach the writer, and the bar is gone after the run.
    #[test]
    fn lines_pass_through_a_progress_bar() {
        let progress = Progress::new(ProgressDrawTarget::hidden(), false);
        let mut r = HumanReporter::build(
            Vec::new(),
            "test",
            HumanOptions::default(),
            false,
            Some(progress),
        );
        r.on_event(&RunEvent::RunStarted {
            run_id: RunId("r1".into()),
            total: 1,
            started_at_ms: 0,
            expected_ms: None,
        })
        .unwrap();
        r.on_event(&RunEvent::Warning {
            message: "no cgroup v2".into(),
        })
        .unwrap();
        r.on_event(&RunEvent::RunFinished {
            run_id: RunId("r1".into()),
            summary: RunSummary {
                total: 1,
                not_run: 1,
                ..RunSummary::default()
            },
        })
        .unwrap();
        assert!(r.progress.is_none());
        r.finish().unwrap();
        let text = String::from_utf8(r.into_inner()).unwrap();
        assert!(text.contains("   WARN no cgroup v2\n"), "{text}");
        assert!(text.contains("psy show r1"), "{text}");
    }
}
