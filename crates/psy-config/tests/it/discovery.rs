//! Glob and list discovery against temp directories.

use crate::{expand, parse_in, project};
use psy_config::ConfigError;

#[test]
fn glob_makes_one_test_per_file() {
    let p = project(&[
        ("tests/sql/b.sql", "", false),
        ("tests/sql/a.sql", "", false),
        ("tests/sql/notes.txt", "", false),
        ("tests/sql/dir.sql/x", "", false),
    ]);
    let text = "[defaults]\nretries = 2\n\n[[discover]]\nglob = \"tests/sql/*.sql\"\n\
                command = [\"./run-sql\", \"{path}\", \"{stem}\", \"{file}\", \"{name}\"]\nname = \"sql/{stem}\"\n\
                env = { DB = \"x\" }\ntags = [\"sql\"]\ntimeout = \"5s\"\n";
    let specs = expand(&parse_in(p.path(), text).unwrap()).unwrap();
    let ids: Vec<&str> = specs.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["sql/a", "sql/b"], "sorted, files only");
    assert_eq!(
        specs[0].command,
        ["./run-sql", "tests/sql/a.sql", "a", "a.sql", "sql/a"]
    );
    assert_eq!(specs[0].cwd, p.path());
    assert_eq!(specs[0].env["DB"], "x");
    assert_eq!(specs[0].tags, ["sql"]);
    assert_eq!((specs[0].retries, specs[0].timeout.as_secs()), (2, 5));
    assert_eq!(
        specs[1].origin,
        "psyduck.toml:4 (discover glob \"tests/sql/*.sql\")"
    );
}

#[test]
fn glob_names_default_to_the_relative_path() {
    let p = project(&[("tests/one.sh", "", true)]);
    let text =
        "[[discover]]\nglob = \"tests/*.sh\"\ncommand = [\"sh\", \"{path}\"]\ncwd = \"tests\"\n";
    let specs = expand(&parse_in(p.path(), text).unwrap()).unwrap();
    assert_eq!(specs[0].name, "tests/one.sh");
    assert_eq!(specs[0].cwd, p.path().join("tests"));
}

#[test]
fn glob_matching_nothing_is_not_an_error() {
    let p = project(&[]);
    let text = "[[discover]]\nglob = \"tests/*.nothing\"\ncommand = [\"x\", \"{path}\"]\n";
    assert_eq!(expand(&parse_in(p.path(), text).unwrap()).unwrap(), vec![]);
}

#[test]
fn list_runs_in_the_manifest_dir() {
    let p = project(&[
        ("list-tests.sh", "#!/bin/sh\n# proves the cwd: marker only exists in the manifest dir\ntest -f marker || exit 9\nprintf 'alpha\\n\\n  beta  \\n'\n", true),
        ("marker", "", false),
    ]);
    let text =
        "[[discover]]\nlist = [\"./list-tests.sh\"]\ncommand = [\"./run-test.sh\", \"{name}\"]\n\n\
                [[variant]]\nname = \"v1\"\n\n[[variant]]\nname = \"v2\"\nargs = [\"--fast\"]\n";
    let specs = expand(&parse_in(p.path(), text).unwrap()).unwrap();
    let ids: Vec<&str> = specs.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["alpha@v1", "alpha@v2", "beta@v1", "beta@v2"]);
    assert_eq!(specs[3].command, ["./run-test.sh", "beta", "--fast"]);
    assert_eq!(
        specs[0].origin,
        "psyduck.toml:1 (discover list \"./list-tests.sh\")"
    );
}

