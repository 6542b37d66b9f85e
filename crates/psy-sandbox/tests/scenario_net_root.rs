//! Scenario networks on the real kernel (root only; prints "skipped" otherwise): nodes reach
//! each other and nothing else, partitions cut both ways and heal, link shaping delays and
//! drops (with this host's backend: `PSY_FORCE_DELAY_LINE=1` forces the delay line), and
//! nothing is left after close, drop or a dead owner's `gc_stale`.

#[path = "support/netns.rs"]
mod netns;
mod support;

use std::fs::File;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::{Duration, Instant};

use netns::{in_ns, new_netns, rp_filter_drops};

use psy_model::scenario::LinkShape;
use psy_sandbox::net::{RunNetwork, ScenarioNetwork};

/// A listener on port 7000 of `addr` in `ns` that accepts and echoes until dropped.
fn echo_server(ns: &File, addr: Ipv4Addr) -> SocketAddr {
    let at = SocketAddr::new(IpAddr::V4(addr), 7000);
    let listener = in_ns(ns, move || TcpListener::bind(at)).unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 1 << 16];
                while let Ok(n) = conn.read(&mut buf) {
                    if n == 0 || conn.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            });
        }
    });
    at
}

/// Whether a TCP connection from `ns` to `to` is accepted within `wait`.
fn connects(ns: &File, to: SocketAddr, wait: Duration) -> bool {
    in_ns(ns, move || TcpStream::connect_timeout(&to, wait)).is_ok()
}

fn reaches(ns: &File, to: SocketAddr) -> bool {
    connects(ns, to, Duration::from_secs(3))
}

fn cut_off(ns: &File, to: SocketAddr) -> bool {
    !connects(ns, to, Duration::from_millis(700))
}

/// Whether any of 3 datagrams from `from` reaches `to_ns` at `to` (port 7002): one way only,
/// where a TCP connect needs both.
fn datagram_arrives(from: &File, to_ns: &File, to: Ipv4Addr) -> bool {
    let at = SocketAddr::new(IpAddr::V4(to), 7002);
    let receiver = in_ns(to_ns, move || UdpSocket::bind(at)).unwrap();
    receiver
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    in_ns(from, move || {
        let s = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).unwrap();
        for _ in 0..3 {
            s.send_to(b"x", at).unwrap();
        }
    });
    receiver.recv(&mut [0u8; 8]).is_ok()
}

/// The median of 9 one-byte round trips from `ns` to the echo server at `to`.
fn rtt(ns: &File, to: SocketAddr) -> Duration {
    let mut conn = in_ns(ns, move || {
        TcpStream::connect_timeout(&to, Duration::from_secs(3))
    })
    .expect("connect for the round trip");
    conn.set_nodelay(true).unwrap();
    let mut times: Vec<Duration> = (0..9)
        .map(|_| {
            let start = Instant::now();
            conn.write_all(b"x").unwrap();
            conn.read_exact(&mut [0u8]).unwrap();
            start.elapsed()
        })
        .collect();
    times.sort();
    times[4]
}

/// Sends `bytes` from `ns` to the echo server at `to` and reads them back whole.
fn echo_bulk(ns: &File, to: SocketAddr, bytes: usize) {
    let conn = in_ns(ns, move || {
        TcpStream::connect_timeout(&to, Duration::from_secs(3))
    })
    .expect("connect for bulk");
    let mut reader = conn.try_clone().unwrap();
    let receiver = std::thread::spawn(move || {
        let mut got = vec![0u8; bytes];
        reader.read_exact(&mut got).unwrap();
        got
    });
    let sent: Vec<u8> = (0..bytes).map(|i| (i % 251) as u8).collect();
    (&conn).write_all(&sent).unwrap();
    assert!(
        receiver.join().unwrap() == sent,
        "bulk data came back changed"
    );
}

