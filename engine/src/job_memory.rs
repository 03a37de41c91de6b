//! Memory per job and per pool.
//!
//! Every job's operators reserve memory through a [`JobMemory`] pool that
//! counts what the job holds (for `fairway.jobs`) and passes every request
//! on to its pool's memory: the pool's own spill pool when the allocation
//! file gives the pool a `<memory>` budget, else the session's shared one.
//! A job never waits for memory: a reservation that does not fit makes a
//! spilling operator spill, as DataFusion's pools do.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use datafusion::error::Result;
use datafusion::execution::memory_pool::{
    MemoryConsumer, MemoryLimit, MemoryPool, MemoryReservation,
};

/// A job's view of its pool's memory: every call goes to `inner`, and the
/// bytes the job holds are counted.
#[derive(Debug)]
pub(crate) struct JobMemory {
    inner: Arc<dyn MemoryPool>,
    held: AtomicUsize,
    peak: AtomicUsize,
}

impl JobMemory {
    pub(crate) fn new(inner: Arc<dyn MemoryPool>) -> Self {
        Self {
            inner,
            held: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        }
    }

    /// Bytes the job's operators hold now.
    pub(crate) fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    /// The most bytes they held at once.
    pub(crate) fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    fn add(&self, bytes: usize) {
        let now = self.held.fetch_add(bytes, Ordering::Relaxed) + bytes;
        self.peak.fetch_max(now, Ordering::Relaxed);
    }
}

impl fmt::Display for JobMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "job memory ({} bytes) in {}", self.held(), self.inner)
    }
}

impl MemoryPool for JobMemory {
    fn name(&self) -> &str {
        "fairway-job"
    }

    fn register(&self, consumer: &MemoryConsumer) {
        self.inner.register(consumer);
    }

    fn unregister(&self, consumer: &MemoryConsumer) {
        self.inner.unregister(consumer);
    }

    fn grow(&self, reservation: &MemoryReservation, additional: usize) {
        self.inner.grow(reservation, additional);
        self.add(additional);
    }

    fn shrink(&self, reservation: &MemoryReservation, shrink: usize) {
        self.inner.shrink(reservation, shrink);
        self.held.fetch_sub(shrink, Ordering::Relaxed);
    }

    fn try_grow(&self, reservation: &MemoryReservation, additional: usize) -> Result<()> {
        self.inner.try_grow(reservation, additional)?;
        self.add(additional);
        Ok(())
    }

    fn reserved(&self) -> usize {
        self.inner.reserved()
    }

    fn memory_limit(&self) -> MemoryLimit {
        self.inner.memory_limit()
    }
}
