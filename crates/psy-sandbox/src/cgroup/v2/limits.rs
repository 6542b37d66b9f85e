//! Writing limits into v2 controller files.

use std::path::Path;

use crate::cgroup::error::CgroupError;
use crate::cgroup::io::{self, IoLimits};
use crate::cgroup::{files, CgroupLimits, CPU_PERIOD_US};

/// Passes the `enabled` controllers on from intermediate `dir` to its children.
pub(crate) fn delegate(dir: &Path, enabled: &[String]) -> Result<(), CgroupError> {
    if enabled.is_empty() {
        return Ok(());
    }
    let plus: Vec<String> = enabled.iter().map(|c| format!("+{c}")).collect();
    files::write(&dir.join("cgroup.subtree_control"), &plus.join(" "))?;
    // A run's group weighs as much as the whole machine, not as one ordinary process, so busy
    // host processes cannot starve tests of the CPU they were guaranteed.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    files::write_optional(
        &dir.join("cpu.weight"),
        &(100 * cores).min(10_000).to_string(),
    )?;
    Ok(())
}

/// Writes `limits` into leaf `dir`, for the controllers `enabled` in its parent.
pub(crate) fn apply(
    dir: &Path,
    enabled: &[String],
    limits: &CgroupLimits,
) -> Result<(), CgroupError> {
    let on = |c: &str| enabled.iter().any(|e| e == c);
    if on("cpu") {
        let quota = limits
            .cpu_quota_us()
            .map_or_else(|| "max".to_owned(), |q| q.to_string());
        files::write(&dir.join("cpu.max"), &format!("{quota} {CPU_PERIOD_US}"))?;
        if limits.cpu_millis > 0 {
            files::write(
                &dir.join("cpu.weight"),
                &cpu_weight(limits.cpu_millis).to_string(),
            )?;
        }
    }
    if on("cpuset") {
        if let Some(cores) = limits.exclusive_cores.as_ref().filter(|c| !c.is_empty()) {
            let list: Vec<String> = cores.iter().map(u32::to_string).collect();
            files::write(&dir.join("cpuset.cpus"), &list.join(","))?;
        }
    }
    if on("memory") {
        let (max, swap) = if limits.memory_bytes == 0 {
            ("max".to_owned(), "max")
        } else {
            (limits.memory_bytes.to_string(), "0")
        };
        files::write(&dir.join("memory.max"), &max)?;
        // Absent without swap accounting (then missing_guarantees says so) or on old kernels.
        files::write_optional(&dir.join("memory.swap.max"), swap)?;
        // An OOM kill takes the whole test down rather than leaving it half-alive. Only the
        // test's own processes may be in the group: the kernel also kills every process sharing
        // a killed one's memory, and the container's init shares the launcher's (see
        // docs/architecture.md, "cgroup v2").
        files::write_optional(&dir.join("memory.oom.group"), "1")?;
    }
    if on("pids") {
        let max = if limits.pids == 0 {
            "max".to_owned()
        } else {
            limits.pids.to_string()
        };
        files::write(&dir.join("pids.max"), &max)?;
    }
    if on("io") {
        apply_io(dir, limits.io.as_ref())?;
    }
    Ok(())
}

/// Sets `io.max` for the requested device, resets other devices' entries (a reused group), and
/// the weight if asked and offered (`io.weight` needs io.cost, `io.bfq.weight` BFQ).
fn apply_io(dir: &Path, io: Option<&IoLimits>) -> Result<(), CgroupError> {
    let max = dir.join("io.max");
    // Absent without CONFIG_BLK_DEV_THROTTLING; missing_guarantees says so.
    let Some(current) = files::read_optional(&max)? else {
        return Ok(());
    };
    for device in io::rule_devices(&max, &current)? {
        if io.is_none_or(|io| !io.devices().any(|d| d == device)) {
            files::write(&max, &io::v2_max_line(device, None))?;
        }
    }
    let Some(io) = io else {
        return Ok(());
    };
    for device in io.devices() {
        files::write(&max, &io::v2_max_line(device, Some(io)))?;
    }
    if let Some(weight) = io.weight {
        let cost = format!("default {}", io::v2_weight(weight));
        let bfq = format!("default {}", io::bfq_weight(weight));
        if !files::write_optional(&dir.join("io.weight"), &cost)?
            && !files::write_optional(&dir.join("io.bfq.weight"), &bfq)?
        {
            tracing::debug!(dir = %dir.display(), "no io weight knob; io weight skipped");
        }
    }
    Ok(())
}

/// 1000 millis = weight 100 (the default for one group), within the kernel's 1..=10000.
pub(crate) fn cpu_weight(millis: u32) -> u64 {
    (u64::from(millis) / 10).clamp(1, 10_000)
}
