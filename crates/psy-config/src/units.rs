//! Sizes, durations and CPU counts as people write them ("512MiB", "1h30m", 0.5), and back.

use psy_model::MILLI_PER_CPU;
use std::time::Duration;

/// A size, duration or CPU count that could not be understood.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    #[error("invalid size {0:?} (expected e.g. \"512MiB\", \"1GB\" or a number of bytes)")]
    Size(String),
    #[error("invalid duration {0:?} (expected e.g. \"500ms\", \"60s\", \"5m\", \"1h30m\" or a number of seconds)")]
    Duration(String),
    #[error("invalid cpus {0} (expected a positive number of CPUs such as 2 or 0.5)")]
    Cpus(String),
    #[error("invalid rate {0:?} (expected bits per second such as \"100Mbit\", \"1Gbit\" or \"500kbit\")")]
    Rate(String),
}

/// Multipliers of the size suffixes. Bare `K`/`M`/`G`/`T` are binary, like most tools that
/// take memory limits (docker, systemd); `kB`/`MB`/... are decimal.
const SIZE_UNITS: &[(&str, u64)] = &[
    ("", 1),
    ("B", 1),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("TiB", 1 << 40),
    ("Ki", 1 << 10),
    ("Mi", 1 << 20),
    ("Gi", 1 << 30),
    ("Ti", 1 << 40),
    ("K", 1 << 10),
    ("k", 1 << 10),
    ("M", 1 << 20),
    ("G", 1 << 30),
    ("T", 1 << 40),
    ("kB", 1_000),
    ("KB", 1_000),
    ("MB", 1_000_000),
    ("GB", 1_000_000_000),
    ("TB", 1_000_000_000_000),
];

/// Multipliers of network rates, in bits per second, decimal as in `tc` and link speeds; the
/// lower-case spellings are `tc`'s (`1mbit`).
const RATE_UNITS: &[(&str, u64)] = &[
    ("bit", 1),
    ("kbit", 1_000),
    ("Kbit", 1_000),
    ("Mbit", 1_000_000),
    ("mbit", 1_000_000),
    ("Gbit", 1_000_000_000),
    ("gbit", 1_000_000_000),
    ("Tbit", 1_000_000_000_000),
    ("tbit", 1_000_000_000_000),
];

/// Parses a size: a number of bytes (`"1048576"`) or a number with a unit (`"512MiB"`, `"1.5GiB"`,
/// `"500MB"`, `"64K"`). Fractions round down to whole bytes.
pub fn parse_size(s: &str) -> Result<u64, UnitError> {
    parse_with_units(s, SIZE_UNITS, UnitError::Size)
}

/// Parses a network rate in bits per second: `"100Mbit"`, `"1.5Gbit"`, `"640kbit"`, `tc`'s
/// `"1mbit"` (a unit is required: a bare number is too easily read as bytes).
pub fn parse_rate(s: &str) -> Result<u64, UnitError> {
    parse_with_units(s, RATE_UNITS, UnitError::Rate)
}

fn parse_with_units(
    s: &str,
    units: &[(&str, u64)],
    error: fn(String) -> UnitError,
) -> Result<u64, UnitError> {
    let err = || error(s.to_string());
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = (&t[..split], t[split..].trim_start());
    let &(_, mult) = units.iter().find(|(u, _)| *u == unit).ok_or_else(err)?;
    if number.is_empty() {
        return Err(err());
    }
    if let Ok(n) = number.parse::<u64>() {
        return n.checked_mul(mult).ok_or_else(err);
    }
    let f: f64 = number.parse().map_err(|_| err())?;
    let bytes = f * mult as f64;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(err());
    }
    Ok(bytes as u64)
}

/// Parses a duration: `"500ms"`, `"60s"`, `"5m"`, `"1h30m"`, `"1.5s"`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, UnitError> {
    let err = || UnitError::Duration(s.to_string());
    let t = s.trim();
    if t.is_empty() {
        return Err(err());
    }
    if let Ok(secs) = t.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).map_err(|_| err());
    }
    let mut total = Duration::ZERO;
    let mut rest = t;
    while !rest.is_empty() {
        let n_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(err)?;
        let u_end = rest[n_end..]
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .map_or(rest.len(), |i| n_end + i);
        let number: f64 = rest[..n_end].parse().map_err(|_| err())?;
        let unit_secs = match &rest[n_end..u_end] {
            "ms" => 0.001,
            "s" | "sec" => 1.0,
            "m" | "min" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            _ => return Err(err()),
        };
        let part = Duration::try_from_secs_f64(number * unit_secs).map_err(|_| err())?;
        total = total.checked_add(part).ok_or_else(err)?;
        rest = &rest[u_end..];
    }
    Ok(total)
}

