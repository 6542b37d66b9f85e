//! The row describing one run, as stored and listed by `psy show`.

use psy_model::events::RunSummary;
use psy_model::RunId;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Where a run stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunState {
    /// Started and not finished yet (or its psy was killed and no later psy has noticed).
    Running,
    /// Ended through `finish_run`.
    Finished,
    /// Its psy died without finishing it; found by `abort_unfinished_runs`.
    Aborted,
    /// Stopped on purpose (Ctrl-C, SIGTERM) before every test ran; ended through `finish_run`.
    Interrupted,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::Finished => "finished",
            RunState::Aborted => "aborted",
            RunState::Interrupted => "interrupted",
        }
    }
}

impl fmt::Display for RunState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RunState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "running" => Ok(RunState::Running),
            "finished" => Ok(RunState::Finished),
            "aborted" => Ok(RunState::Aborted),
            "interrupted" => Ok(RunState::Interrupted),
            other => Err(format!("unknown run state {other:?}")),
        }
    }
}

/// One run of a suite.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    pub run_id: RunId,
    /// Milliseconds since the Unix epoch.
    pub started_at_ms: u64,
    /// `None` while the run is running.
    pub finished_at_ms: Option<u64>,
    pub state: RunState,
    /// Path of the manifest (`psyduck.toml`) the run used.
    pub manifest: String,
    /// The `psy` command line, argv joined by spaces.
    pub command_line: String,
    /// Host name of the machine that ran it.
    pub host: String,
    /// Why it ended as it did when the state alone does not say, e.g. "the disk holding
    /// .psyduck is full: ...".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Totals; all zero until `finish_run` (or rebuilt from the tests table by
    /// `abort_unfinished_runs`), except `total`, which `begin_run` stores as given.
    pub summary: RunSummary,
}

impl RunRecord {
    /// A fresh record in the [`RunState::Running`] state with an empty summary of `total` tests.
    pub fn running(
        run_id: RunId,
        started_at_ms: u64,
        manifest: impl Into<String>,
        command_line: impl Into<String>,
        host: impl Into<String>,
        total: usize,
    ) -> Self {
        RunRecord {
            run_id,
            started_at_ms,
            finished_at_ms: None,
            state: RunState::Running,
            manifest: manifest.into(),
            command_line: command_line.into(),
            host: host.into(),
            note: None,
            summary: RunSummary {
                total,
                ..RunSummary::default()
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_state_round_trips() {
        for s in [
            RunState::Running,
            RunState::Finished,
            RunState::Aborted,
            RunState::Interrupted,
        ] {
            assert_eq!(s.as_str().parse::<RunState>(), Ok(s));
        }
        assert!("done".parse::<RunState>().is_err());
    }
}
