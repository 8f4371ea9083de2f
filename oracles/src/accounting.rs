//! Frame accounting (issue 13): after every op, each frame of the domain's physical window is
//! in exactly one state: a table reachable from the root (once), waiting for its grace
//! period, set aside in a preallocation pool, or free. It walks the allocator's own free
//! and deferred lists and its pools as data, never trusting their counters, and takes
//! "reachable" from the TLB oracle, which follows every device-visible table descriptor
//! write (so no table is read here and an op costs O(frames), not O(table bytes)).
//!
//! What it catches that the structure walk alone did not: a frame that leaves the
//! allocator's bookkeeping (released after the grace period but never put on the free list,
//! or dropped by a list whose links skip it) while every counter still agrees with itself;
//! a list holding a frame twice or a frame in another state; and a freed frame that does
//! not hold poison when it reaches the free list.

use ptfuzz_engine::alloc::{FrameState, PageState, POISON};
use ptfuzz_engine::{Domain, FlushOps};

use crate::divergence::Divergence;
use crate::finding::AccountingFinding as A;
use crate::recycle::Spares;
use crate::walker::range::{other_than, CHUNK};
use crate::walker::TableView;

/// Free frames hold only this, compared a chunk at a time (one `memcmp` each).
const POISONS: [u64; CHUNK] = [POISON; CHUNK];

/// The allocator's lists, read as data (in addition to the metadata [`TableView`] gives).
pub trait FrameLists: TableView {
    /// The free list, in link order.
    fn free_list(&self) -> impl Iterator<Item = u64> + '_;
    /// How many frames the allocator says are on the free list.
    fn free_len(&self) -> u64;
    /// The deferred (grace-period) list, in link order.
    fn deferred_list(&self) -> impl Iterator<Item = u64> + '_;
    /// Every frame held in a preallocation pool.
    fn pooled_frames(&self) -> impl Iterator<Item = u64> + '_;
    /// Per table size (log2 bytes): how many free slots the allocator counts in its partial
    /// pages, and those pages in list order (the default: no host page holds two tables).
    fn partial_lists(&self) -> Vec<(u32, u64, Vec<u64>)> {
        Vec::new()
    }
}

impl<F: FlushOps> FrameLists for Domain<F> {
    fn free_list(&self) -> impl Iterator<Item = u64> + '_ {
        self.tables().free_list()
    }
    fn free_len(&self) -> u64 {
        self.tables().free_len()
    }
    fn deferred_list(&self) -> impl Iterator<Item = u64> + '_ {
        self.tables().deferred()
    }
    fn pooled_frames(&self) -> impl Iterator<Item = u64> + '_ {
        self.tables().pooled_frames()
    }
    fn partial_lists(&self) -> Vec<(u32, u64, Vec<u64>)> {
        self.tables().partial_lists().collect()
    }
}

/// Where the check found a frame this time (low bits of a mark).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Found {
    Nowhere = 0,
    FreeList = 1,
    DeferredList = 2,
    Pool = 3,
    Reached = 4,
    /// A free slot of a carved host page.
    FreeSlot = 5,
}

impl Found {
    fn of(mark: u8) -> Found {
        match mark & KIND {
            1 => Found::FreeList,
            2 => Found::DeferredList,
            3 => Found::Pool,
            4 => Found::Reached,
            5 => Found::FreeSlot,
            _ => Found::Nowhere,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Found::Nowhere => "nowhere",
            Found::FreeList => "the free list",
            Found::DeferredList => "the deferred list",
            Found::Pool => "a preallocation pool",
            Found::Reached => "the tables reachable from the root",
            Found::FreeSlot => "a free slot of a carved host page",
        }
    }
}

const KIND: u8 = 0x7;
/// Set on frames that were on the free list at the end of the previous op.
const WAS_FREE: u8 = 0x8;

thread_local! {
    /// The marks of a dropped checker (crate::recycle).
    static SPARE_MARKS: Spares<Vec<u8>> = const { Spares::new(1) };
}

/// What the accounting checks have seen (so a report can tell a silent check from an idle one).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AccountingStats {
    /// Checks run (one per op).
    pub checks: u64,
    /// Frames accounted for, summed over checks.
    pub frames: u64,
    /// Frames that reached the free list and were checked for poison.
    pub poison_checked: u64,
}

/// The per-op frame accounting of one domain. It remembers which frames were free after
/// the previous op, so only the newly freed ones are scanned for poison.
#[derive(Debug)]
pub struct FrameAccounting {
    frame_shift: u32,
    /// One byte per frame of the window: a [`Found`] in the low bits, [`WAS_FREE`] above.
    marks: Vec<u8>,
    stats: AccountingStats,
}

impl Drop for FrameAccounting {
    fn drop(&mut self) {
        let mut marks = std::mem::take(&mut self.marks);
        marks.clear();
        Spares::give(&SPARE_MARKS, marks);
    }
}

