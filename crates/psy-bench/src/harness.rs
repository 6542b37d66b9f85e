//! What the suite benchmarks share: a scratch project, one timed `psy run` of it (the real
//! binary in a child process, store included) and that run read back from the project's store.

use anyhow::{bail, Context};
use psy_model::{AttemptResult, TestResult};
use psy_runner::layout::StateDir;
use psy_store::{RunRecord, SqliteStore, Store};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A throwaway project holding a generated `psyduck.toml`; removed on drop.
#[derive(Debug)]
pub(crate) struct Project {
    dir: tempfile::TempDir,
    manifest: PathBuf,
}

impl Project {
    /// Creates `psy-bench-XXXXXX/` under `parent`, by default the current directory rather than
    /// `/tmp`: /tmp may be a small tmpfs, and a run's logs and database live in the project.
    pub(crate) fn create(parent: Option<&Path>) -> anyhow::Result<Self> {
        let parent = match parent {
            Some(p) => p.to_path_buf(),
            None => std::env::current_dir().context("reading the current directory")?,
        };
        let dir = tempfile::Builder::new()
            .prefix("psy-bench-")
            .tempdir_in(&parent)
            .with_context(|| format!("creating a scratch project under {}", parent.display()))?;
        let manifest = dir.path().join(psy_config::MANIFEST_FILE);
        Ok(Project { dir, manifest })
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `text` to `rel` (relative to the project), creating parent directories.
    pub(crate) fn write(&self, rel: &str, text: &str) -> anyhow::Result<()> {
        let path = self.path().join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
    }

    pub(crate) fn write_manifest(&self, text: &str) -> anyhow::Result<()> {
        self.write(psy_config::MANIFEST_FILE, text)
    }
}

/// One finished `psy run`, as its process and the store saw it.
#[derive(Debug)]
pub(crate) struct PsyRun {
    /// From spawning `psy` to its exit: manifest loading, store, sandbox setup and the run.
    pub(crate) wall: Duration,
    /// `psy run`'s exit code: 0 all passed, 1 some test did not.
    pub(crate) exit_code: i32,
    pub(crate) record: RunRecord,
    pub(crate) tests: Vec<TestResult>,
    pub(crate) attempts: Vec<AttemptResult>,
}

impl PsyRun {
    /// Duration of the run loop as psy recorded it (first placement to last verdict).
    pub(crate) fn run_loop(&self) -> Duration {
        Duration::from_millis(self.record.summary.duration_ms)
    }
}

/// Runs `psy run -m <manifest> --color never` with the current executable, its human report
/// going to `<project>/<label>.log`. Exit codes 0 and 1 give the recorded run; anything else
/// (nothing ran, or psy failed) is an error quoting the end of that log.
pub(crate) fn run_psy(project: &Project, label: &str) -> anyhow::Result<PsyRun> {
    let exe = std::env::current_exe().context("finding the psy executable")?;
    let log_path = project.path().join(format!("{label}.log"));
    let log =
        File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
    let started = Instant::now();
    let status = Command::new(&exe)
        .args(["run", "--color", "never", "-m"])
        .arg(&project.manifest)
        .current_dir(project.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .status()
        .with_context(|| format!("starting {} run", exe.display()))?;
    let wall = started.elapsed();
    let exit_code = match status.code() {
        Some(code @ (0 | 1)) => code,
        _ => bail!(
            "`psy run` ({label}) failed ({status}); the end of {}:\n{}",
            log_path.display(),
            tail(&log_path, 20)
        ),
    };
    let db = StateDir::new(project.path()).database();
    let store = SqliteStore::open(&db).with_context(|| format!("opening {}", db.display()))?;
    let record = store
        .latest_run()?
        .with_context(|| format!("{} holds no run after `psy run` ({label})", db.display()))?;
    let tests = store.test_results(&record.run_id)?;
    let attempts = store.attempts(&record.run_id)?;
    Ok(PsyRun {
        wall,
        exit_code,
        record,
        tests,
        attempts,
    })
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// `MemAvailable` from `/proc/meminfo`: what can be allocated now without pushing anything out.
pub(crate) fn memory_available() -> anyhow::Result<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").context("reading /proc/meminfo")?;
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .context("no MemAvailable line in /proc/meminfo")
}

/// The median of `values` (the mean of the two middle ones for an even count).
pub(crate) fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Bytes as GiB with two decimals, for tables.
pub(crate) fn gib(bytes: u64) -> String {
    format!("{:.2} GiB", bytes as f64 / f64::from(1u32 << 30))
}

/// Writes `input` (one argument per line) to a spawned `xargs` and closes its stdin.
pub(crate) fn feed_xargs(child: &mut std::process::Child, input: &str) -> anyhow::Result<()> {
    use anyhow::Context;
    use std::io::Write;
    child
        .stdin
        .take()
        .context("xargs has no stdin")?
        .write_all(input.as_bytes())
        .context("feeding xargs")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn reads_memory_available() {
        assert!(memory_available().unwrap() > 0);
    }
}