/// Interface names of scenario networks of this process (`ps<pid in hex>...`).
fn leftover_links() -> Vec<String> {
    let prefix = format!("ps{:x}", std::process::id());
    links_with_prefix(&prefix)
}

fn links_with_prefix(prefix: &str) -> Vec<String> {
    std::fs::read_dir("/sys/class/net")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            n.strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with(['n', 'v', 't']))
        })
        .collect()
}

fn nft_tables() -> String {
    let out = Command::new("nft")
        .args(["list", "tables"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn table_of(pid: u32, seq: u32) -> String {
    format!("psy_scenario_{pid}_{seq}")
}

fn delay(ms: u64) -> LinkShape {
    LinkShape {
        delay: Some(Duration::from_millis(ms)),
        ..LinkShape::default()
    }
}

/// Scenario `seq` with nodes `a` (index 1) and `b` (index 2); returns b's address too.
fn two_nodes(seq: u32) -> (ScenarioNetwork, File, File, Ipv4Addr) {
    let net = ScenarioNetwork::create(std::process::id(), seq).unwrap();
    let (a, b) = (new_netns(), new_netns());
    net.attach(&a, 1).unwrap();
    let address = net.attach(&b, 2).unwrap().address;
    (net, a, b, address)
}

fn median(mut d: Vec<Duration>) -> Duration {
    d.sort();
    d[d.len() / 2]
}

#[test]
fn nodes_reach_each_other_and_nothing_outside_their_scenario() {
    require_root!();
    let pid = std::process::id();
    let one = ScenarioNetwork::create(pid, 1).unwrap();
    let two = ScenarioNetwork::create(pid, 2).unwrap();
    let (a, b, c) = (new_netns(), new_netns(), new_netns());
    let pa = one.attach(&a, 1).unwrap();
    let pb = one.attach(&b, 2).unwrap();
    // Index 1 on another scenario: the same address as `a`, on another segment.
    let pc = two.attach(&c, 2).unwrap();
    eprintln!(
        "attach: {:?} {:?} {:?}",
        pa.setup_time, pb.setup_time, pc.setup_time
    );
    assert_eq!(pb.address, Ipv4Addr::new(10, 213, 0, 4));
    assert_eq!(one.address(2), pb.address);
    assert!(one.attach(&c, 2).is_err(), "index 2 attached twice");

    let b_echo = echo_server(&b, pb.address);
    assert!(reaches(&a, b_echo), "a cannot reach b on one scenario");
    // c has b's address on scenario two; a's address is on scenario one only.
    let a_echo = echo_server(&a, pa.address);
    assert!(reaches(&b, a_echo));
    assert!(cut_off(&c, a_echo), "scenario two reached scenario one");

    // A run network's open port with an address no scenario port has.
    let run = RunNetwork::create(&format!("s{}", pid % 100_000)).unwrap();
    let d = new_netns();
    let pd = run.attach(&d, 20, false, None).unwrap();
    let d_echo = echo_server(&d, pd.address());
    assert!(cut_off(&a, d_echo), "a scenario node reached a run network");

    // The host: a hand-made default route and the bridge's MAC must not get through either.
    let host_listener = TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0)).unwrap();
    let port = host_listener.local_addr().unwrap().port();
    let ns_path = format!("/proc/{}/fd/{}", pid, a.as_raw_fd());
    let ip_in_a = |args: &[&str]| {
        let st = Command::new("nsenter")
            .arg(format!("--net={ns_path}"))
            .arg("ip")
            .args(args)
            .status()
            .unwrap();
        assert!(st.success(), "ip {args:?}");
    };
    ip_in_a(&["route", "add", "default", "dev", "eth0"]);
    let hosts = host_addresses();
    if hosts.is_empty() {
        eprintln!("the host has no IPv4 address besides loopback: host containment not tried");
    }
    let mac_of = |dev: &str| {
        let mac = std::fs::read_to_string(format!("/sys/class/net/{dev}/address")).unwrap();
        mac.trim().to_owned()
    };
    let try_host = |host: Ipv4Addr, mac: &str| {
        ip_in_a(&[
            "neigh",
            "replace",
            &host.to_string(),
            "lladdr",
            mac,
            "dev",
            "eth0",
        ]);
        let dropped = rp_filter_drops();
        assert!(
            cut_off(&a, SocketAddr::new(IpAddr::V4(host), port)),
            "a scenario node reached the host at {host} by {mac}"
        );
        // Without strict rp_filter the host took the SYN and answered it through its uplink.
        assert!(
            rp_filter_drops() > dropped,
            "the host's stack took a SYN to {host} by {mac}"
        );
    };
    for &host in &hosts {
        try_host(host, &mac_of(one.bridge()));
    }
    // Shaped by the delay line, a's veth is off the bridge: its host end must be as deaf.
    one.shape(1, &delay(2)).unwrap();
    for &host in &hosts {
        try_host(host, &mac_of(&pa.host_interface));
    }
    drop((pd, run));
    one.close().unwrap();
    two.close().unwrap();
    assert_eq!(leftover_links(), Vec::<String>::new());
}

/// The host's IPv4 addresses, loopback ones aside.
fn host_addresses() -> Vec<Ipv4Addr> {
    let out = Command::new("ip")
        .args(["-4", "-o", "addr", "show"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let cidr = l.split_whitespace().skip_while(|w| *w != "inet").nth(1)?;
            cidr.split('/').next()?.parse().ok()
        })
        .filter(|a: &Ipv4Addr| !a.is_loopback())
        .collect()
}

#[test]
fn partitions_cut_both_ways_spare_the_rest_and_heal() {
    require_root!();
    let net = ScenarioNetwork::create(std::process::id(), 3).unwrap();
    let nss: Vec<File> = (0..4).map(|_| new_netns()).collect();
    // Index 0 is the driver, 1 to 3 the nodes.
    let echo: Vec<SocketAddr> = nss
        .iter()
        .enumerate()
        .map(|(i, ns)| {
            let port = net.attach(ns, i as u32).unwrap();
            echo_server(ns, port.address)
        })
        .collect();
    assert!(reaches(&nss[1], echo[2]) && reaches(&nss[2], echo[1]));

    let mut took = vec![net.partition(&[1], &[2]).unwrap()];
    assert!(cut_off(&nss[1], echo[2]) && cut_off(&nss[2], echo[1]));
    let addr = |i: usize| match echo[i].ip() {
        IpAddr::V4(a) => a,
        IpAddr::V6(_) => unreachable!(),
    };
    assert!(
        !datagram_arrives(&nss[1], &nss[2], addr(2)),
        "1 -> 2 across the partition"
    );
    assert!(
        !datagram_arrives(&nss[2], &nss[1], addr(1)),
        "2 -> 1 across the partition"
    );
    assert!(
        datagram_arrives(&nss[3], &nss[1], addr(1)),
        "3 -> 1 lost its link"
    );
    for (from, to) in [(3, 1), (3, 2), (1, 3), (0, 1), (0, 2), (2, 0)] {
        assert!(
            reaches(&nss[from], echo[to]),
            "{from} -> {to} lost its link"
        );
    }
    // Partitions accumulate; shaping a node moves it to its tap and keeps it cut off.
    took.push(net.partition(&[1], &[3]).unwrap());
    let shape = net.shape(1, &delay(2)).unwrap();
    assert!(cut_off(&nss[1], echo[2]) && cut_off(&nss[3], echo[1]));
    assert!(reaches(&nss[0], echo[1]), "the driver lost a shaped node");
    assert!(reaches(&nss[2], echo[3]));
    let clear = net.clear_shape(1).unwrap();
    assert!(cut_off(&nss[1], echo[3]));

    let heal = net.heal().unwrap();
    for (from, to) in [(1, 2), (2, 1), (1, 3), (3, 1)] {
        assert!(reaches(&nss[from], echo[to]), "{from} -> {to} after heal");
    }
    assert!(net.partition(&[1], &[1, 2]).is_err());
    assert!(net.partition(&[], &[2]).is_err());
    assert!(net.partition(&[1], &[9]).is_err());
    eprintln!(
        "backend {:?}: partition {took:?}, heal {heal:?}, shape {shape:?}, clear {clear:?}",
        net.backend()
    );
}

#[test]
fn a_delay_raises_the_round_trip_and_clearing_restores_it() {
    require_root!();
    let (net, a, b, b_addr) = two_nodes(4);
    let echo = echo_server(&b, b_addr);
    let before = rtt(&a, echo);

    let shape = net.shape(2, &delay(100)).unwrap();
    let delayed = rtt(&a, echo);
    // The node's traffic both ways: b's own connections are delayed too.
    let a_echo = echo_server(&a, net.address(1));
    let from_b = rtt(&b, a_echo);
    // Bulk data, both ways, comes through whole (segmentation offloads and checksums).
    echo_bulk(&a, echo, 4 << 20);
    let reshape = net.shape(2, &delay(40)).unwrap();
    let changed = rtt(&a, echo);
    let clear = net.clear_shape(2).unwrap();
    let after = rtt(&a, echo);
    eprintln!(
        "backend {:?}: rtt {before:?}, with 100 ms {delayed:?} (from b {from_b:?}), \
         with 40 ms {changed:?}, cleared {after:?}; shape {shape:?}, reshape {reshape:?}, clear {clear:?}",
        net.backend()
    );
    for (what, rtt) in [("a -> b", delayed), ("b -> a", from_b)] {
        assert!(
            rtt >= before + Duration::from_millis(80),
            "{what}: 100 ms delay gave {rtt:?} (before {before:?})"
        );
    }
    assert!(
        changed + Duration::from_millis(30) <= delayed,
        "reshaping did not apply"
    );
    assert!(
        after + Duration::from_millis(80) <= delayed,
        "clearing did not restore"
    );
}

#[test]
fn loss_drops_some_packets() {
    require_root!();
    let (net, a, b, b_addr) = two_nodes(5);
    let at = SocketAddr::new(IpAddr::V4(b_addr), 7001);
    let receiver = in_ns(&b, move || UdpSocket::bind(at)).unwrap();
    receiver
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    // Resolve b's MAC before the loss starts, so no datagram waits on ARP.
    let echo = echo_server(&b, b_addr);
    assert!(reaches(&a, echo));
    let lossy = LinkShape {
        loss_percent: Some(20.0),
        ..LinkShape::default()
    };
    net.shape(2, &lossy).unwrap();
    let sent = 400;
    // Read while sending: a full receive buffer would drop datagrams too.
    let counter = std::thread::spawn(move || {
        let mut got = 0;
        while receiver.recv(&mut [0u8; 128]).is_ok() {
            got += 1;
        }
        got
    });
    in_ns(&a, move || {
        let s = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).unwrap();
        for i in 0..sent {
            s.send_to(&[i as u8; 64], at).unwrap();
            std::thread::sleep(Duration::from_micros(500));
        }
    });
    let got = counter.join().unwrap();
    eprintln!(
        "backend {:?}: {got} of {sent} datagrams arrived at 20% loss",
        net.backend()
    );
    assert!(got < sent && got > sent / 2, "{got} of {sent} arrived");
}