impl FrameAccounting {
    /// A checker for a domain whose frames are `1 << frame_shift` bytes.
    pub fn new(frame_shift: u32) -> FrameAccounting {
        FrameAccounting {
            frame_shift,
            marks: Spares::take(&SPARE_MARKS).unwrap_or_default(),
            stats: AccountingStats::default(),
        }
    }

    pub fn stats(&self) -> AccountingStats {
        self.stats
    }

    /// Checks every frame of `t`'s window; `reached` are the tables reachable from the
    /// root (the root included), as an oracle that follows table descriptors knows them.
    /// Frames are table units; with host pages larger than them (`hostpage=`), every host
    /// page is also accounted for once: on the page free list holding no table, or carved,
    /// its slots each a table (live, deferred, pooled) or free as its free mask says, and
    /// on its size's partial list exactly when it has a free slot.
    pub fn check<T: FrameLists>(
        &mut self,
        t: &T,
        reached: impl Iterator<Item = u64>,
    ) -> Result<(), Divergence> {
        let (base, end) = t.mem_range();
        let n = ((end - base) >> self.frame_shift) as usize;
        self.stats.checks += 1;
        self.stats.frames += n as u64;
        // Keep only "was free" from the last op; frames added since start unmarked.
        for m in &mut self.marks {
            *m &= WAS_FREE;
        }
        self.marks.resize(n, 0);
        let c = t.counters();
        let page_shift = t.host_page_shift().unwrap_or(self.frame_shift);
        let upp = 1u64 << (page_shift - self.frame_shift);

        let mut free = 0;
        for page in t.free_list() {
            free += 1;
            // A free host page holds no table: every unit of it is Free.
            for k in 0..upp {
                let pa = page + (k << self.frame_shift);
                self.list(t, std::iter::once(pa), Found::FreeList, FrameState::Free)?;
            }
            match t.host_page(page).map(|p| p.state) {
                Some(PageState::Free) => {}
                state => return Err(A::FreeListPageState { page, state }.into()),
            }
        }
        if free != t.free_len() {
            return Err(A::FreeListLength {
                listed: free,
                counted: t.free_len(),
            }
            .into());
        }
        let deferred = self.list(
            t,
            t.deferred_list(),
            Found::DeferredList,
            FrameState::Deferred,
        )?;
        if deferred != c.deferred {
            return Err(A::DeferredListLength {
                listed: deferred,
                counter: c.deferred,
            }
            .into());
        }
        let pooled = self.list(t, t.pooled_frames(), Found::Pool, FrameState::Pooled)?;
        if pooled != c.pooled {
            return Err(A::PoolLength {
                pooled,
                counter: c.pooled,
            }
            .into());
        }
        let mut live = 0;
        for pa in reached {
            live += 1;
            let frames = match t.frame(pa) {
                Some(m) if m.state == FrameState::Live => u64::from(m.frames.max(1)),
                m => {
                    return Err(A::ReachableNotLive {
                        pa,
                        state: m.map(|m| m.state),
                    }
                    .into())
                }
            };
            for k in 0..frames {
                let f = pa + (k << self.frame_shift);
                if k > 0 && t.frame(f).map(|m| m.state) != Some(FrameState::Tail) {
                    return Err(A::NotTail {
                        frame: f,
                        k,
                        frames,
                        table: pa,
                        state: t.frame(f).map(|m| m.state),
                    }
                    .into());
                }
                self.mark(base, f, Found::Reached)?;
            }
        }
        if live != c.live {
            return Err(A::LiveCount {
                reachable: live,
                counter: c.live,
            }
            .into());
        }
        if upp > 1 || t.host_page_shift().is_some() {
            self.pages(t, base, end, page_shift)?;
        }
        self.unaccounted(t, base)?;
        self.poisoned(t, base)
    }

