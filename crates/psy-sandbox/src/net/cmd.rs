//! Runs iproute2 (`ip -batch`, `tc -batch`) and `nft -f`, optionally inside another network
//! namespace.
//!
//! Batches keep each step at one process (6-13 ms each here), and `nsenter --net=<path>`
//! reaches unnamed namespaces (pool fds) that `ip netns exec` cannot.

use std::io::Write;
use std::process::{Command, Stdio};

use super::NetError;

/// Where a command runs.
#[derive(Debug, Clone, Copy)]
pub(super) enum Ns<'a> {
    /// The caller's network namespace.
    Host,
    /// The namespace at this path (`/proc/<pid>/fd/<n>`).
    At(&'a str),
}

/// Runs `program -batch -` with `lines` on stdin; `what` names the goal in errors.
pub(super) fn batch(
    ns: Ns<'_>,
    program: &str,
    lines: &[String],
    what: &str,
) -> Result<(), NetError> {
    script(ns, program, &["-batch", "-"], lines, what)
}

/// Runs one `ip` command (`line`, without `ip`) in the caller's namespace.
pub(super) fn ip(line: String, what: &str) -> Result<(), NetError> {
    batch(Ns::Host, "ip", &[line], what)
}

/// Runs `nft -f -` in the caller's namespace with `lines` as one transaction.
pub(super) fn nft(lines: &[String], what: &str) -> Result<(), NetError> {
    script(Ns::Host, "nft", &["-f", "-"], lines, what)
}

/// Runs `program args...` with `lines` on stdin.
fn script(
    ns: Ns<'_>,
    program: &str,
    args: &[&str],
    lines: &[String],
    what: &str,
) -> Result<(), NetError> {
    let mut cmd = match ns {
        Ns::Host => Command::new(program),
        Ns::At(path) => {
            let mut c = Command::new("nsenter");
            c.arg(format!("--net={path}")).arg(program);
            c
        }
    };
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let spawn_err = |source| NetError::Spawn {
        program: program.to_owned(),
        what: what.to_owned(),
        source,
    };
    let mut child = cmd.spawn().map_err(spawn_err)?;
    let script = lines.join("\n") + "\n";
    if let Some(mut stdin) = child.stdin.take() {
        // A write error means the child died early; its status and stderr explain why.
        let _ = stdin.write_all(script.as_bytes());
    }
    let out = child.wait_with_output().map_err(spawn_err)?;
    if out.status.success() {
        return Ok(());
    }
    Err(NetError::Command {
        command: format!("{cmd:?} <<< {script:?}"),
        what: what.to_owned(),
        status: out.status,
        stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
    })
}

/// Writes one `/proc/sys` value.
pub(super) fn sysctl(path: String, value: &'static str) -> Result<(), NetError> {
    std::fs::write(&path, value).map_err(|source| NetError::Sysctl {
        path,
        value,
        source,
    })
}
