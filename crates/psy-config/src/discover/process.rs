//! Running a discovery command on the host, within its entry's `discover-timeout`: its stderr
//! lines go to the expansion's progress observer as they come, and a failure keeps the output
//! line by line, as printed.

use super::progress::{self, DiscoverProgress};
use crate::error::ConfigError;
use crate::manifest::DiscoverDef;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::Arc;
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
    let observer = progress::current();
    if let Some(o) = &observer {
        o.started(origin, &shown);
    }
    let stdout = read_in_background(child.stdout.take());
    let stderr = read_lines_in_background(child.stderr.take());
    let finished = finish_by(
        &mut child,
        &stdout,
        &stderr,
        deadline,
        origin,
        observer.as_ref(),
    );
    let done = |ok: bool| {
        if let Some(o) = &observer {
            o.finished(origin, ok);
        }
    };
    let Some((status, stdout, stderr)) = finished else {
        kill_group(&mut child);
        done(false);
        return Err(ConfigError::DiscoverTimeout {
            origin: origin.to_string(),
            command: shown,
            timeout: entry.discover_timeout,
        });
    };
    let code = status.code();
    if !status.success() && !code.is_some_and(|c| ok_codes.contains(&c)) {
        done(false);
        let stderr = String::from_utf8_lossy(&stderr);
        let stdout = String::from_utf8_lossy(&stdout);
        let (stream, text) = if stderr.trim().is_empty() {
            ("stdout", stdout)
        } else {
            ("stderr", stderr)
        };
        return Err(ConfigError::DiscoverFailed {
            origin: origin.to_string(),
            command: shown,
            status: status.to_string(),
            stream,
            output: text.lines().map(str::to_string).collect(),
        });
    }
    done(true);
    Ok(Listed {
        code,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
    })
}

/// What the stderr reader sends: each line as it is printed, then the whole stream.
enum Chunk {
    Line(String),
    End(Vec<u8>),
}

/// Reads stderr to its end on a thread of its own, passing on each line as it completes.
fn read_lines_in_background(pipe: Option<impl Read + Send + 'static>) -> Receiver<Chunk> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut all = Vec::new();
        if let Some(mut pipe) = pipe {
            let mut buf = [0u8; 8192];
            let mut line_start = 0;
            loop {
                match pipe.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => all.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        tracing::warn!("reading a discovery command's stderr: {e}");
                        break;
                    }
                }
                while let Some(nl) = all[line_start..].iter().position(|&b| b == b'\n') {
                    let line = String::from_utf8_lossy(&all[line_start..line_start + nl]);
                    // The receiver is gone only when the command timed out.
                    let _ = tx.send(Chunk::Line(line.trim_end_matches('\r').to_string()));
                    line_start += nl + 1;
                }
            }
            if line_start < all.len() {
                let line = String::from_utf8_lossy(&all[line_start..]).into_owned();
                let _ = tx.send(Chunk::Line(line));
            }
        }
        let _ = tx.send(Chunk::End(all));
    });
    rx
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

/// The command's exit status and output, or `None` if it is not done by `deadline`; stderr
/// lines go to `observer` meanwhile.
fn finish_by(
    child: &mut Child,
    stdout: &Receiver<Vec<u8>>,
    stderr: &Receiver<Chunk>,
    deadline: Instant,
    origin: &str,
    observer: Option<&Arc<dyn DiscoverProgress>>,
) -> Option<(ExitStatus, Vec<u8>, Vec<u8>)> {
    let left = || deadline.saturating_duration_since(Instant::now());
    // The pipes end when the command (and whatever inherited them) exits.
    let err = loop {
        match stderr.recv_timeout(left()) {
            Ok(Chunk::Line(line)) => {
                if let Some(o) = observer {
                    o.line(origin, &line);
                }
            }
            Ok(Chunk::End(all)) => break all,
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return None,
        }
    };
    let out = stdout.recv_timeout(left()).ok()?;
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
