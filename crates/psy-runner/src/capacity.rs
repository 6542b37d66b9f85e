//! What this machine can guarantee to tests: cores we may run on and memory, minus a reserve.

use psy_model::{Capacity, MILLI_PER_CPU};
use std::path::Path;

/// Cores in our affinity mask, e.g. `[0, 1]`.
pub fn online_cores() -> Vec<u32> {
    // SAFETY: cpu_set_t is plain data; sched_getaffinity fills it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            let n = std::thread::available_parallelism().map_or(1, |n| n.get());
            return (0..n as u32).collect();
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .map(|c| c as u32)
            .collect()
    }
}

/// Total memory: `MemTotal` from `/proc/meminfo`, lowered to our own cgroup's limit if smaller.
pub fn total_memory(proc_root: &Path) -> u64 {
    let meminfo = std::fs::read_to_string(proc_root.join("meminfo")).unwrap_or_default();
    let total = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(1 << 30, |kb| kb * 1024);
    own_cgroup_memory_limit(proc_root).map_or(total, |limit| limit.min(total))
}

fn own_cgroup_memory_limit(proc_root: &Path) -> Option<u64> {
    let cgroups = std::fs::read_to_string(proc_root.join("self/cgroup")).ok()?;
    let mut best: Option<u64> = None;
    for line in cgroups.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let file = if controllers.split(',').any(|c| c == "memory") {
            format!("/sys/fs/cgroup/memory{path}/memory.limit_in_bytes")
        } else if controllers.is_empty() {
            format!("/sys/fs/cgroup{path}/memory.max")
        } else {
            continue;
        };
        if let Some(v) = std::fs::read_to_string(file)
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
        {
            best = Some(best.map_or(v, |b| b.min(v)));
        }
    }
    best
}

/// The machine's capacity for tests after keeping `reserve_cpu_millis` and `reserve_memory` for
/// psy itself.
pub fn detect(reserve_cpu_millis: u32, reserve_memory: u64) -> Capacity {
    let cores = online_cores();
    let cpu_millis = (cores.len() as u32 * MILLI_PER_CPU)
        .saturating_sub(reserve_cpu_millis)
        .max(1);
    let memory_bytes = total_memory(Path::new("/proc"))
        .saturating_sub(reserve_memory)
        .max(1 << 20);
    Capacity {
        cpu_millis,
        memory_bytes,
        cores,
        io: Default::default(),
        network: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_something_sane() {
        let c = detect(0, 0);
        assert!(!c.cores.is_empty());
        assert_eq!(c.cpu_millis, c.cores.len() as u32 * 1000);
        assert!(c.memory_bytes > 16 << 20);
        let reserved = detect(500, 1 << 20);
        assert_eq!(reserved.cpu_millis, c.cpu_millis - 500);
    }
}
