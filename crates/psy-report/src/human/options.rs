//! How the human report looks: colour, how much it says, and when it shows tests' output.

use super::color::ColorChoice;
use crate::excerpt::DEFAULT_MAX_OUTPUT_BYTES;
use crate::OutputSource;
use psy_model::OutputDisplay;

/// How much the human report says (`psy run --quiet`, default, `-v`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    /// Failures (with their output, once: `immediate-final` acts as `immediate`) and a one-line
    /// summary; warnings are never hidden.
    Quiet,
    /// A header, a live bar on a terminal, a line per failing, flaky or retried test, a table.
    #[default]
    Normal,
    /// Also a line when each test starts and when it passes.
    Verbose,
}

/// How the human report looks.
#[derive(Clone, Debug)]
pub struct HumanOptions {
    pub color: ColorChoice,
    pub verbosity: Verbosity,
    /// A `PASS` line for every passing test, whatever the verbosity (`--show-passing`).
    pub show_passing: bool,
    /// When the output of a failing test (or of a failed attempt that is retried) is shown.
    pub failure_output: OutputDisplay,
    /// When the output of a passing or flaky test is shown.
    pub success_output: OutputDisplay,
    /// Per stream, output beyond this many bytes is shown as its head and tail around an
    /// "omitted" marker.
    pub max_output_bytes: u64,
    /// Where tests' output is read.
    pub logs: OutputSource,
    /// The command the summary offers to see the run again, `{run}` standing for its id.
    pub show_again: String,
}

impl Default for HumanOptions {
    fn default() -> Self {
        HumanOptions {
            color: ColorChoice::Auto,
            verbosity: Verbosity::Normal,
            show_passing: false,
            failure_output: OutputDisplay::ImmediateFinal,
            success_output: OutputDisplay::Never,
            max_output_bytes: DEFAULT_MAX_OUTPUT_BYTES,
            logs: OutputSource::default(),
            show_again: "psy show {run}".to_string(),
        }
    }
}

impl HumanOptions {
    pub(crate) fn pass_lines(&self) -> bool {
        self.show_passing || self.verbosity >= Verbosity::Verbose
    }

    pub(crate) fn quiet(&self) -> bool {
        self.verbosity == Verbosity::Quiet
    }
}
