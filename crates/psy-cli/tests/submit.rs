//! `psy submit`, `psy runs`, `psy show --server` and `psy cancel` through the binary against a
//! real `psy server` (feature `server`) and PostgreSQL (`PSY_TEST_POSTGRES_URL`;
//! `scripts/postgres-test-server` starts one). The agents of `--wait` are played by the test
//! through the API. `--wait` outlives a server restart, and a database restart (a cluster of
//! the test's own, stopped: the client is answered 503 and waits it out). Skips without a
//! database, except under CI.
#![cfg(feature = "server")]

#[path = "common/psy_server.rs"]
mod psy_server_child;

use psy_fleet::{FleetClient, ServerBlobs, ServerUrl};
use psy_server::testkit::{http, TestSchema};
use psy_server_child::{create_token, Server};
use psy_snapshot::testkit::git;
use psy_snapshot::{Prepared, WorkDir};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output};

/// A git project with three tests, a commit, then an uncommitted change, an untracked file and
/// an ignored one.
fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    git(d, &["init", "-q"]);
    std::fs::write(
        d.join("psyduck.toml"),
        "[[test]]\nname = \"a\"\ncommand = [\"true\"]\n\n\
         [[test]]\nname = \"b\"\ncommand = [\"true\"]\nretries = 2\ncpus = 0.5\nmemory = \"256MiB\"\n\n\
         [[test]]\nname = \"c\"\ncommand = [\"false\"]\nlabels = { arch = \"x86_64\" }\n",
    )
    .unwrap();
    std::fs::write(d.join(".gitignore"), "ignored.txt\n").unwrap();
    let data: String = (0..100).map(|i| format!("line {i}\n")).collect();
    std::fs::write(d.join("data.txt"), data).unwrap();
    git(d, &["add", "-A"]);
    git(d, &["commit", "-qm", "first"]);
    std::fs::write(d.join("untracked.txt"), "new\n").unwrap();
    std::fs::write(d.join("ignored.txt"), "not sent\n").unwrap();
    dir
}

/// `psy ARGS` in `dir` with `env`.
fn psy_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_psy"))
        .args(args)
        .current_dir(dir)
        .env("XDG_CONFIG_HOME", dir.join("no-config"))
        .envs(env.iter().copied())
        .output()
        .unwrap_or_else(|e| panic!("running psy {args:?}: {e}"))
}

