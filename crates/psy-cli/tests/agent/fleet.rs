//! A fleet on this machine for the agent tests: a PostgreSQL (the shared test server's schema,
//! or a cluster of the test's own that it can restart), a `psy server` process, `psy agent`
//! processes with their own work dirs and shares, and a project of `sh -c` tests submitted as
//! a run through the API.

use postgres::NoTls;
use psy_fleet::wire::{Agent, JobRequest, RunDetail, Submission, Submitted};
use psy_fleet::{FleetClient, JobSpec, ProjectSource, ServerUrl};
use psy_server::testkit::TestSchema;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub(crate) const PSY: &str = env!("CARGO_BIN_EXE_psy");

/// How long a run may take before a test gives up on it (a hang guard, not a measure).
pub(crate) const RUN_DEADLINE: Duration = Duration::from_secs(240);

/// Where the fleet's database is.
pub(crate) enum Database {
    /// A schema of its own on the shared test server (`PSY_TEST_POSTGRES_URL`).
    Shared(TestSchema),
    /// A cluster of its own, which the test may stop and start.
    Own(OwnPostgres),
}

impl Database {
    pub(crate) fn url(&self) -> String {
        match self {
            Database::Shared(schema) => schema.url.clone(),
            Database::Own(pg) => pg.url(),
        }
    }

    pub(crate) fn schema(&self) -> String {
        match self {
            Database::Shared(schema) => schema.name.clone(),
            Database::Own(_) => "psyduck".to_string(),
        }
    }
}

/// A PostgreSQL cluster of the test's own, which it may stop and start again.
pub(crate) use psy_server::testkit::cluster::OwnCluster as OwnPostgres;

/// A child process killed (SIGKILL) and reaped when dropped, its stderr in a file.
pub(crate) struct Proc {
    pub(crate) child: Child,
    pub(crate) log: PathBuf,
    pub(crate) name: String,
}

impl Proc {
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub(crate) fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill(2) of our own child, not reaped yet.
        let sent = unsafe { libc::kill(self.child.id() as libc::pid_t, signal) };
        assert_eq!(sent, 0, "signal {signal} to {}", self.name);
    }

    /// Waits until it exits, at most `within`.
    pub(crate) fn wait(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit within {within:?}; its log:\n{}",
                self.name,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // On failure, or when asked (PSY_TEST_SHOW_LOGS=1 with --no-capture).
        if std::thread::panicking() || std::env::var_os("PSY_TEST_SHOW_LOGS").is_some() {
            eprintln!("--- {} ---\n{}", self.name, self.log());
        }
    }
}

/// A server, its database, a token of each role, and the agents.
pub(crate) struct Fleet {
    pub(crate) dir: PathBuf,
    pub(crate) server: Option<Proc>,
    pub(crate) addr: SocketAddr,
    pub(crate) lease_seconds: u32,
    pub(crate) user: String,
    pub(crate) agent_token: String,
    pub(crate) agents: Vec<Proc>,
    servers_started: usize,
    // Last: the database outlives the server; the directory everything.
    pub(crate) db: Database,
    _tmp: tempfile::TempDir,
}

