//! What the structure walk reads of the engine, and nothing more: the device view of memory
//! and the allocator's per-frame metadata and counters. `Domain` provides it through its
//! public accessors; tests provide hand-built states.

use ptfuzz_engine::alloc::{Counters, FrameState, PageState};
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

/// The metadata fields of one host page the oracles check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageInfo {
    pub state: PageState,
    /// log2 of the size of the tables carved from it.
    pub class: u8,
    /// Slots holding a live, deferred or pooled table, as the allocator counts them.
    pub used: u8,
    /// Free slots, bit k for slot k.
    pub free_mask: u64,
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
    /// log2 of the host page tables are carved from; `None`: every frame is its own page
    /// (one table per page, as before host pages were a setting).
    fn host_page_shift(&self) -> Option<u32> {
        None
    }
    /// Metadata of the host page holding `pa`. The default reads a frame as a page of one
    /// slot, for views whose host page is the frame.
    fn host_page(&self, pa: u64) -> Option<PageInfo> {
        let m = self.frame(pa)?;
        Some(match m.state {
            FrameState::Free => PageInfo {
                state: PageState::Free,
                class: 0,
                used: 0,
                free_mask: 0,
            },
            FrameState::Tail => PageInfo {
                state: PageState::Tail,
                class: 0,
                used: 0,
                free_mask: 0,
            },
            _ => PageInfo {
                state: PageState::Carved,
                class: 0,
                used: 1,
                free_mask: 0,
            },
        })
    }
    /// Tables on the deferred-free list, by address (the default: none known).
    fn deferred_tables(&self) -> impl Iterator<Item = u64> + '_ {
        std::iter::empty()
    }
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

    fn host_page_shift(&self) -> Option<u32> {
        Some(self.tables().host_page_size().trailing_zeros())
    }

    fn host_page(&self, pa: u64) -> Option<PageInfo> {
        self.tables().page(pa).map(|m| PageInfo {
            state: m.state,
            class: m.class,
            used: m.used,
            free_mask: m.free_mask,
        })
    }

    fn deferred_tables(&self) -> impl Iterator<Item = u64> + '_ {
        self.tables().deferred()
    }

    fn counters(&self) -> Counters {
        Domain::counters(self)
    }
}
