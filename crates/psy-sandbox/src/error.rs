//! Errors of starting and supervising a container.

use std::io;
use std::path::PathBuf;

/// Declares [`SetupStep`] once: its variants (numbered from 1 on the status pipe), the lookup
/// from that number, and each step's description.
macro_rules! setup_steps {
    ($($step:ident => $what:literal,)*) => {
        /// Where inside the container's set-up a step failed (reported by the container's init).
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr(i32)]
        pub enum SetupStep {
            $($step,)*
        }

        impl SetupStep {
            const ALL: &'static [SetupStep] = &[$(SetupStep::$step,)*];

            /// The number sent on the status pipe (never 0).
            pub(crate) fn code(self) -> i32 {
                self as i32 + 1
            }

            pub(crate) fn from_code(code: i32) -> Option<Self> {
                Self::ALL.iter().copied().find(|s| s.code() == code)
            }

            pub fn describe(self) -> &'static str {
                match self {
                    $(SetupStep::$step => $what,)*
                }
            }
        }
    };
}

setup_steps! {
    JoinCgroup => "joining the container's cgroup",
    Hostname => "setting the hostname",
    PrivateMounts => "making mounts private",
    CloneScratch => "cloning the scratch directory mount",
    CloneProject => "cloning the project directory mount",
    ReadOnlyRoot => "making the root filesystem read-only",
    ReadOnlyProject => "making the project directory read-only",
    MountTmp => "mounting the private /tmp",
    MountShm => "mounting the private /dev/shm",
    MkdirMountpoint => "creating a mount point",
    MountScratch => "mounting the scratch directory",
    MountProject => "mounting the project directory",
    MountProc => "mounting /proc",
    Loopback => "bringing up the loopback interface",
    Chdir => "changing to the working directory",
    ForkTest => "starting the test process",
    Exec => "executing the command",
    UserNamespace => "writing the user namespace id maps",
    Stdio => "redirecting stdin/stdout/stderr",
    MountScratchDisk => "mounting the scratch disk",
    MountVolume => "mounting a volume",
    JoinNetns => "joining a pre-made network namespace",
    ReadOnlyProcSys => "making /proc/sys read-only",
    DropNetAdmin => "dropping CAP_NET_ADMIN",
    CgroupNamespace => "entering a cgroup namespace",
    HostView => "mounting the read-only host view",
    ImageRoot => "mounting the image's root (overlayfs over its layers)",
    MaskPath => "masking a path",
    MountDev => "making the container's /dev",
    MountRun => "mounting the private /run",
    MountSys => "mounting /sys",
    PivotRoot => "entering the container's root (pivot_root)",
    JoinUserNamespace => "entering the test's user namespace",
    Seccomp => "installing the seccomp filter",
    MountWritable => "mounting a writable directory",
    MountReadOnly => "mounting a read-only directory",
    DropCapabilities => "dropping capabilities",
}

/// Why a container could not be started or supervised.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("command not found: {command:?} (searched PATH={path:?} from {cwd})")]
    CommandNotFound {
        command: String,
        path: String,
        cwd: PathBuf,
    },
    #[error("invalid {what} for the container: {value:?} contains a NUL byte")]
    NulByte { what: &'static str, value: String },
    #[error("creating the container's {what}: {source}")]
    Os {
        what: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("creating the container's cgroup {name}: {source}")]
    Cgroup {
        name: String,
        #[source]
        source: crate::cgroup::CgroupError,
    },
    #[error("{count} {what} directories: at most {max} per test", max = crate::spec::MAX_WRITABLE)]
    TooManyWritable { what: &'static str, count: usize },
    #[error("the container's image root: {reason}")]
    Image { reason: String },
    #[error("{count} volumes: at most {max} per test")]
    TooManyVolumes { count: usize, max: usize },
    #[error("not possible on this host: {what}")]
    Unsupported { what: &'static str },
    #[error("a disk size limit needs root (a loop device); run psy as root or remove `disk`")]
    DiskNeedsRoot,
    #[error("a network of its own (`network = ...`) needs root (veth pairs and a bridge)")]
    NetworkNeedsRoot,
    #[error("giving the container its network: {0}")]
    Network(#[from] crate::netns_pool::MakeError),
    #[error("the zygote could not start the container: {message}")]
    Zygote { message: String },
    #[error("container set-up failed while {}: {}{}", step.describe(), io::Error::from_raw_os_error(*errno), hint(*step, *errno))]
    Setup { step: SetupStep, errno: i32 },
    #[error("the container is not held (`ContainerSpec::hold`): nothing can join it")]
    NotHeld,
    #[error("the held container was not set up within {timeout:?}")]
    HoldTimeout { timeout: std::time::Duration },
    #[error("the held container's init ended before it was set up")]
    HoldFailed,
}

/// What to do about a set-up error a user can fix.
fn hint(step: SetupStep, errno: i32) -> &'static str {
    match (step, errno) {
        (SetupStep::Exec, libc::EACCES) => {
            " (the container's root is not host root: a program or directory only host root may \
             read, e.g. under /root, is not the test's where the filesystem cannot be id-mapped; \
             see docs/security.md)"
        }
        _ => "",
    }
}

impl SandboxError {
    pub(crate) fn os(what: &'static str) -> Self {
        SandboxError::Os {
            what,
            source: io::Error::last_os_error(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setup_steps_round_trip_through_their_codes() {
        for step in SetupStep::ALL {
            assert_eq!(SetupStep::from_code(step.code()), Some(*step));
        }
        assert_eq!(SetupStep::from_code(0), None);
        let err = SandboxError::Setup {
            step: SetupStep::MountProc,
            errno: libc::EPERM,
        };
        assert_eq!(
            err.to_string(),
            "container set-up failed while mounting /proc: Operation not permitted (os error 1)"
        );
    }
}