    /// The host pages not on the free list: each carved page's slots agree with its free
    /// mask and used count, the free slots are marked, and the partial lists hold exactly
    /// the carved pages with a free slot, once each.
    fn pages<T: FrameLists>(
        &mut self,
        t: &T,
        base: u64,
        end: u64,
        page_shift: u32,
    ) -> Result<(), Divergence> {
        let page_size = 1u64 << page_shift;
        let mut listed = std::collections::BTreeSet::new();
        let mut pages = 0u64;
        for (class, count, list) in t.partial_lists() {
            let mut slots = 0u64;
            for page in list {
                let info = t.host_page(page);
                match info {
                    Some(p)
                        if p.state == PageState::Carved
                            && u32::from(p.class) == class
                            && p.free_mask != 0 =>
                    {
                        slots += u64::from(p.free_mask.count_ones())
                    }
                    _ => {
                        return Err(A::PartialListPage {
                            bytes: 1u64 << class,
                            page,
                            state: info.map(|p| p.state),
                            class: info.map(|p| p.class),
                            free_mask: info.map(|p| p.free_mask),
                        }
                        .into())
                    }
                }
                if !listed.insert(page) {
                    return Err(A::PartialListTwice { page }.into());
                }
            }
            if slots != count {
                return Err(A::PartialSlots {
                    bytes: 1u64 << class,
                    slots,
                    counted: count,
                }
                .into());
            }
        }
        let mut page = base;
        while page < end {
            let info = t.host_page(page).expect("backed page");
            match info.state {
                PageState::Free => {
                    let i = ((page - base) >> self.frame_shift) as usize;
                    if Found::of(self.marks[i]) != Found::FreeList {
                        return Err(A::HostPageLost { page }.into());
                    }
                }
                PageState::Tail => pages += 1,
                PageState::Carved => {
                    pages += 1;
                    let class = u32::from(info.class);
                    let slot_shift = class.min(page_shift);
                    let slots = 1u64 << (page_shift - slot_shift);
                    let mut used = 0u64;
                    for k in 0..slots {
                        let pa = page + (k << slot_shift);
                        let i = ((pa - base) >> self.frame_shift) as usize;
                        let found = Found::of(self.marks[i]);
                        if info.free_mask >> k & 1 == 1 {
                            // A free slot: its units are Free and nowhere else.
                            let units = 1u64 << (slot_shift - self.frame_shift);
                            for u in 0..units {
                                let f = pa + (u << self.frame_shift);
                                self.list(
                                    t,
                                    std::iter::once(f),
                                    Found::FreeSlot,
                                    FrameState::Free,
                                )?;
                            }
                        } else if found == Found::Nowhere {
                            return Err(A::SlotLost { slot: k, pa, page }.into());
                        } else {
                            used += 1;
                        }
                    }
                    if used == 0 {
                        return Err(A::CarvedEmpty { page }.into());
                    }
                    if used != u64::from(info.used) {
                        return Err(A::PageUsedCount {
                            page,
                            used,
                            meta: info.used,
                        }
                        .into());
                    }
                    if (info.free_mask != 0) != listed.contains(&page) {
                        return Err(A::PartialMembership {
                            page,
                            free_mask: info.free_mask,
                            listed: listed.contains(&page),
                        }
                        .into());
                    }
                }
            }
            page += page_size;
        }
        if pages != t.counters().pages {
            return Err(A::HostPageCount {
                pages,
                counter: t.counters().pages,
            }
            .into());
        }
        Ok(())
    }

    /// Walks one list, checking each frame's state and that no frame is met twice (in this
    /// list or another); returns its length.
    fn list<T: TableView>(
        &mut self,
        t: &T,
        frames: impl Iterator<Item = u64>,
        found: Found,
        state: FrameState,
    ) -> Result<u64, Divergence> {
        let (base, _) = t.mem_range();
        let mut n = 0;
        for pa in frames {
            let got = t.frame(pa).map(|m| m.state);
            if got != Some(state) {
                return Err(A::WrongState {
                    list: found.name(),
                    pa,
                    state: got,
                    expected: state,
                }
                .into());
            }
            self.mark(base, pa, found)?;
            n += 1;
        }
        Ok(n)
    }

    fn mark(&mut self, base: u64, pa: u64, found: Found) -> Result<(), Divergence> {
        let i = pa
            .checked_sub(base)
            .map(|o| (o >> self.frame_shift) as usize)
            .filter(|&i| i < self.marks.len());
        let Some(i) = i else {
            return Err(A::OutsideWindow {
                list: found.name(),
                pa,
            }
            .into());
        };
        let before = Found::of(self.marks[i]);
        if before != Found::Nowhere {
            return Err(A::TwoPlaces {
                pa,
                first: before.name(),
                second: found.name(),
            }
            .into());
        }
        self.marks[i] = (self.marks[i] & WAS_FREE) | found as u8;
        Ok(())
    }

    /// Every frame no list and no table path reached: lost from the bookkeeping.
    fn unaccounted<T: TableView>(&self, t: &T, base: u64) -> Result<(), Divergence> {
        for (i, &m) in self.marks.iter().enumerate() {
            if Found::of(m) != Found::Nowhere {
                continue;
            }
            let pa = base + ((i as u64) << self.frame_shift);
            let meta = t.frame(pa);
            return Err(A::Unaccounted {
                pa,
                level: meta.map(|m| m.level),
                state: meta.map(|m| m.state),
            }
            .into());
        }
        Ok(())
    }

    /// Frames that reached the free list since the last op hold nothing but poison; then
    /// today's free frames become "was free".
    fn poisoned<T: TableView>(&mut self, t: &T, base: u64) -> Result<(), Divergence> {
        let words = 1u64 << (self.frame_shift - 3);
        for i in 0..self.marks.len() {
            let m = self.marks[i];
            let free = matches!(Found::of(m), Found::FreeList | Found::FreeSlot);
            if free && m & WAS_FREE == 0 {
                let pa = base + ((i as u64) << self.frame_shift);
                self.stats.poison_checked += 1;
                let w = t.device_words(pa, words).unwrap_or(&[]);
                if let Some((k, d)) = other_than(w, &POISONS).next() {
                    return Err(A::FreedWithoutPoison {
                        frame: pa,
                        pa: pa + 8 * k as u64,
                        word: d,
                    }
                    .into());
                }
            }
            self.marks[i] = if free { WAS_FREE } else { 0 };
        }
        Ok(())
    }
}
