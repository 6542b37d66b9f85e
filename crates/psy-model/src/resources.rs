//! Resource requests of a test and the capacity of a machine.
//!
//! CPU is counted in milli-CPUs (1000 = one core) so fractional requests (`cpus = 0.5`) stay
//! integral and additions never drift.

use serde::{Deserialize, Serialize};

/// Milli-CPUs in one core.
pub const MILLI_PER_CPU: u32 = 1000;

/// How CPU requests are enforced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CpuPolicy {
    /// CFS quota (`cpu.cfs_quota_us` / `cpu.max`) plus proportional shares.
    #[default]
    Shared,
    /// Whole-core requests get an exclusive cpuset; fractional ones share the remaining cores.
    Exclusive,
}

/// Disk IO an attempt may use on the device behind its writable storage (throttles; `None` fields
/// are not limited). `weight` is proportional (1..=10000, cgroup v2 scale) where the host's IO
/// scheduler supports it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IoRequest {
    pub read_bps: Option<u64>,
    pub write_bps: Option<u64>,
    pub read_iops: Option<u64>,
    pub write_iops: Option<u64>,
    pub weight: Option<u16>,
}

impl IoRequest {
    /// `self`'s fields where set, else `base`'s.
    pub fn over(&self, base: &IoRequest) -> IoRequest {
        IoRequest {
            read_bps: self.read_bps.or(base.read_bps),
            write_bps: self.write_bps.or(base.write_bps),
            read_iops: self.read_iops.or(base.read_iops),
            write_iops: self.write_iops.or(base.write_iops),
            weight: self.weight.or(base.weight),
        }
    }
}

/// Network bandwidth of an attempt, in bit/s, guaranteed and limited (token-bucket shaping on
/// its own interface); `None` leaves a direction unshaped (and not admitted against capacity).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NetworkRequest {
    /// Traffic the test sends.
    pub egress_bps: Option<u64>,
    /// Traffic delivered to the test.
    pub ingress_bps: Option<u64>,
}

impl NetworkRequest {
    /// `self`'s fields where set, else `base`'s.
    pub fn over(&self, base: &NetworkRequest) -> NetworkRequest {
        NetworkRequest {
            egress_bps: self.egress_bps.or(base.egress_bps),
            ingress_bps: self.ingress_bps.or(base.ingress_bps),
        }
    }
}

/// What one attempt of a test is guaranteed (and limited to).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    /// Milli-CPUs (1000 = one core).
    pub cpu_millis: u32,
    /// Hard memory limit in bytes (no swap).
    pub memory_bytes: u64,
    /// Maximum number of processes/threads.
    pub pids: u32,
    /// Size of the private writable `/tmp` (a tmpfs, charged to the memory limit).
    pub tmp_bytes: u64,
    /// Size of the attempt's own scratch filesystem (`$PSY_SCRATCH`); `None`: a plain directory
    /// on the project's disk, not size-limited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_bytes: Option<u64>,
    /// Disk IO throttles, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io: Option<IoRequest>,
    /// A network interface of its own with this bandwidth; `None`: loopback only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkRequest>,
}

impl Default for Resources {
    fn default() -> Self {
        Resources {
            cpu_millis: MILLI_PER_CPU,
            memory_bytes: 512 << 20,
            pids: 1024,
            tmp_bytes: 64 << 20,
            disk_bytes: None,
            io: None,
            network: None,
        }
    }
}

impl Resources {
    /// Adds `other` to `self` (a scenario's containers together): sizes and rates are summed;
    /// a direction or throttle one side leaves unset stays what the other asked.
    pub fn add(&mut self, other: &Resources) {
        fn sum(a: Option<u64>, b: Option<u64>) -> Option<u64> {
            match (a, b) {
                (Some(a), Some(b)) => Some(a.saturating_add(b)),
                (a, b) => a.or(b),
            }
        }
        self.cpu_millis = self.cpu_millis.saturating_add(other.cpu_millis);
        self.memory_bytes = self.memory_bytes.saturating_add(other.memory_bytes);
        self.pids = self.pids.saturating_add(other.pids);
        self.tmp_bytes = self.tmp_bytes.saturating_add(other.tmp_bytes);
        self.disk_bytes = sum(self.disk_bytes, other.disk_bytes);
        self.io = match (self.io.take(), &other.io) {
            (Some(a), Some(b)) => Some(IoRequest {
                read_bps: sum(a.read_bps, b.read_bps),
                write_bps: sum(a.write_bps, b.write_bps),
                read_iops: sum(a.read_iops, b.read_iops),
                write_iops: sum(a.write_iops, b.write_iops),
                weight: a.weight.max(b.weight),
            }),
            (a, b) => a.or_else(|| b.clone()),
        };
        self.network = match (self.network, other.network) {
            (Some(a), Some(b)) => Some(NetworkRequest {
                egress_bps: sum(a.egress_bps, b.egress_bps),
                ingress_bps: sum(a.ingress_bps, b.ingress_bps),
            }),
            (a, b) => a.or(b),
        };
    }

    /// Whole cores requested, if the request is a whole number of cores.
    pub fn whole_cores(&self) -> Option<u32> {
        (self.cpu_millis > 0 && self.cpu_millis.is_multiple_of(MILLI_PER_CPU))
            .then_some(self.cpu_millis / MILLI_PER_CPU)
    }
}

/// The disk IO the machine can give tests at once (on the disk behind their scratch areas);
/// `None`: not admitted against (unlimited).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IoCapacity {
    pub read_bps: Option<u64>,
    pub write_bps: Option<u64>,
    pub read_iops: Option<u64>,
    pub write_iops: Option<u64>,
}

/// What the machine can guarantee to tests at once, after the reserve for `psy` itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capacity {
    /// Milli-CPUs available to tests.
    pub cpu_millis: u32,
    /// Bytes of memory available to tests.
    pub memory_bytes: u64,
    /// Ids of the cores tests may use (for exclusive cpusets), e.g. `[0, 1]`.
    pub cores: Vec<u32>,
    /// Disk IO admitted at once: the sums of the attempts' `io` throttles stay within it.
    #[serde(default)]
    pub io: IoCapacity,
    /// Network bandwidth admitted at once: the sums of the attempts' `network` rates stay
    /// within it (`None` fields: not admitted against).
    #[serde(default)]
    pub network: NetworkRequest,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adding_sums_sizes_and_rates() {
        let mut a = Resources::default();
        let mut b = Resources {
            cpu_millis: 500,
            disk_bytes: Some(1 << 30),
            network: Some(NetworkRequest {
                egress_bps: Some(10),
                ingress_bps: None,
            }),
            ..Resources::default()
        };
        b.io = Some(IoRequest {
            write_bps: Some(100),
            ..IoRequest::default()
        });
        a.add(&b);
        a.add(&b);
        assert_eq!(a.cpu_millis, 2000);
        assert_eq!(a.memory_bytes, 3 * (512 << 20));
        assert_eq!(a.disk_bytes, Some(2 << 30));
        assert_eq!(a.network.unwrap().egress_bps, Some(20));
        assert_eq!(a.network.unwrap().ingress_bps, None);
        assert_eq!(a.io.unwrap().write_bps, Some(200));
    }

    #[test]
    fn whole_cores() {
        let mut r = Resources::default();
        assert_eq!(r.whole_cores(), Some(1));
        r.cpu_millis = 2500;
        assert_eq!(r.whole_cores(), None);
        r.cpu_millis = 0;
        assert_eq!(r.whole_cores(), None);
    }
}
