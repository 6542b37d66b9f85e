//! Parsing, precedence (built-in < defaults < test < variant), variants and test ids.

use crate::{parse, parse_in};
use psy_config::{DiscoverSource, PytestPer, DEFAULT_TIMEOUT};
use psy_model::{CpuPolicy, Resources, TestId};
use std::path::Path;
use std::time::Duration;

const SUITE: &str = r#"
[defaults]
timeout = "60s"
retries = 1
cpus = 0.5
memory = "256MiB"

[host]
reserve-cpus = 0.25
reserve-memory = "1G"
cpu-policy = "exclusive"

[[test]]
name = "smoke"
command = ["sh", "-c", "echo {name}"]
env = { K = "v", MODE = "test" }
memory = "1GiB"
pids = 100
tags = ["fast"]

[[test]]
name = "plain"
command = ["true"]

[[variant]]
name = "debug"
env = { MODE = "debug" }
args = ["--verbose"]
cpus = 2

[[variant]]
name = "release"
timeout = 5
"#;

#[test]
fn parses_every_section() {
    let m = parse(SUITE).unwrap();
    assert_eq!(m.host.reserve_cpu_millis, 250);
    assert_eq!(m.host.reserve_memory_bytes, 1 << 30);
    assert_eq!(m.host.cpu_policy, CpuPolicy::Exclusive);
    assert_eq!(m.host.rootfs, None);
    assert!(!m.host.require_guarantees);
    let strict = parse("[host]\nrequire-guarantees = true\n").unwrap();
    assert!(strict.host.require_guarantees);
    assert!(!m.run.fail_fast);
    assert!(parse("[run]\nfail-fast = true\n").unwrap().run.fail_fast);
    assert_eq!(m.defaults.timeout, Some(Duration::from_secs(60)));
    assert_eq!(m.tests.len(), 2);
    assert_eq!(m.tests[0].origin, "psyduck.toml:13");
    assert_eq!(m.tests[1].origin, "psyduck.toml:21");
    assert_eq!(m.tests[0].cwd, Path::new("/"));
    assert_eq!(
        m.variants
            .iter()
            .map(|v| v.name.as_str())
            .collect::<Vec<_>>(),
        ["debug", "release"]
    );
}

#[test]
fn precedence_and_variants() {
    let specs = parse(SUITE).unwrap().expand(&[]).unwrap();
    let ids: Vec<&str> = specs.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "smoke@debug",
            "smoke@release",
            "plain@debug",
            "plain@release"
        ]
    );

    let smoke_debug = &specs[0];
    assert_eq!(smoke_debug.name, "smoke");
    assert_eq!(smoke_debug.variant.as_deref(), Some("debug"));
    assert_eq!(smoke_debug.command, ["sh", "-c", "echo smoke", "--verbose"]);
    assert_eq!(smoke_debug.env["MODE"], "debug", "variant env wins");
    assert_eq!(smoke_debug.env["K"], "v");
    assert_eq!(
        smoke_debug.timeout,
        Duration::from_secs(60),
        "from [defaults]"
    );
    assert_eq!(smoke_debug.retries, 1);
    assert_eq!(
        smoke_debug.resources,
        Resources {
            cpu_millis: 2000,
            memory_bytes: 1 << 30,
            pids: 100,
            tmp_bytes: 64 << 20,
            disk_bytes: None,
            io: None,
            network: None,
        },
        "variant cpus over defaults, test memory/pids over defaults, built-in tmp"
    );
    assert_eq!(smoke_debug.tags, ["fast"]);
    assert_eq!(smoke_debug.origin, "psyduck.toml:13");

    let plain_release = &specs[3];
    assert_eq!(plain_release.command, ["true"]);
    assert_eq!(plain_release.env.get("MODE"), None);
    assert_eq!(
        plain_release.timeout,
        Duration::from_secs(5),
        "variant timeout wins"
    );
    assert_eq!(plain_release.resources.cpu_millis, 500);
    assert_eq!(plain_release.resources.memory_bytes, 256 << 20);
}

#[test]
fn selecting_variants() {
    let m = parse(SUITE).unwrap();
    let specs = m.expand(&["release".into()]).unwrap();
    let ids: Vec<&str> = specs.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["smoke@release", "plain@release"]);
    assert_eq!(
        m.expand(&["fast".into()]).unwrap_err().to_string(),
        "unknown variant \"fast\" (defined: debug, release)"
    );
}

#[test]
fn without_variants_each_test_runs_once() {
    let m = parse("[[test]]\nname = \"a\"\ncommand = [\"true\"]\n").unwrap();
    let specs = m.expand(&[]).unwrap();
    assert_eq!(specs.len(), 1);
    assert_eq!(specs[0].id, TestId("a".into()));
    assert_eq!(specs[0].variant, None);
    assert_eq!(specs[0].timeout, DEFAULT_TIMEOUT);
    assert_eq!(specs[0].retries, 0);
    assert_eq!(specs[0].resources, Resources::default());
    assert_eq!(
        m.expand(&["debug".into()]).unwrap_err().to_string(),
        "unknown variant \"debug\" (this manifest defines no variants)"
    );
}

#[test]
fn duplicate_ids_name_both_origins() {
    let text = "[[test]]\nname = \"a\"\ncommand = [\"true\"]\n\n[[test]]\nname = \"b\"\ncommand = [\"true\"]\n\n[[test]]\nname = \"a\"\ncommand = [\"false\"]\n";
    let err = parse(text).unwrap().expand(&[]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "duplicate test id \"a\": defined at psyduck.toml:1 and again at psyduck.toml:9"
    );
}

