//! examples/basic must load, expand to the documented tests, and its tests must pass when run
//! the way psy runs them (PSY_* variables set, fresh scratch directory per attempt).

use psy_config::check_fits;
use psy_model::{Capacity, TestSpec};
use std::path::PathBuf;
use std::process::{Command, Output};

fn example() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/basic/psyduck.toml")
}

fn attempt(spec: &TestSpec, attempt: u32) -> Output {
    let scratch = tempfile::tempdir().unwrap();
    let _guard = crate::files_vs_spawn();
    Command::new(&spec.command[0])
        .args(&spec.command[1..])
        .current_dir(&spec.cwd)
        .envs(&spec.env)
        .env("PSY_RUN_ID", "20260101-000000-test")
        .env("PSY_TEST_ID", spec.id.as_str())
        .env("PSY_ATTEMPT", attempt.to_string())
        .env("PSY_VARIANT", spec.variant.as_deref().unwrap_or(""))
        .env("PSY_SCRATCH", scratch.path())
        .output()
        .unwrap()
}

#[test]
fn basic_example_expands_and_passes() {
    let manifest = psy_config::load(&example()).unwrap();
    let specs = crate::expand(&manifest).unwrap();
    let ids: Vec<&str> = specs.iter().map(|s| s.id.as_str()).collect();
    let mut expected = Vec::new();
    for name in [
        "smoke",
        "flaky",
        "unit/arith",
        "unit/files",
        "unit/strings",
        "case/add",
        "case/concat",
        "case/sort",
    ] {
        for variant in ["quick", "verbose"] {
            expected.push(format!("{name}@{variant}"));
        }
    }
    assert_eq!(ids, expected);
    for spec in &specs {
        assert!(
            spec.resources.cpu_millis <= 500 && spec.resources.memory_bytes <= 128 << 20,
            "{}",
            spec.id
        );
    }
    let laptop = Capacity {
        cpu_millis: 1000,
        memory_bytes: 1 << 30,
        cores: vec![0],
        io: Default::default(),
        network: Default::default(),
    };
    check_fits(&specs, &laptop).unwrap();

    for spec in &specs {
        let first = attempt(spec, 1);
        let log = |o: &Output| {
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
        };
        if spec.name == "flaky" {
            assert!(!first.status.success(), "flaky must fail its first attempt");
            assert!(spec.retries >= 1);
            let second = attempt(spec, 2);
            assert!(second.status.success(), "{}: {}", spec.id, log(&second));
        } else {
            assert!(first.status.success(), "{}: {}", spec.id, log(&first));
        }
    }
}
