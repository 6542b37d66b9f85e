//! Manifest values that need more than serde's defaults: sizes, durations, CPU counts, argv
//! lists and the `true`-or-table discover sources. Checking them during deserialization lets
//! `toml` attach the value's span, so the error points at the value itself.

use crate::env::ProcessString;
use crate::units::{
    cpus_to_millis, format_duration, format_size, parse_duration, parse_rate, parse_size,
};
use psy_model::bounds::{
    MAX_PIDS, MAX_RETRIES, MAX_TIMEOUT, MIN_FILESYSTEM_BYTES, MIN_MEMORY_BYTES,
};
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use std::fmt;
use std::time::Duration;

/// A size in bytes of at least `MIN` (0: any size; 1: not zero; memory limits and
/// filesystems have larger minimums).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Size<const MIN: u64>(pub(crate) u64);

/// Sizes that must not be zero (tmpfs sizes, throttles).
pub(crate) type NonZeroSize = Size<1>;
/// A memory limit.
pub(crate) type MemorySize = Size<MIN_MEMORY_BYTES>;
/// The size of a filesystem made with `mkfs.ext4` (`disk`, volumes).
pub(crate) type FilesystemSize = Size<MIN_FILESYSTEM_BYTES>;

/// A timeout: must be longer than zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Timeout(pub(crate) Duration);

/// A CPU count in milli-CPUs; `NONZERO` rejects 0 (requests, as opposed to reserves).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cpus<const NONZERO: bool>(pub(crate) u32);

/// `image = "..."`: a path (docker-archive, OCI layout, root filesystem directory) or a
/// registry reference; one word, not empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ImageValue(pub(crate) String);

/// A non-empty argv list whose program is non-empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Argv(pub(crate) Vec<String>);

/// `nextest = true` or `pytest = true`, or their option tables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Toggle<T> {
    Off,
    On(T),
}

fn nonzero_check<E: de::Error>(nonzero: bool, is_zero: bool, what: &str) -> Result<(), E> {
    if nonzero && is_zero {
        return Err(E::custom(format!("{what} must be greater than zero")));
    }
    Ok(())
}

struct SizeVisitor(u64);

impl SizeVisitor {
    fn check<E: de::Error>(&self, bytes: u64) -> Result<u64, E> {
        match self.0 {
            min if bytes >= min => Ok(bytes),
            1 => Err(E::custom("size must be greater than zero")),
            min => Err(E::custom(format!(
                "size {} is too small (the minimum is {})",
                format_size(bytes),
                format_size(min)
            ))),
        }
    }
}

impl Visitor<'_> for SizeVisitor {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a size such as \"512MiB\" or a number of bytes")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
        let bytes = u64::try_from(v)
            .map_err(|_| E::custom(format!("invalid size {v} (must not be negative)")))?;
        self.visit_u64(bytes)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
        self.check(v)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
        self.check(parse_size(v).map_err(E::custom)?)
    }
}

impl<'de, const MIN: u64> Deserialize<'de> for Size<MIN> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SizeVisitor(MIN)).map(Size)
    }
}

/// An integer from `MIN` to `MAX` (retries, pids): checked here so a value that does not fit
/// is named with its bounds instead of wrapping or failing when a test starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Bounded<const MIN: u32, const MAX: u32>(pub(crate) u32);

/// `retries`.
pub(crate) type Retries = Bounded<0, MAX_RETRIES>;
/// `pids`.
pub(crate) type Pids = Bounded<1, MAX_PIDS>;

impl<'de, const MIN: u32, const MAX: u32> Deserialize<'de> for Bounded<MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = i64::deserialize(d)?;
        match u32::try_from(v) {
            Ok(n) if (MIN..=MAX).contains(&n) => Ok(Bounded(n)),
            _ => Err(de::Error::custom(format!(
                "invalid value {v} (expected {MIN} to {MAX})"
            ))),
        }
    }
}

/// A network rate in bit/s, more than zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Rate(pub(crate) u64);

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let bits = parse_rate(&s).map_err(de::Error::custom)?;
        nonzero_check::<D::Error>(true, bits == 0, "rate")?;
        Ok(Rate(bits))
    }
}

struct TimeoutVisitor;

