//! Network bandwidth is packed like disk IO: the sum of the running attempts' rates stays
//! within `[host] network`, per direction.

use super::*;
use psy_model::NetworkRequest;

const MBIT: u64 = 1_000_000;

fn net_job(key: JobKey, egress: Option<u64>, ingress: Option<u64>) -> Job {
    let mut j = job(key, 100, GIB / 8, Some(10));
    j.resources.network = Some(NetworkRequest {
        egress_bps: egress,
        ingress_bps: ingress,
    });
    j
}

#[test]
fn bandwidth_is_packed_per_direction_against_the_host() {
    let mut cap = machine(4, 16);
    cap.network = NetworkRequest {
        egress_bps: Some(1000 * MBIT),
        ingress_bps: Some(500 * MBIT),
    };
    // 1 and 2 together need 600 Mbit of ingress: never together. 3 only sends.
    let mut s = scheduler(
        cap.clone(),
        [
            net_job(1, Some(100 * MBIT), Some(300 * MBIT)),
            net_job(2, Some(100 * MBIT), Some(300 * MBIT)),
            net_job(3, Some(800 * MBIT), None),
        ],
    );
    let first = keys(&s.next_placements(secs(0)));
    assert_eq!(first.len(), 2, "{first:?}");
    assert!(first.contains(&3), "{first:?}");
    assert!(s.next_placements(secs(0)).is_empty());
    let receiver = first.iter().copied().find(|k| *k != 3).unwrap();
    s.finished(receiver).unwrap();
    assert_eq!(keys(&s.next_placements(secs(10))).len(), 1);

    let mut s = scheduler(cap, []);
    let err = s
        .push(net_job(9, Some(2000 * MBIT), None))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("network egress") && err.contains("job 9"),
        "{err}"
    );
    // No host figure: not admitted against.
    let mut s = scheduler(machine(4, 16), []);
    s.push(net_job(9, Some(2000 * MBIT), None)).unwrap();
}
