//! A page-table domain: the one generic walker that maps, unmaps and looks up, over the
//! descriptor code of its [`Format`]. Semantics: docs/SEMANTICS.md.

use std::cell::Cell;
use std::collections::BTreeMap;

use crate::alloc::{Counters, CustomAllocator, TableAllocator};
use crate::config::DomainConfig;
use crate::flush::{FlushOps, Gather, NullFlush};
use crate::format::{AnyFormat, Entry, Format, MAX_LEVELS};
use crate::geometry::{ConfigError, Geometry};
use crate::physmem::PhysMem;
use crate::prealloc::Job;
use crate::prot::Prot;
use crate::{noalloc, ErrorKind, MapError};

/// One I/O address space and its tables.
pub struct Domain<F: FlushOps = NullFlush> {
    cfg: DomainConfig,
    pub(crate) geo: Geometry,
    pub(crate) fmt: AnyFormat,
    pub(crate) mem: PhysMem,
    pub(crate) tables: TableAllocator,
    flush: F,
    pub(crate) root: u64,
    /// Attribute bits of one-entry leaves by [prot bits][level], computed once.
    attrs: Box<[[u64; MAX_LEVELS]; 64]>,
    /// What an empty entry holds.
    empty: u64,
    /// Software walk cache: per level, the table last walked to and the tag
    /// (`iova >> shift(level - 1)`) of the span it covers. Tables only disappear by being
    /// unlinked, which clears it, so a hit is always a linked table.
    path: [Cell<(u64, u64)>; MAX_LEVELS],
    /// Prepared jobs (preallocation), by id.
    pub(crate) jobs: BTreeMap<u32, Job>,
    /// VA reservations held: (iova, size) → nesting count.
    pub(crate) reservations: BTreeMap<(u64, u64), u32>,
}

const NO_TAG: (u64, u64) = (u64::MAX, 0);

/// How an unmap walk ended.
struct UnmapWalk {
    /// Level whose entries are pages of the unmap's pgsize.
    page_level: u32,
    /// log2 of the entries one page of the unmap's pgsize spans.
    page_repeat: u32,
    stopped: bool,
    gather: Gather,
}

impl Domain<NullFlush> {
    /// A domain with the default allocator and no TLB to maintain.
    pub fn new(cfg: DomainConfig) -> Result<Self, ConfigError> {
        Domain::with_flush(cfg, NullFlush, None)
    }
}

impl<F: FlushOps> Domain<F> {
    /// A domain whose TLB maintenance goes to `flush`, optionally with custom table hooks.
    pub fn with_flush(
        cfg: DomainConfig,
        flush: F,
        custom: Option<CustomAllocator>,
    ) -> Result<Self, ConfigError> {
        let fmt = AnyFormat::for_kind(cfg.format);
        let geo = Geometry::with_format(&cfg, &fmt)?;
        if let Some(c) = &custom {
            if c.alloc.is_some() != c.free.is_some() {
                return Err(ConfigError(
                    "custom allocator needs both alloc and free hooks, or neither".into(),
                ));
            }
            if c.alloc.is_some() && !fmt.custom_allocator_cap() {
                return Err(ConfigError(format!(
                    "format {} does not support custom table allocators",
                    cfg.format
                )));
            }
        }
        // Tables are carved from host pages (`hostpage=`); a host page smaller than the
        // granule would split every table across pages (refused, docs/SEMANTICS.md).
        let host = cfg.host_page();
        if host.size() < cfg.granule.size() {
            return Err(ConfigError(format!(
                "host page {host} is smaller than the {} granule",
                cfg.granule
            )));
        }
        let mut mem = PhysMem::new(cfg.phys_base, host.shift(), cfg.coherent);
        let mut tables = TableAllocator::new(&mem, custom, geo.oa_size(), 1 << geo.g);
        let root_bytes = geo.root_frames() << geo.g;
        let root_end = cfg.phys_base + root_bytes.max(host.size());
        if root_end > geo.oa_size() {
            return Err(ConfigError(format!(
                "the root table at {:#x} would end past 2^OAS ({:#x})",
                cfg.phys_base,
                geo.oa_size()
            )));
        }
        let root = tables
            .alloc(&mut mem, geo.start_level, root_bytes)
            .map_err(|e| ConfigError(format!("cannot allocate the root table: {e}")))?;
        let mut attrs = Box::new([[0u64; MAX_LEVELS]; 64]);
        for (bits, row) in attrs.iter_mut().enumerate() {
            for level in geo.start_level..=geo.last_level {
                let prot = Prot::from_bits_truncate(bits as u8);
                row[level as usize] = fmt.leaf_attrs(prot, level, geo.shift(level));
            }
        }
        Ok(Domain {
            path: [const { Cell::new(NO_TAG) }; MAX_LEVELS],
            attrs,
            empty: fmt.empty(),
            cfg,
            geo,
            fmt,
            mem,
            tables,
            flush,
            root,
            jobs: BTreeMap::new(),
            reservations: BTreeMap::new(),
        })
    }

