//! Who hears a discovery command's progress while it runs (`cargo nextest list` may compile
//! for minutes): the caller of [`crate::Manifest::expand_with`] passes an observer, and the
//! discovery commands started during that call report to it.

use std::cell::RefCell;
use std::sync::Arc;

/// Told about each discovery command as it runs. Called on the thread that expands the manifest.
pub trait DiscoverProgress {
    /// `command` (of the `[[discover]]` entry at `origin`) started.
    fn started(&self, origin: &str, command: &str);
    /// It printed `line` on stderr (without the newline).
    fn line(&self, origin: &str, line: &str);
    /// It ended: `ok` unless it failed, timed out or could not be read.
    fn finished(&self, origin: &str, ok: bool);
}

thread_local! {
    static OBSERVER: RefCell<Option<Arc<dyn DiscoverProgress>>> = const { RefCell::new(None) };
}

/// Runs `f` with `observer` hearing every discovery command `f` starts on this thread.
pub(crate) fn with_observer<T>(observer: Arc<dyn DiscoverProgress>, f: impl FnOnce() -> T) -> T {
    struct Restore(Option<Arc<dyn DiscoverProgress>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            OBSERVER.with(|o| *o.borrow_mut() = previous);
        }
    }
    let _restore = Restore(OBSERVER.with(|o| o.borrow_mut().replace(observer)));
    f()
}

/// The observer of the current expansion, if any.
pub(crate) fn current() -> Option<Arc<dyn DiscoverProgress>> {
    OBSERVER.with(|o| o.borrow().clone())
}
