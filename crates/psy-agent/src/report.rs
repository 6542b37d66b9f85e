//! The reporter thread: each result goes to the server under its lease's fencing token, in
//! the order attempts ended, after its log files were uploaded as blobs ([`crate::logs`]; the
//! report names them and carries the end of the output inline, 64 KiB at most then). Results that are waiting together (attempts that ended while the
//! previous report was on its way) go in one request ([`crate::batch`]); a lone result is sent
//! at once, alone. A server or database that blinked is waited out (the lease keeps being
//! heartbeated meanwhile); a refusal (409: the lease moved to another agent, or its run was
//! cancelled) drops the result for good, since the attempt that counts is another one.

use crate::source::{LeaseRef, Shared};
use crate::{batch, logs};
use psy_fleet::retry::{self, Backoff};
use psy_fleet::wire::{Recorded, ReleaseRequest, Released, ResultReport};
use psy_model::{AttemptResult, AttemptStatus};
use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::Arc;

/// At most this much of an attempt's output goes in its report: the end of it.
pub const OUTPUT_CAP: usize = 1 << 20;
/// What a report answered "too large" is cut to before it is sent again.
pub(crate) const SMALL_OUTPUT_CAP: usize = 64 << 10;

/// What the reporter sends the server.
#[derive(Debug)]
pub(crate) enum Outgoing {
    /// A result.
    Result(Pending),
    /// A lease whose attempt this agent will not run or finish, given back so that its job is
    /// queued again at once.
    Release(LeaseRef),
}

/// A result waiting to be reported.
#[derive(Debug)]
pub(crate) struct Pending {
    pub(crate) lease: LeaseRef,
    status: AttemptStatus,
    duration_ms: u64,
    exit_code: Option<i32>,
    signal: Option<i32>,
    /// The attempt's log files (removed once the result is answered), or none.
    logs: Option<(PathBuf, PathBuf)>,
    /// Why psy could not run it, or more about how it ended.
    message: Option<String>,
    /// The log files uploaded as blobs: their digests by name.
    uploaded: BTreeMap<String, String>,
}

impl Pending {
    /// The result of an attempt the engine ran.
    pub(crate) fn attempt(lease: LeaseRef, result: &AttemptResult) -> Pending {
        Pending {
            lease,
            status: result.status,
            duration_ms: result.duration_ms,
            exit_code: result.exit.code,
            signal: result.exit.signal,
            logs: Some((result.stdout_path.clone(), result.stderr_path.clone())),
            message: result.message.clone(),
            uploaded: BTreeMap::new(),
        }
    }

    /// An error result for a job this agent cannot run (`why` names the test and the agent).
    pub(crate) fn error(lease: LeaseRef, why: String) -> Pending {
        Pending {
            lease,
            status: AttemptStatus::Error,
            duration_ms: 0,
            exit_code: None,
            signal: None,
            logs: None,
            message: Some(why),
            uploaded: BTreeMap::new(),
        }
    }

    pub(crate) fn report(&self, agent: &str, cap: usize) -> ResultReport {
        // The whole logs are blobs: the report carries only their end.
        let cap = if self.uploaded.is_empty() {
            cap
        } else {
            cap.min(SMALL_OUTPUT_CAP)
        };
        let output = output(
            self.logs
                .as_ref()
                .map(|(out, err)| (out.as_path(), err.as_path())),
            self.message.as_deref(),
            cap,
        );
        ResultReport {
            fencing_token: self.lease.fencing_token,
            status: self.status,
            duration_ms: i64::try_from(self.duration_ms).unwrap_or(i64::MAX),
            exit_code: self.exit_code,
            signal: self.signal,
            output: (!output.is_empty()).then_some(output),
            output_ref: None,
            logs: self.uploaded.clone(),
            agent: Some(agent.to_owned()),
        }
    }
}

