//! Reference model: the mapping state as a sparse ordered map from run start IOVA to
//! (pa, page size, page count, prot), a run being the leaves one map call added (so a map or
//! an unmap costs per run and per table touched, not per page), plus the abstract set of
//! table nodes `(level, base)` the engine must have allocated (see `tables.rs`). It knows nothing of descriptors; it computes the result
//! every map/unmap/lookup must return under docs/SEMANTICS.md, including where an injected
//! or address-limit allocation failure stops a map, and the allocator's counters.

pub mod domain_rules;
mod prealloc;
#[cfg(test)]
mod runs_tests;
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
use tables::{Placement, Tables};

/// A removed leaf: (iova, pa, size, prot).
pub type RemovedLeaf = (u64, u64, u64, Prot);

/// `count` leaves of one size at consecutive iovas (the first is the map key) and
/// consecutive pas, with one prot: what one map call adds, until an unmap splits it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Run {
    pa: u64,
    size: u64,
    count: u64,
    prot: Prot,
}

impl Run {
    /// Bytes of input address space it covers.
    fn len(&self) -> u64 {
        self.size * self.count
    }

    /// Its leaves, ascending, given its start iova: (iova, pa, size, prot).
    fn leaves(self, iova: u64) -> impl Iterator<Item = RemovedLeaf> {
        (0..self.count).map(move |k| {
            let off = k * self.size;
            (iova + off, self.pa + off, self.size, self.prot)
        })
    }
}

