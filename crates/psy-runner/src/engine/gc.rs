//! Removes what killed psy processes left behind (their cgroups, scratch directories, volume
//! images and test networks) and marks their runs aborted; run at the start of every local run
//! and by `psy gc`.

use super::error::GcError;
use crate::layout::StateDir;
use psy_store::Store;

/// What one clean-up removed.
#[derive(Debug, Default)]
pub struct GcReport {
    pub cgroups: usize,
    pub scratch_dirs: usize,
    /// Bridges and veths of the test networks of dead psy processes.
    pub links: usize,
    pub aborted_runs: usize,
}

/// Call with the project lock held: every run still marked running then belongs to a dead psy.
pub fn collect(state: &StateDir, store: &mut dyn Store) -> Result<GcReport, GcError> {
    let mut report = GcReport {
        cgroups: psy_sandbox::gc_stale_cgroups()?,
        links: psy_sandbox::net::gc_stale(psy_sandbox::process_alive),
        ..GcReport::default()
    };
    for root in [state.scratch_root(), state.volumes_root()] {
        if let Ok(entries) = std::fs::read_dir(root) {
            for entry in entries.flatten() {
                let name = entry.file_name();
                let owner = name
                    .to_str()
                    .and_then(|n| n.split('-').next())
                    .and_then(|p| p.parse::<u32>().ok());
                if owner.is_some_and(|pid| !psy_sandbox::process_alive(pid)) {
                    if let Err(e) = psy_sandbox::remove_tree(&entry.path()) {
                        tracing::warn!(
                            "removing stale scratch directory {}: {e}",
                            entry.path().display()
                        );
                    } else {
                        report.scratch_dirs += 1;
                    }
                }
            }
        }
    }
    report.aborted_runs = store.abort_unfinished_runs()?;
    Ok(report)
}
