//! The heartbeat thread: every lease the agent holds (its attempt waiting, running, or its
//! result being reported) is renewed before it runs out. A heartbeat the server cannot answer
//! now is tried again soon; one it refuses (409: a claim gave the job to another agent after
//! the lease expired, or its run was cancelled; 404) means the lease is no longer the agent's:
//! its attempt is dropped or killed.

use crate::report::refused;
use crate::source::{LeaseRef, Shared};
use psy_fleet::retry::{self, Backoff};
use psy_fleet::wire::{HeartbeatRequest, Renewed};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The shortest pause between two heartbeats of a lease.
pub(crate) const MIN_INTERVAL: Duration = Duration::from_millis(100);
/// How long the thread sleeps at most between looking for due heartbeats.
const TICK: Duration = Duration::from_millis(100);

/// How often to renew a lease that runs out `until` from now (as this machine's clock reads
/// the server's time): at most every `configured`, and three times per lease at least.
pub(crate) fn interval(configured: Duration, until: Option<Duration>) -> Duration {
    match until {
        Some(left) => configured.min(left / 3).max(MIN_INTERVAL),
        None => configured,
    }
}

/// Renews due leases until `done` is set.
pub(crate) fn run(shared: Arc<Shared>, done: Arc<AtomicBool>) {
    let mut backoff = retry::default_backoff();
    let mut failing = false;
    while !done.load(Ordering::SeqCst) {
        let now = Instant::now();
        let due: Vec<LeaseRef> = shared
            .lock()
            .held
            .values()
            .filter(|h| h.next_beat <= now)
            .map(|h| h.lease.clone())
            .collect();
        for lease in due {
            if done.load(Ordering::SeqCst) {
                break;
            }
            beat(&shared, &lease, &mut backoff, &mut failing);
        }
        retry::sleep_unless(TICK, &|| done.load(Ordering::SeqCst));
    }
}

/// One heartbeat of `lease`.
fn beat(shared: &Shared, lease: &LeaseRef, backoff: &mut Backoff, failing: &mut bool) {
    let path = format!("/api/leases/{}/heartbeat", lease.lease_id);
    let request = HeartbeatRequest {
        fencing_token: lease.fencing_token,
        agent: Some(shared.agent.clone()),
    };
    let answer = shared.client.post::<_, Renewed>(&path, &request);
    let mut state = shared.lock();
    let Some(held) = state.held.get_mut(&lease.lease_id) else {
        // Answered or let go meanwhile: whatever the server said no longer matters.
        return;
    };
    match answer {
        Ok(_) => {
            held.next_beat = Instant::now() + held.interval;
            if std::mem::take(failing) {
                tracing::warn!("heartbeats reach the server again");
            }
            backoff.reset();
        }
        Err(e) if e.is_transient() => {
            // Soon again, but not sooner than the backoff says (the server may be restarting).
            held.next_beat = Instant::now() + backoff.next_pause().min(held.interval);
            if !std::mem::replace(failing, true) {
                tracing::warn!("heartbeat of {lease}: {e}; trying again");
            }
        }
        Err(e) if matches!(e.status(), Some(401 | 403)) => {
            drop(state);
            shared.fatal(refused(&e));
        }
        Err(e) => {
            drop(state);
            shared.lost(lease, &e.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_leases_are_renewed_three_times_per_lease() {
        let ten = Duration::from_secs(10);
        assert_eq!(interval(ten, None), ten);
        assert_eq!(interval(ten, Some(Duration::from_secs(60))), ten);
        assert_eq!(
            interval(ten, Some(Duration::from_secs(3))),
            Duration::from_secs(1)
        );
        assert_eq!(interval(ten, Some(Duration::ZERO)), MIN_INTERVAL);
    }
}
