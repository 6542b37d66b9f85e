//! Resource vectors: what one attempt is charged, and what the machine and the user's caps allow.
//!
//! Under the exclusive CPU policy an attempt holding `k` whole cores takes `1000 * k` milli-cpus
//! out of the pool and fractional attempts share what is left, so "fractional millis <= 1000 *
//! cores not exclusively held" is the same linear constraint as "all millis <= 1000 * cores".
//! That lets both policies use one vector; only the CPU total differs.

use crate::{Job, Limits, PushError};
use psy_model::{Capacity, CpuPolicy, Resources, MILLI_PER_CPU};
use std::collections::BTreeSet;

/// Amounts of each packed resource (a charge, a total, or what is free).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Usage {
    /// Milli-cpus guaranteed by the machine.
    pub(crate) cpu: u64,
    /// Milli-cpus counted against `--cpus` (a request above the cap is charged the cap).
    pub(crate) capped_cpu: u64,
    pub(crate) memory: u64,
    pub(crate) jobs: u64,
    /// Guaranteed rates, summed like CPU: disk IO throttles (bytes and operations per second,
    /// read and write) and network bandwidth (egress, ingress), in [`RATE_NAMES`] order.
    pub(crate) io: [u64; RATES],
}

/// How many rate dimensions [`Usage::io`] has.
pub(crate) const RATES: usize = 6;

/// The manifest's name of each rate, for errors.
const RATE_NAMES: [&str; RATES] = [
    "io read-bps",
    "io write-bps",
    "io read-iops",
    "io write-iops",
    "network egress",
    "network ingress",
];

fn each(
    a: [u64; RATES],
    b: [u64; RATES],
    f: impl Fn(u64, u64) -> Option<u64>,
) -> Option<[u64; RATES]> {
    let mut out = [0; RATES];
    for (i, slot) in out.iter_mut().enumerate() {
        *slot = f(a[i], b[i])?;
    }
    Some(out)
}

impl Usage {
    pub(crate) fn plus(self, o: Usage) -> Usage {
        Usage {
            cpu: self.cpu.saturating_add(o.cpu),
            capped_cpu: self.capped_cpu.saturating_add(o.capped_cpu),
            memory: self.memory.saturating_add(o.memory),
            jobs: self.jobs.saturating_add(o.jobs),
            io: each(self.io, o.io, |a, b| Some(a.saturating_add(b))).unwrap_or_default(),
        }
    }

    /// `None` when any component would go negative.
    pub(crate) fn minus(self, o: Usage) -> Option<Usage> {
        Some(Usage {
            cpu: self.cpu.checked_sub(o.cpu)?,
            capped_cpu: self.capped_cpu.checked_sub(o.capped_cpu)?,
            memory: self.memory.checked_sub(o.memory)?,
            jobs: self.jobs.checked_sub(o.jobs)?,
            io: each(self.io, o.io, u64::checked_sub)?,
        })
    }

    pub(crate) fn fits_in(self, room: Usage) -> bool {
        self.cpu <= room.cpu
            && self.capped_cpu <= room.capped_cpu
            && self.memory <= room.memory
            && self.jobs <= room.jobs
            && self
                .io
                .iter()
                .zip(room.io)
                .all(|(need, room)| *need <= room)
    }
}

/// The totals attempts are packed into, and how a request is charged against them.
#[derive(Clone, Debug)]
pub(crate) struct Budget {
    pub(crate) total: Usage,
    policy: CpuPolicy,
    cpu_cap: Option<u64>,
    capacity_cpu: u32,
    cores: usize,
}

