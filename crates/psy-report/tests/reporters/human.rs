//! The human report as written to a non-terminal.

use crate::script::PASS;
use crate::script::{script, ERROR, FAIL, RUN, SKIPPED, WARNING};
use psy_model::OutputDisplay;
use psy_report::{ColorChoice, HumanOptions, HumanReporter, Reporter, RunEvent, Verbosity};

fn run(events: &[RunEvent], options: HumanOptions, finish: bool) -> String {
    let mut r = HumanReporter::new(Vec::new(), options);
    for e in events {
        r.on_event(e).unwrap();
    }
    if finish {
        r.finish().unwrap();
    }
    String::from_utf8(r.into_inner()).unwrap()
}

fn plain() -> HumanOptions {
    HumanOptions {
        color: ColorChoice::Never,
        ..HumanOptions::default()
    }
}

/// `lines` appear in `text` in this order (other lines may come between them).
fn assert_in_order(text: &str, lines: &[String]) {
    let all: Vec<&str> = text.lines().collect();
    let mut at = 0;
    for want in lines {
        match all[at..].iter().position(|l| l == want) {
            Some(i) => at += i + 1,
            None => panic!("{want:?} missing or out of order in:\n{text}"),
        }
    }
}

#[test]
fn lines_as_tests_finish() {
    let s = script();
    let text = run(&s.events, plain(), true);
    assert_in_order(
        &text,
        &[
            format!("Running 8 tests (run {RUN}, about 12.000s)"),
            format!("   WARN {WARNING}"),
            format!("  RETRY {FAIL} (attempt 2, after fail: exit 1)"),
            format!("   FAIL [  0.250s] {FAIL} (attempt 2/2, exit 1)"),
            "  RETRY net/dns.sh (attempt 2, after fail: signal 9 (SIGKILL))".to_string(),
            "  FLAKY [  0.100s] net/dns.sh (passed on attempt 2)".to_string(),
            "    OOM [  2.000s] big (peak 512MiB of 512MiB)".to_string(),
            "TIMEOUT [ 10.000s] slow".to_string(),
            format!("  ERROR [  0.001s] {ERROR}: command not found: frobnicate"),
        ],
    );
    // Skipped tests, like passing ones, get a line only when asked (nextest's default too);
    // the summary counts them.
    assert!(
        !text.contains(&format!("SKIP [  0.003s] {SKIPPED}")),
        "{text}"
    );
    assert!(text.contains("  skipped        1"), "{text}");
    assert_eq!(
        text.matches(WARNING).count(),
        1,
        "warning printed once:\n{text}"
    );
    assert!(
        !text.contains("PASS"),
        "no PASS lines unless verbose:\n{text}"
    );
    assert!(
        !text.contains('\x1b'),
        "no escape codes without colour:\n{text}"
    );
}

#[test]
fn one_test_is_singular() {
    let mut s = script();
    if let RunEvent::RunStarted {
        total, expected_ms, ..
    } = &mut s.events[0]
    {
        *total = 1;
        *expected_ms = None;
    }
    let text = run(&s.events[..1], plain(), true);
    assert!(
        text.starts_with(&format!("Running 1 test (run {RUN})\n")),
        "{text}"
    );
    assert!(text.contains("Summary: 1 test in "), "{text}");
}

/// With the default `immediate-final`, a failure's output follows its line at once (and a
/// retried attempt's follows its RETRY line), and comes again at the end.
#[test]
fn failure_output_immediately_and_at_the_end() {
    let s = script();
    let text = run(&s.events, plain(), true);
    assert_in_order(
        &text,
        &[
            format!("  RETRY {FAIL} (attempt 2, after fail: exit 1)"),
            format!("--- stdout: {FAIL} (attempt 1) ---"),
            "first try output".to_string(),
            format!("   FAIL [  0.250s] {FAIL} (attempt 2/2, exit 1)"),
            format!("--- stdout: {FAIL} (attempt 2) ---"),
            "parser out 1".to_string(),
            "parser out 30".to_string(),
            format!("--- stderr: {FAIL} (attempt 2) ---"),
            "assertion failed: left == right".to_string(),
            format!("--- FAIL: {FAIL} (attempt 2/2, exit 1)"),
            "parser out 1".to_string(),
            "Summary: 8 tests in 12.345s (run 20261126-063424-3fa2)".to_string(),
        ],
    );
    // A flaky test's failed attempt is shown when it is retried, not at the end.
    assert_eq!(text.matches("dns lookup failed").count(), 1, "{text}");
}

