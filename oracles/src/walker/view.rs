//! What the structure walk reads of the engine, and nothing more: the device view of memory
//! and the allocator's per-frame metadata and counters. `Domain` provides it through its
//! public accessors; tests provide hand-built states.

use ptfuzz_engine::alloc::{Counters, FrameState};
use ptfuzz_engine::{Domain, FlushOps};

/// The metadata fields of one frame the walker checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameInfo {
    pub state: FrameState,
    /// Lookup level of the table in this frame.
    pub level: u8,
    /// Frames the table spans (a concatenated root: its table count).
    pub frames: u8,
    /// Valid entries directly in the table, as the allocator counts them.
    pub live: u32,
}

/// The engine state a structure walk needs.
pub trait TableView {
    /// Physical address of the root table.
    fn root(&self) -> u64;
    /// `[base, end)` of backed memory, frames of one granule from `base`.
    fn mem_range(&self) -> (u64, u64);
    /// The device view of `n` 8-byte words from `pa`, if all of them are backed.
    fn device_words(&self, pa: u64, n: u64) -> Option<&[u64]>;
    /// Metadata of the frame at `pa` (None if `pa` is not a backed frame address).
    fn frame(&self, pa: u64) -> Option<FrameInfo>;
    /// Addresses of every frame whose state is Live.
    fn live_tables(&self) -> impl Iterator<Item = u64> + '_;
    /// Tables on the deferred-free list.
    fn deferred_count(&self) -> u64;
    fn counters(&self) -> Counters;
}

impl<F: FlushOps> TableView for Domain<F> {
    fn root(&self) -> u64 {
        Domain::root(self)
    }

    fn mem_range(&self) -> (u64, u64) {
        (self.mem().base(), self.mem().end())
    }

    fn device_words(&self, pa: u64, n: u64) -> Option<&[u64]> {
        let mem = self.mem();
        let view = mem.device_view();
        let w = pa.checked_sub(mem.base())? / 8;
        let e = w.checked_add(n)?;
        (pa.is_multiple_of(8) && e <= view.len() as u64).then(|| &view[w as usize..e as usize])
    }

    fn frame(&self, pa: u64) -> Option<FrameInfo> {
        self.tables().meta(pa).map(|m| FrameInfo {
            state: m.state,
            level: m.level,
            frames: m.frames,
            live: m.live,
        })
    }

    fn live_tables(&self) -> impl Iterator<Item = u64> + '_ {
        self.tables().live_tables().map(|(pa, _)| pa)
    }

    fn deferred_count(&self) -> u64 {
        self.tables().deferred().count() as u64
    }

    fn counters(&self) -> Counters {
        Domain::counters(self)
    }
}
