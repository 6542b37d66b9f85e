//! psy-config (placeholder).
