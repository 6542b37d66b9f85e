//! Refusing tests that could never start: a request larger than the whole machine would wait
//! in the queue forever.

use crate::error::{ConfigError, ScenarioExcess};
use crate::units::{format_cpus, format_size};
use psy_model::{Capacity, Resources, TestSpec};

/// Checks every test's request against what the machine offers to tests: CPU, memory, and the
/// IO and network rates the host admits against. A scenario's nodes are checked one by one,
/// then with its driver together (they run at once). The error names the first test (and
/// node) that cannot fit, the resource, its request and the capacity.
pub fn check_fits(tests: &[TestSpec], capacity: &Capacity) -> Result<(), ConfigError> {
    for test in tests {
        if let Some((dim, asked, available)) = too_big(&test.resources, capacity) {
            return Err(ConfigError::DoesNotFit {
                test: test.id.to_string(),
                origin: test.origin.clone(),
                resource: dim.resource,
                asked: dim.asked(asked),
                available: (dim.show)(available),
            });
        }
        for node in &test.nodes {
            if let Some((dim, asked, available)) = too_big(&node.resources, capacity) {
                return Err(ConfigError::NodeDoesNotFit {
                    test: test.id.to_string(),
                    node: node.name.clone(),
                    origin: node.origin.clone(),
                    asked: dim.asked(asked),
                    available: (dim.show)(available),
                });
            }
        }
        if !test.is_scenario() {
            continue;
        }
        if let Some((dim, asked, available)) = too_big(&test.footprint(), capacity) {
            let parts = std::iter::once(("driver", &test.resources))
                .chain(test.nodes.iter().map(|n| (n.name.as_str(), &n.resources)))
                .filter_map(|(name, r)| (dim.get)(r).map(|n| format!("{name} {}", (dim.show)(n))))
                .collect::<Vec<_>>()
                .join(", ");
            return Err(ConfigError::ScenarioDoesNotFit(Box::new(ScenarioExcess {
                test: test.id.to_string(),
                origin: test.origin.clone(),
                nodes: test.nodes.len(),
                asked: dim.asked(asked),
                parts,
                available: (dim.show)(available),
            })));
        }
    }
    Ok(())
}

/// Refuses, when psy does not run as root, tests asking for what only root can set up, before
/// anything runs (they would otherwise each fail as they start). The error names the first such
/// test (and node) and the key.
pub fn check_privileges(tests: &[TestSpec], root: bool) -> Result<(), ConfigError> {
    if root {
        return Ok(());
    }
    for test in tests {
        if let Some((key, what)) = needs_root(&test.resources, !test.volumes.is_empty()) {
            return Err(ConfigError::NeedsRoot {
                test: test.id.to_string(),
                origin: test.origin.clone(),
                key: key.unwrap_or("[[test.volume]]"),
                what,
            });
        }
        for node in &test.nodes {
            if let Some((key, what)) = needs_root(&node.resources, !node.volumes.is_empty()) {
                return Err(ConfigError::NodeNeedsRoot {
                    test: test.id.to_string(),
                    node: node.name.clone(),
                    origin: node.origin.clone(),
                    key: key.unwrap_or("[[test.node.volume]]"),
                    what,
                });
            }
        }
        if test.is_scenario() {
            return Err(ConfigError::NeedsRoot {
                test: test.id.to_string(),
                origin: test.origin.clone(),
                key: "[[test.node]]",
                what: "a private network for its nodes",
            });
        }
    }
    Ok(())
}

/// The key (`None`: the volumes) of the first request only root can set up, and what it needs.
fn needs_root(r: &Resources, volumes: bool) -> Option<(Option<&'static str>, &'static str)> {
    if r.disk_bytes.is_some() {
        Some((Some("disk"), "a filesystem of its own on a loop device"))
    } else if volumes {
        Some((None, "filesystems on loop devices"))
    } else if r.network.is_some() {
        Some((Some("network"), "a shaped interface of its own"))
    } else {
        None
    }
}

/// One quantity admission compares with the machine's.
struct Dimension {
    /// Its name in messages (`CPU`, `io read-bps`).
    resource: &'static str,
    /// What a request asks (`None`: nothing, so it always fits).
    get: fn(&Resources) -> Option<u64>,
    /// What the machine gives tests (`None`: not admitted against).
    capacity: fn(&Capacity) -> Option<u64>,
    /// An amount for people: `4 CPUs`, `3GiB`, `100MiB/s`.
    show: fn(u64) -> String,
    /// Said after a request's amount (` of memory`).
    of: bool,
}

impl Dimension {
    fn asked(&self, amount: u64) -> String {
        match self.of {
            true => format!("{} of {}", (self.show)(amount), self.resource),
            false => (self.show)(amount),
        }
    }
}

