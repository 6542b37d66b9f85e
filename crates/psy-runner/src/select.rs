//! Which tests a run includes: `FILTER...` arguments from the command line.

use psy_model::TestSpec;

/// Keeps tests matching any filter (all tests when there is none). A filter matches a test when it
/// is a substring of the test id, or `tag:NAME` and the test has that tag.
pub fn select(tests: Vec<TestSpec>, filters: &[String]) -> Vec<TestSpec> {
    if filters.is_empty() {
        return tests;
    }
    tests
        .into_iter()
        .filter(|t| filters.iter().any(|f| matches(t, f)))
        .collect()
}

fn matches(test: &TestSpec, filter: &str) -> bool {
    match filter.strip_prefix("tag:") {
        Some(tag) => test.tags.iter().any(|t| t == tag),
        None => test.id.as_str().contains(filter),
    }
}