#[test]
fn failing_list_names_command_status_and_stderr() {
    let p = project(&[(
        "ls.sh",
        "#!/bin/sh\necho one\necho 'warming up' >&2\necho 'database not reachable' >&2\nexit 3\n",
        true,
    )]);
    let text = "\n[[discover]]\nlist = [\"./ls.sh\", \"--all\"]\ncommand = [\"x\", \"{name}\"]\n";
    let err = expand(&parse_in(p.path(), text).unwrap()).unwrap_err();
    assert!(matches!(err, ConfigError::DiscoverFailed { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "psyduck.toml:2 (discover list \"./ls.sh --all\"): `./ls.sh --all` failed (exit status: 3); last line of its stderr: database not reachable"
    );
    // The whole output, line by line as printed, for the caller to show.
    assert_eq!(
        err.output(),
        (
            "stderr",
            &[
                "warming up".to_string(),
                "database not reachable".to_string()
            ][..]
        )
    );
}

/// Records what a discovery observer hears.
#[derive(Default)]
struct Heard(std::sync::Mutex<Vec<String>>);

impl psy_config::DiscoverProgress for Heard {
    fn started(&self, origin: &str, command: &str) {
        self.0
            .lock()
            .unwrap()
            .push(format!("started {origin}: {command}"));
    }
    fn line(&self, _origin: &str, line: &str) {
        self.0.lock().unwrap().push(format!("line {line}"));
    }
    fn finished(&self, _origin: &str, ok: bool) {
        self.0.lock().unwrap().push(format!("finished ok={ok}"));
    }
}

#[test]
fn stderr_lines_reach_the_observer_as_printed() {
    let p = project(&[(
        "ls.sh",
        "#!/bin/sh\necho one\necho 'Compiling a' >&2\nprintf '   Compiling b\\n' >&2\nprintf 'no newline' >&2\nexit 0\n",
        true,
    )]);
    let text = "[[discover]]\nlist = [\"./ls.sh\"]\ncommand = [\"x\", \"{name}\"]\n";
    let heard = std::sync::Arc::new(Heard::default());
    let manifest = parse_in(p.path(), text).unwrap();
    let specs = {
        let _guard = crate::files_vs_spawn();
        manifest
            .expand_with(&[], &Default::default(), heard.clone())
            .unwrap()
    };
    assert_eq!(specs.len(), 1);
    assert_eq!(
        *heard.0.lock().unwrap(),
        [
            "started psyduck.toml:1 (discover list \"./ls.sh\"): ./ls.sh",
            "line Compiling a",
            "line    Compiling b",
            "line no newline",
            "finished ok=true",
        ]
    );
    // Without an observer, as before.
    assert_eq!(expand(&manifest).unwrap().len(), 1);
}

#[test]
fn failing_collection_on_stdout_keeps_stdout() {
    let p = project(&[(
        "ls.sh",
        "#!/bin/sh\necho 'ERROR collecting test_a.py'\necho 'E   ImportError: no module x'\nexit 2\n",
        true,
    )]);
    let text = "[[discover]]\nlist = [\"./ls.sh\"]\ncommand = [\"x\", \"{name}\"]\n";
    let heard = std::sync::Arc::new(Heard::default());
    let manifest = parse_in(p.path(), text).unwrap();
    let err = {
        let _guard = crate::files_vs_spawn();
        manifest
            .expand_with(&[], &Default::default(), heard.clone())
            .unwrap_err()
    };
    let (stream, lines) = err.output();
    assert_eq!(stream, "stdout");
    assert_eq!(
        lines,
        ["ERROR collecting test_a.py", "E   ImportError: no module x"]
    );
    assert_eq!(heard.0.lock().unwrap().last().unwrap(), "finished ok=false");
}

#[test]
fn missing_list_command_is_reported() {
    let p = project(&[]);
    let text = "[[discover]]\nlist = [\"./nope.sh\"]\ncommand = [\"x\", \"{name}\"]\n";
    let err = expand(&parse_in(p.path(), text).unwrap()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "psyduck.toml:1 (discover list \"./nope.sh\"): cannot run `./nope.sh`: No such file or directory (os error 2)"
    );
}

#[test]
fn discovered_and_declared_ids_must_not_clash() {
    let p = project(&[("ls.sh", "#!/bin/sh\necho smoke\n", true)]);
    let text = "[[test]]\nname = \"smoke\"\ncommand = [\"true\"]\n\n[[discover]]\nlist = [\"./ls.sh\"]\ncommand = [\"x\", \"{name}\"]\n";
    let err = expand(&parse_in(p.path(), text).unwrap()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "duplicate test id \"smoke\": defined at psyduck.toml:1 and again at psyduck.toml:5 (discover list \"./ls.sh\")"
    );
}

#[test]
fn discovered_names_no_process_can_receive_are_refused() {
    let p = project(&[("ls.sh", "#!/bin/sh\nprintf 'ok\\nbad\\000name\\n'\n", true)]);
    let text = "[[discover]]\nlist = [\"./ls.sh\"]\ncommand = [\"./run\", \"{name}\"]\n";
    let err = expand(&parse_in(p.path(), text).unwrap()).unwrap_err();
    assert!(
        matches!(err, ConfigError::DiscoveredUnrunnable { .. }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "psyduck.toml:1 (discover list \"./ls.sh\"): found test \"bad\\0name\": name \"bad\\0name\" contains a NUL character, which no process can receive"
    );
}

#[test]
fn a_hanging_list_command_is_killed_at_its_timeout() {
    // The command and a child it started in the background: both must die.
    let p = project(&[(
        "ls.sh",
        "#!/bin/sh\nsleep 1000 &\necho $! > child.pid\necho early\nwait\n",
        true,
    )]);
    let text = "[defaults]\ntimeout = \"1s\"\n\n[[discover]]\nlist = [\"./ls.sh\"]\ncommand = [\"x\"]\ndiscover-timeout = \"500ms\"\n";
    let manifest = parse_in(p.path(), text).unwrap();
    assert_eq!(manifest.discover[0].discover_timeout.as_millis(), 500);
    let started = std::time::Instant::now();
    let err = expand(&manifest).unwrap_err();
    assert!(started.elapsed().as_secs() < 10, "{:?}", started.elapsed());
    assert!(
        matches!(err, ConfigError::DiscoverTimeout { .. }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "psyduck.toml:4 (discover list \"./ls.sh\"): `./ls.sh` did not finish within 500ms and was killed (raise `discover-timeout` in this [[discover]] entry if it needs longer)"
    );
    let pid = std::fs::read_to_string(p.path().join("child.pid")).unwrap();
    let stat = format!("/proc/{}/stat", pid.trim());
    // Killed (SIGKILL lands asynchronously), so soon gone or a zombie until it is reaped.
    let alive = || {
        std::fs::read_to_string(&stat)
            .map(|s| !s.split(") ").nth(1).unwrap_or("").starts_with('Z'))
            .unwrap_or(false)
    };
    let waited = std::time::Instant::now();
    while alive() && waited.elapsed().as_secs() < 5 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(
        !alive(),
        "the command's background child still runs: {stat}"
    );
}

#[test]
fn discover_timeouts_default_to_ten_minutes() {
    let text = "[[discover]]\nlist = [\"./ls\"]\ncommand = [\"x\"]\n";
    let manifest = crate::parse(text).unwrap();
    assert_eq!(manifest.discover[0].discover_timeout.as_secs(), 600);
    let e =
        crate::error("[[discover]]\nlist = [\"./ls\"]\ncommand = [\"x\"]\ndiscover-timeout = 0\n");
    assert!(
        e.starts_with(
            "psyduck.toml:4:20: discover[0].discover-timeout: timeout must be greater than zero"
        ),
        "{e}"
    );
}

/// A command that keeps printing progress and never ends is still killed at its timeout; the
/// observer heard its lines until then.
#[test]
fn streaming_does_not_defeat_the_timeout() {
    let p = project(&[(
        "ls.sh",
        "#!/bin/sh\necho 'Compiling slowly' >&2\nwhile true; do echo 'still compiling' >&2; sleep 0.05; done\n",
        true,
    )]);
    let text =
        "[[discover]]\nlist = [\"./ls.sh\"]\ncommand = [\"x\"]\ndiscover-timeout = \"300ms\"\n";
    let heard = std::sync::Arc::new(Heard::default());
    let manifest = parse_in(p.path(), text).unwrap();
    let err = {
        let _guard = crate::files_vs_spawn();
        manifest
            .expand_with(&[], &Default::default(), heard.clone())
            .unwrap_err()
    };
    assert!(
        matches!(err, ConfigError::DiscoverTimeout { .. }),
        "{err:?}"
    );
    let heard = heard.0.lock().unwrap();
    assert_eq!(heard[1], "line Compiling slowly");
    assert_eq!(heard.last().unwrap(), "finished ok=false");
}
