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
    Alloc { seq: u64, pa: u64, level: u8, frames: u8, owner: Owner },
    /// Unlinked, waiting for the grace period.
    Defer { seq: u64, pa: u64 },
    /// Poisoned and back on the free list.
    Release { seq: u64, pa: u64 },
    /// An allocation refused (injected failure, hook refusal, past 2^OAS).
    Fail { seq: u64 },
}

/// Records every flush request with its sequence number.
#[derive(Clone, Debug, Default)]
pub struct OrderedFlushLog {
    pub events: Vec<(u64, FlushEvent)>,
}

impl FlushOps for OrderedFlushLog {
    fn flush_all(&mut self) {
        self.events.push((next_seq(), FlushEvent::All));
    }
    fn flush_walk(&mut self, iova: u64, size: u64, granule: u64) {
        self.events
            .push((next_seq(), FlushEvent::Walk { iova, size, granule }));
    }
    fn sync(&mut self, gather: &Gather) {
        if !gather.is_empty() {
            let ev = FlushEvent::Leaves {
                start: gather.start,
                end: gather.end,
                pgsize: gather.pgsize,
            };
            self.events.push((next_seq(), ev));
        }
    }
}
