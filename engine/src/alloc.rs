//! The table allocator: one metadata record per frame, a free list threaded through the
//! metadata, deferred (grace-period) free, poisoning, exact counters, custom hooks and
//! allocation-failure injection.

use std::collections::BTreeMap;

use crate::events::{next_seq, AllocEvent, PoolEvent, PoolId};
use crate::physmem::PhysMem;
use crate::ErrorKind;

/// Written over every word of a table when the grace period releases it: an invalid
/// descriptor pattern nobody writes, so a walk through a freed table is recognisable.
pub const POISON: u64 = 0x7f7f_7f7f_7f7f_7f7c;

const NIL: u32 = u32::MAX;

/// Where a frame is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameState {
    /// Backed but on the free list (poisoned).
    Free,
    /// A table in use.
    Live,
    /// Unlinked, waiting for the grace period.
    Deferred,
    /// Part of a multi-frame (concatenated) root, described by its first frame.
    Tail,
    /// Set aside in a preallocation pool (a job's, or a reservation's batch).
    Pooled,
}

/// Who a table was allocated for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    Default,
    /// A custom allocator's table, with its cookie.
    Custom(u64),
}

/// Per-frame metadata.
#[derive(Clone, Copy, Debug)]
pub struct TableMeta {
    pub state: FrameState,
    pub owner: Owner,
    /// Lookup level of the table in this frame.
    pub level: u8,
    /// Frames the table spans (1, or the concatenation count for a root).
    pub frames: u8,
    /// Valid entries (leaves and tables) directly in this table.
    pub live: u32,
    /// Reservation pins (VA reservation, issue 5).
    pub pins: u32,
    /// Next frame on the free list.
    next: u32,
}

/// Exact accounting, in tables (a concatenated root counts once).
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
    /// Frames set aside in preallocation pools now (not tables yet).
    pub pooled: u64,
}

/// `alloc(cookie, size)`: may a table of `size` bytes be taken?
pub type AllocHook = Box<dyn FnMut(u64, u64) -> bool>;
/// `free(cookie, pa, size)`: a table was released.
pub type FreeHook = Box<dyn FnMut(u64, u64, u64)>;

/// io-pgtable style custom allocator hooks: `alloc` decides whether a table may be taken
/// (the frame itself comes from [`PhysMem`]), `free` is told when one is released.
/// Both or neither; only formats with the custom-allocator capability take them.
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

/// Allocates table frames out of a [`PhysMem`].
#[derive(Debug)]
pub struct TableAllocator {
    frame_shift: u32,
    base: u64,
    meta: Vec<TableMeta>,
    free_head: u32,
    /// Frames on the free list.
    free_len: u64,
    /// Deferred frames, oldest first, threaded through `next` so freeing never allocates.
    deferred_head: u32,
    deferred_tail: u32,
    counters: Counters,
    fail_nth: Option<u64>,
    custom: Option<CustomAllocator>,
    /// Tables must sit below 2^OAS, or a walker would take an address size fault.
    limit: u64,
    /// When logging: what happened, in order.
    log: Option<Vec<AllocEvent>>,
    /// Preallocation pools: frames set aside, taken from the end.
    pools: BTreeMap<PoolId, Vec<u32>>,
    /// The pool every table must come from now (a job runs, a reservation installs).
    source: Option<PoolId>,
    pool_log: Option<Vec<PoolEvent>>,
}

