//! The human report's options for `psy run`: the command line wins over the manifest's
//! `[report]`, which wins over the built-in defaults; and the machine-readable reporters.

use crate::cli::{MessageFormat, RunArgs};
use psy_config::Manifest;
use psy_model::TestSpec;
use psy_report::{
    ColorChoice, Fanout, HumanOptions, JsonReporter, JunitOptions, JunitReporter, OutputSource,
    Verbosity,
};
use std::path::Path;

pub(crate) fn human_options(
    args: &RunArgs,
    manifest: &Manifest,
    color: ColorChoice,
    verbosity: Verbosity,
) -> HumanOptions {
    let defaults = HumanOptions::default();
    HumanOptions {
        color,
        verbosity,
        show_passing: args.show_passing,
        failure_output: args
            .failure_output
            .or(manifest.report.failure_output)
            .unwrap_or(defaults.failure_output),
        success_output: args
            .success_output
            .or(manifest.report.success_output)
            .unwrap_or(defaults.success_output),
        ..defaults
    }
}

/// The machine-readable reporters asked for: JSON lines on stdout, JUnit XML at `junit`
/// (tests' output read from `logs`); `psy run`'s and `psy submit --wait`'s.
pub(crate) fn push_machine_reporters(
    reporters: &mut Fanout,
    format: MessageFormat,
    junit: Option<&Path>,
    tests: &[TestSpec],
    logs: OutputSource,
) {
    if format == MessageFormat::Json {
        reporters.push(Box::new(JsonReporter::new(std::io::stdout())));
    }
    if let Some(path) = junit {
        reporters.push(Box::new(JunitReporter::new(
            path,
            JunitOptions {
                suite_name: Some("psyduck".into()),
                classnames: tests
                    .iter()
                    .filter_map(|t| Some((t.id.clone(), t.group.clone()?)))
                    .collect(),
                logs,
                ..JunitOptions::default()
            },
        )));
    }
}
