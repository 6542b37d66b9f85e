//! Warm starts beside plain pytest on one suite, for `psy bench warm`: wall time and CPU time
//! (the driver's children's, from `/proc/self/stat`, so a loaded machine skews it less than wall).

use crate::error::WarmError;
use crate::parent::WarmParent;
use crate::suite::run_each;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Linux's `USER_HZ`: the unit of the times in `/proc/<pid>/stat`.
const TICKS_PER_SECOND: u64 = 100;

/// Plain pytest beside warm runs of the same suite.
#[derive(Clone, Debug)]
pub struct Figures {
    pub tests: usize,
    /// `python -m pytest -q -p no:cacheprovider <args>`, one process, serial: wall and CPU.
    pub plain: Duration,
    pub plain_cpu: Duration,
    /// Per parallelism: the worker's start and collection, then every test in its own fork:
    /// (parallelism, wall, CPU of the worker and its children).
    pub warm: Vec<(usize, Duration, Duration)>,
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
    let cpu = children_cpu();
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
        plain_cpu: children_cpu().saturating_sub(cpu),
        warm: Vec::new(),
        collect: Duration::ZERO,
        overhead_median: Duration::ZERO,
        overhead_mean: Duration::ZERO,
    };
    for (round, &k) in parallel.iter().enumerate() {
        let files = dir.join(format!("warm-{k}"));
        std::fs::create_dir_all(&files).map_err(MeasureError::Scratch)?;
        let cpu = children_cpu();
        let start = Instant::now();
        let mut parent = WarmParent::start(python, args, cwd, env)?;
        let collected = start.elapsed();
        let ids = parent.items().to_vec();
        let finished = run_each(&mut parent, &ids, k, &files)?;
        let wall = start.elapsed();
        // The worker's children count once the worker, which reaped them, is waited for.
        parent.shutdown()?;
        figures
            .warm
            .push((k, wall, children_cpu().saturating_sub(cpu)));
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

/// User and system time of this process's waited-for children (and theirs), zero when
/// `/proc/self/stat` cannot say.
fn children_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    Duration::from_millis(cutime_cstime(&stat) * 1000 / TICKS_PER_SECOND)
}

/// Fields 16 and 17 (`cutime`, `cstime`) of a `/proc/<pid>/stat` line, in ticks; the command
/// name (field 2) may hold spaces, so counting starts after its `)`.
fn cutime_cstime(stat: &str) -> u64 {
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0;
    };
    // `rest` starts at field 3 (the state).
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
    field(16).unwrap_or(0) + field(17).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_times_are_fields_16_and_17() {
        let stat = "42 (a b) S 1 42 42 0 -1 4194560 100 200 0 0 7 8 30 12 20 0 1 0 5 0 0";
        assert_eq!(cutime_cstime(stat), 42);
        assert_eq!(cutime_cstime("garbage"), 0);
    }
}