impl TableAllocator {
    /// An allocator whose tables all end at or below `limit` (2^OAS).
    pub fn new(mem: &PhysMem, custom: Option<CustomAllocator>, limit: u64) -> TableAllocator {
        TableAllocator {
            frame_shift: mem.frame_size().trailing_zeros(),
            base: mem.base(),
            // Most domains (and every fuzz input) hold a handful of tables: start with room
            // for them rather than growing through 4 and 8.
            meta: Vec::with_capacity(16),
            free_head: NIL,
            free_len: 0,
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

    #[inline(always)]
    fn frame(&self, pa: u64) -> usize {
        ((pa - self.base) >> self.frame_shift) as usize
    }

    fn pa(&self, frame: u32) -> u64 {
        self.base + ((frame as u64) << self.frame_shift)
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

    /// Metadata of the table at `pa`, if `pa` is a backed frame.
    pub fn meta(&self, pa: u64) -> Option<&TableMeta> {
        if pa < self.base || (pa - self.base) & ((1 << self.frame_shift) - 1) != 0 {
            return None;
        }
        self.meta.get(self.frame(pa))
    }

    #[inline(always)]
    pub(crate) fn live_entries(&self, pa: u64) -> u32 {
        self.meta[self.frame(pa)].live
    }

    #[inline(always)]
    pub(crate) fn add_live(&mut self, pa: u64, delta: i32) {
        let f = self.frame(pa);
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

    fn may_allocate(&mut self, size: u64) -> Result<Owner, ErrorKind> {
        if let Some(n) = self.fail_nth {
            if n == 1 {
                self.fail_nth = None;
                return Err(self.refuse());
            }
            self.fail_nth = Some(n - 1);
        }
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

    /// A zeroed table for `level`, `frames` granules long, aligned to its size. Multi-frame
    /// tables (concatenated roots) are always carved from fresh memory. The new table is
    /// synced to the device view before it is returned, so it can be linked at once.
    pub fn alloc(&mut self, mem: &mut PhysMem, level: u32, frames: u64) -> Result<u64, ErrorKind> {
        if let Some(pool) = self.source {
            return self.alloc_from_pool(mem, pool, level);
        }
        let size = frames << self.frame_shift;
        let fresh_end = mem.end().next_multiple_of(size) + size;
        if (frames > 1 || self.free_head == NIL) && fresh_end > self.limit {
            return Err(self.refuse());
        }
        let owner = self.may_allocate(size)?;
        let pa = if frames == 1 && self.free_head != NIL {
            let f = self.free_head;
            self.free_head = self.meta[f as usize].next;
            self.free_len -= 1;
            let pa = self.pa(f);
            mem.fill_both(pa, size, 0);
            pa
        } else {
            // Pad with free frames up to the alignment of a multi-frame table.
            while !mem.frames().is_multiple_of(frames) {
                let pad = mem.grow(1);
                self.push_meta(FrameState::Free, Owner::Default, 0, 1);
                let f = self.frame(pad) as u32;
                self.meta[f as usize].next = self.free_head;
                self.free_head = f;
                self.free_len += 1;
                mem.fill_both(pad, 1 << self.frame_shift, POISON);
            }
            let pa = mem.grow(frames);
            self.push_meta(FrameState::Free, owner, level as u8, frames as u8);
            for _ in 1..frames {
                self.push_meta(FrameState::Tail, owner, level as u8, 0);
            }
            pa
        };
        let f = self.frame(pa);
        self.meta[f] = TableMeta {
            state: FrameState::Live,
            owner,
            level: level as u8,
            frames: frames as u8,
            live: 0,
            pins: 0,
            next: NIL,
        };
        self.counters.allocated += 1;
        self.counters.live += 1;
        let (level, frames) = (level as u8, frames as u8);
        self.record(|seq| AllocEvent::Alloc {
            seq,
            pa,
            level,
            frames,
            owner,
        });
        Ok(pa)
    }

    fn push_meta(&mut self, state: FrameState, owner: Owner, level: u8, frames: u8) {
        self.meta.push(TableMeta {
            state,
            owner,
            level,
            frames,
            live: 0,
            pins: 0,
            next: NIL,
        });
    }

    /// Unlinked table at `pa`: it waits for [`Self::grace_period`] before it can be reused.
    pub fn free_deferred(&mut self, pa: u64) {
        let f = self.frame(pa);
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

    /// Ends the grace period: every deferred table is poisoned and goes to the free list.
    pub fn grace_period(&mut self, mem: &mut PhysMem) {
        let frame_size = 1u64 << self.frame_shift;
        let mut next = std::mem::replace(&mut self.deferred_head, NIL);
        self.deferred_tail = NIL;
        while next != NIL {
            let f = next;
            next = self.meta[f as usize].next;
            let pa = self.pa(f);
            let m = self.meta[f as usize];
            mem.fill_both(pa, frame_size * m.frames as u64, POISON);
            if let (
                Owner::Custom(cookie),
                Some(CustomAllocator {
                    free: Some(free), ..
                }),
            ) = (m.owner, &mut self.custom)
            {
                free(cookie, pa, frame_size * m.frames as u64);
            }
            let m = &mut self.meta[f as usize];
            m.state = FrameState::Free;
            m.live = 0;
            m.next = self.free_head;
            self.free_head = f;
            self.free_len += 1;
            self.counters.deferred -= 1;
            self.counters.freed += 1;
            self.record(|seq| AllocEvent::Release { seq, pa });
        }
    }

    /// Frames waiting for the grace period, following the deferred list's links.
    pub fn deferred(&self) -> impl Iterator<Item = u64> + '_ {
        self.list(self.deferred_head)
    }

    /// Frames on the free list, following its links (the next allocation takes the first).
    pub fn free_list(&self) -> impl Iterator<Item = u64> + '_ {
        self.list(self.free_head)
    }

    /// Frames on the free list, as the allocator counts them.
    pub fn free_len(&self) -> u64 {
        self.free_len
    }

    /// Frames set aside in preallocation pools, pool by pool.
    pub fn pooled_frames(&self) -> impl Iterator<Item = u64> + '_ {
        self.pools.values().flatten().map(|&f| self.pa(f))
    }

    /// The list threaded through `next` from `head`. It stops after as many steps as there
    /// are frames, so a list whose links loop (a bug the oracles look for) still ends; a
    /// frame met twice then shows in what it yields.
    fn list(&self, head: u32) -> impl Iterator<Item = u64> + '_ {
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

    /// Sets `n` frames aside in a new pool `pool`, in one batch: the room is checked first
    /// (free frames plus fresh memory below 2^OAS), then the batch counts as ONE allocation
    /// attempt for `fail_nth` and the custom hook (asked for `n` frames at once). On refusal
    /// (`nomem`) nothing is taken. `n == 0` makes an empty pool without an attempt.
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
        let mut owner = Owner::Default;
        if n > 0 {
            let frame = 1u64 << self.frame_shift;
            let room = self.limit.saturating_sub(mem.end()) / frame;
            if n > self.free_len + room {
                return Err(self.refuse());
            }
            owner = self.may_allocate(n * frame)?;
        }
        let mut frames = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let f = if self.free_head != NIL {
                let f = self.free_head;
                self.free_head = self.meta[f as usize].next;
                self.free_len -= 1;
                f
            } else {
                let pa = mem.grow(1);
                self.push_meta(FrameState::Free, Owner::Default, 0, 1);
                self.frame(pa) as u32
            };
            let m = &mut self.meta[f as usize];
            m.state = FrameState::Pooled;
            m.owner = owner;
            m.next = NIL;
            frames.push(f);
            let pa = self.pa(f);
            self.record_pool(|seq| PoolEvent::Reserve { seq, pa, pool });
        }
        // Taken from the end: the first frame reserved serves the first table.
        frames.reverse();
        self.counters.pooled += n;
        self.pools.insert(pool, frames);
        Ok(())
    }

    /// Makes every table allocation come from `pool` (or `None`: the allocator again).
    pub fn set_source(&mut self, pool: Option<PoolId>) {
        self.source = pool;
    }

    /// Frames left in `pool`, if it exists.
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
    ) -> Result<u64, ErrorKind> {
        let Some(f) = self.pools.get_mut(&pool).and_then(|v| v.pop()) else {
            self.record_pool(|seq| PoolEvent::Dry { seq, pool });
            return Err(ErrorKind::Budget);
        };
        let pa = self.pa(f);
        mem.fill_both(pa, 1 << self.frame_shift, 0);
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

    /// Removes `pool`, poisoning its leftover frames onto the free list; how many there were.
    pub fn return_pool(&mut self, mem: &mut PhysMem, pool: PoolId) -> Option<u64> {
        let frames = self.pools.remove(&pool)?;
        let n = frames.len() as u64;
        for f in frames {
            let pa = self.pa(f);
            mem.fill_both(pa, 1 << self.frame_shift, POISON);
            let m = &mut self.meta[f as usize];
            m.state = FrameState::Free;
            m.next = self.free_head;
            self.free_head = f;
            self.free_len += 1;
            self.record_pool(|seq| PoolEvent::Return { seq, pa, pool });
        }
        self.counters.pooled -= n;
        Some(n)
    }

    /// Adds a reservation pin to the table at `pa`.
    pub(crate) fn pin(&mut self, pa: u64) {
        let f = self.frame(pa);
        self.meta[f].pins += 1;
    }

    /// Drops a reservation pin from the table at `pa`.
    pub(crate) fn unpin(&mut self, pa: u64) {
        let f = self.frame(pa);
        assert!(self.meta[f].pins > 0, "table {pa:#x} unpinned below zero");
        self.meta[f].pins -= 1;
    }

    /// Reservation pins on the table at `pa`.
    #[inline(always)]
    pub(crate) fn pins(&self, pa: u64) -> u32 {
        self.meta[self.frame(pa)].pins
    }
}
