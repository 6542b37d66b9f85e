//! The network part of `psy bench isolation`: a latency-sensitive victim and a bulk-sending hog
//! share one link into a server, as tests of a cluster share a NIC or an uplink.
//!
//! Built from Psyduck's own network parts (`psy_sandbox::net`): a bridge, and one namespace per
//! party joined by a veth. The server's veth carries the shared link: tbf at [`LINK_MBIT`]
//! towards the server. The victim does request/response round trips to an echo server; the hog
//! streams to a sink on the same server. Unconstrained, the hog fills the link's queue and every
//! victim request waits behind it. With guarantees, each client's egress is shaped to what
//! admission gives it (`network = { egress }` of a test, summing to at most `[host] network`,
//! here [`ADMITTED_MBIT`], the whole link): the victim [`VICTIM_MBIT`], the hog the rest.
//!
//! Tests of a `psy run` cannot reach each other or a server yet (multi-node scenarios are a later
//! issue), so the parties here are host processes inside the namespaces, not `psy run` tests;
//! the shaping is exactly what a test's `network` key applies.

use anyhow::{ensure, Context};
use psy_sandbox::net::{Attachment, RunNetwork, Shaping, SUBNET};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The shared link into the server, Mbit/s.
pub(crate) const LINK_MBIT: u64 = 500;
/// What admission may hand out of the link (`[host] network`): all of it.
pub(crate) const ADMITTED_MBIT: u64 = LINK_MBIT;
/// The victim's guaranteed egress; the hog gets the rest of what is admitted. Back-to-back
/// 1 KiB round trips offer more than this (about 400 Mbit/s here), so the victim is paced by
/// its own limit: its guaranteed series is compared with its series alone under the same limit.
pub(crate) const VICTIM_MBIT: u64 = 100;
/// Round trips of 1 KiB per victim repetition.
const ROUND_TRIPS: usize = 200;

const ECHO_PORT: u16 = 7100;
const SINK_PORT: u16 = 7101;

/// A server on port argv[1]: echoes (argv[2] == "echo") or discards, a thread per connection.
/// The echo and the sink are separate processes, as separate services would be.
const SERVER_PY: &str = r#"import socket, sys, threading
port, echo = int(sys.argv[1]), sys.argv[2] == "echo"
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("0.0.0.0", port)); l.listen(64)
def conn(c):
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while True:
        d = c.recv(1 << 16)
        if not d: return
        if echo: c.sendall(d)
print("ready", flush=True)
while True:
    c, _ = l.accept(); threading.Thread(target=conn, args=(c,), daemon=True).start()
"#;

/// The victim: `reps` repetitions of `n` 1 KiB round trips, printing `rep <ms>` each.
const VICTIM_PY: &str = r#"import socket, sys, time
host, port, reps, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
s = socket.create_connection((host, port)); s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
msg = b"x" * 1024
time.sleep(1.0)
for _ in range(reps):
    t = time.perf_counter()
    for _ in range(n):
        s.sendall(msg); got = 0
        while got < len(msg): got += len(s.recv(65536))
    print("rep %.3f" % ((time.perf_counter() - t) * 1e3), flush=True)
"#;

/// The hog: four connections streaming as fast as they can.
const HOG_PY: &str = r#"import socket, sys, threading
def flood():
    s = socket.create_connection((sys.argv[1], int(sys.argv[2]))); buf = b"\0" * (1 << 16)
    while True: s.sendall(buf)
for _ in range(4): threading.Thread(target=flood, daemon=True).start()
threading.Event().wait()
"#;

/// One party: a process holding a network namespace, joined to the bridge.
struct Party {
    holder: Child,
    _port: Attachment,
    address: Ipv4Addr,
}

impl Party {
    fn join(net: &RunNetwork, index: u32, shaping: Shaping) -> anyhow::Result<Party> {
        let holder = Command::new("unshare")
            .args(["--net", "sleep", "infinity"])
            .stdin(Stdio::null())
            .process_group(0)
            .spawn()
            .context("starting a namespace holder (unshare --net sleep)")?;
        let ns_path = format!("/proc/{}/ns/net", holder.id());
        // unshare needs a moment to enter its namespace before `sleep` runs.
        let host = std::fs::read_link("/proc/self/ns/net")?;
        for _ in 0..200 {
            if std::fs::read_link(&ns_path).is_ok_and(|ns| ns != host) {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let ns = File::open(&ns_path).with_context(|| format!("opening {ns_path}"))?;
        let port = net.attach(&ns, index, false, Some(shaping))?;
        Ok(Party {
            address: port.address(),
            holder,
            _port: port,
        })
    }

    /// `argv` run inside this party's network namespace on `cpu` (as a test's exclusive core
    /// would place it), in a process group of its own.
    fn command(&self, cpu: u32, argv: &[&str]) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net=/proc/{}/ns/net", self.holder.id()))
            .args(["--", "taskset", "-c", &cpu.to_string()])
            .args(argv)
            .stdin(Stdio::null())
            .process_group(0);
        cmd
    }
}

impl Drop for Party {
    fn drop(&mut self) {
        kill_group(&mut self.holder);
    }
}

fn kill_group(child: &mut Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        // SAFETY: signalling the process group we created for this child.
        unsafe { libc::kill(-pid, libc::SIGKILL) };
    }
    let _ = child.wait();
}

