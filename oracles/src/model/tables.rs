//! The abstract table tree of the model: which non-root tables exist, as NODES
//! `(level, base)`, plus the allocator's accounting (counters, `fail_nth`, the 2^OAS
//! placement limit). Written from docs/SEMANTICS.md and the allocator's documented counting
//! rules, never from the engine's walker or descriptors: a node is only a level and the
//! span of input addresses it translates.
//!
//! A node at lookup level `l` (start_level + 1 ..= 3) spans `2^level_shift(l - 1)` bytes (one
//! entry of its parent) from `base`, aligned to that span. The root always exists and is not
//! a node. Invariant (kept by the model): a node's parent node exists (for levels below
//! start_level + 1), and every leaf's enclosing nodes exist.

use std::collections::{BTreeMap, BTreeSet};

/// Expected allocator counters, with the engine's meanings (tables, a concatenated root
/// counting once). Always `allocated == live + deferred + freed`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ModelCounters {
    /// Allocations ever made, including the root.
    pub allocated: u64,
    /// Tables in use: nodes + the root.
    pub live: u64,
    /// Tables freed since the last grace period.
    pub deferred: u64,
    /// Tables released ever by grace periods.
    pub freed: u64,
    /// Allocation attempts refused (injected failure or the 2^OAS limit).
    pub failed: u64,
}

/// A table allocation the model predicts to fail (the map stops with `nomem`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AllocFailed;

/// Where tables can go: how many host pages fit below 2^OAS after the root's, how many
/// non-root tables one page holds, and how many the root's page has room for beside it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Placement {
    pub(crate) page_cap: u64,
    pub(crate) per_page: u64,
    pub(crate) root_spare: u64,
}

/// The set of nodes and the accounting around it.
#[derive(Clone, Debug)]
pub(crate) struct Tables {
    start_level: u32,
    /// The deepest level (3 for LPAE, 2 for armv7s).
    last_level: u32,
    /// `span_shift[l]`: log2 of the span of a node at level `l` (valid for l > start).
    span_shift: [u32; 4],
    /// `nodes[l]`: bases of the nodes at level `l`.
    nodes: [BTreeSet<u64>; 4],
    count: u64,
    counters: ModelCounters,
    /// Attempts left until the one that fails (1 = the next one); None = disarmed.
    fail_nth: Option<u64>,
    /// Host pages and slots for non-root tables.
    place: Placement,
    /// Host pages ever carved from memory beside the root's (free slots are reused first).
    frames_backed: u64,
    /// Nodes freed since the last `take_freed`: (level, base, span).
    freed_log: Vec<(u32, u64, u64)>,
    log_on: bool,
    /// Reservation pins per node `(level, base)`; absent = 0.
    pub(crate) pins: BTreeMap<(u32, u64), u32>,
    /// Frames set aside in preallocation pools.
    pub(crate) pooled: u64,
    /// While a job runs: the pages left in its pool, the only source of tables.
    pub(crate) drawing: Option<u64>,
    /// Set when an allocation failed because the pool being drawn from was empty.
    pub(crate) dry: bool,
}

impl Tables {
    /// `level_shift(l)`: log2 of one entry's span at level `l`; `place`: where non-root
    /// tables fit.
    pub(crate) fn new(
        start_level: u32,
        last_level: u32,
        level_shift: impl Fn(u32) -> u32,
        place: Placement,
    ) -> Self {
        let mut span_shift = [0; 4];
        for (l, s) in span_shift
            .iter_mut()
            .enumerate()
            .take(last_level as usize + 1)
            .skip(start_level as usize + 1)
        {
            *s = level_shift(l as u32 - 1);
        }
        Tables {
            start_level,
            last_level,
            span_shift,
            nodes: Default::default(),
            count: 0,
            // The root is allocated when the domain is created.
            counters: ModelCounters {
                allocated: 1,
                live: 1,
                ..ModelCounters::default()
            },
            fail_nth: None,
            place,
            frames_backed: 0,
            freed_log: Vec::new(),
            log_on: true,
            pins: BTreeMap::new(),
            pooled: 0,
            drawing: None,
            dry: false,
        }
    }

    /// Node levels: start_level + 1 ..= last level.
    fn levels(&self) -> std::ops::RangeInclusive<u32> {
        self.start_level + 1..=self.last_level
    }

    /// Span in bytes of a node at `level` (> start level).
    pub(crate) fn span(&self, level: u32) -> u64 {
        1 << self.span_shift[level as usize]
    }

