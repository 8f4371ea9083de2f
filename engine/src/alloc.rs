//! The table allocator: tables by size in bytes, carved from host pages (the setting
//! `hostpage=`), several to a page when they are smaller than it. One metadata record per
//! table unit (the smallest table size the domain uses) and one per host page, so freeing a
//! table never allocates; a free list of whole host pages and, per table size, a list of the
//! pages that have a free slot, both threaded through the page metadata; deferred
//! (grace-period) free, poisoning, exact counters in tables and in host pages, custom hooks
//! (asked per host page) and allocation-failure injection.
//!
//! With the host page equal to the table size (the default) every page holds one table and
//! the allocator behaves as a plain frame allocator: the page free list is the table free
//! list.

use std::collections::BTreeMap;

use crate::events::{next_seq, AllocEvent, PoolEvent, PoolId};
use crate::physmem::PhysMem;
use crate::ErrorKind;

/// Written over every word of a table when the grace period releases it: an invalid
/// descriptor pattern nobody writes, so a walk through a freed table is recognisable.
pub const POISON: u64 = 0x7f7f_7f7f_7f7f_7f7c;

const NIL: u32 = u32::MAX;

/// Most tables one host page can hold (1 KiB tables in a 64 KiB page): a page's free slots
/// fit one `u64` mask.
pub const MAX_SLOTS: u32 = 64;

/// Where a table unit is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameState {
    /// Not a table: a free slot of a carved page, or part of a free host page (poisoned).
    Free,
    /// A table in use.
    Live,
    /// Unlinked, waiting for the grace period.
    Deferred,
    /// A unit after the first of a table larger than one unit (a concatenated root),
    /// described by its first unit.
    Tail,
    /// Set aside in a preallocation pool (a job's, or a reservation's batch).
    Pooled,
}

/// Where a host page is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageState {
    /// On the page free list, poisoned, holding no table.
    Free,
    /// Carved into slots of one table size; holds at least one live, deferred or pooled
    /// table (a page whose slots are all free goes back to the free list at once).
    Carved,
    /// A page after the first of a table larger than a host page.
    Tail,
}

/// Who a table was allocated for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    Default,
    /// A custom allocator's table, with its cookie.
    Custom(u64),
}

/// Per-unit metadata (the unit is the smallest table size; the first unit of a table
/// describes it).
#[derive(Clone, Copy, Debug)]
pub struct TableMeta {
    pub state: FrameState,
    pub owner: Owner,
    /// Lookup level of the table in this frame.
    pub level: u8,
    /// Units the table spans (1, or the concatenation count for a root).
    pub frames: u8,
    /// Valid entries (leaves and tables) directly in this table.
    pub live: u32,
    /// Reservation pins (VA reservation, issue 5).
    pub pins: u32,
    /// Next table on the deferred list.
    next: u32,
}

/// Per-host-page metadata.
#[derive(Clone, Copy, Debug)]
pub struct PageMeta {
    pub state: PageState,
    /// Whose page it is (the custom hooks were asked for it).
    pub owner: Owner,
    /// log2 of the size of the tables carved from it (Carved only).
    pub class: u8,
    /// Slots holding a live, deferred or pooled table.
    pub used: u8,
    /// Free slots: bit k is slot k.
    pub free_mask: u64,
    /// Next page on the free list or on its size's partial list.
    next: u32,
    /// Previous page on its size's partial list (which pages leave from the middle).
    prev: u32,
}

/// Exact accounting, in tables (a concatenated root counts once) and in host pages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Allocations ever made.
    pub allocated: u64,
    /// Tables in use.
    pub live: u64,
    /// Unlinked tables waiting for the grace period.
    pub deferred: u64,
    /// Tables released to the free list ever.
    pub freed: u64,
    /// Allocations refused (injected failure, custom hook).
    pub failed: u64,
    /// Table slots set aside in preallocation pools now (not tables yet).
    pub pooled: u64,
    /// Host pages holding tables or pooled slots now (not on the page free list).
    pub pages: u64,
    /// Host pages ever taken from the page level (fresh or from the page free list): what
    /// the custom `alloc` hook granted.
    pub pages_taken: u64,
    /// Host pages ever given back by the grace period: what the custom `free` hook was told.
    pub pages_released: u64,
}

