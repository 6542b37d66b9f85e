//! Retrying what failed because the server or its database blinked: capped exponential
//! backoff with jitter, for a claim, a heartbeat or a report ([`FleetError::is_transient`]).
//! Refusals (401, 404, 409...) are final and returned at once.

use crate::FleetError;
use std::time::{Duration, Instant};

/// Pauses that double from `first` up to `max`, each drawn at random from its upper half (so
/// agents that lost the server together do not come back together).
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    step: Duration,
    seed: u64,
}

impl Backoff {
    pub fn new(first: Duration, max: Duration) -> Backoff {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let seed = u64::from(nanos) ^ (u64::from(std::process::id()) << 32) | 1;
        Backoff {
            first,
            max: max.max(first),
            step: first,
            seed,
        }
    }

    /// Back to the first pause (after a success).
    pub fn reset(&mut self) {
        self.step = self.first;
    }

    /// The next pause: the current step's upper half at random; the step then doubles, up to
    /// the cap.
    pub fn next_pause(&mut self) -> Duration {
        // xorshift64: enough to spread agents apart.
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let half = self.step / 2;
        let jitter = half.mul_f64((self.seed % 10_000) as f64 / 10_000.0);
        let pause = half + jitter;
        self.step = (self.step * 2).min(self.max);
        pause
    }
}

/// The backoff of the agent's calls: from 100 ms, doubling to 10 s.
pub fn default_backoff() -> Backoff {
    Backoff::new(Duration::from_millis(100), Duration::from_secs(10))
}

/// Sleeps `pause`, waking early (false) once `stop` says so.
pub fn sleep_unless(pause: Duration, stop: &dyn Fn() -> bool) -> bool {
    let until = Instant::now() + pause;
    loop {
        if stop() {
            return false;
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

/// Calls `call` until it succeeds, fails for good, or `stop` says to give up (then the last
/// transient error is returned). Transient failures are logged as warnings naming `what`
/// (the first, then every tenth), and a recovery after them once.
pub fn retry<T>(
    what: &str,
    backoff: &mut Backoff,
    stop: &dyn Fn() -> bool,
    call: impl FnMut() -> Result<T, FleetError>,
) -> Result<T, FleetError> {
    retry_when(what, backoff, stop, &FleetError::is_transient, call)
}

/// How long a user's command (`psy submit`, its uploads) waits out a server or database that
/// is down before giving up.
pub const USER_PATIENCE: Duration = Duration::from_secs(600);

/// [`retry`] with the default backoff, giving up after `within`.
pub fn retry_within<T>(
    what: &str,
    within: Duration,
    call: impl FnMut() -> Result<T, FleetError>,
) -> Result<T, FleetError> {
    let until = Instant::now() + within;
    retry(
        what,
        &mut default_backoff(),
        &|| Instant::now() >= until,
        call,
    )
}

/// [`retry`] of the failures `again` says to try again (e.g. only 503s, for a request that is
/// not safe to repeat when its answer may have been lost).
pub fn retry_when<T>(
    what: &str,
    backoff: &mut Backoff,
    stop: &dyn Fn() -> bool,
    again: &dyn Fn(&FleetError) -> bool,
    mut call: impl FnMut() -> Result<T, FleetError>,
) -> Result<T, FleetError> {
    let mut failures = 0u32;
    loop {
        match call() {
            Ok(answer) => {
                if failures > 0 {
                    tracing::warn!("{what}: succeeded after {failures} failed tries");
                }
                backoff.reset();
                return Ok(answer);
            }
            Err(e) if again(&e) => {
                failures += 1;
                let pause = backoff.next_pause();
                if failures == 1 || failures.is_multiple_of(10) {
                    tracing::warn!(
                        "{what}: {e}; trying again (try {failures}, next in {} ms)",
                        pause.as_millis()
                    );
                }
                if !sleep_unless(pause, stop) {
                    return Err(e);
                }
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn pauses_grow_to_the_cap_with_jitter_in_the_upper_half() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(800));
        let steps = [100u64, 200, 400, 800, 800, 800];
        for step in steps {
            let pause = b.next_pause().as_millis() as u64;
            assert!(
                (step / 2..=step).contains(&pause),
                "{pause} ms for a {step} ms step"
            );
        }
        b.reset();
        assert!(b.next_pause() <= Duration::from_millis(100));
    }

    fn unreachable() -> FleetError {
        crate::FleetClient::new(crate::ServerUrl::parse("http://127.0.0.1:9").unwrap(), "t")
            .get::<serde_json::Value>("/healthz")
            .unwrap_err()
    }

    #[test]
    fn transient_failures_are_retried_and_refusals_are_not() {
        let mut backoff = Backoff::new(Duration::from_millis(1), Duration::from_millis(2));
        let calls = Cell::new(0);
        let answer = retry("test", &mut backoff, &|| false, || {
            calls.set(calls.get() + 1);
            if calls.get() < 3 {
                Err(unreachable())
            } else {
                Ok(7)
            }
        });
        assert_eq!((answer.unwrap(), calls.get()), (7, 3));

        calls.set(0);
        let refused = retry("test", &mut backoff, &|| false, || -> Result<(), _> {
            calls.set(calls.get() + 1);
            Err(FleetError::Refused {
                method: "POST",
                url: "u".into(),
                status: 409,
                message: "stale".into(),
            })
        });
        assert_eq!((refused.unwrap_err().status(), calls.get()), (Some(409), 1));

        let stopped = retry("test", &mut backoff, &|| true, || -> Result<(), _> {
            Err(unreachable())
        });
        assert!(stopped.unwrap_err().is_transient());
    }
}
