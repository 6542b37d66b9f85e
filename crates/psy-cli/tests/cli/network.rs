//! `network = { egress, ingress }` end to end (root): the test gets its own shaped `eth0` on the
//! run's bridge, the bridge is gone after the run, and rates beyond `[host] network` are refused.

use crate::support::{root, Project};

/// Bridges `psy<pid in hex>` whose psy is gone (other tests may have live ones).
fn orphan_bridges() -> Vec<String> {
    std::fs::read_dir("/sys/class/net")
        .unwrap()
        .flatten()
        .map(|l| l.file_name().to_string_lossy().into_owned())
        .filter(|name| {
            name.strip_prefix("psy")
                .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                .is_some_and(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists())
        })
        .collect()
}

#[test]
fn a_test_gets_its_own_shaped_interface() {
    if !root() {
        return;
    }
    let p = Project::new(
        r#"
[[test]]
name = "shaped"
command = ["sh", "-c", """ip -4 -o addr show eth0; tc qdisc show dev eth0
python3 -c 'import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
for _ in range(100): s.sendto(bytes(1000), ("10.213.255.255", 9))'"""]
network = { egress = "20Mbit", ingress = "50Mbit" }

[[test]]
name = "local"
command = ["sh", "-c", "ip -o link | cut -d: -f2"]
"#,
    );
    let (out, events) = p.run_json(&[]);
    out.code(0);
    let log = |name: &str| {
        let path = events.attempts(name)[0]["stdout_path"]
            .as_str()
            .unwrap()
            .to_string();
        std::fs::read_to_string(path).unwrap()
    };
    let shaped = log("shaped");
    assert!(shaped.contains("inet 10.213."), "{shaped}");
    assert!(
        shaped.contains("tbf") && shaped.contains("rate 20Mbit"),
        "{shaped}"
    );
    assert_eq!(log("local").split_whitespace().collect::<Vec<_>>(), ["lo"]);
    // What it sent on its interface is measured; a loopback-only test has no such figure.
    let sent = events.attempts("shaped")[0]["net_sent_bytes"]
        .as_u64()
        .unwrap();
    // 100 datagrams of 1,042 bytes on the wire; tbf may drop what overflows its queue.
    assert!((50_000..=110_000).contains(&sent), "{sent}");
    assert!(events.attempts("local")[0].get("net_sent_bytes").is_none());
    assert_eq!(
        orphan_bridges(),
        Vec::<String>::new(),
        "the run's bridge was removed"
    );
}

#[test]
fn rates_beyond_the_host_are_refused_before_anything_runs() {
    let p = Project::new(
        r#"
[host]
network = { egress = "100Mbit" }

[[test]]
name = "greedy"
command = ["true"]
network = { egress = "1Gbit" }
"#,
    );
    let (out, _) = p.run_json(&[]);
    out.code(2);
    assert!(
        out.stderr.contains("greedy") && out.stderr.contains("network egress"),
        "{out}"
    );
}
