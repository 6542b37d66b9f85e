//! `--shard K/N`: splits the selected tests into N shards that finish together, from recorded
//! durations (longest first onto the least-loaded shard, "LPT"), the same split on every machine
//! that has the same tests and durations.

use psy_model::{TestId, TestSpec};
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Most shards a run may be split into (more would leave most shards empty on real suites).
pub const MAX_SHARDS: u32 = 10_000;

/// Weight of a test without history when no selected test has any: then every test weighs the
/// same and the split is by counts.
const UNKNOWN_WITHOUT_HISTORY: Duration = Duration::from_secs(1);

/// One shard of N, counting from 1 (`2/4` is the second of four).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub total: u32,
}

/// Why a `--shard` value was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("--shard {value:?}: {problem}")]
pub struct ShardParseError {
    value: String,
    problem: String,
}

impl FromStr for Shard {
    type Err = ShardParseError;

    fn from_str(value: &str) -> Result<Self, ShardParseError> {
        let refuse = |problem: String| ShardParseError {
            value: value.to_string(),
            problem,
        };
        let (k, n) = value
            .split_once('/')
            .ok_or_else(|| refuse("expected K/N, e.g. 1/4 (shard K of N, from 1)".into()))?;
        let number = |s: &str, what: &str| {
            s.trim().parse::<u32>().map_err(|_| {
                refuse(format!(
                    "{what} {s:?} is not a whole number (K/N, e.g. 1/4)"
                ))
            })
        };
        let (index, total) = (number(k, "K")?, number(n, "N")?);
        if total == 0 || total > MAX_SHARDS {
            return Err(refuse(format!("N must be 1 to {MAX_SHARDS}")));
        }
        if index == 0 || index > total {
            return Err(refuse(format!("K counts from 1 and must be 1 to {total}")));
        }
        Ok(Shard { index, total })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.total)
    }
}

/// The weight of each test: its expected duration, or for a test without history the median
/// of the selected tests that have one (a typical test, so counts decide among the unknowns).
pub fn weights(ids: &[&TestId], expected: &HashMap<TestId, Duration>) -> Vec<Duration> {
    let mut known: Vec<Duration> = ids
        .iter()
        .filter_map(|id| expected.get(*id))
        .copied()
        .collect();
    known.sort_unstable();
    let default = match known.len() {
        0 => UNKNOWN_WITHOUT_HISTORY,
        n => (known[(n - 1) / 2] + known[n / 2]) / 2,
    };
    ids.iter()
        .map(|id| expected.get(*id).copied().unwrap_or(default))
        .collect()
}

/// Assigns every item to one of `total` shards (0-based), longest first onto the shard with
/// the least load so far. Equal weights are ordered by `names`, equal loads by shard number,
/// so the result depends only on the inputs, never on their order.
pub fn lpt(names: &[&str], weights: &[Duration], total: u32) -> Vec<u32> {
    let mut order: Vec<usize> = (0..names.len()).collect();
    order.sort_by(|&a, &b| weights[b].cmp(&weights[a]).then(names[a].cmp(names[b])));
    let mut loads = vec![Duration::ZERO; total.max(1) as usize];
    let mut shard_of = vec![0; names.len()];
    for i in order {
        let (least, _) = loads
            .iter()
            .enumerate()
            .min_by_key(|&(s, load)| (*load, s))
            .expect("at least one shard");
        loads[least] += weights[i];
        shard_of[i] = least as u32;
    }
    shard_of
}

/// How a list of tests splits: the shard of each (0-based) and each shard's expected duration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    pub shard_of: Vec<u32>,
    pub loads: Vec<Duration>,
}

/// Splits `ids` into `total` shards by their expected durations (see [`weights`] and [`lpt`]).
pub fn split(ids: &[&TestId], expected: &HashMap<TestId, Duration>, total: u32) -> Split {
    let weights = weights(ids, expected);
    let names: Vec<&str> = ids.iter().map(|id| id.as_str()).collect();
    let shard_of = lpt(&names, &weights, total);
    let mut loads = vec![Duration::ZERO; total.max(1) as usize];
    for (s, w) in shard_of.iter().zip(&weights) {
        loads[*s as usize] += *w;
    }
    Split { shard_of, loads }
}