#[test]
fn a_rate_limits_bulk_transfers_both_ways() {
    require_root!();
    let (net, a, b, b_addr) = two_nodes(10);
    let echo = echo_server(&b, b_addr);
    let rate = 8_000_000;
    net.shape(
        2,
        &LinkShape {
            rate_bps: Some(rate),
            ..LinkShape::default()
        },
    )
    .unwrap();
    // 2 MB out and back through b's link: at least 2 s at 8 Mbit/s each way, at once.
    let bytes = 2_000_000;
    let start = Instant::now();
    echo_bulk(&a, echo, bytes);
    let took = start.elapsed();
    let goodput = bytes as f64 * 8.0 / took.as_secs_f64();
    eprintln!(
        "backend {:?}: {bytes} bytes echoed through {rate} bit/s in {took:?} ({goodput:.0} bit/s)",
        net.backend()
    );
    assert!(goodput <= rate as f64 * 1.1, "goodput {goodput:.0} bit/s");
}

#[test]
fn nothing_is_left_after_close_or_drop() {
    require_root!();
    let pid = std::process::id();
    for (seq, close) in [(6, true), (7, false)] {
        let net = ScenarioNetwork::create(pid, seq).unwrap();
        let (a, b) = (new_netns(), new_netns());
        net.attach(&a, 1).unwrap();
        net.attach(&b, 2).unwrap();
        net.partition(&[1], &[2]).unwrap();
        net.shape(2, &delay(10)).unwrap();
        let bridge = net.bridge().to_owned();
        let links = leftover_links();
        assert!(links.contains(&bridge) && links.len() >= 3, "{links:?}");
        assert!(nft_tables().contains(&table_of(pid, seq)));
        if close {
            net.close().unwrap();
            // The namespaces still live: their veths must have been deleted, not died with them.
            assert_eq!(leftover_links(), Vec::<String>::new(), "close");
            drop((a, b));
        } else {
            // As when a node's container is gone first: the network's own namespace fds are
            // then the last, and must not go before the veths are deleted.
            drop((a, b));
            drop(net);
            assert_eq!(leftover_links(), Vec::<String>::new(), "drop");
        }
        assert!(!nft_tables().contains(&table_of(pid, seq)));
    }
}

