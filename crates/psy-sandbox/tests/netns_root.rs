//! Loopback-only network namespaces are recycled between containers (root only; prints
//! "skipped" otherwise): a namespace comes back only when its last test left nothing a later
//! test could trip over, and no test can change the network it was given.

mod support;

use std::collections::HashSet;
use support::Fixture;

/// The inode of the container's network namespace, as its test sees it.
fn netns_inode(f: &Fixture) -> String {
    let (o, out) = f.run("readlink /proc/self/ns/net");
    assert_eq!(o.exit.code, Some(0), "{out}");
    out.trim().to_string()
}

#[test]
fn clean_namespaces_are_reused() {
    require_root!();
    let f = Fixture::new();
    let host = std::fs::read_link("/proc/self/ns/net").unwrap();
    // More containers than the pool makes ahead, one after the other: later ones must get
    // namespaces given back by earlier ones.
    let seen: Vec<String> = (0..40).map(|_| netns_inode(&f)).collect();
    let distinct: HashSet<&String> = seen.iter().collect();
    assert!(
        !distinct.contains(&host.display().to_string()),
        "a container ran in the host's network namespace"
    );
    assert!(
        distinct.len() < seen.len(),
        "no namespace was reused in {} containers",
        seen.len()
    );
}

#[test]
fn a_port_left_in_time_wait_never_reaches_the_next_test() {
    require_root!();
    let f = Fixture::new();
    // The server closes first, so its side of the connection (on PORT) stays in TIME_WAIT
    // for a minute after the test ended; a namespace holding it must not be handed out.
    const PORT: u16 = 40123;
    let dirty = format!(
        "python3 -c 'import socket\n\
         l=socket.socket(); l.bind((\"127.0.0.1\",{PORT})); l.listen()\n\
         c=socket.create_connection((\"127.0.0.1\",{PORT})); s,_=l.accept()\n\
         s.close(); c.recv(1); c.close(); l.close(); print(\"left TIME_WAIT\")'"
    );
    // A plain bind (no SO_REUSEADDR) fails with EADDRINUSE in a namespace with that TIME_WAIT.
    let bind = format!(
        "python3 -c 'import socket; socket.socket().bind((\"127.0.0.1\",{PORT})); print(\"bound\")'"
    );
    // Rounds of one dirty test and two binds: with 16 namespaces made ahead and the rest
    // recycled, a namespace given back dirty would come round again within these rounds.
    for round in 0..20 {
        let (o, out) = f.run(&dirty);
        assert_eq!(o.exit.code, Some(0), "round {round}, dirty test: {out}");
        for _ in 0..2 {
            let (o, out) = f.run(&bind);
            assert_eq!(
                o.exit.code,
                Some(0),
                "round {round}: a namespace with a previous test's socket was reused: {out}"
            );
        }
    }
}

#[test]
fn tests_cannot_reconfigure_their_network() {
    require_root!();
    let f = Fixture::new();
    let (o, out) = f.run("ip link set lo down 2>&1; echo status=$?");
    assert_eq!(o.exit.code, Some(0), "{out}");
    assert!(
        !out.contains("status=0"),
        "the test took its loopback down: {out}"
    );
    let (o, out) = f.run("echo 1 > /proc/sys/net/ipv4/ip_forward 2>&1; echo status=$?");
    assert_eq!(o.exit.code, Some(0), "{out}");
    assert!(!out.contains("status=0"), "the test wrote a sysctl: {out}");
    // Loopback is still usable.
    let (o, out) = f.run(
        "python3 -c 'import socket; l=socket.socket(); l.bind((\"127.0.0.1\",0)); l.listen(); \
         socket.create_connection(l.getsockname()); print(\"ok\")'",
    );
    assert_eq!((o.exit.code, out.trim()), (Some(0), "ok"));
}