/// Expected state of one domain. Leaves never overlap, and each is aligned to its size.
#[derive(Clone, Debug)]
pub struct Model {
    rules: DomainRules,
    /// Host pages the root takes.
    root_pages: u64,
    sizes: Vec<u64>,
    /// Runs by start iova; disjoint.
    runs: BTreeMap<u64, Run>,
    /// Leaves in all runs.
    leaf_count: usize,
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
        // Host pages follow the root's from phys_base; one that would end above 2^OAS is an
        // allocation failure. DomainRules::new checked the root's page(s) fit. Non-root
        // tables are `table_bytes` (a granule; 1 KiB for armv7s level 2), `per_page` to a
        // host page; a root of that same size shares its page with `per_page - 1` of them,
        // any other root (concatenated, or the 16 KiB armv7s level 1) has its page(s) to
        // itself (SEMANTICS.md "Sub-page tables").
        let page = cfg.host_page().size();
        let table = rules.table_bytes();
        let per_page = page / table;
        let root_bytes = rules.root_bytes();
        let root_pages = root_bytes.div_ceil(page);
        let root_spare = if root_bytes == table { per_page - 1 } else { 0 };
        let pages_below_oas = ((1u64 << rules.oas) - cfg.phys_base) / page;
        let tables = Tables::new(
            rules.start_level,
            rules.last_level,
            |l| rules.level_shift(l),
            Placement {
                page_cap: pages_below_oas - root_pages,
                per_page,
                root_spare,
            },
        );
        Ok(Model {
            sizes: rules.page_sizes(),
            root_pages,
            rules,
            runs: BTreeMap::new(),
            leaf_count: 0,
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

    /// Host pages the allocator must have carved from memory so far: the root's, plus
    /// every page ever needed when no free table slot could be reused. An allocator that
    /// carves a fresh page while a released slot or page waits has more.
    pub fn backed_frames(&self) -> u64 {
        self.root_pages + self.tables.frames_backed()
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
        level > self.rules.start_level
            && level <= self.rules.last_level
            && self.tables.contains(level, base)
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

    /// Lookup level whose entries hold a `pgsize` leaf (pgsize is a supported page size):
    /// the shallowest level whose entry is no larger (an armv7s 64K or 16M leaf covers 16
    /// entries of level 2 or 1).
    fn leaf_level(&self, pgsize: u64) -> u32 {
        let shift = pgsize.trailing_zeros();
        (self.rules.start_level..=self.rules.last_level)
            .find(|&l| self.rules.level_shift(l) <= shift)
            .expect("supported page size has a level")
    }

    /// The validated domain facts (start level, root size) for other oracles.
    pub fn rules(&self) -> &DomainRules {
        &self.rules
    }

    /// Supported leaf sizes, ascending.
    pub fn page_sizes(&self) -> &[u64] {
        &self.sizes
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

    /// Pages are taken in ascending order (docs/SEMANTICS.md), but the model finds the page
    /// each rule stops at with range queries instead of testing every page: the first pinned
    /// table at the slot level, the first leaf overlapping the range, and one path check per
    /// group of pages sharing the table their leaves go in. No page this map adds changes
    /// what decides another page (frees at a slot leave the allocator's room unchanged), so
    /// the earliest stop found is the one the page walk meets.
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
        // Both ranges were checked above, so every page offset below is in range.
        let mut stop = count;
        let mut kind = None;
        // A table pinned by a reservation where a leaf would go: `busy`, before anything
        // else at that page (its path exists, so nothing would be allocated). Such a table
        // spans exactly one page, so its base is the page.
        if level < self.rules.last_level {
            if let Some(b) = self.tables.first_pinned(level + 1, iova, iova + size) {
                stop = (b - iova) / pgsize;
                kind = Some(ErrorKind::Busy);
            }
        }
        // A leaf overlapping a page either is larger and covers it (the walk meets it before
        // allocating anything), or lies at the page's level or below, in which case every
        // node on the way to the slot exists already (a leaf's enclosing nodes exist): in
        // both cases `exists` with no allocation. Only pages before a `busy` one count.
        if stop > 0 {
            if let Some(x) = self.first_leaf_meeting(iova, iova + stop * pgsize) {
                stop = (x - iova) / pgsize;
                kind = Some(ErrorKind::Exists);
            }
        }
        // The path to each page that passed, allocating top-down: the first page of each
        // group sharing the table its leaves go in is the only one that can allocate (the
        // others find every node of their path ensured), so it is where a failure stops.
        if level > self.rules.start_level {
            let group = self.tables.span(level);
            let lim = iova + stop * pgsize;
            let mut seen = [u64::MAX; 4];
            let mut a = iova;
            while a < lim {
                if self.tables.ensure_path(a, level, &mut seen).is_err() {
                    stop = (a - iova) / pgsize;
                    kind = Some(if std::mem::take(&mut self.tables.dry) {
                        ErrorKind::Budget
                    } else {
                        ErrorKind::Nomem
                    });
                    break;
                }
                a = (a & !(group - 1)) + group;
            }
        }
        let done = stop * pgsize;
        // An empty table at a mapped page's slot (no leaf overlaps) is replaced: it and its
        // subtree go, logged page by page as the walk meets them.
        if level < self.rules.last_level && done > 0 {
            self.tables.free_slots(iova, iova + done, level + 1);
        }
        if stop > 0 {
            self.runs.insert(
                iova,
                Run {
                    pa,
                    size: pgsize,
                    count: stop,
                    prot,
                },
            );
            self.leaf_count += stop as usize;
        }
        match kind {
            None => Ok(size),
            Some(k) => Err(MapError::new(k, done)),
        }
    }

    /// Ok(bytes) even when stopped by a hole or a larger leaf; Err only for argument errors.
    /// Afterwards every table whose whole span lies inside `[iova, iova + bytes)` is freed.
    pub fn unmap(&mut self, iova: u64, pgsize: u64, count: u64) -> Result<u64, ErrorKind> {
        self.check_pages(iova, pgsize, count)?;
        let size = Self::range_size(iova, pgsize, count, self.ias_end())?;
        let done = self.unmap_extent(iova, iova + size, pgsize) - iova;
        if done > 0 {
            // Every leaf inside the counted pages goes, in ascending order (the order the
            // page walk removes them in).
            self.remove_range(iova, iova + done);
            self.tables.free_inside(iova, iova + done, 0);
        }
        Ok(done)
    }

    /// The page walk of unmap over `[iova, end)`, run by run: where it stops. A page counts
    /// when a leaf no larger than pgsize starts inside it; it stops at the first page that
    /// has none (a hole) or that a larger leaf covers (block splitting is not done). Leaves
    /// are aligned to their sizes and sizes divide each other, so a run of leaves no larger
    /// than pgsize fills every page from the one holding its start to the one holding its
    /// last leaf, and a run of larger leaves starts on a page boundary.
    fn unmap_extent(&self, iova: u64, end: u64, pgsize: u64) -> u64 {
        let mut cursor = iova; // the first page not counted yet
        let from = self.run_at(iova).map_or(iova, |(a, _)| a);
        for (&a, r) in self.runs.range(from..end) {
            if cursor >= end {
                break;
            }
            if a.max(iova) & !(pgsize - 1) > cursor || r.size > pgsize {
                break;
            }
            let run_end = (a + r.len()).next_multiple_of(pgsize);
            cursor = cursor.max(run_end.min(end));
        }
        cursor
    }

    /// Removes every leaf inside `[lo, hi)` (a run reaching across either end is split there;
    /// both ends lie on its leaf boundaries), logging them in ascending order.
    fn remove_range(&mut self, lo: u64, hi: u64) {
        self.split_run(lo);
        self.split_run(hi);
        let keys: Vec<u64> = self.runs.range(lo..hi).map(|(&a, _)| a).collect();
        for a in keys {
            let r = self.runs.remove(&a).expect("key listed above");
            self.leaf_count -= r.count as usize;
            if self.log_on {
                self.removed.extend(r.leaves(a));
            }
        }
    }

    /// Splits the run reaching across `x` (if any) into the part below and the part from
    /// `x`; `x` must be one of its leaf boundaries.
    fn split_run(&mut self, x: u64) {
        let Some((a, r)) = self.run_at(x) else {
            return;
        };
        if a == x {
            return;
        }
        let off = x - a;
        debug_assert!(off.is_multiple_of(r.size), "split inside a leaf");
        let below = off / r.size;
        self.runs.insert(a, Run { count: below, ..r });
        self.runs.insert(
            x,
            Run {
                pa: r.pa + off,
                count: r.count - below,
                ..r
            },
        );
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
        let (a, r) = self.run_at(iova)?;
        let off = (iova - a) & !(r.size - 1);
        Some((a + off, r.pa + off, r.size, r.prot))
    }

    /// Number of leaves (without walking them).
    pub fn leaf_count(&self) -> usize {
        self.leaf_count
    }

    /// All leaves in ascending iova order: (iova, pa, size, prot).
    pub fn leaves(&self) -> impl Iterator<Item = (u64, u64, u64, Prot)> + '_ {
        self.runs.iter().flat_map(|(&a, r)| r.leaves(a))
    }

    /// The `n`-th leaf in ascending iova order (0-based), as `leaves().nth(n)` but one step
    /// per run.
    pub fn leaf_nth(&self, mut n: usize) -> Option<(u64, u64, u64, Prot)> {
        for (&a, r) in &self.runs {
            if (n as u64) < r.count {
                let off = n as u64 * r.size;
                return Some((a + off, r.pa + off, r.size, r.prot));
            }
            n -= r.count as usize;
        }
        None
    }

    /// The mapping as runs, ascending: (iova, pa, page size, page count, prot), each standing
    /// for `count` leaves of one size at consecutive iovas and pas with one prot. How leaves
    /// are grouped into runs depends on the calls that made them (adjacent runs are not
    /// merged), so compare the leaves runs stand for, not the runs themselves.
    pub fn runs(&self) -> impl Iterator<Item = (u64, u64, u64, u64, Prot)> + '_ {
        self.runs
            .iter()
            .map(|(&a, r)| (a, r.pa, r.size, r.count, r.prot))
    }

    /// The leaves overlapping `[lo, hi)`, ascending: (iova, pa, size, prot).
    pub fn leaves_overlapping(
        &self,
        lo: u64,
        hi: u64,
    ) -> impl Iterator<Item = (u64, u64, u64, Prot)> + '_ {
        self.runs_meeting(lo, hi).flat_map(move |(a, r)| {
            // The leaves of the run that start below `hi` and end above `lo`.
            let first = lo.saturating_sub(a) / r.size;
            let last = (hi - a).div_ceil(r.size).min(r.count);
            (first..last).map(move |k| {
                let off = k * r.size;
                (a + off, r.pa + off, r.size, r.prot)
            })
        })
    }