/// Converts a CPU count (`2`, `0.5`) to milli-CPUs, rounding to the nearest milli-CPU.
pub fn cpus_to_millis(cpus: f64) -> Result<u32, UnitError> {
    let millis = (cpus * f64::from(MILLI_PER_CPU)).round();
    if !millis.is_finite() || millis < 0.0 || millis > f64::from(u32::MAX) {
        return Err(UnitError::Cpus(cpus.to_string()));
    }
    Ok(millis as u32)
}

/// Renders bytes with the largest binary unit that keeps the number at least 1: `"512MiB"`,
/// `"1.5GiB"`, `"100B"` (at most two decimals, so the text parses back to about the same size).
pub fn format_size(bytes: u64) -> String {
    const UNITS: &[(&str, u64)] = &[
        ("TiB", 1 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ];
    for &(unit, mult) in UNITS {
        if bytes >= mult {
            return format!("{}{unit}", trim_decimals(bytes as f64 / mult as f64));
        }
    }
    format!("{bytes}B")
}

/// Renders a duration for people: `"250ms"`, `"1.5s"`, `"2m5s"`, `"1h30m"`. Sub-second precision
/// is dropped from a minute up; the text parses back with [`parse_duration`].
pub fn format_duration(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        return format!("{}ms", d.as_millis());
    }
    if d < Duration::from_secs(60) {
        return format!("{}s", trim_decimals(d.as_secs_f64()));
    }
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    for (n, unit) in [(h, "h"), (m, "m"), (s, "s")] {
        if n > 0 {
            out.push_str(&format!("{n}{unit}"));
        }
    }
    out
}

/// Renders milli-CPUs as a CPU count: `"2"`, `"0.5"`, `"1.25"`.
pub fn format_cpus(millis: u32) -> String {
    trim_decimals(f64::from(millis) / f64::from(MILLI_PER_CPU))
}

fn trim_decimals(x: f64) -> String {
    let s = format!("{x:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_decimal_bits_with_a_unit() {
        assert_eq!(parse_rate("100Mbit").unwrap(), 100_000_000);
        assert_eq!(parse_rate("1.5Gbit").unwrap(), 1_500_000_000);
        assert_eq!(parse_rate("640kbit").unwrap(), 640_000);
        assert_eq!(parse_rate("1mbit").unwrap(), 1_000_000);
        assert_eq!(parse_rate("100kbit").unwrap(), 100_000);
        assert_eq!(parse_rate("1gbit").unwrap(), 1_000_000_000);
        for bad in ["100", "100MiB", "Mbit", "fast", "-1Mbit", "1mbps", "1MBit"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("512MiB"), Ok(512 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("64KiB"), Ok(64 << 10));
        assert_eq!(parse_size("2TiB"), Ok(2 << 40));
        assert_eq!(parse_size("1GB"), Ok(1_000_000_000));
        assert_eq!(parse_size("500MB"), Ok(500_000_000));
        assert_eq!(parse_size("10kB"), Ok(10_000));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("64K"), Ok(64 << 10));
        assert_eq!(parse_size("1.5GiB"), Ok(3 << 29));
        assert_eq!(parse_size(" 128 MiB "), Ok(128 << 20));
        for bad in [
            "",
            "MiB",
            "12 potatoes",
            "-1",
            "1.2.3GiB",
            "1XB",
            "99999999999TiB",
        ] {
            assert_eq!(parse_size(bad), Err(UnitError::Size(bad.into())), "{bad:?}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(
            parse_duration("1m30s500ms"),
            Ok(Duration::from_millis(90_500))
        );
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("42"), Ok(Duration::from_secs(42)));
        for bad in ["", "s", "10 parsecs", "5x", "-3s", "1h-5m", "ms5"] {
            assert_eq!(
                parse_duration(bad),
                Err(UnitError::Duration(bad.into())),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn cpus() {
        assert_eq!(cpus_to_millis(0.5), Ok(500));
        assert_eq!(cpus_to_millis(2.0), Ok(2000));
        assert_eq!(cpus_to_millis(0.0004), Ok(0));
        assert!(cpus_to_millis(-1.0).is_err());
        assert!(cpus_to_millis(f64::NAN).is_err());
        assert!(cpus_to_millis(1e12).is_err());
    }

    #[test]
    fn formatting_round_trips() {
        assert_eq!(format_size(512 << 20), "512MiB");
        assert_eq!(format_size(3 << 29), "1.5GiB");
        assert_eq!(format_size(100), "100B");
        assert_eq!(format_size(1_000_000_000), "953.67MiB");
        for bytes in [0, 1, 1023, 1024, 64 << 10, 512 << 20, 3 << 29, 2 << 40] {
            assert_eq!(parse_size(&format_size(bytes)), Ok(bytes));
        }
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format_duration(Duration::from_secs(125)), "2m5s");
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        for d in [
            Duration::from_millis(7),
            Duration::from_secs(45),
            Duration::from_secs(3725),
        ] {
            assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }
        assert_eq!(format_cpus(500), "0.5");
        assert_eq!(format_cpus(2000), "2");
    }
}
