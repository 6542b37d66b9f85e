//! Small, stable renderings of sizes, durations and process endings for human output.

use psy_model::{AttemptResult, AttemptStatus, ExitInfo, Resources};

/// A byte count in binary units: `512MiB`, `1.5GiB`, `900B`; whole numbers lose the decimal.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n}B");
    }
    let mut unit = 0;
    let mut div: u64 = 1024;
    while unit + 1 < UNITS.len() && n >= div * 1024 {
        div *= 1024;
        unit += 1;
    }
    let whole = n / div;
    if whole * div == n {
        format!("{whole}{}", UNITS[unit])
    } else {
        format!("{:.1}{}", n as f64 / div as f64, UNITS[unit])
    }
}

/// A count with its noun, plural unless the count is one: `1 test`, `0 tests`, `2 attempts`.
pub fn count<N: std::fmt::Display + PartialEq + From<u8>>(n: N, noun: &str) -> String {
    count_as(n, noun, &format!("{noun}s"))
}

/// [`count`] for a noun whose plural is not its singular plus `s`.
pub fn count_as<N: std::fmt::Display + PartialEq + From<u8>>(
    n: N,
    singular: &str,
    plural: &str,
) -> String {
    if n == N::from(1) {
        format!("{n} {singular}")
    } else {
        format!("{n} {plural}")
    }
}

/// A duration for a test line: always seconds with milliseconds (`1.234s`), so lines align
/// and compare at a glance.
pub fn seconds(ms: u64) -> String {
    format!("{}.{:03}s", ms / 1000, ms % 1000)
}

/// A duration for totals: `1.234s` under a minute, then `2m03.456s`, then `1h02m03s`.
pub fn duration(ms: u64) -> String {
    let secs = ms / 1000;
    if secs < 60 {
        seconds(ms)
    } else if secs < 3600 {
        format!("{}m{:02}.{:03}s", secs / 60, secs % 60, ms % 1000)
    } else {
        format!(
            "{}h{:02}m{:02}s",
            secs / 3600,
            (secs % 3600) / 60,
            secs % 60
        )
    }
}

/// How a process ended: `exit 1`, `signal 9 (SIGKILL)`, or `no exit status`.
pub fn exit(info: &ExitInfo) -> String {
    match (info.code, info.signal) {
        (_, Some(sig)) => match signal_name(sig) {
            Some(name) => format!("signal {sig} ({name})"),
            None => format!("signal {sig}"),
        },
        (Some(code), None) => format!("exit {code}"),
        (None, None) => "no exit status".to_string(),
    }
}

/// The status-specific part of how an attempt ended: `exit 1` or `signal 9 (SIGKILL)` for a
/// failure, `peak 512MiB of 512MiB` for an OOM (`limits` are the attempt's resources); `None`
/// when the status says it all.
pub fn attempt_end(a: &AttemptResult, limits: Option<&Resources>) -> Option<String> {
    match a.status {
        AttemptStatus::Pass
        | AttemptStatus::Timeout
        | AttemptStatus::Error
        | AttemptStatus::Skipped => None,
        AttemptStatus::Fail => Some(exit(&a.exit)),
        AttemptStatus::Oom => {
            let limit = limits.map(|r| bytes(r.memory_bytes));
            Some(match (a.peak_memory_bytes, limit) {
                (Some(peak), Some(limit)) => format!("peak {} of {limit}", bytes(peak)),
                (Some(peak), None) => format!("peak {}", bytes(peak)),
                (None, Some(limit)) => format!("limit {limit}"),
                (None, None) => return None,
            })
        }
    }
}

/// Names of the signals a test is likely to die of (Linux numbering).
pub fn signal_name(sig: i32) -> Option<&'static str> {
    Some(match sig {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        4 => "SIGILL",
        5 => "SIGTRAP",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        14 => "SIGALRM",
        15 => "SIGTERM",
        24 => "SIGXCPU",
        25 => "SIGXFSZ",
        31 => "SIGSYS",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(bytes(0), "0B");
        assert_eq!(bytes(1023), "1023B");
        assert_eq!(bytes(1024), "1KiB");
        assert_eq!(bytes(512 << 20), "512MiB");
        assert_eq!(bytes(3 << 29), "1.5GiB");
        assert_eq!(bytes(500_000_000), "476.8MiB");
        assert_eq!(bytes(u64::MAX), "16384.0PiB");
    }

    #[test]
    fn counts() {
        assert_eq!(count(1usize, "test"), "1 test");
        assert_eq!(count(0usize, "test"), "0 tests");
        assert_eq!(count(2u32, "attempt"), "2 attempts");
        assert_eq!(count(1u64, "line"), "1 line");
        assert_eq!(
            count_as(3usize, "directory", "directories"),
            "3 directories"
        );
    }

    #[test]
    fn durations() {
        assert_eq!(seconds(1234), "1.234s");
        assert_eq!(seconds(5), "0.005s");
        assert_eq!(seconds(125_000), "125.000s");
        assert_eq!(duration(59_999), "59.999s");
        assert_eq!(duration(123_456), "2m03.456s");
        assert_eq!(duration(3_723_000), "1h02m03s");
    }

    #[test]
    fn exits() {
        let e = |code, signal| exit(&ExitInfo { code, signal });
        assert_eq!(e(Some(1), None), "exit 1");
        assert_eq!(e(None, Some(9)), "signal 9 (SIGKILL)");
        assert_eq!(e(None, Some(40)), "signal 40");
        assert_eq!(e(None, None), "no exit status");
    }
}