/// `alloc(cookie, size)`: may `size` bytes of host pages be taken?
pub type AllocHook = Box<dyn FnMut(u64, u64) -> bool>;
/// `free(cookie, pa, size)`: host pages were released.
pub type FreeHook = Box<dyn FnMut(u64, u64, u64)>;

/// io-pgtable style custom allocator hooks: `alloc` decides whether host pages may be taken
/// (the memory itself comes from [`PhysMem`]), `free` is told when a page is released.
/// Both or neither; only formats with the custom-allocator capability take them. They
/// count host pages: packing several tables into a page asks once.
pub struct CustomAllocator {
    pub alloc: Option<AllocHook>,
    pub free: Option<FreeHook>,
    pub cookie: u64,
}

impl std::fmt::Debug for CustomAllocator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CustomAllocator")
            .field("alloc", &self.alloc.is_some())
            .field("free", &self.free.is_some())
            .field("cookie", &self.cookie)
            .finish()
    }
}

/// Allocates tables out of the host pages of a [`PhysMem`].
#[derive(Debug)]
pub struct TableAllocator {
    /// log2 of the host page.
    page_shift: u32,
    /// log2 of the smallest table (the metadata unit).
    unit_shift: u32,
    base: u64,
    meta: Vec<TableMeta>,
    pages: Vec<PageMeta>,
    /// Page free list.
    free_head: u32,
    /// Pages on the free list.
    free_len: u64,
    /// Per log2(table size): the carved pages with a free slot, and how many free slots.
    partial: [u32; 64],
    partial_free: [u64; 64],
    /// Deferred tables (units), oldest first, threaded through `next` so freeing never
    /// allocates.
    deferred_head: u32,
    deferred_tail: u32,
    counters: Counters,
    fail_nth: Option<u64>,
    custom: Option<CustomAllocator>,
    /// Tables must sit below 2^OAS, or a walker would take an address size fault.
    limit: u64,
    /// When logging: what happened, in order.
    log: Option<Vec<AllocEvent>>,
    /// Preallocation pools: table slots (units) set aside, taken from the end.
    pools: BTreeMap<PoolId, Vec<u32>>,
    /// The pool every table must come from now (a job runs, a reservation installs).
    source: Option<PoolId>,
    pool_log: Option<Vec<PoolEvent>>,
}

impl TableAllocator {
    /// An allocator whose tables all end at or below `limit` (2^OAS), carved from the host
    /// pages of `mem`; `unit` is the smallest table size it will be asked for (and the size
    /// of a preallocation pool's slots).
    pub fn new(
        mem: &PhysMem,
        custom: Option<CustomAllocator>,
        limit: u64,
        unit: u64,
    ) -> TableAllocator {
        let page_shift = mem.frame_size().trailing_zeros();
        let unit_shift = unit.trailing_zeros();
        assert!(
            unit.is_power_of_two()
                && unit_shift <= page_shift
                && page_shift - unit_shift <= MAX_SLOTS.trailing_zeros(),
            "table unit {unit:#x} against host page {:#x}",
            mem.frame_size()
        );
        TableAllocator {
            page_shift,
            unit_shift,
            base: mem.base(),
            // Most domains (and every fuzz input) hold a handful of tables: start with room
            // for them rather than growing through 4 and 8.
            meta: Vec::with_capacity(16),
            pages: Vec::with_capacity(16),
            free_head: NIL,
            free_len: 0,
            partial: [NIL; 64],
            partial_free: [0; 64],
            deferred_head: NIL,
            deferred_tail: NIL,
            counters: Counters::default(),
            fail_nth: None,
            custom,
            limit,
            log: None,
            pools: BTreeMap::new(),
            source: None,
            pool_log: None,
        }
    }

    /// Size of a host page in bytes.
    pub fn host_page_size(&self) -> u64 {
        1 << self.page_shift
    }

    /// Size of the smallest table (one metadata unit) in bytes.
    pub fn unit_size(&self) -> u64 {
        1 << self.unit_shift
    }

    #[inline(always)]
    fn unit(&self, pa: u64) -> usize {
        ((pa - self.base) >> self.unit_shift) as usize
    }

    fn pa(&self, unit: u32) -> u64 {
        self.base + ((unit as u64) << self.unit_shift)
    }

    fn page_pa(&self, page: u32) -> u64 {
        self.base + ((page as u64) << self.page_shift)
    }

