//! Results reported together: when several attempts ended while the previous report was on
//! its way, their results go in one `POST /api/leases/results` (one request, one token check
//! and one statement in the server), each under its own lease and fencing token, and the
//! server answers for each. A result with a large output, one the server answers for with a
//! 503, or all of them when the server has no batch endpoint (an older server) go alone.

use crate::report::{recorded, refused, refused_for_good, Pending, OUTPUT_CAP, SMALL_OUTPUT_CAP};
use crate::source::Shared;
use psy_fleet::retry::{self, Backoff};
use psy_fleet::wire::{BatchRecorded, LeaseResult, ResultBatch, MAX_RESULTS_PER_BATCH};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

/// The most results one request carries.
pub(crate) const MAX_BATCH: usize = if MAX_RESULTS_PER_BATCH < 64 {
    MAX_RESULTS_PER_BATCH
} else {
    64
};
/// The most output one request carries, in all (the server reads 2 MiB bodies).
const BATCH_OUTPUT: usize = 1 << 20;

/// Whether the server takes batches.
#[derive(Debug, Default)]
pub(crate) struct Batches {
    /// The server answered 404 or 405 to a batch: it predates them.
    unsupported: bool,
}

impl Batches {
    /// Reports what it can of `waiting` in one request; the results to send alone.
    pub(crate) fn send<'a>(
        &mut self,
        shared: &Shared,
        waiting: &'a [Pending],
        backoff: &mut Backoff,
        abandon: &AtomicBool,
    ) -> Vec<&'a Pending> {
        if waiting.len() < 2 || self.unsupported {
            return waiting.iter().collect();
        }
        let mut alone = Vec::new();
        let mut batch = Vec::new();
        let mut budget = BATCH_OUTPUT;
        for pending in waiting {
            let report = pending.report(&shared.agent, OUTPUT_CAP);
            let size = report.output.as_ref().map_or(0, String::len);
            if size > SMALL_OUTPUT_CAP || size > budget {
                alone.push(pending);
                continue;
            }
            budget -= size;
            batch.push((
                pending,
                LeaseResult {
                    lease_id: pending.lease.lease_id,
                    report,
                },
            ));
        }
        if batch.len() < 2 {
            alone.extend(batch.into_iter().map(|(pending, _)| pending));
            return alone;
        }
        let request = ResultBatch {
            results: batch.iter().map(|(_, item)| item.clone()).collect(),
        };
        let what = format!("reporting {} results", batch.len());
        let stop = || abandon.load(Ordering::SeqCst);
        let answer = retry::retry(&what, backoff, &stop, || {
            shared
                .client
                .post::<_, BatchRecorded>("/api/leases/results", &request)
        });
        match answer {
            Ok(answer) => {
                let mut outcomes: HashMap<i64, _> = answer
                    .results
                    .into_iter()
                    .map(|outcome| (outcome.lease_id, outcome))
                    .collect();
                for (pending, item) in batch {
                    let lease = &pending.lease;
                    match outcomes.remove(&lease.lease_id) {
                        Some(outcome) => match (outcome.recorded, outcome.refused) {
                            (Some(answer), _) => recorded(lease, &item.report, &answer),
                            (None, Some(why)) if why.status < 500 => {
                                refused_for_good(shared, lease, Some(why.status), &why.error)
                            }
                            // A 5xx for this one, or an answer that says nothing.
                            _ => alone.push(pending),
                        },
                        None => alone.push(pending),
                    }
                }
            }
            Err(e) if matches!(e.status(), Some(404 | 405)) => {
                tracing::info!("the server takes no batches of results ({e}); one at a time");
                self.unsupported = true;
                alone.extend(batch.into_iter().map(|(pending, _)| pending));
            }
            Err(e) if e.is_transient() => tracing::warn!(
                "{what}: {e}; giving up as the agent stops: their leases will expire and the \
                 tests run again"
            ),
            Err(e) if matches!(e.status(), Some(401 | 403)) => shared.fatal(refused(&e)),
            // Too large, or refused as a whole: each result gets its own answer.
            Err(e) => {
                tracing::warn!("{what}: {e}; sending them one at a time");
                alone.extend(batch.into_iter().map(|(pending, _)| pending));
            }
        }
        alone
    }
}
