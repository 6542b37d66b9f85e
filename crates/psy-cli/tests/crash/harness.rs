//! A temp project with a unique tag and marker, and a `psy run` followed through its events.

use crate::probe::{self, Proc};
use psy_model::{RunEvent, RunId};
use psy_store::SqliteStore;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

const PSY: &str = env!("CARGO_BIN_EXE_psy");
/// Set on every psy started here; its containers and tests inherit it (psy only strips `PSY_*`).
const TAG_VAR: &str = "CRASHTEST_TAG";
/// Only stops a stuck psy from hanging CI; correctness never depends on it.
pub(crate) const HANG_GUARD: Duration = Duration::from_secs(180);
/// How long processes sent SIGKILL (directly or by the kernel) get to disappear. The kernel
/// needs microseconds; a survivor of this long is a leak, not a slow machine.
const SETTLE: Duration = Duration::from_secs(30);

/// A project in a temp dir with its unique tag (environment) and marker (argv).
pub(crate) struct Project {
    _tmp: tempfile::TempDir,
    pub(crate) dir: PathBuf,
    manifest: PathBuf,
    logs: PathBuf,
    tag: String,
    /// `1000.<digits>`: a `sleep` argument no other process on the machine has.
    pub(crate) marker: String,
}

impl Project {
    /// `suite(marker)` returns the manifest's text.
    pub(crate) fn new(suite: impl FnOnce(&str) -> String) -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let unique = format!(
            "{}{n:03}{:09}",
            std::process::id(),
            now_ns() % 1_000_000_000
        );
        let tmp = tempfile::Builder::new()
            .prefix("crash-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap();
        let dir = tmp.path().join("project");
        let logs = tmp.path().join("psy-stderr");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::create_dir_all(&logs).unwrap();
        let marker = format!("1000.{unique}");
        let manifest = dir.join("psyduck.toml");
        std::fs::write(&manifest, suite(&marker)).unwrap();
        let tag = format!("crash-{unique}");
        Project {
            _tmp: tmp,
            dir,
            manifest,
            logs,
            tag,
            marker,
        }
    }

    pub(crate) fn psy(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(PSY);
        cmd.args(args).arg("-m").arg(&self.manifest);
        cmd.env(TAG_VAR, &self.tag).env("NO_COLOR", "1");
        cmd.stdin(Stdio::null());
        cmd
    }

