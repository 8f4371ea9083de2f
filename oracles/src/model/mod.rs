//! Reference model: the mapping state as a sparse ordered map from leaf start IOVA to
//! (pa, size, prot), plus the abstract set of table nodes `(level, base)` the engine must
//! have allocated (see `tables.rs`). It knows nothing of descriptors; it computes the result
//! every map/unmap/lookup must return under docs/SEMANTICS.md, including where an injected
//! or address-limit allocation failure stops a map, and the allocator's counters.

pub mod domain_rules;
mod prealloc;
mod tables;
#[cfg(test)]
mod tables_tests;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use ptfuzz_engine::config::DomainConfig;
use ptfuzz_engine::error::{ErrorKind, MapError};
use ptfuzz_engine::prot::Prot;

pub use domain_rules::DomainRules;
pub use prealloc::ModelJob;
pub use tables::ModelCounters;
use tables::Tables;

/// A removed leaf: (iova, pa, size, prot).
pub type RemovedLeaf = (u64, u64, u64, Prot);

/// One mapped leaf (its start IOVA is the map key).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Leaf {
    pa: u64,
    size: u64,
    prot: Prot,
}

/// Expected state of one domain. Leaves never overlap, and each is aligned to its size.
#[derive(Clone, Debug)]
pub struct Model {
    rules: DomainRules,
    sizes: Vec<u64>,
    leaves: BTreeMap<u64, Leaf>,
    tables: Tables,
    /// Leaves removed (by unmap or clear) since the last `take_removed_leaves`.
    removed: Vec<RemovedLeaf>,
    log_on: bool,
    /// Prepared jobs by id (preallocation).
    jobs: BTreeMap<u32, ModelJob>,
    /// VA reservations: (iova, size) → nesting count.
    reservations: BTreeMap<(u64, u64), u32>,
}

impl Model {
    /// `Err(Inval)` for every configuration docs/SEMANTICS.md refuses.
    pub fn new(cfg: &DomainConfig) -> Result<Model, ErrorKind> {
        let rules = DomainRules::new(cfg)?;
        // Table frames follow the root from phys_base; one that would end above 2^OAS is an
        // allocation failure. DomainRules::new checked the root itself fits.
        let granule = cfg.granule.size();
        let frames_below_oas = ((1u64 << rules.oas) - cfg.phys_base) / granule;
        let frame_cap = frames_below_oas - rules.root_tables();
        let tables = Tables::new(rules.start_level, |l| rules.level_shift(l), frame_cap);
        Ok(Model {
            sizes: rules.page_sizes(),
            rules,
            leaves: BTreeMap::new(),
            tables,
            removed: Vec::new(),
            log_on: true,
            jobs: BTreeMap::new(),
            reservations: BTreeMap::new(),
        })
    }

    /// Arms "the n-th table allocation attempt from now (1-based) fails"; `None` or
    /// `Some(0)` disarms. Each attempt counts down; the failing one disarms.
    pub fn fail_nth(&mut self, n: Option<u64>) {
        self.tables.set_fail_nth(n);
    }

    /// Expected allocator counters.
    pub fn counters(&self) -> ModelCounters {
        self.tables.counters()
    }

    /// The grace period: tables freed so far are released.
    pub fn grace_period(&mut self) {
        self.tables.grace_period();
    }

