//! Free resources over time, as far as the scheduler can foresee them: a step function built
//! from the expected ends of running attempts, minus what this call has started or reserved.
//!
//! It drives conservative backfilling: the best-ranked attempts that cannot start now (up to
//! [`RESERVATIONS`] of them) get a reservation at the earliest time they fit, and a lower-ranked
//! attempt may start now only if it fits around every reservation for its whole expected run.
//! So big attempts are not postponed to the end of the run by a stream of small ones, and small
//! "filler" attempts are not spent on gaps a wider attempt is about to use (which would leave
//! only wide attempts at the end, unable to fill the machine).
//!
//! An attempt that can never overlap one already reserved (the next of a chain of memory-heavy
//! attempts) gets no reservation of its own: it waits for that one anyway. If the head can only
//! fit once attempts of unknown duration end, no time can be booked for it; then everything
//! started beside it must leave room for it (see `Scheduler::reserve`), so it starts once the
//! attempts that were running when it got blocked have ended.

use crate::budget::Usage;
use std::time::Duration;

/// How many blocked attempts get a reservation per call. One protects the head from
/// starvation; a few more keep the next widest attempts from being overtaken by fillers.
pub(crate) const RESERVATIONS: usize = 4;

/// How long an amount fits, from now on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Window {
    Never,
    For(Duration),
    Forever,
}

impl Window {
    /// Whether an attempt of expected duration `expected` (unknown: forever) fits.
    pub(crate) fn covers(self, expected: Option<Duration>) -> bool {
        match (self, expected) {
            (Window::Forever, _) => true,
            (Window::For(w), Some(d)) => d <= w,
            _ => false,
        }
    }
}

#[derive(Debug)]
pub(crate) struct Profile {
    /// `(from, free)`: `free` holds from `from` until the next segment; the last one forever.
    segments: Vec<(Duration, Usage)>,
    /// The least free amount of each resource over all segments: what fits forever.
    floor: Usage,
    /// Segments visited, to test that scheduling stays cheap.
    pub(crate) steps: u64,
}

impl Profile {
    /// `free` is what is unused at `now`; `releases` the running attempts of known expected end,
    /// in order of that end. Overdue attempts are assumed to end any moment now.
    pub(crate) fn new(
        now: Duration,
        free: Usage,
        releases: impl IntoIterator<Item = (Duration, Usage)>,
    ) -> Profile {
        let mut segments = vec![(now, free)];
        let mut steps = 0;
        for (end, usage) in releases {
            steps += 1;
            let at = end.max(now);
            let (last_at, last_free) = segments[segments.len() - 1];
            let free = last_free.plus(usage);
            if last_at == at {
                segments.pop();
            }
            segments.push((at, free));
        }
        let mut profile = Profile {
            segments,
            floor: free,
            steps,
        };
        profile.floor = profile.least_free();
        profile
    }

    fn least_free(&mut self) -> Usage {
        let mut floor = self.segments[0].1;
        for (_, free) in &self.segments {
            self.steps += 1;
            floor = Usage {
                cpu: floor.cpu.min(free.cpu),
                capped_cpu: floor.capped_cpu.min(free.capped_cpu),
                memory: floor.memory.min(free.memory),
                jobs: floor.jobs.min(free.jobs),
                io: std::array::from_fn(|i| floor.io[i].min(free.io[i])),
            };
        }
        floor
    }

    /// How long from now `need` stays available.
    pub(crate) fn window(&mut self, need: Usage) -> Window {
        if need.fits_in(self.floor) {
            return Window::Forever;
        }
        let now = self.segments[0].0;
        for &(at, free) in &self.segments {
            self.steps += 1;
            if !need.fits_in(free) {
                return match at.checked_sub(now) {
                    Some(w) if w > Duration::ZERO => Window::For(w),
                    _ => Window::Never,
                };
            }
        }
        Window::Forever
    }

    /// The earliest time from which `need` stays available for `duration` (unknown: forever),
    /// if the foreseeable future has one.
    pub(crate) fn earliest_fit(
        &mut self,
        need: Usage,
        duration: Option<Duration>,
    ) -> Option<Duration> {
        let mut start = None;
        for (i, &(at, free)) in self.segments.iter().enumerate() {
            self.steps += 1;
            if !need.fits_in(free) {
                start = None;
                continue;
            }
            let from = *start.get_or_insert(at);
            match (self.segments.get(i + 1), duration) {
                (None, _) => return Some(from),
                (Some(&(next, _)), Some(d)) if next.saturating_sub(from) >= d => return Some(from),
                _ => {}
            }
        }
        None
    }

    /// Takes `usage` out of `[from, until)` (`until` unknown: forever). The caller checked that
    /// it fits there.
    pub(crate) fn take(&mut self, from: Duration, until: Option<Duration>, usage: Usage) {
        let first = self.split(from);
        let end = until.map_or(self.segments.len(), |u| self.split(u));
        for (_, free) in &mut self.segments[first..end] {
            self.steps += 1;
            *free = free.minus(usage).unwrap_or_default();
        }
        self.floor = self.least_free();
    }

    /// Index of the segment starting at `at`, splitting the one that spans it.
    fn split(&mut self, at: Duration) -> usize {
        let i = self
            .segments
            .partition_point(|&(from, _)| from <= at)
            .max(1)
            - 1;
        let (from, free) = self.segments[i];
        if from >= at {
            return i;
        }
        self.segments.insert(i + 1, (at, free));
        i + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpu(n: u64) -> Usage {
        Usage {
            cpu: n,
            ..Usage::default()
        }
    }

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn windows_and_reservations() {
        // 1 free now, 2 more at t=10, 1 more at t=20.
        let mut p = Profile::new(s(0), cpu(1), [(s(10), cpu(2)), (s(20), cpu(1))]);
        assert_eq!(p.window(cpu(1)), Window::Forever);
        assert_eq!(p.window(cpu(2)), Window::Never);
        assert_eq!(p.earliest_fit(cpu(3), Some(s(5))), Some(s(10)));
        p.take(s(10), Some(s(15)), cpu(3));
        // Now only 0 free in [10, 15): one unit fits for 10s, not forever.
        assert_eq!(p.window(cpu(1)), Window::For(s(10)));
        assert!(p.window(cpu(1)).covers(Some(s(10))));
        assert!(!p.window(cpu(1)).covers(Some(s(11))));
        assert!(!p.window(cpu(1)).covers(None));
        assert_eq!(p.earliest_fit(cpu(2), Some(s(1))), Some(s(15)));
        assert_eq!(p.earliest_fit(cpu(5), None), None);
        assert_eq!(p.earliest_fit(cpu(4), None), Some(s(20)));
    }
}
