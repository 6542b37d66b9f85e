//! `psy gc`, also run at the start of every `psy run`: removes what killed psy processes left
//! behind (their cgroups, scratch directories and test networks) and marks their runs aborted.

use super::context::open_store;
use crate::cli::ManifestArg;
use crate::exit::usage;
use psy_report::format::{count, count_as};
use psy_runner::engine::gc;
use psy_runner::layout::StateDir;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Cleans the project of `-m`'s directory. The manifest is not parsed: what gc removes belongs
/// to dead processes whatever the manifest says now, and a broken manifest must not keep it.
pub(crate) fn gc(args: ManifestArg) -> anyhow::Result<ExitCode> {
    let dir = project_dir(&args)?;
    let state = StateDir::new(&dir);
    let Some(_lock) = state.try_lock()? else {
        return Err(usage(format!(
            "a psy run is in progress in {}; try again when it ends",
            dir.display()
        )));
    };
    let mut store = open_store(&state)?;
    let report = gc::collect(&state, store.as_mut())?;
    eprintln!(
        "gc: removed {}, {} and {} of dead psy processes; {} marked aborted",
        count(report.cgroups, "cgroup"),
        count_as(
            report.scratch_dirs,
            "scratch directory",
            "scratch directories"
        ),
        count(report.links, "network interface"),
        count(report.aborted_runs, "run")
    );
    Ok(ExitCode::SUCCESS)
}

/// The directory of the manifest `-m` names (which must exist, so a mistyped path cleans
/// nothing), as `psy run` computes it.
fn project_dir(args: &ManifestArg) -> anyhow::Result<PathBuf> {
    let path = &args.manifest;
    let absolute = std::fs::canonicalize(path).map_err(|e| {
        usage(format!(
            "{}: no such manifest ({e}); gc cleans the project of the manifest given with -m",
            path.display()
        ))
    })?;
    Ok(absolute
        .parent()
        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf))
}