impl Fleet {
    /// A fleet on `db` whose server lets leases last `lease_seconds`.
    pub(crate) fn new(db: Database, lease_seconds: u32) -> Fleet {
        let tmp = tempfile::Builder::new()
            .prefix("psy-agent-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .expect("a directory for the fleet");
        let dir = tmp.path().to_path_buf();
        let token = |role: &str| {
            let out = Command::new(PSY)
                .args(["server", "token", "create", "--role", role, "--name", role])
                .args(["--schema", &db.schema()])
                .env("PSY_DATABASE_URL", db.url())
                .output()
                .expect("psy server token create");
            assert!(
                out.status.success(),
                "token create: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout)
                .unwrap()
                .lines()
                .last()
                .expect("the token")
                .trim()
                .to_string()
        };
        let (user, agent_token) = (token("user"), token("agent"));
        let mut fleet = Fleet {
            dir,
            server: None,
            addr: "127.0.0.1:0".parse().unwrap(),
            lease_seconds,
            user,
            agent_token,
            agents: Vec::new(),
            servers_started: 0,
            db,
            _tmp: tmp,
        };
        fleet.start_server();
        fleet
    }

    /// Starts a `psy server` (on the port of the last one, if any).
    pub(crate) fn start_server(&mut self) {
        self.servers_started += 1;
        let log = self
            .dir
            .join(format!("server-{}.log", self.servers_started));
        let child = Command::new(PSY)
            .args(["server", "-vv", "--listen", &self.addr.to_string()])
            .args(["--schema", &self.db.schema()])
            .args(["--lease-seconds", &self.lease_seconds.to_string()])
            .env("PSY_DATABASE_URL", self.db.url())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("server log"))
            .spawn()
            .expect("starting psy server");
        let mut server = Proc {
            child,
            log,
            name: format!("psy server #{}", self.servers_started),
        };
        let mut first = String::new();
        BufReader::new(server.child.stdout.take().expect("piped"))
            .read_line(&mut first)
            .expect("the server's first line");
        let addr = first
            .trim()
            .strip_prefix("psy server: listening on http://")
            .unwrap_or_else(|| panic!("first line {first:?}; log:\n{}", server.log()));
        self.addr = addr.parse().expect("an address");
        self.server = Some(server);
    }

    /// The server's URL.
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A `psy agent` named `name` with `cpus` CPUs and its own work dir, renewing leases every
    /// half second.
    pub(crate) fn start_agent(&mut self, name: &str, cpus: &str) -> usize {
        let work_dir = self.work_dir(name);
        self.start_agent_in(name, cpus, &work_dir)
    }

    /// Like [`Fleet::start_agent`], in `work_dir`.
    pub(crate) fn start_agent_in(&mut self, name: &str, cpus: &str, work_dir: &Path) -> usize {
        let log = self.dir.join(format!("{name}-{}.log", self.agents.len()));
        let child = Command::new(PSY)
            .args(["agent", "-vv", "--server", &self.url(), "--name", name])
            .args(["--cpus", cpus, "--memory", "512MiB", "--heartbeat", "0.5"])
            .arg("--work-dir")
            .arg(work_dir)
            .env("PSY_TOKEN", &self.agent_token)
            .env_remove("PSY_SERVER")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("agent log"))
            .spawn()
            .expect("starting psy agent");
        self.agents.push(Proc {
            child,
            log,
            name: format!("psy agent {name}"),
        });
        self.agents.len() - 1
    }

    pub(crate) fn work_dir(&self, name: &str) -> PathBuf {
        self.dir.join(format!("work-{name}"))
    }

    /// Where the agent `name` keeps its engine's state (store, logs, scratch).
    pub(crate) fn state_dir(&self, name: &str) -> PathBuf {
        psy_agent::state_dir(&self.work_dir(name))
    }

    /// A client of the server with the user's token.
    pub(crate) fn client(&self) -> FleetClient {
        FleetClient::new(ServerUrl::parse(&self.url()).unwrap(), &self.user)
    }

    /// Waits until these agents are registered.
    pub(crate) fn wait_registered(&self, names: &[&str]) {
        self.wait_for("the agents to register", || {
            let agents: Vec<Agent> = self.client().get("/api/agents").ok()?;
            names
                .iter()
                .all(|n| agents.iter().any(|a| a.name == *n))
                .then_some(())
        });
    }

