//! `psy show [RUN]`: one run's results from the store.

use super::context::{load_manifest, open_store};
use super::{attempt_row, show_test};
use crate::cli::ShowArgs;
use crate::exit::usage;
use psy_report::{format, text};
use psy_runner::layout::StateDir;
use psy_runner::logs::LocalLogs;
use std::io::Write;
use std::process::ExitCode;

pub(crate) fn show(args: ShowArgs) -> anyhow::Result<ExitCode> {
    let manifest = load_manifest(&args.manifest)?;
    let state = StateDir::new(&manifest.dir);
    let store = open_store(&state)?;
    if let (Some(run), Some(test)) = (&args.run, &args.test) {
        return show_test::show_test(store.as_ref(), &LocalLogs::new(state), run, test);
    }
    let run = match &args.run {
        Some(id) => super::test_lookup::find_run_or_hint_test(store.as_ref(), id)?,
        None => store
            .latest_run()?
            .ok_or_else(|| usage("no runs recorded yet: `psy run` first"))?,
    };
    let mut out = std::io::stdout().lock();
    let s = &run.summary;
    writeln!(
        out,
        "run {}  ({:?}, {}, {})",
        run.run_id,
        run.state,
        format::count(s.total, "test"),
        format::duration(s.duration_ms)
    )?;
    writeln!(out, "  {}", text::escape(&run.command_line))?;
    if let Some(note) = &run.note {
        writeln!(out, "  stopped early: {}", text::escape(note))?;
    }
    writeln!(
        out,
        "  passed {}  failed {}  flaky {}  skipped {}  timeout {}  oom {}  error {}  not run {}",
        s.passed, s.failed, s.flaky, s.skipped, s.timed_out, s.oom, s.errors, s.not_run
    )?;
    if args.attempts {
        let attempts = store.attempts(&run.run_id)?;
        let (header, ids) = text::column("TEST", attempts.iter().map(|a| a.test_id.as_str()));
        writeln!(out, "{header}  {}", attempt_row::header())?;
        for (a, id) in attempts.iter().zip(ids) {
            writeln!(out, "{id}  {}", attempt_row::columns(a))?;
        }
    } else {
        let results = store.test_results(&run.run_id)?;
        let (header, ids) = text::column("TEST", results.iter().map(|r| r.test_id.as_str()));
        writeln!(
            out,
            "{header}  {:8}  {:>8}  {:>9}",
            "STATUS", "ATTEMPTS", "TIME"
        )?;
        for (r, id) in results.iter().zip(ids) {
            writeln!(
                out,
                "{id}  {:8}  {:>8}  {:>9}",
                r.status.as_str(),
                r.attempts,
                format::duration(r.duration_ms)
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
