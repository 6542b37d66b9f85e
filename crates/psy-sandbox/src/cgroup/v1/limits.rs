//! Writing limits into v1 controller files, and the per-directory setup v1 needs first.

use std::path::Path;

use super::V1Controller;
use crate::cgroup::error::CgroupError;
use crate::cgroup::io::{self, IoLimits};
use crate::cgroup::{files, CgroupLimits};

/// Makes a freshly created (or half-made) directory usable for tasks and children: v1 cpuset
/// starts with empty `cpuset.cpus`/`cpuset.mems`, which refuses every task, and old kernels
/// default `memory.use_hierarchy` to 0, which would let children escape their parent's limit.
pub(crate) fn prepare_dir(dir: &Path, controllers: &[V1Controller]) -> Result<(), CgroupError> {
    if controllers.contains(&V1Controller::Cpuset) {
        for file in ["cpuset.cpus", "cpuset.mems"] {
            inherit_if_empty(dir, file)?;
        }
    }
    if controllers.contains(&V1Controller::Memory) {
        let knob = dir.join("memory.use_hierarchy");
        if files::read_optional(&knob)?.is_some_and(|v| v.trim() == "0") {
            // Fails once the directory has children or the parent is flat; limits still apply
            // to the leaf itself, so a warning is enough.
            if let Err(e) = files::write(&knob, "1") {
                tracing::warn!(error = %e, "cannot make memory cgroup hierarchical");
            }
        }
    }
    Ok(())
}

/// Sets up a directory that holds attempts' groups (the `psyduck` base, a run's group): the
/// per-directory v1 setup, cpusets inherited by children (`cgroup.clone_children`), and CPU
/// shares worth the whole machine. Without the latter, the entire subtree would weigh as much
/// as one ordinary process at the root, and a few busy host processes would starve tests of the
/// CPU they were guaranteed.
pub(crate) fn prepare_parent(dir: &Path, controllers: &[V1Controller]) -> Result<(), CgroupError> {
    prepare_dir(dir, controllers)?;
    if controllers.contains(&V1Controller::Cpuset) {
        files::write_optional(&dir.join("cgroup.clone_children"), "1")?;
    }
    if controllers.contains(&V1Controller::Cpu) {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
        files::write_optional(
            &dir.join("cpu.shares"),
            &cpu_shares(cores * 1000).to_string(),
        )?;
    }
    Ok(())
}

fn inherit_if_empty(dir: &Path, file: &str) -> Result<(), CgroupError> {
    let path = dir.join(file);
    let Some(current) = files::read_optional(&path)? else {
        return Ok(());
    };
    if !current.trim().is_empty() {
        return Ok(());
    }
    let Some(parent) = dir.parent() else {
        return Ok(());
    };
    let parent_value = files::read(&parent.join(file))?;
    files::write(&path, parent_value.trim())
}

/// Writes `limits` into the leaf `dir` of a hierarchy holding `controllers`.
pub(crate) fn apply(
    dir: &Path,
    controllers: &[V1Controller],
    limits: &CgroupLimits,
) -> Result<(), CgroupError> {
    for c in controllers {
        match c {
            V1Controller::Cpu => apply_cpu(dir, limits)?,
            V1Controller::Cpuset => {
                // An empty list would leave the group unable to run anything: inherit instead.
                if let Some(cores) = limits.exclusive_cores.as_ref().filter(|c| !c.is_empty()) {
                    files::write(&dir.join("cpuset.cpus"), &cpu_list(cores))?;
                }
            }
            V1Controller::Memory => apply_memory(dir, limits.memory_bytes)?,
            V1Controller::Pids => {
                let max = if limits.pids == 0 {
                    "max".to_owned()
                } else {
                    limits.pids.to_string()
                };
                files::write(&dir.join("pids.max"), &max)?;
            }
            V1Controller::Blkio => apply_io(dir, limits.io.as_ref())?,
            V1Controller::Cpuacct | V1Controller::Freezer => {}
        }
    }
    Ok(())
}

fn apply_cpu(dir: &Path, limits: &CgroupLimits) -> Result<(), CgroupError> {
    // A new group starts with the kernel's default period (100ms = CPU_PERIOD_US) and no quota,
    // so only the quota is written; without CONFIG_CFS_BANDWIDTH the file is absent and shares
    // still work.
    if let Some(quota) = limits.cpu_quota_us() {
        files::write_optional(&dir.join("cpu.cfs_quota_us"), &quota.to_string())?;
    }
    if limits.cpu_millis > 0 {
        files::write(
            &dir.join("cpu.shares"),
            &cpu_shares(limits.cpu_millis).to_string(),
        )?;
    }
    Ok(())
}

fn apply_memory(dir: &Path, bytes: u64) -> Result<(), CgroupError> {
    let value = if bytes == 0 {
        "-1".to_owned()
    } else {
        bytes.to_string()
    };
    // memsw must stay >= limit_in_bytes, so the plain limit goes first; without memsw (no swap
    // accounting) swap is simply not limited, which missing_guarantees reports.
    files::write(&dir.join("memory.limit_in_bytes"), &value)?;
    files::write_optional(&dir.join("memory.memsw.limit_in_bytes"), &value)?;
    Ok(())
}

/// Sets the throttles `io` asks for and deletes every other rule (a reused group may carry
/// rules for another device, or knobs now unlimited). Writes only what changes, since this runs
/// on the container start path.
fn apply_io(dir: &Path, io: Option<&IoLimits>) -> Result<(), CgroupError> {
    let wanted = io.map(io::v1_throttles);
    for (i, file) in io::V1_THROTTLE_FILES.iter().enumerate() {
        let path = dir.join(file);
        // Absent without CONFIG_BLK_DEV_THROTTLING; missing_guarantees says so.
        let Some(current) = files::read_optional(&path)? else {
            continue;
        };
        let value = wanted.and_then(|w| w[i].1);
        for device in io::rule_devices(&path, &current)? {
            if io.is_none_or(|io| !io.devices().any(|d| d == device) || value.is_none()) {
                files::write(&path, &io::v1_rule(device, None))?;
            }
        }
        if let (Some(io), Some(value)) = (io, value) {
            for device in io.devices() {
                files::write(&path, &io::v1_rule(device, Some(value)))?;
            }
        }
    }
    if let Some(weight) = io.and_then(|io| io.weight) {
        let bfq = io::bfq_weight(weight).to_string();
        let cfq = io::v1_cfq_weight(weight).to_string();
        if !files::write_optional(&dir.join("blkio.bfq.weight"), &bfq)?
            && !files::write_optional(&dir.join("blkio.weight"), &cfq)?
        {
            tracing::debug!(dir = %dir.display(), "no blkio weight knob; io weight skipped");
        }
    }
    Ok(())
}

/// 1000 millis = 1024 shares (the kernel default for one task group), within the kernel's range.
pub(crate) fn cpu_shares(millis: u32) -> u64 {
    (u64::from(millis) * 1024 / 1000).clamp(2, 262_144)
}

/// `[0, 1, 3]` -> `"0,1,3"` (the kernel's list format accepts plain commas).
pub(crate) fn cpu_list(cores: &[u32]) -> String {
    let parts: Vec<String> = cores.iter().map(u32::to_string).collect();
    parts.join(",")
}