    pub fn config(&self) -> &DomainConfig {
        &self.cfg
    }
    pub fn geometry(&self) -> &Geometry {
        &self.geo
    }
    /// Physical address of the root table (what TTB0 / S2TTB points at).
    pub fn root(&self) -> u64 {
        self.root
    }
    pub fn mem(&self) -> &PhysMem {
        &self.mem
    }
    pub fn tables(&self) -> &TableAllocator {
        &self.tables
    }
    pub fn counters(&self) -> Counters {
        self.tables.counters()
    }
    pub fn flush_ops(&self) -> &F {
        &self.flush
    }
    pub fn flush_ops_mut(&mut self) -> &mut F {
        &mut self.flush
    }
    pub fn page_sizes(&self) -> Vec<u64> {
        self.geo.page_sizes()
    }
    /// Makes the `n`-th table allocation from now fail (`None` disarms).
    pub fn fail_nth_alloc(&mut self, n: Option<u64>) {
        self.tables.fail_nth(n);
    }
    /// Records device-visible writes and allocator events from now on (for the oracles).
    pub fn set_event_logging(&mut self, on: bool) {
        self.mem.set_logging(on);
        self.tables.set_logging(on);
    }
    pub fn take_device_log(&mut self) -> Vec<crate::events::DeviceWrite> {
        self.mem.take_log()
    }
    pub fn take_alloc_log(&mut self) -> Vec<crate::events::AllocEvent> {
        self.tables.take_log()
    }
    /// The device log into `buf`, reusing `buf`'s storage (see [`PhysMem::swap_log`]).
    pub fn swap_device_log(&mut self, buf: &mut Vec<crate::events::DeviceWrite>) {
        self.mem.swap_log(buf)
    }
    /// The allocator's log into `buf`, reusing `buf`'s storage.
    pub fn swap_alloc_log(&mut self, buf: &mut Vec<crate::events::AllocEvent>) {
        self.tables.swap_log(buf)
    }
    /// Preallocation-pool events since the last call (see [`crate::events::PoolEvent`]).
    pub fn take_pool_log(&mut self) -> Vec<crate::events::PoolEvent> {
        self.tables.take_pool_log()
    }

    /// Frees everything: every root entry is cleared, the whole TLB invalidated, then every
    /// table below the root deferred for freeing. The root stays.
    pub fn clear(&mut self) {
        let level = self.geo.start_level;
        let n = self.entries(level);
        let mut children = Vec::new();
        let live = self.tables.live_entries(self.root);
        let mut seen = 0;
        for i in 0..n {
            if seen == live {
                break;
            }
            let slot = self.entry_pa(self.root, i);
            match self.fmt.decode(self.rd(slot), level) {
                Entry::Invalid => continue,
                Entry::Table(child) => children.push(child),
                Entry::Leaf(_) => {}
            }
            seen += 1;
            self.wr(slot, self.empty);
        }
        self.tables.add_live(self.root, -(live as i32));
        self.forget_paths();
        // Every reservation goes with the tables it pinned; job pools stay.
        self.reservations.clear();
        self.flush.flush_all();
        for child in children {
            self.free_subtree(child, level + 1);
        }
    }