impl Budget {
    pub(crate) fn new(capacity: &Capacity, policy: CpuPolicy, limits: &Limits) -> Budget {
        let cores = capacity.cores.iter().collect::<BTreeSet<_>>().len();
        let cpu = match policy {
            CpuPolicy::Shared => u64::from(capacity.cpu_millis),
            CpuPolicy::Exclusive => {
                u64::from(capacity.cpu_millis).min(cores as u64 * u64::from(MILLI_PER_CPU))
            }
        };
        let cpu_cap = limits.cpu_cap_millis.map(|c| u64::from(c.max(1)));
        Budget {
            total: Usage {
                cpu,
                capped_cpu: cpu_cap.unwrap_or(u64::MAX),
                memory: capacity.memory_bytes,
                jobs: limits.max_jobs.map_or(u64::MAX, |j| j.max(1) as u64),
                io: rate_vector(
                    [
                        capacity.io.read_bps,
                        capacity.io.write_bps,
                        capacity.io.read_iops,
                        capacity.io.write_iops,
                        capacity.network.egress_bps,
                        capacity.network.ingress_bps,
                    ],
                    u64::MAX,
                ),
            },
            policy,
            cpu_cap,
            capacity_cpu: capacity.cpu_millis,
            cores,
        }
    }

    pub(crate) fn charge(&self, r: &Resources) -> Usage {
        let cpu = u64::from(r.cpu_millis);
        Usage {
            cpu,
            capped_cpu: self.cpu_cap.map_or(cpu, |cap| cpu.min(cap)),
            memory: r.memory_bytes,
            jobs: 1,
            io: {
                let io = r.io.clone().unwrap_or_default();
                let net = r.network.unwrap_or_default();
                rate_vector(
                    [
                        io.read_bps,
                        io.write_bps,
                        io.read_iops,
                        io.write_iops,
                        net.egress_bps,
                        net.ingress_bps,
                    ],
                    0,
                )
            },
        }
    }

    /// More than half of a resource: two such attempts can never overlap.
    pub(crate) fn is_heavy(&self, u: Usage) -> bool {
        let t = self.total;
        u.cpu.saturating_mul(2) > t.cpu
            || u.capped_cpu.saturating_mul(2) > t.capped_cpu
            || u.memory.saturating_mul(2) > t.memory
    }

    /// How big a request is, in milli core-equivalents, to rank attempts by area: its CPU, or
    /// its memory as a share of the machine converted to cores, whichever is larger, but at
    /// least one core, so that among attempts of up to one core the longest goes first.
    pub(crate) fn weight(&self, u: Usage) -> u64 {
        let cpu_total = self.total.cpu.min(self.total.capped_cpu);
        let memory = match self.total.memory {
            0 => 0,
            m => u128::from(u.memory) * u128::from(cpu_total) / u128::from(m),
        };
        let memory = u64::try_from(memory).unwrap_or(u64::MAX);
        u.cpu.max(memory).max(u64::from(MILLI_PER_CPU))
    }

    /// Whole cores to hold exclusively for this request, if any.
    pub(crate) fn exclusive_cores(&self, r: &Resources) -> Option<u32> {
        match self.policy {
            CpuPolicy::Exclusive => r.whole_cores(),
            CpuPolicy::Shared => None,
        }
    }

    /// The charge of `job`, or why it could never run even on an empty machine. Caps are not a
    /// reason: the charge is clamped to them (see [`Limits`]).
    pub(crate) fn admit(&self, job: &Job) -> Result<Usage, PushError> {
        let r = &job.resources;
        let key = job.key;
        if r.memory_bytes > self.total.memory {
            return Err(PushError::Memory {
                key,
                requested: r.memory_bytes,
                available: self.total.memory,
            });
        }
        if self.policy == CpuPolicy::Exclusive
            && u64::from(r.cpu_millis) > self.cores as u64 * u64::from(MILLI_PER_CPU)
        {
            return Err(PushError::Cores {
                key,
                requested: r.cpu_millis,
                available: self.cores,
            });
        }
        let charge = self.charge(r);
        for (i, name) in RATE_NAMES.iter().enumerate() {
            if charge.io[i] > self.total.io[i] {
                return Err(PushError::Rate {
                    key,
                    what: name,
                    requested: charge.io[i],
                    available: self.total.io[i],
                });
            }
        }
        if r.cpu_millis > self.capacity_cpu {
            return Err(PushError::Cpu {
                key,
                requested: r.cpu_millis,
                available: self.capacity_cpu,
            });
        }
        Ok(self.charge(r))
    }
}

/// A rate vector with `unset` where a value is `None`.
fn rate_vector(values: [Option<u64>; RATES], unset: u64) -> [u64; RATES] {
    values.map(|v| v.unwrap_or(unset))
}
