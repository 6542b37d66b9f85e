//! Limits enforced on an attempt: the timeout kills it (`timeout`), the memory limit kills it
//! (`oom`), and in both cases the neighbours are unaffected.

use crate::support::{root, Project};

/// The `psy show --attempts` row of `test` (attempt 1), split on whitespace.
#[track_caller]
fn show_row(p: &Project, test: &str) -> Vec<String> {
    let out = p.psy(&["show", "--attempts"]);
    out.code(0);
    let row = out
        .stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some(test))
        .unwrap_or_else(|| panic!("no row for {test}\n{out}"));
    row.split_whitespace().map(str::to_string).collect()
}

#[test]
fn timeout() {
    if !root() {
        return;
    }
    let p = Project::new(
        r#"
[[test]]
name = "slow"
command = ["sleep", "100"]
timeout = "1s"
[[test]]
name = "quick"
command = ["true"]
"#,
    );
    let (out, events) = p.run_json(&[]);
    out.code(1);
    assert_eq!(events.status("slow"), "timeout");
    assert_eq!(events.status("quick"), "pass");
    let attempt = events.attempts("slow")[0];
    assert_eq!(attempt["status"], "timeout");
    assert_eq!(attempt["exit"]["code"], serde_json::Value::Null, "killed");
    assert_eq!(events.summary()["timed_out"], 1);

    // Columns: TEST TRY STATUS TIME CPU PEAK-MEM EXIT...
    let row = show_row(&p, "slow");
    assert_eq!(row[1], "1");
    assert_eq!(row[2], "timeout", "{row:?}");
}

#[test]
fn oom_kills_only_the_hog() {
    if !root() {
        return;
    }
    let p = Project::new(
        r#"
[[test]]
name = "hog"
# Writes every byte, so the pages are really used (a zeroed allocation may not be).
command = ["python3", "-c", "b = b'x' * (512 << 20); print(len(b))"]
memory = "64MiB"
[[test]]
name = "neighbour"
command = ["sh", "-c", "echo fine"]
memory = "64MiB"
"#,
    );
    let (out, events) = p.run_json(&[]);
    out.code(1);
    assert_eq!(events.status("hog"), "oom", "{out}");
    assert_eq!(events.status("neighbour"), "pass");
    assert_eq!(events.summary()["oom"], 1);
    let peak = events.attempts("hog")[0]["peak_memory_bytes"]
        .as_u64()
        .expect("the peak memory of an OOM-killed attempt is measured");
    // It reached the limit (python itself needs far less than half of it).
    assert!(peak >= 32 << 20, "peak {peak} bytes");

    let row = show_row(&p, "hog");
    assert_eq!(row[2], "oom", "{row:?}");
    let peak_shown = &row[5];
    let mib: f64 = peak_shown
        .strip_suffix("MiB")
        .unwrap_or_else(|| panic!("peak memory column {peak_shown:?} in {row:?}"))
        .parse()
        .unwrap();
    assert!(mib >= 32.0, "{row:?}");
}

