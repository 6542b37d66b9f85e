//! `psy bench shard`: how evenly `psy run --shard K/N` splits a skewed suite (a few long tests,
//! many short ones) beside nextest's `--partition count:K/N`, `slice:K/N` and `hash:K/N` on the
//! same suite. Durations are synthetic and known, so each shard's time is the sum of its tests'
//! durations (what a CI job running that shard serially takes); nothing runs.
//!
//! nextest's rules, as in `nextest-runner/src/partition.rs` and `list/test_list.rs`: tests are
//! listed by binary id, then by name within a binary; `count` deals them round-robin with a
//! counter that restarts at shard 1 in every binary; `slice` deals round-robin across all
//! binaries; `hash` puts a test in shard `xxh64(name) % N + 1`, the name without the binary.

use super::xxh64::xxh64;
use clap::Args;
use psy_model::TestId;
use psy_runner::shard;
use std::collections::HashMap;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct ShardArgs {
    /// Tests in the generated suite.
    #[arg(long, default_value_t = 400)]
    tests: usize,
    /// Of which this many are long (8 to 40 s; the others take 20 ms to 2 s).
    #[arg(long, default_value_t = 12)]
    long: usize,
    /// Seed of the generated suite (same seed, same suite).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Shard counts to compare.
    #[arg(long, value_delimiter = ',', default_values_t = [2u32, 4, 8])]
    shards: Vec<u32>,
}

/// The goal for psy's split: slowest shard / fastest shard.
const TARGET: f64 = 1.1;

/// One test of the generated suite.
#[derive(Debug, Clone)]
struct Case {
    binary: String,
    name: String,
    duration: Duration,
    /// `#[ignore]`: nextest partitions these apart from the others (the generated suite has none).
    ignored: bool,
}

impl Case {
    fn id(&self) -> TestId {
        TestId(format!("{}::{}", self.binary, self.name))
    }
}

