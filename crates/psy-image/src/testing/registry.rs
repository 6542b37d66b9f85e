//! [`TestRegistry`]: a real registry for tests (Debian's `docker-registry`, on a free loopback
//! port, storing into a temporary directory) and `skopeo` to push test images into it.

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A running `docker-registry`, stopped when dropped.
#[derive(Debug)]
pub struct TestRegistry {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `tool` is on the `PATH`.
pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl TestRegistry {
    /// A running registry; `None` (printing why) when `docker-registry` or `skopeo` is
    /// missing, except under CI (`CI` set), where that fails the test.
    pub fn start() -> Option<TestRegistry> {
        for tool in ["docker-registry", "skopeo"] {
            if !have(tool) {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "{tool} is missing (apt-get install docker-registry skopeo; scripts/test installs them)"
                );
                eprintln!("skipped: {tool} is missing (apt-get install docker-registry skopeo)");
                return None;
            }
        }
        let dir = tempfile::tempdir().expect("a temporary directory for the registry");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let config = dir.path().join("config.yml");
        let yaml = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("data").display()
        );
        std::fs::write(&config, yaml).expect("writing the registry's config");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting docker-registry");
        let registry = TestRegistry { child, port, dir };
        // Ready when it accepts connections (bounded: about ten seconds).
        for _ in 0..200 {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(registry);
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("docker-registry did not listen on 127.0.0.1:{port}");
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A scratch directory that lives as long as the registry.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Pushes the docker-archive `archive` as `name` (`repo:tag`), with skopeo's `extra` flags
    /// (e.g. `--format oci --dest-compress-format zstd`).
    pub fn push(&self, archive: &Path, name: &str, extra: &[&str]) {
        self.push_from(
            &format!("docker-archive:{}", archive.display()),
            name,
            extra,
        );
    }

    /// Pushes skopeo's `source` (`docker-archive:FILE`, `oci:DIR:tag`, ...) as `name`.
    pub fn push_from(&self, source: &str, name: &str, extra: &[&str]) {
        let output = Command::new("skopeo")
            .args(["copy", "--quiet", "--dest-tls-verify=false"])
            .args(extra)
            .arg(source)
            .arg(format!("docker://{}/{name}", self.host()))
            .output()
            .expect("running skopeo");
        assert!(
            output.status.success(),
            "skopeo copy: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