/// `cpu-policy = "exclusive"`: a whole-core attempt gets cores of its own; fractional attempts
/// running beside it are confined to the other cores.
#[test]
fn exclusive_cores_are_not_shared() {
    if !root() {
        return;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores < 2 {
        eprintln!("skipped: needs 2 cores");
        return;
    }
    let p = Project::new(
        r#"
[host]
cpu-policy = "exclusive"

[[test]]
name = "pinned"
command = ["sh", "-c", "grep Cpus_allowed_list /proc/self/status; sleep 1"]
cpus = 1

[[test]]
name = "shared"
command = ["sh", "-c", "sleep 0.3; grep Cpus_allowed_list /proc/self/status"]
cpus = 0.5
"#,
    );
    let (out, _) = p.run_json(&[]);
    out.code(0);
    let list = |test: &str| {
        let log = std::fs::read_dir(p.dir().join(".psyduck/logs"))
            .unwrap()
            .flatten()
            .find(|run| !run.file_name().to_string_lossy().starts_with('.'))
            .unwrap()
            .path()
            .join(format!("{test}.1.out"));
        let text = std::fs::read_to_string(&log).unwrap();
        text.trim().rsplit(['\t', ' ']).next().unwrap().to_string()
    };
    let pinned = list("pinned");
    assert!(pinned.parse::<u32>().is_ok(), "one core: {pinned:?}");
    // The fractional attempt ran while `pinned` held its core: it must not include it.
    let shared = list("shared");
    assert!(
        !shared.split([',', '-']).any(|c| c == pinned),
        "shared {shared:?} vs pinned {pinned}"
    );
}

/// `io = { write-bps = ... }`: a writer is held to its rate for direct writes, buffered writes it
/// flushes with fsync, and plain buffered writes (on cgroup v1 through a `sync`-mounted scratch
/// filesystem of its own, see docs/architecture.md).
#[test]
fn io_write_limit_throttles_direct_fsynced_and_buffered_writes() {
    if !root() {
        return;
    }
    let p = Project::new(
        r#"
[defaults]
timeout = "60s"

[[test]]
name = "direct"
command = ["sh", "-c", "dd if=/dev/zero of=$PSY_SCRATCH/f bs=1M count=50 oflag=direct 2>&1"]
io = { write-bps = "10MiB" }

[[test]]
name = "fsynced"
command = ["sh", "-c", "dd if=/dev/zero of=$PSY_SCRATCH/f bs=1M count=50 conv=fsync 2>&1"]
io = { write-bps = "10MiB" }

[[test]]
name = "buffered"
command = ["sh", "-c", "dd if=/dev/zero of=$PSY_SCRATCH/f bs=1M count=50 2>&1"]
io = { write-bps = "10MiB" }
"#,
    );
    let (out, events) = p.run_json(&[]);
    out.code(0);
    for test in ["direct", "fsynced", "buffered"] {
        let attempt = events.attempts(test)[0];
        let ms = attempt["duration_ms"].as_u64().unwrap();
        // 50 MiB at 10 MiB/s cannot take less than ~5 s (a lower bound, not a speed target).
        assert!(
            ms >= 4_500,
            "{test} wrote 50 MiB at a 10 MiB/s limit in {ms} ms\n{out}"
        );
        // Measured by the cgroup and kept with the attempt.
        let written = attempt["io_write_bytes"].as_u64().unwrap_or(0);
        assert!(
            written >= 50 << 20,
            "{test}: {written} bytes recorded as written\n{attempt}"
        );
    }
    let row = show_row(&p, "direct");
    // The test's 50 MiB (plus a little filesystem metadata) and the requests that carried it.
    assert!(row[7].starts_with("50"), "WRITTEN/OPS column: {row:?}");
    let ops: u64 = row[7].rsplit('/').next().unwrap().parse().unwrap();
    assert!(ops >= 50, "WRITTEN/OPS column: {row:?}");
}

/// `disk = "..."`: the scratch area is a filesystem of that size; writing past it fails with
/// ENOSPC inside the test, the host only ever held the image, and nothing is left afterwards.
#[test]
fn disk_limit_gives_enospc_inside_the_test() {
    if !root() {
        return;
    }
    let p = Project::new(
        r#"
[[test]]
name = "fills-its-disk"
disk = "16MiB"
command = ["sh", "-c", """
    test -z "$(ls -A "$PSY_SCRATCH")" || { echo "scratch not empty"; exit 3; }
    dd if=/dev/zero of="$PSY_SCRATCH/small" bs=1M count=4 2>/dev/null || { echo "4 MiB did not fit"; exit 4; }
    if dd if=/dev/zero of="$PSY_SCRATCH/big" bs=1M count=64 2>/tmp/err; then
        echo "64 MiB fitted in a 16 MiB disk"; exit 5
    fi
    grep -q "No space left on device" /tmp/err || { cat /tmp/err; exit 6; }
    echo ENOSPC as expected
"""]
"#,
    );
    let (out, events) = p.run_json(&[]);
    out.code(0);
    assert_eq!(events.status("fills-its-disk"), "pass", "{out}");
    let leftovers: Vec<_> = walk(&p.dir().join(".psyduck/scratch"));
    assert!(
        leftovers.iter().all(|f| !f.ends_with(".img")),
        "disk images left: {leftovers:?}"
    );
    let loops = std::fs::read_to_string("/proc/mounts").unwrap();
    assert!(
        !loops.contains(p.dir().to_str().unwrap()),
        "a mount of the project remains:\n{loops}"
    );
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            out.push(e.path().display().to_string());
            out.extend(walk(&e.path()));
        }
    }
    out
}

