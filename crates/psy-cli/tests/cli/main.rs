//! End-to-end tests of the `psy` command as a user runs it: a project in a temp directory, a
//! `psyduck.toml` with small sh scripts, real containers (tests that need them skip without root).

mod calibrate;
mod color;
mod disk_full;
mod env_vars;
mod example;
mod example_debian;
mod exit_codes;
mod fault;
mod filters;
mod fixtures;
mod hostile_names;
mod image_run;
mod images;
mod interrupt;
mod json_stream;
mod junit;
mod limits;
mod live_display;
mod logs;
mod manifest_errors;
mod network;
mod nextest_fidelity;
mod output;
mod pytest_verdicts;
mod pytest_warm;
mod queries;
mod run_control;
mod scenario;
mod shard;
mod strict;
mod support;
