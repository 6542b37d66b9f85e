//! `psy agent` end to end, against a real PostgreSQL (`PSY_TEST_POSTGRES_URL`, as the server's
//! tests; the database-restart test starts a cluster of its own): a `psy server` process and
//! `psy agent` processes, each with its own work dir and share of this machine, running real
//! `sh -c` tests in containers.
//!
//! - a run split across two agents gives the verdicts of `psy run`, each test recorded once;
//! - an agent SIGKILLed mid-run: its attempts run on the other agent once their leases expire,
//!   the run completes with each test recorded once, and an agent started again on the dead
//!   one's work dir cleans what it left;
//! - the server killed and started again mid-run, and PostgreSQL stopped and started mid-run:
//!   the agents wait it out and the run completes, each test recorded once;
//! - a cancelled run's attempt is killed on its agent (its heartbeat is refused);
//! - an agent stopped by SIGTERM releases the lease of the attempt it killed and of the job it
//!   claimed ahead: their jobs are queued again at once, not after the leases expire;
//! - a wrong token is refused with a clear message and exit 2.
//!
//! Containers need root: the tests that run any skip without it; all skip without a database,
//! except under CI.
#![cfg(feature = "server")]

#[path = "agent/fleet.rs"]
mod fleet;
#[path = "agent/logs.rs"]
mod logs;
#[allow(dead_code)]
#[path = "crash/probe.rs"]
mod probe;
#[path = "agent/projects.rs"]
mod projects;
#[path = "agent/takeover.rs"]
mod takeover;

use fleet::{manifest, project, Database, Fleet, OwnPostgres, PSY};
use psy_server::testkit::TestSchema;
use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

pub(crate) fn root() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("skipped: needs root (containers)");
    }
    root
}

/// Stops every agent with SIGTERM: each must exit 0.
pub(crate) fn stop_agents(fleet: &mut Fleet) {
    for agent in &fleet.agents {
        agent.signal(libc::SIGTERM);
    }
    for agent in &mut fleet.agents {
        let status = agent.wait(Duration::from_secs(60));
        assert!(
            status.success(),
            "{} after SIGTERM: {status}; its log:\n{}",
            agent.name,
            agent.log()
        );
    }
}

