//! `psy fault` against a fake runner: a unix socket served by a thread of the test, which
//! records the one JSON line it receives and answers with a canned reply. No container runs.

use crate::support::{Out, PSY};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread::JoinHandle;

/// A socket in its own directory under the target tmpdir, answering one connection.
struct FakeRunner {
    dir: tempfile::TempDir,
    served: JoinHandle<String>,
}

impl FakeRunner {
    /// Serves one request, answering `reply` (one JSON line); `served` yields the request line.
    fn answering(reply: &'static str) -> FakeRunner {
        let dir = tempfile::Builder::new()
            .prefix("fault-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap();
        let listener = UnixListener::bind(dir.path().join("fault.sock")).unwrap();
        let served = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let mut stream = reader.into_inner();
            stream.write_all(reply.as_bytes()).unwrap();
            stream.write_all(b"\n").unwrap();
            line
        });
        FakeRunner { dir, served }
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("fault.sock")
    }

    /// The line `psy fault` sent.
    fn request(self) -> String {
        self.served.join().expect("the fake runner panicked")
    }
}

/// `psy fault ARGS` with `PSY_FAULT_SOCKET` set to `socket` (or unset).
fn fault(socket: Option<&Path>, args: &[&str]) -> Out {
    let mut cmd = Command::new(PSY);
    cmd.arg("fault").args(args).env_remove("PSY_FAULT_SOCKET");
    if let Some(socket) = socket {
        cmd.env("PSY_FAULT_SOCKET", socket);
    }
    Out::of(cmd)
}

#[test]
fn a_fault_in_effect_exits_0_after_one_json_line() {
    let runner = FakeRunner::answering(r#"{"ok":true,"message":""}"#);
    let out = fault(Some(&runner.socket()), &["partition", "n1", "/", "n2,n3"]);
    out.code(0);
    assert_eq!(out.stderr, "", "{out}");
    assert_eq!(
        runner.request(),
        "{\"fault\":\"partition\",\"a\":[\"n1\"],\"b\":[\"n2\",\"n3\"]}\n"
    );

    let runner = FakeRunner::answering(r#"{"ok":true}"#);
    fault(
        Some(&runner.socket()),
        &["link", "n2", "--delay", "100ms", "--rate", "1mbit"],
    )
    .code(0);
    let sent: serde_json::Value = serde_json::from_str(&runner.request()).unwrap();
    assert_eq!(
        sent,
        serde_json::json!({"fault": "link", "node": "n2", "shape": {"delay": 100, "rate_bps": 1_000_000}})
    );
}

#[test]
fn a_refused_fault_exits_1_with_the_runners_reason() {
    let runner = FakeRunner::answering(r#"{"ok":false,"message":"no node \"n9\" in this test"}"#);
    let out = fault(Some(&runner.socket()), &["kill", "n9"]);
    out.code(1);
    assert_eq!(
        out.stderr, "psy fault: no node \"n9\" in this test\n",
        "{out}"
    );
    assert_eq!(runner.request(), "{\"fault\":\"kill\",\"node\":\"n9\"}\n");
}

#[test]
fn outside_a_driver_or_without_a_runner() {
    let out = fault(None, &["heal"]);
    out.code(2);
    assert!(
        out.stderr.contains("PSY_FAULT_SOCKET is not set")
            && out.stderr.contains("only inside the driver"),
        "{out}"
    );

    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let gone = dir.path().join("gone.sock");
    let out = fault(Some(&gone), &["heal"]);
    out.code(1);
    assert!(
        out.stderr
            .starts_with("psy fault: cannot reach the runner at ")
            && out.stderr.contains(&gone.display().to_string()),
        "{out}"
    );

    // Bad arguments are clap's usage errors, before any socket is looked at.
    let out = fault(None, &["partition", "n1", "n2"]);
    out.code(2);
    assert!(out.stderr.contains("no `/` between the two sides"), "{out}");
    assert!(out.stderr.contains("Usage: psy fault partition"), "{out}");
    fault(None, &["link", "n1", "--loss", "200%"]).code(2);
}