    /// Cleans every live table to the device view (a no-op for a correct engine, whose
    /// writes are already synced; kept as an op so fuzzing can interleave it).
    pub fn sync_all(&mut self) {
        let g = self.geo.g;
        for (pa, m) in self.tables.live_tables() {
            self.mem.sync(pa, (m.frames as u64) << g);
        }
    }

    /// Ends the RCU-style grace period: deferred tables are poisoned and become reusable.
    pub fn grace_period(&mut self) {
        self.tables.grace_period(&mut self.mem);
    }

    /// The descriptor at `pa`, of the format's entry size (CPU view).
    #[inline(always)]
    pub(crate) fn rd(&self, pa: u64) -> u64 {
        if self.geo.entry_bytes == 8 {
            self.mem.read(pa)
        } else {
            self.mem.read32(pa) as u64
        }
    }

    /// Writes the descriptor at `pa` and makes it visible to the walker at once.
    #[inline(always)]
    pub(crate) fn wr(&mut self, pa: u64, value: u64) {
        if self.geo.entry_bytes == 8 {
            self.mem.write_sync(pa, value)
        } else {
            self.mem.write32_sync(pa, value as u32)
        }
    }

    /// Address of entry `i` of `table`.
    #[inline(always)]
    fn entry_pa(&self, table: u64, i: u64) -> u64 {
        table + self.geo.entry_bytes as u64 * i
    }

    #[inline(always)]
    pub(crate) fn slot(&self, table: u64, iova: u64, level: u32) -> u64 {
        self.entry_pa(table, self.geo.index(iova, level) as u64)
    }

    #[inline(always)]
    fn entries(&self, level: u32) -> u64 {
        1 << self.geo.table_bits(level)
    }

    /// log2 of the bytes the leaf `pte` at `level` maps.
    #[inline(always)]
    fn leaf_shift(&self, pte: u64, level: u32) -> u32 {
        self.geo.shift(level) + self.fmt.leaf_repeat_log2(pte, level)
    }

    /// Maps `count` pages of `pgsize` from `iova` to `pa`.
    pub fn map(
        &mut self,
        iova: u64,
        pa: u64,
        pgsize: u64,
        count: u64,
        prot: Prot,
    ) -> Result<u64, MapError> {
        let err = |kind| Err(MapError::new(kind, 0));
        let (level, repeat) = match self.geo.leaf_of_pgsize(pgsize) {
            Some(l) if count != 0 && iova & (pgsize - 1) == 0 && pa & (pgsize - 1) == 0 => l,
            _ => return err(ErrorKind::Inval),
        };
        let Some(size) = count.checked_mul(pgsize) else {
            return err(ErrorKind::Range);
        };
        let in_range =
            |a: u64, limit_bits: u32| a.checked_add(size).is_some_and(|e| e <= 1 << limit_bits);
        if !in_range(iova, self.geo.ias) || !in_range(pa, self.geo.oas) {
            return err(ErrorKind::Range);
        }
        if !prot.readable() && !prot.writable() {
            return Ok(0);
        }
        let _section = (!self.reservations.is_empty()
            && self.inside_reservation(iova, iova + size))
        .then(noalloc::Section::enter);
        if repeat != 0 {
            return self.map_repeated(iova, pa, pgsize, count, prot, level, repeat);
        }
        let attrs = self.attrs[prot.bits() as usize][level as usize];
        if count == 1 {
            // One page into a cached table: the common per-page call.
            if let Some(table) = self.cached(iova, level) {
                let slot = self.slot(table, iova, level);
                if self.rd(slot) == self.empty {
                    self.wr(slot, self.fmt.leaf(pa, attrs));
                    self.tables.add_live(table, 1);
                    return Ok(size);
                }
            }
        }
        let mut done = 0u64;
        while done < count {
            let va = iova + done * pgsize;
            let table = match self.walk_alloc(va, level) {
                Ok(t) => t,
                Err(kind) => return Err(MapError::new(kind, done * pgsize)),
            };
            let idx = self.geo.index(va, level) as u64;
            let run = (count - done).min(self.entries(level) - idx);
            let first = self.entry_pa(table, idx);
            let out = pa + done * pgsize;
            // Fast path: a run of empty slots.
            let written = self.write_run(first, run, out, pgsize, attrs);
            if written > 0 {
                self.tables.add_live(table, written as i32);
                done += written;
            }
            if written < run {
                let slot = self.entry_pa(first, written);
                let leaf = self.fmt.leaf(pa + done * pgsize, attrs);
                self.map_over_occupied(table, slot, level, iova + done * pgsize, leaf)
                    .map_err(|kind| MapError::new(kind, done * pgsize))?;
                done += 1;
            }
        }
        Ok(size)
    }