/// A background process killed (with its group) on drop.
struct Background(Child);

impl Drop for Background {
    fn drop(&mut self) {
        kill_group(&mut self.0);
    }
}

const VICTIM_CPU: u32 = 0;
const HOG_CPU: u32 = 1;

/// Starts a server on `port` inside `party`'s namespace and waits until it listens.
fn serve(
    party: &Party,
    cpu: u32,
    python: &str,
    port: u16,
    mode: &str,
) -> anyhow::Result<Background> {
    let mut child = party
        .command(cpu, &[python, "-c", SERVER_PY, &port.to_string(), mode])
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting the {mode} server"))?;
    let mut ready = String::new();
    BufReader::new(child.stdout.take().expect("piped")).read_line(&mut ready)?;
    let server = Background(child);
    ensure!(
        ready.trim() == "ready",
        "the {mode} server did not start: {ready:?}"
    );
    Ok(server)
}

fn mbit(m: u64) -> Option<u64> {
    Some(m * 1_000_000)
}

/// Who runs and how the clients are shaped.
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum NetCondition {
    /// The victim alone, unshaped.
    Alone,
    /// Victim and hog, unshaped.
    Unconstrained,
    /// The victim alone, shaped to its guarantee.
    AloneShaped,
    /// Victim and hog, each shaped to its guarantee.
    Guaranteed,
}

/// The victim's repetition times (ms) under `condition`.
pub(crate) fn victim_series(
    python: &str,
    reps: usize,
    condition: NetCondition,
) -> anyhow::Result<Vec<f64>> {
    // Named like a run's network (the pid in hex) so `psy gc` removes it if the bench is killed.
    let net = RunNetwork::create(&format!("{:x}", std::process::id()))?;
    let link = Shaping {
        egress_bit_per_sec: mbit(LINK_MBIT),
        ingress_bit_per_sec: mbit(LINK_MBIT),
    };
    let (victim_shaping, hog_shaping) = match condition {
        NetCondition::Guaranteed | NetCondition::AloneShaped => (
            Shaping {
                egress_bit_per_sec: mbit(VICTIM_MBIT),
                ingress_bit_per_sec: None,
            },
            Shaping {
                egress_bit_per_sec: mbit(ADMITTED_MBIT - VICTIM_MBIT),
                ingress_bit_per_sec: None,
            },
        ),
        _ => (Shaping::default(), Shaping::default()),
    };
    let server = Party::join(&net, 0, link)?;
    let victim = Party::join(&net, 1, victim_shaping)?;
    let hog = Party::join(&net, 2, hog_shaping)?;

    // Victim and echo server on core 0, hog and sink on the other: CPU is kept apart as
    // psy's exclusive cores would, so what is left between them is the link.
    let _echo = serve(&server, VICTIM_CPU, python, ECHO_PORT, "echo")?;
    let _sink = serve(&server, HOG_CPU, python, SINK_PORT, "sink")?;
    let addr = server.address.to_string();
    let _hog = match condition {
        NetCondition::Alone | NetCondition::AloneShaped => None,
        NetCondition::Unconstrained | NetCondition::Guaranteed => Some(Background(
            hog.command(
                HOG_CPU,
                &[python, "-c", HOG_PY, &addr, &SINK_PORT.to_string()],
            )
            .stdout(Stdio::null())
            .spawn()
            .context("starting the hog")?,
        )),
    };
    let out = victim
        .command(
            VICTIM_CPU,
            &[
                python,
                "-c",
                VICTIM_PY,
                &addr,
                &ECHO_PORT.to_string(),
                &reps.to_string(),
                &ROUND_TRIPS.to_string(),
            ],
        )
        .stdout(Stdio::piped())
        .output()
        .context("running the network victim")?;
    ensure!(
        out.status.success(),
        "the network victim failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    super::isolation::parse_reps(&String::from_utf8_lossy(&out.stdout), "net")
}

/// What the network victim, hog and guarantee are (for the bench's header).
pub(crate) fn describe() -> String {
    format!(
        "net = {ROUND_TRIPS} round trips of 1 KiB to an echo server behind a {LINK_MBIT} Mbit/s link \
         (tbf on its veth, subnet {SUBNET}/16); hog = 4 TCP streams to a sink on the same server; \
         guaranteed = victim egress {VICTIM_MBIT} Mbit/s, hog {} Mbit/s (what `network = {{ egress }}` \
         applies; the sum is what `[host] network = {ADMITTED_MBIT}Mbit` admits)",
        ADMITTED_MBIT - VICTIM_MBIT
    )
}
