//! Core ids under the exclusive CPU policy: which are held by whole-core attempts, and which
//! form the pool that fractional attempts share.

use std::collections::BTreeSet;

#[derive(Debug, Default)]
pub(crate) struct CorePool {
    free: BTreeSet<u32>,
}

impl CorePool {
    pub(crate) fn new(ids: &[u32]) -> CorePool {
        CorePool {
            free: ids.iter().copied().collect(),
        }
    }

    /// The `n` lowest free ids. The CPU accounting (see `budget.rs`) guarantees there are
    /// enough whenever a whole-core attempt fits.
    pub(crate) fn take(&mut self, n: u32) -> Vec<u32> {
        let ids: Vec<u32> = self.free.iter().copied().take(n as usize).collect();
        debug_assert_eq!(
            ids.len(),
            n as usize,
            "cpu accounting let too many cores go"
        );
        for id in &ids {
            self.free.remove(id);
        }
        ids
    }

    pub(crate) fn give(&mut self, ids: &[u32]) {
        self.free.extend(ids.iter().copied());
    }

    pub(crate) fn shared(&self) -> Vec<u32> {
        self.free.iter().copied().collect()
    }
}
