//! A whole collected suite through one warm worker, `parallel` children at a time: the driver of
//! the crate's tests, and [`measure`] for `psy bench warm` (plain `pytest -q` beside warm runs).

use crate::child::{ChildExit, Ended, WarmChild};
use crate::error::WarmError;
use crate::outcome::{verdict, WarmVerdict};
use crate::parent::WarmParent;
use crate::protocol::{Entry, RunRequest};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One test of a suite run.
#[derive(Clone, Debug)]
pub struct Finished {
    pub nodeid: String,
    pub exit: ChildExit,
    pub verdict: WarmVerdict,
    /// Its stdout and stderr logs.
    pub stdout: PathBuf,
    pub stderr: PathBuf,
    /// From the run request to its exit being seen: fork, the test, the result.
    pub elapsed: Duration,
}

/// The request for test `index` of a suite, its files in `dir`.
pub fn request(nodeid: &str, index: usize, dir: &Path) -> RunRequest {
    let file = |ext: &str| dir.join(format!("{index}.{ext}"));
    RunRequest {
        run: nodeid.to_string(),
        test_id: nodeid.to_string(),
        attempt: 1,
        env: BTreeMap::new(),
        stdout: file("out"),
        stderr: file("err"),
        result: file("json"),
        entry: Entry::None,
    }
}

/// Runs each of `ids`, `parallel` at a time (at least one), writing their files into `dir`;
/// results in the order of `ids`.
pub fn run_each(
    parent: &mut WarmParent,
    ids: &[String],
    parallel: usize,
    dir: &Path,
) -> Result<Vec<Finished>, WarmError> {
    let mut running: Vec<WarmChild> = Vec::new();
    let mut started: HashMap<u32, (usize, Instant, RunRequest)> = HashMap::new();
    let mut done: Vec<Option<Finished>> = vec![None; ids.len()];
    let mut next = 0;
    while next < ids.len() || !running.is_empty() {
        while next < ids.len() && running.len() < parallel.max(1) {
            let request = request(&ids[next], next, dir);
            let start = Instant::now();
            let child = parent.run(&request)?;
            started.insert(child.pid(), (next, start, request));
            running.push(child);
            next += 1;
        }
        let Ended { pid, exit, .. } = parent.wait_any(&mut running)?;
        if let Some((index, start, request)) = started.remove(&pid) {
            done[index] = Some(Finished {
                nodeid: request.run,
                exit,
                verdict: verdict(exit, &request.result),
                stdout: request.stdout,
                stderr: request.stderr,
                elapsed: start.elapsed(),
            });
        }
    }
    Ok(done.into_iter().flatten().collect())
}

/// Plain pytest beside warm runs of the same suite.
#[derive(Clone, Debug)]
pub struct Figures {
    pub tests: usize,
    /// `python -m pytest -q -p no:cacheprovider <args>`, one process, serial.
    pub plain: Duration,
    /// Per parallelism: the worker's start and collection, then every test in its own fork.
    pub warm: Vec<(usize, Duration)>,
    /// The worker's start and collection (of the first warm run).
    pub collect: Duration,
    /// Per test of the serial warm run: its elapsed time less the phases pytest timed (fork,
    /// exit, result and the reports' own work). No sandbox entry yet.
    pub overhead_median: Duration,
    pub overhead_mean: Duration,
}

/// Measuring could not run plain pytest or the warm worker.
#[derive(Debug, thiserror::Error)]
pub enum MeasureError {
    #[error("cannot run plain pytest (`{python} -m pytest`) in {}: {source}", cwd.display())]
    Plain {
        python: String,
        cwd: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot make a directory for the warm runs' files: {0}")]
    Scratch(std::io::Error),
    #[error(transparent)]
    Warm(#[from] WarmError),
}

/// Measures plain serial pytest, then the whole suite warm at each of `parallel`, with `env`
/// added for every run; the tests' files go to `dir`.
pub fn measure(
    python: &str,
    args: &[String],
    cwd: &Path,
    env: &[(String, String)],
    parallel: &[usize],
    dir: &Path,
) -> Result<Figures, MeasureError> {
    let plain_error = |source| MeasureError::Plain {
        python: python.to_string(),
        cwd: cwd.to_path_buf(),
        source,
    };
    let start = Instant::now();
    Command::new(python)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .args(args)
        .current_dir(cwd)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(plain_error)?;
    let plain = start.elapsed();
    let mut figures = Figures {
        tests: 0,
        plain,
        warm: Vec::new(),
        collect: Duration::ZERO,
        overhead_median: Duration::ZERO,
        overhead_mean: Duration::ZERO,
    };
    for (round, &k) in parallel.iter().enumerate() {
        let files = dir.join(format!("warm-{k}"));
        std::fs::create_dir_all(&files).map_err(MeasureError::Scratch)?;
        let start = Instant::now();
        let mut parent = WarmParent::start(python, args, cwd, env)?;
        let collected = start.elapsed();
        let ids = parent.items().to_vec();
        let finished = run_each(&mut parent, &ids, k, &files)?;
        figures.warm.push((k, start.elapsed()));
        parent.shutdown()?;
        if round == 0 {
            figures.tests = ids.len();
            figures.collect = collected;
            let mut overheads: Vec<Duration> = finished
                .iter()
                .map(|f| {
                    let own = f.verdict.outcome.as_ref().map(|o| o.duration());
                    f.elapsed.saturating_sub(own.unwrap_or_default())
                })
                .collect();
            overheads.sort();
            if !overheads.is_empty() {
                figures.overhead_median = overheads[overheads.len() / 2];
                let n = u32::try_from(overheads.len()).unwrap_or(u32::MAX);
                figures.overhead_mean = overheads.iter().sum::<Duration>() / n;
            }
        }
    }
    Ok(figures)
}
