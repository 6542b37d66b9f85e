//! A PostgreSQL cluster of a test's own, which the test may stop and start again (the shared
//! test server must not be stopped under the other tests): initdb in a temporary directory
//! (owned by `postgres` when the test runs as root, since PostgreSQL refuses root), trust
//! authentication, 127.0.0.1 on a free port, kept across restarts.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A cluster in a temporary directory, stopped and removed on drop.
#[derive(Debug)]
pub struct OwnCluster {
    dir: PathBuf,
    bindir: PathBuf,
    port: u16,
    root: bool,
}

impl OwnCluster {
    /// A new cluster, started; `None` (after saying why) without PostgreSQL's binaries, except
    /// under CI, where that fails the test.
    pub fn start() -> Option<OwnCluster> {
        let Some(bindir) = bindir() else {
            let why = "no initdb found (install Debian's postgresql)";
            assert!(std::env::var_os("CI").is_none(), "{why}");
            eprintln!("skipping a PostgreSQL test: {why}");
            return None;
        };
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "psy-own-pg-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("a directory for the cluster");
        let root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
        let mut cluster = OwnCluster {
            dir,
            bindir,
            port: 0,
            root,
        };
        if root {
            cluster.run(Command::new("chown").arg("postgres:").arg(&cluster.dir));
        }
        let data = cluster.data();
        cluster.run(
            cluster
                .command("initdb")
                .args(["-D", &data, "-U", "postgres"])
                .args(["--auth=trust", "-E", "UTF8"]),
        );
        // A port found free may be taken before the cluster binds it: try a few.
        for _ in 0..5 {
            cluster.port = free_port();
            if cluster.try_start() {
                return Some(cluster);
            }
        }
        panic!("the cluster did not start; its log:\n{}", cluster.log());
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the cluster (fast: every connection is cut), waiting until it is down.
    pub fn stop(&self) {
        let data = self.data();
        self.run(
            self.command("pg_ctl")
                .args(["-D", &data, "-m", "fast", "-w", "stop"]),
        );
    }

    /// Starts the cluster again on its port, waiting until it accepts connections.
    pub fn restart(&self) {
        assert!(self.try_start(), "pg_ctl start; the log:\n{}", self.log());
    }

    fn try_start(&self) -> bool {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off -c max_connections=50",
            self.port,
            self.dir.display()
        );
        let (data, log) = (self.data(), self.dir.join("server.log"));
        self.command("pg_ctl")
            .args(["-D", &data, "-l"])
            .arg(&log)
            .args(["-w", "-t", "60", "-o", &options, "start"])
            .output()
            .is_ok_and(|out| out.status.success())
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    fn command(&self, program: &str) -> Command {
        let program = self.bindir.join(program);
        if self.root {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(program);
            cmd
        } else {
            Command::new(program)
        }
    }

    fn run(&self, command: &mut Command) {
        let out = command
            .output()
            .unwrap_or_else(|e| panic!("{command:?}: {e}"));
        assert!(
            out.status.success(),
            "{command:?}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self
            .command("pg_ctl")
            .args(["-D", &data, "-m", "immediate", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The newest PostgreSQL binaries: on PATH, else Debian's `/usr/lib/postgresql/N/bin`.
fn bindir() -> Option<PathBuf> {
    let has = |d: &Path| d.join("initdb").is_file() && d.join("pg_ctl").is_file();
    if let Some(path) = std::env::var_os("PATH") {
        if let Some(dir) = std::env::split_paths(&path).find(|d| has(d)) {
            return Some(dir);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            Some((version, e.path().join("bin")))
        })
        .filter(|(_, bin)| has(bin))
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
