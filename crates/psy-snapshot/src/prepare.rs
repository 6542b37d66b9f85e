//! What an agent calls before running a job of a snapshot: the tree materialised, the job's
//! manifest loaded from it, and the manifest's `[prepare]` command run once per snapshot,
//! manifest and agent (work dir), its result cached in a marker file.
//!
//! A lock file (`flock`) per snapshot and manifest makes concurrent callers (threads or agent
//! processes sharing a work dir) wait for one run of the command; its marker, written last,
//! says how it ended. A failed prepare stays failed for that snapshot: every later job of it
//! gets the same [`SnapshotError::PrepareFailed`], naming the log.

use crate::digest::{hex, sha256};
use crate::layout::{rename_into_place, WorkDir};
use crate::materialise::{materialise, BlobSource};
use crate::snapshot::Snapshot;
use crate::SnapshotError;
use psy_config::{Manifest, PrepareConfig};
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A snapshot ready for its jobs.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The materialised tree: the project's root.
    pub root: PathBuf,
    /// The job's manifest, loaded from the tree.
    pub manifest: Manifest,
    /// How `[prepare]` went (`None`: the manifest has none).
    pub prepare: Option<PrepareOutcome>,
}

/// How a `[prepare]` command ended (successfully: a failure is an error).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PrepareOutcome {
    pub command: Vec<String>,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub timed_out: bool,
    pub duration_ms: u64,
    /// Its stdout and stderr, interleaved.
    pub log: PathBuf,
    /// False when the marker of an earlier run was reused.
    #[serde(skip)]
    pub ran_now: bool,
}

impl PrepareOutcome {
    fn succeeded(&self) -> bool {
        self.exit_code == Some(0) && !self.timed_out
    }

    fn how(&self, timeout: Duration) -> String {
        if self.timed_out {
            format!("timed out after {}", psy_config::format_duration(timeout))
        } else if let Some(signal) = self.signal {
            format!("was killed by signal {signal}")
        } else {
            format!("exited with status {}", self.exit_code.unwrap_or(-1))
        }
    }
}

impl Prepared {
    /// Materialises snapshot `digest` in `work` (fetching what is missing from `source`), loads
    /// the manifest at `manifest` (relative to the snapshot's root) and runs its `[prepare]`
    /// once. Errors: a hostile or unknown snapshot, a fetch that failed, a bad manifest, a
    /// failed prepare (with its log).
    pub fn ensure(
        work: &WorkDir,
        digest: &str,
        manifest: &str,
        source: &dyn BlobSource,
    ) -> Result<Prepared, SnapshotError> {
        let tree = work.tree(digest)?;
        let root = if tree.is_dir() {
            tree
        } else {
            let document = source
                .snapshot(digest)
                .map_err(|source| SnapshotError::Fetch {
                    what: "snapshot",
                    digest: digest.to_string(),
                    source,
                })?;
            let snapshot = Snapshot::from_json(&document, Some(digest))?;
            materialise(&snapshot, work, source)?
        };
        if !is_plain_relative(manifest) {
            return Err(SnapshotError::Invalid {
                snapshot: digest.to_string(),
                problem: format!("manifest path {manifest:?} is not a plain relative path"),
            });
        }
        let loaded =
            psy_config::load(&root.join(manifest)).map_err(|source| SnapshotError::Manifest {
                snapshot: digest.to_string(),
                source: Box::new(source),
            })?;
        let prepare = match &loaded.prepare {
            Some(config) => Some(run_once(work, digest, manifest, &loaded.dir, config)?),
            None => None,
        };
        Ok(Prepared {
            root,
            manifest: loaded,
            prepare,
        })
    }
}

fn is_plain_relative(path: &str) -> bool {
    !path.is_empty()
        && !path.starts_with('/')
        && path
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
}

