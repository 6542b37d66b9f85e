//! The human report's options for `psy run`: the command line wins over the manifest's
//! `[report]`, which wins over the built-in defaults.

use crate::cli::RunArgs;
use psy_config::Manifest;
use psy_report::{ColorChoice, HumanOptions, Verbosity};

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