    /// Polls `check` until it gives something (every 100 ms, within [`RUN_DEADLINE`]).
    pub(crate) fn wait_for<T>(&self, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + RUN_DEADLINE;
        loop {
            if let Some(found) = check() {
                return found;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Submits every test of `project` (as `psy list` expands it) as one run; its id.
    pub(crate) fn submit(&self, project: &Path) -> i64 {
        self.submit_only(project, &[])
    }

    /// Submits the tests of `project` whose ids are in `only` (all if empty) as one run.
    pub(crate) fn submit_only(&self, project: &Path, only: &[&str]) -> i64 {
        let manifest = project.join("psyduck.toml");
        let listed = Command::new(PSY)
            .args(["list", "--message-format", "json", "-m"])
            .arg(&manifest)
            .output()
            .expect("psy list");
        assert!(listed.status.success(), "psy list: {listed:?}");
        let jobs: Vec<JobRequest> = String::from_utf8(listed.stdout)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str::<Value>(line).expect("a JSON line"))
            .filter(|test| only.is_empty() || only.contains(&test["id"].as_str().unwrap_or("")))
            .map(|test| {
                let id = test["id"].as_str().expect("an id").to_string();
                let spec = JobSpec {
                    source: ProjectSource::Directory {
                        path: project.display().to_string(),
                    },
                    manifest: "psyduck.toml".into(),
                    test: id.clone(),
                };
                JobRequest {
                    test_id: id,
                    spec: serde_json::to_value(spec).unwrap(),
                    cpu_millis: test["resources"]["cpu_millis"].as_i64().unwrap(),
                    memory_bytes: test["resources"]["memory_bytes"].as_i64().unwrap(),
                    labels: Default::default(),
                    expected_ms: 0,
                    max_attempts: 1,
                }
            })
            .collect();
        let submission = Submission {
            name: Some("agent test".into()),
            priority: 0,
            metadata: None,
            jobs,
        };
        let submitted: Submitted = self
            .client()
            .post("/api/runs", &submission)
            .expect("submitting the run");
        submitted.run_id
    }

    /// The run as the API shows it (`None` while the server cannot answer).
    pub(crate) fn run(&self, run_id: i64) -> Option<RunDetail> {
        self.client().get(&format!("/api/runs/{run_id}")).ok()
    }

    /// Waits until run `run_id` is done; the run.
    pub(crate) fn wait_done(&self, run_id: i64) -> RunDetail {
        self.wait_for(&format!("run {run_id} to finish"), || {
            self.run(run_id).filter(|r| r.run.state == "done")
        })
    }

    /// A connection to the fleet's database (with its schema on the search path).
    pub(crate) fn sql(&self) -> postgres::Client {
        let mut client = postgres::Client::connect(&self.db.url(), NoTls).expect("connecting");
        client
            .batch_execute(&format!("SET search_path = {}", self.db.schema()))
            .expect("search_path");
        client
    }

    /// `count(*)` of `query` (its one parameter is the run id).
    pub(crate) fn count(&self, query: &str, run_id: i64) -> i64 {
        self.sql()
            .query_one(query, &[&run_id])
            .unwrap_or_else(|e| panic!("{query}: {e}"))
            .get(0)
    }

    /// Checks that every job of the run is done with exactly one recorded result; the results
    /// by test id: `(status, agent, output)`.
    pub(crate) fn recorded_once(
        &self,
        run_id: i64,
        tests: usize,
    ) -> std::collections::BTreeMap<String, (String, String, String)> {
        let mut sql = self.sql();
        let rows = sql
            .query(
                "SELECT j.test_id, j.state, count(r.job_id), max(r.status), max(r.agent),
                        max(r.output)
                 FROM jobs j LEFT JOIN results r ON r.job_id = j.job_id
                 WHERE j.run_id = $1 GROUP BY j.job_id, j.test_id, j.state",
                &[&run_id],
            )
            .expect("reading the results");
        assert_eq!(rows.len(), tests, "jobs of run {run_id}");
        rows.iter()
            .map(|row| {
                let test: String = row.get(0);
                let state: String = row.get(1);
                let results: i64 = row.get(2);
                assert_eq!(
                    (state.as_str(), results),
                    ("done", 1),
                    "test {test}: its state and how many results it has"
                );
                let output: Option<String> = row.get(5);
                (test, (row.get(3), row.get(4), output.unwrap_or_default()))
            })
            .collect()
    }
}

/// A project in its own directory under the target tmpdir with `psyduck.toml` = `manifest`.
pub(crate) fn project(fleet: &Fleet, manifest: &str) -> PathBuf {
    let dir = fleet.dir.join("project");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("psyduck.toml"), manifest).unwrap();
    dir
}

/// `n` tests `t00`..: each sleeps `sleep` seconds, prints `out-<i>`, and exits as `exit(i)`
/// says (with `[[test]]` extras from `extra(i)`).
pub(crate) fn manifest(
    n: usize,
    sleep: &str,
    exit: impl Fn(usize) -> (i32, &'static str),
) -> String {
    let mut text = String::from("[defaults]\ncpus = 0.25\nmemory = \"32MiB\"\ntimeout = \"60s\"\n");
    for i in 0..n {
        let (code, extra) = exit(i);
        text.push_str(&format!(
            "\n[[test]]\nname = \"t{i:02}\"\ncommand = [\"sh\", \"-c\", \"sleep {sleep}; echo out-{i}; echo err-{i} >&2; exit {code}\"]\n{extra}"
        ));
    }
    text
}