/// Reports what arrives on `queue` until every sender is gone and the queue is empty. Retries
/// of a transient failure end when `abandon` is set (the agent has stopped and its grace ran
/// out): the lease then expires and the test runs again elsewhere.
pub(crate) fn run(shared: Arc<Shared>, queue: Receiver<Outgoing>, abandon: Arc<AtomicBool>) {
    let mut backoff = retry::default_backoff();
    let mut batches = batch::Batches::default();
    let mut uploads = logs::Uploads::default();
    while let Ok(first) = queue.recv() {
        let mut waiting = Vec::new();
        for outgoing in std::iter::once(first).chain(queue.try_iter().take(batch::MAX_BATCH - 1)) {
            match outgoing {
                Outgoing::Result(mut pending) => {
                    if let Some((out, _)) = &pending.logs {
                        pending.uploaded =
                            uploads.upload(&shared, out, &pending.lease, &mut backoff, &abandon);
                    }
                    waiting.push(pending);
                }
                Outgoing::Release(lease) => {
                    release(&shared, &lease, &mut backoff, &abandon);
                    shared.let_go(lease.lease_id);
                }
            }
        }
        let alone = batches.send(&shared, &waiting, &mut backoff, &abandon);
        for pending in &alone {
            send(&shared, pending, &mut backoff, &abandon);
        }
        for pending in waiting {
            shared.let_go(pending.lease.lease_id);
            if let Some((out, _)) = &pending.logs {
                logs::remove(out);
            }
        }
    }
}

/// Gives `lease` back, through `POST /api/leases/{id}/release`; if the server cannot be told
/// before the agent's grace runs out, the lease expires instead.
fn release(shared: &Shared, lease: &LeaseRef, backoff: &mut Backoff, abandon: &AtomicBool) {
    let path = format!("/api/leases/{}/release", lease.lease_id);
    let request = ReleaseRequest {
        fencing_token: lease.fencing_token,
        agent: Some(shared.agent.clone()),
    };
    let what = format!("releasing {lease}");
    let stop = || abandon.load(Ordering::SeqCst);
    match retry::retry(&what, backoff, &stop, || {
        shared.client.post::<_, Released>(&path, &request)
    }) {
        Ok(_) => tracing::info!("{lease} released: its job is queued again"),
        Err(e) => tracing::warn!("{what}: {e}; its lease is left to expire"),
    }
}

/// Reports `pending` alone, through `POST /api/leases/{id}/result`.
fn send(shared: &Shared, pending: &Pending, backoff: &mut Backoff, abandon: &AtomicBool) {
    let lease = &pending.lease;
    let path = format!("/api/leases/{}/result", lease.lease_id);
    let what = format!("reporting the result of {lease}");
    let mut cap = OUTPUT_CAP;
    loop {
        let report = pending.report(&shared.agent, cap);
        let stop = || abandon.load(Ordering::SeqCst);
        let answer = retry::retry(&what, backoff, &stop, || {
            shared.client.post::<_, Recorded>(&path, &report)
        });
        match answer {
            Ok(answer) => {
                recorded(lease, &report, &answer);
                return;
            }
            Err(e) if e.status() == Some(413) && cap > SMALL_OUTPUT_CAP => {
                tracing::warn!("{what}: {e}; sending it again with less output");
                cap = SMALL_OUTPUT_CAP;
            }
            Err(e) if e.is_transient() => {
                tracing::warn!(
                    "{what}: {e}; giving up as the agent stops: the lease will expire and the \
                     test run again"
                );
                return;
            }
            Err(e) => {
                refused_for_good(shared, lease, e.status(), &e);
                return;
            }
        }
    }
}

/// Logs a result the server recorded (or had recorded already).
pub(crate) fn recorded(lease: &LeaseRef, report: &ResultReport, answer: &Recorded) {
    tracing::info!(
        status = ?report.status,
        duration_ms = report.duration_ms,
        job_state = %answer.job_state,
        duplicate = answer.duplicate,
        "{lease}: result recorded"
    );
}

