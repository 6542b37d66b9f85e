//! Forwarding one event stream to several reporters.

use crate::{ReportError, Reporter};
use psy_model::RunEvent;
use std::fmt;

/// Forwards every call to each reporter, in order.
///
/// One reporter failing does not starve the others: every reporter gets every call, and the
/// errors are returned afterwards (the single error as is, several as [`ReportError::Several`]).
/// Whether to keep going after an error is the caller's choice.
pub struct Fanout(Vec<Box<dyn Reporter>>);

impl Fanout {
    pub fn new(reporters: Vec<Box<dyn Reporter>>) -> Self {
        Fanout(reporters)
    }

    pub fn push(&mut self, reporter: Box<dyn Reporter>) {
        self.0.push(reporter);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn each(
        &mut self,
        mut call: impl FnMut(&mut dyn Reporter) -> Result<(), ReportError>,
    ) -> Result<(), ReportError> {
        let mut errors: Vec<ReportError> = self
            .0
            .iter_mut()
            .filter_map(|r| call(r.as_mut()).err())
            .collect();
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.remove(0)),
            _ => Err(ReportError::Several(errors)),
        }
    }
}

impl Default for Fanout {
    fn default() -> Self {
        Fanout::new(Vec::new())
    }
}

impl fmt::Debug for Fanout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fanout")
            .field("reporters", &self.0.len())
            .finish()
    }
}

impl Reporter for Fanout {
    fn on_event(&mut self, event: &RunEvent) -> Result<(), ReportError> {
        self.each(|r| r.on_event(event))
    }

    fn finish(&mut self) -> Result<(), ReportError> {
        self.each(|r| r.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Records calls into a shared log; fails every call when `fail` is set.
    struct Probe {
        name: &'static str,
        log: Arc<Mutex<Vec<String>>>,
        fail: bool,
    }

    impl Probe {
        fn call(&mut self, what: &str) -> Result<(), ReportError> {
            self.log
                .lock()
                .unwrap()
                .push(format!("{} {what}", self.name));
            if self.fail {
                return Err(ReportError::HumanWrite {
                    target: self.name,
                    source: std::io::Error::from(std::io::ErrorKind::BrokenPipe),
                });
            }
            Ok(())
        }
    }

    impl Reporter for Probe {
        fn on_event(&mut self, event: &RunEvent) -> Result<(), ReportError> {
            self.call(crate::event_type(event))
        }

        fn finish(&mut self) -> Result<(), ReportError> {
            self.call("finish")
        }
    }

    fn fanout(fails: [bool; 3]) -> (Fanout, Arc<Mutex<Vec<String>>>) {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut f = Fanout::default();
        for (name, fail) in ["a", "b", "c"].into_iter().zip(fails) {
            f.push(Box::new(Probe {
                name,
                log: log.clone(),
                fail,
            }));
        }
        (f, log)
    }

    #[test]
    fn forwards_in_order_and_keeps_going_after_an_error() {
        let (mut f, log) = fanout([false, true, false]);
        assert_eq!(f.len(), 3);
        let warning = RunEvent::Warning {
            message: "w".into(),
        };
        let err = f.on_event(&warning).unwrap_err();
        assert!(
            matches!(err, ReportError::HumanWrite { target: "b", .. }),
            "{err:?}"
        );
        f.finish().unwrap_err();
        assert_eq!(
            *log.lock().unwrap(),
            [
                "a warning",
                "b warning",
                "c warning",
                "a finish",
                "b finish",
                "c finish"
            ]
        );
    }

    #[test]
    fn several_errors_are_all_returned() {
        let (mut f, _log) = fanout([true, false, true]);
        let err = f.finish().unwrap_err();
        assert_eq!(
            err.to_string(),
            "2 reporters failed: could not write the human-readable report to a; \
             could not write the human-readable report to c"
        );
        assert!(matches!(err, ReportError::Several(ref e) if e.len() == 2));
        let (mut ok, _log) = fanout([false; 3]);
        ok.finish().unwrap();
    }
}
