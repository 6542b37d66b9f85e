//! Measures warm starts beside plain pytest, with NO sandbox entry yet:
//!
//! ```text
//! cargo run --release -p psy-warm --example warm_bench -- [DIR [PYTEST ARGS...]]
//! ```
//!
//! Without `DIR`, downloads more-itertools 10.5.0's sdist from PyPI (`pip download`) and
//! measures its suite. Prints plain serial `pytest -q`, the warm worker one fork at a time and
//! two at a time (each including the worker's start and collection), and the per-test overhead.

use psy_warm::measure::measure;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut argv = std::env::args().skip(1);
    let scratch = tempfile::tempdir()?;
    let dir = match argv.next() {
        Some(dir) => PathBuf::from(dir),
        None => {
            let status = Command::new("python3")
                .args(["-m", "pip", "download", "--no-deps", "--no-binary", ":all:"])
                .args(["-q", "-d"])
                .arg(scratch.path())
                .arg("more-itertools==10.5.0")
                .status()?;
            if !status.success() {
                return Err("pip download more-itertools==10.5.0 failed".into());
            }
            let unpacked = Command::new("tar")
                .arg("xzf")
                .arg(scratch.path().join("more-itertools-10.5.0.tar.gz"))
                .arg("-C")
                .arg(scratch.path())
                .status()?;
            if !unpacked.success() {
                return Err("unpacking more-itertools failed".into());
            }
            scratch.path().join("more-itertools-10.5.0")
        }
    };
    let args: Vec<String> = argv.collect();
    let env = vec![("PYTHONDONTWRITEBYTECODE".to_string(), "1".to_string())];
    let files = scratch.path().join("files");
    let figures = measure("python3", &args, &dir, &env, &[1, 2], &files)?;
    println!(
        "suite: {} ({} tests), no sandbox entry",
        dir.display(),
        figures.tests
    );
    let secs = |d: &Duration| d.as_secs_f64();
    println!(
        "plain `pytest -q` (serial):  {:>7.2} s wall {:>7.2} s CPU",
        secs(&figures.plain),
        secs(&figures.plain_cpu)
    );
    for (parallel, wall, cpu) in &figures.warm {
        println!(
            "warm, {parallel} fork(s) at a time:   {:>7.2} s wall {:>7.2} s CPU ({:.2}x plain wall, {:.2}x plain CPU)",
            secs(wall),
            secs(cpu),
            secs(wall) / secs(&figures.plain),
            secs(cpu) / secs(&figures.plain_cpu).max(f64::EPSILON)
        );
    }
    println!(
        "warm worker start + collect:    {:>8.2} s",
        figures.collect.as_secs_f64()
    );
    println!(
        "per-test overhead (fork + exit + result, serial): median {:.2} ms, mean {:.2} ms",
        figures.overhead_median.as_secs_f64() * 1e3,
        figures.overhead_mean.as_secs_f64() * 1e3
    );
    Ok(())
}
