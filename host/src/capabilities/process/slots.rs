//! Caps on live children: a count shared by everyone holding a slot, and a
//! slot that gives its place back when dropped. A child holds one slot of
//! its call and one of its plugin from spawn until its handle is dropped.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Children running now, for one call or one plugin.
#[derive(Clone, Debug, Default)]
pub struct LiveChildren(Arc<AtomicUsize>);

impl LiveChildren {
    /// A slot if fewer than `limit` are taken.
    pub fn try_take(&self, limit: usize) -> Option<Slot> {
        self.0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < limit).then_some(n + 1))
            .ok()
            .map(|_| Slot(self.0.clone()))
    }

    pub fn count(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }
}

/// One taken place; dropping it frees the place.
#[derive(Debug)]
pub struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_capped_and_given_back() {
        let live = LiveChildren::default();
        let a = live.try_take(2).unwrap();
        let _b = live.try_take(2).unwrap();
        assert!(live.try_take(2).is_none());
        drop(a);
        assert_eq!(live.count(), 1);
        assert!(live.try_take(2).is_some());
    }
}