    /// Writes leaves for `run` one-entry pages from `first` while the slots are empty,
    /// syncing what it wrote; returns how many it wrote.
    #[inline(always)]
    fn write_run(&mut self, first: u64, run: u64, out: u64, pgsize: u64, attrs: u64) -> u64 {
        if self.geo.entry_bytes == 8 && self.empty == 0 {
            let fmt = self.fmt;
            let slots = self.mem.words_mut(first, run as usize);
            let mut written = 0u64;
            for (i, e) in slots.iter_mut().enumerate() {
                if *e != 0 {
                    break;
                }
                *e = fmt.leaf(out + i as u64 * pgsize, attrs);
                written += 1;
            }
            if written > 0 {
                self.mem.sync(first, 8 * written);
            }
            return written;
        }
        let mut written = 0u64;
        while written < run {
            let slot = self.entry_pa(first, written);
            if self.rd(slot) != self.empty {
                break;
            }
            self.wr(slot, self.fmt.leaf(out + written * pgsize, attrs));
            written += 1;
        }
        written
    }

    /// Maps pages whose leaves repeat over `2^repeat` entries (v7s large pages and
    /// supersections), page by page: every slot of a page is checked (`busy` for a pinned
    /// table, then `exists` for a leaf or a table with leaves) before any is written; empty
    /// tables in the way are unlinked first.
    #[allow(clippy::too_many_arguments)]
    #[cold]
    #[inline(never)]
    fn map_repeated(
        &mut self,
        iova: u64,
        pa: u64,
        pgsize: u64,
        count: u64,
        prot: Prot,
        level: u32,
        repeat: u32,
    ) -> Result<u64, MapError> {
        let n = 1u64 << repeat;
        let attrs = self.fmt.leaf_attrs(prot, level, pgsize.trailing_zeros());
        let span = 1u64 << self.geo.shift(level);
        for k in 0..count {
            let va = iova + k * pgsize;
            let stop = |kind| MapError::new(kind, k * pgsize);
            let table = self.walk_alloc(va, level).map_err(stop)?;
            let first = self.slot(table, va, level);
            let mut empty_tables = 0;
            for busy_pass in [true, false] {
                for i in 0..n {
                    let e = self.fmt.decode(self.rd(self.entry_pa(first, i)), level);
                    match e {
                        Entry::Table(child) if self.tables.pins(child) > 0 => {
                            return Err(stop(ErrorKind::Busy))
                        }
                        _ if busy_pass => {}
                        Entry::Invalid => {}
                        Entry::Table(child) if !self.subtree_has_leaf(child, level + 1) => {
                            empty_tables += 1
                        }
                        _ => return Err(stop(ErrorKind::Exists)),
                    }
                }
            }
            if empty_tables > 0 {
                for i in 0..n {
                    let slot = self.entry_pa(first, i);
                    if let Entry::Table(child) = self.fmt.decode(self.rd(slot), level) {
                        let at = va + i * span;
                        self.unlink_table(table, slot, child, level + 1, at, span);
                    }
                }
            }
            let leaf = self.fmt.leaf(pa + k * pgsize, attrs);
            for i in 0..n {
                self.wr(self.entry_pa(first, i), leaf);
            }
            self.tables.add_live(table, n as i32);
        }
        Ok(count * pgsize)
    }

