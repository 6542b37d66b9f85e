//! One benchmark agent: claims a batch, reports its attempts passed at once (a no-op executor:
//! in one request, or one request each), and again until every attempt of the run is
//! reported. Times each request.

use super::client::Connection;
use super::FleetBenchError;
use crate::queue::claim::Claimed;
use crate::queue::report::Recorded;
use psy_fleet::wire::BatchRecorded;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What one agent did.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    pub(crate) claims: Vec<Duration>,
    pub(crate) reports: Vec<Duration>,
    pub(crate) empty_claims: u64,
}

/// How long an agent waits after an empty claim while others still hold the last jobs: from
/// the first, doubled after each empty claim up to the last (as a real agent backs off).
const IDLE_FIRST: Duration = Duration::from_millis(5);
const IDLE_MAX: Duration = Duration::from_millis(100);

/// Runs agent `name` until `completed` reaches `total`.
pub(crate) async fn run(
    mut conn: Connection,
    name: String,
    batch: u32,
    single_reports: bool,
    completed: Arc<AtomicU64>,
    total: u64,
) -> Result<Tally, FleetBenchError> {
    let mut tally = Tally::default();
    let claim = serde_json::json!({
        "agent": name, "cpu_millis": 1_000_000_000i64, "memory_bytes": 1i64 << 50,
        "labels": {}, "max_jobs": batch,
    });
    let mut idle = IDLE_FIRST;
    loop {
        let started = Instant::now();
        let claimed: Claimed = conn.post("/api/agents/claim", &claim).await?;
        tally.claims.push(started.elapsed());
        if claimed.leases.is_empty() {
            tally.empty_claims += 1;
            if completed.load(Ordering::Relaxed) >= total {
                return Ok(tally);
            }
            tokio::time::sleep(idle).await;
            idle = (idle * 2).min(IDLE_MAX);
            continue;
        }
        idle = IDLE_FIRST;
        if single_reports {
            for lease in claimed.leases {
                let path = format!("/api/leases/{}/result", lease.lease_id);
                let started = Instant::now();
                let recorded: Recorded = conn.post(&path, &passed(lease.fencing_token)).await?;
                tally.reports.push(started.elapsed());
                first_time(&path, &recorded)?;
                completed.fetch_add(1, Ordering::Relaxed);
            }
            continue;
        }
        let results: Vec<_> = claimed
            .leases
            .iter()
            .map(|lease| {
                serde_json::json!({"lease_id": lease.lease_id,
                                   "report": passed(lease.fencing_token)})
            })
            .collect();
        let path = "/api/leases/results";
        let started = Instant::now();
        let answer: BatchRecorded = conn
            .post(path, &serde_json::json!({ "results": results }))
            .await?;
        tally.reports.push(started.elapsed());
        for outcome in &answer.results {
            match (&outcome.recorded, &outcome.refused) {
                (Some(recorded), _) => first_time(path, recorded)?,
                (None, refused) => {
                    return Err(FleetBenchError::Refused {
                        request: format!("POST {path} (lease {})", outcome.lease_id),
                        status: refused.as_ref().map_or(200, |r| r.status),
                        body: format!("{refused:?}"),
                    })
                }
            }
        }
        completed.fetch_add(answer.results.len() as u64, Ordering::Relaxed);
    }
}

/// A no-op attempt's report: passed at once.
fn passed(fencing_token: i64) -> serde_json::Value {
    serde_json::json!({
        "fencing_token": fencing_token, "status": "pass", "duration_ms": 0, "exit_code": 0,
    })
}

/// Refuses an answer that calls a first report a duplicate.
fn first_time(path: &str, recorded: &Recorded) -> Result<(), FleetBenchError> {
    if recorded.duplicate {
        return Err(FleetBenchError::Refused {
            request: format!("POST {path}"),
            status: 200,
            body: "a first report was answered as a duplicate".into(),
        });
    }
    Ok(())
}
