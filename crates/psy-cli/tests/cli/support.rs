//! What every test needs: a throwaway project, a way to run `psy` in it, and readers for its
//! JSON event stream and results database.

use serde_json::Value;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

pub(crate) const PSY: &str = env!("CARGO_BIN_EXE_psy");

/// Containers need root: tests that run any start with `if !support::root() { return; }`.
pub(crate) fn root() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("skipped: needs root");
    }
    root
}

/// A project in its own directory under the target tmpdir (not /tmp: containers mount a
/// private /tmp). Removed when the test passes, kept (and its path printed) when it fails.
#[derive(Debug)]
pub(crate) struct Project {
    dir: Option<tempfile::TempDir>,
}

impl Drop for Project {
    fn drop(&mut self) {
        if std::thread::panicking() {
            if let Some(dir) = self.dir.take() {
                eprintln!("kept the failed test's project: {}", dir.keep().display());
            }
        }
    }
}

impl Project {
    /// A project whose `psyduck.toml` is `manifest`.
    pub(crate) fn new(manifest: &str) -> Project {
        let project = Project::empty();
        project.file("psyduck.toml", manifest);
        project
    }

    /// A project without a manifest.
    pub(crate) fn empty() -> Project {
        let dir = tempfile::Builder::new()
            .prefix("psy-cli-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .expect("creating a project directory under CARGO_TARGET_TMPDIR");
        Project { dir: Some(dir) }
    }

    /// A project in `dir` (which the caller creates and removes).
    pub(crate) fn in_dir(dir: &Path) -> Project {
        let dir = tempfile::Builder::new()
            .prefix("psy-cli-")
            .tempdir_in(dir)
            .expect("creating a project directory");
        Project { dir: Some(dir) }
    }

    pub(crate) fn dir(&self) -> &Path {
        self.dir.as_ref().expect("only taken on drop").path()
    }

    /// Writes `text` to `rel` (creating directories), replacing what was there.
    pub(crate) fn file(&self, rel: &str, text: &str) -> &Project {
        let path = self.dir().join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        self
    }

    /// Makes `rel` executable (a script the manifest runs).
    pub(crate) fn executable(&self, rel: &str) -> &Project {
        use std::os::unix::fs::PermissionsExt;
        let path = self.dir().join(rel);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
        self
    }

    /// `psy ARGS` in the project's directory, with the caller's colour and log settings removed
    /// so the output does not depend on who runs the tests.
    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(PSY);
        cmd.args(args)
            .current_dir(self.dir())
            .env_remove("NO_COLOR")
            .env_remove("CLICOLOR_FORCE")
            .env_remove("PSY_LOG")
            // The machine's calibrated capacity (/etc/psyduck/host.toml) must not change tests.
            .env("PSY_HOST_FILE", self.dir().join("no-host-file.toml"));
        cmd
    }

    pub(crate) fn psy(&self, args: &[&str]) -> Out {
        Out::of(self.command(args))
    }

    /// `psy run --message-format json ARGS`, with the stream parsed (every line must be JSON).
    pub(crate) fn run_json(&self, args: &[&str]) -> (Out, Events) {
        let mut all = vec!["run", "--message-format", "json"];
        all.extend_from_slice(args);
        let out = self.psy(&all);
        let events = Events::parse(&out);
        (out, events)
    }

    pub(crate) fn database(&self) -> PathBuf {
        self.dir().join(".psyduck/psyduck.db")
    }

    /// `(runs, attempts)` rows in the results database; `(0, 0)` when it does not exist.
    pub(crate) fn db_rows(&self) -> (i64, i64) {
        if !self.database().exists() {
            return (0, 0);
        }
        let conn = rusqlite::Connection::open(self.database()).unwrap();
        let count = |table: &str| -> i64 {
            conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
                .unwrap()
        };
        (count("runs"), count("attempts"))
    }
}

/// How one `psy` process ended and what it printed.
#[derive(Debug)]
pub(crate) struct Out {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
    command: String,
}

