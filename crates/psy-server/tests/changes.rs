//! `GET /api/runs/{id}/changes?after=CURSOR` against a real PostgreSQL: the first answer has
//! every job, later ones every job changed since the cursor (none missed, even a change whose
//! transaction was running when the previous answer was read and committed after it), and
//! jobs that did not change stop coming once the transactions around them are over.

mod support;

use psy_server::testkit::block_on;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use support::fleet::{call, jobs, Fleet};

/// The changes of `run` since `after`: the job ids, and the next cursor.
fn changes(f: &Fleet, run: i64, after: Option<&str>) -> (BTreeSet<i64>, String) {
    let path = match after {
        Some(c) => format!("/api/runs/{run}/changes?after={c}"),
        None => format!("/api/runs/{run}/changes"),
    };
    let (status, body) = call(f.addr(), "GET", &path, &f.user, None);
    assert_eq!(status, 200, "{path}: {body}");
    let ids = body["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .map(|j| j["job_id"].as_i64().expect("a job id"))
        .collect();
    (ids, body["cursor"].as_str().expect("a cursor").to_string())
}

/// Polls with the newest cursor until an answer has no job `changed` does not allow (other
/// tests' transactions on the same server may hold the cursor back for a while); the cursor.
fn settle(f: &Fleet, run: i64, mut cursor: String, allowed: &BTreeSet<i64>) -> String {
    for _ in 0..200 {
        let (ids, next) = changes(f, run, Some(&cursor));
        if ids.is_subset(allowed) {
            return next;
        }
        cursor = next;
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("jobs that did not change kept coming after cursor {cursor}");
}

#[test]
fn changes_since_a_cursor_miss_nothing_and_leave_out_what_did_not_change() {
    let Some(f) = Fleet::new() else { return };
    let run = f.submit(0, jobs(5, 100, |i| 10 * i as i64));
    let (all, cursor) = changes(&f, run, None);
    assert_eq!(all.len(), 5, "every job at first");
    let cursor = settle(&f, run, cursor, &BTreeSet::new());

    // Two jobs claimed: they come, the other three do not (once the cursor settles).
    let claimed: BTreeSet<i64> = f
        .claim("box", 200, json!({}), 2)
        .iter()
        .map(|l| l["job_id"].as_i64().unwrap())
        .collect();
    assert_eq!(claimed.len(), 2);
    let (ids, _) = changes(&f, run, Some(&cursor));
    assert!(claimed.is_subset(&ids), "{claimed:?} in {ids:?}");
    let cursor = settle(&f, run, cursor, &claimed);

    // A change whose transaction is still open when the next answer is read, committed after:
    // the answer after that one has it.
    let late = *all.difference(&claimed).next().unwrap();
    let cursor = block_on(async {
        let mut client = f.db.client().await.expect("a connection");
        let tx = client.transaction().await.expect("a transaction");
        tx.execute(
            "UPDATE jobs SET expected_ms = 7 WHERE job_id = $1",
            &[&late],
        )
        .await
        .expect("changing a job");
        let (ids, during) = changes(&f, run, Some(&cursor));
        assert!(!ids.contains(&late), "not committed yet: {ids:?}");
        tx.commit().await.expect("committing");
        during
    });
    let (ids, _) = changes(&f, run, Some(&cursor));
    assert!(ids.contains(&late), "the late change is missed: {ids:?}");

    let (status, body): (u16, Value) = call(
        f.addr(),
        "GET",
        &format!("/api/runs/{run}/changes?after=x"),
        &f.user,
        None,
    );
    assert_eq!(status, 400, "{body}");
}
