//! Disk IO limits and counters: the values, and the cgroupfs line formats of both versions.
//!
//! Formats live here, apart from the drivers, so each is tested on its own; the drivers
//! (`v1/limits.rs`, `v2/limits.rs`) only decide which file gets which line.

use std::path::Path;

use super::error::CgroupError;

/// Throttles and weight for whole block devices (see [`super::block_device_of`]).
/// `None` leaves that knob unlimited. Throttles act on bios the group's own tasks submit:
/// O_DIRECT IO, reads, and writeback they force (fsync); on v1, dirty pages flushed by the
/// kernel's background writeback escape both the throttle and the group's stats, which is why
/// the sandbox mounts a throttled test's filesystems `sync` there (docs/architecture.md). An
/// `IoLimits` with every knob `None` still puts the group in the IO controller, which is what IO
/// accounting ([`super::CgroupStats`]) needs on v1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IoLimits {
    /// `(major, minor)` of a whole disk, device-mapper or loop device (not a partition).
    pub device: (u32, u32),
    /// More devices given the same throttles, each its own (a test's volumes).
    pub also: Vec<(u32, u32)>,
    /// Bytes per second.
    pub read_bps: Option<u64>,
    pub write_bps: Option<u64>,
    /// Requests per second.
    pub read_iops: Option<u64>,
    pub write_iops: Option<u64>,
    /// Proportional share on the v2 scale (1..=10000, default 100); mapped to v1's scales.
    /// Needs an IO scheduler or controller that honours weights (BFQ, io.cost); where the
    /// host has none it is skipped and `missing_guarantees` says so.
    pub weight: Option<u16>,
}

impl IoLimits {
    /// `device`, then `also`.
    pub fn devices(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        std::iter::once(self.device).chain(self.also.iter().copied())
    }

    /// No limits on `device`, only accounting.
    pub fn measure_only(device: (u32, u32)) -> Self {
        IoLimits {
            device,
            also: Vec::new(),
            read_bps: None,
            write_bps: None,
            read_iops: None,
            write_iops: None,
            weight: None,
        }
    }
}

/// IO done by a group, summed over devices.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct IoCounters {
    pub(crate) read_bytes: Option<u64>,
    pub(crate) write_bytes: Option<u64>,
    pub(crate) read_ops: Option<u64>,
    pub(crate) write_ops: Option<u64>,
}

impl IoCounters {
    pub(crate) fn fill(self, stats: &mut super::CgroupStats) {
        stats.io_read_bytes = self.read_bytes;
        stats.io_write_bytes = self.write_bytes;
        stats.io_read_ops = self.read_ops;
        stats.io_write_ops = self.write_ops;
    }
}

pub(crate) fn dev(d: (u32, u32)) -> String {
    format!("{}:{}", d.0, d.1)
}

