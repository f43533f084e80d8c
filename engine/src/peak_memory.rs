//! A memory pool that remembers its largest reservation, so a job's peak
//! memory can be reported: DataFusion's pools say only what is reserved now.

use std::sync::atomic::{AtomicUsize, Ordering};

use datafusion::common::Result;
use datafusion::execution::memory_pool::{
    MemoryConsumer, MemoryLimit, MemoryPool, MemoryReservation,
};

#[derive(Debug)]
pub struct PeakMemory<P> {
    inner: P,
    peak: AtomicUsize,
}

impl<P: MemoryPool> PeakMemory<P> {
    pub fn new(inner: P) -> Self {
        Self {
            inner,
            peak: AtomicUsize::new(0),
        }
    }

    /// The largest reservation since the last call, then starts over from
    /// what is reserved now (one job's peak, then the next one's).
    pub fn take_peak(&self) -> usize {
        self.peak.swap(self.inner.reserved(), Ordering::Relaxed)
    }

    fn note(&self) {
        self.peak
            .fetch_max(self.inner.reserved(), Ordering::Relaxed);
    }
}

impl<P: MemoryPool> MemoryPool for PeakMemory<P> {
    fn register(&self, consumer: &MemoryConsumer) {
        self.inner.register(consumer)
    }

    fn unregister(&self, consumer: &MemoryConsumer) {
        self.inner.unregister(consumer)
    }

    fn grow(&self, reservation: &MemoryReservation, additional: usize) {
        self.inner.grow(reservation, additional);
        self.note();
    }

    fn shrink(&self, reservation: &MemoryReservation, shrink: usize) {
        self.inner.shrink(reservation, shrink)
    }

    fn try_grow(&self, reservation: &MemoryReservation, additional: usize) -> Result<()> {
        self.inner.try_grow(reservation, additional)?;
        self.note();
        Ok(())
    }

    fn reserved(&self) -> usize {
        self.inner.reserved()
    }

    fn memory_limit(&self) -> MemoryLimit {
        self.inner.memory_limit()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::execution::memory_pool::GreedyMemoryPool;

    use super::*;

    #[test]
    fn the_peak_is_the_largest_reservation_and_starts_over_when_taken() {
        let pool = Arc::new(PeakMemory::new(GreedyMemoryPool::new(1000)));
        let reservation =
            MemoryConsumer::new("test").register(&(pool.clone() as Arc<dyn MemoryPool>));
        reservation.try_grow(300).unwrap();
        reservation.grow(200);
        reservation.shrink(400);
        assert_eq!(pool.take_peak(), 500);
        assert_eq!(pool.take_peak(), 100);
    }
}
