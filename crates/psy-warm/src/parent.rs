//! The driver of one warm worker: start it (it collects), ask it to fork a child per test, wait
//! for the children it reports ended, stop it.

use crate::child::{readable_within, ChildExit, Ended, WarmChild};
use crate::error::WarmError;
use crate::freshness::{self, Source};
use crate::protocol::{Ready, Reply, RunRequest};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::AsFd;
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The worker's fixed pytest options: the terminal's progress kept short (it goes to the
/// worker's stderr and to each test's stdout log), and no cache written into the project.
const FIXED_ARGS: [&str; 3] = ["-q", "-p", "no:cacheprovider"];

/// How much of the worker's stderr is kept for error messages.
const STDERR_KEPT: usize = 16 * 1024;

/// A warm pytest worker that has collected its suite and serves run requests.
#[derive(Debug)]
pub struct WarmParent {
    process: Child,
    stdin: Option<ChildStdin>,
    replies: BufReader<ChildStdout>,
    ready: Ready,
    /// Exits reported while the driver waited for something else.
    exits: HashMap<u32, ChildExit>,
    stderr: Arc<Mutex<Vec<u8>>>,
}

impl WarmParent {
    /// Starts `python -c <worker> -q -p no:cacheprovider <args...>` in `cwd` with `env` added to
    /// psy's environment, and waits until pytest has collected, however long that takes.
    pub fn start(
        python: &str,
        args: &[String],
        cwd: &Path,
        env: &[(String, String)],
    ) -> Result<WarmParent, WarmError> {
        Self::start_within(python, args, cwd, env, None)
    }

    /// [`WarmParent::start`], killing the worker when it has not collected within `timeout`
    /// (a discovery entry's `discover-timeout`).
    pub fn start_within(
        python: &str,
        args: &[String],
        cwd: &Path,
        env: &[(String, String)],
        timeout: Option<Duration>,
    ) -> Result<WarmParent, WarmError> {
        Self::spawn(python, args, cwd, env, timeout, true)
    }

    /// [`WarmParent::start_within`] with exactly `env` (nothing of psy's own environment): the
    /// interpreter whose memory sandboxed tests inherit.
    pub fn start_exactly(
        python: &str,
        args: &[String],
        cwd: &Path,
        env: &[(String, String)],
        timeout: Option<Duration>,
    ) -> Result<WarmParent, WarmError> {
        Self::spawn(python, args, cwd, env, timeout, false)
    }

    fn spawn(
        python: &str,
        args: &[String],
        cwd: &Path,
        env: &[(String, String)],
        timeout: Option<Duration>,
        inherit_env: bool,
    ) -> Result<WarmParent, WarmError> {
        let mut command = Command::new(python);
        if !inherit_env {
            command.env_clear();
        }
        let mut process = command
            .arg("-c")
            .arg(crate::WORKER_SOURCE)
            .args(FIXED_ARGS)
            .args(args)
            .current_dir(cwd)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| WarmError::Spawn {
                python: python.to_string(),
                cwd: cwd.to_path_buf(),
                source,
            })?;
        let stderr = Arc::new(Mutex::new(Vec::new()));
        if let Some(pipe) = process.stderr.take() {
            keep_tail(pipe, Arc::clone(&stderr));
        }
        let (Some(stdin), Some(stdout)) = (process.stdin.take(), process.stdout.take()) else {
            unreachable!("both pipes were asked for");
        };
        let mut replies = BufReader::new(stdout);
        let pid = process.id();
        let in_time = readable_within(replies.get_ref().as_fd(), timeout)
            .map_err(|source| WarmError::Io { pid, source })?;
        if !in_time {
            // Killing an already ended worker fails harmlessly; the wait reaps it either way.
            let _ = process.kill();
            let _ = process.wait();
            return Err(WarmError::CollectTimeout {
                cwd: cwd.to_path_buf(),
                timeout: timeout.unwrap_or_default(),
                stderr: text(&stderr),
            });
        }
        let first = read_reply(&mut replies, pid);
        let ready = match first {
            Ok(Some(Reply::Ready { ready })) => ready,
            other => {
                let reason = match other {
                    Ok(Some(Reply::Error { error })) => error,
                    Ok(None) => "it exited before collecting".to_string(),
                    Ok(Some(reply)) => format!("it answered {reply:?} before collecting"),
                    Err(e) => e.to_string(),
                };
                drop(stdin);
                let _ = process.wait();
                return Err(WarmError::Collect {
                    cwd: cwd.to_path_buf(),
                    reason,
                    stderr: text(&stderr),
                });
            }
        };
        tracing::debug!(
            pid = ready.pid,
            items = ready.items.len(),
            python = %ready.python,
            pytest = %ready.pytest,
            "warm worker collected"
        );
        if ready.threads.len() > 1 {
            tracing::warn!(
                "the warm pytest worker in {} has {} threads after collecting ({}): forking it is \
                 unsafe for code that takes their locks",
                cwd.display(),
                ready.threads.len(),
                ready.threads.join(", ")
            );
        }
        Ok(WarmParent {
            process,
            stdin: Some(stdin),
            replies,
            ready,
            exits: HashMap::new(),
            stderr,
        })
    }

    /// Whether the worker process is still there (it may have died: a crash, a kill).
    pub fn is_alive(&mut self) -> bool {
        matches!(self.process.try_wait(), Ok(None))
    }

    /// The worker's pid.
    pub fn pid(&self) -> u32 {
        self.ready.pid
    }

    /// The collected node ids, in pytest's order.
    pub fn items(&self) -> &[String] {
        &self.ready.items
    }

    /// The project's source files the worker imported (under pytest's rootdir).
    pub fn sources(&self) -> &[Source] {
        &self.ready.sources
    }

    /// The threads alive in the worker after collection (forked children inherit none of them).
    pub fn threads(&self) -> &[String] {
        &self.ready.threads
    }

    /// The imported sources that changed since: a driver restarts the worker when any did.
    pub fn changed_sources(&self) -> Vec<&Path> {
        freshness::changed(&self.ready.sources)
    }

    /// Forks a child that runs `request.run`; returns once the child exists.
    pub fn run(&mut self, request: &RunRequest) -> Result<WarmChild, WarmError> {
        let line = serde_json::to_string(request).map_err(|e| self.io(e.into()))?;
        self.send(&line)?;
        loop {
            match self.next(&format!("starting `{}`", request.run))? {
                Reply::Started { started, pid } => {
                    return WarmChild::open(pid, started, request.result.clone()).map_err(
                        |source| WarmError::Pidfd {
                            pid,
                            nodeid: request.run.clone(),
                            source,
                        },
                    );
                }
                Reply::Refused { refused, reason } => {
                    return Err(WarmError::Refused {
                        pid: self.pid(),
                        nodeid: refused.unwrap_or_else(|| request.run.clone()),
                        reason,
                    })
                }
                reply => self.note(reply),
            }
        }
    }

    /// Waits until `child` has ended (a killed one too) and lets the worker reap it.
    pub fn wait(&mut self, child: WarmChild) -> Result<Ended, WarmError> {
        let pid = child.pid;
        let exit = loop {
            if let Some(exit) = self.exits.remove(&pid) {
                break exit;
            }
            let doing = format!("running `{}` (pid {pid})", child.nodeid);
            let reply = self.next(&doing)?;
            self.note(reply);
        };
        // The pidfd is closed before the worker frees the pid.
        let ended = child.into_ended(exit);
        self.send(&format!(r#"{{"reap": {pid}}}"#))?;
        Ok(ended)
    }

    /// Waits until the first of `running` ends; removes it from `running`.
    pub fn wait_any(&mut self, running: &mut Vec<WarmChild>) -> Result<Ended, WarmError> {
        loop {
            if let Some(at) = running.iter().position(|c| self.exits.contains_key(&c.pid)) {
                let child = running.swap_remove(at);
                return self.wait(child);
            }
            let reply = self.next("running tests")?;
            self.note(reply);
        }
    }

    /// Asks the worker to stop (it kills and reaps any child still running) and waits for it.
    pub fn shutdown(mut self) -> Result<(), WarmError> {
        self.stop()
    }

    fn stop(&mut self) -> Result<(), WarmError> {
        if let Some(mut stdin) = self.stdin.take() {
            // A worker already gone has nothing left to stop.
            let _ = stdin.write_all(b"{\"quit\": true}\n");
        }
        self.process
            .wait()
            .map(drop)
            .map_err(|source| WarmError::Io {
                pid: self.ready.pid,
                source,
            })
    }

    /// Files away a child's exit that arrived while waiting for something else.
    fn note(&mut self, reply: Reply) {
        match reply {
            Reply::Exited {
                exited,
                code,
                signal,
            } => {
                let exit = match (code, signal) {
                    (_, Some(signal)) => ChildExit::Signal(signal),
                    (code, None) => ChildExit::Code(code.unwrap_or(-1)),
                };
                self.exits.insert(exited, exit);
            }
            other => tracing::warn!(
                "the warm pytest worker (pid {}) said {other:?} out of turn",
                self.ready.pid
            ),
        }
    }

    fn send(&mut self, line: &str) -> Result<(), WarmError> {
        let pid = self.ready.pid;
        let Some(stdin) = self.stdin.as_mut() else {
            return Err(self.gone("it was stopped"));
        };
        stdin
            .write_all(line.as_bytes())
            .and_then(|()| stdin.write_all(b"\n"))
            .and_then(|()| stdin.flush())
            .map_err(|source| WarmError::Io { pid, source })
    }

    fn next(&mut self, doing: &str) -> Result<Reply, WarmError> {
        match read_reply(&mut self.replies, self.ready.pid)? {
            Some(reply) => Ok(reply),
            None => Err(self.gone(doing)),
        }
    }

    fn gone(&self, doing: &str) -> WarmError {
        WarmError::Gone {
            pid: self.ready.pid,
            doing: doing.to_string(),
            stderr: text(&self.stderr),
        }
    }

    fn io(&self, source: std::io::Error) -> WarmError {
        WarmError::Io {
            pid: self.ready.pid,
            source,
        }
    }
}

impl Drop for WarmParent {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            tracing::warn!("{e}");
        }
    }
}

