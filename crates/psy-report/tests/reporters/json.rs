//! The JSON-lines stream: one flushed line per event that reads back as the same event.

use crate::script::script;
use psy_report::{JsonReporter, Reporter, RunEvent};
use std::io::{self, Write};

/// Records what has been flushed separately from what is still buffered.
#[derive(Default)]
struct FlushLog {
    pending: Vec<u8>,
    flushed: Vec<u8>,
}

impl Write for FlushLog {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flushed.append(&mut self.pending);
        Ok(())
    }
}

#[test]
fn one_flushed_line_per_event_round_trips() {
    let s = script();
    let mut r = JsonReporter::new(FlushLog::default());
    for (i, e) in s.events.iter().enumerate() {
        r.on_event(e).unwrap();
        let log = r.get_ref();
        assert!(log.pending.is_empty(), "event {i} not flushed");
        assert_eq!(log.flushed.iter().filter(|&&b| b == b'\n').count(), i + 1);
    }
    r.finish().unwrap();
    let text = String::from_utf8(r.into_inner().flushed).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), s.events.len());
    for (line, event) in lines.iter().zip(&s.events) {
        let back: RunEvent = serde_json::from_str(line).unwrap();
        assert_eq!(&back, event);
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(value["type"], psy_report::event_type(event), "{line}");
    }
}

#[test]
fn field_names_match_the_documented_schema() {
    let s = script();
    let mut r = JsonReporter::new(Vec::new());
    for e in &s.events {
        r.on_event(e).unwrap();
    }
    let text = String::from_utf8(r.into_inner()).unwrap();
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(
        first,
        serde_json::json!({
            "type": "run-started",
            "run_id": "20261126-063424-3fa2",
            "total": 8,
            "started_at_ms": 1_795_000_000_000u64,
            "expected_ms": 12_000,
        })
    );
    let oom = text
        .lines()
        .find(|l| l.contains(r#""status":"oom""#))
        .unwrap();
    let oom: serde_json::Value = serde_json::from_str(oom).unwrap();
    assert_eq!(oom["type"], "attempt-finished");
    assert_eq!(oom["result"]["peak_memory_bytes"], 512u64 << 20);
    assert_eq!(
        oom["result"]["exit"],
        serde_json::json!({"code": null, "signal": 9})
    );
}

/// A consumer that goes away (closed pipe) turns into an error naming the event.
#[test]
fn write_errors_name_the_event() {
    struct Closed;
    impl Write for Closed {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::from(io::ErrorKind::BrokenPipe))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut r = JsonReporter::new(Closed);
    let err = r
        .on_event(&RunEvent::Warning {
            message: "x".into(),
        })
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "could not write the warning event to the JSON-lines stream"
    );
}

fn events_md() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/events.md");
    std::fs::read_to_string(path).unwrap()
}

/// The example in docs/events.md is exactly what the reporter writes for those events.
#[test]
fn documented_example_is_current() {
    let doc = events_md();
    let start = doc.find("```json\n").expect("example block") + "```json\n".len();
    let block = &doc[start..start + doc[start..].find("```").unwrap()];
    let mut r = JsonReporter::new(Vec::new());
    let mut types = std::collections::BTreeSet::new();
    for line in block.lines() {
        let event: RunEvent = serde_json::from_str(line).unwrap();
        types.insert(psy_report::event_type(&event));
        r.on_event(&event).unwrap();
    }
    assert_eq!(String::from_utf8(r.into_inner()).unwrap(), block);
    assert_eq!(
        types.len(),
        7,
        "the example shows every event type: {types:?}"
    );
}

/// Every event type and every field name the stream carries has a section or row in the doc.
#[test]
fn every_field_is_documented() {
    fn keys(v: &serde_json::Value, out: &mut std::collections::BTreeSet<String>) {
        if let serde_json::Value::Object(map) = v {
            for (k, v) in map {
                out.insert(k.clone());
                keys(v, out);
            }
        }
    }
    let doc = events_md();
    let mut all = std::collections::BTreeSet::new();
    for e in &script().events {
        keys(&serde_json::to_value(e).unwrap(), &mut all);
        assert!(doc.contains(&format!("### `{}`", psy_report::event_type(e))));
    }
    let missing: Vec<_> = all
        .iter()
        .filter(|k| !doc.contains(&format!("| `{k}` |")))
        .collect();
    assert!(
        missing.is_empty(),
        "fields missing from docs/events.md: {missing:?}"
    );
}
