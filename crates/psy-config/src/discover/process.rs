//! Running a discovery command on the host, within its entry's `discover-timeout`, and turning
//! its failure into a one-line error.

use crate::error::ConfigError;
use crate::manifest::DiscoverDef;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

/// What a discovery command printed.
#[derive(Debug)]
pub(crate) struct Listed {
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
}

/// Runs `argv` in `dir`, failing unless it exits 0 or with one of `ok_codes`, or when it is
/// still running after `entry.discover_timeout` (then it and all it started are killed).
pub(crate) fn run(
    argv: &[String],
    dir: &Path,
    entry: &DiscoverDef,
    ok_codes: &[i32],
) -> Result<Listed, ConfigError> {
    let origin = entry.origin.as_str();
    let shown = argv.join(" ");
    let (program, args) = argv
        .split_first()
        .expect("argv lists are checked non-empty at load");
    // A relative program with a slash ("./list.sh") means the manifest's directory, whatever
    // the platform's rule for relative programs combined with current_dir.
    let program = if program.contains('/') {
        dir.join(program)
    } else {
        program.into()
    };
    tracing::debug!(command = %shown, dir = %dir.display(), "running discovery command");
    let mut child = Command::new(&program)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // A group of its own, so a timeout kills what it started too (cargo's rustc, say).
        .process_group(0)
        .spawn()
        .map_err(|source| ConfigError::DiscoverSpawn {
            origin: origin.to_string(),
            command: shown.clone(),
            source,
        })?;
    let deadline = Instant::now() + entry.discover_timeout;
    let stdout = read_in_background(child.stdout.take());
    let stderr = read_in_background(child.stderr.take());
    let Some((status, stdout, stderr)) = finish_by(&mut child, &stdout, &stderr, deadline) else {
        kill_group(&mut child);
        return Err(ConfigError::DiscoverTimeout {
            origin: origin.to_string(),
            command: shown,
            timeout: entry.discover_timeout,
        });
    };
    let code = status.code();
    if !status.success() && !code.is_some_and(|c| ok_codes.contains(&c)) {
        let stderr = String::from_utf8_lossy(&stderr);
        let stdout = String::from_utf8_lossy(&stdout);
        let tail = if stderr.trim().is_empty() {
            tail(&stdout)
        } else {
            tail(&stderr)
        };
        return Err(ConfigError::DiscoverFailed {
            origin: origin.to_string(),
            command: shown,
            status: status.to_string(),
            output_tail: tail,
        });
    }
    Ok(Listed {
        code,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
    })
}

/// Reads a pipe to its end on a thread of its own (two pipes read in turn could deadlock).
fn read_in_background(pipe: Option<impl Read + Send + 'static>) -> Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut pipe) = pipe {
            if let Err(e) = pipe.read_to_end(&mut buf) {
                tracing::warn!("reading a discovery command's output: {e}");
            }
        }
        // The receiver is gone only when the command timed out; its output is not wanted then.
        let _ = tx.send(buf);
    });
    rx
}

/// The command's exit status and output, or `None` if it is not done by `deadline`.
fn finish_by(
    child: &mut Child,
    stdout: &Receiver<Vec<u8>>,
    stderr: &Receiver<Vec<u8>>,
    deadline: Instant,
) -> Option<(ExitStatus, Vec<u8>, Vec<u8>)> {
    let left = || deadline.saturating_duration_since(Instant::now());
    // The pipes end when the command (and whatever inherited them) exits.
    let out = stdout.recv_timeout(left()).ok()?;
    let err = stderr.recv_timeout(left()).ok()?;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some((status, out, err)),
            Ok(None) if left().is_zero() => return None,
            Ok(None) => std::thread::sleep(left().min(Duration::from_millis(10))),
            Err(e) => {
                tracing::warn!("polling a discovery command: {e}; waiting for it");
                return child.wait().ok().map(|status| (status, out, err));
            }
        }
    }
}

/// Kills the command's whole process group and reaps the command.
fn kill_group(child: &mut Child) {
    match i32::try_from(child.id()) {
        // SAFETY: kill has no memory effects; the group is the one the command leads.
        Ok(pgid) => unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        },
        Err(_) => {
            let _ = child.kill();
        }
    }
    if let Err(e) = child.wait() {
        tracing::warn!("reaping a timed-out discovery command: {e}");
    }
}

/// The last few non-blank lines on one line, cut to a readable length.
fn tail(output: &str) -> String {
    const LINES: usize = 5;
    const MAX_CHARS: usize = 400;
    let lines: Vec<&str> = output
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if lines.is_empty() {
        return "(no output)".to_string();
    }
    let joined = lines[lines.len().saturating_sub(LINES)..].join(" | ");
    let count = joined.chars().count();
    if count <= MAX_CHARS {
        return joined;
    }
    let cut: String = joined.chars().skip(count - MAX_CHARS).collect();
    format!("...{cut}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_last_lines_on_one_line() {
        assert_eq!(tail("a\n\nb\nc\nd\ne\nf\n"), "b | c | d | e | f");
        assert_eq!(tail("  \n"), "(no output)");
        assert!(tail(&"x".repeat(1000)).starts_with("..."));
    }
}