const DIMENSIONS: &[Dimension] = &[
    Dimension {
        resource: "CPU",
        get: |r| Some(u64::from(r.cpu_millis)),
        capacity: |c| Some(u64::from(c.cpu_millis)),
        show: cpus,
        of: false,
    },
    Dimension {
        resource: "memory",
        get: |r| Some(r.memory_bytes),
        capacity: |c| Some(c.memory_bytes),
        show: format_size,
        of: true,
    },
    Dimension {
        resource: "io read-bps",
        get: |r| r.io.as_ref()?.read_bps,
        capacity: |c| c.io.read_bps,
        show: bytes_per_second,
        of: true,
    },
    Dimension {
        resource: "io write-bps",
        get: |r| r.io.as_ref()?.write_bps,
        capacity: |c| c.io.write_bps,
        show: bytes_per_second,
        of: true,
    },
    Dimension {
        resource: "io read-iops",
        get: |r| r.io.as_ref()?.read_iops,
        capacity: |c| c.io.read_iops,
        show: operations_per_second,
        of: true,
    },
    Dimension {
        resource: "io write-iops",
        get: |r| r.io.as_ref()?.write_iops,
        capacity: |c| c.io.write_iops,
        show: operations_per_second,
        of: true,
    },
    Dimension {
        resource: "network egress",
        get: |r| r.network?.egress_bps,
        capacity: |c| c.network.egress_bps,
        show: format_rate,
        of: true,
    },
    Dimension {
        resource: "network ingress",
        get: |r| r.network?.ingress_bps,
        capacity: |c| c.network.ingress_bps,
        show: format_rate,
        of: true,
    },
];

/// The first quantity of `r` above the machine's, with the request and the capacity.
fn too_big(r: &Resources, capacity: &Capacity) -> Option<(&'static Dimension, u64, u64)> {
    DIMENSIONS
        .iter()
        .find_map(|dim| match ((dim.get)(r), (dim.capacity)(capacity)) {
            (Some(asked), Some(available)) if asked > available => Some((dim, asked, available)),
            _ => None,
        })
}

fn bytes_per_second(n: u64) -> String {
    format!("{}/s", format_size(n))
}

fn operations_per_second(n: u64) -> String {
    format!("{n} IO/s")
}

/// `100Mbit/s`, `1.5Gbit/s`.
fn format_rate(bits: u64) -> String {
    let (value, unit) = [(1e12, "Tbit"), (1e9, "Gbit"), (1e6, "Mbit"), (1e3, "kbit")]
        .into_iter()
        .find(|(scale, _)| bits as f64 >= *scale)
        .map_or((bits as f64, "bit"), |(scale, unit)| {
            (bits as f64 / scale, unit)
        });
    let value = format!("{value:.2}");
    let value = value.trim_end_matches('0').trim_end_matches('.');
    format!("{value}{unit}/s")
}