#[test]
fn failure_output_modes() {
    let s = script();
    let with = |failure_output| HumanOptions {
        failure_output,
        ..plain()
    };
    let never = run(&s.events, with(OutputDisplay::Never), true);
    assert!(!never.contains("parser out"), "{never}");
    // The failing tests are still listed before the summary.
    assert!(
        never.contains(&format!("--- FAIL: {FAIL} (attempt 2/2, exit 1)\n")),
        "{never}"
    );

    let immediate = run(&s.events, with(OutputDisplay::Immediate), true);
    assert_eq!(
        immediate.matches("parser out 30\n").count(),
        1,
        "{immediate}"
    );
    let summary = immediate.find("Summary:").unwrap();
    assert!(
        immediate.find("parser out 30").unwrap()
            < immediate.find(&format!("--- FAIL: {FAIL}")).unwrap()
    );
    assert!(immediate[..summary].contains(&format!("--- FAIL: {FAIL}")));

    let fin = run(&s.events, with(OutputDisplay::Final), true);
    assert_eq!(fin.matches("parser out 30\n").count(), 1, "{fin}");
    assert!(fin.find(&format!("--- FAIL: {FAIL}")).unwrap() < fin.find("parser out 30").unwrap());
    assert!(!fin.contains("first try output"), "{fin}");
}

#[test]
fn success_output_when_asked() {
    let s = script();
    let text = run(
        &s.events,
        HumanOptions {
            success_output: OutputDisplay::Immediate,
            ..plain()
        },
        true,
    );
    assert_in_order(
        &text,
        &[
            format!("   PASS [  0.020s] {PASS}"),
            format!("--- stdout: {PASS} (attempt 1) ---"),
            "all good".to_string(),
        ],
    );
    let text = run(&s.events, plain(), true);
    assert!(!text.contains("all good"), "{text}");
    let text = run(
        &s.events,
        HumanOptions {
            success_output: OutputDisplay::Final,
            ..plain()
        },
        true,
    );
    assert_in_order(
        &text,
        &[
            format!("--- PASS: {PASS}"),
            "all good".to_string(),
            "Summary: 8 tests in 12.345s (run 20261126-063424-3fa2)".to_string(),
        ],
    );
}

#[test]
fn quiet_shows_failures_and_one_summary_line() {
    let s = script();
    let text = run(
        &s.events,
        HumanOptions {
            verbosity: Verbosity::Quiet,
            ..plain()
        },
        true,
    );
    for absent in ["Running", "RETRY", "FLAKY", "Summary:", "  passed "] {
        assert!(
            !text.contains(absent),
            "{absent:?} in quiet output:\n{text}"
        );
    }
    assert!(
        text.contains(&format!("   FAIL [  0.250s] {FAIL}")),
        "{text}"
    );
    assert!(text.contains(WARNING), "warnings are never hidden:\n{text}");
    // Each output once, as the test fails; the end lists the failing tests.
    assert_eq!(text.matches("parser out 30\n").count(), 1, "{text}");
    assert!(
        text.contains(&format!("\n--- FAIL: {FAIL} (attempt 2/2, exit 1)\n")),
        "{text}"
    );
    assert!(
        text.ends_with(&format!(
            "FAILED: 5 of 8 tests did not pass in 12.345s (run {RUN})\n"
        )),
        "{text}"
    );
}

#[test]
fn verbose_shows_starts() {
    let s = script();
    let text = run(
        &s.events,
        HumanOptions {
            verbosity: Verbosity::Verbose,
            ..plain()
        },
        true,
    );
    assert_in_order(
        &text,
        &[
            format!("  START {PASS}"),
            format!("  START {FAIL}"),
            format!("   PASS [  0.020s] {PASS}"),
            format!("   SKIP [  0.003s] {SKIPPED}: ignored: needs a GPU"),
        ],
    );
    assert_eq!(
        text.matches(&format!("  START {FAIL}")).count(),
        1,
        "{text}"
    );
}

#[test]
fn auto_colour_on_a_writer_means_none() {
    let s = script();
    let text = run(&s.events, HumanOptions::default(), true);
    assert!(!text.contains('\x1b'), "{text}");
    let coloured = run(
        &s.events,
        HumanOptions {
            color: ColorChoice::Always,
            ..plain()
        },
        true,
    );
    assert!(coloured.contains("\x1b[1;31m   FAIL\x1b[0m"), "{coloured}");
    // The test's own colours are passed through when colouring.
    assert!(coloured.contains("\x1b[31massertion failed"), "{coloured}");
}

#[test]
fn verbose_shows_passes() {
    let s = script();
    let text = run(
        &s.events,
        HumanOptions {
            show_passing: true,
            ..plain()
        },
        true,
    );
    assert!(
        text.contains("\n   PASS [  0.020s] unit::math::add@debug\n"),
        "{text}"
    );
}

