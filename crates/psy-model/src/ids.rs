//! Identifiers of runs and tests.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A test's identity within a suite: `name` alone, or `name@variant` when variants are defined.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TestId(pub String);

impl TestId {
    /// Builds `name` or `name@variant`.
    pub fn new(name: &str, variant: Option<&str>) -> Self {
        match variant {
            Some(v) => TestId(format!("{name}@{v}")),
            None => TestId(name.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A hostname-safe rendering (`[a-z0-9-]`, at most 63 bytes) used as the container's hostname.
    pub fn hostname(&self) -> String {
        let mut out = String::with_capacity(self.0.len().min(63));
        for c in self.0.chars() {
            if out.len() >= 63 {
                break;
            }
            let c = c.to_ascii_lowercase();
            if c.is_ascii_alphanumeric() {
                out.push(c);
            } else if !out.ends_with('-') && !out.is_empty() {
                out.push('-');
            }
        }
        while out.ends_with('-') {
            out.pop();
        }
        if out.is_empty() {
            out.push_str("psy-test");
        }
        out
    }

    /// A filesystem-safe rendering used for log, volume and scratch names: the id itself when
    /// it is made only of `[A-Za-z0-9._@-]` (not starting with `.`) and is short, otherwise the
    /// sanitised id, cut to 100 characters, then `~` and a hash of the whole id. Distinct ids get
    /// distinct stems (`a/b`, `a_b` and `a b` would all sanitise to `a_b`): an unchanged stem
    /// never contains `~`, and changed ones differ by their hash.
    pub fn file_stem(&self) -> String {
        const MAX_PLAIN: usize = 120;
        const KEPT: usize = 100;
        let mut out: String = self
            .0
            .chars()
            .enumerate()
            .map(|(i, c)| {
                // A leading '.' would make `.`, `..` or hidden names.
                let safe = c.is_ascii_alphanumeric() || "-_@".contains(c) || (c == '.' && i > 0);
                if safe {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        if out.is_empty() || out != self.0 || out.len() > MAX_PLAIN {
            // Only ASCII is left, so any byte index is a character boundary.
            out.truncate(KEPT);
            out.push_str(&format!("~{:016x}", fnv1a(self.0.as_bytes())));
        }
        out
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

impl fmt::Display for TestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A run's identity: sortable by start time, e.g. `20261126-063424-3fa2`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunId(pub String);

impl RunId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostname_is_sanitised() {
        assert_eq!(
            TestId::new("Foo::bar baz", Some("debug")).hostname(),
            "foo-bar-baz-debug"
        );
        assert_eq!(TestId("::".into()).hostname(), "psy-test");
        assert!(TestId("x".repeat(200)).hostname().len() <= 63);
    }

    #[test]
    fn file_stem_keeps_long_ids_unique() {
        let a = TestId(format!("{}a", "x".repeat(200)));
        let b = TestId(format!("{}b", "x".repeat(200)));
        assert_ne!(a.file_stem(), b.file_stem());
        assert!(a.file_stem().len() <= 120);
    }

    #[test]
    fn file_stems_of_distinct_ids_differ() {
        let ids = [
            "a/b", "a_b", "a b", "a\nb", "a\u{1b}b", "aé", "a_", ".", "..", "_", "",
        ];
        let stems: std::collections::HashSet<String> = ids
            .iter()
            .map(|id| TestId((*id).into()).file_stem())
            .collect();
        assert_eq!(stems.len(), ids.len(), "{stems:?}");
        // Plain ids stay as they are; changed ones stay readable.
        assert_eq!(
            TestId::new("smoke", Some("debug")).file_stem(),
            "smoke@debug"
        );
        assert_eq!(TestId("a_b".into()).file_stem(), "a_b");
        assert!(TestId("a/b c".into()).file_stem().starts_with("a_b_c~"));
        for id in ids {
            let stem = TestId(id.into()).file_stem();
            assert!(!stem.starts_with('.') && !stem.contains('/'), "{stem}");
        }
    }
}