#[test]
fn gc_removes_a_dead_owners_scenario_network() {
    require_root!();
    let mut child = Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let net = ScenarioNetwork::create(dead, 8).unwrap();
    let ns = new_netns();
    net.attach(&ns, 1).unwrap();
    net.attach(new_netns(), 2).unwrap();
    net.partition(&[1], &[2]).unwrap();
    // What a SIGKILLed psy leaves behind.
    std::mem::forget(net);
    let prefix = format!("ps{dead:x}");
    assert_eq!(links_with_prefix(&prefix).len(), 3);
    assert!(nft_tables().contains(&table_of(dead, 8)));

    let deleted = psy_sandbox::net::gc_stale(|pid| pid != dead);
    assert_eq!(links_with_prefix(&prefix), Vec::<String>::new());
    assert!(!nft_tables().contains(&table_of(dead, 8)));
    assert!(deleted >= 4, "gc reported {deleted}");
}

#[test]
fn latency_of_each_fault() {
    require_root!();
    let net = ScenarioNetwork::create(std::process::id(), 9).unwrap();
    let nss: Vec<File> = (0..3).map(|_| new_netns()).collect();
    for (i, ns) in nss.iter().enumerate() {
        net.attach(ns, i as u32).unwrap();
    }
    let (mut part, mut heal, mut shape, mut reshape, mut clear) =
        (vec![], vec![], vec![], vec![], vec![]);
    // Few rounds: the v2 VM runs this too, where each subprocess takes about a second.
    for _ in 0..7 {
        part.push(net.partition(&[1], &[2]).unwrap());
        heal.push(net.heal().unwrap());
        shape.push(net.shape(1, &delay(50)).unwrap());
        reshape.push(net.shape(1, &delay(60)).unwrap());
        clear.push(net.clear_shape(1).unwrap());
    }
    eprintln!(
        "backend {:?}, median of 7: partition {:?}, heal {:?}, shape {:?}, reshape {:?}, clear {:?}",
        net.backend(),
        median(part),
        median(heal),
        median(shape),
        median(reshape),
        median(clear)
    );
    // The namespaces' own fds go first, as when the nodes' containers are gone.
    drop(nss);
    drop(net);
    assert_eq!(leftover_links(), Vec::<String>::new());
}