fn cpus(millis: u64) -> String {
    let n = format_cpus(u32::try_from(millis).unwrap_or(u32::MAX));
    if n == "1" {
        "1 CPU".into()
    } else {
        format!("{n} CPUs")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use psy_model::{NetworkRequest, Resources, TestId};
    use std::time::Duration;

    fn spec(id: &str, cpu_millis: u32, memory_bytes: u64) -> TestSpec {
        TestSpec {
            id: TestId(id.into()),
            name: id.into(),
            variant: None,
            command: vec!["true".into()],
            cwd: "/".into(),
            env: Default::default(),
            timeout: Duration::from_secs(1),
            retries: 0,
            resources: Resources {
                cpu_millis,
                memory_bytes,
                ..Resources::default()
            },
            tags: vec![],
            origin: "psyduck.toml:3".into(),
            volumes: Vec::new(),
            sandbox: Default::default(),
            group: None,
            adapter: None,
            labels: Default::default(),
            nodes: Vec::new(),
            warm: None,
        }
    }

    fn node(name: &str, cpu_millis: u32, memory_bytes: u64) -> psy_model::NodeSpec {
        psy_model::NodeSpec {
            name: name.into(),
            command: vec!["sleep".into(), "1".into()],
            cwd: "/".into(),
            env: Default::default(),
            resources: Resources {
                cpu_millis,
                memory_bytes,
                ..Resources::default()
            },
            volumes: Vec::new(),
            sandbox: Default::default(),
            ready: None,
            ready_timeout: Duration::from_secs(1),
            exit_fails_test: false,
            origin: format!("psyduck.toml:1{}", name.len()),
        }
    }

    fn two_cpus() -> Capacity {
        Capacity {
            cpu_millis: 2000,
            memory_bytes: 4 << 30,
            cores: vec![0, 1],
            io: Default::default(),
            network: Default::default(),
        }
    }

    #[test]
    fn a_scenario_fits_only_with_its_driver_and_all_nodes_together() {
        let mut etcd = spec("etcd-3", 500, 1 << 20);
        etcd.nodes = vec![node("n1", 500, 1 << 20), node("n2", 500, 1 << 20)];
        check_fits(&[etcd.clone()], &two_cpus()).unwrap();
        etcd.resources.cpu_millis = 1000;
        etcd.nodes.push(node("n3", 1000, 1 << 20));
        let err = check_fits(&[etcd.clone()], &two_cpus()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "test \"etcd-3\" (psyduck.toml:3): its driver and 3 nodes ask for 3 CPUs together \
             (driver 1 CPU, n1 0.5 CPUs, n2 0.5 CPUs, n3 1 CPU) but this machine has only 2 CPUs for tests"
        );
        // Memory, and the singular.
        let mut one = spec("pg", 1000, 3 << 30);
        one.nodes = vec![node("primary", 1000, 2 << 30)];
        let err = check_fits(&[one], &two_cpus()).unwrap_err().to_string();
        assert!(
            err.contains(
                "its driver and 1 node ask for 5GiB of memory together (driver 3GiB, primary 2GiB)"
            ),
            "{err}"
        );
    }

    #[test]
    fn a_node_too_big_on_its_own_is_named() {
        let mut test = spec("wide", 500, 1 << 20);
        test.nodes = vec![node("n1", 500, 1 << 20), node("big", 3000, 1 << 20)];
        let err = check_fits(&[test], &two_cpus()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "test \"wide\", node \"big\" (psyduck.toml:13) asks for 3 CPUs but this machine has only 2 CPUs for tests"
        );
    }

    #[test]
    fn names_the_test_resource_request_and_capacity() {
        let capacity = Capacity {
            cpu_millis: 1500,
            memory_bytes: 1 << 30,
            cores: vec![0, 1],
            io: Default::default(),
            network: Default::default(),
        };
        assert!(check_fits(&[spec("ok", 1500, 1 << 30)], &capacity).is_ok());
        let err = check_fits(
            &[spec("ok", 500, 1 << 20), spec("big@debug", 4000, 1 << 20)],
            &capacity,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "test \"big@debug\" (psyduck.toml:3) asks for 4 CPUs but this machine has only 1.5 CPUs for tests"
        );
        let err = check_fits(&[spec("fat", 1000, 3 << 30)], &capacity).unwrap_err();
        assert_eq!(
            err.to_string(),
            "test \"fat\" (psyduck.toml:3) asks for 3GiB of memory but this machine has only 1GiB for tests"
        );
    }

    #[test]
    fn network_rates_above_the_host_are_refused() {
        let capacity = Capacity {
            cpu_millis: 2000,
            memory_bytes: 1 << 30,
            cores: vec![0, 1],
            io: Default::default(),
            network: NetworkRequest {
                egress_bps: Some(1_000_000_000),
                ingress_bps: None,
            },
        };
        let mut test = spec("net", 1000, 1 << 20);
        test.resources.network = Some(NetworkRequest {
            egress_bps: Some(1_500_000_000),
            ingress_bps: Some(50_000_000_000),
        });
        let err = check_fits(&[test.clone()], &capacity).unwrap_err();
        assert_eq!(
            err.to_string(),
            "test \"net\" (psyduck.toml:3) asks for 1.5Gbit/s of network egress but this machine has only 1Gbit/s for tests"
        );
        // Unset host capacity: not admitted against.
        test.resources.network = Some(NetworkRequest {
            egress_bps: Some(100_000_000),
            ingress_bps: Some(50_000_000_000),
        });
        assert!(check_fits(&[test], &capacity).is_ok());
    }

    #[test]
    fn root_only_requests_are_refused_without_root() {
        let plain = spec("plain", 1000, 1 << 20);
        let mut disk = spec("disk", 1000, 1 << 20);
        disk.resources.disk_bytes = Some(1 << 30);
        let mut volume = spec("volume", 1000, 1 << 20);
        volume.volumes.push(psy_model::VolumeSpec {
            name: "data".into(),
            size_bytes: 1 << 30,
            path: "/tmp/data".into(),
        });
        let mut net = spec("net", 1000, 1 << 20);
        net.resources.network = Some(NetworkRequest::default());
        for (test, key) in [
            (&disk, "`disk`"),
            (&volume, "`[[test.volume]]`"),
            (&net, "`network`"),
        ] {
            let tests = [plain.clone(), test.clone()];
            check_privileges(&tests, true).unwrap();
            let e = check_privileges(&tests, false).unwrap_err().to_string();
            let expected = format!("test \"{}\" (psyduck.toml:3) asks for {key}", test.id);
            assert!(e.starts_with(&expected) && e.contains("needs root"), "{e}");
        }
        check_privileges(&[plain], false).unwrap();
    }

    #[test]
    fn root_only_requests_of_nodes_are_refused_without_root() {
        let mut scenario = spec("s", 1000, 1 << 20);
        scenario.nodes = vec![node("n1", 1000, 1 << 20)];
        let e = check_privileges(&[scenario.clone()], false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("a private network for its nodes"), "{e}");
        scenario.nodes[0].volumes.push(psy_model::VolumeSpec {
            name: "data".into(),
            size_bytes: 1 << 30,
            path: "/data".into(),
        });
        check_privileges(&[scenario.clone()], true).unwrap();
        let e = check_privileges(&[scenario], false)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "test \"s\", node \"n1\" (psyduck.toml:12) asks for `[[test.node.volume]]` (filesystems on loop devices), which needs root: run psy as root, or remove `[[test.node.volume]]` from the node"
        );
    }
}