    /// `psy run --message-format json`: stdout read as events, stderr kept in a file.
    pub(crate) fn spawn_run(&self, own_process_group: bool) -> Psy {
        let stderr = self.logs.join(format!("run-{}.stderr", now_ns()));
        let mut cmd = self.psy(&["run", "--message-format", "json"]);
        cmd.stdout(Stdio::piped());
        cmd.stderr(std::fs::File::create(&stderr).unwrap());
        if own_process_group {
            cmd.process_group(0);
        }
        let mut child = cmd.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, events) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let event = serde_json::from_str(&line).map_err(|e| format!("{e}: {line}"));
                if tx.send(event).is_err() {
                    return;
                }
            }
        });
        Psy {
            child,
            events,
            seen: Vec::new(),
            stderr,
            reaped: None,
        }
    }

    pub(crate) fn gc(&self) -> Output {
        self.psy(&["gc"]).output().unwrap()
    }

    pub(crate) fn store(&self) -> SqliteStore {
        SqliteStore::open(&self.dir.join(".psyduck/psyduck.db")).unwrap()
    }

    /// Scratch directories of psy process `pid` (`.psyduck/scratch/<pid>-<run>`).
    pub(crate) fn scratch_dirs_of(&self, pid: u32) -> Vec<PathBuf> {
        let prefix = format!("{pid}-");
        probe::entries(&self.dir.join(".psyduck/scratch"))
            .into_iter()
            .filter(|p| probe::file_name(p).starts_with(&prefix))
            .collect()
    }

    /// Every live process carrying our tag or marker, except `except`.
    pub(crate) fn ours(&self, except: &[u32]) -> Vec<Proc> {
        let tag = format!("{TAG_VAR}={}", self.tag);
        probe::procs()
            .into_iter()
            .filter(|p| !except.contains(&p.pid) && p.state != 'Z')
            .filter(|p| p.cmdline.contains(&self.marker) || p.environ.contains(&tag))
            .collect()
    }

    /// Polls until none of our processes is left; returns those still there after [`SETTLE`].
    pub(crate) fn wait_ours_gone(&self) -> Vec<Proc> {
        let deadline = Instant::now() + SETTLE;
        loop {
            let left = self.ours(&[]);
            if left.is_empty() || Instant::now() > deadline {
                return left;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Host mounts that mention this project or any `.psyduck`.
    pub(crate) fn host_mounts(&self) -> BTreeSet<String> {
        probe::host_mounts(&[&self.dir.display().to_string(), ".psyduck"])
    }
}

impl Drop for Project {
    /// After a failed assertion: end what our psy left (by pid) and collect its cgroups.
    fn drop(&mut self) {
        for p in self.ours(&[]) {
            // SAFETY: kill(2) of a pid that carries our unique tag or marker.
            unsafe { libc::kill(p.pid as libc::pid_t, libc::SIGKILL) };
        }
        let _ = self.gc();
    }
}

/// A running `psy run`; dropping it kills and reaps it.
pub(crate) struct Psy {
    child: Child,
    events: Receiver<Result<RunEvent, String>>,
    pub(crate) seen: Vec<RunEvent>,
    stderr: PathBuf,
    reaped: Option<ExitStatus>,
}

impl Psy {
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Reads events until `done(seen)` holds; panics if the stream ends first.
    pub(crate) fn read_until(&mut self, what: &str, done: impl Fn(&[RunEvent]) -> bool) {
        let deadline = Instant::now() + HANG_GUARD;
        while !done(&self.seen) {
            let left = deadline.saturating_duration_since(Instant::now());
            let why = match self.events.recv_timeout(left) {
                Ok(Ok(event)) => {
                    self.seen.push(event);
                    continue;
                }
                Ok(Err(bad)) => panic!("psy printed a line that is not an event: {bad}"),
                Err(RecvTimeoutError::Timeout) => "hang guard",
                Err(RecvTimeoutError::Disconnected) => "psy's stdout ended",
            };
            panic!(
                "{why} before {what}; events: {:#?}\nstderr:\n{}",
                self.seen,
                self.stderr()
            );
        }
    }

    /// Waits for psy to exit but leaves it a zombie: `/proc/<pid>` stays, so no concurrent psy
    /// (another test, another user) takes it for dead and cleans up after it, hiding a leak.
    pub(crate) fn wait_exit(&mut self) {
        let deadline = Instant::now() + HANG_GUARD;
        loop {
            // SAFETY: waitid fills the siginfo we pass; WNOWAIT leaves the child waitable.
            let (r, pid) = unsafe {
                let mut info: libc::siginfo_t = std::mem::zeroed();
                let flags = libc::WEXITED | libc::WNOWAIT | libc::WNOHANG;
                let r = libc::waitid(libc::P_PID, self.pid() as libc::id_t, &mut info, flags);
                (r, info.si_pid())
            };
            assert_eq!(r, 0, "waitid: {}", std::io::Error::last_os_error());
            if pid != 0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "hang guard: psy did not exit\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        while let Ok(event) = self.events.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(event.unwrap());
        }
    }

    /// Reaps psy (after [`Self::wait_exit`]); from now on its pid counts as dead.
    pub(crate) fn reap(&mut self) -> ExitStatus {
        let status = self.child.wait().unwrap();
        self.reaped = Some(status);
        status
    }

    pub(crate) fn signal(&self, sig: libc::c_int, whole_group: bool) {
        let pid = self.pid() as libc::pid_t;
        // SAFETY: signalling our own child, or the process group it leads.
        let r = unsafe {
            if whole_group {
                libc::killpg(pid, sig)
            } else {
                libc::kill(pid, sig)
            }
        };
        assert_eq!(
            r,
            0,
            "signal {sig} to psy {pid}: {}",
            std::io::Error::last_os_error()
        );
    }

    pub(crate) fn run_id(&self) -> RunId {
        self.seen
            .iter()
            .find_map(|e| match e {
                RunEvent::RunStarted { run_id, .. } => Some(run_id.clone()),
                _ => None,
            })
            .expect("a run-started event")
    }
}

impl Drop for Psy {
    fn drop(&mut self) {
        if self.reaped.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn now_ns() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// The link of `/proc/self/ns/net`: the host's network namespace, as the probes print it.
pub(crate) fn host_netns() -> String {
    probe::link(Path::new("/proc/self/ns/net"))
}