    /// The slot holds something: a leaf (`exists`), a table with leaves (`exists`), or an
    /// empty table, which is unlinked and replaced by `leaf`.
    #[cold]
    #[inline(never)]
    fn map_over_occupied(
        &mut self,
        table: u64,
        slot: u64,
        level: u32,
        va: u64,
        leaf: u64,
    ) -> Result<(), ErrorKind> {
        match self.fmt.decode(self.rd(slot), level) {
            // A pinned table (a reservation) is never replaced by a leaf.
            Entry::Table(child) if self.tables.pins(child) > 0 => Err(ErrorKind::Busy),
            Entry::Table(child) if !self.subtree_has_leaf(child, level + 1) => {
                let span = 1u64 << self.geo.shift(level);
                self.unlink_table(table, slot, child, level + 1, va, span);
                self.wr(slot, leaf);
                self.tables.add_live(table, 1);
                Ok(())
            }
            _ => Err(ErrorKind::Exists),
        }
    }

    /// The cached table at `level` for `iova`, if the walk cache holds it.
    #[inline(always)]
    fn cached(&self, iova: u64, level: u32) -> Option<u64> {
        let (tag, table) = self.path[level as usize].get();
        (level > self.geo.start_level && tag == iova >> self.geo.shift(level - 1)).then_some(table)
    }

    #[inline(always)]
    fn remember(&self, iova: u64, level: u32, table: u64) {
        self.path[level as usize].set((iova >> self.geo.shift(level - 1), table));
    }

    fn forget_paths(&self) {
        for p in &self.path {
            p.set(NO_TAG);
        }
    }

    /// The table at `level` on the path to `iova`, allocating missing intermediate tables.
    #[inline]
    fn walk_alloc(&mut self, iova: u64, level: u32) -> Result<u64, ErrorKind> {
        if let Some(t) = self.cached(iova, level) {
            return Ok(t);
        }
        let mut table = self.root;
        for l in self.geo.start_level..level {
            let slot = self.slot(table, iova, l);
            table = match self.fmt.decode(self.rd(slot), l) {
                Entry::Table(next) => next,
                Entry::Leaf(_) => return Err(ErrorKind::Exists),
                Entry::Invalid => self.link_new_table(table, slot, l + 1)?,
            };
            self.remember(iova, l + 1, table);
        }
        Ok(table)
    }

    /// Allocates a table for `level` and links it at `slot` of `parent`.
    #[inline(never)]
    pub(crate) fn link_new_table(
        &mut self,
        parent: u64,
        slot: u64,
        level: u32,
    ) -> Result<u64, ErrorKind> {
        let bytes = self.geo.table_frames(level) << self.geo.g;
        let next = self.tables.alloc(&mut self.mem, level, bytes)?;
        self.wr(slot, self.fmt.table(next));
        self.tables.add_live(parent, 1);
        Ok(next)
    }

    /// Whether any valid leaf lives in the table at `level` or below it.
    fn subtree_has_leaf(&self, table: u64, level: u32) -> bool {
        let live = self.tables.live_entries(table);
        if live == 0 {
            return false;
        }
        if level == self.geo.last_level {
            return true;
        }
        let n = self.entries(level);
        let mut seen = 0;
        for i in 0..n {
            match self.fmt.decode(self.rd(self.entry_pa(table, i)), level) {
                Entry::Invalid => continue,
                Entry::Leaf(_) => return true,
                Entry::Table(child) => {
                    if self.subtree_has_leaf(child, level + 1) {
                        return true;
                    }
                }
            }
            seen += 1;
            if seen == live {
                break;
            }
        }
        false
    }

