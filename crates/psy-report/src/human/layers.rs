//! What people see while image layers are imported, downloaded and unpacked before a run (or by
//! `psy image pull`): on a terminal one bar over the bytes of every new layer, with the layers
//! done out of those started; otherwise a line per new layer as it starts; quiet shows nothing.
//! Layers found unpacked already show nothing at all, so a run whose images are ready is silent.

use super::options::Verbosity;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::sync::Mutex;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Bar,
    Lines,
    Quiet,
}

/// Shows image layers' progress on stderr (a [`psy_image::Progress`]).
#[derive(Debug)]
pub struct LayerView {
    mode: Mode,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    bar: Option<ProgressBar>,
    started: u64,
    done: u64,
}

impl LayerView {
    /// For stderr: a bar on a terminal, lines otherwise, nothing while quiet.
    pub fn stderr(verbosity: Verbosity) -> Self {
        let mode = if verbosity == Verbosity::Quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() {
            Mode::Bar
        } else {
            Mode::Lines
        };
        LayerView {
            mode,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn message(state: &State) -> String {
        format!("image layers {}/{}", state.done, state.started)
    }
}

/// `sha256:0123456789ab...` as its first 12 hex digits.
fn short(layer: &str) -> &str {
    let hex = layer.strip_prefix("sha256:").unwrap_or(layer);
    hex.get(..12).unwrap_or(hex)
}

impl psy_image::Progress for LayerView {
    fn layer_started(&self, layer: &str, size: Option<u64>) {
        let mut state = self.state();
        state.started += 1;
        match self.mode {
            Mode::Bar => {
                let message = Self::message(&state);
                let bar = state.bar.get_or_insert_with(|| {
                    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
                    if let Ok(style) = ProgressStyle::with_template(
                        "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
                    ) {
                        bar.set_style(style.progress_chars("=> "));
                    }
                    bar
                });
                bar.inc_length(size.unwrap_or(0));
                bar.set_message(message);
            }
            Mode::Lines => {
                let what = match size {
                    Some(bytes) => format!(" ({} KiB)", bytes.div_ceil(1024)),
                    None => String::new(),
                };
                // Best effort: a closed stderr must not fail the run.
                let _ = writeln!(
                    std::io::stderr().lock(),
                    "unpacking image layer {}{what}",
                    short(layer)
                );
            }
            Mode::Quiet => {}
        }
    }

    fn layer_bytes(&self, _layer: &str, bytes: u64) {
        if let Some(bar) = &self.state().bar {
            bar.inc(bytes);
        }
    }

    fn layer_finished(&self, _layer: &str, reused: bool) {
        let mut state = self.state();
        if reused {
            return;
        }
        state.done += 1;
        let message = Self::message(&state);
        let all_done = state.done >= state.started;
        if let Some(bar) = &state.bar {
            bar.set_message(message);
        }
        if all_done {
            if let Some(bar) = state.bar.take() {
                bar.finish_and_clear();
            }
        }
    }
}

impl Drop for LayerView {
    fn drop(&mut self) {
        if let Some(bar) = self.state().bar.take() {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use psy_image::Progress;

    #[test]
    fn layers_are_named_short_and_counted_when_new() {
        assert_eq!(short("sha256:0123456789abcdef"), "0123456789ab");
        assert_eq!(short("abc"), "abc");
        let view = LayerView {
            mode: Mode::Quiet,
            state: Mutex::new(State::default()),
        };
        view.layer_started("sha256:a", Some(10));
        view.layer_started("sha256:b", None);
        view.layer_finished("sha256:a", false);
        view.layer_finished("sha256:c", true);
        let state = view.state();
        assert_eq!((state.started, state.done), (2, 1));
        assert_eq!(LayerView::message(&state), "image layers 1/2");
    }
}
