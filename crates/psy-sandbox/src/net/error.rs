//! Errors of the per-run network: which command or file failed, and why.

use std::io;
use std::process::ExitStatus;

/// Creating, attaching to or removing a run's network failed.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// Run names become part of interface names, which the kernel caps at 15 bytes.
    #[error("run network name {name:?} must be 1 to {max} characters of [a-z0-9]")]
    InvalidName {
        /// The rejected name.
        name: String,
        /// The longest accepted name.
        max: usize,
    },
    /// Each attachment gets one address of the /16; the index must leave room for it.
    #[error("attachment index {index} is out of range (at most {max})")]
    IndexOutOfRange {
        /// The rejected index.
        index: u32,
        /// The largest accepted index.
        max: u32,
    },
    /// A rate of zero would stop all traffic instead of shaping it.
    #[error("shaping rate for {direction} must be above 0 bit/s")]
    ZeroRate {
        /// `egress` or `ingress`.
        direction: &'static str,
    },
    /// `ip`, `tc` or `nsenter` could not be started (iproute2 / util-linux missing?).
    #[error("cannot run `{program}` to {what}: {source}")]
    Spawn {
        /// The program that was run.
        program: String,
        /// What the command was meant to do.
        what: String,
        /// Why it could not start.
        source: io::Error,
    },
    /// The command ran and failed.
    #[error("`{command}` failed ({status}) to {what}: {stderr}")]
    Command {
        /// The full command line.
        command: String,
        /// What the command was meant to do.
        what: String,
        /// Its exit status.
        status: ExitStatus,
        /// Its error output, trimmed.
        stderr: String,
    },
    /// A per-interface sysctl could not be written.
    #[error("cannot write {value:?} to {path}: {source}")]
    Sysctl {
        /// The file under /proc/sys.
        path: String,
        /// The value written.
        value: &'static str,
        /// Why writing failed.
        source: io::Error,
    },
    /// A scenario network is named after its owner's pid, which must be a real pid.
    #[error("scenario network owner pid {pid} is not a valid pid")]
    BadOwner {
        /// The rejected pid.
        pid: u32,
    },
    /// A scenario port index is used before `attach` or attached twice.
    #[error("scenario network {bridge}: port {index} {why}")]
    Port {
        /// The scenario's bridge.
        bridge: String,
        /// The port index.
        index: u32,
        /// `is not attached`, `is already attached`.
        why: &'static str,
    },
    /// A partition needs two non-empty, disjoint sides.
    #[error("scenario network {bridge}: cannot partition {a:?} from {b:?}: {why}")]
    BadPartition {
        /// The scenario's bridge.
        bridge: String,
        /// One side's port indices.
        a: Vec<u32>,
        /// The other side's.
        b: Vec<u32>,
        /// What is wrong with them.
        why: &'static str,
    },
    /// A link shape no link can have (loss outside 0..=100 %, a rate of 0).
    #[error("cannot shape the link of port {index}: {why}")]
    BadShape {
        /// The port index.
        index: u32,
        /// What is wrong with the shape.
        why: String,
    },
    /// A tap, packet socket or delay-line thread could not be set up.
    #[error("cannot {what}: {source}")]
    Device {
        /// What was being set up, naming the interface.
        what: String,
        /// Why it failed.
        source: io::Error,
    },
}
