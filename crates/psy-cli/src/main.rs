//! The `psy` command.
fn main() {}
