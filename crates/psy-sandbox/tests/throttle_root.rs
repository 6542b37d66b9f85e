//! Disk IO throttles hold for a container's buffered writes too (root only; prints "skipped"
//! otherwise). On cgroup v1 the kernel neither throttles nor counts background writeback, so a
//! throttled test's scratch area is a filesystem of its own mounted `sync`; this checks the
//! end result, whatever the mechanism on this host.

mod support;

use psy_sandbox::cgroup::{block_device_of, IoLimits};
use std::time::Instant;
use support::{limits, Fixture};

const MIB: u64 = 1 << 20;

/// The fixture's limits plus `write-bps` 10 MiB/s (on the disk behind the project; the sandbox
/// moves it to the test's own filesystems where the host needs that).
fn write_limited(f: &Fixture) -> psy_sandbox::cgroup::CgroupLimits {
    let mut throttled = limits();
    throttled.io = Some(IoLimits {
        write_bps: Some(10 * MIB),
        ..IoLimits::measure_only(block_device_of(f.project()).unwrap_or_else(|e| {
            panic!(
                "the throttle tests keep their files in target/tmp, which must be on a block \
                 device (scripts/test-v2 binds the VM's disk there): {e}"
            )
        }))
    });
    throttled
}

#[test]
fn buffered_writes_without_fsync_are_held_to_the_write_limit() {
    require_root!();
    let f = Fixture::new();
    let throttled = write_limited(&f);
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

#[test]
fn writes_to_a_volume_are_held_to_the_write_limit_too() {
    require_root!();
    let f = Fixture::new();
    let image = f.project().join("vol.img");
    psy_sandbox::format_image(&image, 256 * MIB).unwrap();
    let throttled = write_limited(&f);
    let (mut spec, out_path) =
        f.spec("dd if=/dev/zero of=/tmp/vol/blob bs=1M count=30 2>&1; echo done");
    spec.volumes = vec![(image, "/tmp/vol".into())];
    let started = Instant::now();
    let mut c = f.sandbox.spawn(spec, &throttled).unwrap();
    c.wait_timeout(None).unwrap();
    let o = c.finish();
    let took = started.elapsed();
    let out = std::fs::read_to_string(out_path).unwrap();
    assert_eq!(o.exit.code, Some(0), "{out} {:?}", o.setup_error);
    assert!(
        took.as_secs_f64() >= 2.5,
        "30 MiB of buffered writes to a volume at 10 MiB/s took {took:?}\n{out}"
    );
}
