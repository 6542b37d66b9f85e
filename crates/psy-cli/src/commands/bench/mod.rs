//! `psy bench ...`: the subcommands; each is measured by the `psy-bench` crate (the fleet's
//! by `psy-server`, with the `server` feature).

#[cfg(feature = "server")]
mod fleet;

use clap::Subcommand;
use psy_bench::{isolation, makespan, scenario, shard, spawn, throughput, unpack, warm};
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub(crate) enum BenchCommand {
    /// Start-to-exit of `/bin/true`: psy's container vs fork+exec, unshare, bubblewrap, crun.
    Spawn(spawn::SpawnArgs),
    /// Tests per second of `psy run` on N trivial tests vs `xargs -P <cores>` running N `true`.
    Throughput(throughput::ThroughputArgs),
    /// Makespan of `psy run` on a mixed suite (memory hogs, CPU-bound, sleeps) vs its lower
    /// bound, psy-scheduler's simulation and a naive `xargs -P <cores>` in a memory cgroup.
    Makespan(makespan::MakespanArgs),
    /// Victim durations alone, beside bare host-process hogs, and beside the same hogs run by
    /// `psy run` with guarantees (exclusive core, disk IO throttle).
    Isolation(isolation::IsolationArgs),
    /// Slowest / fastest shard of `psy run --shard K/N` on a skewed suite with known durations,
    /// beside nextest's count, slice and hash partitions of the same suite.
    Shard(shard::ShardArgs),
    /// A 3-node scenario from admission until its driver started, beside three containers and a
    /// driver started one after another with `unshare`; and how long each `psy fault` takes.
    Scenario(scenario::ScenarioArgs),
    /// Pull + verify + unpack of a ~100 MiB image from a local registry: psy's image store
    /// beside `skopeo copy` + `umoci unpack`, and psy's second pull (cache hit).
    Unpack(unpack::UnpackArgs),
    /// A real pytest suite (more-itertools from PyPI): plain `pytest`, `pytest -n 2`, and
    /// `psy run` cold per test, with `per = "file"` and with `warm = true`, in the same rounds.
    Warm(warm::WarmArgs),
    /// Completed attempts per second of the fleet's work queue: N agents claiming and
    /// reporting M no-op tests through an in-process `psy server` and PostgreSQL.
    #[cfg(feature = "server")]
    Fleet(fleet::FleetArgs),
}

pub(crate) fn bench(cmd: BenchCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        BenchCommand::Spawn(args) => spawn::run(args),
        BenchCommand::Throughput(args) => throughput::run(args),
        BenchCommand::Makespan(args) => makespan::run(args),
        BenchCommand::Isolation(args) => isolation::run(args),
        BenchCommand::Shard(args) => shard::run(args),
        BenchCommand::Unpack(args) => unpack::run(args),
        BenchCommand::Scenario(args) => scenario::run(args),
        BenchCommand::Warm(args) => warm::run(args),
        #[cfg(feature = "server")]
        BenchCommand::Fleet(args) => fleet::run(args),
    }
}
