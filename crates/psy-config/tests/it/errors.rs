//! Every manifest error is one line: `path:line:col: key: problem`.

use crate::{error, parse};

#[test]
fn bad_size_points_at_the_value() {
    let text = "# comment\n\n[defaults]\ntimeout = \"60s\"\nretries = 1\ncpus = 1\nmemory = \"12 potatoes\"\n";
    assert_eq!(
        error(text),
        "psyduck.toml:7:10: defaults.memory: invalid size \"12 potatoes\" (expected e.g. \"512MiB\", \"1GB\" or a number of bytes)"
    );
    assert_eq!(
        error("[defaults]\ntmp = -5\n"),
        "psyduck.toml:2:7: defaults.tmp: invalid size -5 (must not be negative)"
    );
    assert_eq!(
        error("[defaults]\nmemory = 0\n"),
        "psyduck.toml:2:10: defaults.memory: size 0B is too small (the minimum is 1MiB)"
    );
}

#[test]
fn bad_duration_cpus_and_types() {
    assert_eq!(
        error("[[test]]\nname = \"a\"\ncommand = [\"true\"]\ntimeout = \"10 parsecs\"\n"),
        "psyduck.toml:4:11: test[0].timeout: invalid duration \"10 parsecs\" (expected e.g. \"500ms\", \"60s\", \"5m\", \"1h30m\" or a number of seconds)"
    );
    assert_eq!(
        error("[defaults]\ntimeout = 0\n"),
        "psyduck.toml:2:11: defaults.timeout: timeout must be greater than zero"
    );
    assert_eq!(
        error("[defaults]\ncpus = 0\n"),
        "psyduck.toml:2:8: defaults.cpus: invalid cpus 0 (must be at least 0.001)"
    );
    assert_eq!(
        error("[defaults]\ncpus = -1.5\n"),
        "psyduck.toml:2:8: defaults.cpus: invalid cpus -1.5 (expected a positive number of CPUs such as 2 or 0.5)"
    );
    assert_eq!(
        error("[defaults]\ncpus = \"two\"\n"),
        "psyduck.toml:2:8: defaults.cpus: invalid type: string \"two\", expected a number of CPUs such as 2 or 0.5"
    );
    assert_eq!(
        error("[defaults]\nretries = \"x\"\n"),
        "psyduck.toml:2:11: defaults.retries: invalid type: string \"x\", expected i64"
    );
    assert_eq!(
        error("[host]\ncpu-policy = \"greedy\"\n"),
        "psyduck.toml:2:14: host.cpu-policy: unknown variant `greedy`, expected `shared` or `exclusive`"
    );
    assert_eq!(
        error("[host]\nrequire-guarantees = \"yes\"\n"),
        "psyduck.toml:2:22: host.require-guarantees: invalid type: string \"yes\", expected a boolean"
    );
    assert_eq!(
        error("[run]\nfail-fats = true\n"),
        "psyduck.toml:2:1: run.fail-fats: unknown field `fail-fats`, expected `fail-fast`"
    );
}

#[test]
fn unknown_keys_point_at_the_key() {
    assert_eq!(
        error("[defaults]\nretries = 1\nmemroy = \"1GiB\"\n"),
        "psyduck.toml:3:1: defaults.memroy: unknown field `memroy`, expected one of `timeout`, `retries`, `cpus`, `memory`, `pids`, `tmp`, `disk`, `io`, `network`, `privileged`, `allow`, `writable`, `image`, `host`, `project-path`, `labels`"
    );
    assert_eq!(
        error("[[test]]\nname = \"a\"\ncommand = [\"true\"]\n\n[[test]]\nname = \"b\"\ncommand = [\"true\"]\nenvv = {}\n"),
        "psyduck.toml:8:1: test[1].envv: unknown field `envv`, expected one of `name`, `command`, `cwd`, `env`, `tags`, `volume`, `node`, `timeout`, `retries`, `cpus`, `memory`, `pids`, `tmp`, `disk`, `io`, `network`, `privileged`, `allow`, `writable`, `image`, `host`, `project-path`, `labels`"
    );
    assert_eq!(
        error("[[discover]]\nnextest = { workspace = true, feature = \"x\" }\n"),
        "psyduck.toml:2:31: discover[0].nextest.feature: unknown field `feature`, expected `workspace` or `args`"
    );
    assert!(error("[[tests]]\nname = \"a\"\n")
        .starts_with("psyduck.toml:1:3: tests: unknown field `tests`"));
}

