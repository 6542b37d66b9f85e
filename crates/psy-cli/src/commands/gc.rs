//! `psy gc`, also run at the start of every `psy run`: removes what killed psy processes left
//! behind (their cgroups, scratch directories and test networks) and marks their runs aborted.
//! The command (not the start of a run) also collects the machine's image store: images no run
//! used for [`IMAGE_KEEP_DAYS`] days and the layers only they had.

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
    collect_images();
    Ok(ExitCode::SUCCESS)
}

/// Images not resolved by any run for this many days are removed by `psy gc`.
pub(crate) const IMAGE_KEEP_DAYS: u64 = 30;

/// Collects the image store ($PSY_IMAGE_STORE or the default), if there is one; a failure is
/// a warning: the project's clean-up is done.
fn collect_images() {
    let dir = psy_image::ImageStore::default_dir();
    if !dir.is_dir() {
        return;
    }
    let keep_since =
        std::time::SystemTime::now() - std::time::Duration::from_secs(IMAGE_KEEP_DAYS * 86400);
    match psy_image::ImageStore::open(&dir).and_then(|store| store.gc(keep_since)) {
        Ok(report) => eprintln!(
            "gc: removed {} unused for {IMAGE_KEEP_DAYS} days and {} ({}) from the image store {}",
            count(report.images, "image"),
            count(report.layers, "unpacked layer"),
            psy_report::format::bytes(report.bytes),
            dir.display()
        ),
        Err(e) => tracing::warn!("gc of the image store {}: {e}", dir.display()),
    }
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
