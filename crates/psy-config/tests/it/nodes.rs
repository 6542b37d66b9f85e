//! `[[test.node]]`: multi-node scenarios resolve `[defaults]` → test → variant → node, and
//! every mistake in a node is one `file:line:col: key: problem` line.

use crate::{error, expand, parse, parse_in, project};
use psy_model::scenario::DEFAULT_READY_TIMEOUT;
use psy_model::ReadyProbe;
use std::path::Path;
use std::time::Duration;

const ETCD: &str = r#"[defaults]
memory = "256MiB"
pids = 100

[[test]]
name = "etcd"
command = ["./drive.sh"]
cpus = 2
env = { CLUSTER = "c1", ROLE = "driver" }

[[test.node]]
name = "n1"
command = ["etcd", "--name", "n1"]
cpus = 1
memory = "512MiB"
env = { ROLE = "member" }
ready = { tcp = 2379 }
ready-timeout = "30s"
exit-fails-test = true
[[test.node.volume]]
name = "data"
size = "64MiB"
path = "/data"

[[test.node]]
name = "n2"
command = ["etcd", "--name", "n2"]
cwd = "/tmp"
ready = { command = ["etcdctl", "endpoint", "health"] }
"#;

#[test]
fn nodes_take_defaults_then_the_test_and_their_own_keys_win() {
    let tests = expand(&parse(ETCD).unwrap()).unwrap();
    let [test] = tests.as_slice() else {
        panic!("one test: {tests:?}")
    };
    assert!(test.is_scenario());
    let names: Vec<&str> = test.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["n1", "n2"]);
    let (n1, n2) = (&test.nodes[0], &test.nodes[1]);

    assert_eq!(n1.command, ["etcd", "--name", "n1"]);
    assert_eq!(n1.resources.cpu_millis, 1000, "its own cpus win");
    assert_eq!(n1.resources.memory_bytes, 512 << 20, "its own memory wins");
    assert_eq!(n1.resources.pids, 100, "from [defaults]");
    assert_eq!(n2.resources.cpu_millis, 2000, "from its test");
    assert_eq!(n2.resources.memory_bytes, 256 << 20, "from [defaults]");

    assert_eq!(n1.env["ROLE"], "member");
    assert_eq!(n1.env["CLUSTER"], "c1", "the test's env is inherited");
    assert_eq!(n2.env["ROLE"], "driver");

    assert_eq!(n1.ready, Some(ReadyProbe::Tcp(2379)));
    assert_eq!(n1.ready_timeout, Duration::from_secs(30));
    assert!(n1.exit_fails_test);
    assert_eq!(
        n2.ready,
        Some(ReadyProbe::Command(vec![
            "etcdctl".into(),
            "endpoint".into(),
            "health".into()
        ]))
    );
    assert_eq!(n2.ready_timeout, DEFAULT_READY_TIMEOUT);
    assert!(!n2.exit_fails_test);

    assert_eq!(n1.cwd, Path::new("/"), "the test's cwd");
    assert_eq!(n2.cwd, Path::new("/tmp"));
    assert_eq!(n1.volumes.len(), 1);
    assert_eq!(n1.volumes[0].path, Path::new("/data"), "need not exist");
    assert!(n2.volumes.is_empty());
    assert_eq!(n1.origin, "psyduck.toml:11");
    assert_eq!(n2.origin, "psyduck.toml:25");

    // Driver plus nodes: 2 + 1 + 2 CPUs.
    assert_eq!(test.footprint().cpu_millis, 5000);
    assert_eq!(test.resources.cpu_millis, 2000, "the driver's own");
}