#[test]
fn commands_must_be_present_and_non_empty() {
    assert_eq!(
        error("[defaults]\nretries = 0\n\n[[test]]\nname = \"a\"\n"),
        "psyduck.toml:4:1: test[0]: missing field `command`"
    );
    assert_eq!(
        error("[[test]]\nname = \"a\"\ncommand = []\n"),
        "psyduck.toml:3:11: test[0].command: empty command (expected an argv list such as [\"sh\", \"-c\", \"./test.sh\"])"
    );
    assert_eq!(
        error("[[test]]\nname = \"a\"\ncommand = \"./t.sh\"\n"),
        "psyduck.toml:3:11: test[0].command: invalid type: string \"./t.sh\", expected a sequence"
    );
    assert_eq!(
        error("[[test]]\nname = \" \"\ncommand = [\"x\"]\n"),
        "psyduck.toml:2:8: test[0].name: must not be empty"
    );
    assert_eq!(
        error("[[test]]\nname = \"a\"\ncommand = [\"./run\", \"{path}\"]\n"),
        "psyduck.toml:3:11: test[0].command: placeholder {path} is not available in [[test]] commands (use {name})"
    );
}

#[test]
fn discover_entries_need_exactly_one_source() {
    assert_eq!(
        error("[[discover]]\ncommand = [\"./run\", \"{path}\"]\n"),
        "psyduck.toml:1:1: discover[0]: no test source: set exactly one of glob, list, nextest or pytest"
    );
    assert_eq!(
        error("[[discover]]\nnextest = false\ncommand = [\"x\"]\n"),
        "psyduck.toml:1:1: discover[0]: no test source: set exactly one of glob, list, nextest or pytest"
    );
    assert_eq!(
        error("[[discover]]\nglob = \"*.sh\"\nlist = [\"./ls\"]\ncommand = [\"x\"]\n"),
        "psyduck.toml:3:8: discover[0].list: several test sources (glob and list): use one [[discover]] per source"
    );
    assert_eq!(
        error("[[discover]]\nglob = \"*.sh\"\n"),
        "psyduck.toml:1:1: discover[0].command: missing: glob discovery needs a run template such as [\"./run-test\", \"{name}\"]"
    );
    assert_eq!(
        error("[[discover]]\npytest = true\ncommand = [\"x\"]\n"),
        "psyduck.toml:3:11: discover[0].command: not allowed: pytest discovery builds each test's command itself"
    );
    assert_eq!(
        error("[[discover]]\nglob = \"a[\"\ncommand = [\"x\"]\n"),
        "psyduck.toml:2:8: discover[0].glob: invalid glob pattern \"a[\": Pattern syntax error near position 1: invalid range pattern"
    );
    assert_eq!(
        error("[[discover]]\nlist = [\"./ls\"]\ncommand = [\"./run\", \"{stem}\"]\n"),
        "psyduck.toml:3:11: discover[0].command: placeholder {stem} is not available in list discovery (use {name})"
    );
    assert_eq!(
        error("[[discover]]\nlist = [\"./ls\"]\ncommand = [\"x\"]\nname = \"l/{name}\"\n"),
        "psyduck.toml:4:8: discover[0].name: not allowed: list discovery names tests itself (name templates are for glob discovery)"
    );
    assert_eq!(
        error("[[discover]]\npytest = { per = \"module\" }\n"),
        "psyduck.toml:2:18: discover[0].pytest.per: unknown variant `module`, expected `test` or `file`"
    );
}

#[test]
fn variants_are_unique_and_plain() {
    let twice = "[[variant]]\nname = \"debug\"\n\n[[variant]]\nname = \"debug\"\n";
    assert_eq!(
        error(twice),
        "psyduck.toml:5:8: variant[1].name: variant \"debug\" is defined twice"
    );
    assert_eq!(
        error("[[variant]]\nname = \"a@b\"\n"),
        "psyduck.toml:2:8: variant[0].name: variant name \"a@b\" must not contain '@' (test ids are name@variant)"
    );
}

#[test]
fn directories_must_exist() {
    assert_eq!(
        error("[[test]]\nname = \"a\"\ncommand = [\"x\"]\ncwd = \"no/such/dir\"\n"),
        "psyduck.toml:4:7: test[0].cwd: directory /no/such/dir does not exist"
    );
    assert_eq!(
        error("[host]\nrootfs = \"nope\"\n"),
        "psyduck.toml:2:10: host.rootfs: directory /nope does not exist"
    );
}

