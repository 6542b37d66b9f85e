//! Where a project's Psyduck state lives: `<project>/.psyduck/{psyduck.db,logs,scratch}`; a fleet
//! agent's has the same layout in its work dir.

use psy_model::{RunId, TestId};
use std::path::{Path, PathBuf};

/// The `.psyduck` directory of one project.
#[derive(Clone, Debug)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    pub fn new(project_dir: &Path) -> Self {
        StateDir {
            root: project_dir.join(".psyduck"),
        }
    }

    /// A state directory that is `root` itself, with the same layout inside: a fleet agent's
    /// work dir, which belongs to no project.
    pub fn at(root: &Path) -> Self {
        StateDir {
            root: root.to_path_buf(),
        }
    }

    /// Every run's log directory is in here (`logs/<run>`), beside the spare files.
    pub fn logs_root(&self) -> PathBuf {
        self.root.join("logs")
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Space kept for psy's own writes when the disk fills up (see `reserve.rs`).
    pub fn reserve(&self) -> PathBuf {
        self.root.join("reserve")
    }

    pub fn database(&self) -> PathBuf {
        self.root.join("psyduck.db")
    }

    pub fn run_logs(&self, run: &RunId) -> PathBuf {
        self.root.join("logs").join(run.as_str())
    }

    /// Empty files that become attempts' logs (see `logs.rs`).
    pub fn log_spares(&self) -> PathBuf {
        self.root.join("logs").join(".spare")
    }

    /// `(stdout, stderr)` log paths of one attempt.
    pub fn attempt_logs(&self, run: &RunId, test: &TestId, attempt: u32) -> (PathBuf, PathBuf) {
        let dir = self.run_logs(run);
        let stem = test.file_stem();
        (
            dir.join(format!("{stem}.{attempt}.out")),
            dir.join(format!("{stem}.{attempt}.err")),
        )
    }

    /// Parent of every scratch directory; `scratch/<pid>-<run>/` belongs to one live psy.
    pub fn scratch_root(&self) -> PathBuf {
        self.root.join("scratch")
    }

    /// Volume images of one run: `volumes/<pid>-<run>/<test>/<name>.img`.
    pub fn run_volumes(&self, run: &RunId) -> PathBuf {
        self.root
            .join("volumes")
            .join(format!("{}-{}", std::process::id(), run.as_str()))
    }

    pub fn volumes_root(&self) -> PathBuf {
        self.root.join("volumes")
    }

    pub fn run_scratch(&self, run: &RunId) -> PathBuf {
        self.scratch_root()
            .join(format!("{}-{}", std::process::id(), run.as_str()))
    }
}

/// An exclusive `flock` on `.psyduck/lock`, held for a whole run: one psy at a time per project
/// (two would double-book the machine and could not tell each other's runs from dead ones).
#[derive(Debug)]
pub struct ProjectLock {
    _file: std::fs::File,
}

impl StateDir {
    /// Takes the project lock without waiting; `Ok(None)` when another live psy holds it.
    pub fn try_lock(&self) -> std::io::Result<Option<ProjectLock>> {
        use std::os::fd::AsRawFd;
        std::fs::create_dir_all(&self.root)?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.root.join("lock"))?;
        // SAFETY: flock on an fd we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let err = std::io::Error::last_os_error();
            return if err.kind() == std::io::ErrorKind::WouldBlock {
                Ok(None)
            } else {
                Err(err)
            };
        }
        Ok(Some(ProjectLock { _file: file }))
    }
}

/// A file a scenario keeps beside its attempt's stdout log (`<stem>.<attempt>.out`):
/// `<stem>.<attempt>.<suffix>`, e.g. `node.n1.out` for node `n1`'s stdout, `scenario.jsonl`
/// for its timeline.
pub fn scenario_file(attempt_stdout: &Path, suffix: &str) -> PathBuf {
    let mut name = attempt_stdout
        .file_stem()
        .map(|s| s.to_os_string())
        .unwrap_or_default();
    name.push(".");
    name.push(suffix);
    attempt_stdout.with_file_name(name)
}