    /// Units per host page.
    fn upp(&self) -> u32 {
        1 << (self.page_shift - self.unit_shift)
    }

    /// Slots a page carved for tables of 2^`class` bytes holds.
    fn slots(&self, class: u32) -> u32 {
        1 << self.page_shift.saturating_sub(class)
    }

    /// Starts (or stops) recording allocator events.
    pub fn set_logging(&mut self, on: bool) {
        self.log = on.then(Vec::new);
        self.pool_log = on.then(Vec::new);
    }

    /// Takes the pool events recorded so far.
    pub fn take_pool_log(&mut self) -> Vec<PoolEvent> {
        self.pool_log
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    fn record_pool(&mut self, ev: impl FnOnce(u64) -> PoolEvent) {
        if let Some(log) = &mut self.pool_log {
            let _p = crate::noalloc::Pause::new();
            log.push(ev(next_seq()));
        }
    }

    /// Takes the events recorded so far.
    pub fn take_log(&mut self) -> Vec<AllocEvent> {
        self.log.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// As [`crate::physmem::PhysMem::swap_log`], for the allocator's events.
    pub fn swap_log(&mut self, buf: &mut Vec<AllocEvent>) {
        buf.clear();
        if let Some(log) = &mut self.log {
            std::mem::swap(log, buf);
        }
    }

    fn record(&mut self, ev: impl FnOnce(u64) -> AllocEvent) {
        if let Some(log) = &mut self.log {
            let _p = crate::noalloc::Pause::new(); // the event log is instrumentation
            log.push(ev(next_seq()));
        }
    }

    fn refuse(&mut self) -> ErrorKind {
        self.counters.failed += 1;
        self.record(|seq| AllocEvent::Fail { seq });
        ErrorKind::Nomem
    }

    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Makes the `n`-th allocation from now (1-based) fail with `nomem`; `None` disarms.
    pub fn fail_nth(&mut self, n: Option<u64>) {
        self.fail_nth = n.filter(|&n| n > 0);
    }

    /// Metadata of the table unit at `pa`, if `pa` is a backed unit address.
    pub fn meta(&self, pa: u64) -> Option<&TableMeta> {
        if pa < self.base || (pa - self.base) & ((1 << self.unit_shift) - 1) != 0 {
            return None;
        }
        self.meta.get(self.unit(pa))
    }

    /// Metadata of the host page holding `pa`, if it is backed.
    pub fn page(&self, pa: u64) -> Option<&PageMeta> {
        let off = pa.checked_sub(self.base)?;
        self.pages.get((off >> self.page_shift) as usize)
    }

    #[inline(always)]
    pub(crate) fn live_entries(&self, pa: u64) -> u32 {
        self.meta[self.unit(pa)].live
    }

    #[inline(always)]
    pub(crate) fn add_live(&mut self, pa: u64, delta: i32) {
        let f = self.unit(pa);
        self.meta[f].live = self.meta[f].live.wrapping_add_signed(delta);
    }

    /// Every table in use, as (address, metadata).
    pub fn live_tables(&self) -> impl Iterator<Item = (u64, &TableMeta)> + '_ {
        self.meta
            .iter()
            .enumerate()
            .filter(|(_, m)| m.state == FrameState::Live)
            .map(|(i, m)| (self.pa(i as u32), m))
    }

    /// The injected failure: counts one allocation attempt down.
    fn attempt(&mut self) -> Result<(), ErrorKind> {
        if let Some(n) = self.fail_nth {
            if n == 1 {
                self.fail_nth = None;
                return Err(self.refuse());
            }
            self.fail_nth = Some(n - 1);
        }
        Ok(())
    }

    /// Asks the custom hook for `pages` host pages (none asked: the default owner).
    fn ask_pages(&mut self, pages: u64) -> Result<Owner, ErrorKind> {
        let size = pages << self.page_shift;
        match &mut self.custom {
            Some(CustomAllocator {
                alloc: Some(alloc),
                cookie,
                ..
            }) => {
                if alloc(*cookie, size) {
                    Ok(Owner::Custom(*cookie))
                } else {
                    Err(self.refuse())
                }
            }
            _ => Ok(Owner::Default),
        }
    }

    /// A zeroed table for `level`, `bytes` long (a power of two, at least the unit),
    /// aligned to its size. A free slot of a carved page of the same size is used first,
    /// then a free host page, then fresh memory; tables larger than a host page are always
    /// carved from fresh memory. The new table is synced to the device view before it is
    /// returned, so it can be linked at once.
    pub fn alloc(&mut self, mem: &mut PhysMem, level: u32, bytes: u64) -> Result<u64, ErrorKind> {
        debug_assert!(bytes.is_power_of_two() && bytes >> self.unit_shift >= 1);
        if let Some(pool) = self.source {
            return self.alloc_from_pool(mem, pool, level, bytes);
        }
        let class = bytes.trailing_zeros();
        let page = 1u64 << self.page_shift;
        let slot_free = self.partial[class as usize] != NIL;
        let page_free = bytes <= page && self.free_head != NIL;
        if !slot_free && !page_free {
            let span = bytes.max(page);
            let fresh_end = mem.end().next_multiple_of(span) + span;
            if fresh_end > self.limit {
                return Err(self.refuse());
            }
        }
        self.attempt()?;
        if !slot_free {
            let pages = (bytes >> self.page_shift).max(1);
            let owner = self.ask_pages(pages)?;
            let p = if page_free {
                self.take_free_page()
            } else {
                self.fresh_pages(mem, pages)
            };
            self.carve(mem, p, class, pages as u32, owner);
        }
        let unit = self.take_slot(class);
        let pa = self.pa(unit);
        mem.fill_both(pa, bytes, 0);
        let frames = (bytes >> self.unit_shift) as u8;
        let owner = self.meta[unit as usize].owner;
        self.meta[unit as usize] = TableMeta {
            state: FrameState::Live,
            owner,
            level: level as u8,
            frames,
            live: 0,
            pins: 0,
            next: NIL,
        };
        self.counters.allocated += 1;
        self.counters.live += 1;
        let level = level as u8;
        self.record(|seq| AllocEvent::Alloc {
            seq,
            pa,
            level,
            frames,
            owner,
        });
        Ok(pa)
    }

    /// The first page of the free list, off it.
    fn take_free_page(&mut self) -> u32 {
        let p = self.free_head;
        self.free_head = self.pages[p as usize].next;
        self.free_len -= 1;
        p
    }

    /// Backs `n` fresh host pages aligned to their total size, padding with free (poisoned)
    /// pages up to that alignment; returns the first.
    fn fresh_pages(&mut self, mem: &mut PhysMem, n: u64) -> u32 {
        while !mem.frames().is_multiple_of(n) {
            let pad = self.grow(mem, 1);
            mem.fill_both(self.page_pa(pad), 1 << self.page_shift, POISON);
            self.push_free_page(pad);
        }
        self.grow(mem, n)
    }

    /// `n` more pages of memory and their metadata (units Free, pages Free but on no list:
    /// the caller places them).
    fn grow(&mut self, mem: &mut PhysMem, n: u64) -> u32 {
        let pa = mem.grow(n);
        let first = ((pa - self.base) >> self.page_shift) as u32;
        debug_assert_eq!(first as usize, self.pages.len());
        for _ in 0..n {
            self.pages.push(PageMeta {
                state: PageState::Free,
                owner: Owner::Default,
                class: 0,
                used: 0,
                free_mask: 0,
                next: NIL,
                prev: NIL,
            });
            for _ in 0..self.upp() {
                self.meta.push(TableMeta {
                    state: FrameState::Free,
                    owner: Owner::Default,
                    level: 0,
                    frames: 1,
                    live: 0,
                    pins: 0,
                    next: NIL,
                });
            }
        }
        first
    }

    fn push_free_page(&mut self, p: u32) {
        let m = &mut self.pages[p as usize];
        m.state = PageState::Free;
        m.used = 0;
        m.free_mask = 0;
        m.prev = NIL;
        m.next = self.free_head;
        self.free_head = p;
        self.free_len += 1;
    }

    /// Makes pages `p..p + n` hold tables of 2^`class` bytes, every slot free, the page on
    /// its size's partial list. Free slots hold poison, as free pages do.
    fn carve(&mut self, mem: &mut PhysMem, p: u32, class: u32, n: u32, owner: Owner) {
        let slots = self.slots(class);
        if slots > 1 {
            mem.fill_both(self.page_pa(p), 1 << self.page_shift, POISON);
        }
        let upp = self.upp();
        for k in 0..n {
            let m = &mut self.pages[(p + k) as usize];
            m.state = if k == 0 {
                PageState::Carved
            } else {
                PageState::Tail
            };
            m.owner = owner;
            m.class = class as u8;
            m.used = 0;
            m.free_mask = 0;
            m.next = NIL;
            m.prev = NIL;
            for u in (p + k) * upp..(p + k + 1) * upp {
                let t = &mut self.meta[u as usize];
                t.state = FrameState::Free;
                t.owner = owner;
                t.next = NIL;
            }
        }
        self.pages[p as usize].free_mask = if slots == 64 {
            u64::MAX
        } else {
            (1 << slots) - 1
        };
        self.counters.pages += n as u64;
        self.counters.pages_taken += n as u64;
        self.partial_push(p, class);
        self.partial_free[class as usize] += slots as u64;
    }

    fn partial_push(&mut self, p: u32, class: u32) {
        let head = self.partial[class as usize];
        let m = &mut self.pages[p as usize];
        m.prev = NIL;
        m.next = head;
        if head != NIL {
            self.pages[head as usize].prev = p;
        }
        self.partial[class as usize] = p;
    }

    fn partial_remove(&mut self, p: u32, class: u32) {
        let PageMeta { prev, next, .. } = self.pages[p as usize];
        if prev == NIL {
            self.partial[class as usize] = next;
        } else {
            self.pages[prev as usize].next = next;
        }
        if next != NIL {
            self.pages[next as usize].prev = prev;
        }
        let m = &mut self.pages[p as usize];
        m.next = NIL;
        m.prev = NIL;
    }

    /// The lowest free slot of the first page with one, for tables of 2^`class` bytes; its
    /// units become the caller's (first unit returned, the rest Tail).
    fn take_slot(&mut self, class: u32) -> u32 {
        let p = self.partial[class as usize];
        debug_assert_ne!(p, NIL);
        let m = &mut self.pages[p as usize];
        let k = m.free_mask.trailing_zeros();
        m.free_mask &= !(1u64 << k);
        m.used += 1;
        let full = m.free_mask == 0;
        self.partial_free[class as usize] -= 1;
        if full {
            self.partial_remove(p, class);
        }
        let per_slot = 1u32 << (class - self.unit_shift);
        let first = p * self.upp() + k * per_slot;
        for u in first + 1..first + per_slot {
            self.meta[u as usize].state = FrameState::Tail;
        }
        first
    }

    /// Gives the table slot at `unit` back to its page, poisoned; a page left with no table
    /// goes back to the page free list (the free hook told when `notify`).
    fn release_slot(&mut self, mem: &mut PhysMem, unit: u32, notify: bool) {
        let upp = self.upp();
        let p = unit / upp;
        let PageMeta {
            class,
            owner,
            free_mask,
            ..
        } = self.pages[p as usize];
        let class = class as u32;
        let bytes = 1u64 << class;
        let per_slot = 1u32 << (class - self.unit_shift);
        mem.fill_both(self.pa(unit), bytes, POISON);
        for u in unit..unit + per_slot {
            let t = &mut self.meta[u as usize];
            t.state = FrameState::Free;
            t.live = 0;
            t.next = NIL;
        }
        let k = (unit % upp) / per_slot;
        let m = &mut self.pages[p as usize];
        m.free_mask |= 1 << k;
        m.used -= 1;
        let empty = m.used == 0;
        self.partial_free[class as usize] += 1;
        if !empty {
            if free_mask == 0 {
                self.partial_push(p, class);
            }
            return;
        }
        // It was on its partial list exactly when it had a free slot before this one.
        if free_mask != 0 {
            self.partial_remove(p, class);
        }
        self.partial_free[class as usize] -= self.slots(class) as u64;
        let n = (bytes >> self.page_shift).max(1) as u32;
        for q in p..p + n {
            self.push_free_page(q);
        }
        self.counters.pages -= n as u64;
        if notify {
            self.counters.pages_released += n as u64;
            let pa = self.page_pa(p);
            if let (
                Owner::Custom(cookie),
                Some(CustomAllocator {
                    free: Some(free), ..
                }),
            ) = (owner, &mut self.custom)
            {
                free(cookie, pa, (n as u64) << self.page_shift);
            }
        }
    }

    /// Unlinked table at `pa`: it waits for [`Self::grace_period`] before it can be reused.
    pub fn free_deferred(&mut self, pa: u64) {
        let f = self.unit(pa);
        let m = &mut self.meta[f];
        assert_eq!(m.state, FrameState::Live, "table {pa:#x} freed twice");
        m.state = FrameState::Deferred;
        m.next = NIL;
        if self.deferred_tail == NIL {
            self.deferred_head = f as u32;
        } else {
            self.meta[self.deferred_tail as usize].next = f as u32;
        }
        self.deferred_tail = f as u32;
        self.counters.live -= 1;
        self.counters.deferred += 1;
        self.record(|seq| AllocEvent::Defer { seq, pa });
    }

    /// Ends the grace period: every deferred table is poisoned and its slot freed; a host
    /// page goes back to the page free list once none of its tables is live or waiting.
    pub fn grace_period(&mut self, mem: &mut PhysMem) {
        let mut next = std::mem::replace(&mut self.deferred_head, NIL);
        self.deferred_tail = NIL;
        while next != NIL {
            let f = next;
            next = self.meta[f as usize].next;
            let pa = self.pa(f);
            self.release_slot(mem, f, true);
            self.counters.deferred -= 1;
            self.counters.freed += 1;
            self.record(|seq| AllocEvent::Release { seq, pa });
        }
    }

    /// Tables (first units) waiting for the grace period, following the deferred list.
    pub fn deferred(&self) -> impl Iterator<Item = u64> + '_ {
        self.unit_list(self.deferred_head)
    }

