//! Warm starts against plain pytest, on fixture projects and on a real suite from PyPI.

mod fixtures;
mod hostile;
mod real_suite;
mod support;
