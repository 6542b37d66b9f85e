//! Refusing tests that could never start: a request larger than the whole machine would wait
//! in the queue forever.

use crate::error::ConfigError;
use crate::units::{format_cpus, format_size};
use psy_model::{Capacity, TestSpec};

/// Checks every test's CPU and memory request against what the machine offers to tests.
/// The error names the first test that cannot fit, the resource, its request and the capacity.
pub fn check_fits(tests: &[TestSpec], capacity: &Capacity) -> Result<(), ConfigError> {
    for test in tests {
        let r = &test.resources;
        let too_big = if r.cpu_millis > capacity.cpu_millis {
            Some(("CPU", cpus(r.cpu_millis), cpus(capacity.cpu_millis)))
        } else if r.memory_bytes > capacity.memory_bytes {
            Some((
                "memory",
                format!("{} of memory", format_size(r.memory_bytes)),
                format_size(capacity.memory_bytes),
            ))
        } else {
            io_too_big(r, capacity).or_else(|| network_too_big(r, capacity))
        };
        if let Some((resource, asked, available)) = too_big {
            return Err(ConfigError::DoesNotFit {
                test: test.id.to_string(),
                origin: test.origin.clone(),
                resource,
                asked,
                available,
            });
        }
    }
    Ok(())
}

/// Refuses, when psy does not run as root, tests asking for what only root can set up, before
/// anything runs (they would otherwise each fail as they start). The error names the first such
/// test and the key.
pub fn check_privileges(tests: &[TestSpec], root: bool) -> Result<(), ConfigError> {
    if root {
        return Ok(());
    }
    for test in tests {
        let r = &test.resources;
        let needs = if r.disk_bytes.is_some() {
            Some(("disk", "a filesystem of its own on a loop device"))
        } else if !test.volumes.is_empty() {
            Some(("[[test.volume]]", "filesystems on loop devices"))
        } else if r.network.is_some() {
            Some(("network", "a shaped interface of its own"))
        } else {
            None
        };
        if let Some((key, what)) = needs {
            return Err(ConfigError::NeedsRoot {
                test: test.id.to_string(),
                origin: test.origin.clone(),
                key,
                what,
            });
        }
    }
    Ok(())
}

/// The first IO throttle above the host's IO capacity (`[host] io`), if any.
fn io_too_big(
    r: &psy_model::Resources,
    capacity: &Capacity,
) -> Option<(&'static str, String, String)> {
    let io = r.io.as_ref()?;
    let c = &capacity.io;
    let show = |n: u64, bytes: bool| {
        if bytes {
            format!("{}/s", format_size(n))
        } else {
            format!("{n} IO/s")
        }
    };
    [
        ("io read-bps", io.read_bps, c.read_bps, true),
        ("io write-bps", io.write_bps, c.write_bps, true),
        ("io read-iops", io.read_iops, c.read_iops, false),
        ("io write-iops", io.write_iops, c.write_iops, false),
    ]
    .into_iter()
    .find_map(|(what, asked, available, bytes)| match (asked, available) {
        (Some(a), Some(c)) if a > c => Some((
            what,
            format!("{} of {what}", show(a, bytes)),
            show(c, bytes),
        )),
        _ => None,
    })
}

/// The first network rate above the host's network capacity (`[host] network`), if any.
fn network_too_big(
    r: &psy_model::Resources,
    capacity: &Capacity,
) -> Option<(&'static str, String, String)> {
    let n = r.network.as_ref()?;
    let c = &capacity.network;
    [
        ("network egress", n.egress_bps, c.egress_bps),
        ("network ingress", n.ingress_bps, c.ingress_bps),
    ]
    .into_iter()
    .find_map(|(what, asked, available)| match (asked, available) {
        (Some(a), Some(c)) if a > c => Some((
            what,
            format!("{} of {what}", format_rate(a)),
            format_rate(c),
        )),
        _ => None,
    })
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

fn cpus(millis: u32) -> String {
    let n = format_cpus(millis);
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
        }
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
}
