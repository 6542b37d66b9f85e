//! Whether a namespace given back by a finished container may serve the next one.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd};

use super::make::inside;

/// Whether a namespace given back is as its next user must find it: no socket of any kind
/// left (listening, connected, closing or `TIME_WAIT`) and exactly the `interfaces` it was
/// made with.
pub(super) fn is_pristine(host: &File, ns: &OwnedFd, interfaces: &[&str]) -> io::Result<bool> {
    inside(host, ns.as_raw_fd(), || {
        let read = |name: &str| -> io::Result<String> {
            let mut text = String::new();
            File::open(format!("/proc/thread-self/net/{name}"))?.read_to_string(&mut text)?;
            Ok(text)
        };
        Ok(sockstat_is_empty(&read("sockstat")?)
            && match read("sockstat6") {
                Ok(text) => sockstat_is_empty(&text),
                // A kernel without IPv6 has no IPv6 sockets.
                Err(e) if e.kind() == io::ErrorKind::NotFound => true,
                Err(e) => return Err(e),
            }
            && read("unix")?.lines().count() <= 1
            && has_interfaces(&read("dev")?, interfaces))
    })
}

/// `TCP: inuse 0 orphan 0 tw 0 alloc 3 mem 0`: every per-namespace count (`inuse`, `tw`) is 0.
/// (`sockets: used`, `alloc`, `orphan` and `mem` are host-wide.)
pub(super) fn sockstat_is_empty(text: &str) -> bool {
    text.lines().all(|line| {
        let mut words = line.split_whitespace().skip(1);
        let mut empty = true;
        while let (Some(key), Some(value)) = (words.next(), words.next()) {
            if matches!(key, "inuse" | "tw") && value != "0" {
                empty = false;
            }
        }
        empty
    })
}

/// `/proc/net/dev` (two header lines, then one line per interface) lists exactly `expected`.
fn has_interfaces(text: &str, expected: &[&str]) -> bool {
    let mut found: Vec<&str> = text
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(str::trim)
        .collect();
    found.sort_unstable();
    let mut expected = expected.to_vec();
    expected.sort_unstable();
    found == expected
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockstat_counts_only_sockets_of_this_namespace() {
        let idle = "sockets: used 312\nTCP: inuse 0 orphan 2 tw 0 alloc 40 mem 9\n\
                    UDP: inuse 0 mem 4\nUDPLITE: inuse 0\nRAW: inuse 0\nFRAG: inuse 0 memory 0\n";
        assert!(sockstat_is_empty(idle));
        assert!(!sockstat_is_empty(&idle.replace("tw 0", "tw 1")));
        assert!(!sockstat_is_empty(
            &idle.replace("UDP: inuse 0", "UDP: inuse 2")
        ));
        let v6 = "TCP6: inuse 1\nUDP6: inuse 0\nUDPLITE6: inuse 0\nRAW6: inuse 0\nFRAG6: inuse 0 memory 0\n";
        assert!(!sockstat_is_empty(v6));
    }

    #[test]
    fn interfaces_must_be_exactly_the_ones_made() {
        let head = "Inter-|   Receive\n face |bytes    packets\n";
        assert!(has_interfaces(&format!("{head}    lo: 0 0 0\n"), &["lo"]));
        let two = format!("{head}    lo: 0 0\n  eth0: 0 0\n");
        assert!(!has_interfaces(&two, &["lo"]));
        assert!(has_interfaces(&two, &["eth0", "lo"]));
        assert!(!has_interfaces(head, &["lo"]));
    }
}