/// Runs `config`'s command in `dir` unless a marker says it already ran for this snapshot and
/// manifest; an error if it failed (now or then).
fn run_once(
    work: &WorkDir,
    digest: &str,
    manifest: &str,
    dir: &Path,
    config: &PrepareConfig,
) -> Result<PrepareOutcome, SnapshotError> {
    let manifest_key = sha256(manifest.as_bytes());
    let key = format!(
        "{}-{}",
        hex(digest).unwrap_or("bad"),
        &hex(&manifest_key).unwrap_or("bad")[..16]
    );
    let lock_path = work.prepare_file(&key, "lock");
    let lock =
        File::create(&lock_path).map_err(SnapshotError::io(&lock_path, "cannot open the lock"))?;
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
        .map_err(|e| SnapshotError::io(&lock_path, "cannot lock it")(e.into()))?;
    let marker = work.prepare_file(&key, "json");
    let outcome = match std::fs::read(&marker) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| SnapshotError::Unreadable {
            snapshot: digest.to_string(),
            reason: format!("{}: {e}", marker.display()),
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let log = work.prepare_file(&key, "log");
            let outcome = run(digest, dir, config, &log)?;
            let temp = work.temp();
            let json = serde_json::to_vec(&outcome).unwrap_or_default();
            std::fs::write(&temp, json)
                .map_err(SnapshotError::io(&temp, "cannot write the marker"))?;
            rename_into_place(&temp, &marker)?;
            outcome
        }
        Err(e) => return Err(SnapshotError::io(&marker, "cannot read the marker")(e)),
    };
    drop(lock);
    if outcome.succeeded() {
        Ok(outcome)
    } else {
        Err(SnapshotError::PrepareFailed {
            snapshot: digest.to_string(),
            command: config.command.join(" "),
            how: outcome.how(config.timeout),
            tail: tail(&outcome.log),
            log: outcome.log,
        })
    }
}

/// Runs the command in its own process group (killed whole at the timeout), output to `log`.
fn run(
    digest: &str,
    dir: &Path,
    config: &PrepareConfig,
    log: &Path,
) -> Result<PrepareOutcome, SnapshotError> {
    let out = File::create(log).map_err(SnapshotError::io(log, "cannot create the prepare log"))?;
    let err = out
        .try_clone()
        .map_err(SnapshotError::io(log, "cannot share the prepare log"))?;
    let started = Instant::now();
    tracing::info!(snapshot = digest, command = ?config.command, "running [prepare]");
    let spawned = Command::new(&config.command[0])
        .args(&config.command[1..])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => {
            // Recorded like a failed run, so every job of the snapshot says why.
            let _ = std::fs::write(log, format!("cannot run `{}`: {e}\n", config.command[0]));
            return Ok(PrepareOutcome {
                command: config.command.clone(),
                exit_code: Some(127),
                signal: None,
                timed_out: false,
                duration_ms: 0,
                log: log.to_path_buf(),
                ran_now: true,
            });
        }
    };
    let deadline = started + config.timeout;
    let mut timed_out = false;
    let status = loop {
        match child
            .try_wait()
            .map_err(SnapshotError::io(dir, "cannot wait for [prepare]"))?
        {
            Some(status) => break status,
            None if Instant::now() >= deadline && !timed_out => {
                timed_out = true;
                if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
                    let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
                }
            }
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    use std::os::unix::process::ExitStatusExt;
    let outcome = PrepareOutcome {
        command: config.command.clone(),
        exit_code: status.code(),
        signal: status.signal(),
        timed_out,
        duration_ms: started.elapsed().as_millis() as u64,
        log: log.to_path_buf(),
        ran_now: true,
    };
    tracing::info!(snapshot = digest, exit_code = ?outcome.exit_code, signal = ?outcome.signal, timed_out, duration_ms = outcome.duration_ms, "[prepare] ended");
    Ok(outcome)
}

/// The last lines of `log`, on one line.
fn tail(log: &Path) -> String {
    let text = std::fs::read(log).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(5);
    let tail: Vec<String> = lines[start..]
        .iter()
        .map(|l| l.chars().take(200).collect())
        .collect();
    if tail.is_empty() {
        "it printed nothing".to_string()
    } else {
        tail.join(" | ")
    }
}
