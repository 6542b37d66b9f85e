//! `psy bench warm`: a real pytest suite (more-itertools from PyPI) run, in the same rounds,
//! by plain serial `pytest`, `pytest -n 2` (pytest-xdist), and `psy run` cold per test, with
//! `per = "file"` and with `warm = true` (discovery included); the medians, warm / plain
//! pytest (the target: <= 1.5x), and what each psy test costs beyond pytest's own work.

use super::harness::{median, run_psy, Project, PsyRun};
use super::warm_suite::{self, PsyMode, ENV};
use anyhow::Context;
use clap::Args;
use psy_model::TestStatus;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, Args)]
pub struct WarmArgs {
    /// Rounds; each runs every series once, and the table shows the median of each.
    #[arg(short = 'n', long = "runs", default_value_t = 3)]
    runs: usize,
    /// A pytest project to measure instead of downloading more-itertools (copied into the
    /// scratch project, where the manifests are written).
    #[arg(long, value_name = "DIR")]
    suite: Option<PathBuf>,
    /// pytest's collection arguments in every series (`tests/test_more.py`, `-k recipes`).
    #[arg(long = "pytest-arg", value_name = "ARG", allow_hyphen_values = true)]
    pytest_args: Vec<String>,
    /// The interpreter (with pytest) of every series.
    #[arg(long, default_value = "python3")]
    python: String,
    /// Where to create the scratch project (default: the current directory).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Skip the last measurement: the warm worker alone (no psy run, no sandbox), one fork at
    /// a time, for the per-test overhead of a fork beside a cold container's.
    #[arg(long)]
    no_worker: bool,
}

/// One series' walls over the rounds, and what the last round counted.
struct Series {
    label: String,
    walls: Vec<Duration>,
    /// Tests as the series counts them (psy: its tests; plain pytest: its summary line).
    counted: String,
}

impl Series {
    fn new(label: impl Into<String>) -> Series {
        Series {
            label: label.into(),
            walls: Vec::new(),
            counted: String::new(),
        }
    }

    fn median(&self) -> f64 {
        median(
            &self
                .walls
                .iter()
                .map(Duration::as_secs_f64)
                .collect::<Vec<_>>(),
        )
    }
}