pub fn run(args: ShardArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.long <= args.tests,
        "--long {} is more than --tests {}",
        args.long,
        args.tests
    );
    if let Some(bad) = args
        .shards
        .iter()
        .find(|&&n| n == 0 || n > shard::MAX_SHARDS)
    {
        return Err(crate::error::usage(format!(
            "--shards {bad}: each must be 1 to {}",
            shard::MAX_SHARDS
        )));
    }
    let suite = generate(args.tests, args.long, args.seed);
    let mut out = std::io::stdout().lock();
    let total: Duration = suite.iter().map(|c| c.duration).sum();
    let longest = suite.iter().map(|c| c.duration).max().unwrap_or_default();
    writeln!(
        out,
        "psy bench shard: {} tests in {} binaries ({} long), {:.1} s of tests in all, longest {:.1} s, seed {}",
        suite.len(),
        binaries(&suite).len(),
        args.long,
        total.as_secs_f64(),
        longest.as_secs_f64(),
        args.seed
    )?;
    writeln!(
        out,
        "shard time = the sum of its tests' durations (a CI job running the shard serially)"
    )?;
    writeln!(
        out,
        "{:>3}  {:36} {:>10} {:>10} {:>16}",
        "N", "split", "slowest s", "fastest s", "slowest/fastest"
    )?;
    let mut met = true;
    for &n in &args.shards {
        for (what, loads) in splits(&suite, n) {
            let (max, min) = (
                loads.iter().max().copied().unwrap_or_default(),
                loads.iter().min().copied().unwrap_or_default(),
            );
            let ratio = max.as_secs_f64() / min.as_secs_f64();
            if what.starts_with("psy --shard (recorded") {
                met &= ratio <= TARGET;
            }
            writeln!(
                out,
                "{n:>3}  {what:36} {:>10.1} {:>10.1} {:>16}",
                max.as_secs_f64(),
                min.as_secs_f64(),
                if ratio.is_finite() {
                    format!("{ratio:.3}")
                } else {
                    "inf (empty shard)".into()
                }
            )?;
        }
    }
    writeln!(
        out,
        "psy --shard (recorded durations): slowest/fastest <= {TARGET} for every N: {}",
        if met { "yes" } else { "NO" }
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Every split of `suite` into `n` shards, with each shard's time.
fn splits(suite: &[Case], n: u32) -> Vec<(&'static str, Vec<Duration>)> {
    let ids: Vec<TestId> = suite.iter().map(Case::id).collect();
    let refs: Vec<&TestId> = ids.iter().collect();
    let known: HashMap<TestId, Duration> = ids
        .iter()
        .cloned()
        .zip(suite.iter().map(|c| c.duration))
        .collect();
    let loads_of = |shard_of: &dyn Fn(usize) -> u32| {
        let mut loads = vec![Duration::ZERO; n as usize];
        for (i, c) in suite.iter().enumerate() {
            loads[shard_of(i) as usize] += c.duration;
        }
        loads
    };
    let count = count_shards(suite, n);
    let by_counts = shard::split(&refs, &HashMap::new(), n).shard_of;
    let by_history = shard::split(&refs, &known, n);
    // The run after the one recorded: every test within +-20% of its recorded duration.
    let mut state = u64::from(n);
    let noisy: Vec<Duration> = suite
        .iter()
        .map(|c| {
            c.duration
                .mul_f64(0.8 + (next(&mut state) % 401) as f64 / 1000.0)
        })
        .collect();
    let mut noisy_loads = vec![Duration::ZERO; n as usize];
    for (s, d) in by_history.shard_of.iter().zip(&noisy) {
        noisy_loads[*s as usize] += *d;
    }
    vec![
        ("psy --shard (recorded durations)", by_history.loads),
        ("psy --shard, next run (+-20% noise)", noisy_loads),
        (
            "psy --shard (no history: counts)",
            loads_of(&|i| by_counts[i]),
        ),
        ("nextest --partition count:K/N", loads_of(&|i| count[i])),
        ("nextest --partition slice:K/N", loads_of(&|i| i as u32 % n)),
        (
            "nextest --partition hash:K/N",
            loads_of(&|i| (xxh64(suite[i].name.as_bytes()) % u64::from(n)) as u32),
        ),
    ]
}

/// nextest's `count:K/N`: round-robin within each binary, the counter starting at shard 1 in
/// every binary, with a separate counter for its ignored tests (checked against real nextest in
/// the tests below). `suite` is in nextest's order (binary id, then name).
fn count_shards(suite: &[Case], n: u32) -> Vec<u32> {
    let mut out = Vec::with_capacity(suite.len());
    let mut counters = [0, 0];
    for (i, c) in suite.iter().enumerate() {
        if i == 0 || suite[i - 1].binary != c.binary {
            counters = [0, 0];
        }
        let counter = &mut counters[usize::from(c.ignored)];
        out.push(*counter);
        *counter = (*counter + 1) % n;
    }
    out
}

fn binaries(suite: &[Case]) -> Vec<&str> {
    let mut b: Vec<&str> = suite.iter().map(|c| c.binary.as_str()).collect();
    b.dedup();
    b
}

/// splitmix64: a small, fixed generator so a seed always makes the same suite.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A workspace-like suite in nextest's order: unit-test binaries of mostly short tests and
/// integration-test binaries that hold the long ones.
fn generate(tests: usize, long: usize, seed: u64) -> Vec<Case> {
    const BINARIES: [&str; 6] = ["api", "api::it", "cli::it", "core", "core::it", "storage"];
    const LONG_IN: [&str; 3] = ["api::it", "cli::it", "core::it"];
    let mut state = seed;
    let mut suite: Vec<Case> = (0..tests)
        .map(|i| {
            let is_long = i < long;
            let binary = if is_long {
                LONG_IN[next(&mut state) as usize % LONG_IN.len()]
            } else {
                BINARIES[next(&mut state) as usize % BINARIES.len()]
            };
            let ms = if is_long {
                8_000 + next(&mut state) % 32_000
            } else if next(&mut state).is_multiple_of(10) {
                500 + next(&mut state) % 1_500
            } else {
                20 + next(&mut state) % 300
            };
            let module = ["parse", "store", "net", "auth", "render"][next(&mut state) as usize % 5];
            Case {
                binary: binary.to_string(),
                name: format!("{module}::{}_{i:04}", if is_long { "e2e" } else { "case" }),
                duration: Duration::from_millis(ms),
                ignored: false,
            }
        })
        .collect();
    suite.sort_by(|a, b| (&a.binary, &a.name).cmp(&(&b.binary, &b.name)));
    suite
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_restarts_in_every_binary() {
        let case = |binary: &str, name: &str| Case {
            binary: binary.into(),
            name: name.into(),
            duration: Duration::ZERO,
            ignored: name.starts_with("ignored"),
        };
        let suite = [
            case("a", "1"),
            case("a", "2"),
            case("a", "3"),
            case("a", "ignored-1"),
            case("b", "1"),
        ];
        assert_eq!(count_shards(&suite, 2), [0, 1, 0, 0, 0]);
    }

    #[test]
    fn psy_meets_the_target_on_the_default_suite_and_count_does_not() {
        let suite = generate(400, 12, 1);
        for n in [2, 4, 8] {
            let all = splits(&suite, n);
            let ratio = |loads: &[Duration]| {
                loads.iter().max().unwrap().as_secs_f64()
                    / loads.iter().min().unwrap().as_secs_f64()
            };
            assert!(ratio(&all[0].1) <= TARGET, "{n}: {:?}", all[0]);
            assert!(ratio(&all[3].1) > TARGET, "{n}: {:?}", all[3]);
            for (what, loads) in all.iter().filter(|(w, _)| !w.contains("noise")) {
                assert_eq!(
                    loads.iter().sum::<Duration>(),
                    suite.iter().map(|c| c.duration).sum(),
                    "{what}"
                );
            }
        }
    }

    /// The reproduction of `count:K/N` gives real nextest's shards on the fixture crate (two
    /// binaries, so the per-binary restart shows). Skips, saying so, without cargo-nextest.
    #[test]
    fn count_matches_real_nextest_on_the_fixture_crate() {
        let fixture = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/nextest-crate"
        );
        let target = tempfile::tempdir().unwrap();
        let list = |partition: Option<String>| -> Option<serde_json::Value> {
            let mut cmd = std::process::Command::new("cargo");
            cmd.args([
                "nextest",
                "list",
                "--message-format",
                "json",
                "--run-ignored",
                "all",
            ])
            .current_dir(fixture)
            .env("CARGO_TARGET_DIR", target.path());
            if let Some(p) = partition {
                cmd.args(["--partition", &p]);
            }
            let out = cmd.output().ok()?;
            if !out.status.success() {
                let err = String::from_utf8_lossy(&out.stderr);
                assert!(err.contains("no such command"), "cargo nextest list: {err}");
                return None;
            }
            Some(serde_json::from_slice(&out.stdout).expect("nextest's JSON"))
        };
        let Some(all) = list(None) else {
            eprintln!("skipped: cargo-nextest is not installed");
            return;
        };
        // nextest's order: suites by binary id, tests by name (both are sorted maps).
        // (binary, name, ignored, selected by the partition)
        let selected = |v: &serde_json::Value| -> Vec<(String, String, bool, bool)> {
            let mut out = Vec::new();
            for (binary, suite) in v["rust-suites"].as_object().unwrap() {
                for (name, case) in suite["testcases"].as_object().unwrap() {
                    let matches = case["filter-match"]["status"] == "matches";
                    let ignored = case["ignored"] == true;
                    out.push((binary.clone(), name.clone(), ignored, matches));
                }
            }
            out
        };
        let suite: Vec<Case> = selected(&all)
            .into_iter()
            .map(|(binary, name, ignored, _)| Case {
                binary,
                name,
                duration: Duration::ZERO,
                ignored,
            })
            .collect();
        assert!(binaries(&suite).len() >= 2, "{suite:?}");
        for n in [2, 3] {
            let ours = count_shards(&suite, n);
            for k in 1..=n {
                let theirs: Vec<bool> = selected(&list(Some(format!("count:{k}/{n}"))).unwrap())
                    .into_iter()
                    .map(|(_, _, _, matches)| matches)
                    .collect();
                let mine: Vec<bool> = ours.iter().map(|&s| s == k - 1).collect();
                assert_eq!(mine, theirs, "count:{k}/{n} on {suite:?}");
            }
        }
    }
}
