//! psy-sandbox (placeholder).
