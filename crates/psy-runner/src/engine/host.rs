//! This machine as a run sees it: its capacity (cores and memory detected, lowered by the
//! `[host]` reserve, disk IO from the manifest over the calibrated host file, network from the
//! manifest), and whether the selected tests can run here at all.

use super::error::PrepareError;
use crate::capacity;
use psy_config::{host_file, HostConfig};
use psy_model::{Capacity, TestSpec};
use std::path::Path;

/// The local machine's capacity under a manifest's `[host]` table.
#[derive(Clone, Debug)]
pub struct LocalHost {
    pub capacity: Capacity,
    /// The host file's `[images]`: how images are pulled here.
    pub images: host_file::HostImages,
    /// psy runs as root (every guarantee can be enforced).
    pub root: bool,
}

impl LocalHost {
    /// Detects the machine and merges the host file; refuses a `[host]` psy cannot honour.
    pub fn detect(host: &HostConfig, manifest: &Path) -> Result<Self, PrepareError> {
        if let Some(rootfs) = &host.rootfs {
            return Err(PrepareError::RootfsUnsupported {
                manifest: manifest.to_path_buf(),
                rootfs: rootfs.clone(),
            });
        }
        let mut capacity = capacity::detect(host.reserve_cpu_millis, host.reserve_memory_bytes);
        let file = host_file::load(&host_file::default_path())?.unwrap_or_default();
        capacity.io = host_file::merge_io(&host.io, &file.io);
        capacity.network = host.network;
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        Ok(LocalHost {
            capacity,
            images: file.images,
            root,
        })
    }

    /// Every test fits the machine and asks for nothing this psy lacks the privileges for.
    pub fn check(&self, tests: &[TestSpec]) -> Result<(), PrepareError> {
        psy_config::check_fits(tests, &self.capacity)?;
        psy_config::check_privileges(tests, self.root)?;
        Ok(())
    }
}
