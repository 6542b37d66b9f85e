//! The read-only subcommands: `psy list`, `psy show`, `psy history`, and `psy gc`.

use crate::support::{root, Events, Out, Project};

const LISTED: &str = r#"
[defaults]
cpus = 0.5
memory = "128MiB"

[[test]]
name = "alpha"
command = ["true"]
pids = 64
tmp = "16MiB"
timeout = "30s"

[[test]]
name = "beta"
command = ["sh", "-c", "exit 0"]
memory = "1GiB"
tags = ["slow"]
"#;

fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

#[test]
fn list_shows_every_test_with_its_resources() {
    let p = Project::new(LISTED);
    let out = p.psy(&["list"]);
    out.code(0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        words(lines[0]),
        ["TEST", "CPUS", "MEMORY", "PIDS", "TMP", "TIMEOUT", "EXPECTED"],
        "{out}"
    );
    assert_eq!(lines.len(), 4, "header, two tests, total\n{out}");
    let alpha = words(lines[1]);
    assert_eq!(
        alpha[..5],
        ["alpha", "0.5", "128MiB", "64", "16MiB"],
        "{out}"
    );
    assert_eq!(alpha[6], "-", "never ran: no expected duration\n{out}");
    let beta = words(lines[2]);
    assert_eq!(beta[..5], ["beta", "0.5", "1GiB", "1024", "64MiB"], "{out}");
    assert_eq!(words(lines[3]), ["2", "tests"]);
    assert!(!p.database().exists(), "listing records nothing");

    // Filters select what is listed.
    let out = p.psy(&["list", "tag:slow"]);
    out.code(0);
    assert_eq!(out.stdout.lines().count(), 3, "{out}");
    assert!(out.stdout.contains("beta") && !out.stdout.contains("alpha"));
}

#[test]
fn list_as_json() {
    let p = Project::new(LISTED);
    let out = p.psy(&["list", "--message-format", "json"]);
    out.code(0);
    let tests: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    assert_eq!(tests.len(), 2, "{out}");
    let alpha = &tests[0];
    assert_eq!(alpha["id"], "alpha");
    assert_eq!(alpha["command"], serde_json::json!(["true"]));
    assert_eq!(alpha["timeout_ms"], 30_000);
    assert_eq!(alpha["resources"]["cpu_millis"], 500);
    assert_eq!(alpha["resources"]["memory_bytes"], 128 << 20);
    assert_eq!(alpha["resources"]["pids"], 64);
    assert_eq!(alpha["resources"]["tmp_bytes"], 16 << 20);
    assert_eq!(alpha["origin"], "psyduck.toml:6");
    assert_eq!(alpha["expected_ms"], serde_json::Value::Null);
    assert_eq!(tests[1]["id"], "beta");
    assert_eq!(tests[1]["tags"], serde_json::json!(["slow"]));
    assert_eq!(tests[1]["nodes"], serde_json::json!([]), "not a scenario");
}

#[test]
fn list_names_a_scenarios_nodes_and_shows_what_it_takes_together() {
    let p = Project::new(&format!(
        "{LISTED}\n[[test]]\nname = \"etcd\"\ncommand = [\"./drive.sh\"]\ncpus = 1\nmemory = \"256MiB\"\n\
         [[test.node]]\nname = \"n1\"\ncommand = [\"etcd\"]\ncpus = 0.5\n\
         [[test.node]]\nname = \"n2\"\ncommand = [\"etcd\"]\n\
         [[test.node]]\nname = \"n3\"\ncommand = [\"etcd\"]\n"
    ));
    let out = p.psy(&["list"]);
    out.code(0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 5, "header, three tests, total\n{out}");
    assert_eq!(
        words(lines[3])[..7],
        ["etcd", "(3", "nodes:", "n1", "n2", "n3)", "3.5"],
        "the driver's 1 CPU and the nodes' 0.5 + 1 + 1\n{out}"
    );
    assert_eq!(words(lines[3])[7], "1GiB", "4 x 256MiB\n{out}");
    assert_eq!(words(lines[1])[0], "alpha", "{out}");

    let out = p.psy(&["list", "--message-format", "json", "etcd"]);
    out.code(0);
    let etcd: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(
        etcd["nodes"],
        serde_json::json!(["n1", "n2", "n3"]),
        "{out}"
    );
    assert_eq!(etcd["resources"]["cpu_millis"], 1000, "the driver's own");
}