/// `[host] io`: IO throttles are admitted against the host's IO capacity: two writers that
/// together ask for more than it never run at once, and one that alone asks for more is refused
/// before anything runs.
#[test]
fn io_capacity_admits_writers_one_after_the_other() {
    if !root() {
        return;
    }
    let p = Project::new(
        r#"
[host]
io = { write-bps = "20MiB" }

[defaults]
cpus = 0.1
io = { write-bps = "15MiB" }

[[test]]
name = "w1"
command = ["sh", "-c", "sleep 0.3"]

[[test]]
name = "w2"
command = ["sh", "-c", "sleep 0.3"]
"#,
    );
    let (out, events) = p.run_json(&[]);
    out.code(0);
    let span = |id: &str| {
        let a = events.attempts(id)[0];
        let start = a["started_at_ms"].as_u64().unwrap();
        (start, start + a["duration_ms"].as_u64().unwrap())
    };
    let (a, b) = (span("w1"), span("w2"));
    assert!(
        a.1 <= b.0 || b.1 <= a.0,
        "15 + 15 MiB/s ran together on a 20 MiB/s host: {a:?} {b:?}"
    );

    let too_big = Project::new(
        r#"
[host]
io = { write-bps = "20MiB" }

[[test]]
name = "hog"
command = ["true"]
io = { write-bps = "50MiB" }
"#,
    );
    let out = too_big.psy(&["run"]);
    out.code(2);
    assert!(
        out.stderr.contains("hog") && out.stderr.contains("io write-bps"),
        "{out}"
    );
}

/// `[[test.volume]]`: what one attempt writes to a volume is there for the next attempt of the
/// same test; volumes are removed after the run unless `--keep-volumes`.
#[test]
fn volumes_persist_across_attempts_and_are_removed_after_the_run() {
    if !root() {
        return;
    }
    let manifest = r#"
[[test]]
name = "stateful"
retries = 1
command = ["sh", "-c", """
    if [ "$PSY_ATTEMPT" = 1 ]; then echo kept-by-the-volume > /tmp/vol/data; exit 1; fi
    test "$(cat /tmp/vol/data)" = kept-by-the-volume && test ! -e /tmp/vol/lost+found -o -d /tmp/vol/lost+found
"""]

[[test.volume]]
name = "data"
size = "16MiB"
path = "/tmp/vol"
"#;
    let p = Project::new(manifest);
    let (out, events) = p.run_json(&[]);
    out.code(0);
    assert_eq!(
        events.status("stateful"),
        "flaky",
        "attempt 2 saw attempt 1's data\n{out}"
    );
    assert!(
        !p.dir()
            .join(".psyduck/volumes")
            .read_dir()
            .is_ok_and(|mut d| d.next().is_some()),
        "volumes removed"
    );

    let (out, _) = p.run_json(&["--keep-volumes"]);
    out.code(0);
    let kept: Vec<_> = std::fs::read_dir(p.dir().join(".psyduck/volumes"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(kept[0].to_string_lossy().starts_with("kept-"), "{kept:?}");

    // A path the host lacks is made inside the container only; one the kernel owns is refused.
    let missing = format!("/no-such-dir-for-psy-{}", std::process::id());
    let elsewhere = Project::new(&format!(
        r#"
[[test]]
name = "t"
command = ["sh", "-c", "echo here > {missing}/file && cat {missing}/file"]
[[test.volume]]
name = "data"
size = "16MiB"
path = "{missing}"
"#
    ));
    let out = elsewhere.psy(&["run"]);
    out.code(0);
    assert!(
        !std::path::Path::new(&missing).exists(),
        "{missing} made on the host"
    );
    let bad = Project::new(
        r#"
[[test]]
name = "t"
command = ["true"]
[[test.volume]]
name = "data"
size = "16MiB"
path = "/proc/psy-volume"
"#,
    );
    let out = bad.psy(&["run"]);
    out.code(2);
    assert!(
        out.stderr.contains("psyduck.toml:5") && out.stderr.contains("/proc/psy-volume"),
        "{out}"
    );
}
