//! Manifest and selection errors: exit 2, one line that names the file, line, column and key
//! (or the test and resource), and nothing recorded. None of these need a container.

use crate::support::{Out, Project};

/// Runs `psy ARGS` in `p` and returns its one-line error, after checking it was refused.
#[track_caller]
fn refused(p: &Project, args: &[&str]) -> String {
    let out: Out = p.psy(args);
    out.code(2);
    assert!(out.stdout.is_empty(), "nothing on stdout\n{out}");
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "an error is one line\n{out}");
    assert!(lines[0].starts_with("error: "), "{out}");
    assert!(!p.database().exists(), "nothing recorded\n{out}");
    lines[0]["error: ".len()..].to_string()
}

#[track_caller]
fn assert_has(message: &str, parts: &[&str]) {
    for part in parts {
        assert!(message.contains(part), "{part:?} not in {message:?}");
    }
}

const TWO_TESTS: &str = r#"[[test]]
name = "a"
command = ["true"]
[[test]]
name = "b"
command = ["true"]
"#;

#[test]
fn unknown_key() {
    let p = Project::new(&format!("{TWO_TESTS}memroy = \"1GiB\"\n"));
    let msg = refused(&p, &["run"]);
    assert_has(
        &msg,
        &[
            "psyduck.toml:7:1: test[1].memroy: unknown field `memroy`",
            "`memory`",
        ],
    );
}

#[test]
fn bad_size_names_the_manifest_path_given() {
    let p = Project::empty();
    p.file(
        "sub/psyduck.toml",
        "[defaults]\nmemory = \"12 potatoes\"\n[[test]]\nname = \"a\"\ncommand = [\"true\"]\n",
    );
    let msg = refused(&p, &["run", "-m", "sub/psyduck.toml"]);
    assert_has(
        &msg,
        &["sub/psyduck.toml:2:10: defaults.memory: invalid size \"12 potatoes\""],
    );
}

#[test]
fn bad_duration() {
    let p =
        Project::new("[[test]]\nname = \"a\"\ncommand = [\"true\"]\ntimeout = \"10 parsecs\"\n");
    let msg = refused(&p, &["run"]);
    assert_has(
        &msg,
        &["psyduck.toml:4:11: test[0].timeout: invalid duration \"10 parsecs\""],
    );
}

#[test]
fn duplicate_test_id() {
    let p = Project::new(&TWO_TESTS.replace("\"b\"", "\"a\""));
    let msg = refused(&p, &["run"]);
    assert_has(
        &msg,
        &[
            "duplicate test id \"a\"",
            "psyduck.toml:1",
            "psyduck.toml:4",
        ],
    );
}

#[test]
fn memory_larger_than_the_machine() {
    let p = Project::new(&format!(
        "{TWO_TESTS}[[test]]\nname = \"fat\"\ncommand = [\"true\"]\nmemory = \"100TiB\"\n"
    ));
    let msg = refused(&p, &["run"]);
    assert_has(
        &msg,
        &[
            "test \"fat\" (psyduck.toml:7)",
            "100TiB of memory",
            "this machine has only",
        ],
    );
    // `psy list` only lists: it shows the test without judging the machine.
    p.psy(&["list", "fat"]).code(0);
}

#[test]
fn cpus_larger_than_the_machine_names_the_variant() {
    let p = Project::new(
        "[[test]]\nname = \"big\"\ncommand = [\"true\"]\n[[variant]]\nname = \"wide\"\ncpus = 100000\n",
    );
    let msg = refused(&p, &["run"]);
    assert_has(&msg, &["test \"big@wide\" (psyduck.toml:1)", "100000 CPUs"]);
}