impl Out {
    pub(crate) fn of(mut cmd: Command) -> Out {
        let command = format!("{cmd:?}");
        let output = cmd
            .output()
            .unwrap_or_else(|e| panic!("spawning {command}: {e}"));
        Out {
            code: output
                .status
                .code()
                .unwrap_or_else(|| panic!("{command} was killed: {:?}", output.status)),
            stdout: String::from_utf8(output.stdout).expect("stdout is UTF-8"),
            stderr: String::from_utf8(output.stderr).expect("stderr is UTF-8"),
            command,
        }
    }

    /// Asserts the exit code, showing everything psy printed if it differs.
    #[track_caller]
    pub(crate) fn code(&self, expected: i32) -> &Out {
        assert_eq!(self.code, expected, "unexpected exit code\n{self}");
        self
    }
}

impl fmt::Display for Out {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "$ {}\nexit code {}\n--- stdout\n{}--- stderr\n{}---",
            self.command, self.code, self.stdout, self.stderr
        )
    }
}

/// A parsed `--message-format json` stream.
#[derive(Debug)]
pub(crate) struct Events(pub(crate) Vec<Value>);

impl Events {
    /// Every stdout line must be one JSON object with a `type`.
    #[track_caller]
    pub(crate) fn parse(out: &Out) -> Events {
        let events = out
            .stdout
            .lines()
            .map(|line| {
                let v: Value = serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line:?}\n{out}"));
                assert!(v["type"].is_string(), "no \"type\" in {line}");
                v
            })
            .collect();
        Events(events)
    }

    pub(crate) fn of_type<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.0.iter().filter(move |e| e["type"] == kind)
    }

    pub(crate) fn run_id(&self) -> &str {
        self.of_type("run-started").next().expect("no run-started")["run_id"]
            .as_str()
            .unwrap()
    }

    pub(crate) fn summary(&self) -> &Value {
        &self
            .of_type("run-finished")
            .next()
            .expect("no run-finished")["summary"]
    }

    /// The `test-finished` result of `test_id`.
    #[track_caller]
    pub(crate) fn verdict(&self, test_id: &str) -> &Value {
        let mut found = self
            .of_type("test-finished")
            .map(|e| &e["result"])
            .filter(|r| r["test_id"] == test_id);
        let verdict = found
            .next()
            .unwrap_or_else(|| panic!("no test-finished for {test_id:?} in {:#?}", self.0));
        assert!(found.next().is_none(), "two test-finished for {test_id}");
        verdict
    }

    pub(crate) fn status(&self, test_id: &str) -> &str {
        self.verdict(test_id)["status"].as_str().unwrap()
    }

    /// The `attempt-finished` results of `test_id`, in stream order.
    pub(crate) fn attempts(&self, test_id: &str) -> Vec<&Value> {
        self.of_type("attempt-finished")
            .map(|e| &e["result"])
            .filter(|r| r["test_id"] == test_id)
            .collect()
    }

    /// Ids of the tests that finished, sorted.
    pub(crate) fn test_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .of_type("test-finished")
            .map(|e| e["result"]["test_id"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    }

    /// The `key=value` lines a test printed on stdout in one attempt.
    pub(crate) fn printed(&self, test_id: &str, attempt: u64) -> Vec<(String, String)> {
        let result = self
            .attempts(test_id)
            .into_iter()
            .find(|a| a["attempt"] == attempt)
            .unwrap_or_else(|| panic!("no attempt {attempt} of {test_id}"));
        let path = result["stdout_path"].as_str().unwrap();
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
        text.lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }
}

/// The value of `key` in `printed` output.
#[track_caller]
pub(crate) fn value<'a>(printed: &'a [(String, String)], key: &str) -> &'a str {
    printed
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("{key} not printed; got {printed:?}"))
}

/// A fresh pseudo-terminal: `(master, slave)`.
pub(crate) fn openpty() -> (std::fs::File, std::os::fd::OwnedFd) {
    use std::os::fd::FromRawFd;
    let (mut master, mut slave) = (-1, -1);
    // SAFETY: openpty writes two fds into the ints we pass; the name/termios/winsize are optional.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both fds were just opened and are owned by nothing else.
    unsafe {
        (
            std::fs::File::from_raw_fd(master),
            std::os::fd::OwnedFd::from_raw_fd(slave),
        )
    }
}
