//! Clock offsets of a container: a time namespace of its own whose `CLOCK_MONOTONIC` and
//! `CLOCK_BOOTTIME` run ahead of (or behind) the host's.
//!
//! Linux virtualises only those two clocks per time namespace; `CLOCK_REALTIME` (wall time,
//! `date`) is the host's in every namespace. The offsets of a namespace can only be written
//! (to `/proc/self/timens_offsets` of the process that unshared it) before any process has
//! entered it, so an offset is given at a container's start: its init unshares
//! `CLONE_NEWTIME`, writes the text made here, and the test enters the namespace when it is
//! cloned. It is then cloned with a copy of the init's memory, not sharing it as usual: older
//! kernels (Debian's 6.1) refuse a child that shares its parent's memory in another time
//! namespace. A running container's clocks cannot be moved.

use std::path::Path;
use std::time::Duration;

/// `CLONE_NEWTIME` from `<linux/sched.h>` (not exported by the libc crate).
pub(crate) const CLONE_NEWTIME: libc::c_int = 0x80;

/// Where a process writes the offsets of the time namespace its children will enter.
const OFFSETS_FILE: &str = "/proc/self/timens_offsets";

/// How far a container's `CLOCK_MONOTONIC` and `CLOCK_BOOTTIME` are shifted from the host's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClockOffset {
    /// Nanoseconds ahead (negative: behind).
    pub nanos: i64,
}

impl ClockOffset {
    /// An offset of `millis` milliseconds (negative: back); saturates at ±292 years.
    pub fn from_millis(millis: i64) -> ClockOffset {
        ClockOffset {
            nanos: millis.saturating_mul(1_000_000),
        }
    }

    /// What the init writes to `/proc/self/timens_offsets`: one line per clock, seconds
    /// (signed) then nanoseconds (`0..1e9`, as the kernel wants: -1.5 s is `-2 500000000`).
    pub(crate) fn offsets_text(self) -> String {
        let secs = self.nanos.div_euclid(1_000_000_000);
        let nsecs = self.nanos.rem_euclid(1_000_000_000);
        format!("monotonic {secs} {nsecs}\nboottime {secs} {nsecs}\n")
    }

    /// Whether the kernel accepts this offset now: it refuses one that moves either clock
    /// before zero (a negative offset larger than the time since the host booted).
    pub fn check(self) -> Result<(), String> {
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes one timespec we own.
        if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) } < 0 {
            return Err(format!(
                "reading CLOCK_MONOTONIC: {}",
                std::io::Error::last_os_error()
            ));
        }
        let since_boot = Duration::new(now.tv_sec as u64, now.tv_nsec as u32);
        if self.nanos < 0 && self.nanos.unsigned_abs() as u128 >= since_boot.as_nanos() {
            return Err(format!(
                "an offset of -{:?} would move the clocks before the host's boot ({:?} ago): \
                 a time namespace's CLOCK_MONOTONIC cannot be negative",
                Duration::from_nanos(self.nanos.unsigned_abs()),
                since_boot
            ));
        }
        Ok(())
    }
}

/// Whether this kernel has time namespaces (`CONFIG_TIME_NS`, Linux 5.6 and later); the reason
/// when it has not.
pub fn supported() -> Result<(), String> {
    supported_at(Path::new(OFFSETS_FILE))
}

fn supported_at(offsets: &Path) -> Result<(), String> {
    if offsets.exists() {
        Ok(())
    } else {
        Err(format!(
            "this kernel has no time namespaces ({} is missing: Linux 5.6 or later built with \
             CONFIG_TIME_NS is needed), so a container's clocks cannot be shifted",
            offsets.display()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_text_keeps_nanoseconds_positive() {
        assert_eq!(
            ClockOffset::from_millis(30_000).offsets_text(),
            "monotonic 30 0\nboottime 30 0\n"
        );
        assert_eq!(
            ClockOffset::from_millis(-30_000).offsets_text(),
            "monotonic -30 0\nboottime -30 0\n"
        );
        assert_eq!(
            ClockOffset::from_millis(-1_500).offsets_text(),
            "monotonic -2 500000000\nboottime -2 500000000\n"
        );
        assert_eq!(
            ClockOffset::from_millis(250).offsets_text(),
            "monotonic 0 250000000\nboottime 0 250000000\n"
        );
    }

    #[test]
    fn an_offset_before_boot_is_refused() {
        assert!(ClockOffset::from_millis(30_000).check().is_ok());
        assert!(ClockOffset::from_millis(-1).check().is_ok());
        let err = ClockOffset::from_millis(-(1 << 50)).check().unwrap_err();
        assert!(err.contains("before the host's boot"), "{err}");
    }

    #[test]
    fn a_kernel_without_the_offsets_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let err = supported_at(&dir.path().join("timens_offsets")).unwrap_err();
        assert!(err.contains("CONFIG_TIME_NS"), "{err}");
        let file = dir.path().join("present");
        std::fs::write(&file, "").unwrap();
        assert!(supported_at(&file).is_ok());
    }
}
