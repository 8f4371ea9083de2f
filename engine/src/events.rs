//! What the engine makes observable, in order: device-visible table writes, allocator
//! events and TLB flushes all take a number from one per-thread sequence, so oracles can
//! check what happened before what (a table freed before its walk invalidation, a valid
//! entry replaced without break-before-make).

use std::cell::Cell;

use crate::alloc::Owner;
use crate::flush::{FlushEvent, FlushOps, Gather};

thread_local! {
    static SEQ: Cell<u64> = const { Cell::new(0) };
}

/// The next number of this thread's event sequence.
pub fn next_seq() -> u64 {
    SEQ.with(|s| {
        let n = s.get();
        s.set(n + 1);
        n
    })
}

/// A word of table memory that changed in the device view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceWrite {
    pub seq: u64,
    pub pa: u64,
    pub old: u64,
    pub new: u64,
}

/// Something the table allocator did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AllocEvent {
    Alloc {
        seq: u64,
        pa: u64,
        level: u8,
        frames: u8,
        owner: Owner,
    },
    /// Unlinked, waiting for the grace period.
    Defer { seq: u64, pa: u64 },
    /// Poisoned and back on the free list.
    Release { seq: u64, pa: u64 },
    /// An allocation refused (injected failure, hook refusal, past 2^OAS).
    Fail { seq: u64 },
}

/// Where a table page comes from: a prepared job's pool, or the one-batch allocation of a
/// VA reservation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PoolId {
    Job(u32),
    /// The batch `reserve_va` allocates before installing its tables.
    Reserve,
}

/// Something the preallocation pools did; kept apart from [`AllocEvent`] so the oracles that
/// only follow tables need not know about pools. A table taken from a pool is a [`Take`]
/// immediately followed by the usual `AllocEvent::Alloc` of the same frame.
///
/// [`Take`]: PoolEvent::Take
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolEvent {
    /// A frame moved from the allocator into a pool.
    Reserve { seq: u64, pa: u64, pool: PoolId },
    /// A pool frame became a table.
    Take { seq: u64, pa: u64, pool: PoolId },
    /// A leftover frame went back to the allocator's free list.
    Return { seq: u64, pa: u64, pool: PoolId },
    /// A table was needed but the pool was empty (`budget`).
    Dry { seq: u64, pool: PoolId },
}

/// Records every flush request with its sequence number.
#[derive(Clone, Debug, Default)]
pub struct OrderedFlushLog {
    pub events: Vec<(u64, FlushEvent)>,
}

impl FlushOps for OrderedFlushLog {
    fn flush_all(&mut self) {
        let _p = crate::noalloc::Pause::new();
        self.events.push((next_seq(), FlushEvent::All));
    }
    fn flush_walk(&mut self, iova: u64, size: u64, granule: u64) {
        let _p = crate::noalloc::Pause::new();
        self.events.push((
            next_seq(),
            FlushEvent::Walk {
                iova,
                size,
                granule,
            },
        ));
    }
    fn sync(&mut self, gather: &Gather) {
        if !gather.is_empty() {
            let _p = crate::noalloc::Pause::new();
            let ev = FlushEvent::Leaves {
                start: gather.start,
                end: gather.end,
                pgsize: gather.pgsize,
            };
            self.events.push((next_seq(), ev));
        }
    }
}
