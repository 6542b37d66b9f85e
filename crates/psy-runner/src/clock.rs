//! The current UTC time as calendar fields, for run ids and file headers (no date crate needed).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// UTC calendar time now: `(year, month, day, hour, minute, second)` and the time since the
/// epoch (for sub-second salts).
pub fn utc_now() -> ([i32; 6], Duration) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as libc::time_t;
    // SAFETY: gmtime_r fills the tm we pass.
    let tm = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        libc::gmtime_r(&secs, &mut tm);
        tm
    };
    (
        [
            tm.tm_year + 1900,
            tm.tm_mon + 1,
            tm.tm_mday,
            tm.tm_hour,
            tm.tm_min,
            tm.tm_sec,
        ],
        now,
    )
}
