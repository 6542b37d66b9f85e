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
    Calibrate(crate::commands::calibrate::CalibrateArgs),
    /// Benchmarks against peers (results for BENCHMARKS.md).
    #[command(subcommand)]
    Bench(crate::commands::bench::BenchCommand),
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
    Default,
    Only,
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
    Human,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Color {
    Auto,
    Always,
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
}

#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    #[command(flatten)]
    pub(crate) select: SelectArgs,
    /// `json`: one JSON object per test on stdout; `human`: a table.
    #[arg(long, value_enum, default_value = "human")]
    pub(crate) message_format: MessageFormat,
}

#[derive(Debug, Args)]
pub(crate) struct ShowArgs {
    #[command(flatten)]
    pub(crate) manifest: ManifestArg,
    /// Run id (or a unique prefix); default: the latest run.
    pub(crate) run: Option<String>,
    /// Show only this test: its attempts and the first lines of their output.
    pub(crate) test: Option<String>,
    /// Show every attempt, not only each test's verdict.
    #[arg(long)]
    pub(crate) attempts: bool,
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
}

#[derive(Debug, Args)]
pub(crate) struct HistoryArgs {
    #[command(flatten)]
    pub(crate) manifest: ManifestArg,
    /// The test id (e.g. `smoke` or `smoke@debug`).
    pub(crate) test: String,
    /// Show at most this many attempts, newest first.
    #[arg(long, default_value_t = 20)]
    pub(crate) limit: usize,
}