impl Visitor<'_> for TimeoutVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration such as \"60s\" or a number of seconds")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
        self.visit_f64(v as f64)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
        self.visit_f64(v as f64)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Duration, E> {
        self.visit_str(&v.to_string())
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
        let d = parse_duration(v).map_err(E::custom)?;
        nonzero_check(true, d.is_zero(), "timeout")?;
        if d > MAX_TIMEOUT {
            return Err(E::custom(format!(
                "timeout {v} is too long (at most {})",
                format_duration(MAX_TIMEOUT)
            )));
        }
        Ok(d)
    }
}

impl<'de> Deserialize<'de> for Timeout {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TimeoutVisitor).map(Timeout)
    }
}

struct CpusVisitor(bool);

impl Visitor<'_> for CpusVisitor {
    type Value = u32;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number of CPUs such as 2 or 0.5")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u32, E> {
        self.visit_f64(v as f64)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u32, E> {
        self.visit_f64(v as f64)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<u32, E> {
        let millis = cpus_to_millis(v).map_err(E::custom)?;
        if self.0 && millis == 0 {
            return Err(E::custom(format!(
                "invalid cpus {v} (must be at least 0.001)"
            )));
        }
        Ok(millis)
    }
}

impl<'de, const NONZERO: bool> Deserialize<'de> for Cpus<NONZERO> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(CpusVisitor(NONZERO)).map(Cpus)
    }
}

impl<'de> Deserialize<'de> for Argv {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let argv: Vec<String> = Vec::<ProcessString>::deserialize(d)?
            .into_iter()
            .map(|s| s.0)
            .collect();
        match argv.first() {
            None => Err(de::Error::custom(
                "empty command (expected an argv list such as [\"sh\", \"-c\", \"./test.sh\"])",
            )),
            Some(program) if program.is_empty() => Err(de::Error::custom(
                "the command's program (its first element) is empty",
            )),
            Some(_) => Ok(Argv(argv)),
        }
    }
}

impl<'de> Deserialize<'de> for ImageValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = String::deserialize(d)?;
        if value.is_empty() || value.contains(|c: char| c.is_whitespace() || c == '\0') {
            return Err(de::Error::custom(format!(
                "image {value:?}: expected a path (a docker-archive tarball, an OCI layout \
                 directory, a root filesystem directory) or a registry reference \
                 host[:port]/name:tag, without spaces"
            )));
        }
        Ok(ImageValue(value))
    }
}

/// `labels = { arch = "x86_64" }`: what a fleet agent must have to run the test. Keys and
/// values are one word each (no spaces or control characters), at most 200 bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Labels(pub(crate) std::collections::BTreeMap<String, String>);

impl<'de> Deserialize<'de> for Labels {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let labels = std::collections::BTreeMap::<String, String>::deserialize(d)?;
        let bad = |s: &str| {
            s.is_empty()
                || s.len() > 200
                || s.contains(|c: char| c.is_whitespace() || c.is_control())
        };
        if let Some((k, v)) = labels.iter().find(|(k, v)| bad(k) || bad(v)) {
            return Err(de::Error::custom(format!(
                "label {k:?} = {v:?}: keys and values are one word each (1 to 200 bytes, no spaces)"
            )));
        }
        Ok(Labels(labels))
    }
}

struct ToggleVisitor<T>(std::marker::PhantomData<T>);

impl<'de, T: Deserialize<'de> + Default> Visitor<'de> for ToggleVisitor<T> {
    type Value = Toggle<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("true, false or a table of options")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Toggle<T>, E> {
        Ok(if v {
            Toggle::On(T::default())
        } else {
            Toggle::Off
        })
    }

    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Toggle<T>, A::Error> {
        T::deserialize(de::value::MapAccessDeserializer::new(map)).map(Toggle::On)
    }
}

impl<'de, T: Deserialize<'de> + Default> Deserialize<'de> for Toggle<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ToggleVisitor(std::marker::PhantomData))
    }
}

/// A proportional IO weight, 1..=10000 (the cgroup v2 scale).
#[derive(Debug, Clone, Copy)]
pub(crate) struct IoWeight(pub(crate) u16);

impl<'de> Deserialize<'de> for IoWeight {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = i64::deserialize(d)?;
        match u16::try_from(v) {
            Ok(w) if (1..=10_000).contains(&w) => Ok(IoWeight(w)),
            _ => Err(de::Error::custom(format!(
                "invalid io weight {v} (expected 1 to 10000)"
            ))),
        }
    }
}