/// A test that passes only when `MODE=pass` is in psy's environment (containers inherit it).
const MODAL: &str = r#"
[[test]]
name = "modal"
command = ["sh", "-c", "[ \"$MODE\" = pass ]"]
[[test]]
name = "steady"
command = ["true"]
"#;

fn run_with_mode(p: &Project, mode: &str) -> (Out, Events) {
    let mut cmd = p.command(&["run", "--message-format", "json"]);
    cmd.env("MODE", mode);
    let out = Out::of(cmd);
    let events = Events::parse(&out);
    (out, events)
}

/// The run id on the first line of `psy show`: `run <id>  (...)`.
fn shown_run(out: &Out) -> &str {
    words(out.stdout.lines().next().unwrap_or(""))
        .get(1)
        .copied()
        .unwrap_or_else(|| panic!("no run line\n{out}"))
}

/// The STATUS column of `test` in `psy show` (TEST STATUS ATTEMPTS TIME).
fn shown_status<'a>(out: &'a Out, test: &str) -> &'a str {
    out.stdout
        .lines()
        .map(words)
        .find(|w| w.first() == Some(&test))
        .unwrap_or_else(|| panic!("no row for {test}\n{out}"))[1]
}

#[test]
fn show_and_history_after_two_runs() {
    if !root() {
        return;
    }
    let p = Project::new(MODAL);
    let (out, first) = run_with_mode(&p, "fail");
    out.code(1);
    let (out, second) = run_with_mode(&p, "pass");
    out.code(0);
    let (id1, id2) = (first.run_id(), second.run_id());
    assert_ne!(id1, id2);

    // Latest run by default.
    let out = p.psy(&["show"]);
    out.code(0);
    assert_eq!(shown_run(&out), id2, "{out}");
    assert_eq!(shown_status(&out, "modal"), "pass");

    // By full id.
    let out = p.psy(&["show", id1]);
    out.code(0);
    assert_eq!(shown_run(&out), id1, "{out}");
    assert_eq!(shown_status(&out, "modal"), "fail");
    assert_eq!(shown_status(&out, "steady"), "pass");

    // By the shortest prefix that tells the two apart.
    let common = id1
        .chars()
        .zip(id2.chars())
        .take_while(|(a, b)| a == b)
        .count();
    let prefix = &id1[..=common];
    let out = p.psy(&["show", prefix]);
    out.code(0);
    assert_eq!(shown_run(&out), id1, "prefix {prefix}\n{out}");

    // Every attempt: TEST TRY STATUS TIME CPU PEAK-MEM EXIT.
    let out = p.psy(&["show", "--attempts", id1]);
    out.code(0);
    let modal = out
        .stdout
        .lines()
        .map(words)
        .find(|w| w.first() == Some(&"modal"))
        .unwrap_or_else(|| panic!("no attempt row\n{out}"));
    assert_eq!(modal[1..3], ["1", "fail"], "{out}");

    // Unknown ids are usage errors.
    let out = p.psy(&["show", "19990101-000000-0000"]);
    out.code(2);
    assert!(out.stderr.contains("19990101-000000-0000"), "{out}");

    // History: newest first.
    let out = p.psy(&["history", "modal"]);
    out.code(0);
    let rows: Vec<Vec<&str>> = out.stdout.lines().skip(1).map(words).collect();
    assert_eq!(rows.len(), 2, "{out}");
    assert_eq!(rows[0][..3], [id2, "1", "pass"], "{out}");
    assert_eq!(rows[1][..3], [id1, "1", "fail"], "{out}");
    let out = p.psy(&["history", "modal", "--limit", "1"]);
    out.code(0);
    assert_eq!(out.stdout.lines().count(), 2, "header and one row\n{out}");
    let out = p.psy(&["history", "no-such-test"]);
    out.code(2);
    assert!(out.stderr.contains("no-such-test"), "{out}");

    // Recorded runs give `psy list` an expected duration.
    let out = p.psy(&["list", "steady"]);
    out.code(0);
    let row = out.stdout.lines().nth(1).map(words).unwrap();
    assert_ne!(row[6], "-", "{out}");
}

