//! Conformance checks of expected durations: the median of the recent pass/fail window, and
//! imported durations for ids without one.

use super::{attempt, record_series, run};
use crate::Store;
use psy_model::AttemptStatus::{Error, Fail, Oom, Pass, Skipped, Timeout};
use psy_model::{RunId, TestId};
use std::time::Duration;

fn expected(store: &dyn Store, test: &str) -> Option<Duration> {
    store
        .expected_durations()
        .unwrap()
        .get(&TestId(test.into()))
        .copied()
}

pub(crate) fn median_of_odd_and_even_counts(s: &mut dyn Store) {
    record_series(s, "odd", &[(Pass, 30), (Fail, 10), (Pass, 20)]);
    record_series(s, "even", &[(Pass, 10), (Pass, 40), (Fail, 20), (Pass, 30)]);
    record_series(s, "half", &[(Pass, 10), (Pass, 11)]);
    record_series(s, "one", &[(Pass, 7)]);
    assert_eq!(expected(s, "odd"), Some(Duration::from_millis(20)));
    assert_eq!(expected(s, "even"), Some(Duration::from_millis(25)));
    assert_eq!(expected(s, "half"), Some(Duration::from_micros(10_500)));
    assert_eq!(expected(s, "one"), Some(Duration::from_millis(7)));
    assert_eq!(expected(s, "never-seen"), None);
    assert_eq!(s.expected_durations().unwrap().len(), 4);
}

pub(crate) fn only_the_last_twenty_by_start_time_count(s: &mut dyn Store) {
    s.begin_run(&run("r", 0)).unwrap();
    let r = RunId("r".into());
    // Twenty recent 10 ms attempts recorded first, fifteen old 1 ms ones after them: the
    // window follows start times, not insertion order (by insertion the median is 1 ms).
    for i in 0..20 {
        s.record_attempt(&r, &attempt("t", i + 16, Pass, 10_000 + u64::from(i), 10))
            .unwrap();
    }
    for i in 0..15 {
        s.record_attempt(&r, &attempt("t", i + 1, Pass, u64::from(i), 1))
            .unwrap();
    }
    assert_eq!(expected(s, "t"), Some(Duration::from_millis(10)));
    // Eleven newer 1 s attempts leave 9 x 10 ms + 11 x 1 s in the window; over the whole
    // history (15 x 1 ms, 20 x 10 ms, 11 x 1 s) the median would still be 10 ms.
    for i in 0..11 {
        s.record_attempt(
            &r,
            &attempt("t", 100 + i, Fail, 20_000 + u64::from(i), 1_000),
        )
        .unwrap();
    }
    assert_eq!(expected(s, "t"), Some(Duration::from_millis(1_000)));
}

pub(crate) fn errors_timeouts_oom_and_skips_are_ignored(s: &mut dyn Store) {
    let mut series = vec![(Pass, 10), (Fail, 30)];
    // Later non-pass/fail attempts neither count nor push the good ones out of the window.
    series.extend(
        [(Error, 1), (Timeout, 5_000), (Oom, 7_000), (Skipped, 0)]
            .iter()
            .cycle()
            .take(30),
    );
    record_series(s, "t", &series);
    record_series(s, "broken", &[(Error, 1), (Timeout, 9_000), (Skipped, 0)]);
    assert_eq!(expected(s, "t"), Some(Duration::from_millis(20)));
    assert_eq!(expected(s, "broken"), None);
}

pub(crate) fn imported_durations_fill_the_gaps_and_history_wins(s: &mut dyn Store) {
    record_series(s, "local", &[(Pass, 10)]);
    let imported = [("local", 99), ("remote", 40)]
        .iter()
        .map(|&(id, ms)| (TestId(id.into()), Duration::from_millis(ms)))
        .collect();
    assert_eq!(s.import_durations(&imported).unwrap(), 2);
    assert_eq!(expected(s, "local"), Some(Duration::from_millis(10)));
    assert_eq!(expected(s, "remote"), Some(Duration::from_millis(40)));
    // A second import replaces the first one's value, kept to the microsecond.
    let again = [(TestId("remote".into()), Duration::from_nanos(1_500_900))].into();
    assert_eq!(s.import_durations(&again).unwrap(), 1);
    assert_eq!(expected(s, "remote"), Some(Duration::from_micros(1_500)));
    // A first pass/fail attempt of an imported id takes over from the import.
    record_series(s, "remote", &[(Skipped, 0), (Fail, 3)]);
    assert_eq!(expected(s, "remote"), Some(Duration::from_millis(3)));
    assert_eq!(s.expected_durations().unwrap().len(), 2);
}
