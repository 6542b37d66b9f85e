//! The queue's state for `/metrics`, read from the database so every server reports the
//! fleet's totals, not its own share.

use crate::{Database, ServerError};

/// Fleet-wide gauges and counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Jobs waiting for an agent.
    pub queued_jobs: i64,
    /// Jobs under a lease (attempts running).
    pub leased_jobs: i64,
    /// Agents registered.
    pub agents: i64,
    /// Agents holding a lease now.
    pub active_agents: i64,
    /// Leases that expired and whose job was claimed again, ever.
    pub lease_expiries: i64,
}

/// The numbers now.
pub async fn read(db: &Database) -> Result<QueueStats, ServerError> {
    let client = db.client().await?;
    let row = client
        .query_one(
            "SELECT (SELECT count(*) FROM jobs WHERE state = 'queued'),
                    (SELECT count(*) FROM jobs WHERE state = 'leased'),
                    (SELECT count(*) FROM agents),
                    (SELECT count(DISTINCT agent) FROM leases WHERE outcome IS NULL),
                    (SELECT count(*) FROM leases WHERE outcome = 'expired')",
            &[],
        )
        .await
        .map_err(|e| db.query_error("reading the queue's numbers", e))?;
    Ok(QueueStats {
        queued_jobs: row.get(0),
        leased_jobs: row.get(1),
        agents: row.get(2),
        active_agents: row.get(3),
        lease_expiries: row.get(4),
    })
}