#[test]
fn cwd_is_relative_to_the_manifest() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("sub/dir")).unwrap();
    std::fs::create_dir_all(dir.path().join("root")).unwrap();
    let m = parse_in(
        dir.path(),
        "[host]\nrootfs = \"root\"\n[[test]]\nname = \"a\"\ncommand = [\"true\"]\ncwd = \"sub/dir\"\n",
    )
    .unwrap();
    assert_eq!(m.tests[0].cwd, dir.path().join("sub/dir"));
    assert_eq!(m.host.rootfs, Some(dir.path().join("root")));
    assert_eq!(m.expand(&[]).unwrap()[0].cwd, dir.path().join("sub/dir"));
}

#[test]
fn discover_options() {
    let m = parse(
        "[[discover]]\nnextest = true\n[[discover]]\nnextest = { workspace = true, args = [\"-E\", \"test(x)\"] }\n\
         [[discover]]\npytest = { args = [\"tests/\"], per = \"file\" }\n[[discover]]\npytest = true\ncpus = 0.5\n",
    )
    .unwrap();
    let kinds: Vec<&str> = m.discover.iter().map(|d| d.source.kind()).collect();
    assert_eq!(kinds, ["nextest", "nextest", "pytest", "pytest"]);
    let DiscoverSource::Nextest(n) = &m.discover[1].source else {
        panic!()
    };
    assert!(n.workspace);
    assert_eq!(n.args, ["-E", "test(x)"]);
    let DiscoverSource::Pytest(p) = &m.discover[2].source else {
        panic!()
    };
    assert_eq!(
        (p.per, p.python.as_str(), p.args.as_slice()),
        (PytestPer::File, "python3", &["tests/".to_string()][..])
    );
    assert_eq!(m.discover[3].settings.cpu_millis, Some(500));
    assert_eq!(m.discover[3].origin, "psyduck.toml:7 (discover pytest)");
}

#[test]
fn loads_from_disk_with_an_absolute_dir() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("psyduck.toml");
    std::fs::write(&path, "[[test]]\nname = \"a\"\ncommand = [\"true\"]\n").unwrap();
    let m = psy_config::load(&path).unwrap();
    assert_eq!(m.dir, std::fs::canonicalize(dir.path()).unwrap());
    assert!(m.dir.is_absolute());
    assert_eq!(m.path, path);
    std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
    assert_eq!(
        psy_config::find_manifest(&dir.path().join("a/b")),
        Some(path)
    );
}

#[test]
fn io_limits_merge_key_by_key_across_levels() {
    let m = parse(
        r#"
[defaults]
io = { read-bps = "100MiB", write-bps = "50MiB" }

[[test]]
name = "writer"
command = ["true"]
io = { write-bps = "10MiB", write-iops = 200 }

[[test]]
name = "plain"
command = ["true"]

[[variant]]
name = "slow-disk"
io = { read-iops = 100, weight = 50 }
"#,
    )
    .unwrap();
    let tests = crate::expand(&m).unwrap();
    let io = |id: &str| {
        tests
            .iter()
            .find(|t| t.id.as_str() == id)
            .unwrap()
            .resources
            .io
            .clone()
            .unwrap()
    };
    let writer = io("writer@slow-disk");
    assert_eq!(writer.read_bps, Some(100 << 20), "from [defaults]");
    assert_eq!(writer.write_bps, Some(10 << 20), "the test over [defaults]");
    assert_eq!(writer.write_iops, Some(200));
    assert_eq!(writer.read_iops, Some(100), "from the variant");
    assert_eq!(writer.weight, Some(50));
    let plain = io("plain@slow-disk");
    assert_eq!(
        (plain.read_bps, plain.write_bps, plain.write_iops),
        (Some(100 << 20), Some(50 << 20), None)
    );
}

#[test]
fn no_io_key_means_no_io_limits() {
    let m = parse("[[test]]\nname = \"t\"\ncommand = [\"true\"]\n").unwrap();
    assert_eq!(crate::expand(&m).unwrap()[0].resources.io, None);
}

#[test]
fn network_rates_merge_key_by_key_and_host_capacity_is_read() {
    let m = parse(
        r#"
[host]
network = { egress = "10Gbit", ingress = "10Gbit" }

[defaults]
network = { egress = "100Mbit" }

[[test]]
name = "client"
command = ["true"]
network = { ingress = "1.5Gbit" }

[[test]]
name = "local"
command = ["true"]
"#,
    )
    .unwrap();
    assert_eq!(m.host.network.egress_bps, Some(10_000_000_000));
    let tests = crate::expand(&m).unwrap();
    let net = |id: &str| {
        tests
            .iter()
            .find(|t| t.id.as_str() == id)
            .unwrap()
            .resources
            .network
    };
    let client = net("client").unwrap();
    assert_eq!(client.egress_bps, Some(100_000_000), "from [defaults]");
    assert_eq!(client.ingress_bps, Some(1_500_000_000));
    assert_eq!(net("local").unwrap().ingress_bps, None);

    let m = parse("[[test]]\nname = \"t\"\ncommand = [\"true\"]\n").unwrap();
    assert_eq!(crate::expand(&m).unwrap()[0].resources.network, None);
}
