//! `psy calibrate`: measures the disk behind a directory and writes its IO capacity to the host
//! file (see `psy_config::host_file`), which `psy run` admits IO throttles against.

mod measure;
mod target;

use anyhow::Context;
use clap::Args;
use measure::{Direction, Measured, Pattern, PHASES};
use psy_config::{format_size, host_file};
use psy_model::IoCapacity;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// The share of each measured figure written as capacity. Each figure is measured alone, on a
/// disk with nothing else to do, while tests mix reads and writes and share the disk with psy's
/// own database and logs and with the rest of the machine: admitting the full figure would let
/// the sum of throttles promise more than the disk delivers.
const KEEP_PERCENT: u64 = 80;

#[derive(Debug, Args)]
pub struct CalibrateArgs {
    /// Measure the disk behind this directory (the one the tests' scratch areas are on).
    #[arg(long, value_name = "DIR", default_value = ".")]
    dir: PathBuf,
    /// Seconds of each of the four measurements.
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=600))]
    seconds: u64,
    /// Print the host file instead of writing it.
    #[arg(long)]
    dry_run: bool,
}

pub fn run(args: CalibrateArgs) -> anyhow::Result<ExitCode> {
    let dir = std::fs::canonicalize(&args.dir)
        .map_err(|e| crate::error::usage(format!("--dir {}: {e}", args.dir.display())))?;
    let disk = target::disk_behind(&dir)?;
    let size = target::file_size(&dir)?;
    let file = target::scratch_file(&dir)?;
    let per_phase = Duration::from_secs(args.seconds);
    println!(
        "measuring {} ({}:{}) behind {} with a {} scratch file, {} per measurement",
        disk.name,
        disk.major,
        disk.minor,
        dir.display(),
        format_size(size),
        psy_config::format_duration(per_phase)
    );

    let mut results = Vec::new();
    let mut filled = size;
    for phase in PHASES {
        let span = if phase.direction == Direction::Read || phase.pattern == Pattern::Random {
            filled
        } else {
            size
        };
        let m = measure::run(&file, phase, span, per_phase).with_context(|| {
            format!(
                "{} on a scratch file in {}",
                phase.describe(),
                dir.display()
            )
        })?;
        if phase.pattern == Pattern::Sequential && phase.direction == Direction::Write {
            filled = m.filled;
        }
        tracing::debug!(?phase, ?m, "measured");
        results.push((phase, m));
    }
    drop(file);

    let measured = figures(&results);
    let kept = keep(&measured);
    print_table(&results, &kept);

    let comment = format!(
        "written by `psy calibrate` on {}: {} ({}:{}), behind {}\n\
         {KEEP_PERCENT}% of what {}s per measurement gave; edit freely, \
         `[host] io` in a manifest overrides each key",
        utc_now(),
        disk.name,
        disk.major,
        disk.minor,
        dir.display(),
        args.seconds
    );
    let path = host_file::default_path();
    // What else the file says (`[images]`) stays.
    let mut file = host_file::load(&path)?.unwrap_or_default();
    file.io = kept;
    let text = host_file::render(&file, &comment);
    if args.dry_run {
        println!("\n--dry-run: would write {}:\n{text}", path.display());
    } else {
        write(&path, &text)?;
        println!("\nwrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Bytes per second of the sequential phases, IO per second of the random ones.
fn figures(results: &[(measure::Phase, Measured)]) -> IoCapacity {
    let mut io = IoCapacity::default();
    for (phase, m) in results {
        let slot = match (phase.pattern, phase.direction) {
            (Pattern::Sequential, Direction::Read) => (&mut io.read_bps, m.bytes_per_second()),
            (Pattern::Sequential, Direction::Write) => (&mut io.write_bps, m.bytes_per_second()),
            (Pattern::Random, Direction::Read) => (&mut io.read_iops, m.ops_per_second()),
            (Pattern::Random, Direction::Write) => (&mut io.write_iops, m.ops_per_second()),
        };
        *slot.0 = Some(slot.1);
    }
    io
}

/// [`KEEP_PERCENT`] of each figure, rounded down to what reads well (whole MiB/s, two
/// significant digits of IO/s) and never 0 (the host file refuses a zero capacity).
fn keep(measured: &IoCapacity) -> IoCapacity {
    let share = |n: u64| n / 100 * KEEP_PERCENT + n % 100 * KEEP_PERCENT / 100;
    let bps = |n: Option<u64>| n.map(|n| (share(n) >> 20).max(1) << 20);
    let iops = |n: Option<u64>| n.map(|n| two_digits(share(n)).max(1));
    IoCapacity {
        read_bps: bps(measured.read_bps),
        write_bps: bps(measured.write_bps),
        read_iops: iops(measured.read_iops),
        write_iops: iops(measured.write_iops),
    }
}

/// `21345` → `21000`, `987` → `980`, `42` → `42`.
fn two_digits(n: u64) -> u64 {
    let mut unit = 1;
    while n / unit >= 100 {
        unit *= 10;
    }
    n / unit * unit
}

fn print_table(results: &[(measure::Phase, Measured)], kept: &IoCapacity) {
    println!(
        "\n{:<44} {:>12} {:>12}  key",
        "measurement",
        "measured",
        format!("kept {KEEP_PERCENT}%")
    );
    for (phase, m) in results {
        let (measured, written, key) = match (phase.pattern, phase.direction) {
            (Pattern::Sequential, d) => {
                let (kept, key) = match d {
                    Direction::Read => (kept.read_bps, "read-bps"),
                    Direction::Write => (kept.write_bps, "write-bps"),
                };
                let rate = |n: u64| format!("{}/s", format_size(n));
                (
                    rate(m.bytes_per_second()),
                    kept.map_or_else(String::new, rate),
                    key,
                )
            }
            (Pattern::Random, d) => {
                let (kept, key) = match d {
                    Direction::Read => (kept.read_iops, "read-iops"),
                    Direction::Write => (kept.write_iops, "write-iops"),
                };
                let rate = |n: u64| format!("{n} IO/s");
                (
                    rate(m.ops_per_second()),
                    kept.map_or_else(String::new, rate),
                    key,
                )
            }
        };
        println!(
            "{:<44} {measured:>12} {written:>12}  {key}",
            phase.describe()
        );
    }
    println!(
        "\nEach figure is measured alone on an otherwise idle disk; tests mix reads and writes and \
         share the disk with the rest of the machine, so {KEEP_PERCENT}% is kept as capacity."
    );
}

/// Writes the host file through a temporary sibling, so `psy run` never reads half a file.
fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    let parent = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)
        .with_context(|| format!("creating the directory of the host file {}", path.display()))?;
    let tmp = parent.join(format!(
        ".{}.tmp",
        path.file_name()
            .map_or("host.toml".into(), |n| n.to_string_lossy())
    ));
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .with_context(|| format!("writing the host file {}", path.display()))
}

/// `2026-11-26T10:00:00Z`.
fn utc_now() -> String {
    let ([year, month, day, hour, minute, second], _) = psy_runner::clock::utc_now();
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_a_share_rounded_down_and_never_zero() {
        let measured = IoCapacity {
            read_bps: Some(1000 << 20),
            write_bps: Some(100),
            read_iops: Some(21_345),
            write_iops: Some(1),
        };
        let kept = keep(&measured);
        assert_eq!(kept.read_bps, Some(800 << 20));
        assert_eq!(kept.write_bps, Some(1 << 20), "at least 1 MiB/s");
        assert_eq!(kept.read_iops, Some(17_000));
        assert_eq!(kept.write_iops, Some(1));
        assert_eq!(keep(&IoCapacity::default()), IoCapacity::default());
        assert_eq!(two_digits(987), 980);
        assert_eq!(two_digits(42), 42);
        assert_eq!(two_digits(100), 100);
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let now = utc_now();
        assert_eq!(now.len(), "2026-11-26T10:00:00Z".len(), "{now}");
        assert!(now.ends_with('Z') && now.as_bytes()[10] == b'T', "{now}");
    }
}