    pub(crate) fn frames_backed(&self) -> u64 {
        self.frames_backed
    }

    pub(crate) fn counters(&self) -> ModelCounters {
        self.counters
    }

    pub(crate) fn set_fail_nth(&mut self, n: Option<u64>) {
        self.fail_nth = n.filter(|&n| n > 0);
    }

    pub(crate) fn set_logging(&mut self, on: bool) {
        self.log_on = on;
        if !on {
            self.freed_log = Vec::new();
        }
    }

    pub(crate) fn contains(&self, level: u32, base: u64) -> bool {
        self.nodes[level as usize].contains(&base)
    }

    /// Whether a node at `level` has its base in `[lo, hi)`.
    pub(crate) fn any_node_in(&self, level: u32, lo: u64, hi: u64) -> bool {
        lo < hi && self.nodes[level as usize].range(lo..hi).next().is_some()
    }

    /// Every node, by level then base.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, u64)> + '_ {
        self.levels()
            .flat_map(move |l| self.nodes[l as usize].iter().map(move |&b| (l, b)))
    }

    pub(crate) fn len(&self) -> u64 {
        self.count
    }

    /// Table slots free now: every slot of the pages carved beside the root's, and the
    /// root page's spare ones, that no table (live or deferred) and no pool holds. Which
    /// page a free slot is in does not matter: the allocator takes a free slot or a free
    /// page before fresh memory.
    fn reusable(&self) -> u64 {
        self.frames_backed * self.place.per_page + self.place.root_spare
            - self.count
            - self.counters.deferred
            - self.pooled
    }

    /// One allocation attempt, in the allocator's order: the 2^OAS limit (when no released
    /// frame can be reused) refuses before the injected failure is consulted; then
    /// `fail_nth` counts the attempt down.
    fn allocate(&mut self, level: u32, base: u64) -> Result<(), AllocFailed> {
        if let Some(left) = self.drawing {
            // A running job: its pool or nothing (no limit, no injected failure).
            if left == 0 {
                self.dry = true;
                return Err(AllocFailed);
            }
            self.drawing = Some(left - 1);
            self.pooled -= 1;
            self.insert_node(level, base);
            return Ok(());
        }
        let reusable = self.reusable();
        if reusable == 0 && self.frames_backed >= self.place.page_cap {
            self.counters.failed += 1;
            return Err(AllocFailed);
        }
        if let Some(n) = self.fail_nth {
            if n == 1 {
                self.fail_nth = None;
                self.counters.failed += 1;
                return Err(AllocFailed);
            }
            self.fail_nth = Some(n - 1);
        }
        if reusable == 0 {
            self.frames_backed += 1;
        }
        self.insert_node(level, base);
        Ok(())
    }

    fn insert_node(&mut self, level: u32, base: u64) {
        let fresh = self.nodes[level as usize].insert(base);
        debug_assert!(fresh, "node L{level} {base:#x} allocated twice");
        self.count += 1;
        self.counters.allocated += 1;
        self.counters.live += 1;
    }

    /// Sets `n` frames aside in one batch (a job's pool, a reservation's tables): the room
    /// (reusable frames plus fresh ones below 2^OAS) is checked first, then the batch is one
    /// `fail_nth` attempt. Nothing is taken on failure. `n == 0` is no attempt at all.
    pub(crate) fn reserve_frames(&mut self, n: u64) -> Result<(), AllocFailed> {
        if n == 0 {
            return Ok(());
        }
        let reusable = self.reusable();
        let fresh = (self.place.page_cap - self.frames_backed) * self.place.per_page;
        if n > reusable + fresh {
            self.counters.failed += 1;
            return Err(AllocFailed);
        }
        if let Some(k) = self.fail_nth {
            if k == 1 {
                self.fail_nth = None;
                self.counters.failed += 1;
                return Err(AllocFailed);
            }
            self.fail_nth = Some(k - 1);
        }
        self.frames_backed += n.saturating_sub(reusable).div_ceil(self.place.per_page);
        self.pooled += n;
        Ok(())
    }

    /// Leftover pool frames go back (they become reusable).
    pub(crate) fn return_frames(&mut self, n: u64) {
        self.pooled -= n;
    }

    /// Span bases of the nodes at `level` whose span meets `[lo, hi)`.
    pub(crate) fn bases_meeting(&self, level: u32, lo: u64, hi: u64) -> impl Iterator<Item = u64> {
        let span = self.span(level);
        let first = lo & !(span - 1);
        (0..)
            .map(move |k| first + k * span)
            .take_while(move |&b| b < hi)
    }

    pub(crate) fn pinned(&self, level: u32, base: u64) -> bool {
        self.pins.contains_key(&(level, base))
    }

    /// Base of the first pinned node at `level` with its base in `[lo, hi)`.
    pub(crate) fn first_pinned(&self, level: u32, lo: u64, hi: u64) -> Option<u64> {
        if lo >= hi {
            return None;
        }
        self.pins
            .range((level, lo)..(level, hi))
            .next()
            .map(|(&(_, b), _)| b)
    }

    /// Frees (defers) the one node `(level, base)`.
    pub(crate) fn free_node(&mut self, level: u32, base: u64) {
        let removed = self.nodes[level as usize].remove(&base);
        debug_assert!(removed);
        if self.log_on {
            self.freed_log.push((level, base, self.span(level)));
        }
        self.count -= 1;
        self.counters.live -= 1;
        self.counters.deferred += 1;
    }

    /// Allocates the node `(level, base)` from a batch reserved before.
    pub(crate) fn insert_reserved(&mut self, level: u32, base: u64) {
        self.pooled -= 1;
        self.insert_node(level, base);
    }

    /// Makes sure every node on the way from the root to a leaf at `leaf_level` covering
    /// `iova` exists, allocating the missing ones top-down. `seen[l]` caches the base last
    /// ensured at level `l` during one map call (u64::MAX: none), so a run of pages in one
    /// table costs one check per level change. On failure the nodes allocated before stay.
    pub(crate) fn ensure_path(
        &mut self,
        iova: u64,
        leaf_level: u32,
        seen: &mut [u64; 4],
    ) -> Result<(), AllocFailed> {
        for l in self.start_level + 1..=leaf_level {
            let base = iova & !(self.span(l) - 1);
            if seen[l as usize] == base {
                continue;
            }
            if !self.contains(l, base) {
                self.allocate(l, base)?;
            }
            seen[l as usize] = base;
        }
        Ok(())
    }

    /// Frees (defers) every node at `min_level` or deeper whose whole span lies inside
    /// `[lo, hi)`; returns how many. One range query per level.
    pub(crate) fn free_inside(&mut self, lo: u64, hi: u64, min_level: u32) -> u64 {
        let mut n = 0;
        for l in min_level.max(self.start_level + 1)..=self.last_level {
            let span = self.span(l);
            if hi.saturating_sub(lo) < span {
                continue;
            }
            // Bases are aligned to the span: base >= lo and base + span <= hi.
            let last = hi - span;
            let set = &mut self.nodes[l as usize];
            let pins = &self.pins;
            // Pinned nodes (reservations) are never freed by an unmap.
            let gone: Vec<u64> = set
                .range(lo..=last)
                .copied()
                .filter(|&b| !pins.contains_key(&(l, b)))
                .collect();
            for &b in &gone {
                set.remove(&b);
            }
            if self.log_on {
                self.freed_log.extend(gone.iter().map(|&b| (l, b, span)));
            }
            n += gone.len() as u64;
        }
        self.count -= n;
        self.counters.live -= n;
        self.counters.deferred += n;
        n
    }

    /// `free_inside(lo, hi, level)` where `lo` and `hi` are multiples of the span of a node
    /// at `level` (one slot of its parent), logged as if freed slot by slot ascending: each
    /// slot's nodes by level, then base.
    pub(crate) fn free_slots(&mut self, lo: u64, hi: u64, level: u32) {
        let mark = self.freed_log.len();
        self.free_inside(lo, hi, level);
        if self.log_on {
            let slot = self.span(level);
            self.freed_log[mark..].sort_by_key(|&(l, b, _)| (b & !(slot - 1), l, b));
        }
    }

    /// Frees every node (and drops every pin with them).
    pub(crate) fn free_all(&mut self) {
        self.pins.clear();
        for l in self.levels() {
            let set = std::mem::take(&mut self.nodes[l as usize]);
            if self.log_on {
                let span = self.span(l);
                self.freed_log.extend(set.into_iter().map(|b| (l, b, span)));
            }
        }
        self.counters.live -= self.count;
        self.counters.deferred += self.count;
        self.count = 0;
    }

    /// The grace period: deferred tables are released (and become reusable frames).
    pub(crate) fn grace_period(&mut self) {
        self.counters.freed += self.counters.deferred;
        self.counters.deferred = 0;
    }

    pub(crate) fn take_freed(&mut self) -> Vec<(u32, u64, u64)> {
        std::mem::take(&mut self.freed_log)
    }
}
