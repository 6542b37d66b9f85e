//! The one error kind the binary tells apart: arguments or a host the user must fix before
//! anything is measured (`psy` exits 2 for it, as for its own usage errors).

/// A bad argument or an unusable target, with what was given and why it does not do.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Wraps any displayable error as a usage error.
pub(crate) fn usage(err: impl std::fmt::Display) -> anyhow::Error {
    UsageError(err.to_string()).into()
}