#[test]
fn failed_tests_again_then_summary() {
    let s = script();
    let text = run(&s.events, plain(), true);
    let tail_start = text
        .find(&format!("--- FAIL: {FAIL} (attempt 2/2, exit 1)"))
        .expect(&text);
    let summary_start = text.find("Summary: 8 tests in 12.345s").expect(&text);
    assert!(tail_start < summary_start);
    let tails = &text[tail_start..summary_start];

    // All 30 stdout lines of the last attempt, not the first attempt's output.
    let stdout = format!("--- stdout: {FAIL} (attempt 2) ---\nparser out 1\n");
    assert!(tails.contains(&stdout), "{tails}");
    assert!(tails.contains("parser out 30\n"));
    assert!(!tails.contains("first try output"));
    // Test output is stripped of escapes when not colouring.
    assert!(
        tails.contains("\nassertion failed: left == right\n"),
        "{tails}"
    );
    // Every failed test gets a section; flaky and passing ones do not.
    for header in ["--- OOM: big", "--- TIMEOUT: slow", "--- ERROR: broken"] {
        assert!(tails.contains(header), "missing {header}:\n{tails}");
    }
    assert!(!tails.contains("net/dns.sh"));
    // A test without output files printed nothing.
    let broken = &tails[tails.find("--- ERROR: broken").unwrap()..];
    assert!(
        broken.contains("--- broken (attempt 1) printed nothing\n"),
        "{tails}"
    );
    assert!(tails.contains("message: command not found: frobnicate"));
    // An empty stream is left out.
    let big = &tails[tails.find("--- OOM: big").unwrap()..tails.find("--- TIMEOUT").unwrap()];
    assert!(
        big.contains("--- stdout: big (attempt 1) ---\nallocating\n"),
        "{tails}"
    );
    assert!(!big.contains("stderr"), "{tails}");

    let summary = &text[summary_start..];
    let expected = format!(
        "Summary: 8 tests in 12.345s (run {RUN})
  passed         1
  failed         1
  flaky          1
  skipped        1
  timed out      1
  oom            1
  errors         1
  not run        1
See this run again with: psy show {RUN}
"
    );
    assert_eq!(summary, expected);
}

/// Output past the cap keeps its first lines (the panic message) and its last (the end of the
/// backtrace), with a marker saying what was left out and where all of it is.
#[test]
fn long_output_keeps_head_and_tail() {
    let s = script();
    let text = run(
        &s.events,
        HumanOptions {
            max_output_bytes: 100,
            ..plain()
        },
        true,
    );
    let section = &text[text.find(&format!("--- FAIL: {FAIL}")).unwrap()..];
    assert_in_order(
        section,
        &[
            "parser out 1".to_string(),
            "parser out 3".to_string(),
            "parser out 28".to_string(),
            "parser out 30".to_string(),
        ],
    );
    assert!(!section.contains("parser out 4\n"), "{section}");
    let marker = section
        .lines()
        .find(|l| l.starts_with("    ... "))
        .expect(section);
    assert!(
        marker.starts_with("    ... 24 lines omitted (330B); all of it: /")
            && marker.ends_with(".2.stdout ..."),
        "{marker}"
    );
}

#[test]
fn summary_is_written_once() {
    let s = script();
    let mut r = HumanReporter::new(Vec::new(), plain());
    for e in &s.events {
        r.on_event(e).unwrap();
    }
    r.finish().unwrap();
    r.finish().unwrap();
    let text = String::from_utf8(r.into_inner()).unwrap();
    assert_eq!(text.matches("Summary:").count(), 1);
}

#[test]
fn aborted_run_still_summarises() {
    let s = script();
    // Stop right after the failing test finished.
    let cut = s
        .events
        .iter()
        .position(
            |e| matches!(e, RunEvent::TestFinished { result } if result.test_id.as_str() == FAIL),
        )
        .unwrap();
    let text = run(&s.events[..=cut], plain(), true);
    assert!(
        text.contains("the run was aborted before it finished"),
        "{text}"
    );
    assert!(text.contains(&format!("--- FAIL: {FAIL}")), "{text}");
    assert!(
        text.contains("  passed         1\n  failed         1\n"),
        "{text}"
    );
    assert!(text.contains("  not run        6\n"), "{text}");
    assert!(text.contains(&format!("psy show {RUN}")));
}

#[test]
fn nothing_written_before_finish_without_events() {
    let text = run(&[], plain(), false);
    assert_eq!(text, "");
}
