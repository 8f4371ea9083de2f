//! The frame-accounting oracle's findings: a frame in no state, in two, or in the wrong one.

use ptfuzz_engine::alloc::{FrameState, PageState};

finding_enum! {
    /// Where the allocator's lists, pools and reachable tables disagree with its metadata.
    pub enum AccountingFinding: "accounting" {
        FreeListLength { listed: u64, counted: u64 } = "free-list-length" (
            "the free list holds {listed} frames (host pages), the allocator counts {counted}"
        ),
        DeferredListLength { listed: u64, counter: u64 } = "deferred-list-length" (
            "the deferred list holds {listed} tables, the counter says {counter}"
        ),
        PoolLength { pooled: u64, counter: u64 } = "pool-length" (
            "preallocation pools hold {pooled} frames, the counter says {counter}"
        ),
        ReachableNotLive { pa: u64, state: Option<FrameState> } = "reachable-not-live" (
            "table {pa:#x} is reachable from the root but its frame is {state:?}"
        ),
        NotTail { frame: u64, k: u64, frames: u64, table: u64, state: Option<FrameState> } = "not-tail" (
            "frame {frame:#x}, frame {k} of the {frames}-frame table {table:#x}, is {state:?}, not a Tail"
        ),
        LiveCount { reachable: u64, counter: u64 } = "live-count" (
            "{reachable} tables are reachable from the root, the counter says {counter} live"
        ),
        WrongState { list: &'static str, pa: u64, state: Option<FrameState>, expected: FrameState } = "wrong-state-in-list" (
            "{list} holds frame {pa:#x}, whose state is {state:?}, not {expected:?}"
        ),
        OutsideWindow { list: &'static str, pa: u64 } = "outside-window" (
            "{list} names frame {pa:#x}, outside the domain's frames"
        ),
        /// A frame met twice: in one list twice (`first == second`) or in two places.
        TwoPlaces { pa: u64, first: &'static str, second: &'static str } = "frame-in-two-places" (
            "frame {pa:#x} is {}",
            if .first == .second { format!("twice in {first}") } else { format!("in {first} and in {second}") }
        ),
        /// A frame no list and no table path reached.
        Unaccounted { pa: u64, level: Option<u8>, state: Option<FrameState> } = "unaccounted" (
            "frame {pa:#x} (level {level:?}) is {}", unaccounted_why(*.state)
        ),
        FreedWithoutPoison { frame: u64, pa: u64, word: u64 } = "freed-without-poison" (
            "frame {frame:#x} reached the free list without poison: word at pa {pa:#x} is {word:#018x}"
        ),
        FreeListPageState { page: u64, state: Option<PageState> } = "free-list-page-state" (
            "the free list holds host page {page:#x}, whose state is {state:?}"
        ),
        /// A page on a partial list that is not carved for that size or has no free slot.
        PartialListPage { bytes: u64, page: u64, state: Option<PageState>, class: Option<u8>, free_mask: Option<u64> } = "partial-list-page" (
            "the partial list of {bytes}-byte tables holds host page {page:#x} (state {state:?}, size class {class:?}, free mask {free_mask:#x?})"
        ),
        PartialListTwice { page: u64 } = "partial-list-twice" (
            "host page {page:#x} is on a partial list twice"
        ),
        PartialSlots { bytes: u64, slots: u64, counted: u64 } = "partial-slots" (
            "the partial pages of {bytes}-byte tables have {slots} free slots, the allocator counts {counted}"
        ),
        HostPageLost { page: u64 } = "host-page-lost" (
            "host page {page:#x} is Free but not on the free list: the page is lost"
        ),
        SlotLost { slot: u64, pa: u64, page: u64 } = "slot-lost" (
            "slot {slot} ({pa:#x}) of host page {page:#x} is in use in its mask, but no table, deferred table or pool holds it: the slot is lost"
        ),
        CarvedEmpty { page: u64 } = "carved-empty" (
            "host page {page:#x} is carved but holds no table: it should be back on the free list"
        ),
        PageUsedCount { page: u64, used: u64, meta: u8 } = "page-used-count" (
            "host page {page:#x} holds {used} tables, its metadata counts {meta}"
        ),
        PartialMembership { page: u64, free_mask: u64, listed: bool } = "partial-membership" (
            "host page {page:#x} (free mask {free_mask:#x}) is {}on its partial list",
            if *.listed { "" } else { "not " }
        ),
        HostPageCount { pages: u64, counter: u64 } = "host-page-count" (
            "{pages} host pages hold tables, the counter says {counter}"
        ),
    }
}

fn unaccounted_why(state: Option<FrameState>) -> &'static str {
    match state {
        Some(FrameState::Free) => "Free, but not on the free list: the frame is lost",
        Some(FrameState::Deferred) => {
            "Deferred, but not on the deferred list: it will never be released"
        }
        Some(FrameState::Pooled) => "Pooled, but in no pool: the frame is lost",
        Some(FrameState::Live) => "a Live table not reachable from the root: a leak",
        Some(FrameState::Tail) => "a Tail frame of no reachable table",
        None => "without metadata",
    }
}