#[test]
fn a_variant_applies_to_nodes_under_their_own_keys() {
    let text = format!(
        "{ETCD}[[variant]]\nname = \"big\"\nmemory = \"1GiB\"\npids = 300\nenv = {{ ROLE = \"v\", MODE = \"big\" }}\nargs = [\"--fast\"]\n"
    );
    let tests = expand(&parse(&text).unwrap()).unwrap();
    let test = &tests[0];
    assert_eq!(test.id.to_string(), "etcd@big");
    let (n1, n2) = (&test.nodes[0], &test.nodes[1]);
    assert_eq!(n1.resources.memory_bytes, 512 << 20, "the node's own wins");
    assert_eq!(n2.resources.memory_bytes, 1 << 30, "the variant's");
    assert_eq!(n1.resources.pids, 300);
    assert_eq!(n1.env["MODE"], "big");
    assert_eq!(n1.env["ROLE"], "member", "the node's own env wins");
    assert_eq!(n2.env["ROLE"], "v");
    assert_eq!(
        n1.command,
        ["etcd", "--name", "n1"],
        "variant args are the driver's"
    );
    assert_eq!(test.command, ["./drive.sh", "--fast"]);
}

#[test]
fn a_plain_test_has_no_nodes() {
    let tests = expand(&parse("[[test]]\nname = \"a\"\ncommand = [\"true\"]\ncpus = 1\n").unwrap())
        .unwrap();
    assert!(!tests[0].is_scenario());
    assert_eq!(tests[0].footprint(), tests[0].resources);
}

#[test]
fn discovered_tests_each_get_the_entrys_nodes() {
    let dir = project(&[("t/a.sh", "", true), ("t/b.sh", "", true)]);
    let manifest = parse_in(
        dir.path(),
        "[[discover]]\nglob = \"t/*.sh\"\ncommand = [\"{path}\"]\nenv = { A = \"1\" }\n\
         [[discover.node]]\nname = \"db\"\ncommand = [\"postgres\"]\n",
    )
    .unwrap();
    let tests = expand(&manifest).unwrap();
    assert_eq!(tests.len(), 2);
    for test in &tests {
        assert_eq!(test.nodes.len(), 1, "{}", test.id);
        assert_eq!(test.nodes[0].name, "db");
        assert_eq!(test.nodes[0].env["A"], "1");
        assert_eq!(test.nodes[0].origin, "psyduck.toml:5");
    }
}

/// The manifest is refused with a message starting with `prefix`.
#[track_caller]
fn refused_with(text: &str, prefix: &str) {
    let e = error(text);
    assert!(e.starts_with(prefix), "{e}");
}

/// The manifest is refused with a message containing `part`.
#[track_caller]
fn refused_naming(text: &str, part: &str) {
    let e = error(text);
    assert!(e.contains(part), "{e}");
}

/// `ETCD`'s first node with `extra` appended to its keys.
fn node_with(extra: &str) -> String {
    ETCD.replacen(
        "exit-fails-test = true\n",
        &format!("exit-fails-test = true\n{extra}"),
        1,
    )
}

#[test]
fn keys_of_the_test_are_refused_on_a_node() {
    assert_eq!(
        error(&node_with("timeout = \"10s\"\n")),
        "psyduck.toml:20:11: test[0].node[0].timeout: not allowed on a node: `timeout` belongs to the test (set it in its [[test]] or [defaults])"
    );
    refused_with(
        &node_with("retries = 2\n"),
        "psyduck.toml:20:11: test[0].node[0].retries: not allowed on a node",
    );
    refused_with(
        &node_with("labels = { arch = \"x86_64\" }\n"),
        "psyduck.toml:20:10: test[0].node[0].labels: not allowed on a node",
    );
    refused_naming(&node_with("tags = [\"x\"]\n"), "unknown field `tags`");
}

