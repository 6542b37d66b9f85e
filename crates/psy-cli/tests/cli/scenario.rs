//! Multi-node scenarios end to end (root): `psy run` brings the nodes up on a private network,
//! starts the driver once they are ready, serves `psy fault`, keeps each node's output and the
//! timeline, and two scenarios (or the host) cannot reach each other.

use crate::support::{root, Project};

const WEB: &str = r#"
[defaults]
cpus = 0.2
memory = "128MiB"

[[test]]
name = "web"
command = ["sh", "-c", """echo nodes=$PSY_NODES
python3 -c 'import urllib.request; print(urllib.request.urlopen("http://server:8080/").read().decode())'
psy fault kill server && echo killed
psy fault start server && echo started
python3 -c 'import urllib.request; print(urllib.request.urlopen("http://server:8080/").read().decode())'
"""]
timeout = "60s"

[[test.node]]
name = "server"
command = ["sh", "-c", """cat /tmp/www/index.html 2>/dev/null && echo previous life
mkdir -p /tmp/www && echo "hello from $(hostname)" > /tmp/www/index.html
cd /tmp/www && exec python3 -m http.server 8080"""]
ready = { tcp = 8080 }
[[test.node.volume]]
name = "www"
size = "16MiB"
path = "/tmp/www"

[[test.node]]
name = "idle"
command = ["sleep", "1000"]
"#;

#[test]
fn a_scenario_runs_its_nodes_serves_faults_and_keeps_their_logs() {
    if !root() {
        return;
    }
    let p = Project::new(WEB);
    let (out, events) = p.run_json(&[]);
    out.code(0);
    let run = events.run_id().to_owned();
    let stdout = events.attempts("web")[0]["stdout_path"]
        .as_str()
        .unwrap()
        .to_owned();
    let driver = std::fs::read_to_string(&stdout).unwrap();
    assert!(driver.contains("nodes=server idle"), "{driver}");
    assert_eq!(
        driver.matches("hello from server").count(),
        2,
        "served before and after the restart:\n{driver}"
    );
    assert!(driver.contains("killed\nstarted"), "{driver}");

    // The node's own output, both lives: the second read what the first left on the volume.
    let node = p.psy(&["log", "web", "--node", "server", "--stdout"]);
    node.code(0);
    assert!(
        node.stdout.contains("hello from server\nprevious life"),
        "{}",
        node.stdout
    );
    let timeline = p.psy(&["log", "web", "--timeline"]);
    timeline.code(0);
    for event in [
        "node-ready",
        "driver-started",
        "killed server",
        "driver-exited",
    ] {
        assert!(
            timeline.stdout.contains(event),
            "{event}: {}",
            timeline.stdout
        );
    }
    let show = p.psy(&["show", &run, "web"]);
    show.code(0);
    assert!(
        show.stdout.contains("scenario timeline") && show.stdout.contains("--node server"),
        "{}",
        show.stdout
    );
    let nope = p.psy(&["log", "web", "--node", "nope"]);
    nope.code(2);
    assert!(
        nope.stderr.contains("web has no node named \"nope\""),
        "{nope}"
    );
}

/// Two scenarios at once: the second's driver must not reach the first's nodes (it knows their
/// address: every scenario numbers its members alike) nor the host.
#[test]
fn scenarios_cannot_reach_each_other_or_the_host() {
    if !root() {
        return;
    }
    let host = host_address().expect("this machine has an IPv4 address");
    // Something on the host that would answer anyone who reached it.
    let listener = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    assert!(std::net::TcpStream::connect((host.as_str(), port)).is_ok());
    let p = Project::new(&format!(
        r#"
[defaults]
cpus = 0.2
memory = "128MiB"

[[test]]
name = "owner"
command = ["sh", "-c", "sleep 6"]

[[test.node]]
name = "a1"
command = ["sleep", "1000"]

[[test.node]]
name = "a2"
command = ["python3", "-m", "http.server", "8080"]
ready = {{ tcp = 8080 }}

[[test]]
name = "prober"
command = ["python3", "-c", """
import socket, sys, time
time.sleep(1)
def reach(addr, port):
    try:
        socket.create_connection((addr, port), timeout=1).close()
        return True
    except OSError:
        return False
print("own", reach("b1", 8080))
print("other", reach("10.213.0.4", 8080))
print("host", reach("{host}", {port}))
"""]

[[test.node]]
name = "b1"
command = ["python3", "-m", "http.server", "8080"]
ready = {{ tcp = 8080 }}
"#
    ));
    let (out, events) = p.run_json(&[]);
    out.code(0);
    let path = events.attempts("prober")[0]["stdout_path"]
        .as_str()
        .unwrap()
        .to_owned();
    let seen = std::fs::read_to_string(path).unwrap();
    assert!(seen.contains("own True"), "its own node answers: {seen}");
    assert!(seen.contains("other False"), "{seen}");
    assert!(seen.contains("host False"), "{seen}");
    drop(listener);
}

/// The first IPv4 address of the host that is not loopback.
fn host_address() -> Option<String> {
    let out = std::process::Command::new("hostname")
        .arg("-I")
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .find(|a| a.contains('.') && !a.starts_with("127."))
        .map(str::to_owned)
}

/// A node's clocks on port 7000 (see the file).
const CLOCK_SERVER: &str = include_str!("../../../psy-runner/tests/clock/server.py");

/// Prints its argument and how far node clk's clocks are from the caller's (see the file).
const CLOCK_QUERY: &str = include_str!("../../../psy-runner/tests/clock/query.py");

/// `psy fault clock` restarts the node with its monotonic clocks shifted, and its volume, at a
/// path the host does not have, keeps what each life wrote; nothing appears on the host.
#[test]
fn a_clock_fault_restarts_a_node_whose_volume_path_the_host_lacks() {
    if !root() {
        return;
    }
    let top = format!("/psy-cli-vol-{}", std::process::id());
    assert!(!std::path::Path::new(&top).exists());
    let p = Project::new(&format!(
        r#"
[[test]]
name = "clock"
command = ["sh", "-c", """set -e
python3 query.py before
psy fault clock clk --offset 30s
python3 query.py ahead
psy fault clock clk --offset -30s
python3 query.py behind
"""]
timeout = "60s"

[[test.node]]
name = "clk"
command = ["sh", "-c", "echo life >> {top}/data/lives && cat {top}/data/lives && exec python3 clock.py"]
memory = "128MiB"
ready = {{ tcp = 7000 }}
[[test.node.volume]]
name = "data"
size = "16MiB"
path = "{top}/data"
"#
    ));
    p.file("clock.py", CLOCK_SERVER)
        .file("query.py", CLOCK_QUERY);
    let (out, events) = p.run_json(&[]);
    out.code(0);
    let stdout = events.attempts("clock")[0]["stdout_path"]
        .as_str()
        .unwrap()
        .to_owned();
    let driver = std::fs::read_to_string(stdout).unwrap();
    for line in ["before 0 0 0", "ahead 30 30 0", "behind -30 -30 0"] {
        assert!(driver.contains(line), "{line}:\n{driver}");
    }
    let node = p.psy(&["log", "clock", "--node", "clk", "--stdout"]);
    node.code(0);
    assert!(
        node.stdout.contains("life\nlife\nlife\n"),
        "the third life read the first two's: {}",
        node.stdout
    );
    let timeline = p.psy(&["log", "clock", "--timeline"]);
    assert!(
        timeline.stdout.contains("clocks at +30s"),
        "{}",
        timeline.stdout
    );
    assert!(
        !std::path::Path::new(&top).exists(),
        "{top} made on the host"
    );
}
