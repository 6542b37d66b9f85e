//! Real-kernel checks of disk IO throttles and IO stats (v1 blkio or v2 io, whatever this host
//! has). Needs root; prints "skipped: needs root" otherwise. Writes land in CARGO_TARGET_TMPDIR,
//! which must be on a real block device (not tmpfs) for the throttle to mean anything.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use psy_sandbox::cgroup::{
    self, Cgroup, CgroupDriver, CgroupError, CgroupLimits, CgroupVersion, IoLimits,
};

const PREFIX: &str = "psytest";
const MIB: u64 = 1 << 20;
/// What each dd writes, in MiB.
const WRITE_MIB: u64 = 30;
const LIMIT_BPS: u64 = 10 * MIB;

/// A driver that can throttle IO, a fresh scratch dir and its block device.
struct Setup {
    driver: Box<dyn CgroupDriver>,
    dir: PathBuf,
    device: (u32, u32),
}

/// The [`Setup`] for `test`, or `None` after printing why the test is skipped.
fn setup(test: &str) -> Option<Setup> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("skipped: needs root ({test})");
        return None;
    }
    let detected = cgroup::detect(Path::new("/proc"), PREFIX).expect("detect");
    let Some(driver) = detected.driver else {
        println!("skipped: no usable cgroup ({test}): {:?}", detected.reason);
        return None;
    };
    if let Some(m) = driver
        .missing_guarantees()
        .into_iter()
        .find(|m| m.starts_with("io limits"))
    {
        println!("skipped: {m} ({test})");
        return None;
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("io-root-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    match cgroup::block_device_of(&dir) {
        Ok(device) => Some(Setup {
            driver,
            dir,
            device,
        }),
        Err(e @ CgroupError::NotABlockDevice { .. }) => {
            println!("skipped: {e} ({test})");
            None
        }
        Err(e) => panic!("block_device_of({}): {e}", dir.display()),
    }
}

fn name(tag: &str) -> String {
    cgroup::run_group_name(PREFIX, std::process::id(), tag)
}

fn io_limit(device: (u32, u32), write_bps: Option<u64>) -> CgroupLimits {
    CgroupLimits {
        io: Some(IoLimits {
            write_bps,
            ..IoLimits::measure_only(device)
        }),
        ..Default::default()
    }
}

/// Runs `dd if=/dev/zero of=<file> bs=1M count=WRITE_MIB <flags>`, inside `group` if given
/// (moved there before it writes anything), and returns how long the write took.
fn dd(group: Option<&dyn Cgroup>, file: &Path, flags: &str) -> Duration {
    let script = format!(
        "read _ && exec dd if=/dev/zero of='{}' bs=1M count={WRITE_MIB} {flags}",
        file.display()
    );
    let mut child = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sh");
    if let Some(group) = group {
        group.add_pid(child.id()).expect("move dd into the group");
    }
    let start = Instant::now();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"go\n").unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let took = start.elapsed();
    assert!(
        out.status.success(),
        "dd {flags}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

fn written(group: &dyn Cgroup) -> u64 {
    let stats = group.stats().unwrap();
    stats
        .io_write_bytes
        .expect("an IO-limited group reports IO stats")
}

#[test]
fn direct_writes_are_throttled_and_counted() {
    let Some(Setup {
        driver,
        dir,
        device,
    }) = setup("direct")
    else {
        return;
    };
    let file = dir.join("direct");
    let group = driver
        .create(&name("io-direct"), &io_limit(device, Some(LIMIT_BPS)))
        .unwrap();
    let took = dd(Some(group.as_ref()), &file, "oflag=direct");
    let bytes = written(group.as_ref());
    group.remove().unwrap();
    let free = dd(None, &file, "oflag=direct");
    println!(
        "O_DIRECT {WRITE_MIB} MiB: {:.2?} at {} MiB/s limit ({bytes} bytes counted), {:.2?} \
         unthrottled",
        took,
        LIMIT_BPS / MIB,
        free
    );
    std::fs::remove_dir_all(&dir).unwrap();
    // A correctness bound of the throttle (30 MiB at 10 MiB/s takes 3 s), not a speed check;
    // the slack covers the kernel's first time slice.
    assert!(
        took >= Duration::from_millis(2500),
        "{WRITE_MIB} MiB at {} MiB/s took only {took:?}",
        LIMIT_BPS / MIB
    );
    assert!(bytes >= WRITE_MIB * MIB, "only {bytes} bytes counted");
}

#[test]
fn measuring_without_limits_counts_writes() {
    let Some(Setup {
        driver,
        dir,
        device,
    }) = setup("measure")
    else {
        return;
    };
    let group = driver
        .create(&name("io-measure"), &io_limit(device, None))
        .unwrap();
    dd(Some(group.as_ref()), &dir.join("measure"), "oflag=direct");
    let bytes = written(group.as_ref());
    let ops = group.stats().unwrap().io_write_ops;
    group.remove().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    println!("measure-only group: {bytes} bytes, {ops:?} write ops");
    assert!(bytes >= WRITE_MIB * MIB, "only {bytes} bytes counted");
    assert!(ops.is_some_and(|n| n >= WRITE_MIB), "{ops:?}");
}

#[test]
fn blank_v1_groups_refuse_io_limits_later() {
    let Some(Setup {
        driver,
        dir,
        device,
    }) = setup("blank")
    else {
        return;
    };
    std::fs::remove_dir_all(&dir).unwrap();
    let group = driver
        .create(&name("io-blank"), &CgroupLimits::default())
        .unwrap();
    let result = group.set_limits(&io_limit(device, Some(LIMIT_BPS)));
    group.remove().unwrap();
    match driver.version() {
        CgroupVersion::V1 => {
            let err = result.unwrap_err();
            assert!(
                matches!(
                    err,
                    CgroupError::MissingController {
                        controller: "blkio",
                        ..
                    }
                ),
                "{err}"
            );
        }
        CgroupVersion::V2 => result.unwrap(),
    }
}

/// Not an assertion of either outcome: whether buffered writes are charged to the writer's
/// group depends on the cgroup version and kernel (v1 has no writeback attribution). Prints
/// what this host does; the lead's design depends on it.
#[test]
fn buffered_writes_report() {
    let Some(Setup {
        driver,
        dir,
        device,
    }) = setup("buffered")
    else {
        return;
    };
    let limits = io_limit(device, Some(LIMIT_BPS));
    let group = driver.create(&name("io-fsync"), &limits).unwrap();
    let took = dd(Some(group.as_ref()), &dir.join("fsync"), "conv=fsync");
    let bytes = written(group.as_ref());
    group.remove().unwrap();
    println!(
        "{:?} buffered+fsync {WRITE_MIB} MiB at {} MiB/s limit: {took:.2?}, {bytes} bytes charged",
        driver.version(),
        LIMIT_BPS / MIB
    );

    // No fsync: the data reaches the disk by background writeback (forced here by sync(1)
    // from outside the group).
    let group = driver.create(&name("io-nosync"), &limits).unwrap();
    let took = dd(Some(group.as_ref()), &dir.join("nosync"), "");
    let before = written(group.as_ref());
    let start = Instant::now();
    assert!(Command::new("sync").status().unwrap().success());
    let synced = start.elapsed();
    let after = written(group.as_ref());
    group.remove().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    println!(
        "{:?} buffered without fsync: dd {took:.2?}, charged {before} bytes; after an outside \
         sync ({synced:.2?}): {after} bytes",
        driver.version()
    );
}
