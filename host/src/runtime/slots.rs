//! How many calls of one plugin may run at once. Every call holds one
//! instance of the engine's shared pool for its duration; without a per-plugin
//! limit, calls that hang (a plugin waiting on a lock, a stuck agent) could take
//! every instance and stop all other plugins. Each plugin gets its own slots,
//! and the pool is sized to hold every plugin's slots at once.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use crate::control::{Interruption, Waiter};

/// How often a call waiting for a slot re-checks its cancellation.
const CANCEL_CHECK: Duration = Duration::from_millis(20);

pub struct CallSlots {
    limit: usize,
    used: Mutex<usize>,
    freed: Condvar,
}

/// One running call; its slot is freed when dropped.
pub struct Slot<'a>(&'a CallSlots);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        *self.0.used() -= 1;
        self.0.freed.notify_one();
    }
}

/// Why no slot was taken.
#[derive(Debug, PartialEq, Eq)]
pub enum NoSlot {
    /// Every slot stayed busy for `waited`.
    Full { limit: usize, waited: Duration },
    /// The call was cancelled or passed its deadline while waiting.
    Interrupted(Interruption),
}

impl CallSlots {
    pub fn new(limit: usize) -> Self {
        Self { limit, used: Mutex::new(0), freed: Condvar::new() }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    fn used(&self) -> MutexGuard<'_, usize> {
        self.used.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Take a slot, waiting at most `patience` (and never past the call's
    /// deadline) for one to be freed; a cancellation ends the wait.
    pub fn acquire(&self, waiter: &Waiter, patience: Duration) -> Result<Slot<'_>, NoSlot> {
        let patience = waiter.remaining().map_or(patience, |left| left.min(patience));
        let started = std::time::Instant::now();
        let mut used = self.used();
        loop {
            if *used < self.limit {
                *used += 1;
                return Ok(Slot(self));
            }
            if let Some(interruption) = waiter.interrupted() {
                return Err(NoSlot::Interrupted(interruption));
            }
            let waited = started.elapsed();
            if waited >= patience {
                return Err(NoSlot::Full { limit: self.limit, waited });
            }
            let step = (patience - waited).min(CANCEL_CHECK);
            used = self.freed.wait_timeout(used, step).unwrap_or_else(|poisoned| poisoned.into_inner()).0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::CancelFlag;

    #[test]
    fn a_full_plugin_refuses_after_its_patience_and_frees_on_drop() {
        let slots = CallSlots::new(2);
        let waiter = Waiter::new(None, CancelFlag::new());
        let first = slots.acquire(&waiter, Duration::ZERO).unwrap();
        let _second = slots.acquire(&waiter, Duration::ZERO).unwrap();
        let refused = slots.acquire(&waiter, Duration::from_millis(30)).err().unwrap();
        assert!(matches!(refused, NoSlot::Full { limit: 2, waited } if waited >= Duration::from_millis(30)));
        drop(first);
        assert!(slots.acquire(&waiter, Duration::ZERO).is_ok());
    }

    #[test]
    fn a_waiting_call_takes_the_slot_a_finished_call_frees() {
        let slots = CallSlots::new(1);
        let waiter = Waiter::new(None, CancelFlag::new());
        let held = slots.acquire(&waiter, Duration::ZERO).unwrap();
        std::thread::scope(|scope| {
            let waiting = scope.spawn(|| slots.acquire(&waiter, Duration::from_secs(3600)).map(drop));
            drop(held);
            assert_eq!(waiting.join().unwrap(), Ok(()));
        });
    }

    #[test]
    fn a_cancelled_call_stops_waiting_for_a_slot() {
        let slots = CallSlots::new(1);
        let cancel = CancelFlag::new();
        let waiter = Waiter::new(None, cancel.clone());
        let _held = slots.acquire(&waiter, Duration::ZERO).unwrap();
        cancel.cancel();
        let refused = slots.acquire(&waiter, Duration::from_secs(3600)).err().unwrap();
        assert_eq!(refused, NoSlot::Interrupted(Interruption::Cancelled));
    }
}