/// A result the server refused with `status` (not one to try again): the agent stops if its
/// token was refused, else the result is dropped.
pub(crate) fn refused_for_good(
    shared: &Shared,
    lease: &LeaseRef,
    status: Option<u16>,
    why: &dyn std::fmt::Display,
) {
    if matches!(status, Some(401 | 403)) {
        shared.fatal(refused(why));
    } else {
        tracing::warn!(
            "{lease}: result refused, dropped (another attempt is the one that counts): {why}"
        );
    }
}

/// The message an agent exits with when the server refuses its token.
pub(crate) fn refused(e: &dyn std::fmt::Display) -> String {
    format!("the server refused this agent's token: {e}")
}

/// The attempt's output as one text: the end of its stdout, then of its stderr under a line
/// `--- stderr ---`, then psy's message under `--- psy ---`, at most `cap` bytes in all (each
/// stream's head is cut first, and the cut is said). NUL bytes, which PostgreSQL's text cannot
/// hold, become U+FFFD.
pub(crate) fn output(logs: Option<(&Path, &Path)>, message: Option<&str>, cap: usize) -> String {
    let message = message.map(|m| format!("--- psy ---\n{m}\n"));
    let budget = cap.saturating_sub(message.as_ref().map_or(0, String::len));
    let (stdout, stderr) = match logs {
        Some((out, err)) => {
            let err_size = size(err);
            // Stderr first gets up to half, and all it needs below that; stdout the rest.
            let err_take = err_size.min(budget as u64 / 2) as usize;
            let out_take = budget.saturating_sub(err_take);
            let stdout = tail(out, out_take);
            let err_take = budget.saturating_sub(stdout.len());
            (stdout, tail(err, err_take))
        }
        None => (String::new(), String::new()),
    };
    let mut text = stdout;
    if !stderr.is_empty() {
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str("--- stderr ---\n");
        text.push_str(&stderr);
    }
    if let Some(message) = message {
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&message);
    }
    text.replace('\0', "\u{fffd}")
}

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// The last `max` bytes of `path` (fewer when cut to say so), as text; empty without a file.
fn tail(path: &Path, max: usize) -> String {
    let Ok(mut file) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = size(path);
    if max == 0 {
        return if len == 0 {
            String::new()
        } else {
            format!("[{len} bytes not shown]\n")
        };
    }
    let mut note = String::new();
    if len > max as u64 {
        let cut = len - max as u64;
        note = format!("[the first {cut} bytes are cut]\n");
        let keep = max.saturating_sub(note.len());
        if file.seek(SeekFrom::Start(len - keep as u64)).is_err() {
            return String::new();
        }
    }
    let mut bytes = Vec::new();
    if file.take(max as u64).read_to_end(&mut bytes).is_err() {
        return String::new();
    }
    note + &String::from_utf8_lossy(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_stdout_then_stderr_then_psy_s_message_within_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let (out, err) = (dir.path().join("o"), dir.path().join("e"));
        std::fs::write(&out, "hello\nworld\n").unwrap();
        std::fs::write(&err, "oops\0").unwrap();
        let text = output(Some((&out, &err)), Some("exit 1"), OUTPUT_CAP);
        assert_eq!(
            text,
            "hello\nworld\n--- stderr ---\noops\u{fffd}\n--- psy ---\nexit 1\n"
        );
        assert_eq!(output(None, None, OUTPUT_CAP), "");
        let missing = dir.path().join("missing");
        assert_eq!(
            output(Some((&missing, &missing)), Some("no such test"), 100),
            "--- psy ---\nno such test\n"
        );

        std::fs::write(&out, "x".repeat(5000) + "END").unwrap();
        std::fs::write(&err, "").unwrap();
        let text = output(Some((&out, &err)), None, 1000);
        assert!(text.len() <= 1000, "{}", text.len());
        assert!(
            text.starts_with("[the first ") && text.ends_with("xxxEND"),
            "{text}"
        );

        std::fs::write(&err, "e".repeat(5000)).unwrap();
        let text = output(Some((&out, &err)), None, 1000);
        assert!(text.len() <= 1000 + 32, "{}", text.len());
        assert!(text.contains("xxxEND\n--- stderr ---\n["), "{text}");
    }
}