    /// The runs meeting `[lo, hi)`, ascending, whole.
    fn runs_meeting(&self, lo: u64, hi: u64) -> impl Iterator<Item = (u64, Run)> + '_ {
        // Only the last run starting at or below `lo` can reach it from below.
        let from = self.run_at(lo).map_or(lo, |(a, _)| a);
        (lo < hi)
            .then(|| self.runs.range(from..hi))
            .into_iter()
            .flatten()
            .map(|(&a, &r)| (a, r))
    }

    /// Whether a leaf larger than `size` meets `[lo, hi)`.
    pub(crate) fn leaf_larger_meeting(&self, lo: u64, hi: u64, size: u64) -> bool {
        self.runs_meeting(lo, hi).any(|(_, r)| r.size > size)
    }

    /// Whether any leaf meets `[lo, hi)`.
    pub(crate) fn any_leaf_meeting(&self, lo: u64, hi: u64) -> bool {
        self.runs_meeting(lo, hi).next().is_some()
    }

    /// Clears everything (a "free everything" op): every leaf is removed and every table
    /// freed (the root stays).
    pub fn clear(&mut self) {
        let runs = std::mem::take(&mut self.runs);
        self.leaf_count = 0;
        if self.log_on {
            self.removed
                .extend(runs.into_iter().flat_map(|(a, r)| r.leaves(a)));
        }
        self.tables.free_all();
        self.reservations.clear();
    }

    /// The run holding the byte `iova`: the last one starting at or before it, if it
    /// reaches it.
    fn run_at(&self, iova: u64) -> Option<(u64, Run)> {
        let (&a, &r) = self.runs.range(..=iova).next_back()?;
        (iova - a < r.len()).then_some((a, r))
    }

    /// Where the first leaf meeting `[start, end)` (start < end) begins, clamped to `start`.
    fn first_leaf_meeting(&self, start: u64, end: u64) -> Option<u64> {
        if self.run_at(start).is_some() {
            return Some(start);
        }
        self.runs.range(start..end).next().map(|(&a, _)| a)
    }
}
