//! Taking over an agent's name: an agent that registers under a name already registered (the
//! same agent restarted after a crash, or a pod rescheduled under its node's name) replaces the
//! previous registration. What the previous one still held cannot be running any more under
//! that name's work dir and capacity, so its leases end now (`expired`, counted with the
//! expiries) and their jobs are queued again at once, for the same attempt, instead of after
//! the leases would have run out. The old process, if it still lives, is fenced off: its
//! heartbeats and results are refused (409) like those of any expired lease, and so are its
//! claims, which name the registration they were made under ([`claim`](super::claim)).

use super::QueueError;
use crate::Database;

// Jobs and leases locked together, as the reaping of expired leases does.
const TAKE_OVER: &str = "
WITH held AS (
    SELECT l.lease_id FROM leases l JOIN jobs j ON j.job_id = l.job_id
    WHERE l.agent = $1 AND l.outcome IS NULL AND j.state = 'leased'
    FOR UPDATE),
ended AS (
    UPDATE leases l SET outcome = 'expired', ended_at = now()
    FROM held h WHERE l.lease_id = h.lease_id RETURNING l.job_id)
UPDATE jobs j SET state = 'queued' FROM ended e WHERE j.job_id = e.job_id";

/// Ends the leases held under agent name `agent` (in the registering transaction `tx`) and
/// queues their jobs again; how many.
pub(crate) async fn take_over(
    tx: &deadpool_postgres::Transaction<'_>,
    db: &Database,
    agent: &str,
) -> Result<u64, QueueError> {
    let op = format!("ending the leases of the previous registration of agent {agent:?}");
    let ended = tx
        .execute(TAKE_OVER, &[&agent])
        .await
        .map_err(|e| db.query_error(&op, e))?;
    if ended > 0 {
        tracing::info!(
            agent,
            leases = ended,
            "agent registered again: the previous registration's leases ended, their jobs queued again"
        );
    }
    Ok(ended)
}

/// `Ok` if `registration` (what a claim names) is agent `agent`'s current one, else the 409:
/// a successor registered under the name. Locks the agent's row for share, so a registration
/// committing meanwhile waits for this claim and then ends the leases it grants.
pub(crate) async fn check_current(
    tx: &deadpool_postgres::Transaction<'_>,
    db: &Database,
    agent: &str,
    registration: i64,
) -> Result<(), QueueError> {
    let op = format!("checking the registration of agent {agent:?}");
    let current: Option<i64> = tx
        .query_opt(
            "SELECT registration FROM agents WHERE name = $1 FOR SHARE",
            &[&agent],
        )
        .await
        .map_err(|e| db.query_error(&op, e))?
        .map(|row| row.get(0));
    match current {
        Some(current) if current == registration => Ok(()),
        Some(current) => Err(QueueError::Conflict(format!(
            "claim refused: agent {agent:?} was registered again (registration {current} took \
             over registration {registration}); this agent has been replaced and must stop"
        ))),
        None => Err(QueueError::NotFound(format!(
            "claim refused: no agent {agent:?} is registered"
        ))),
    }
}
