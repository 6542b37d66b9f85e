//! Per-run networks on the real kernel (root only; prints "skipped" otherwise): isolation,
//! containment, tbf rates and cleanup.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::{Duration, Instant};

use psy_sandbox::net::{Attachment, RunNetwork, Shaping};

const RATE: u64 = 20_000_000;

fn is_root() -> bool {
    // SAFETY: trivial getter.
    unsafe { libc::geteuid() == 0 }
}

macro_rules! require_root {
    () => {
        if !is_root() {
            eprintln!("skipped: needs root");
            return;
        }
    };
}

/// A new network namespace, made on a throw-away thread so the test's threads stay home.
fn new_netns() -> File {
    std::thread::spawn(|| {
        // SAFETY: affects only this thread, which ends right after.
        assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWNET) }, 0, "unshare");
        File::open("/proc/thread-self/ns/net").expect("open own netns")
    })
    .join()
    .unwrap()
}

/// Runs `f` on a thread inside `ns`; sockets made there belong to `ns`.
fn in_ns<T: Send + 'static>(
    ns: &File,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let ns = ns.try_clone().unwrap();
    std::thread::spawn(move || {
        // SAFETY: affects only this thread.
        assert_eq!(
            unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) },
            0
        );
        f()
    })
}

fn connect_from(ns: &File, to: SocketAddr) -> std::io::Result<TcpStream> {
    in_ns(ns, move || {
        TcpStream::connect_timeout(&to, Duration::from_secs(1))
    })
    .join()
    .unwrap()
}

/// Runs `ip args...` inside `ns`.
fn ip_in(ns: &File, args: &[&str]) {
    let path = format!("/proc/{}/fd/{}", std::process::id(), ns.as_raw_fd());
    let st = Command::new("nsenter")
        .arg(format!("--net={path}"))
        .arg("ip")
        .args(args)
        .status()
        .unwrap();
    assert!(st.success(), "ip {args:?} in netns");
}

fn unique(prefix: char) -> String {
    format!("{prefix}{}", std::process::id() % 100_000)
}

/// Interfaces of this run still in the host namespace.
fn leftovers(run: &str) -> Vec<String> {
    let out = Command::new("ip").args(["-o", "link"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(':').nth(1).map(|n| n.trim().to_owned()))
        .filter(|n| n == &format!("psy{run}") || n.starts_with(&format!("pv{run}-")))
        .collect()
}

/// The host's `TcpExt: IPReversePathFilter` counter.
fn rp_filter_drops() -> u64 {
    let text = std::fs::read_to_string("/proc/net/netstat").unwrap();
    let mut rows = text.lines().filter(|l| l.starts_with("TcpExt:"));
    let (keys, values) = (rows.next().unwrap(), rows.next().unwrap());
    let at = keys
        .split_whitespace()
        .position(|k| k == "IPReversePathFilter");
    values
        .split_whitespace()
        .nth(at.unwrap())
        .unwrap()
        .parse()
        .unwrap()
}

fn host_ipv4() -> Option<Ipv4Addr> {
    let out = Command::new("ip")
        .args(["-4", "-o", "addr", "show", "scope", "global"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let cidr = text
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)?;
    cidr.split('/').next()?.parse().ok()
}

#[test]
fn isolated_ports_reach_neither_each_other_nor_the_host() {
    require_root!();
    let run = unique('i');
    let net = RunNetwork::create(&run).unwrap();
    let (a_ns, b_ns) = (new_netns(), new_netns());
    let a = net.attach(&a_ns, 1, true, None).unwrap();
    let b = net.attach(&b_ns, 2, true, None).unwrap();
    eprintln!(
        "attach, unshaped: {:?}, {:?}",
        a.setup_time(),
        b.setup_time()
    );
    assert_eq!(b.address(), Ipv4Addr::new(10, 213, 0, 4));

    let listen = SocketAddr::new(IpAddr::V4(b.address()), 5001);
    let listener = in_ns(&b_ns, move || TcpListener::bind(listen))
        .join()
        .unwrap()
        .unwrap();
    assert!(
        connect_from(&a_ns, listen).is_err(),
        "isolated ports connected"
    );
    drop(listener);

    // Even with a hand-made route and the bridge's MAC, the host stack must not answer.
    if let Some(host) = host_ipv4() {
        let host_listener = TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0)).unwrap();
        let port = host_listener.local_addr().unwrap().port();
        let mac =
            std::fs::read_to_string(format!("/sys/class/net/{}/address", net.bridge())).unwrap();
        ip_in(&a_ns, &["route", "add", "default", "dev", "eth0"]);
        ip_in(
            &a_ns,
            &[
                "neigh",
                "add",
                &host.to_string(),
                "lladdr",
                mac.trim(),
                "dev",
                "eth0",
            ],
        );
        let to = SocketAddr::new(IpAddr::V4(host), port);
        let dropped = rp_filter_drops();
        assert!(connect_from(&a_ns, to).is_err(), "test reached host {to}");
        // Without strict rp_filter the host took the SYN and answered it through its uplink.
        assert!(
            rp_filter_drops() > dropped,
            "the host's stack did not drop the SYN"
        );
    }

    drop((a, b));
    net.close().unwrap();
    assert_eq!(leftovers(&run), Vec::<String>::new());
}

