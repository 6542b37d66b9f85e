//! Backfilling behind a blocked head (EASY backfilling), so a big attempt is not postponed to
//! the end of the run by a stream of small ones, without idling the machine while it waits.
//!
//! When the best-ranked waiting attempt (the head) does not fit, the scheduler computes when it
//! will: it releases running attempts in order of their expected end until the head fits. That
//! instant is the head's shadow time, and what is left over beside the head then is the extra.
//! A lower-ranked attempt may start now if it fits now and either is expected to end by the
//! shadow time or fits in the extra (which it then consumes); either way the head still fits at
//! the shadow time.
//!
//! If the head only fits once attempts of unknown duration end, there is no shadow time. Then
//! every attempt started while the head waits must leave room for it: their charges plus the
//! head's stay within the totals, so the head fits as soon as the attempts that were running
//! when it got blocked have ended.

use crate::budget::Usage;
use std::time::Duration;

/// What a lower-ranked attempt may use while the head waits.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Backfill {
    /// The head is expected to fit at `at`; attempts running past it must fit in `extra`.
    Until { at: Duration, extra: Usage },
    /// The head's start depends on attempts of unknown duration: room left beside it once
    /// everything started before it got blocked has ended (`None`: no room at all).
    Room { room: Option<Usage> },
}

impl Backfill {
    /// `free` is what is unused now, `releases` the running attempts of known expected end in
    /// order of that end, `started` what was started (and still runs) since the head got
    /// blocked. `steps` counts the releases examined.
    pub(crate) fn plan(
        need: Usage,
        free: Usage,
        releases: impl IntoIterator<Item = (Duration, Usage)>,
        now: Duration,
        total: Usage,
        started: Usage,
        steps: &mut u64,
    ) -> Backfill {
        let mut avail = free;
        for (end, usage) in releases {
            *steps += 1;
            avail = avail.plus(usage);
            if let Some(extra) = avail.minus(need) {
                return Backfill::Until {
                    // An overdue attempt is assumed to end any moment now.
                    at: end.max(now),
                    extra,
                };
            }
        }
        Backfill::Room {
            room: total.minus(need).and_then(|r| r.minus(started)),
        }
    }

    /// How long an attempt may be expected to run and still end before the head starts.
    pub(crate) fn window(&self, now: Duration) -> Option<Duration> {
        match *self {
            Backfill::Until { at, .. } => Some(at.saturating_sub(now)),
            Backfill::Room { .. } => None,
        }
    }

    /// What attempts that may run past the head's start can still take.
    pub(crate) fn room(&self) -> Option<Usage> {
        match *self {
            Backfill::Until { extra, .. } => Some(extra),
            Backfill::Room { room } => room,
        }
    }

    pub(crate) fn consume(&mut self, usage: Usage) {
        match self {
            Backfill::Until { extra, .. } => *extra = extra.minus(usage).unwrap_or_default(),
            Backfill::Room { room } => *room = room.and_then(|r| r.minus(usage)),
        }
    }
}
