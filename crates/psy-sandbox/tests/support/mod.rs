//! The container fixture shared by the root test files: a throwaway project dir and sandbox,
//! specs running `sh -c`, and helpers to run one and read its output.

#![allow(dead_code)] // each test file uses a different part

use psy_sandbox::cgroup::CgroupLimits;
use psy_sandbox::{ContainerSpec, Outcome, Sandbox};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

pub(crate) fn is_root() -> bool {
    // SAFETY: trivial getter.
    unsafe { libc::geteuid() == 0 }
}

#[macro_export]
macro_rules! require_root {
    () => {
        if !$crate::support::is_root() {
            eprintln!("skipped: needs root");
            return;
        }
    };
}

pub(crate) struct Fixture {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) sandbox: Sandbox,
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

pub(crate) fn limits() -> CgroupLimits {
    CgroupLimits {
        cpu_millis: 1000,
        exclusive_cores: None,
        memory_bytes: 256 << 20,
        pids: 128,
        io: None,
        freezable: false,
    }
}

impl Fixture {
    pub(crate) fn new() -> Self {
        // Under the crate dir (not /tmp) so the project is visible through the read-only root.
        let dir = tempfile::Builder::new()
            .prefix("ctest-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap();
        let name = format!(
            "ct{}x{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let sandbox = Sandbox::new(&name).unwrap();
        Fixture { dir, sandbox }
    }

    pub(crate) fn project(&self) -> &Path {
        self.dir.path()
    }

    pub(crate) fn spec(&self, script: &str) -> (ContainerSpec, PathBuf) {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let scratch = self.project().join(format!("scratch{n}"));
        std::fs::create_dir_all(&scratch).unwrap();
        let out = self.project().join(format!("out{n}"));
        let spec = ContainerSpec {
            argv: vec!["sh".into(), "-c".into(), script.into()],
            env: vec![
                (
                    "PATH".into(),
                    "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin".into(),
                ),
                ("PSY_SCRATCH".into(), scratch.display().to_string()),
                ("PROJECT".into(), self.project().display().to_string()),
            ],
            cwd: self.project().to_path_buf(),
            hostname: "psy-test-host".into(),
            tmp_bytes: 8 << 20,
            scratch_dir: scratch,
            scratch_bytes: None,
            volumes: Vec::new(),
            project_dir: self.project().to_path_buf(),
            stdout: File::create(&out).unwrap(),
            stderr: File::create(self.project().join(format!("err{n}"))).unwrap(),
            cgroup_name: format!("c{n}"),
            network: None,
            privileged: false,
            masked: Vec::new(),
            allow: Default::default(),
            writable: Vec::new(),
            readonly: Vec::new(),
            image: None,
            join_netns: None,
            hosts_file: None,
            hold: false,
        };
        (spec, out)
    }

    pub(crate) fn run_with(
        &self,
        script: &str,
        limits: &CgroupLimits,
        timeout: Option<Duration>,
    ) -> (Outcome, String) {
        let (spec, out) = self.spec(script);
        let mut c = self.sandbox.spawn(spec, limits).unwrap();
        if !c.wait_timeout(timeout).unwrap() {
            c.kill();
        }
        let outcome = c.finish();
        (outcome, std::fs::read_to_string(out).unwrap())
    }

    pub(crate) fn run(&self, script: &str) -> (Outcome, String) {
        self.run_with(script, &limits(), None)
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.sandbox.close();
    }
}

pub(crate) fn processes_with(marker: &str) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .chars()
                .all(|c| c.is_ascii_digit())
        })
        .filter(|e| {
            std::fs::read(e.path().join("cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(marker))
                .unwrap_or(false)
        })
        .count()
}