#[test]
fn an_ambiguous_run_prefix_is_a_usage_error() {
    if !root() {
        return;
    }
    let p = Project::new(MODAL);
    let id1 = p.run_json(&[]).1.run_id().to_string();
    let id2 = p.run_json(&[]).1.run_id().to_string();
    let common = id1
        .chars()
        .zip(id2.chars())
        .take_while(|(a, b)| a == b)
        .count();
    let out = p.psy(&["show", &id1[..common]]);
    out.code(2);
    assert!(out.stderr.contains("ambiguous"), "{out}");
}

#[test]
fn gc_cleans_up_after_dead_psy_processes() {
    if !root() {
        return;
    }
    let p = Project::new(MODAL);
    let out = p.psy(&["gc"]);
    out.code(0);
    assert!(out.stderr.contains("gc: removed"), "{out}");

    p.run_json(&[]).0.code(1);
    // What a psy killed mid-run leaves: a run still marked running, and its scratch directory
    // (named after its pid, which no process has).
    let conn = rusqlite::Connection::open(p.database()).unwrap();
    conn.execute(
        "INSERT INTO runs (run_id, started_at_ms, state, manifest, command_line, host)
         VALUES ('20000101-000000-dead', 946684800000, 'running', 'psyduck.toml', 'psy run', 'h')",
        [],
    )
    .unwrap();
    drop(conn);
    let stale = p
        .dir()
        .join(".psyduck/scratch/999999999-20000101-000000-dead");
    std::fs::create_dir_all(stale.join("t.1")).unwrap();

    let out = p.psy(&["gc"]);
    out.code(0);
    assert!(out.stderr.contains("1 scratch directory"), "{out}");
    assert!(out.stderr.contains("1 run marked aborted"), "{out}");
    assert!(!stale.exists());
    let out = p.psy(&["show", "20000101-000000-dead"]);
    out.code(0);
    assert!(out.stdout.to_lowercase().contains("aborted"), "{out}");

    // Nothing left to collect.
    let out = p.psy(&["gc"]);
    out.code(0);
    assert!(out.stderr.contains("0 runs marked aborted"), "{out}");
}

/// gc cleans what dead psy processes left in the project's `.psyduck`: it needs the project's
/// directory (that of `-m`), never a manifest that parses.
#[test]
fn gc_needs_only_the_project_directory() {
    if !root() {
        return;
    }
    let p = Project::empty();
    p.file("sub/psyduck.toml", MODAL);
    p.psy(&["gc", "-m", "sub/psyduck.toml"]).code(0);
    let stale = p
        .dir()
        .join("sub/.psyduck/scratch/999999999-20000101-000000-dead");
    std::fs::create_dir_all(&stale).unwrap();
    p.file("sub/psyduck.toml", "[[test]\nthis is not TOML");
    let out = p.psy(&["gc", "-m", "sub/psyduck.toml"]);
    out.code(0);
    assert!(out.stderr.contains("1 scratch directory"), "{out}");
    assert!(!stale.exists());
    // Without a manifest there is no project to clean.
    p.psy(&["gc", "-m", "elsewhere/psyduck.toml"]).code(2);
}
