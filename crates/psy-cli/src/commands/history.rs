//! `psy history TEST`: past attempts of one test, newest first.

use super::attempt_row;
use super::context::{load_manifest, open_store};
use crate::cli::HistoryArgs;
use crate::exit::usage;
use psy_model::TestId;
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
    writeln!(out, "{:22}  {}", "RUN", attempt_row::header())?;
    for (run, a) in rows {
        writeln!(out, "{:22}  {}", run.as_str(), attempt_row::columns(&a))?;
    }
    Ok(ExitCode::SUCCESS)
}
