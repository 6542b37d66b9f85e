//! Ctrl-C: a real SIGINT to a real `psy run` exits 130 with one clean "interrupted" line, kills
//! the running test and keeps what finished, the run marked interrupted in the store.

use crate::support::{root, Project};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Stdio};

fn manifest() -> String {
    crate::run_control::quick_and_slow("quick", "true")
}

/// Starts `psy run --message-format json` and reads events until `quick` finished and `slow`
/// started; returns the child, the events read and the rest of its stdout to read.
fn start_until_slow_runs(p: &Project) -> (Child, Vec<Value>, BufReader<std::process::ChildStdout>) {
    let mut child = p
        .command(&["run", "--message-format", "json", "-j", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning psy");
    let mut lines = BufReader::new(child.stdout.take().unwrap());
    let mut events = Vec::new();
    let (mut quick_done, mut slow_started) = (false, false);
    while !(quick_done && slow_started) {
        let mut line = String::new();
        let n = lines.read_line(&mut line).unwrap();
        assert!(n > 0, "psy ended before slow started: {events:#?}");
        let event: Value = serde_json::from_str(&line).unwrap();
        quick_done |= event["type"] == "test-finished" && event["result"]["test_id"] == "quick";
        slow_started |= event["type"] == "attempt-started" && event["test_id"] == "slow";
        events.push(event);
    }
    (child, events, lines)
}

fn sigint(child: &Child) {
    // SAFETY: kill has no memory-safety preconditions; the pid is our live child's.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
}

#[test]
fn ctrl_c_exits_130_and_keeps_the_finished_results() {
    if !root() {
        return;
    }
    let p = Project::new(&manifest());
    let (child, _, mut rest) = start_until_slow_runs(&p);
    sigint(&child);
    let mut stdout = String::new();
    rest.read_to_string(&mut stdout).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    let shown = format!("--- stdout\n{stdout}--- stderr\n{stderr}");
    assert_eq!(out.status.code(), Some(130), "{shown}");
    let interrupted: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("interrupted: 1 of 2 tests finished"))
        .collect();
    assert_eq!(interrupted.len(), 1, "{shown}");
    assert!(
        !stderr.contains("WARN") && !stderr.contains("psy_runner"),
        "raw log line\n{shown}"
    );

    let conn = rusqlite::Connection::open(p.database()).unwrap();
    let (state, not_run): (String, i64) = conn
        .query_row("SELECT state, not_run FROM runs", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!((state.as_str(), not_run), ("interrupted", 1), "{shown}");
    let tests: Vec<String> = conn
        .prepare("SELECT test_id || '=' || status FROM tests ORDER BY test_id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        tests,
        ["quick=pass"],
        "the killed test is not recorded\n{shown}"
    );
}

#[test]
fn a_second_ctrl_c_also_exits_130_and_the_next_psy_tidies_up() {
    if !root() {
        return;
    }
    let p = Project::new(&manifest());
    let (child, _, mut rest) = start_until_slow_runs(&p);
    sigint(&child);
    sigint(&child);
    let mut stdout = String::new();
    rest.read_to_string(&mut stdout).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{out:?}");
    // Whichever signal ended it, the next psy finds no run left "running".
    p.psy(&["gc"]).code(0);
    let conn = rusqlite::Connection::open(p.database()).unwrap();
    let state: String = conn
        .query_row("SELECT state FROM runs", [], |r| r.get(0))
        .unwrap();
    assert!(state == "interrupted" || state == "aborted", "{state}");
}

/// Ctrl-C typed on a terminal: psy runs on a pseudo-terminal of its own (its controlling
/// terminal, psy in the foreground), the test writes the terminal's interrupt character, and the
/// kernel's line discipline sends SIGINT to psy's process group, as a shell would.
#[test]
fn ctrl_c_typed_on_a_terminal() {
    use std::os::unix::process::CommandExt;
    if !root() {
        return;
    }
    let p = Project::new(&manifest());
    let (master, slave) = crate::support::openpty();
    let mut cmd = p.command(&["run", "--message-format", "json", "-j", "2"]);
    cmd.stdin(slave.try_clone().unwrap())
        .stderr(slave.try_clone().unwrap())
        .stdout(Stdio::piped());
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("spawning psy on a pty");
    // Only psy may hold the terminal now, so reading it ends when psy is gone.
    drop(cmd);
    drop(slave);
    let mut terminal = master;
    let mut screen_reader = terminal.try_clone().unwrap();
    let screen = std::thread::spawn(move || {
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        // EIO once psy, the last holder of the terminal, is gone.
        while let Ok(n) = screen_reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&all).into_owned()
    });
    let mut lines = BufReader::new(child.stdout.take().unwrap());
    let mut slow_started = false;
    while !slow_started {
        let mut line = String::new();
        assert!(
            lines.read_line(&mut line).unwrap() > 0,
            "psy ended before slow started"
        );
        let event: Value = serde_json::from_str(&line).unwrap();
        slow_started = event["type"] == "attempt-started" && event["test_id"] == "slow";
    }
    // ^C, the default interrupt character (VINTR).
    std::io::Write::write_all(&mut terminal, b"\x03").unwrap();
    let mut rest = String::new();
    lines.read_to_string(&mut rest).unwrap();
    let status = child.wait().unwrap();
    drop(terminal);
    let screen = screen.join().unwrap();
    assert_eq!(status.code(), Some(130), "{screen}");
    assert!(screen.contains("interrupted: "), "{screen}");
    assert!(
        !screen.contains("WARN"),
        "raw log line on the terminal\n{screen}"
    );
}
