//! What people see while discovery commands run (`cargo nextest list` may compile for minutes):
//! on a terminal a spinner with the command's last stderr line, otherwise its stderr lines as
//! they come; quiet shows nothing. A failed command's stderr is shown whole, line by line, as
//! printed (the spinner and quiet showed only part of it, or none).

use super::options::Verbosity;
use crate::tail::clean_line;
use crate::text::escape;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Duration;

/// Lines longer than this are cut in the spinner (the terminal would wrap them).
const SPINNER_LINE_CHARS: usize = 100;

#[derive(Debug)]
enum Mode {
    Spinner,
    Lines,
    Quiet,
}

/// Shows discovery commands' progress on stderr.
#[derive(Debug)]
pub struct DiscoveryView {
    mode: Mode,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    spinner: Option<ProgressBar>,
    command: String,
    /// The running command's stderr so far, to show whole if it fails.
    lines: Vec<String>,
}

impl DiscoveryView {
    /// For stderr: a spinner on a terminal, lines otherwise, nothing while quiet (but a
    /// failure's output always).
    pub fn stderr(verbosity: Verbosity) -> Self {
        let mode = if verbosity == Verbosity::Quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() {
            Mode::Spinner
        } else {
            Mode::Lines
        };
        DiscoveryView {
            mode,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `command` started.
    pub fn started(&self, command: &str) {
        let mut state = self.state();
        state.command = escape(command).into_owned();
        state.lines.clear();
        if matches!(self.mode, Mode::Spinner) {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template("{spinner} [{elapsed}] {msg}") {
                bar.set_style(style);
            }
            bar.set_message(format!("discovering tests: {}", state.command));
            bar.enable_steady_tick(Duration::from_millis(100));
            state.spinner = Some(bar);
        }
    }

    /// The command printed `line` on stderr.
    pub fn line(&self, line: &str) {
        let line = clean_line(line, false);
        let mut state = self.state();
        match self.mode {
            Mode::Spinner => {
                if let Some(bar) = &state.spinner {
                    let shown: String = line.trim().chars().take(SPINNER_LINE_CHARS).collect();
                    bar.set_message(format!("{}: {shown}", state.command));
                }
            }
            Mode::Lines => {
                // Best effort: a closed stderr must not fail discovery.
                let _ = writeln!(std::io::stderr().lock(), "{line}");
            }
            Mode::Quiet => {}
        }
        state.lines.push(line);
    }

    /// The command ended; when it failed, its stderr is shown whole unless it already was.
    pub fn finished(&self, ok: bool) {
        let mut state = self.state();
        if let Some(bar) = state.spinner.take() {
            bar.finish_and_clear();
        }
        let lines = std::mem::take(&mut state.lines);
        if !ok && !matches!(self.mode, Mode::Lines) {
            let mut err = std::io::stderr().lock();
            for line in lines {
                let _ = writeln!(err, "{line}");
            }
        }
    }
}