/// v1 throttle files with the value `io` asks for in each.
pub(crate) fn v1_throttles(io: &IoLimits) -> [(&'static str, Option<u64>); 4] {
    [
        ("blkio.throttle.read_bps_device", io.read_bps),
        ("blkio.throttle.write_bps_device", io.write_bps),
        ("blkio.throttle.read_iops_device", io.read_iops),
        ("blkio.throttle.write_iops_device", io.write_iops),
    ]
}

/// The v1 throttle files, for clearing them all.
pub(crate) const V1_THROTTLE_FILES: [&str; 4] = [
    "blkio.throttle.read_bps_device",
    "blkio.throttle.write_bps_device",
    "blkio.throttle.read_iops_device",
    "blkio.throttle.write_iops_device",
];

/// A v1 throttle rule; 0 deletes the device's rule.
pub(crate) fn v1_rule(device: (u32, u32), value: Option<u64>) -> String {
    format!("{} {}", dev(device), value.unwrap_or(0))
}

/// An `io.max` line; `None` (all knobs "max") deletes the device's entry.
pub(crate) fn v2_max_line(device: (u32, u32), io: Option<&IoLimits>) -> String {
    let v = |x: Option<u64>| x.map_or_else(|| "max".to_owned(), |n| n.to_string());
    let (rb, wb, ri, wi) = io.map_or((None, None, None, None), |io| {
        (io.read_bps, io.write_bps, io.read_iops, io.write_iops)
    });
    format!(
        "{} rbps={} wbps={} riops={} wiops={}",
        dev(device),
        v(rb),
        v(wb),
        v(ri),
        v(wi)
    )
}

/// v1 `blkio.weight` (CFQ: 10..=1000, default 500).
pub(crate) fn v1_cfq_weight(weight: u16) -> u64 {
    (u64::from(weight) * 5).clamp(10, 1000)
}

/// `blkio.bfq.weight` / `io.bfq.weight` (1..=1000, default 100).
pub(crate) fn bfq_weight(weight: u16) -> u64 {
    u64::from(weight).clamp(1, 1000)
}

/// `io.weight` (1..=10000, default 100).
pub(crate) fn v2_weight(weight: u16) -> u64 {
    u64::from(weight).clamp(1, 10_000)
}

/// Devices that have a rule in a rule file (`MAJ:MIN ...` per line: v1 throttles, `io.max`).
pub(crate) fn rule_devices(path: &Path, text: &str) -> Result<Vec<(u32, u32)>, CgroupError> {
    text.lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(|d| super::blockdev::parse_dev(path, d))
        .collect()
}

/// Device lines of loop devices start with their major.
const LOOP_MAJOR: &str = "7:";

/// Sum of the `MAJ:MIN <op> N` lines for `op` ("Read", "Write") in a v1 blkio stat file
/// (`blkio.throttle.io_service_bytes[_recursive]`, `..._io_serviced[_recursive]`). The closing
/// `Total N` line has no device and is skipped.
///
/// When the group did IO on loop devices (its own scratch filesystem and volumes), only those
/// count: the kernel charges a loop device's IO to its backing file to the same group, so the
/// disk below would count every byte a second time.
pub(crate) fn v1_stat_sum(path: &Path, text: &str, op: &str) -> Result<u64, CgroupError> {
    let only_loop = text.lines().any(|l| l.starts_with(LOOP_MAJOR));
    let mut sum = 0u64;
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if let [device, name, value] = fields[..] {
            if name == op && (!only_loop || device.starts_with(LOOP_MAJOR)) {
                sum += value.parse::<u64>().map_err(|_| CgroupError::Parse {
                    path: path.to_path_buf(),
                    expected: "`MAJ:MIN Op N` lines",
                    found: line.to_owned(),
                })?;
            }
        }
    }
    Ok(sum)
}

