//! Disk IO throttles hold for a container's buffered writes too (root only; prints "skipped"
//! otherwise). On cgroup v1 the kernel neither throttles nor counts background writeback, so a
//! throttled test's scratch area is a filesystem of its own mounted `sync`; this checks the
//! end result, whatever the mechanism on this host.

mod support;

use psy_sandbox::cgroup::{block_device_of, IoLimits};
use std::time::Instant;
use support::{limits, Fixture};

const MIB: u64 = 1 << 20;

#[test]
fn buffered_writes_without_fsync_are_held_to_the_write_limit() {
    require_root!();
    let f = Fixture::new();
    let mut throttled = limits();
    throttled.io = Some(IoLimits {
        device: block_device_of(f.project()).unwrap(),
        read_bps: None,
        write_bps: Some(10 * MIB),
        read_iops: None,
        write_iops: None,
        weight: None,
    });
    // 30 MiB of plain buffered writes, no fsync, no O_DIRECT: at 10 MiB/s at least ~3 s.
    let script = "dd if=/dev/zero of=$PSY_SCRATCH/blob bs=1M count=30 2>&1; echo done";
    let started = Instant::now();
    let (o, out) = f.run_with(script, &throttled, None);
    let took = started.elapsed();
    assert_eq!(o.exit.code, Some(0), "{out}");
    assert!(out.contains("done"), "{out}");
    assert!(
        took.as_secs_f64() >= 2.5,
        "30 MiB of buffered writes at 10 MiB/s took {took:?}: not throttled\n{out}"
    );
    let written = o.stats.io_write_bytes.unwrap_or(0);
    assert!(written >= 30 * MIB, "counted {written} bytes written");

    // The same writes without a limit are not held back (the limit is what slowed them).
    let started = Instant::now();
    let (o, out) = f.run_with(script, &limits(), None);
    assert_eq!(o.exit.code, Some(0), "{out}");
    assert!(started.elapsed() < took, "unthrottled writes were as slow");
}
