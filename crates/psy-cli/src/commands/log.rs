//! `psy log TEST [RUN]`: a test's recorded output, as it wrote it.

use super::context::{load_manifest, open_store};
use super::test_lookup::{find_attempts, pick_attempt};
use crate::cli::LogArgs;
use anyhow::Context;
use psy_runner::layout::StateDir;
use std::io::{self, Write};
use std::path::Path;
use std::process::ExitCode;

pub(crate) fn log(args: LogArgs) -> anyhow::Result<ExitCode> {
    let manifest = load_manifest(&args.manifest)?;
    let store = open_store(&StateDir::new(&manifest.dir))?;
    let (run, attempts) = find_attempts(&store, &args.test, args.run.as_deref())?;
    let a = pick_attempt(&attempts, args.attempt, &args.test, &run)?;
    let mut out = io::stdout().lock();
    if args.stdout || args.stderr {
        let path = if args.stdout {
            &a.stdout_path
        } else {
            &a.stderr_path
        };
        copy(path, &mut out, false)?;
        return Ok(ExitCode::SUCCESS);
    }
    // Both streams: each under a header naming it, the attempt and the file.
    let of = attempts.len();
    for (name, path) in [("stdout", &a.stdout_path), ("stderr", &a.stderr_path)] {
        writeln!(
            out,
            "--- {name} of {} (run {run}, attempt {} of {of}): {} ---",
            psy_report::text::escape(a.test_id.as_str()),
            a.attempt,
            path.display()
        )?;
        let wrote = copy(path, &mut out, true)?;
        if wrote == 0 {
            writeln!(out, "(empty)")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Copies a log file to `out` byte for byte; a missing file is an empty stream (psy keeps no
/// empty logs). With `end_line`, adds a newline when the file did not end with one, so a
/// following header starts its own line.
fn copy(path: &Path, out: &mut impl Write, end_line: bool) -> anyhow::Result<u64> {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
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