    /// Clears `slot` (in `parent`) that links `child`, invalidates the walk over its span,
    /// then defers the free of `child` and everything below it: break before make.
    pub(crate) fn unlink_table(
        &mut self,
        parent: u64,
        slot: u64,
        child: u64,
        child_level: u32,
        va: u64,
        span: u64,
    ) {
        self.wr(slot, self.empty);
        self.tables.add_live(parent, -1);
        self.forget_paths();
        self.flush.flush_walk(va, span, self.geo.granule.size());
        self.free_subtree(child, child_level);
    }

    /// Defers the free of `table` and of every table below it.
    fn free_subtree(&mut self, table: u64, level: u32) {
        if level < self.geo.last_level {
            let live = self.tables.live_entries(table);
            let n = self.entries(level);
            let mut seen = 0;
            let mut i = 0;
            while seen < live && i < n {
                let pte = self.rd(self.entry_pa(table, i));
                match self.fmt.decode(pte, level) {
                    Entry::Invalid => {}
                    Entry::Leaf(_) => seen += 1,
                    Entry::Table(child) => {
                        seen += 1;
                        self.free_subtree(child, level + 1);
                    }
                }
                i += 1;
            }
        }
        self.tables.free_deferred(table);
    }

    /// Unmaps `count` pages of `pgsize` from `iova`; returns the bytes unmapped.
    pub fn unmap(&mut self, iova: u64, pgsize: u64, count: u64) -> Result<u64, ErrorKind> {
        let (page_level, page_repeat) = match self.geo.leaf_of_pgsize(pgsize) {
            Some(l) if count != 0 && iova & (pgsize - 1) == 0 => l,
            _ => return Err(ErrorKind::Inval),
        };
        let end = count
            .checked_mul(pgsize)
            .and_then(|s| iova.checked_add(s))
            .filter(|&e| e <= self.geo.ia_size())
            .ok_or(ErrorKind::Range)?;
        let _section = (!self.reservations.is_empty() && self.inside_reservation(iova, end))
            .then(noalloc::Section::enter);
        let mut walk = UnmapWalk {
            page_level,
            page_repeat,
            stopped: false,
            gather: Gather::new(),
        };
        let parent_shift = page_level
            .checked_sub(1)
            .filter(|&l| l >= self.geo.start_level)
            .map(|l| self.geo.shift(l));
        let bytes = match parent_shift {
            // Inside one page-level table without covering all of it: no table can be
            // freed, so go straight to that table.
            Some(ps) if iova >> ps == (end - 1) >> ps && end - iova < 1 << ps => {
                match self.find_table(iova, page_level) {
                    Some(table) => self.unmap_pages(table, page_level, iova, end, &mut walk),
                    None => 0,
                }
            }
            _ => self.unmap_in(self.root, self.geo.start_level, iova, end, &mut walk),
        };
        self.flush.sync(&walk.gather);
        Ok(bytes)
    }

    /// The table at `level` on the path to `iova`, or `None` where the path ends earlier
    /// (an invalid entry or a larger leaf).
    #[inline]
    pub(crate) fn find_table(&self, iova: u64, level: u32) -> Option<u64> {
        if let Some(t) = self.cached(iova, level) {
            return Some(t);
        }
        let mut table = self.root;
        for l in self.geo.start_level..level {
            match self.fmt.decode(self.rd(self.slot(table, iova, l)), l) {
                Entry::Table(next) => table = next,
                _ => return None,
            }
            self.remember(iova, l + 1, table);
        }
        Some(table)
    }

