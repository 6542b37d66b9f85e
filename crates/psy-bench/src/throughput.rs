//! `psy bench throughput`: tests per second of a real `psy run` of N trivial tests (each in its
//! own container, every attempt committed to the store) against `xargs -P <cores>` running the
//! same N `true` processes bare, `<cores>` at a time; rounds are interleaved so both see the
//! same noise.

use super::harness::{median, run_psy, Project, PsyRun};
use anyhow::{ensure, Context};
use clap::Args;
use psy_model::TestStatus;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, Args)]
pub struct ThroughputArgs {
    /// Number of tests (and of `true` processes for xargs).
    #[arg(short = 'n', long = "tests", default_value_t = 2000)]
    tests: usize,
    /// Rounds of (psy run, xargs).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Where to create the scratch project (default: the current directory).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// Small requests so that many attempts fit at once: 2 cores hold 40 of them.
const CPUS: &str = "0.05";
const MEMORY: &str = "64MiB";
const TMP: &str = "1MiB";

fn manifest(n: usize) -> String {
    let mut s = format!(
        "# psy bench throughput: {n} tests of `true`.\n\
         [defaults]\ncpus = {CPUS}\nmemory = \"{MEMORY}\"\ntmp = \"{TMP}\"\nretries = 0\ntimeout = \"60s\"\n"
    );
    for i in 0..n {
        let _ = write!(s, "\n[[test]]\nname = \"t{i:05}\"\ncommand = [\"true\"]\n");
    }
    s
}

/// The peer: `xargs -P <cores> -n 1 true` fed N lines, i.e. N separate `true` processes.
fn run_xargs(n: usize, cores: usize) -> anyhow::Result<Duration> {
    let input = "x\n".repeat(n);
    let started = Instant::now();
    let mut child = Command::new("xargs")
        .args(["-P", &cores.to_string(), "-n", "1", "true"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .context("starting xargs")?;
    super::harness::feed_xargs(&mut child, &input)?;
    let status = child.wait().context("waiting for xargs")?;
    let wall = started.elapsed();
    ensure!(status.success(), "xargs failed ({status})");
    Ok(wall)
}

/// Exit code 0, and the store holds exactly `n` passed tests with one attempt each.
fn check(run: &PsyRun, n: usize, label: &str) -> anyhow::Result<()> {
    ensure!(
        run.exit_code == 0,
        "`psy run` ({label}) exited with {}: {:?}",
        run.exit_code,
        run.record.summary
    );
    let passed = run
        .tests
        .iter()
        .filter(|t| t.status == TestStatus::Pass)
        .count();
    ensure!(
        passed == n && run.tests.len() == n && run.attempts.len() == n,
        "`psy run` ({label}): the store holds {passed} passed of {} tests and {} attempts, expected {n}",
        run.tests.len(),
        run.attempts.len()
    );
    Ok(())
}

pub fn run(args: ThroughputArgs) -> anyhow::Result<ExitCode> {
    let n = args.tests.max(1);
    let runs = args.runs.max(1);
    let cores = psy_runner::capacity::online_cores().len().max(1);
    let project = Project::create(args.dir.as_deref())?;
    project.write_manifest(&manifest(n))?;
    println!(
        "psy bench throughput: {n} tests of `true` (cpus {CPUS}, memory {MEMORY}, retries 0), {cores} cores, {runs} rounds"
    );
    println!("  psy:   {} run -m <project>/psyduck.toml --color never (store included; round 1 has no history)",
        std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_else(|_| "psy".into()));
    println!("  xargs: xargs -P {cores} -n 1 true  (fed {n} lines: {n} bare `true` processes, {cores} at a time)");
    println!("  project: {}", project.path().display());

    let mut psy_runs = Vec::with_capacity(runs);
    let mut xargs_walls = Vec::with_capacity(runs);
    for round in 1..=runs {
        let label = format!("psy-run-{round}");
        let psy = run_psy(&project, &label)?;
        check(&psy, n, &label)?;
        psy_runs.push(psy);
        xargs_walls.push(run_xargs(n, cores)?);
    }

    println!();
    println!(
        "{:>6} {:>11} {:>11} {:>11} {:>11} {:>10} {:>11} {:>10}",
        "round",
        "psy s",
        "psy test/s",
        "xargs s",
        "xargs /s",
        "psy/xargs",
        "psy loop s",
        "attempt ms"
    );
    let (mut psy_rates, mut xargs_rates) = (Vec::new(), Vec::new());
    for (i, (psy, xargs)) in psy_runs.iter().zip(&xargs_walls).enumerate() {
        let psy_rate = n as f64 / psy.wall.as_secs_f64();
        let xargs_rate = n as f64 / xargs.as_secs_f64();
        let attempt_ms: u64 = psy.attempts.iter().map(|a| a.duration_ms).sum();
        println!(
            "{:>6} {:>11.3} {:>11.1} {:>11.3} {:>11.1} {:>10.3} {:>11.3} {:>10.2}",
            i + 1,
            psy.wall.as_secs_f64(),
            psy_rate,
            xargs.as_secs_f64(),
            xargs_rate,
            psy_rate / xargs_rate,
            psy.run_loop().as_secs_f64(),
            attempt_ms as f64 / n as f64,
        );
        psy_rates.push(psy_rate);
        xargs_rates.push(xargs_rate);
    }
    let (psy_rate, xargs_rate) = (median(&psy_rates), median(&xargs_rates));
    println!(
        "{:>6} {:>11.3} {:>11.1} {:>11.3} {:>11.1} {:>10.3}",
        "median",
        n as f64 / psy_rate,
        psy_rate,
        n as f64 / xargs_rate,
        xargs_rate,
        psy_rate / xargs_rate
    );
    breakdown(&psy_runs, n);
    println!(
        "\npsy_rate / xargs_rate = {:.3} (median rates; target >= 0.40)",
        psy_rate / xargs_rate
    );
    Ok(ExitCode::SUCCESS)
}

/// Where psy's time goes, from the process and the store (medians over the rounds).
fn breakdown(runs: &[PsyRun], n: usize) {
    let med = |f: &dyn Fn(&PsyRun) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>());
    let wall = med(&|r| r.wall.as_secs_f64());
    let run_loop = med(&|r| r.run_loop().as_secs_f64());
    let attempts = med(&|r| r.attempts.iter().map(|a| a.duration_ms).sum::<u64>() as f64 / 1e3);
    println!("\npsy breakdown (medians over rounds):");
    println!(
        "  process wall {wall:.3}s = run loop {run_loop:.3}s + {:.3}s outside it (manifest, store open + gc, sandbox setup, exit)",
        wall - run_loop
    );
    println!(
        "  attempts (container start to reaped, as recorded): sum {attempts:.3}s, mean {:.2}ms, mean concurrency {:.2}",
        attempts * 1e3 / n as f64,
        attempts / run_loop
    );
    println!(
        "  run loop per test: {:.3}ms (scheduling, container setup/teardown, log files, one SQLite commit per attempt and per verdict)",
        run_loop * 1e3 / n as f64
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_defines_n_trivial_tests() {
        let text = manifest(3);
        let dir = std::path::Path::new("/");
        let parsed = psy_config::parse(&dir.join("psyduck.toml"), dir, &text);
        let tests = parsed.unwrap().expand(&[]).unwrap();
        assert_eq!(tests.len(), 3);
        assert_eq!(tests[2].id.to_string(), "t00002");
        assert_eq!(tests[0].command, vec!["true".to_string()]);
        assert_eq!(tests[0].resources.cpu_millis, 50);
        assert_eq!(tests[0].retries, 0);
    }
}
