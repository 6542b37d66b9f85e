//! An agent started under the name of a live one takes the name over: the first one's leases
//! end at once (not when they would expire: the leases here last 300 s), it is fenced off and
//! exits 2 saying so, and the run completes on the newcomer with each test recorded once.

use crate::fleet::{manifest, project, Database, Fleet};
use crate::{root, stop_agents};
use psy_server::testkit::TestSchema;
use std::time::Duration;

#[test]
fn an_agent_registering_under_a_live_agent_s_name_takes_its_work_over() {
    if !root() {
        return;
    }
    let Some(schema) = TestSchema::new() else {
        return;
    };
    const N: usize = 4;
    let mut fleet = Fleet::new(Database::Shared(schema), 300);
    let project = project(&fleet, &manifest(N, "3", |_| (0, "cpus = 0.5\n")));
    let first = fleet.start_agent("a1", "1");
    fleet.wait_registered(&["a1"]);
    let run_id = fleet.submit(&project);
    let held = "SELECT count(*) FROM leases l JOIN jobs j USING (job_id)
                WHERE j.run_id = $1 AND l.outcome IS NULL";
    fleet.wait_for("the first agent holding leases", || {
        (fleet.count(held, run_id) > 0).then_some(())
    });

    let elsewhere = fleet.dir.join("work-a1-again");
    fleet.start_agent_in("a1", "1", &elsewhere);
    let status = fleet.agents[first].wait(Duration::from_secs(120));
    let log = fleet.agents[first].log();
    assert_eq!(
        status.code(),
        Some(2),
        "the replaced agent: {status}\n{log}"
    );
    assert!(
        log.contains("took it over") || log.contains("takes it over"),
        "{log}"
    );
    let expired = fleet.count(
        "SELECT count(*) FROM leases l JOIN jobs j USING (job_id)
         WHERE j.run_id = $1 AND l.outcome = 'expired'",
        run_id,
    );
    assert!(
        expired > 0,
        "the first agent's leases ended at the takeover"
    );

    let shown = fleet.wait_done(run_id);
    assert_eq!(shown.run.jobs.done, N as i64);
    let results = fleet.recorded_once(run_id, N);
    assert!(
        results
            .values()
            .all(|(status, agent, _)| status == "pass" && agent == "a1"),
        "{results:?}"
    );
    assert_eq!(
        fleet.count(
            "SELECT count(*) FROM agents WHERE name = 'a1' AND $1::bigint > 0",
            run_id
        ),
        1
    );
    fleet.agents.remove(first);
    stop_agents(&mut fleet);
}
