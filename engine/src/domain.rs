//! A page-table domain: the one generic walker that maps, unmaps and looks up, over the
//! descriptor code of its [`Format`]. Semantics: docs/SEMANTICS.md.

use crate::alloc::{Counters, CustomAllocator, TableAllocator};
use crate::config::DomainConfig;
use crate::flush::{FlushOps, Gather, NullFlush};
use crate::format::{Entry, Format, Lpae};
use crate::geometry::{ConfigError, Geometry, LAST_LEVEL};
use crate::physmem::PhysMem;
use crate::prot::Prot;
use crate::{ErrorKind, MapError};

/// One I/O address space and its tables.
pub struct Domain<F: FlushOps = NullFlush> {
    cfg: DomainConfig,
    geo: Geometry,
    fmt: Lpae,
    mem: PhysMem,
    tables: TableAllocator,
    flush: F,
    root: u64,
    /// Leaf attribute bits by [prot bits][level], computed once.
    attrs: Box<[[u64; 4]; 64]>,
}

/// How an unmap walk ended.
struct UnmapWalk {
    /// Level whose entries are pages of the unmap's pgsize.
    page_level: u32,
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
        let geo = Geometry::new(&cfg)?;
        let fmt = Lpae::new(cfg.format);
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
        let mut mem = PhysMem::new(cfg.phys_base, geo.g, cfg.coherent);
        let mut tables = TableAllocator::new(&mem, custom);
        let root = tables
            .alloc(&mut mem, geo.start_level, geo.root_frames())
            .map_err(|e| ConfigError(format!("cannot allocate the root table: {e}")))?;
        let mut attrs = Box::new([[0u64; 4]; 64]);
        for (bits, row) in attrs.iter_mut().enumerate() {
            for (level, a) in row.iter_mut().enumerate() {
                *a = fmt.leaf_attrs(Prot::from_bits_truncate(bits as u8), level as u32);
            }
        }
        Ok(Domain {
            attrs,
            cfg,
            geo,
            fmt,
            mem,
            tables,
            flush,
            root,
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
    /// Ends the RCU-style grace period: deferred tables are poisoned and become reusable.
    pub fn grace_period(&mut self) {
        self.tables.grace_period(&mut self.mem);
    }

    #[inline(always)]
    fn slot(&self, table: u64, iova: u64, level: u32) -> u64 {
        table + 8 * self.geo.index(iova, level) as u64
    }

    #[inline(always)]
    fn entries(&self, level: u32) -> u64 {
        1 << self.geo.table_bits(level)
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
        let level = match self.geo.level_of_pgsize(pgsize) {
            Some(l) if count != 0 && iova & (pgsize - 1) == 0 && pa & (pgsize - 1) == 0 => l,
            _ => return err(ErrorKind::Inval),
        };
        let Some(size) = count.checked_mul(pgsize) else {
            return err(ErrorKind::Range);
        };
        let in_range = |a: u64, limit_bits: u32| a.checked_add(size).is_some_and(|e| e <= 1 << limit_bits);
        if !in_range(iova, self.geo.ias) || !in_range(pa, self.geo.oas) {
            return err(ErrorKind::Range);
        }
        if !prot.readable() && !prot.writable() {
            return Ok(0);
        }
        let attrs = self.attrs[prot.bits() as usize][level as usize];
        let mut done = 0u64;
        while done < count {
            let va = iova + done * pgsize;
            let stop = |kind| Err(MapError::new(kind, done * pgsize));
            let table = match self.walk_alloc(va, level) {
                Ok(t) => t,
                Err(kind) => return stop(kind),
            };
            let idx = self.geo.index(va, level) as u64;
            let run = (count - done).min(self.entries(level) - idx);
            let first = table + 8 * idx;
            let out = pa + done * pgsize;
            // Fast path: a run of empty slots.
            let slots = self.mem.words_mut(first, run as usize);
            let mut written = 0u64;
            for (i, e) in slots.iter_mut().enumerate() {
                if *e != 0 {
                    break;
                }
                *e = (out + i as u64 * pgsize) | attrs;
                written += 1;
            }
            if written > 0 {
                self.tables.add_live(table, written as i32);
                self.mem.sync(first, 8 * written);
                done += written;
            }
            if written < run {
                // The slot at `done` holds something: a leaf (exists) or a table.
                let va = iova + done * pgsize;
                let slot = table + 8 * (idx + written);
                match self.fmt.decode(self.mem.read(slot), level) {
                    Entry::Table(child) if !self.subtree_has_leaf(child, level + 1) => {
                        self.unlink_table(table, slot, child, level + 1, va, pgsize);
                        self.mem.write_sync(slot, (pa + done * pgsize) | attrs);
                        self.tables.add_live(table, 1);
                        done += 1;
                    }
                    _ => return Err(MapError::new(ErrorKind::Exists, done * pgsize)),
                }
            }
        }
        Ok(size)
    }

    /// The table at `level` on the path to `iova`, allocating missing intermediate tables.
    #[inline]
    fn walk_alloc(&mut self, iova: u64, level: u32) -> Result<u64, ErrorKind> {
        let mut table = self.root;
        for l in self.geo.start_level..level {
            let slot = self.slot(table, iova, l);
            table = match self.fmt.decode(self.mem.read(slot), l) {
                Entry::Table(next) => next,
                Entry::Leaf(_) => return Err(ErrorKind::Exists),
                Entry::Invalid => {
                    let next = self.tables.alloc(&mut self.mem, l + 1, 1)?;
                    self.mem.write_sync(slot, self.fmt.table(next));
                    self.tables.add_live(table, 1);
                    next
                }
            };
        }
        Ok(table)
    }

    /// Whether any valid leaf lives in the table at `level` or below it.
    fn subtree_has_leaf(&self, table: u64, level: u32) -> bool {
        let live = self.tables.live_entries(table);
        if live == 0 {
            return false;
        }
        if level == LAST_LEVEL {
            return true;
        }
        let n = self.entries(level) as usize;
        let mut seen = 0;
        for &pte in self.mem.words(table, n) {
            match self.fmt.decode(pte, level) {
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
    fn unlink_table(&mut self, parent: u64, slot: u64, child: u64, child_level: u32, va: u64, span: u64) {
        self.mem.write_sync(slot, 0);
        self.tables.add_live(parent, -1);
        self.flush.flush_walk(va, span, self.geo.granule.size());
        self.free_subtree(child, child_level);
    }

    /// Defers the free of `table` and of every table below it.
    fn free_subtree(&mut self, table: u64, level: u32) {
        if level < LAST_LEVEL {
            let live = self.tables.live_entries(table);
            let n = self.entries(level) as usize;
            let mut seen = 0;
            let mut i = 0;
            while seen < live && i < n {
                let pte = self.mem.read(table + 8 * i as u64);
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
        let page_level = match self.geo.level_of_pgsize(pgsize) {
            Some(l) if count != 0 && iova & (pgsize - 1) == 0 => l,
            _ => return Err(ErrorKind::Inval),
        };
        let end = count
            .checked_mul(pgsize)
            .and_then(|s| iova.checked_add(s))
            .filter(|&e| e <= self.geo.ia_size())
            .ok_or(ErrorKind::Range)?;
        let mut walk = UnmapWalk {
            page_level,
            stopped: false,
            gather: Gather::new(),
        };
        let bytes = self.unmap_in(self.root, self.geo.start_level, iova, end, &mut walk);
        self.flush.sync(&walk.gather);
        Ok(bytes)
    }

    /// Unmaps `[lo, hi)` within `table` at `level`; returns the bytes counted.
    fn unmap_in(&mut self, table: u64, level: u32, lo: u64, hi: u64, walk: &mut UnmapWalk) -> u64 {
        let shift = self.geo.shift(level);
        let span = 1u64 << shift;
        let mut bytes = 0;
        let mut va = lo;
        while va < hi {
            let slot = self.slot(table, va, level);
            let entry = self.fmt.decode(self.mem.read(slot), level);
            let base = va & !(span - 1);
            let next = base + span;
            if level == walk.page_level {
                // One run of pages inside this table.
                let first = self.geo.index(va, level) as u64;
                let n = (hi - va) >> shift;
                let mut removed = 0;
                for i in 0..n {
                    let slot = table + 8 * (first + i);
                    let page = va + (i << shift);
                    match self.fmt.decode(self.mem.read(slot), level) {
                        Entry::Invalid => walk.stopped = true,
                        Entry::Leaf(_) => {
                            self.mem.write_sync(slot, 0);
                            removed += 1;
                            self.flush.add_page(&mut walk.gather, page, span);
                            bytes += span;
                        }
                        Entry::Table(child) => {
                            if self.subtree_has_leaf(child, level + 1) {
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
                break;
            } else {
                match entry {
                    Entry::Invalid | Entry::Leaf(_) => walk.stopped = true,
                    Entry::Table(child) => {
                        let covered = va == base && hi >= next;
                        let child_level = level + 1;
                        if covered
                            && child_level == LAST_LEVEL
                            && self.tables.live_entries(child) as u64 == self.entries(child_level)
                        {
                            // A full last-level table unmapped whole: O(1), the walk
                            // flush covers its leaves.
                            self.unlink_table(table, slot, child, child_level, va, span);
                            bytes += span;
                        } else {
                            bytes += self.unmap_in(child, child_level, va, hi.min(next), walk);
                            if covered && !walk.stopped {
                                self.unlink_table(table, slot, child, child_level, va, span);
                            }
                        }
                    }
                }
            }
            if walk.stopped {
                break;
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
        let mut table = self.root;
        for level in self.geo.start_level..=LAST_LEVEL {
            let pte = self.mem.read(self.slot(table, iova, level));
            match self.fmt.decode(pte, level) {
                Entry::Invalid => return None,
                Entry::Table(next) => table = next,
                Entry::Leaf(oa) => {
                    let mask = (1u64 << self.geo.shift(level)) - 1;
                    return Some((oa & !mask) | (iova & mask));
                }
            }
        }
        None
    }
}