/// The next reply, `None` at the end of the worker's output.
fn read_reply(replies: &mut impl BufRead, pid: u32) -> Result<Option<Reply>, WarmError> {
    let mut line = String::new();
    loop {
        line.clear();
        let read = replies
            .read_line(&mut line)
            .map_err(|source| WarmError::Io { pid, source })?;
        if read == 0 {
            return Ok(None);
        }
        if line.trim().is_empty() {
            continue;
        }
        return serde_json::from_str(&line)
            .map(Some)
            .map_err(|source| WarmError::Protocol {
                pid,
                line: line.trim_end().to_string(),
                source,
            });
    }
}

/// Keeps the last [`STDERR_KEPT`] bytes of the worker's stderr. The thread is never joined: a
/// daemon a test started may hold the pipe open long after the worker ended.
fn keep_tail(mut pipe: impl Read + Send + 'static, kept: Arc<Mutex<Vec<u8>>>) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            let Ok(mut kept) = kept.lock() else { break };
            kept.extend_from_slice(&buf[..n]);
            let excess = kept.len().saturating_sub(STDERR_KEPT);
            kept.drain(..excess);
        }
    });
}

fn text(kept: &Mutex<Vec<u8>>) -> String {
    kept.lock()
        .map(|k| String::from_utf8_lossy(&k).into_owned())
        .unwrap_or_default()
}