/// Attempts recorded in an agent's own store.
fn local_attempts(fleet: &Fleet, name: &str) -> i64 {
    let db = fleet.state_dir(name).join("psyduck.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.query_row("SELECT count(*) FROM attempts", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn a_run_split_across_two_agents_gives_the_verdicts_of_psy_run() {
    if !root() {
        return;
    }
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let mut fleet = Fleet::new(Database::Shared(schema), 30);
    const N: usize = 16;
    let project = project(
        &fleet,
        &manifest(N, "0.5", |i| match i % 5 {
            1 => (1, ""),
            3 => (0, "timeout = \"200ms\"\n"),
            _ if i % 7 == 6 => (2, ""),
            _ => (0, ""),
        }),
    );
    fleet.start_agent("a1", "1");
    fleet.start_agent("a2", "1");
    fleet.wait_registered(&["a1", "a2"]);
    let run_id = fleet.submit(&project);
    let shown = fleet.wait_done(run_id);
    assert_eq!(shown.run.jobs.done, N as i64);
    let results = fleet.recorded_once(run_id, N);

    let agents: std::collections::BTreeSet<&str> =
        results.values().map(|(_, a, _)| a.as_str()).collect();
    assert_eq!(
        agents.into_iter().collect::<Vec<_>>(),
        ["a1", "a2"],
        "both agents ran some of the run"
    );
    let (_, _, output) = &results["t00"];
    assert!(
        output.contains("out-0") && output.contains("--- stderr ---\nerr-0"),
        "the attempt's output is reported: {output:?}"
    );

    // `psy run` of the same project: the same verdicts.
    let ran = Command::new(PSY)
        .args(["run", "--message-format", "json", "-m"])
        .arg(project.join("psyduck.toml"))
        .env("PSY_HOST_FILE", project.join("no-host-file.toml"))
        .output()
        .expect("psy run");
    assert_eq!(ran.status.code(), Some(1), "psy run: {ran:?}");
    let local: BTreeMap<String, String> = String::from_utf8(ran.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["type"] == "test-finished")
        .map(|e| {
            (
                e["result"]["test_id"].as_str().unwrap().to_string(),
                e["result"]["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let fleet_verdicts: BTreeMap<String, String> = results
        .iter()
        .map(|(test, (status, _, _))| (test.clone(), status.clone()))
        .collect();
    assert_eq!(fleet_verdicts, local);
    let statuses: std::collections::BTreeSet<&str> = local.values().map(String::as_str).collect();
    assert_eq!(
        statuses.into_iter().collect::<Vec<_>>(),
        ["fail", "pass", "timeout"]
    );

    stop_agents(&mut fleet);
    // Each attempt ran once, on one agent; its logs went with its report.
    assert_eq!(
        local_attempts(&fleet, "a1") + local_attempts(&fleet, "a2"),
        N as i64
    );
    for name in ["a1", "a2"] {
        let logs = fleet.state_dir(name).join("logs");
        let left: Vec<_> = probe::entries(&logs)
            .iter()
            .filter(|d| probe::file_name(d) != ".spare")
            .flat_map(|d| probe::entries(d))
            .collect();
        assert_eq!(left, Vec::<std::path::PathBuf>::new(), "{name}'s logs");
    }
}

#[test]
fn an_agent_killed_mid_run_loses_nothing_and_its_successor_cleans_up() {
    if !root() {
        return;
    }
    let Some(schema) = TestSchema::new() else {
        return;
    };
    // Leases last 3 s from their last heartbeat.
    let mut fleet = Fleet::new(Database::Shared(schema), 3);
    const N: usize = 6;
    let project = project(&fleet, &manifest(N, "4", |_| (0, "cpus = 0.5\n")));
    let a1 = fleet.start_agent("a1", "1");
    fleet.start_agent("a2", "1");
    fleet.wait_registered(&["a1", "a2"]);
    let run_id = fleet.submit(&project);

    // Once a1 runs attempts: SIGKILL.
    let held_by_a1: Vec<i64> = fleet.wait_for("a1 to hold leases", || {
        let rows = fleet
            .sql()
            .query(
                "SELECT l.job_id FROM leases l JOIN jobs j ON j.job_id = l.job_id
                 WHERE j.run_id = $1 AND l.agent = 'a1' AND l.outcome IS NULL",
                &[&run_id],
            )
            .unwrap();
        let jobs: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
        (!jobs.is_empty()).then_some(jobs)
    });
    fleet.wait_for("a1 to start its attempts", || {
        fleet.agents[a1]
            .log()
            .contains("psy_agent: started")
            .then_some(())
    });
    let dead = fleet.agents[a1].pid();
    fleet.agents[a1].signal(libc::SIGKILL);
    fleet.agents[a1].wait(Duration::from_secs(10));

    let shown = fleet.wait_done(run_id);
    assert_eq!(shown.run.jobs.done, N as i64);
    let results = fleet.recorded_once(run_id, N);
    let expired = fleet.count(
        "SELECT count(*) FROM leases l JOIN jobs j ON j.job_id = l.job_id
         WHERE j.run_id = $1 AND l.outcome = 'expired'",
        run_id,
    );
    assert!(
        expired >= held_by_a1.len() as i64,
        "{expired} leases expired; a1 held {held_by_a1:?}"
    );
    let mut sql = fleet.sql();
    for job in &held_by_a1 {
        let agent: String = sql
            .query_one("SELECT agent FROM results WHERE job_id = $1", &[job])
            .unwrap()
            .get(0);
        assert_eq!(agent, "a2", "job {job}, held by the killed agent");
    }
    assert!(results.values().all(|(status, _, _)| status == "pass"));

    // The killed agent's containers died with it.
    let cgroups = probe::cgroup_dirs_of(dead);
    fleet.wait_for("the killed agent's tests to be gone", || {
        probe::cgroup_pids(&cgroups).is_empty().then_some(())
    });

    // An agent started on its work dir cleans what it left.
    let scratch = fleet.state_dir("a1").join("scratch");
    let left_by_dead = || -> Vec<std::path::PathBuf> {
        probe::entries(&scratch)
            .into_iter()
            .filter(|d| probe::file_name(d).starts_with(&format!("{dead}-")))
            .collect()
    };
    assert!(
        !left_by_dead().is_empty(),
        "a SIGKILLed agent leaves its scratch dir until the next one starts"
    );
    let again = fleet.start_agent("a1", "1");
    fleet.wait_for("the new a1 to be ready", || {
        fleet.agents[again]
            .log()
            .contains("the engine is ready")
            .then_some(())
    });
    assert_eq!(left_by_dead(), Vec::<std::path::PathBuf>::new());
    assert_eq!(
        probe::cgroup_dirs_of(dead),
        Vec::<std::path::PathBuf>::new()
    );
    let conn = rusqlite::Connection::open(fleet.state_dir("a1").join("psyduck.db")).unwrap();
    let states: Vec<String> = conn
        .prepare("SELECT state FROM runs ORDER BY started_at_ms")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        states,
        ["aborted", "running"],
        "the killed agent's engine run"
    );
    drop(conn);
    stop_agents_but(&mut fleet, a1);
}

/// Stops every agent but the one at `dead` (already reaped) with SIGTERM.
fn stop_agents_but(fleet: &mut Fleet, dead: usize) {
    let dead = fleet.agents.remove(dead);
    drop(dead);
    stop_agents(fleet);
}

/// A run with two agents, `fault` done once the first result is recorded; each test recorded
/// once, and the agents saw the fault and waited it out.
fn survives(fleet: &mut Fleet, fault: impl FnOnce(&mut Fleet)) {
    const N: usize = 10;
    let project = project(fleet, &manifest(N, "1", |_| (0, "cpus = 0.5\n")));
    fleet.start_agent("a1", "1");
    fleet.start_agent("a2", "1");
    fleet.wait_registered(&["a1", "a2"]);
    let run_id = fleet.submit(&project);
    fleet.wait_for("a first result", || {
        (fleet.count(
            "SELECT count(*) FROM results r JOIN jobs j ON j.job_id = r.job_id
             WHERE j.run_id = $1",
            run_id,
        ) > 0)
            .then_some(())
    });
    fault(fleet);
    let shown = fleet.wait_done(run_id);
    assert_eq!(shown.run.jobs.done, N as i64);
    let results = fleet.recorded_once(run_id, N);
    assert!(
        results.values().all(|(status, _, _)| status == "pass"),
        "{results:?}"
    );
    for agent in &fleet.agents {
        assert!(
            agent.log().contains("trying again"),
            "{} never saw the fault; its log:\n{}",
            agent.name,
            agent.log()
        );
    }
    stop_agents(fleet);
}

#[test]
fn agents_wait_out_a_server_restart() {
    if !root() {
        return;
    }
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let mut fleet = Fleet::new(Database::Shared(schema), 10);
    survives(&mut fleet, |fleet| {
        let server = fleet.server.as_mut().expect("a server");
        server.signal(libc::SIGKILL);
        server.wait(Duration::from_secs(10));
        std::thread::sleep(Duration::from_secs(2));
        fleet.start_server();
    });
}

#[test]
fn server_and_agents_wait_out_a_database_restart() {
    if !root() {
        return;
    }
    let Some(pg) = OwnPostgres::start() else {
        return;
    };
    let mut fleet = Fleet::new(Database::Own(pg), 10);
    survives(&mut fleet, |fleet| {
        let Database::Own(pg) = &fleet.db else {
            unreachable!()
        };
        pg.stop();
        std::thread::sleep(Duration::from_secs(2));
        pg.restart();
    });
}

#[test]
fn a_cancelled_run_s_attempt_is_killed_on_its_agent() {
    if !root() {
        return;
    }
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let mut fleet = Fleet::new(Database::Shared(schema), 30);
    // Each test takes the agent's whole share: the second runs once the first is gone.
    let project = project(
        &fleet,
        "[defaults]\ncpus = 1\nmemory = \"32MiB\"\n\n\
         [[test]]\nname = \"long\"\ncommand = [\"sleep\", \"300\"]\n\n\
         [[test]]\nname = \"short\"\ncommand = [\"true\"]\n",
    );
    let a1 = fleet.start_agent("a1", "1");
    fleet.wait_registered(&["a1"]);
    let long = fleet.submit_only(&project, &["long"]);
    fleet.wait_for("the long test to start", || {
        fleet.agents[a1]
            .log()
            .contains("psy_agent: started")
            .then_some(())
    });
    let cancelled: psy_fleet::wire::Cancelled = fleet
        .client()
        .post(&format!("/api/runs/{long}/cancel"), &serde_json::json!({}))
        .expect("cancelling");
    assert_eq!(cancelled.cancelled_jobs, 1);
    // It runs as soon as the cancelled attempt has left the agent.
    let short = fleet.submit_only(&project, &["short"]);
    let shown = fleet.wait_done(short);
    assert_eq!(
        shown.jobs[0].result.as_ref().map(|r| r.status.as_str()),
        Some("pass")
    );
    let log = fleet.agents[a1].log();
    assert!(log.contains("is no longer this agent's"), "{log}");
    assert_eq!(
        fleet.count(
            "SELECT count(*) FROM results r JOIN jobs j ON j.job_id = r.job_id WHERE j.run_id = $1",
            long
        ),
        0,
        "the cancelled attempt reports nothing"
    );
    stop_agents(&mut fleet);
}

#[test]
fn a_stopped_agent_releases_what_it_claimed_ahead_and_what_it_killed() {
    if !root() {
        return;
    }
    let Some(schema) = TestSchema::new() else {
        return;
    };
    // Leases of 300 s: a job left to expire would not be queued again during the test.
    let mut fleet = Fleet::new(Database::Shared(schema), 300);
    // Each test takes the agent's whole share: one runs, one more is claimed ahead and waits.
    let project = project(
        &fleet,
        "[defaults]\ncpus = 1\nmemory = \"32MiB\"\n\n\
         [[test]]\nname = \"s1\"\ncommand = [\"sleep\", \"300\"]\n\n\
         [[test]]\nname = \"s2\"\ncommand = [\"sleep\", \"300\"]\n\n\
         [[test]]\nname = \"s3\"\ncommand = [\"sleep\", \"300\"]\n",
    );
    let a1 = fleet.start_agent("a1", "1");
    fleet.wait_registered(&["a1"]);
    let run = fleet.submit(&project);
    let held = "SELECT count(*) FROM leases l JOIN jobs j ON j.job_id = l.job_id \
                WHERE j.run_id = $1 AND l.outcome IS NULL";
    fleet.wait_for("one test running and one claimed ahead", || {
        (fleet.agents[a1].log().contains("psy_agent: started") && fleet.count(held, run) == 2)
            .then_some(())
    });
    stop_agents(&mut fleet);
    let log = fleet.agents[a1].log();
    assert_eq!(
        fleet.count(
            "SELECT count(*) FROM leases l JOIN jobs j ON j.job_id = l.job_id \
             WHERE j.run_id = $1 AND l.outcome = 'released'",
            run
        ),
        2,
        "the running attempt's lease and the waiting one's are released; agent log:\n{log}"
    );
    assert_eq!(
        fleet.count(
            "SELECT count(*) FROM jobs WHERE run_id = $1 AND state = 'queued' AND attempt = 1",
            run
        ),
        3,
        "every job is queued again at once, for its first attempt"
    );
    let _: psy_fleet::wire::Cancelled = fleet
        .client()
        .post(&format!("/api/runs/{run}/cancel"), &serde_json::json!({}))
        .expect("cancelling");
}

#[test]
fn a_wrong_token_is_refused_with_exit_2() {
    let Some(schema) = TestSchema::new() else {
        return;
    };
    let fleet = Fleet::new(Database::Shared(schema), 30);
    let agent = |token: &str| {
        let out = Command::new(PSY)
            .args(["agent", "--server", &fleet.url(), "--work-dir"])
            .arg(fleet.dir.join("work-refused"))
            .env("PSY_TOKEN", token)
            .output()
            .expect("psy agent");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, stderr) = agent("not-a-token");
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("error: the server refused the agent's token")
            && stderr.contains("401")
            && !stderr.contains("not-a-token"),
        "{stderr}"
    );
    let (code, stderr) = agent(&fleet.user.clone());
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("the token is not an agent's"), "{stderr}");

    let missing = Command::new(PSY)
        .args(["agent", "--token", "t"])
        .env_remove("PSY_SERVER")
        .output()
        .expect("psy agent");
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("--server URL or set PSY_SERVER"));
}
