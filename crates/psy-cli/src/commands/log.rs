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
