//! The process-wide memory budget ([`ShuffleMemory`]) that decides whether a
//! map output stays in memory or goes to a file.

use std::sync::atomic::{AtomicUsize, Ordering};

/// The process-wide byte budget for map outputs kept in memory.
///
/// Every map task reserves the size of the batches it buffers. When a
/// reservation fails, the task stops buffering and writes its output to a file
/// instead, so the sum of in-memory map outputs never exceeds `limit`. Memory
/// is given back when the job that owns it ends.
#[derive(Debug)]
pub struct ShuffleMemory {
    limit: usize,
    used: AtomicUsize,
    peak: AtomicUsize,
}

impl ShuffleMemory {
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            used: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        }
    }

    /// Reserves `bytes` if they fit in the budget; returns whether they did.
    pub fn try_reserve(&self, bytes: usize) -> bool {
        let mut current = self.used.load(Ordering::Relaxed);
        loop {
            let Some(next) = current.checked_add(bytes).filter(|n| *n <= self.limit) else {
                return false;
            };
            match self.used.compare_exchange_weak(
                current,
                next,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    self.peak.fetch_max(next, Ordering::Relaxed);
                    return true;
                }
                Err(actual) => current = actual,
            }
        }
    }

    /// Gives back `bytes` reserved earlier.
    pub fn release(&self, bytes: usize) {
        if bytes > 0 {
            self.used.fetch_sub(bytes, Ordering::AcqRel);
        }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_stay_within_the_limit() {
        let m = ShuffleMemory::new(100);
        assert!(m.try_reserve(60));
        assert!(!m.try_reserve(41));
        assert!(m.try_reserve(40));
        assert_eq!(m.used(), 100);
        m.release(60);
        assert_eq!(m.used(), 40);
        assert_eq!(m.peak(), 100);
        let zero = ShuffleMemory::new(0);
        assert!(!zero.try_reserve(1));
        assert!(zero.try_reserve(0));
    }
}
