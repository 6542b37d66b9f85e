//! psy-store (placeholder).
