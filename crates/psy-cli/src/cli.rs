//! Command-line arguments.

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};
use psy_model::OutputDisplay;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "psy",
    version,
    about = "Run every test in its own resource-guaranteed container"
)]
pub(crate) struct Cli {
    /// More output: -v a line as each test starts and passes, and info logs; -vv debug logs
    /// (finer control of logs: PSY_LOG=target=level,...).
    #[arg(short, long, global = true, action = ArgAction::Count, conflicts_with = "quiet")]
    pub(crate) verbose: u8,
    /// Less output: only failing tests (with their output) and a one-line summary; no progress
    /// bar, no discovery progress. Warnings are still shown.
    #[arg(short, long, global = true)]
    pub(crate) quiet: bool,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the suite (or the tests matching FILTER...).
    Run(RunArgs),
    /// List the tests with their resources and expected durations.
    List(ListArgs),
    /// Show a run's results (default: the latest run).
    Show(ShowArgs),
    /// Show the past attempts of one test.
    History(HistoryArgs),
    /// Print a test's output (default: its last attempt in the latest run that ran it).
    Log(LogArgs),
    /// Remove what killed psy processes left behind (cgroups, scratch dirs) and mark their runs aborted.
    /// Needs only the project directory (that of -m): the manifest is not parsed.
    Gc(ManifestArg),
    /// Measure the disk's IO capacity and write it to this machine's host file.
    Calibrate(psy_bench::calibrate::CalibrateArgs),
    /// Benchmarks against peers (results for BENCHMARKS.md).
    #[command(subcommand)]
    Bench(crate::commands::bench::BenchCommand),
    /// Write the store's expected test durations to a file (for `psy import` on another machine).
    Export(ExportArgs),
    /// Merge test durations from a `psy export` file into the store (used by `--shard`).
    Import(ImportArgs),
    /// The machine's image store: list, pull, import and remove the images tests run in.
    #[command(subcommand)]
    Image(crate::commands::image::ImageCommand),
    /// Send the working tree to a psy server and run the selected tests on its agents.
    Submit(SubmitArgs),
    /// List the server's newest runs.
    Runs(ServerArgs),
    /// Cancel a run on the server: its queued and running jobs.
    Cancel(CancelArgs),
    /// Join a fleet: claim jobs from a `psy server`, run them in containers, report results.
    Agent(crate::commands::agent::AgentArgs),
    /// Serve the fleet's HTTP API over PostgreSQL, or manage its tokens (`psy server token`).
    #[cfg(feature = "server")]
    Server(crate::commands::server::ServerArgs),
    /// Break a node of a multi-node test: works only inside the test's driver (through
    /// $PSY_FAULT_SOCKET); returns when the fault is in effect.
    #[command(subcommand)]
    Fault(FaultCommand),
}

/// `psy fault ...`: one fault per call (see docs/scenarios.md).
#[derive(Debug, Subcommand)]
pub(crate) enum FaultCommand {
    /// SIGKILL the node's whole container (its volumes are kept).
    Kill(NodeArg),
    /// SIGTERM the node, then SIGKILL it after the grace period.
    Stop(GracefulArgs),
    /// Start a stopped or killed node again, with the same address and volumes.
    Start(NodeArg),
    /// Stop the node, then start it again.
    Restart(GracefulArgs),
    /// Freeze the node's processes.
    Pause(NodeArg),
    /// Thaw a paused node.
    Resume(NodeArg),
    /// Drop all traffic between two sets of nodes: `partition n1 / n2,n3`.
    Partition {
        /// `A[,B...] / C[,D...]` (the `/` may also touch the names: `n1/n2,n3`).
        #[arg(required = true, value_name = "A[,B...] / C[,D...]")]
        sides: Vec<String>,
    },
    /// Remove every partition.
    Heal,
    /// Shape the node's traffic both ways (delay, jitter, loss, rate), or --clear it.
    #[command(group = clap::ArgGroup::new("shape").required(true).multiple(true))]
    Link {
        #[command(flatten)]
        node: NodeArg,
        /// Added latency, e.g. 100ms.
        #[arg(long, group = "shape", value_parser = crate::commands::fault::duration)]
        delay: Option<std::time::Duration>,
        /// Variation of the delay, e.g. 10ms (needs --delay).
        #[arg(long, requires = "delay", value_parser = crate::commands::fault::duration)]
        jitter: Option<std::time::Duration>,
        /// Share of packets dropped: 5% (or 5).
        #[arg(long, group = "shape", value_parser = crate::commands::fault::loss)]
        loss: Option<f64>,
        /// Bandwidth limit in bits per second: 1mbit, 100kbit, 1gbit.
        #[arg(long, group = "shape", value_parser = crate::commands::fault::rate)]
        rate: Option<u64>,
        /// Remove the node's shaping.
        #[arg(long, group = "shape", conflicts_with_all = ["delay", "jitter", "loss", "rate"])]
        clear: bool,
    },
    /// Fill the free space of one of the node's volumes.
    DiskFull(VolumeArgs),
    /// Release the space `disk-full` took.
    DiskFree(VolumeArgs),
    /// Restart the node with its CLOCK_MONOTONIC and CLOCK_BOOTTIME shifted (a time namespace;
    /// wall time, CLOCK_REALTIME, is never shifted): --offset 30s, --offset=-30s, --offset 0.
    Clock {
        #[command(flatten)]
        node: NodeArg,
        /// How far, e.g. 30s, -1m (a negative offset sets the clocks back; 0 gives the host's
        /// again). Kept across the node's later restarts.
        #[arg(long, allow_hyphen_values = true, value_parser = crate::commands::fault::offset_millis)]
        offset: i64,
    },
}

