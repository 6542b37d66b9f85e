//! `psy log TEST [RUN]`: a test's recorded output, as it wrote it.

use super::context::{load_manifest, open_store};
use super::test_lookup::{find_attempts, pick_attempt};
use crate::cli::LogArgs;
use anyhow::Context;
use psy_model::{AttemptKey, LogStore, LogStream};
use psy_runner::layout::StateDir;
use psy_runner::logs::LocalLogs;
use std::io::{self, Write};
use std::process::ExitCode;

pub(crate) fn log(args: LogArgs) -> anyhow::Result<ExitCode> {
    let manifest = load_manifest(&args.manifest)?;
    let state = StateDir::new(&manifest.dir);
    let store = open_store(&state)?;
    let logs = LocalLogs::new(state);
    let (run, attempts) = find_attempts(store.as_ref(), &args.test, args.run.as_deref())?;
    let a = pick_attempt(&attempts, args.attempt, &args.test, &run)?;
    let key = AttemptKey::of(&run, a);
    let mut out = io::stdout().lock();
    if args.timeline || args.node.is_some() {
        return scenario_files(&logs, &key, &args, &mut out);
    }
    if args.stdout || args.stderr {
        let stream = if args.stdout {
            LogStream::Stdout
        } else {
            LogStream::Stderr
        };
        copy(&logs, &key, stream, &mut out, false)?;
        return Ok(ExitCode::SUCCESS);
    }
    // Both streams: each under a header naming it, the attempt and the file.
    let of = attempts.len();
    for stream in LogStream::BOTH {
        writeln!(
            out,
            "--- {} of {} (run {run}, attempt {} of {of}): {} ---",
            stream.as_str(),
            psy_report::text::escape(a.test_id.as_str()),
            a.attempt,
            logs.location(&key, stream).display()
        )?;
        let wrote = copy(&logs, &key, stream, &mut out, true)?;
        if wrote == 0 {
            writeln!(out, "(empty)")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `--timeline` or `--node NAME`: files a scenario keeps beside its driver's stdout.
fn scenario_files(
    logs: &LocalLogs,
    key: &AttemptKey,
    args: &LogArgs,
    out: &mut impl Write,
) -> anyhow::Result<ExitCode> {
    let driver = logs.location(key, LogStream::Stdout);
    let file = |suffix: &str| psy_runner::layout::scenario_file(&driver, suffix);
    let read = |path: &std::path::Path| -> anyhow::Result<Option<Vec<u8>>> {
        match std::fs::read(path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    };
    let test = psy_report::text::escape(key.test_id.as_str());
    if args.timeline {
        let path = file("scenario.jsonl");
        let Some(bytes) = read(&path)? else {
            return Err(crate::exit::usage(format!(
                "{test} (run {}, attempt {}) has no scenario timeline ({}): it has no nodes",
                key.run_id,
                key.attempt,
                path.display()
            )));
        };
        out.write_all(&bytes)?;
        return Ok(ExitCode::SUCCESS);
    }
    let node = args.node.as_deref().unwrap_or_default();
    let streams: Vec<LogStream> = match (args.stdout, args.stderr) {
        (true, _) => vec![LogStream::Stdout],
        (_, true) => vec![LogStream::Stderr],
        _ => LogStream::BOTH.to_vec(),
    };
    // A node of this attempt is named in its timeline (it may have printed nothing).
    let timeline = read(&file("scenario.jsonl"))?.ok_or_else(|| {
        crate::exit::usage(format!(
            "{test} (run {}, attempt {}) has no nodes: --node is for multi-node scenarios",
            key.run_id, key.attempt
        ))
    })?;
    let named = format!("\"node\":{}", serde_json::to_string(node)?);
    if !String::from_utf8_lossy(&timeline).contains(&named) {
        return Err(crate::exit::usage(format!(
            "{test} has no node named {node:?} (see `psy log {test} --timeline`)"
        )));
    }
    for stream in streams.iter().copied() {
        let ext = match stream {
            LogStream::Stdout => "out",
            LogStream::Stderr => "err",
        };
        let path = file(&format!("node.{node}.{ext}"));
        let bytes = read(&path)?;
        if streams.len() > 1 {
            writeln!(
                out,
                "--- {} of node {node} of {test} (run {}, attempt {}): {} ---",
                stream.as_str(),
                key.run_id,
                key.attempt,
                path.display()
            )?;
        }
        match bytes {
            Some(b) => {
                out.write_all(&b)?;
                if streams.len() > 1 && !b.is_empty() && !b.ends_with(b"\n") {
                    writeln!(out)?;
                }
            }
            None if streams.len() > 1 => writeln!(out, "(empty)")?,
            None => {}
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Copies a stream to `out` byte for byte; a missing one is empty (psy keeps no empty logs).
/// With `end_line`, adds a newline when it did not end with one, so a following header starts
/// its own line.
fn copy(
    logs: &dyn LogStore,
    key: &AttemptKey,
    stream: LogStream,
    out: &mut impl Write,
    end_line: bool,
) -> anyhow::Result<u64> {
    let path = logs.location(key, stream);
    let mut file = match logs.read(key, stream) {
        Ok(Some(f)) => f,
        Ok(None) => return Ok(0),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let n = io::copy(&mut file, out).with_context(|| format!("reading {}", path.display()))?;
    if end_line && n > 0 {
        use std::io::{Read, Seek, SeekFrom};
        let mut last = [0u8];
        file.seek(SeekFrom::End(-1))?;
        file.read_exact(&mut last)?;
        if last[0] != b'\n' {
            writeln!(out)?;
        }
    }
    Ok(n)
}
