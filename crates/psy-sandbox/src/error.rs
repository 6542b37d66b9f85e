//! Errors of starting and supervising a container.

use std::io;
use std::path::PathBuf;

/// Where inside the container's set-up a step failed (reported by the container's init).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum SetupStep {
    JoinCgroup = 1,
    Hostname,
    PrivateMounts,
    CloneScratch,
    CloneProject,
    ReadOnlyRoot,
    ReadOnlyProject,
    MountTmp,
    MountShm,
    MkdirMountpoint,
    MountScratch,
    MountProject,
    MountProc,
    Loopback,
    Chdir,
    ForkTest,
    Exec,
    UserNamespace,
    Stdio,
    JoinNetns,
}

impl SetupStep {
    pub(crate) fn from_i32(v: i32) -> Option<Self> {
        use SetupStep::*;
        const ALL: [SetupStep; 20] = [
            JoinCgroup,
            Hostname,
            PrivateMounts,
            CloneScratch,
            CloneProject,
            ReadOnlyRoot,
            ReadOnlyProject,
            MountTmp,
            MountShm,
            MkdirMountpoint,
            MountScratch,
            MountProject,
            MountProc,
            Loopback,
            Chdir,
            ForkTest,
            Exec,
            UserNamespace,
            Stdio,
            JoinNetns,
        ];
        ALL.into_iter().find(|s| *s as i32 == v)
    }

    pub fn describe(self) -> &'static str {
        use SetupStep::*;
        match self {
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
            JoinNetns => "joining a pre-made network namespace",
        }
    }
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
    #[error("the zygote could not start the container: {message}")]
    Zygote { message: String },
    #[error("container set-up failed while {}: {}", step.describe(), io::Error::from_raw_os_error(*errno))]
    Setup { step: SetupStep, errno: i32 },
}

impl SandboxError {
    pub(crate) fn os(what: &'static str) -> Self {
        SandboxError::Os {
            what,
            source: io::Error::last_os_error(),
        }
    }
}
