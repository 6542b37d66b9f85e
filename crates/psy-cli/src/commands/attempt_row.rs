//! The columns `psy show --attempts` and `psy history` print for one attempt.

use psy_model::AttemptResult;
use psy_report::format;

/// Header of the columns after the first (the test or the run).
pub(crate) fn header() -> String {
    format!(
        "{:>3}  {:8}  {:>9}  {:>9}  {:>9}  {:>14}  {:>14}  {:>9}  {:>9}  EXIT",
        "TRY", "STATUS", "TIME", "CPU", "PEAK MEM", "READ/OPS", "WRITTEN/OPS", "NET OUT", "NET IN"
    )
}

/// One attempt's columns, aligned with [`header`].
pub(crate) fn columns(a: &AttemptResult) -> String {
    let bytes = |b: Option<u64>| b.map_or("-".into(), format::bytes);
    // `30MiB/240`: bytes and, where the cgroup counted them, requests.
    let io = |b: Option<u64>, ops: Option<u64>| match ops {
        Some(ops) => format!("{}/{ops}", bytes(b)),
        None => bytes(b),
    };
    format!(
        "{:>3}  {:8}  {:>9}  {:>9}  {:>9}  {:>14}  {:>14}  {:>9}  {:>9}  {}",
        a.attempt,
        a.status.as_str(),
        format::duration(a.duration_ms),
        a.cpu_time_ms.map_or("-".into(), format::duration),
        bytes(a.peak_memory_bytes),
        io(a.io_read_bytes, a.io_read_ops),
        io(a.io_write_bytes, a.io_write_ops),
        bytes(a.net_sent_bytes),
        bytes(a.net_received_bytes),
        format::exit(&a.exit),
    )
}
