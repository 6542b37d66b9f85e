//! The human report as written to a non-terminal.

use crate::script::{script, ERROR, FAIL, RUN, SKIPPED, WARNING};
use psy_report::{ColorChoice, HumanOptions, HumanReporter, Reporter, RunEvent};

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

#[test]
fn lines_as_tests_finish() {
    let s = script();
    let text = run(&s.events, plain(), true);
    let lines: Vec<&str> = text.lines().collect();
    let expected_in_order = [
        format!("Running 8 tests (run {RUN})"),
        format!("   WARN {WARNING}"),
        format!("  RETRY {FAIL} (attempt 2, after fail: exit 1)"),
        format!("   FAIL [  0.250s] {FAIL} (attempt 2/2, exit 1)"),
        "  RETRY net/dns.sh (attempt 2, after fail: signal 9 (SIGKILL))".to_string(),
        "  FLAKY [  0.100s] net/dns.sh (passed on attempt 2)".to_string(),
        "    OOM [  2.000s] big (peak 512MiB of 512MiB)".to_string(),
        "TIMEOUT [ 10.000s] slow".to_string(),
        format!("  ERROR [  0.001s] {ERROR}: command not found: frobnicate"),
        format!("   SKIP [  0.003s] {SKIPPED}: ignored: needs a GPU"),
    ];
    assert_eq!(
        &lines[..expected_in_order.len()],
        &expected_in_order[..],
        "{text}"
    );
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
            verbose: true,
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
fn tails_of_failed_tests_then_summary() {
    let s = script();
    let text = run(&s.events, plain(), true);
    let tail_start = text
        .find(&format!("--- FAIL: {FAIL} (attempt 2/2, exit 1)"))
        .expect(&text);
    let summary_start = text.find("Summary: 8 tests in 12.345s").expect(&text);
    assert!(tail_start < summary_start);
    let tails = &text[tail_start..summary_start];

    // Last 20 of 30 stdout lines of the last attempt, not the first attempt's output.
    assert!(
        tails.contains("), last 20 lines:\nparser out 11\n"),
        "{tails}"
    );
    assert!(tails.contains("parser out 30\n"));
    assert!(!tails.contains("parser out 10\n"));
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
    // A missing output file is a stream that wrote nothing.
    let broken = &tails[tails.find("--- ERROR: broken").unwrap()..];
    assert!(broken.contains("--- stdout: empty\n"), "{tails}");
    assert!(tails.contains("message: command not found: frobnicate"));
    // Empty output is said so.
    let big = &tails[tails.find("--- OOM: big").unwrap()..];
    assert!(big.contains("--- stderr: empty"), "{tails}");

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