/// Sends for `secs` from `from` to `to` (port 5201); the receiver's rate in bit/s.
fn measure(from: &File, to_ns: &File, to: &Attachment, secs: u64) -> f64 {
    let addr = SocketAddr::new(IpAddr::V4(to.address()), 5201);
    let listener = in_ns(to_ns, move || TcpListener::bind(addr))
        .join()
        .unwrap()
        .unwrap();
    let receiver = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut buf = vec![0u8; 1 << 16];
        let (mut total, mut first, mut last) = (0u64, None, Instant::now());
        loop {
            let n = conn.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            let now = Instant::now();
            if first.is_none() {
                first = Some(now);
            } else {
                total += n as u64; // bytes after the first read, over the time after it
            }
            last = now;
        }
        total as f64 * 8.0 / (last - first.unwrap()).as_secs_f64()
    });
    let mut conn = connect_from(from, addr).unwrap();
    let buf = vec![7u8; 1 << 16];
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        conn.write_all(&buf).unwrap();
    }
    drop(conn);
    receiver.join().unwrap()
}

#[test]
fn open_ports_connect_and_tbf_holds_the_rate() {
    require_root!();
    let run = unique('o');
    let net = RunNetwork::create(&run).unwrap();
    let (a_ns, b_ns, c_ns) = (new_netns(), new_netns(), new_netns());
    let egress = Shaping {
        egress_bit_per_sec: Some(RATE),
        ingress_bit_per_sec: None,
    };
    let ingress = Shaping {
        egress_bit_per_sec: None,
        ingress_bit_per_sec: Some(RATE),
    };
    let a = net.attach(&a_ns, 1, false, Some(egress)).unwrap();
    let b = net.attach(&b_ns, 2, false, None).unwrap();
    let c = net.attach(&c_ns, 3, false, Some(ingress)).unwrap();
    eprintln!(
        "attach: egress-shaped {:?}, unshaped {:?}, ingress-shaped {:?}",
        a.setup_time(),
        b.setup_time(),
        c.setup_time()
    );

    let out = measure(&a_ns, &b_ns, &b, 3);
    let inn = measure(&b_ns, &c_ns, &c, 3);
    eprintln!("goodput at {RATE} bit/s: egress-shaped {out:.0}, ingress-shaped {inn:.0}");
    for (what, rate) in [("egress", out), ("ingress", inn)] {
        let ratio = rate / RATE as f64;
        assert!((0.9..=1.1).contains(&ratio), "{what} rate {rate:.0} bit/s");
    }

    drop((a, b, c));
    drop(net);
    assert_eq!(leftovers(&run), Vec::<String>::new());
}

#[test]
fn bad_names_are_refused() {
    assert!(RunNetwork::create("toolongname").is_err());
    assert!(RunNetwork::create("Caps").is_err());
    assert!(RunNetwork::create("").is_err());
}