#[test]
fn syntax_errors_are_one_line_too() {
    assert_eq!(
        error("[defaults]\nretries = 1\n[[test\n"),
        "psyduck.toml:3:7: invalid TOML: invalid table header; expected `.`, `]]`"
    );
    assert_eq!(
        error("x = \"unterminated\n"),
        "psyduck.toml:1:18: invalid TOML: invalid basic string"
    );
    assert_eq!(
        error("[[test]]\nname = \"a\"\ncommand = [\"x\"]\nenv = { A = 1 }\n"),
        "psyduck.toml:4:13: test[0].env.A: invalid type: integer `1`, expected a string"
    );
}

#[test]
fn unreadable_manifest_names_the_path() {
    let err = psy_config::load(std::path::Path::new("/no/such/psyduck.toml")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "/no/such/psyduck.toml: cannot read manifest: No such file or directory (os error 2)"
    );
}

#[test]
fn bad_io_values_name_the_key() {
    let e = crate::error("[defaults]\nio = { weight = 0 }\n");
    assert!(
        e.contains("psyduck.toml:2:") && e.contains("io") && e.contains("1 to 10000"),
        "{e}"
    );
    let e = crate::error("[defaults]\nio = { write-bps = \"fast\" }\n");
    assert!(
        e.contains("psyduck.toml:2:") && e.contains("invalid size"),
        "{e}"
    );
    let e = crate::error("[defaults]\nio = { writes = 1 }\n");
    assert!(e.contains("psyduck.toml:2:") && e.contains("writes"), "{e}");
}

#[test]
fn bad_network_values_name_the_key() {
    let e = crate::error("[defaults]\nnetwork = { egress = \"100MiB\" }\n");
    assert!(
        e.contains("psyduck.toml:2:") && e.contains("invalid rate"),
        "{e}"
    );
    let e = crate::error(
        "[[test]]\nname = \"t\"\ncommand = [\"true\"]\nnetwork = { egres = \"1Mbit\" }\n",
    );
    assert!(e.contains("psyduck.toml:4:") && e.contains("egres"), "{e}");
    let e = crate::error("[host]\nnetwork = { egress = \"0Mbit\" }\n");
    assert!(
        e.contains("psyduck.toml:2:") && e.contains("greater than zero"),
        "{e}"
    );
}

/// Numbers that would wrap, overflow or fail only when a test starts are refused at load.
#[test]
fn numbers_out_of_bounds_name_the_key_and_the_bound() {
    let test = "[[test]]\nname = \"a\"\ncommand = [\"true\"]\n";
    let cases = [
        (
            "retries = 4294967295",
            "test[0].retries: invalid value 4294967295 (expected 0 to 100)",
        ),
        (
            "retries = -1",
            "test[0].retries: invalid value -1 (expected 0 to 100)",
        ),
        (
            "retries = 101",
            "test[0].retries: invalid value 101 (expected 0 to 100)",
        ),
        (
            "pids = 4294967296",
            "test[0].pids: invalid value 4294967296 (expected 1 to 4194304)",
        ),
        (
            "pids = 0",
            "test[0].pids: invalid value 0 (expected 1 to 4194304)",
        ),
        (
            "memory = 1",
            "test[0].memory: size 1B is too small (the minimum is 1MiB)",
        ),
        (
            "memory = \"1023KiB\"",
            "test[0].memory: size 1023KiB is too small (the minimum is 1MiB)",
        ),
        (
            "disk = \"64KiB\"",
            "test[0].disk: size 64KiB is too small (the minimum is 1MiB)",
        ),
        (
            "timeout = \"31d\"",
            "test[0].timeout: timeout 31d is too long (at most 720h)",
        ),
        ("timeout = 1e300", "test[0].timeout: invalid duration"),
        ("tmp = \"99999999999TiB\"", "test[0].tmp: invalid size"),
        ("cpus = 1e12", "test[0].cpus: invalid cpus"),
    ];
    for (line, expected) in cases {
        let e = error(&format!("{test}{line}\n"));
        assert!(
            e.starts_with("psyduck.toml:4:") && e.contains(expected),
            "{line}: {e}"
        );
    }
    let volume = format!("{test}[[test.volume]]\nname = \"v\"\nsize = 4096\npath = \"/tmp/v\"\n");
    let e = error(&volume);
    assert!(
        e.contains("test[0].volume[0].size: size 4KiB is too small (the minimum is 1MiB)"),
        "{e}"
    );
    // A mount point the host lacks is made inside the container; psy's own trees are refused.
    let at = |path: &str| {
        format!("{test}[[test.volume]]\nname = \"v\"\nsize = \"1GiB\"\npath = \"{path}\"\n")
    };
    let config = parse(&at("/psy-config-test-absent/data")).unwrap();
    assert_eq!(
        config.tests[0].volumes[0].path,
        std::path::Path::new("/psy-config-test-absent/data")
    );
    for (path, problem) in [
        ("data", "must be absolute"),
        ("/proc/x", "/proc belongs to the container itself"),
        ("/sys", "/sys belongs to the container itself"),
        ("/dev/data", "/dev belongs to the container itself"),
    ] {
        let e = error(&at(path));
        assert!(e.contains(problem), "{path}: {e}");
    }
    // The bounds themselves are fine.
    parse(&format!(
        "{test}retries = 100\npids = 4194304\nmemory = \"1MiB\"\ntimeout = \"30d\"\n"
    ))
    .unwrap();
}