    /// Host pages on the free list, following its links (the next page taken is the first).
    pub fn free_list(&self) -> impl Iterator<Item = u64> + '_ {
        self.page_list(self.free_head)
    }

    /// Host pages on the free list, as the allocator counts them.
    pub fn free_len(&self) -> u64 {
        self.free_len
    }

    /// Per table size (log2 bytes): the carved pages with a free slot, in list order, and
    /// how many free slots the allocator counts in them.
    pub fn partial_lists(&self) -> impl Iterator<Item = (u32, u64, Vec<u64>)> + '_ {
        (0..64u32)
            .filter(|&c| self.partial[c as usize] != NIL || self.partial_free[c as usize] != 0)
            .map(|c| {
                (
                    c,
                    self.partial_free[c as usize],
                    self.page_list(self.partial[c as usize]).collect(),
                )
            })
    }

    /// Table slots set aside in preallocation pools, pool by pool.
    pub fn pooled_frames(&self) -> impl Iterator<Item = u64> + '_ {
        self.pools.values().flatten().map(|&f| self.pa(f))
    }

    /// The list threaded through the units' `next` from `head`. It stops after as many
    /// steps as there are units, so a list whose links loop (a bug the oracles look for)
    /// still ends; a unit met twice then shows in what it yields.
    fn unit_list(&self, head: u32) -> impl Iterator<Item = u64> + '_ {
        let first = (head != NIL).then_some(head);
        std::iter::successors(first, |&f| {
            self.meta
                .get(f as usize)
                .map(|m| m.next)
                .filter(|&n| n != NIL)
        })
        .take(self.meta.len() + 1)
        .map(|f| self.pa(f))
    }

    /// As [`Self::unit_list`], through the pages' `next`.
    fn page_list(&self, head: u32) -> impl Iterator<Item = u64> + '_ {
        let first = (head != NIL).then_some(head);
        std::iter::successors(first, |&p| {
            self.pages
                .get(p as usize)
                .map(|m| m.next)
                .filter(|&n| n != NIL)
        })
        .take(self.pages.len() + 1)
        .map(|p| self.page_pa(p))
    }

    /// Sets `n` table slots (of the unit size) aside in a new pool `pool`, in one batch:
    /// the room is checked first (free slots of carved pages, free pages and fresh memory
    /// below 2^OAS), then the batch counts as ONE allocation attempt for `fail_nth`, and the
    /// custom hook is asked once for the host pages the batch takes. On refusal (`nomem`)
    /// nothing is taken. `n == 0` makes an empty pool without an attempt.
    pub fn reserve_pool(
        &mut self,
        mem: &mut PhysMem,
        pool: PoolId,
        n: u64,
    ) -> Result<(), ErrorKind> {
        assert!(
            !self.pools.contains_key(&pool),
            "pool {pool:?} reserved twice"
        );
        let class = self.unit_shift;
        let per_page = self.slots(class) as u64;
        let mut owner = Owner::Default;
        if n > 0 {
            let page = 1u64 << self.page_shift;
            let room = self.limit.saturating_sub(mem.end()) / page;
            let loose = self.partial_free[class as usize];
            if n > loose + (self.free_len + room) * per_page {
                return Err(self.refuse());
            }
            self.attempt()?;
            let pages = n.saturating_sub(loose).div_ceil(per_page);
            if pages > 0 {
                owner = self.ask_pages(pages)?;
            }
        }
        let mut slots = Vec::with_capacity(n as usize);
        for _ in 0..n {
            if self.partial[class as usize] == NIL {
                let p = if self.free_head != NIL {
                    self.take_free_page()
                } else {
                    self.grow(mem, 1)
                };
                self.carve(mem, p, class, 1, owner);
            }
            let f = self.take_slot(class);
            let m = &mut self.meta[f as usize];
            m.state = FrameState::Pooled;
            m.next = NIL;
            slots.push(f);
            let pa = self.pa(f);
            self.record_pool(|seq| PoolEvent::Reserve { seq, pa, pool });
        }
        // Taken from the end: the first slot reserved serves the first table.
        slots.reverse();
        self.counters.pooled += n;
        self.pools.insert(pool, slots);
        Ok(())
    }

    /// Makes every table allocation come from `pool` (or `None`: the allocator again).
    pub fn set_source(&mut self, pool: Option<PoolId>) {
        self.source = pool;
    }

    /// Slots left in `pool`, if it exists.
    pub fn pool_left(&self, pool: PoolId) -> Option<u64> {
        self.pools.get(&pool).map(|v| v.len() as u64)
    }

    /// The pools that exist now.
    pub fn pools(&self) -> impl Iterator<Item = (PoolId, u64)> + '_ {
        self.pools.iter().map(|(&p, v)| (p, v.len() as u64))
    }

    /// A table from `pool` (never from the allocator): `budget` when it is empty.
    fn alloc_from_pool(
        &mut self,
        mem: &mut PhysMem,
        pool: PoolId,
        level: u32,
        bytes: u64,
    ) -> Result<u64, ErrorKind> {
        assert_eq!(bytes, self.unit_size(), "pools hold unit-sized tables");
        let Some(f) = self.pools.get_mut(&pool).and_then(|v| v.pop()) else {
            self.record_pool(|seq| PoolEvent::Dry { seq, pool });
            return Err(ErrorKind::Budget);
        };
        let pa = self.pa(f);
        mem.fill_both(pa, bytes, 0);
        let owner = self.meta[f as usize].owner;
        self.meta[f as usize] = TableMeta {
            state: FrameState::Live,
            owner,
            level: level as u8,
            frames: 1,
            live: 0,
            pins: 0,
            next: NIL,
        };
        self.counters.pooled -= 1;
        self.counters.allocated += 1;
        self.counters.live += 1;
        self.record_pool(|seq| PoolEvent::Take { seq, pa, pool });
        let level = level as u8;
        self.record(|seq| AllocEvent::Alloc {
            seq,
            pa,
            level,
            frames: 1,
            owner,
        });
        Ok(pa)
    }

    /// Removes `pool`, poisoning its leftover slots back into their pages (a page left with
    /// no table goes to the page free list); how many there were.
    pub fn return_pool(&mut self, mem: &mut PhysMem, pool: PoolId) -> Option<u64> {
        let slots = self.pools.remove(&pool)?;
        let n = slots.len() as u64;
        for f in slots {
            let pa = self.pa(f);
            self.release_slot(mem, f, false);
            self.record_pool(|seq| PoolEvent::Return { seq, pa, pool });
        }
        self.counters.pooled -= n;
        Some(n)
    }

    /// Adds a reservation pin to the table at `pa`.
    pub(crate) fn pin(&mut self, pa: u64) {
        let f = self.unit(pa);
        self.meta[f].pins += 1;
    }

    /// Drops a reservation pin from the table at `pa`.
    pub(crate) fn unpin(&mut self, pa: u64) {
        let f = self.unit(pa);
        assert!(self.meta[f].pins > 0, "table {pa:#x} unpinned below zero");
        self.meta[f].pins -= 1;
    }

    /// Reservation pins on the table at `pa`.
    #[inline(always)]
    pub(crate) fn pins(&self, pa: u64) -> u32 {
        self.meta[self.unit(pa)].pins
    }
}
