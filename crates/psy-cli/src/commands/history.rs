//! `psy history TEST`: past attempts of one test, newest first.

use super::context::{load_manifest, open_store};
use crate::cli::HistoryArgs;
use crate::exit::usage;
use psy_model::TestId;
use psy_report::format;
use psy_runner::layout::StateDir;
use psy_store::Store;
use std::io::Write;
use std::process::ExitCode;

pub(crate) fn history(args: HistoryArgs) -> anyhow::Result<ExitCode> {
    let manifest = load_manifest(&args.manifest)?;
    let store = open_store(&StateDir::new(&manifest.dir))?;
    let rows = store.history(&TestId(args.test.clone()), args.limit)?;
    if rows.is_empty() {
        return Err(usage(format!(
            "no attempts of test {:?} recorded (ids look like `name` or `name@variant`)",
            args.test
        )));
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:22}  {:>3}  {:8}  {:>9}  {:>9}  {:>9}  EXIT",
        "RUN", "TRY", "STATUS", "TIME", "CPU", "PEAK MEM"
    )?;
    for (run, a) in rows {
        writeln!(
            out,
            "{:22}  {:>3}  {:8}  {:>9}  {:>9}  {:>9}  {}",
            run.as_str(),
            a.attempt,
            a.status.as_str(),
            format::duration(a.duration_ms),
            a.cpu_time_ms.map_or("-".into(), format::duration),
            a.peak_memory_bytes.map_or("-".into(), format::bytes),
            format::exit(&a.exit),
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