fn success(output: Output, what: &str) -> String {
    assert!(
        output.status.success(),
        "{what}: {}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn json(addr: SocketAddr, token: &str, path: &str) -> serde_json::Value {
    let answer = http(addr, "GET", path, Some(token), None);
    assert_eq!(answer.status, 200, "GET {path}: {}", answer.body);
    serde_json::from_str(&answer.body).unwrap()
}

/// Blob uploads this server answered with 200, from its request counter.
fn blob_puts(addr: SocketAddr) -> u64 {
    let metrics = http(addr, "GET", "/metrics", None, None).body;
    metrics
        .lines()
        .find(|l| {
            l.starts_with("psy_server_http_requests_total")
                && l.contains(r#"route="/api/blobs/{digest}""#)
                && l.contains(r#"method="PUT""#)
                && l.contains(r#"status="200""#)
        })
        .and_then(|l| l.rsplit(' ').next())
        .map_or(0, |n| n.parse().unwrap())
}

#[test]
fn submit_queues_the_manifest_tests_on_a_snapshot_and_uploads_only_what_changed() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let token = create_token(&schema, "user", "dev");
    let server = Server::start(&schema);
    let addr = server.addr;
    let url = format!("http://{addr}");
    let dir = project();
    let d = dir.path();

    let first = psy_in(d, &["submit", "--server", &url, "--token", &token], &[]);
    let stderr = String::from_utf8_lossy(&first.stderr).to_string();
    let run: i64 = success(first, "psy submit")
        .trim()
        .parse()
        .expect("the run id");
    let uploads = blob_puts(addr);
    assert_eq!(
        uploads, 4,
        "psyduck.toml, .gitignore, data.txt, untracked.txt: {stderr}"
    );
    assert!(stderr.contains("uploaded 4 of 4 blobs"), "{stderr}");

    let detail = json(addr, &token, &format!("/api/runs/{run}"));
    let jobs = detail["jobs"].as_array().unwrap();
    let ids: Vec<&str> = jobs
        .iter()
        .map(|j| j["test_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a", "b", "c"], "one job per test of the manifest");
    assert_eq!(jobs[1]["max_attempts"], 3, "retries + 1");
    let digest = detail["run"]["metadata"]["snapshot"]
        .as_str()
        .unwrap()
        .to_string();
    let agent = create_token(&schema, "agent", "box");
    let spec: psy_fleet::JobSpec = {
        let claimed = jobs[0].clone();
        assert_eq!(claimed["state"], "queued");
        let body = r#"{"agent":"box","cpu_millis":4000,"memory_bytes":8589934592,"max_jobs":3}"#;
        let answer = http(addr, "POST", "/api/agents/claim", Some(&agent), Some(body));
        assert_eq!(answer.status, 200, "{}", answer.body);
        let leases: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
        let leases = leases["leases"].as_array().unwrap();
        let claimed: Vec<&str> = leases
            .iter()
            .map(|l| l["test_id"].as_str().unwrap())
            .collect();
        assert!(
            claimed.len() == 2 && !claimed.contains(&"c"),
            "c needs the label arch=x86_64, which this agent lacks: {claimed:?}"
        );
        let b = leases
            .iter()
            .find(|l| l["test_id"] == "b")
            .expect("b was claimed")
            .clone();
        serde_json::from_value(b["spec"].clone()).unwrap()
    };
    assert_eq!(
        spec,
        psy_fleet::JobSpec {
            source: psy_fleet::ProjectSource::Snapshot {
                digest: digest.clone()
            },
            manifest: "psyduck.toml".into(),
            test: "b".into(),
        }
    );
    // The snapshot is the working tree: the untracked file in, the ignored one out.
    let snapshot = json(addr, &token, &format!("/api/snapshots/{digest}"));
    let paths: Vec<&str> = snapshot["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        [".gitignore", "data.txt", "psyduck.toml", "untracked.txt"]
    );

    // What an agent makes of it, through the server with its own token: the working tree.
    let work = tempfile::tempdir().unwrap();
    let blobs = ServerBlobs(FleetClient::new(ServerUrl::parse(&url).unwrap(), &agent));
    let prepared = Prepared::ensure(
        &WorkDir::open(work.path()).unwrap(),
        &digest,
        &spec.manifest,
        &blobs,
    )
    .unwrap();
    assert_eq!(
        std::fs::read_to_string(prepared.root.join("untracked.txt")).unwrap(),
        "new\n"
    );
    assert!(!prepared.root.join("ignored.txt").exists());
    let names: Vec<&str> = prepared
        .manifest
        .tests
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    assert_eq!(names, ["a", "b", "c"]);

    // One changed line: one blob sent. Server and token from the environment this time.
    let data = std::fs::read_to_string(d.join("data.txt")).unwrap();
    std::fs::write(
        d.join("data.txt"),
        data.replace("line 50\n", "line fifty\n"),
    )
    .unwrap();
    let second = psy_in(
        d,
        &["submit", "b", "--priority", "5"],
        &[("PSY_SERVER", url.as_str()), ("PSY_TOKEN", token.as_str())],
    );
    let stderr = String::from_utf8_lossy(&second.stderr).to_string();
    let run2: i64 = success(second, "second psy submit").trim().parse().unwrap();
    assert_eq!(blob_puts(addr) - uploads, 1, "one file changed: {stderr}");
    assert!(stderr.contains("uploaded 1 of 4 blobs"), "{stderr}");
    let detail = json(addr, &token, &format!("/api/runs/{run2}"));
    assert_eq!(detail["run"]["priority"], 5);
    assert_eq!(
        detail["jobs"].as_array().unwrap().len(),
        1,
        "the filter selects b"
    );

    // The client config file, then `psy runs`, `psy show --server`, `psy cancel`.
    let config = d.join("config/psyduck");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(
        config.join("client.toml"),
        format!("server = \"{url}\"\ntoken = \"{token}\"\n"),
    )
    .unwrap();
    let with_config = [("XDG_CONFIG_HOME", d.join("config").display().to_string())];
    let with_config: Vec<(&str, &str)> =
        with_config.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let runs = success(psy_in(d, &["runs"], &with_config), "psy runs");
    assert!(
        runs.lines().count() == 3 && runs.contains(&format!("{run2} ")),
        "{runs}"
    );
    let shown = success(
        psy_in(d, &["show", &run.to_string(), "--server"], &with_config),
        "psy show --server",
    );
    assert!(
        shown.contains("leased") && shown.contains("queued"),
        "{shown}"
    );
    let cancelled = success(
        psy_in(d, &["cancel", &run2.to_string()], &with_config),
        "psy cancel",
    );
    assert!(cancelled.contains("cancelled 1"), "{cancelled}");
    let detail = json(addr, &token, &format!("/api/runs/{run2}"));
    assert_eq!(detail["run"]["state"], "cancelled");

    // Refusals are the user's to fix: exit 2.
    let bad = psy_in(d, &["cancel", "99999"], &with_config);
    assert_eq!(bad.status.code(), Some(2), "{bad:?}");
    let no_server = psy_in(d, &["runs"], &[]);
    assert_eq!(no_server.status.code(), Some(2), "{no_server:?}");
    assert!(String::from_utf8_lossy(&no_server.stderr).contains("PSY_SERVER"));
    std::fs::write(config.join("client.toml"), "sever = \"typo\"\n").unwrap();
    let typo = psy_in(d, &["runs"], &with_config);
    assert_eq!(typo.status.code(), Some(2), "{typo:?}");
    let stderr = String::from_utf8_lossy(&typo.stderr);
    assert!(
        stderr.contains("client.toml") && stderr.contains("sever"),
        "{stderr}"
    );
    let wrong = psy_in(d, &["runs", "--server", &url, "--token", "nope"], &[]);
    assert_eq!(wrong.status.code(), Some(2), "{wrong:?}");
}

/// Plays one agent: claims everything queued and reports `status` for each test per `verdict`.
fn play_agent(addr: SocketAddr, agent: &str, verdict: &dyn Fn(&str, i64) -> &'static str) -> usize {
    let body = r#"{"agent":"box","cpu_millis":8000,"memory_bytes":8589934592,"max_jobs":10,
                   "labels":{"arch":"x86_64"}}"#;
    let answer = http(addr, "POST", "/api/agents/claim", Some(agent), Some(body));
    assert_eq!(answer.status, 200, "{}", answer.body);
    let leases: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
    let leases = leases["leases"].as_array().unwrap();
    for lease in leases {
        let test = lease["test_id"].as_str().unwrap();
        let status = verdict(test, lease["attempt"].as_i64().unwrap());
        let report = serde_json::json!({
            "fencing_token": lease["fencing_token"], "status": status, "duration_ms": 12,
            "exit_code": if status == "pass" { 0 } else { 1 },
            "output": format!("output of {test}"),
        });
        let path = format!("/api/leases/{}/result", lease["lease_id"]);
        let answer = http(addr, "POST", &path, Some(agent), Some(&report.to_string()));
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    leases.len()
}

/// A server with a user and an agent token, and a project to submit.
struct Fleet {
    schema: TestSchema,
    token: String,
    agent: String,
    server: Server,
    dir: tempfile::TempDir,
}

/// A [`Fleet`], or `None` when PostgreSQL tests may skip.
fn fleet() -> Option<Fleet> {
    let schema = TestSchema::new()?;
    let token = create_token(&schema, "user", "dev");
    let agent = create_token(&schema, "agent", "box");
    let server = Server::start(&schema);
    Some(Fleet {
        schema,
        token,
        agent,
        server,
        dir: project(),
    })
}

/// `psy submit --wait ARGS` in `dir`, its output piped.
fn spawn_wait(dir: &Path, addr: SocketAddr, token: &str, args: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_psy"))
        .args([
            "submit",
            "--wait",
            "--server",
            &format!("http://{addr}"),
            "--token",
            token,
        ])
        .args(args)
        .current_dir(dir)
        .env("XDG_CONFIG_HOME", dir.join("no-config"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("starting psy submit --wait")
}

#[test]
fn submit_wait_reports_the_verdicts_and_exits_as_psy_run() {
    let Some(f) = fleet() else {
        return;
    };
    let (addr, d, token, agent) = (f.server.addr, f.dir.path(), &f.token, &f.agent);
    let junit = d.join("out/junit.xml");
    let junit_arg = junit.display().to_string();
    let child = spawn_wait(d, addr, token, &["--junit", &junit_arg]);
    // a passes, b fails once then passes (flaky), c fails.
    let verdict = |test: &str, attempt: i64| match (test, attempt) {
        ("a", _) | ("b", 2..) => "pass",
        _ => "fail",
    };
    let mut reported = 0;
    for _ in 0..600 {
        reported += play_agent(addr, agent, &verdict);
        if reported >= 4 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(reported, 4, "a, b twice, c");
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "c failed: {stderr}");
    let count = |what: &str| {
        stderr
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|words| words.len() == 2 && words[0] == what)
            .map(|words| words[1].to_string())
    };
    for (what, n) in [("passed", "1"), ("failed", "1"), ("flaky", "1")] {
        assert_eq!(count(what).as_deref(), Some(n), "{what}: {stderr}");
    }
    assert!(
        stderr.contains("output of c"),
        "the failure's output is shown: {stderr}"
    );
    let xml = std::fs::read_to_string(&junit).expect("the JUnit report");
    assert!(
        xml.contains(r#"tests="3""#) && xml.contains(r#"failures="1""#),
        "{xml}"
    );
    assert!(xml.contains("output of c"), "the failure's output: {xml}");
}

#[test]
fn submit_wait_outlives_a_server_restart() {
    let Some(f) = fleet() else {
        return;
    };
    let (addr, d, token, agent) = (f.server.addr, f.dir.path(), &f.token, &f.agent);
    std::fs::write(
        d.join("psyduck.toml"),
        "[[test]]\nname = \"only\"\ncommand = [\"true\"]\n",
    )
    .unwrap();
    let mut child = spawn_wait(d, addr, token, &[]);
    // The run exists once the client printed its id; then the server goes away.
    assert_eq!(first_line(&mut child), "1", "the run id");
    drop(f.server);
    // Until the client has found the server gone (and so must reconnect to finish).
    let (stderr, seen) = stderr_until(&mut child, "did not answer");
    let restarted = Server::start_at(&f.schema, &addr.to_string());
    passes_after(child, stderr, seen, restarted.addr, agent);
}

/// The first line `child` printed on stdout, trimmed.
fn first_line(child: &mut std::process::Child) -> String {
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
        &mut first,
    )
    .unwrap();
    first.trim().to_string()
}

type Stderr = std::io::BufReader<std::process::ChildStderr>;

/// Reads `child`'s stderr until it says `needle`; the reader and what it read.
fn stderr_until(child: &mut std::process::Child, needle: &str) -> (Stderr, String) {
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    while !seen.contains(needle) {
        let mut line = String::new();
        let n = std::io::BufRead::read_line(&mut stderr, &mut line).unwrap();
        assert!(
            n > 0,
            "psy submit --wait ended before saying {needle:?}: {seen}"
        );
        seen.push_str(&line);
    }
    (stderr, seen)
}

/// Plays the agent of the run's one test on the server at `addr` until it is reported, then
/// checks the waiting `child` reports it passed and exits 0.
fn passes_after(
    mut child: std::process::Child,
    mut stderr: Stderr,
    mut seen: String,
    addr: SocketAddr,
    agent: &str,
) {
    let mut reported = 0;
    for _ in 0..600 {
        reported += play_agent(addr, agent, &|_, _| "pass");
        if reported >= 1 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::io::Read::read_to_string(&mut stderr, &mut seen).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{seen}");
    assert!(
        seen.lines()
            .any(|l| l.split_whitespace().eq(["passed", "1"])),
        "the test is reported passed: {seen}"
    );
}

#[test]
fn submit_wait_outlives_a_database_restart() {
    let Some(cluster) = psy_server::testkit::cluster::OwnCluster::start() else {
        return;
    };
    let schema = TestSchema {
        url: cluster.url(),
        name: "psyduck".into(),
    };
    let (token, agent) = (
        create_token(&schema, "user", "dev"),
        create_token(&schema, "agent", "box"),
    );
    let server = Server::start(&schema);
    let dir = project();
    let d = dir.path();
    std::fs::write(
        d.join("psyduck.toml"),
        "[[test]]\nname = \"only\"\ncommand = [\"true\"]\n",
    )
    .unwrap();
    let mut child = spawn_wait(d, server.addr, &token, &[]);
    assert_eq!(first_line(&mut child), "1", "the run id");
    cluster.stop();
    // Until the client was answered 503 (the server is up, its database is not).
    let (stderr, seen) = stderr_until(&mut child, "answered 503");
    cluster.restart();
    while http(server.addr, "GET", "/healthz", None, None).status != 200 {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    passes_after(child, stderr, seen, server.addr, &agent);
    drop(server);
    drop(schema);
}