#[test]
fn node_names_are_checked() {
    let renamed = |name: &str| ETCD.replacen("name = \"n2\"", &format!("name = \"{name}\""), 1);
    assert_eq!(
        error(&renamed("N2")),
        "psyduck.toml:26:8: test[0].node[1].name: node name \"N2\": a lower-case letter, then lower-case letters, digits or '-'"
    );
    for bad in ["2n", "", "n_2", "n.2", "n 2"] {
        let e = error(&renamed(bad));
        assert!(e.contains("a lower-case letter"), "{bad:?}: {e}");
    }
    let long = "n".repeat(33);
    refused_naming(&renamed(&long), "33 characters long (at most 32)");
    assert!(parse(&renamed(&"n".repeat(32))).is_ok());
    refused_with(
        &renamed("driver"),
        "psyduck.toml:26:8: test[0].node[1].name: node name \"driver\" is reserved",
    );
    refused_with(
        &renamed("localhost"),
        "psyduck.toml:26:8: test[0].node[1].name: node name \"localhost\" is reserved for every container's own loopback",
    );
    assert_eq!(
        error(&renamed("n1")),
        "psyduck.toml:26:8: test[0].node[1].name: node \"n1\" is defined twice in this test (first at psyduck.toml:11)"
    );
    // The same name in two tests is fine.
    let two = format!("{ETCD}[[test]]\nname = \"b\"\ncommand = [\"true\"]\n[[test.node]]\nname = \"n1\"\ncommand = [\"x\"]\n");
    assert_eq!(expand(&parse(&two).unwrap()).unwrap().len(), 2);
}

#[test]
fn ready_probes_are_checked() {
    let ready = |value: &str| ETCD.replacen("ready = { tcp = 2379 }", value, 1);
    for port in ["0", "65536", "-1"] {
        let e = error(&ready(&format!("ready = {{ tcp = {port} }}")));
        assert!(
            e.starts_with("psyduck.toml:17:17: test[0].node[0].ready.tcp: invalid port")
                && e.contains("(expected 1 to 65535)"),
            "{port}: {e}"
        );
    }
    assert!(parse(&ready("ready = { tcp = 65535 }")).is_ok());
    refused_with(
        &ready("ready = { command = [] }"),
        "psyduck.toml:17:21: test[0].node[0].ready.command: empty ready command",
    );
    refused_naming(
        &ready("ready = { command = [\"\"] }"),
        "empty ready command",
    );
    refused_naming(
        &ready("ready = { tcp = 1, command = [\"x\"] }"),
        "ready.command: `tcp` and `command` at once",
    );
    refused_naming(
        &ready("ready = {}"),
        "test[0].node[0].ready: empty: use ready = { tcp = PORT }",
    );
    refused_naming(&ready("ready = { http = 80 }"), "unknown field `http`");
    refused_naming(
        &ETCD.replacen("ready-timeout = \"30s\"", "ready-timeout = 0", 1),
        "ready-timeout: timeout must be greater than zero",
    );
}

#[test]
fn commands_and_volumes_are_checked() {
    refused_with(
        &ETCD.replacen(
            "command = [\"etcd\", \"--name\", \"n1\"]",
            "command = []",
            1,
        ),
        "psyduck.toml:13:11: test[0].node[0].command: empty command",
    );
    refused_naming(
        &ETCD.replacen("command = [\"etcd\", \"--name\", \"n2\"]\n", "", 1),
        "test[0].node[1]: missing field `command`",
    );
    let volume = |path: &str| {
        format!(
            "{ETCD}[[test.node.volume]]\nname = \"logs\"\nsize = \"64MiB\"\npath = \"{path}\"\n"
        )
    };
    assert!(parse(&volume("/var/log/etcd")).is_ok());
    refused_with(
        &volume("logs"),
        "psyduck.toml:30:1: test[0].node[1].volume[0]: volume path \"logs\" must be absolute",
    );
    refused_naming(&volume("/a/../b"), "must be absolute (without '..')");
    refused_naming(
        &volume("/"),
        "volume path \"/\": / belongs to the container itself",
    );
    refused_naming(&volume("/proc/x"), "/proc belongs to the container itself");
    refused_naming(&volume("/dev"), "/dev belongs to the container itself");
    assert!(parse(&volume("/devices")).is_ok(), "not under /dev");
    let twice = ETCD.replacen(
        "path = \"/data\"\n",
        "path = \"/data\"\n[[test.node.volume]]\nname = \"data\"\nsize = \"64MiB\"\npath = \"/other\"\n",
        1,
    );
    refused_with(
        &twice,
        "psyduck.toml:24:1: test[0].node[0].volume[1]: two volumes are named \"data\"",
    );
}