/// `io.stat` (`MAJ:MIN rbytes=N wbytes=N rios=N wios=N ...` per device), summed over devices;
/// only loop devices when there are any, as in [`v1_stat_sum`] (v2 charges a loop device's IO to
/// its backing file to the same group as well).
pub(crate) fn v2_stat(path: &Path, text: &str) -> Result<IoCounters, CgroupError> {
    let only_loop = text.lines().any(|l| l.starts_with(LOOP_MAJOR));
    let mut sums = [0u64; 4];
    for line in text
        .lines()
        .filter(|l| !only_loop || l.starts_with(LOOP_MAJOR))
    {
        for field in line.split_whitespace().skip(1) {
            let Some((key, value)) = field.split_once('=') else {
                continue;
            };
            let slot = match key {
                "rbytes" => 0,
                "wbytes" => 1,
                "rios" => 2,
                "wios" => 3,
                _ => continue,
            };
            sums[slot] += value.parse::<u64>().map_err(|_| CgroupError::Parse {
                path: path.to_path_buf(),
                expected: "`key=N` fields after the device",
                found: line.to_owned(),
            })?;
        }
    }
    Ok(IoCounters {
        read_bytes: Some(sums[0]),
        write_bytes: Some(sums[1]),
        read_ops: Some(sums[2]),
        write_ops: Some(sums[3]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io() -> IoLimits {
        IoLimits {
            read_bps: Some(1 << 20),
            write_iops: Some(300),
            ..IoLimits::measure_only((254, 0))
        }
    }

    #[test]
    fn rule_lines_have_the_kernel_formats() {
        let files = v1_throttles(&io());
        assert_eq!(files[0], ("blkio.throttle.read_bps_device", Some(1 << 20)));
        assert_eq!(files[1].1, None);
        assert_eq!(v1_rule((254, 0), Some(10)), "254:0 10");
        assert_eq!(v1_rule((8, 16), None), "8:16 0");
        assert_eq!(
            v2_max_line((254, 0), Some(&io())),
            "254:0 rbps=1048576 wbps=max riops=max wiops=300"
        );
        assert_eq!(
            v2_max_line((8, 0), None),
            "8:0 rbps=max wbps=max riops=max wiops=max"
        );
    }

    #[test]
    fn weights_map_onto_each_scale() {
        assert_eq!(v1_cfq_weight(100), 500);
        assert_eq!(v1_cfq_weight(1), 10);
        assert_eq!(v1_cfq_weight(10_000), 1000);
        assert_eq!(bfq_weight(0), 1);
        assert_eq!(bfq_weight(5000), 1000);
        assert_eq!(v2_weight(0), 1);
        assert_eq!(v2_weight(20_000), 10_000);
    }

    #[test]
    fn rule_devices_lists_each_line() {
        let p = Path::new("io.max");
        let text =
            "254:0 rbps=max wbps=10 riops=max wiops=max\n8:0 rbps=1 wbps=max riops=max wiops=max\n";
        assert_eq!(rule_devices(p, text).unwrap(), vec![(254, 0), (8, 0)]);
        assert_eq!(rule_devices(p, "").unwrap(), vec![]);
        assert!(rule_devices(p, "junk 1\n").is_err());
    }

    #[test]
    fn v1_stats_sum_devices_and_skip_total() {
        let p = Path::new("blkio.throttle.io_service_bytes_recursive");
        let text = "254:0 Read 12288\n254:0 Write 31457280\n254:0 Sync 31469568\n\
                    254:0 Async 0\n254:0 Discard 0\n254:0 Total 31469568\n\
                    8:0 Read 4096\n8:0 Write 100\nTotal 31473764\n";
        assert_eq!(v1_stat_sum(p, text, "Read").unwrap(), 16384);
        assert_eq!(v1_stat_sum(p, text, "Write").unwrap(), 31457380);
        assert_eq!(v1_stat_sum(p, "Total 0\n", "Write").unwrap(), 0);
        // Through a loop device: its backing IO on the disk below is the same bytes again.
        let looped = "7:3 Write 1048576\n254:0 Write 1048576\n254:0 Read 512\n7:3 Read 0\n";
        assert_eq!(v1_stat_sum(p, looped, "Write").unwrap(), 1048576);
        assert_eq!(v1_stat_sum(p, looped, "Read").unwrap(), 0);
        let err = v1_stat_sum(p, "8:0 Write x\n", "Write").unwrap_err();
        assert!(err.to_string().contains("io_service_bytes"), "{err}");
    }

    #[test]
    fn v2_stats_sum_devices() {
        let p = Path::new("io.stat");
        let text = "254:0 rbytes=4096 wbytes=1048576 rios=1 wios=8 dbytes=0 dios=0\n\
                    8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0\n";
        let c = v2_stat(p, text).unwrap();
        assert_eq!(
            c,
            IoCounters {
                read_bytes: Some(4097),
                write_bytes: Some(1048578),
                read_ops: Some(4),
                write_ops: Some(12),
            }
        );
        assert_eq!(v2_stat(p, "").unwrap().write_bytes, Some(0));
        // A volume's loop device and the disk under its image: the bytes count once.
        let text = "254:0 rbytes=0 wbytes=1048576 rios=0 wios=8 dbytes=0 dios=0\n\
                    7:3 rbytes=0 wbytes=1048576 rios=0 wios=256 dbytes=0 dios=0\n";
        assert_eq!(v2_stat(p, text).unwrap().write_bytes, Some(1048576));
        assert!(v2_stat(p, "8:0 wbytes=x\n").is_err());
    }
}
