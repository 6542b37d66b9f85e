//! `psy bench ...`: the benchmarks behind BENCHMARKS.md, each measuring psy beside its peers in
//! the same run (the machines are shared and noisy: compare ratios, not absolute times).

mod spawn;
mod stats;

use clap::Subcommand;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub(crate) enum BenchCommand {
    /// Start-to-exit of `/bin/true`: psy's container vs fork+exec, unshare, bubblewrap, crun.
    Spawn(spawn::SpawnArgs),
}

pub(crate) fn bench(cmd: BenchCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        BenchCommand::Spawn(args) => spawn::run(args),
    }
}