    /// Unmaps the pages of `[va, hi)`, all inside the table at `level`; the caller frees
    /// tables whose whole span went.
    fn unmap_pages(
        &mut self,
        table: u64,
        level: u32,
        va: u64,
        hi: u64,
        walk: &mut UnmapWalk,
    ) -> u64 {
        if walk.page_repeat != 0 {
            return self.unmap_repeated(table, level, va, hi, walk);
        }
        let shift = self.geo.shift(level);
        let span = 1u64 << shift;
        let first = self.geo.index(va, level) as u64;
        let n = (hi - va) >> shift;
        let mut bytes = 0;
        let mut removed = 0;
        for i in 0..n {
            let slot = self.entry_pa(table, first + i);
            let page = va + (i << shift);
            let pte = self.rd(slot);
            match self.fmt.decode(pte, level) {
                Entry::Invalid => walk.stopped = true,
                // A leaf larger than the page (a v7s large page or supersection): no
                // splitting.
                Entry::Leaf(_) if self.leaf_shift(pte, level) > shift => walk.stopped = true,
                Entry::Leaf(_) => {
                    self.wr(slot, self.empty);
                    removed += 1;
                    self.flush.add_page(&mut walk.gather, page, span);
                    bytes += span;
                }
                Entry::Table(child) => {
                    if self.subtree_has_leaf(child, level + 1) && self.tables.pins(child) > 0 {
                        // Pinned by a reservation: its leaves go, the tables stay.
                        self.strip_pinned(child, level + 1, page);
                        self.flush.flush_walk(page, span, self.geo.granule.size());
                        bytes += span;
                    } else if self.subtree_has_leaf(child, level + 1) {
                        self.unlink_table(table, slot, child, level + 1, page, span);
                        bytes += span;
                    } else {
                        walk.stopped = true;
                    }
                }
            }
            if walk.stopped {
                break;
            }
        }
        self.tables.add_live(table, -removed);
        bytes
    }

    /// [`Self::unmap_pages`] for pages of several entries each: a page counts when a leaf
    /// (or a table with leaves) is in one of its slots and no leaf there is larger than the
    /// page; then every slot is emptied (tables unlinked, pinned ones stripped).
    #[cold]
    #[inline(never)]
    fn unmap_repeated(
        &mut self,
        table: u64,
        level: u32,
        va: u64,
        hi: u64,
        walk: &mut UnmapWalk,
    ) -> u64 {
        let shift = self.geo.shift(level);
        let span = 1u64 << shift;
        let n = 1u64 << walk.page_repeat;
        let pgsize = span << walk.page_repeat;
        let mut bytes = 0;
        let mut page = va;
        while page < hi {
            let first = self.slot(table, page, level);
            let mut any = false;
            for i in 0..n {
                let pte = self.rd(self.entry_pa(first, i));
                match self.fmt.decode(pte, level) {
                    Entry::Invalid => {}
                    Entry::Leaf(_) if self.leaf_shift(pte, level) > pgsize.trailing_zeros() => {
                        walk.stopped = true;
                    }
                    Entry::Leaf(_) => any = true,
                    Entry::Table(child) => any |= self.subtree_has_leaf(child, level + 1),
                }
            }
            if walk.stopped || !any {
                walk.stopped = true;
                break;
            }
            let mut removed = 0;
            for i in 0..n {
                let slot = self.entry_pa(first, i);
                let at = page + i * span;
                match self.fmt.decode(self.rd(slot), level) {
                    Entry::Invalid => {}
                    Entry::Leaf(_) => {
                        self.wr(slot, self.empty);
                        removed += 1;
                    }
                    Entry::Table(child) if self.tables.pins(child) > 0 => {
                        self.strip_pinned(child, level + 1, at);
                        self.flush.flush_walk(at, span, self.geo.granule.size());
                    }
                    Entry::Table(child) => {
                        self.unlink_table(table, slot, child, level + 1, at, span)
                    }
                }
            }
            if removed > 0 {
                self.tables.add_live(table, -removed);
                self.flush.add_page(&mut walk.gather, page, pgsize);
            }
            bytes += pgsize;
            page += pgsize;
        }
        bytes
    }