/// The node a fault applies to.
#[derive(Debug, Args)]
pub(crate) struct NodeArg {
    /// The node's name (its `[[test.node]]` name; `$PSY_NODES` lists them).
    pub(crate) node: String,
}

/// `stop` and `restart`: the node, and how long it gets after SIGTERM before SIGKILL.
#[derive(Debug, Args)]
pub(crate) struct GracefulArgs {
    #[command(flatten)]
    pub(crate) node: NodeArg,
    /// How long after SIGTERM before SIGKILL, e.g. 5s (default: the runner's, 10s).
    #[arg(long, value_parser = crate::commands::fault::duration)]
    pub(crate) grace: Option<std::time::Duration>,
}

/// `disk-full` and `disk-free`: the node, and which of its volumes.
#[derive(Debug, Args)]
pub(crate) struct VolumeArgs {
    #[command(flatten)]
    pub(crate) node: NodeArg,
    /// The volume's mount point in the node (its only volume when omitted).
    pub(crate) path: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    #[command(flatten)]
    pub(crate) manifest: ManifestArg,
    /// Write the durations (JSON, versioned) to FILE.
    #[arg(long, value_name = "FILE")]
    pub(crate) durations: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    #[command(flatten)]
    pub(crate) manifest: ManifestArg,
    /// A file written by `psy export --durations`.
    pub(crate) file: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct ManifestArg {
    /// The manifest.
    #[arg(short = 'm', long = "manifest", default_value = "psyduck.toml")]
    pub(crate) manifest: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct SelectArgs {
    #[command(flatten)]
    pub(crate) manifest: ManifestArg,
    /// Only tests whose id contains FILTER, or `tag:NAME` for tests with that tag.
    pub(crate) filters: Vec<String>,
    /// Only these variants (repeatable).
    #[arg(long = "variant", value_name = "V")]
    pub(crate) variants: Vec<String>,
    /// Ignored tests (Rust `#[ignore]`): `default` lists them and reports them skipped without
    /// running them, `only` runs just them, `all` runs them with the others.
    #[arg(long, value_enum, value_name = "WHICH", default_value_t = RunIgnored::Default)]
    pub(crate) run_ignored: RunIgnored,
}

/// `--run-ignored`, as in `cargo nextest run`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum RunIgnored {
    /// Report `#[ignore]` tests as skipped without running them.
    Default,
    /// Run only the ignored tests.
    Only,
    /// Run ignored and not ignored tests.
    All,
}

impl From<RunIgnored> for psy_config::RunIgnored {
    fn from(value: RunIgnored) -> Self {
        match value {
            RunIgnored::Default => psy_config::RunIgnored::Default,
            RunIgnored::Only => psy_config::RunIgnored::Only,
            RunIgnored::All => psy_config::RunIgnored::All,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum MessageFormat {
    /// Readable lines for a person.
    Human,
    /// Machine-readable: one JSON object per line.
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Color {
    /// Colour when stderr is a terminal and NO_COLOR is unset.
    Auto,
    /// Colour even in pipes and files.
    Always,
    /// Plain text.
    Never,
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    pub(crate) select: SelectArgs,
    /// Also write JUnit XML here.
    #[arg(long, value_name = "PATH")]
    pub(crate) junit: Option<PathBuf>,
    /// `json`: one event per line on stdout (schema: docs/events.md); the human view stays on stderr.
    #[arg(long, value_enum, default_value = "human")]
    pub(crate) message_format: MessageFormat,
    /// Retries of a failed attempt, for every test (overrides the manifest).
    #[arg(long, value_name = "N")]
    pub(crate) retries: Option<u32>,
    /// Count flaky tests (failed, then passed on retry) as failures.
    #[arg(long)]
    pub(crate) flaky_fail: bool,
    /// At most N attempts at once.
    #[arg(short = 'j', long, value_name = "N")]
    pub(crate) jobs: Option<usize>,
    /// Use at most this many CPUs (fractional allowed) for tests.
    #[arg(long, value_name = "CPUS")]
    pub(crate) cpus: Option<f64>,
    /// Keep the tests' volumes (`[[test.volume]]`) after the run instead of removing them.
    #[arg(long)]
    pub(crate) keep_volumes: bool,
    /// Print a line for every passing test too (also with -v).
    #[arg(long)]
    pub(crate) show_passing: bool,
    /// When to print a failing test's output: immediate (as it fails), final (at the end),
    /// immediate-final, never [default: immediate-final, or `[report] failure-output`].
    #[arg(long, value_name = "WHEN")]
    pub(crate) failure_output: Option<OutputDisplay>,
    /// When to print a passing test's output: immediate, final, immediate-final, never
    /// [default: never, or `[report] success-output`].
    #[arg(long, value_name = "WHEN")]
    pub(crate) success_output: Option<OutputDisplay>,
    /// Let tests with `privileged = true` run with host root's powers (refused without it).
    #[arg(long)]
    pub(crate) allow_privileged: bool,
    /// Refuse to run (exit 2) when a selected test asks for a guarantee this host cannot
    /// enforce (CPU, memory or pids limits, exclusive cores, IO throttles, disk, volumes,
    /// network, per-slot user namespaces) instead of warning; also `[host] require-guarantees`.
    #[arg(long)]
    pub(crate) require_guarantees: bool,
    /// Colour the report: auto (on a terminal, unless NO_COLOR is set), always, never.
    #[arg(long, value_enum, default_value = "auto")]
    pub(crate) color: Color,
    #[command(flatten)]
    pub(crate) control: RunControl,
}

/// What to run and when to stop: fail-fast, reruns, repetitions, shards.
#[derive(Debug, Args)]
pub(crate) struct RunControl {
    /// Stop at the first failing test (after its retries): start nothing more, kill the running
    /// tests (not recorded), exit 1; also `[run] fail-fast = true`.
    #[arg(long, overrides_with = "no_fail_fast")]
    pub(crate) fail_fast: bool,
    /// Run every selected test whatever fails (the default; overrides `[run] fail-fast`).
    #[arg(long, overrides_with = "fail_fast")]
    pub(crate) no_fail_fast: bool,
    /// Only the tests that failed in the latest run, or with `=RUN` in that run (id or unique
    /// prefix); flaky ones too with --flaky-fail.
    #[arg(long, value_name = "RUN", num_args = 0..=1, require_equals = true, default_missing_value = "")]
    pub(crate) rerun_failed: Option<String>,
    /// Run each selected test N times (every repetition is recorded as attempts of the test).
    #[arg(long, value_name = "N")]
    pub(crate) repeat: Option<u32>,
    /// Repeat the selected tests until one fails (at most --repeat times, default 1000), or Ctrl-C.
    #[arg(long)]
    pub(crate) until_fail: bool,
    /// Run only shard K of N (from 1), split so the N shards take about as long, from the
    /// recorded durations (`psy export`/`psy import` carry them between machines).
    #[arg(long, value_name = "K/N")]
    pub(crate) shard: Option<psy_runner::shard::Shard>,
}

#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    #[command(flatten)]
    pub(crate) select: SelectArgs,
    /// `json`: one JSON object per test on stdout; `human`: a table.
    #[arg(long, value_enum, default_value = "human")]
    pub(crate) message_format: MessageFormat,
    /// Only the tests `psy run --shard K/N` would run (with this store's durations).
    #[arg(long, value_name = "K/N")]
    pub(crate) shard: Option<psy_runner::shard::Shard>,
}

/// Where the fleet's server is and the token to use (docs/submit.md).
#[derive(Debug, Args)]
pub(crate) struct ServerArgs {
    /// The psy server, `http(s)://host:port` [default: $PSY_SERVER, else `server` in
    /// ~/.config/psyduck/client.toml].
    #[arg(long, value_name = "URL")]
    pub(crate) server: Option<String>,
    /// A token of role `user` [default: $PSY_TOKEN, else `token` in the client config].
    // Tokens are base64url: one may start with `-`.
    #[arg(long, value_name = "TOKEN", allow_hyphen_values = true)]
    pub(crate) token: Option<String>,
}

/// `--server [URL]` of `psy show` and `psy log`: read a run of the fleet instead of the
/// local store (RUN is then the server's run id; of a test, its latest attempt).
#[derive(Debug, Args)]
pub(crate) struct RemoteArgs {
    /// Read a run of the psy server at URL instead of the local store (`--server` alone: from
    /// $PSY_SERVER or the client config).
    #[arg(long, value_name = "URL", num_args = 0..=1, default_missing_value = "")]
    pub(crate) server: Option<String>,
    /// With --server: a token of role `user` [default: $PSY_TOKEN, else the client config].
    #[arg(
        long,
        value_name = "TOKEN",
        requires = "server",
        allow_hyphen_values = true
    )]
    pub(crate) token: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct SubmitArgs {
    #[command(flatten)]
    pub(crate) select: SelectArgs,
    #[command(flatten)]
    pub(crate) server: ServerArgs,
    /// Wait for the run to finish, showing its progress and verdicts; exit as `psy run` does.
    #[arg(long)]
    pub(crate) wait: bool,
    /// With --wait, also write JUnit XML here.
    #[arg(long, value_name = "PATH", requires = "wait")]
    pub(crate) junit: Option<PathBuf>,
    /// `json`: with --wait, one event per line on stdout (schema: docs/events.md); without, the
    /// submitted run as one JSON object.
    #[arg(long, value_enum, default_value = "human")]
    pub(crate) message_format: MessageFormat,
    /// The run's priority: higher runs are served first.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 0,
        allow_negative_numbers = true
    )]
    pub(crate) priority: i32,
}

#[derive(Debug, Args)]
pub(crate) struct CancelArgs {
    /// The run's id, as `psy submit` and `psy runs` print it.
    pub(crate) run: i64,
    #[command(flatten)]
    pub(crate) server: ServerArgs,
}

#[derive(Debug, Args)]
pub(crate) struct ShowArgs {
    #[command(flatten)]
    pub(crate) manifest: ManifestArg,
    /// Run id (or a unique prefix); default: the latest run. With --server: the server's run id.
    pub(crate) run: Option<String>,
    /// Show only this test: its attempts and the first lines of their output.
    pub(crate) test: Option<String>,
    /// Show every attempt, not only each test's verdict.
    #[arg(long)]
    pub(crate) attempts: bool,
    #[command(flatten)]
    pub(crate) remote: RemoteArgs,
}

#[derive(Debug, Args)]
pub(crate) struct LogArgs {
    #[command(flatten)]
    pub(crate) manifest: ManifestArg,
    /// The test id, as `psy show` lists it (e.g. `smoke` or `smoke@debug`).
    pub(crate) test: String,
    /// Run id (or a unique prefix); default: the latest run that ran TEST.
    pub(crate) run: Option<String>,
    /// Which attempt (1 is the first); default: the last.
    #[arg(long, value_name = "N")]
    pub(crate) attempt: Option<u32>,
    /// Only stdout, as the test wrote it (no header).
    #[arg(long, conflicts_with = "stderr")]
    pub(crate) stdout: bool,
    /// Only stderr, as the test wrote it (no header).
    #[arg(long)]
    pub(crate) stderr: bool,
    /// A multi-node scenario's node: its output instead of the driver's (both its lives and
    /// more, appended across restarts).
    #[arg(long, value_name = "NAME", conflicts_with = "timeline")]
    pub(crate) node: Option<String>,
    /// A multi-node scenario's timeline: node starts, readiness, exits and faults, in order.
    #[arg(long)]
    pub(crate) timeline: bool,
    #[command(flatten)]
    pub(crate) remote: RemoteArgs,
}

#[derive(Debug, Args)]
pub(crate) struct HistoryArgs {
    #[command(flatten)]
    pub(crate) manifest: ManifestArg,
    /// The test: its id (`smoke@debug`), its name (every variant: `smoke`) or a unique prefix.
    pub(crate) test: String,
    /// Show at most this many attempts, newest first.
    #[arg(long, default_value_t = 20)]
    pub(crate) limit: usize,
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    /// Every subcommand, argument and value of `psy` says what it is in `--help`.
    #[test]
    fn every_help_line_is_filled_in() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if matches!(id, "help" | "version") {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
                let values = if arg.get_action().takes_values() {
                    arg.get_possible_values()
                } else {
                    Vec::new()
                };
                for value in values {
                    if value.get_help().is_none() && !value.is_hide_set() {
                        missing.push(format!("{path} {id}={}", value.get_name()));
                    }
                }
            }
            for sub in cmd.get_subcommands() {
                let sub_path = format!("{path} {}", sub.get_name());
                if sub.get_about().is_none() && sub.get_long_about().is_none() {
                    missing.push(sub_path.clone());
                }
                walk(sub, &sub_path, missing);
            }
        }
        let cmd = Cli::command();
        cmd.clone().debug_assert();
        let mut missing = Vec::new();
        walk(&cmd, "psy", &mut missing);
        assert!(missing.is_empty(), "no help text: {missing:#?}");
    }
}
