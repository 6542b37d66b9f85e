//! psy-scheduler (placeholder).