    /// Removes every leaf below the pinned `table` (at `level`, spanning from `va`), keeping
    /// pinned tables and freeing unpinned ones; the caller flushes the walk of its span.
    fn strip_pinned(&mut self, table: u64, level: u32, va: u64) {
        let shift = self.geo.shift(level);
        for i in 0..self.entries(level) {
            let slot = self.entry_pa(table, i);
            let page = va + (i << shift);
            match self.fmt.decode(self.rd(slot), level) {
                Entry::Invalid => {}
                Entry::Leaf(_) => {
                    self.wr(slot, self.empty);
                    self.tables.add_live(table, -1);
                }
                Entry::Table(child) if self.tables.pins(child) > 0 => {
                    self.strip_pinned(child, level + 1, page)
                }
                Entry::Table(child) => {
                    self.unlink_table(table, slot, child, level + 1, page, 1 << shift)
                }
            }
        }
    }

    /// Unmaps `[lo, hi)` within `table` at `level`; returns the bytes counted.
    fn unmap_in(&mut self, table: u64, level: u32, lo: u64, hi: u64, walk: &mut UnmapWalk) -> u64 {
        if level == walk.page_level {
            return self.unmap_pages(table, level, lo, hi, walk);
        }
        let span = 1u64 << self.geo.shift(level);
        let child_level = level + 1;
        let mut bytes = 0;
        let mut va = lo;
        while va < hi && !walk.stopped {
            let slot = self.slot(table, va, level);
            let next = (va & !(span - 1)) + span;
            let Entry::Table(child) = self.fmt.decode(self.rd(slot), level) else {
                // A hole, or a leaf larger than the pages being unmapped.
                walk.stopped = true;
                break;
            };
            let covered = va + span == next && hi >= next;
            if covered
                && child_level == self.geo.last_level
                && self.geo.max_repeat(child_level) <= walk.page_repeat
                && self.tables.live_entries(child) as u64 == self.entries(child_level)
                && self.tables.pins(child) == 0
            {
                // A full last-level table unmapped whole: O(1), the walk flush covers
                // its leaves. Not where a leaf there may be larger than the pages being
                // unmapped (an armv7s 64K page under a 4K unmap stops the unmap).
                self.unlink_table(table, slot, child, child_level, va, span);
                bytes += span;
            } else {
                // Leaves of a table that goes whole are covered by its walk flush; gather
                // them apart and only invalidate them if the table stays.
                let outer = if covered {
                    Some(std::mem::replace(&mut walk.gather, Gather::new()))
                } else {
                    None
                };
                bytes += self.unmap_in(child, child_level, va, hi.min(next), walk);
                // A pinned table (a reservation) stays, and so its leaves need flushing.
                let goes = covered && !walk.stopped && self.tables.pins(child) == 0;
                if goes {
                    self.unlink_table(table, slot, child, child_level, va, span);
                }
                if let Some(outer) = outer {
                    let inner = std::mem::replace(&mut walk.gather, outer);
                    if !goes {
                        self.flush.sync(&inner);
                    }
                }
            }
            va = next;
        }
        bytes
    }

    /// The output address of the byte at `iova`, if it is mapped.
    #[inline]
    pub fn lookup(&self, iova: u64) -> Option<u64> {
        if iova >> self.geo.ias != 0 {
            return None;
        }
        let (mut level, mut table) = (self.geo.start_level, self.root);
        for l in (self.geo.start_level + 1..=self.geo.last_level).rev() {
            if let Some(t) = self.cached(iova, l) {
                (level, table) = (l, t);
                break;
            }
        }
        loop {
            let pte = self.rd(self.slot(table, iova, level));
            match self.fmt.decode(pte, level) {
                Entry::Invalid => return None,
                Entry::Leaf(oa) => {
                    let mask = (1u64 << self.leaf_shift(pte, level)) - 1;
                    return Some((oa & !mask) | (iova & mask));
                }
                Entry::Table(next) => {
                    level += 1;
                    self.remember(iova, level, next);
                    table = next;
                }
            }
        }
    }
}
