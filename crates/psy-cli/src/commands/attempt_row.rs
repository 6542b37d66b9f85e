//! The columns `psy show --attempts` and `psy history` print for one attempt.

use psy_model::AttemptResult;
use psy_report::format;

/// Header of the columns after the first (the test or the run).
pub(crate) fn header() -> String {
    format!(
        "{:>3}  {:8}  {:>9}  {:>9}  {:>9}  {:>9}  {:>9}  {:>9}  {:>9}  EXIT",
        "TRY", "STATUS", "TIME", "CPU", "PEAK MEM", "READ", "WRITTEN", "NET OUT", "NET IN"
    )
}

/// One attempt's columns, aligned with [`header`].
pub(crate) fn columns(a: &AttemptResult) -> String {
    let bytes = |b: Option<u64>| b.map_or("-".into(), format::bytes);
    format!(
        "{:>3}  {:8}  {:>9}  {:>9}  {:>9}  {:>9}  {:>9}  {:>9}  {:>9}  {}",
        a.attempt,
        a.status.as_str(),
        format::duration(a.duration_ms),
        a.cpu_time_ms.map_or("-".into(), format::duration),
        bytes(a.peak_memory_bytes),
        bytes(a.io_read_bytes),
        bytes(a.io_write_bytes),
        bytes(a.net_sent_bytes),
        bytes(a.net_received_bytes),
        format::exit(&a.exit),
    )
}