pub fn run(args: WarmArgs) -> anyhow::Result<ExitCode> {
    let runs = args.runs.max(1);
    let project = Project::create(args.dir.as_deref())?;
    let parent = project.path().parent().unwrap_or(Path::new("/"));
    let tools = tempfile::Builder::new()
        .prefix("psy-bench-warm-tools-")
        .tempdir_in(parent)
        .with_context(|| {
            format!(
                "creating a directory for the download under {}",
                parent.display()
            )
        })?;
    let suite = warm_suite::fill(&project, args.suite.as_deref(), &args.python, tools.path())?;
    let xdist = warm_suite::xdist_python(&args.python, tools.path());
    let cores = psy_runner::capacity::online_cores().len().max(1);
    println!("psy bench warm: {suite}, {runs} round(s), {cores} cores");
    println!("  project: {}", project.path().display());
    println!(
        "  pytest args: {:?}; every series with {}={}",
        args.pytest_args, ENV.0, ENV.1
    );
    if let Err(why) = &xdist {
        println!("  note: no `pytest -n 2` series: {why}");
    }

    let mut plain = Series::new("plain `pytest` (serial)");
    let mut parallel = Series::new("`pytest -n 2` (pytest-xdist)");
    let modes = [PsyMode::Cold, PsyMode::PerFile, PsyMode::Warm];
    let mut psy: Vec<(PsyMode, Series, Vec<PsyRun>)> = modes
        .iter()
        .map(|&m| (m, Series::new(m.label()), Vec::new()))
        .collect();
    for round in 1..=runs {
        let (wall, summary) =
            run_pytest(Path::new(&args.python), &args.pytest_args, &[], &project)?;
        plain.walls.push(wall);
        plain.counted = summary;
        if let Ok(python) = &xdist {
            let (wall, summary) = run_pytest(python, &args.pytest_args, &["-n", "2"], &project)?;
            parallel.walls.push(wall);
            parallel.counted = summary;
        }
        for (mode, series, kept) in &mut psy {
            project.write_manifest(&mode.manifest(&args.python, &args.pytest_args))?;
            let label = format!("warm-bench-{}-{round}", mode.slug());
            let run = run_psy(&project, &label)?;
            series.walls.push(run.wall);
            let passed = run
                .tests
                .iter()
                .filter(|t| t.status == TestStatus::Pass)
                .count();
            series.counted = format!("{} tests, {passed} passed", run.tests.len());
            kept.push(run);
        }
        println!("  round {round}/{runs} done");
    }

    let base = plain.median();
    println!();
    println!(
        "{:34} {:>10} {:>9} {:>9} {:>9}  counted (last round)",
        "series", "median s", "min s", "max s", "x plain"
    );
    let mut rows: Vec<&Series> = vec![&plain];
    if xdist.is_ok() {
        rows.push(&parallel);
    }
    rows.extend(psy.iter().map(|(_, s, _)| s));
    for s in &rows {
        let secs: Vec<f64> = s.walls.iter().map(Duration::as_secs_f64).collect();
        let min = secs.iter().copied().fold(f64::INFINITY, f64::min);
        let max = secs.iter().copied().fold(0.0, f64::max);
        println!(
            "{:34} {:>10.2} {:>9.2} {:>9.2} {:>9.2}  {}",
            s.label,
            s.median(),
            min,
            max,
            s.median() / base,
            s.counted
        );
    }
    let warm = psy
        .iter()
        .find(|(m, _, _)| *m == PsyMode::Warm)
        .map(|(_, s, _)| s.median());
    if let Some(warm) = warm {
        println!(
            "\nwarm / plain pytest = {:.2}x (median walls; target <= 1.5x)",
            warm / base
        );
    }
    per_test(&psy, base);
    if !args.no_worker {
        worker_alone(&args, &project, tools.path())?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The warm worker driven directly (`psy_warm::measure`), one fork at a time: what a warm start
/// costs per test without psy's run loop and without a sandbox entry.
fn worker_alone(args: &WarmArgs, project: &Project, tools: &Path) -> anyhow::Result<()> {
    let env = [(ENV.0.to_string(), ENV.1.to_string())];
    let figures = psy_warm::measure::measure(
        &args.python,
        &args.pytest_args,
        project.path(),
        &env,
        &[1],
        &tools.join("worker"),
    )
    .context("measuring the warm worker alone")?;
    let Some((_, wall, _)) = figures.warm.first() else {
        return Ok(());
    };
    println!(
        "
warm worker alone (psy-warm, no run loop, no sandbox entry; once, after the rounds):"
    );
    println!(
        "  plain pytest {:.2} s; worker, 1 fork at a time: {:.2} s ({:.2}x), of which start + collect {:.2} s",
        figures.plain.as_secs_f64(),
        wall.as_secs_f64(),
        wall.as_secs_f64() / figures.plain.as_secs_f64(),
        figures.collect.as_secs_f64()
    );
    println!(
        "  per-test overhead of a fork (elapsed less pytest's own phases), {} tests: median {:.1} ms, mean {:.1} ms",
        figures.tests,
        figures.overhead_median.as_secs_f64() * 1e3,
        figures.overhead_mean.as_secs_f64() * 1e3
    );
    Ok(())
}

/// What a psy test costs beyond pytest's own work: (psy wall - plain wall) / pytest items
/// (the cold series' tests, one per node id, also for `per = "file"`), and the mean attempt
/// as the store recorded it (container or fork start to reaped).
fn per_test(psy: &[(PsyMode, Series, Vec<PsyRun>)], plain: f64) {
    let items = psy
        .iter()
        .find(|(mode, _, _)| *mode == PsyMode::Cold)
        .and_then(|(_, _, runs)| runs.last())
        .map_or(0, |r| r.tests.len());
    if items == 0 {
        return;
    }
    println!("\nper pytest item (medians over rounds):");
    for (mode, series, runs) in psy {
        let tests = items;
        let attempt_ms = median(
            &runs
                .iter()
                .map(|r| {
                    let sum: u64 = r.attempts.iter().map(|a| a.duration_ms).sum();
                    sum as f64 / r.attempts.len().max(1) as f64
                })
                .collect::<Vec<_>>(),
        );
        println!(
            "  {:28} {:>8.1} ms beyond plain pytest per test ((wall - plain) / {tests}), mean attempt {:>7.1} ms",
            mode.label(),
            (series.median() - plain) * 1e3 / tests as f64,
            attempt_ms
        );
    }
}

/// `python -m pytest -q -p no:cacheprovider <extra> <args>` in the project: its wall time and
/// its summary line. Exit codes 0 and 1 (some test failed) are results; others are errors.
fn run_pytest(
    python: &Path,
    args: &[String],
    extra: &[&str],
    project: &Project,
) -> anyhow::Result<(Duration, String)> {
    let started = Instant::now();
    let out = Command::new(python)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .args(extra)
        .args(args)
        .current_dir(project.path())
        .env(ENV.0, ENV.1)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {} -m pytest", python.display()))?;
    let wall = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim_matches('=')
        .trim()
        .to_string();
    match out.status.code() {
        Some(0 | 1) => Ok((wall, summary)),
        _ => anyhow::bail!(
            "`{} -m pytest {}` failed ({}): {summary}\n{}",
            python.display(),
            extra.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ),
    }
}