#[test]
fn a_scenario_whose_nodes_do_not_fit_together() {
    // The machine's CPUs for tests, as psy reports them when asked for too many.
    let probe = Project::new("[[test]]\nname = \"probe\"\ncommand = [\"true\"]\ncpus = 100000\n");
    let msg = refused(&probe, &["run"]);
    let cpus = msg
        .split("this machine has only ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("no capacity in {msg:?}"))
        .to_string();
    // The driver and each node fit on their own; the three together do not.
    let nodes: String = ["n1", "n2"]
        .iter()
        .map(|n| {
            format!("[[test.node]]\nname = \"{n}\"\ncommand = [\"sleep\", \"9\"]\ncpus = {cpus}\n")
        })
        .collect();
    let p = Project::new(&format!(
        "[[test]]\nname = \"etcd-3\"\ncommand = [\"true\"]\ncpus = {cpus}\n{nodes}"
    ));
    let msg = refused(&p, &["run"]);
    let unit = if cpus == "1" { "CPU" } else { "CPUs" };
    assert_has(
        &msg,
        &[
            "test \"etcd-3\" (psyduck.toml:1): its driver and 2 nodes ask for",
            &format!("together (driver {cpus} {unit}, n1 {cpus} {unit}, n2 {cpus} {unit})"),
            &format!("this machine has only {cpus} {unit} for tests"),
        ],
    );
}

#[test]
fn missing_manifest() {
    let p = Project::empty();
    let msg = refused(&p, &["run"]);
    assert_has(&msg, &["psyduck.toml: no such manifest"]);
    let msg = refused(&p, &["list", "-m", "elsewhere/psy.toml"]);
    assert_has(&msg, &["elsewhere/psy.toml: no such manifest"]);
}

#[test]
fn unknown_variant() {
    let p = Project::new(&format!(
        "{TWO_TESTS}[[variant]]\nname = \"debug\"\n[[variant]]\nname = \"release\"\n"
    ));
    let msg = refused(&p, &["run", "--variant", "fast"]);
    assert_has(
        &msg,
        &["unknown variant \"fast\" (defined: debug, release)"],
    );
}

#[test]
fn filter_matching_nothing() {
    let p = Project::new(TWO_TESTS);
    let msg = refused(&p, &["run", "zzz"]);
    assert_has(&msg, &["no test matches", "zzz", "of 2 tests"]);
    let msg = refused(&p, &["list", "tag:nope"]);
    assert_has(&msg, &["no test matches", "tag:nope"]);
}

#[test]
fn invalid_toml() {
    let p = Project::new("[[test]]\nname = \"a\"\ncommand = [\"true\"\n");
    let msg = refused(&p, &["run"]);
    assert_has(&msg, &["psyduck.toml:", "invalid TOML"]);
}

#[test]
fn numbers_out_of_bounds() {
    let p = Project::new(&format!("{TWO_TESTS}retries = 4294967295\n"));
    let msg = refused(&p, &["run"]);
    assert_has(
        &msg,
        &["psyduck.toml:7:11: test[1].retries: invalid value 4294967295 (expected 0 to 100)"],
    );
    let p = Project::new(&format!("{TWO_TESTS}memory = 1\n"));
    let msg = refused(&p, &["run"]);
    assert_has(
        &msg,
        &["psyduck.toml:7:10: test[1].memory: size 1B is too small (the minimum is 1MiB)"],
    );
    let p = Project::new(TWO_TESTS);
    let msg = refused(&p, &["run", "--retries", "4294967295"]);
    assert_has(&msg, &["--retries 4294967295: at most 100"]);
}

#[test]
fn more_volumes_than_a_container_takes() {
    let volumes: String = (0..17)
        .map(|i| {
            format!("[[test.volume]]\nname = \"v{i}\"\nsize = \"1MiB\"\npath = \"/tmp/v{i}\"\n")
        })
        .collect();
    let p = Project::new(&format!("{TWO_TESTS}{volumes}"));
    let msg = refused(&p, &["run"]);
    assert_has(&msg, &["test `b`", "17 volumes, at most 16"]);
}

#[test]
fn environments_and_arguments_no_process_can_receive() {
    let p = Project::new(&format!("{TWO_TESTS}env = {{ \"A=B\" = \"1\" }}\n"));
    let msg = refused(&p, &["run"]);
    assert_has(
        &msg,
        &["psyduck.toml:7:9: test[1].env.A=B: environment variable name \"A=B\" must not contain '='"],
    );
    let p = Project::new(&format!("{TWO_TESTS}env = {{ A = \"x\\u0000\" }}\n"));
    let msg = refused(&p, &["run"]);
    assert_has(
        &msg,
        &["psyduck.toml:7:13: test[1].env.A: value \"x\\0\" contains a NUL character"],
    );
    let p = Project::new("[[test]]\nname = \"a\"\ncommand = [\"echo\", \"\\u0000\"]\n");
    let msg = refused(&p, &["run"]);
    assert_has(
        &msg,
        &["psyduck.toml:3:11: test[0].command: value \"\\0\" contains a NUL character"],
    );
    let p = Project::new(&format!(
        "{TWO_TESTS}[[variant]]\nname = \"v\"\nenv = {{ \"\" = \"1\" }}\n"
    ));
    let msg = refused(&p, &["list"]);
    assert_has(
        &msg,
        &["psyduck.toml:9:", "variant[0].env", "must not be empty"],
    );
}

#[test]
fn a_hanging_discovery_command_times_out() {
    let p = Project::new(
        "[[test]]\nname = \"a\"\ncommand = [\"true\"]\n\n[[discover]]\nlist = [\"sleep\", \"1000\"]\ncommand = [\"x\"]\ndiscover-timeout = \"300ms\"\n",
    );
    for args in [&["run"][..], &["list"]] {
        let msg = refused(&p, args);
        assert_has(
            &msg,
            &["psyduck.toml:5 (discover list \"sleep 1000\"): `sleep 1000` did not finish within 300ms and was killed"],
        );
    }
}
