//! psy-runner (placeholder).