/// The tests of `shard`, in their original order, and the whole split.
pub fn select(
    tests: Vec<TestSpec>,
    expected: &HashMap<TestId, Duration>,
    shard: Shard,
) -> (Vec<TestSpec>, Split) {
    let ids: Vec<&TestId> = tests.iter().map(|t| &t.id).collect();
    let split = split(&ids, expected, shard.total);
    let mine = tests
        .into_iter()
        .zip(&split.shard_of)
        .filter(|(_, s)| **s == shard.index - 1)
        .map(|(t, _)| t)
        .collect();
    (mine, split)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|&m| Duration::from_millis(m)).collect()
    }

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("t{i:04}")).collect()
    }

    fn loads(shard_of: &[u32], weights: &[Duration], total: u32) -> Vec<Duration> {
        let mut loads = vec![Duration::ZERO; total as usize];
        for (s, w) in shard_of.iter().zip(weights) {
            loads[*s as usize] += *w;
        }
        loads
    }

    /// A skewed suite: 4 long tests, 196 short ones of varied length (a fixed pseudo-random walk).
    fn skewed() -> (Vec<String>, Vec<Duration>) {
        let mut w = vec![20_000, 15_000, 12_000, 9_000];
        let mut x: u64 = 7;
        for _ in 0..196 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            w.push(50 + (x >> 33) % 1_500);
        }
        (names(w.len()), ms(&w))
    }

    #[test]
    fn parses_k_of_n_and_refuses_the_rest() {
        assert_eq!("2/4".parse(), Ok(Shard { index: 2, total: 4 }));
        assert_eq!("1/1".parse::<Shard>().unwrap().to_string(), "1/1");
        for (bad, says) in [
            ("0/4", "K counts from 1"),
            ("5/4", "1 to 4"),
            ("1/0", "N must be"),
            ("x/4", "\"x\" is not a whole number"),
            ("3", "expected K/N"),
            ("1/2/3", "\"2/3\" is not"),
        ] {
            let err = bad.parse::<Shard>().unwrap_err().to_string();
            assert!(err.contains(bad) && err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn every_test_in_exactly_one_shard() {
        let (names, weights) = skewed();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        for total in [1, 2, 3, 8, 300] {
            let shard_of = lpt(&refs, &weights, total);
            assert_eq!(shard_of.len(), names.len());
            assert!(shard_of.iter().all(|&s| s < total), "{total}: {shard_of:?}");
        }
    }

    #[test]
    fn same_split_whatever_the_input_order() {
        let (names, weights) = skewed();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let forward = lpt(&refs, &weights, 4);
        let (mut rnames, mut rweights) = (refs.clone(), weights.clone());
        rnames.reverse();
        rweights.reverse();
        let mut backward = lpt(&rnames, &rweights, 4);
        backward.reverse();
        assert_eq!(forward, backward);
        assert_eq!(forward, lpt(&refs, &weights, 4));
    }

    #[test]
    fn skewed_suite_is_balanced_within_ten_percent() {
        let (names, weights) = skewed();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        for total in [2, 4, 8] {
            let l = loads(&lpt(&refs, &weights, total), &weights, total);
            let (max, min) = (l.iter().max().unwrap(), l.iter().min().unwrap());
            assert!(
                max.as_secs_f64() <= 1.1 * min.as_secs_f64(),
                "{total} shards: {l:?}"
            );
        }
    }

    #[test]
    fn counts_decide_without_history_and_the_median_fills_gaps() {
        let ids: Vec<TestId> = (0..6).map(|i| TestId(format!("t{i}"))).collect();
        let refs: Vec<&TestId> = ids.iter().collect();
        assert_eq!(
            weights(&refs, &HashMap::new()),
            vec![UNKNOWN_WITHOUT_HISTORY; 6]
        );
        let expected: HashMap<TestId, Duration> = [(0, 10), (1, 30), (2, 20)]
            .iter()
            .map(|&(i, m)| (ids[i].clone(), Duration::from_millis(m)))
            .collect();
        assert_eq!(weights(&refs, &expected), ms(&[10, 30, 20, 20, 20, 20]));
        let names: Vec<&str> = refs.iter().map(|id| id.as_str()).collect();
        let shard_of = lpt(&names, &[Duration::from_secs(1); 6], 3);
        let mut counts = [0; 3];
        shard_of.iter().for_each(|&s| counts[s as usize] += 1);
        assert_eq!(counts, [2, 2, 2]);
    }

    #[test]
    fn split_reports_loads_that_add_up() {
        let (names, weights) = skewed();
        let ids: Vec<TestId> = names.iter().map(|n| TestId(n.clone())).collect();
        let refs: Vec<&TestId> = ids.iter().collect();
        let expected: HashMap<TestId, Duration> =
            ids.iter().cloned().zip(weights.iter().copied()).collect();
        let s = split(&refs, &expected, 3);
        assert_eq!(s.loads, loads(&s.shard_of, &weights, 3));
        assert_eq!(s.loads.iter().sum::<Duration>(), weights.iter().sum());
    }
}