    /// Every non-root table as (lookup level, base iova), ascending by level, then base.
    pub fn tables(&self) -> impl Iterator<Item = (u32, u64)> + '_ {
        self.tables.iter()
    }

    /// Number of non-root tables.
    pub fn table_count(&self) -> u64 {
        self.tables.len()
    }

    /// Whether the table node `(level, base)` exists.
    pub fn has_table(&self, level: u32, base: u64) -> bool {
        level > self.rules.start_level && level <= 3 && self.tables.contains(level, base)
    }

    /// Bytes of input address space a table at `level` (> start level) spans.
    pub fn table_span(&self, level: u32) -> u64 {
        1u64 << self.rules.level_shift(level - 1)
    }

    /// Tables freed (unlinked) since the last call, as (level, base, span): each needs a walk
    /// invalidation of its span. Within one freeing step ordered by level, then base.
    pub fn take_freed_tables(&mut self) -> Vec<(u32, u64, u64)> {
        self.tables.take_freed()
    }

    /// Leaves removed by unmap or clear since the last call, as (iova, pa, size, prot), in
    /// the order they were removed.
    pub fn take_removed_leaves(&mut self) -> Vec<RemovedLeaf> {
        std::mem::take(&mut self.removed)
    }

    /// Turns the freed-table and removed-leaf logs on (the default) or off (a consumer that
    /// never takes them saves the work and the memory). Turning off drops what was logged.
    pub fn set_removal_logging(&mut self, on: bool) {
        self.log_on = on;
        if !on {
            self.removed = Vec::new();
        }
        self.tables.set_logging(on);
    }

    /// Lookup level whose entry maps `pgsize` bytes (pgsize is a supported page size).
    fn leaf_level(&self, pgsize: u64) -> u32 {
        let shift = pgsize.trailing_zeros();
        (self.rules.start_level..=3)
            .find(|&l| self.rules.level_shift(l) == shift)
            .expect("supported page size has a level")
    }

    /// The validated domain facts (start level, root size) for other oracles.
    pub fn rules(&self) -> &DomainRules {
        &self.rules
    }

    /// Supported leaf sizes, ascending.
    pub fn page_sizes(&self) -> Vec<u64> {
        self.sizes.clone()
    }

    /// Whether `pgsize` is a supported leaf size.
    pub fn is_page_size(&self, pgsize: u64) -> bool {
        self.sizes.contains(&pgsize)
    }

    /// Exclusive end of the input address space: 2^IAS.
    fn ias_end(&self) -> u64 {
        1 << self.rules.ias
    }

    fn oas_end(&self) -> u64 {
        1 << self.rules.oas
    }

    /// Shared `inval` checks of map and unmap: count, pgsize, iova alignment.
    fn check_pages(&self, iova: u64, pgsize: u64, count: u64) -> Result<(), ErrorKind> {
        // pgsize is tested for support first, so alignment is only checked against a real size.
        if count == 0 || !self.sizes.contains(&pgsize) || !iova.is_multiple_of(pgsize) {
            return Err(ErrorKind::Inval);
        }
        Ok(())
    }

    /// `count * pgsize`, if `[start, start + size)` fits below `end` without overflow.
    fn range_size(start: u64, pgsize: u64, count: u64, end: u64) -> Result<u64, ErrorKind> {
        let size = count.checked_mul(pgsize).ok_or(ErrorKind::Range)?;
        match start.checked_add(size) {
            Some(e) if e <= end => Ok(size),
            _ => Err(ErrorKind::Range),
        }
    }

    pub fn map(
        &mut self,
        iova: u64,
        pa: u64,
        pgsize: u64,
        count: u64,
        prot: Prot,
    ) -> Result<u64, MapError> {
        let inval = |k| MapError::new(k, 0);
        self.check_pages(iova, pgsize, count).map_err(inval)?;
        if !pa.is_multiple_of(pgsize) {
            return Err(inval(ErrorKind::Inval));
        }
        let size = Self::range_size(iova, pgsize, count, self.ias_end()).map_err(inval)?;
        Self::range_size(pa, pgsize, count, self.oas_end()).map_err(inval)?;
        if !prot.readable() && !prot.writable() {
            return Ok(0);
        }
        let level = self.leaf_level(pgsize);
        let mut seen = [u64::MAX; 4];
        // Pages this map adds never overlap each other, so when nothing overlaps the whole
        // range no page needs its own test.
        let clear = !self.overlaps(iova, size);
        // Both ranges were checked above, so every page offset below is in range.
        for k in 0..count {
            let off = k * pgsize;
            let a = iova + off;
            // A table pinned by a reservation where the leaf would go: `busy`, before
            // anything else (its path exists, so nothing would be allocated).
            if level < 3 && self.tables.pinned(level + 1, a) {
                return Err(MapError::new(ErrorKind::Busy, off));
            }
            // A leaf overlapping the page either is larger and covers it (the walk meets it
            // before allocating anything), or lies at the page's level or below, in which case
            // every node on the way to the slot exists already (a leaf's enclosing nodes
            // exist): in both cases `exists` with no allocation.
            if !clear && self.overlaps(a, pgsize) {
                return Err(MapError::new(ErrorKind::Exists, off));
            }
            self.tables.ensure_path(a, level, &mut seen).map_err(|_| {
                let kind = if std::mem::take(&mut self.tables.dry) {
                    ErrorKind::Budget
                } else {
                    ErrorKind::Nomem
                };
                MapError::new(kind, off)
            })?;
            // An empty table at the slot (no leaf overlaps) is replaced: it and its subtree go.
            if level < 3 && self.tables.contains(level + 1, a) {
                self.tables.free_inside(a, a + pgsize, level + 1);
            }
            self.leaves.insert(
                a,
                Leaf {
                    pa: pa + off,
                    size: pgsize,
                    prot,
                },
            );
        }
        Ok(size)
    }

    /// Ok(bytes) even when stopped by a hole or a larger leaf; Err only for argument errors.
    /// Afterwards every table whose whole span lies inside `[iova, iova + bytes)` is freed.
    pub fn unmap(&mut self, iova: u64, pgsize: u64, count: u64) -> Result<u64, ErrorKind> {
        self.check_pages(iova, pgsize, count)?;
        Self::range_size(iova, pgsize, count, self.ias_end())?;
        let done = self.unmap_pages(iova, pgsize, count);
        if done > 0 {
            self.tables.free_inside(iova, iova + done, 0);
        }
        Ok(done)
    }

    /// The page walk of unmap: the bytes counted.
    fn unmap_pages(&mut self, iova: u64, pgsize: u64, count: u64) -> u64 {
        for k in 0..count {
            let start = iova + k * pgsize;
            let end = start + pgsize;
            // Leaves are aligned to their sizes and sizes divide each other, so a leaf larger
            // than the page that overlaps it covers it (block splitting is not done: stop).
            if let Some((a, l)) = self.leaf_entry(start) {
                if l.size > pgsize {
                    return k * pgsize;
                }
                if a == start && l.size == pgsize {
                    // The usual case: exactly this page, and (leaves being disjoint) nothing
                    // else inside it.
                    self.leaves.remove(&a);
                    if self.log_on {
                        self.removed.push((a, l.pa, l.size, l.prot));
                    }
                    continue;
                }
            }
            let mut any = false;
            while let Some((&a, &l)) = self.leaves.range(start..end).next() {
                self.leaves.remove(&a);
                if self.log_on {
                    self.removed.push((a, l.pa, l.size, l.prot));
                }
                any = true;
            }
            if !any {
                return k * pgsize; // a hole
            }
        }
        count * pgsize
    }

    /// Output address of the byte `iova`, or None (also at or beyond 2^IAS).
    pub fn lookup(&self, iova: u64) -> Option<u64> {
        self.leaf_at(iova)
            .map(|(start, pa, _, _)| pa + (iova - start))
    }

    /// The leaf covering iova: (leaf start iova, leaf pa, leaf size, prot).
    pub fn leaf_at(&self, iova: u64) -> Option<(u64, u64, u64, Prot)> {
        if iova >= self.ias_end() {
            return None;
        }
        self.leaf_entry(iova)
            .map(|(a, l)| (a, l.pa, l.size, l.prot))
    }

    /// Number of leaves (without walking them).
    pub fn leaf_count(&self) -> usize {
        self.leaves.len()
    }

    /// All leaves in ascending iova order: (iova, pa, size, prot).
    pub fn leaves(&self) -> impl Iterator<Item = (u64, u64, u64, Prot)> + '_ {
        self.leaves.iter().map(|(&a, l)| (a, l.pa, l.size, l.prot))
    }

    /// The leaves overlapping `[lo, hi)`, ascending: (iova, pa, size, prot).
    pub fn leaves_overlapping(
        &self,
        lo: u64,
        hi: u64,
    ) -> impl Iterator<Item = (u64, u64, u64, Prot)> + '_ {
        // Only the last leaf starting below `lo` can reach into the range.
        let first = self
            .leaf_entry(lo)
            .filter(|&(a, _)| a < lo && lo < hi)
            .map(|(a, l)| (a, l.pa, l.size, l.prot));
        let rest = (lo < hi)
            .then(|| self.leaves.range(lo..hi))
            .into_iter()
            .flatten()
            .map(|(&a, l)| (a, l.pa, l.size, l.prot));
        first.into_iter().chain(rest)
    }

    /// Clears everything (a "free everything" op): every leaf is removed and every table
    /// freed (the root stays).
    pub fn clear(&mut self) {
        let leaves = std::mem::take(&mut self.leaves);
        if self.log_on {
            self.removed
                .extend(leaves.into_iter().map(|(a, l)| (a, l.pa, l.size, l.prot)));
        }
        self.tables.free_all();
        self.reservations.clear();
    }

    /// The leaf containing `iova`: the last one starting at or before it, if it reaches it.
    fn leaf_entry(&self, iova: u64) -> Option<(u64, Leaf)> {
        let (&a, &l) = self.leaves.range(..=iova).next_back()?;
        (iova - a < l.size).then_some((a, l))
    }

    /// Whether any leaf overlaps `[start, start + len)`. Leaves are disjoint, so sorted by
    /// start they are sorted by end too: only the last one starting before the end can reach in.
    fn overlaps(&self, start: u64, len: u64) -> bool {
        let end = start + len;
        self.leaves
            .range(..end)
            .next_back()
            .is_some_and(|(&a, l)| a + l.size > start)
    }
}
