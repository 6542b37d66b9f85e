//! Psyduck's shared vocabulary: the types every other crate speaks (no I/O here).
//!
//! Lower layers (config, sandbox, scheduler, store) and higher ones (runner, reporters,
//! later the server and agents) exchange only these types, so a remote agent can consume
//! the same [`events::RunEvent`] stream a local reporter does.

pub mod bounds;
pub mod display;
pub mod events;
pub mod ids;
pub mod logs;
pub mod outcome;
pub mod resources;
pub mod sandbox;
pub mod scenario;
pub mod test;

pub use display::OutputDisplay;
pub use events::RunEvent;
pub use ids::{RunId, TestId};
pub use logs::{AttemptKey, LogStore, LogStream};
pub use outcome::{AttemptResult, AttemptStatus, ExitInfo, TestResult, TestStatus};
pub use resources::{
    Capacity, CpuPolicy, IoCapacity, IoRequest, NetworkRequest, Resources, MILLI_PER_CPU,
};
pub use sandbox::{Allowance, SandboxRequest};
pub use scenario::{FaultReply, FaultRequest, LinkShape, NodeSpec, ReadyProbe};
pub use test::{Adapter, TestSpec, VolumeSpec, WarmStart, RESULT_FILE};
