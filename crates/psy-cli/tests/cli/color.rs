//! Colour and escape codes: none when stderr is not a terminal or NO_COLOR is set; colour on
//! a terminal (checked on a pseudo-terminal) or with `--color always`.

use crate::support::{root, Out, Project};
use std::io::Read;
use std::process::Stdio;

/// A failing test (painted red when colour is on) and a glob that matches nothing (logged as a
/// warning by the tracing layer, which has its own colour setting).
const SUITE: &str = r#"
[[test]]
name = "pass"
command = ["true"]
[[test]]
name = "fail"
command = ["sh", "-c", "echo oops; exit 1"]
[[discover]]
glob = "nothing/*.sh"
command = ["sh", "{path}"]
"#;

/// Whether `text` has an SGR (colour/style) sequence: ESC [ digits/semicolons m.
fn has_sgr(text: &str) -> bool {
    text.split('\x1b').skip(1).any(|rest| {
        rest.strip_prefix('[').is_some_and(|params| {
            let end = params
                .find(|c: char| !(c.is_ascii_digit() || c == ';'))
                .unwrap_or(params.len());
            params[end..].starts_with('m')
        })
    })
}

#[test]
fn sgr_detector() {
    assert!(has_sgr("a \x1b[1;31mFAIL\x1b[0m b"));
    assert!(has_sgr("\x1b[m"));
    assert!(!has_sgr("\x1b[2K\rplain"));
    assert!(!has_sgr("plain [1m"));
}

#[test]
fn no_escape_codes_when_not_a_terminal() {
    // `psy list` logs the empty-glob warning without needing a container.
    let p = Project::new(SUITE);
    let out = p.psy(&["list"]);
    out.code(0);
    assert!(out.stderr.contains("discovery found no tests"), "{out}");
    assert!(!out.stderr.contains('\x1b'), "{out:?}");

    if !root() {
        return;
    }
    let out = p.psy(&["run"]);
    out.code(1);
    assert!(out.stderr.contains("FAIL"), "{out}");
    assert!(out.stderr.contains("discovery found no tests"), "{out}");
    assert!(!out.stderr.contains('\x1b'), "{out:?}");
    assert!(!out.stdout.contains('\x1b'), "{out:?}");

    let mut cmd = p.command(&["run"]);
    cmd.env("NO_COLOR", "1");
    let out = Out::of(cmd);
    out.code(1);
    assert!(!out.stderr.contains('\x1b'), "{out:?}");

    // The check above can fail: an explicit request colours even a pipe.
    let out = p.psy(&["run", "--color", "always"]);
    out.code(1);
    assert!(has_sgr(&out.stderr), "{out:?}");
}

/// Runs `psy ARGS` with stderr on a fresh pseudo-terminal; returns the exit code and what it
/// wrote there.
fn run_on_pty(p: &Project, args: &[&str], no_color: Option<&str>) -> (i32, String) {
    let (master, slave) = crate::support::openpty();

    let mut cmd = p.command(args);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(slave));
    if let Some(v) = no_color {
        cmd.env("NO_COLOR", v);
    }
    let mut child = cmd.spawn().expect("spawning psy");
    // Our copy of the slave must close, or reading the master never ends.
    drop(cmd);
    // Read while psy runs: a full pty buffer would block it.
    let reader = std::thread::spawn(move || {
        let mut master = master;
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match master.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
                // EIO: every slave fd is closed.
                Err(e) if e.raw_os_error() == Some(libc::EIO) => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => panic!("reading the pty: {e}"),
            }
        }
        String::from_utf8_lossy(&seen).into_owned()
    });
    let status = child.wait().unwrap();
    let text = reader.join().unwrap();
    (status.code().expect("psy exited"), text)
}

#[test]
fn colour_on_a_terminal_unless_no_color() {
    if !root() {
        return;
    }
    let p = Project::new(SUITE);
    let (code, text) = run_on_pty(&p, &["run"], None);
    assert_eq!(code, 1, "{text:?}");
    assert!(text.contains("FAIL"), "{text:?}");
    assert!(has_sgr(&text), "a terminal gets colour: {text:?}");

    let (code, text) = run_on_pty(&p, &["run"], Some("1"));
    assert_eq!(code, 1, "{text:?}");
    assert!(text.contains("FAIL"), "{text:?}");
    assert!(!has_sgr(&text), "NO_COLOR=1 on a terminal: {text:?}");
}