/// Names and values a process cannot receive are refused at load, at their key.
#[test]
fn environment_names_and_nul_characters() {
    let test = "[[test]]\nname = \"a\"\ncommand = [\"true\"]\n";
    let e = error(&format!("{test}env = {{ \"A=B\" = \"x\" }}\n"));
    assert!(e.starts_with("psyduck.toml:4:9: test[0].env.A=B: environment variable name \"A=B\" must not contain '='"), "{e}");
    let e = error(&format!("{test}env = {{ \"\" = \"x\" }}\n"));
    assert!(e.starts_with("psyduck.toml:4:"), "{e}");
    assert!(
        e.contains("test[0].env") && e.contains("must not be empty"),
        "{e}"
    );
    let e = error(&format!("{test}env = {{ \"A\\u0000\" = \"x\" }}\n"));
    assert!(e.starts_with("psyduck.toml:4:") && e.contains("NUL"), "{e}");
    let e = error(&format!("{test}env = {{ A = \"x\\u0000y\" }}\n"));
    assert!(
        e.starts_with("psyduck.toml:4:13: test[0].env.A: value \"x\\0y\" contains a NUL character"),
        "{e}"
    );
    // Every other string a process receives: arguments, names, directories, in every table
    // (an array's element is named by the array's key).
    let cases = [
        ("[[test]]\nname = \"a\"\ncommand = [\"sh\", \"x\\u0000\"]\n".to_string(), "psyduck.toml:3:11: test[0].command: value"),
        ("[[test]]\nname = \"a\\u0000\"\ncommand = [\"true\"]\n".to_string(), "psyduck.toml:2:8: test[0].name: name"),
        (format!("{test}cwd = \".\\u0000\"\n"), "psyduck.toml:4:7: test[0].cwd: directory"),
        (format!("{test}[[test.volume]]\nname = \"v\"\nsize = \"1GiB\"\npath = \"/tmp/\\u0000\"\n"), "psyduck.toml:4:1: test[0].volume[0]: volume path"),
        ("[[variant]]\nname = \"v\"\nenv = { \"=\" = \"1\" }\n".to_string(), "psyduck.toml:3:9: variant[0].env.=: environment variable name \"=\" must not contain '='"),
        ("[[variant]]\nname = \"v\"\nargs = [\"\\u0000\"]\n".to_string(), "psyduck.toml:3:8: variant[0].args: value"),
        ("[[discover]]\nlist = [\"./ls\"]\ncommand = [\"x\"]\nenv = { \"K=V\" = \"1\" }\n".to_string(), "psyduck.toml:4:9: discover[0].env.K=V: environment variable name"),
        ("[[discover]]\nlist = [\"./ls\\u0000\"]\ncommand = [\"x\"]\n".to_string(), "psyduck.toml:2:8: discover[0].list: value"),
        ("[[discover]]\npytest = { args = [\"\\u0000\"] }\n".to_string(), "psyduck.toml:2:19: discover[0].pytest.args: value"),
        ("[[discover]]\nnextest = { args = [\"\\u0000\"] }\n".to_string(), "psyduck.toml:2:20: discover[0].nextest.args: value"),
    ];
    let wrong: Vec<String> = cases
        .iter()
        .map(|(text, expected)| (error(text), expected))
        .filter(|(e, expected)| {
            !(e.starts_with(*expected) && (e.contains("NUL") || e.contains("'='")))
        })
        .map(|(e, expected)| format!("expected {expected:?}, got {e:?}"))
        .collect();
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn report_section_takes_output_display_words() {
    let m = crate::parse(
        "[report]\nfailure-output = \"final\"\nsuccess-output = \"immediate-final\"\n",
    )
    .unwrap();
    assert_eq!(
        m.report.failure_output,
        Some(psy_model::OutputDisplay::Final)
    );
    assert_eq!(
        m.report.success_output,
        Some(psy_model::OutputDisplay::ImmediateFinal)
    );
    assert_eq!(
        crate::parse("").unwrap().report,
        psy_config::ReportConfig::default()
    );
    assert_eq!(
        error("[report]\nfailure-output = \"immedate\"\n"),
        "psyduck.toml:2:18: report.failure-output: unknown variant `immedate`, expected one of `immediate`, `final`, `immediate-final`, `never`"
    );
    assert_eq!(
        error("[report]\nfailure_output = \"never\"\n"),
        "psyduck.toml:2:1: report.failure_output: unknown field `failure_output`, expected `failure-output` or `success-output`"
    );
}

#[test]
fn prepare_is_checked_and_defaults_its_timeout() {
    let m = parse("[prepare]\ncommand = [\"cargo\", \"build\"]\n").unwrap();
    let prepare = m.prepare.expect("[prepare] read");
    assert_eq!(prepare.command, ["cargo", "build"]);
    assert_eq!(prepare.timeout, psy_config::DEFAULT_PREPARE_TIMEOUT);
    let m = parse("[prepare]\ncommand = [\"make\"]\ntimeout = \"5m\"\n").unwrap();
    assert_eq!(m.prepare.unwrap().timeout.as_secs(), 300);
    assert!(parse("").unwrap().prepare.is_none());
    assert_eq!(
        error("[prepare]\ncommand = []\n"),
        "psyduck.toml:2:11: prepare.command: empty command (expected an argv list such as [\"sh\", \"-c\", \"./test.sh\"])"
    );
    assert_eq!(
        error("[prepare]\ncommand = [\"make\"]\ntimeout = \"soon\"\n"),
        "psyduck.toml:3:11: prepare.timeout: invalid duration \"soon\" (expected e.g. \"500ms\", \"60s\", \"5m\", \"1h30m\" or a number of seconds)"
    );
    assert_eq!(
        error("[prepare]\ncommand = [\"make\"]\ncwd = \"x\"\n"),
        "psyduck.toml:3:1: prepare.cwd: unknown field `cwd`, expected `command` or `timeout`"
    );
    assert!(error("[prepare]\ntimeout = 5\n").contains("prepare: missing field `command`"));
}

#[test]
fn labels_merge_across_levels_and_bad_ones_name_the_key() {
    let m = parse(
        "[defaults]\nlabels = { arch = \"x86_64\", os = \"linux\" }\n\
         [[test]]\nname = \"a\"\ncommand = [\"true\"]\nlabels = { arch = \"aarch64\", gpu = \"yes\" }\n\
         [[test]]\nname = \"b\"\ncommand = [\"true\"]\n",
    )
    .unwrap();
    let tests = crate::expand(&m).unwrap();
    let labels =
        |i: usize| -> Vec<(String, String)> { tests[i].labels.clone().into_iter().collect() };
    let pairs = |p: &[(&str, &str)]| -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    assert_eq!(
        labels(0),
        pairs(&[("arch", "aarch64"), ("gpu", "yes"), ("os", "linux")])
    );
    assert_eq!(labels(1), pairs(&[("arch", "x86_64"), ("os", "linux")]));
    assert_eq!(
        error("[[test]]\nname = \"a\"\ncommand = [\"true\"]\nlabels = { arch = \"x 86\" }\n"),
        "psyduck.toml:4:10: test[0].labels: label \"arch\" = \"x 86\": keys and values are one word each (1 to 200 bytes, no spaces)"
    );
    assert!(error("[defaults]\nlabels = { arch = 1 }\n")
        .starts_with("psyduck.toml:2:19: defaults.labels.arch: invalid type"));
}
