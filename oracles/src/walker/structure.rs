//! Tables -> model and allocator: walks every table reachable from the root once and checks
//! it against the allocator's metadata, the counters and the model.

use std::collections::HashSet;

use ptfuzz_engine::alloc::{FrameState, PageState, POISON};
use ptfuzz_engine::prot::Prot;

use super::params::WalkParams;
use super::range::{
    nonzero, other_than, table_entries, table_words as words, Entry, LeafMatch, CHUNK,
};
use super::view::TableView;
use crate::divergence::Divergence;
use crate::finding::{StructureFinding as S, WalkerFinding};
use crate::model::Model;
use crate::recycle::Spares;

const POISONS: [u64; CHUNK] = [POISON; CHUNK];

/// What the structure walk found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StructureStats {
    /// Reachable tables (a concatenated root counts once).
    pub tables: u64,
    /// Valid leaf descriptors.
    pub leaves: u64,
}

/// Where the root lies and what the allocator says of it, in any format: below `limit`,
/// aligned to its size, a Live table of its level counting `bytes / unit` frames, and the
/// frames after its first its tails.
pub(crate) fn check_root<T: TableView>(
    t: &T,
    level: u32,
    bytes: u64,
    unit: u64,
    limit: u64,
) -> Result<(), Divergence> {
    let root = t.root();
    if root + bytes > limit {
        return Err(S::RootBeyondOas {
            root,
            end: root + bytes,
            limit,
        }
        .into());
    }
    if !root.is_multiple_of(bytes) {
        return Err(S::RootMisaligned { root, size: bytes }.into());
    }
    let frames = bytes / unit;
    match t.frame(root) {
        Some(m)
            if m.state == FrameState::Live
                && m.level as u32 == level
                && m.frames as u64 == frames => {}
        meta => {
            return Err(S::RootMetadata {
                root,
                level,
                frames,
                meta,
            }
            .into())
        }
    }
    for k in 1..frames {
        let pa = root + k * unit;
        match t.frame(pa) {
            Some(m) if m.state == FrameState::Tail => {}
            meta => return Err(S::RootTail { root, k, pa, meta }.into()),
        }
    }
    Ok(())
}

/// Walks every table reachable from the root (device view), once each, in
/// O(tables x entries per table), and checks:
/// - the root is a Live table of the start level spanning its concatenated frames (the others
///   Tail), aligned to its size, with nothing written in its frame beyond its entries;
/// - every table descriptor points to a Live single-frame table of the next level, reached
///   only once, holding no poison; no descriptor is malformed (RES0 bits, L3 `01`, a block
///   where the granule allows none, OA beyond OAS) or has table attribute bits;
/// - each table's metadata `live` count equals its valid entries;
/// - every leaf is exactly a model leaf (start, size, pa, attributes), and their numbers agree;
/// - counters: allocated == live + deferred + freed, live == reachable tables == Live frames,
///   deferred == the deferred list; every Live frame is reachable (no leak);
/// - every Free frame still holds only poison (nothing wrote into a freed table).
pub fn check_structure<T: TableView>(
    t: &T,
    p: &WalkParams,
    model: &Model,
) -> Result<StructureStats, Divergence> {
    let granule = 1u64 << p.g;
    let root = t.root();
    let root_tables = (p.root_entries() >> p.stride()).max(1);

    let root_bytes = root_tables * granule;
    check_root(t, p.start_level, root_bytes, granule, 1u64 << p.oas)?;
    let frame = words(t, root, granule / 8)?;
    let n = p.root_entries() as usize;
    if let Some((i, _)) = nonzero(&frame[n.min(frame.len())..]).next() {
        let i = n + i;
        return Err(S::RootBeyondEntries {
            root,
            entries: n,
            pa: root + 8 * i as u64,
            word: frame[i],
        }
        .into());
    }

    let counters = t.counters();
    let mut seen = take_seen();
    seen.reserve(counters.live as usize + 1);
    seen.insert(root);
    let mut walk = Walk {
        seen,
        stats: StructureStats::default(),
        leaves: LeafMatch::new(model.leaves(), p.stage2),
    };
    walk.table(t, p, root, p.start_level, 0)?;
    let Walk {
        seen,
        stats,
        leaves,
    } = walk;
    let model_leaves = model.leaf_count() as u64;
    if stats.leaves != model_leaves {
        return Err(WalkerFinding::LeafCount {
            tables: stats.leaves,
            model: model_leaves,
        }
        .into());
    }
    let checked = leaves
        .finish()
        .and_then(|()| check_allocator(t, granule, &seen));
    give_seen(seen);
    checked.map(|()| stats)
}

/// An empty table set, warm from the last structure walk if there was one.
pub(crate) fn take_seen() -> HashSet<u64, crate::FixedState> {
    Spares::take(&SPARE_SEEN).unwrap_or_default()
}

/// Keeps `seen` for the next structure walk: emptied, and trimmed (clearing takes time in
/// the capacity).
pub(crate) fn give_seen(mut seen: HashSet<u64, crate::FixedState>) {
    seen.clear();
    seen.shrink_to(SEEN_KEEP);
    Spares::give(&SPARE_SEEN, seen);
}

/// Tables the recycled set keeps room for.
const SEEN_KEEP: usize = 256;

thread_local! {
    /// The table set of the last structure walk (crate::recycle).
    static SPARE_SEEN: Spares<HashSet<u64, crate::FixedState>> = const { Spares::new(1) };
}

/// The state of one structure walk: tables reached, totals, and the model's leaves, matched
/// in ascending order as the in-order walk finds them.
struct Walk<I: Iterator<Item = (u64, u64, u64, Prot)>> {
    seen: HashSet<u64, crate::FixedState>,
    stats: StructureStats,
    leaves: LeafMatch<I>,
}

impl<I: Iterator<Item = (u64, u64, u64, Prot)>> Walk<I> {
    /// The table at `table` (lookup level `level`, first entry at input address `base`) and
    /// everything below it, entries in ascending order.
    fn table<T: TableView>(
        &mut self,
        t: &T,
        p: &WalkParams,
        table: u64,
        level: u32,
        base: u64,
    ) -> Result<(), Divergence> {
        self.stats.tables += 1;
        let mut valid = 0u32;
        table_entries(t, p, table, level, base, 0..p.entries_at(level), |e| {
            valid += 1;
            match *e {
                Entry::Table { addr, pa, iova } => {
                    if !self.seen.insert(addr) {
                        return Err(S::ReachableTwice {
                            table: addr,
                            desc_pa: pa,
                            iova,
                        }
                        .into());
                    }
                    self.table(t, p, addr, level + 1, iova)
                }
                Entry::Leaf(ref l) => {
                    self.stats.leaves += 1;
                    self.leaves.found(l)
                }
            }
        })?;
        let meta_live = t.frame(table).map(|m| m.live);
        if meta_live != Some(valid) {
            return Err(S::LiveEntries {
                level,
                table,
                iova: base,
                valid,
                meta_live,
            }
            .into());
        }
        Ok(())
    }
}

/// Counters add up, every Live table was reached, deferred tables are listed, and free
/// frames (table units of `unit` bytes: a granule, 1 KiB for armv7s) still hold nothing but
/// poison.
pub(crate) fn check_allocator<T: TableView>(
    t: &T,
    unit: u64,
    seen: &HashSet<u64, crate::FixedState>,
) -> Result<(), Divergence> {
    let c = t.counters();
    if c.allocated != c.live + c.deferred + c.freed {
        return Err(S::CountersInconsistent {
            allocated: c.allocated,
            live: c.live,
            deferred: c.deferred,
            freed: c.freed,
        }
        .into());
    }
    let mut live = 0u64;
    for pa in t.live_tables() {
        live += 1;
        if !seen.contains(&pa) {
            let level = t.frame(pa).map(|m| m.level);
            return Err(S::Leak { pa, level }.into());
        }
    }
    if c.live != seen.len() as u64 {
        return Err(S::LiveCounter {
            counter: c.live,
            reachable: seen.len() as u64,
        }
        .into());
    }
    if live != c.live {
        return Err(S::LiveMetadata {
            metadata: live,
            counter: c.live,
        }
        .into());
    }
    let deferred = t.deferred_count();
    if deferred != c.deferred {
        return Err(S::DeferredCount {
            waiting: deferred,
            counter: c.deferred,
        }
        .into());
    }
    let granule = unit;
    check_placement(t, granule, seen)?;
    let (mut frame, _) = t.mem_range();
    while let Some(m) = t.frame(frame) {
        if m.state == FrameState::Free {
            let w = words(t, frame, granule / 8)?;
            if let Some((i, d)) = other_than(w, &POISONS).next() {
                return Err(S::FreeFrameWritten {
                    frame,
                    pa: frame + 8 * i as u64,
                    word: d,
                    poison: POISON,
                }
                .into());
            }
        }
        frame += granule;
    }
    Ok(())
}

/// Host pages (`hostpage=`) hold several tables: no two tables in use (reachable, or
/// waiting for their grace period) overlap, and no host page holding one is Free (on the
/// page free list, where the next allocation of any size may take it whole).
fn check_placement<T: TableView>(
    t: &T,
    granule: u64,
    seen: &HashSet<u64, crate::FixedState>,
) -> Result<(), Divergence> {
    let Some(page_shift) = t.host_page_shift() else {
        return Ok(());
    };
    let mut spans: Vec<(u64, u64, &'static str)> = Vec::with_capacity(seen.len());
    let reached = seen.iter().map(|&pa| (pa, "reachable"));
    for (pa, what) in reached.chain(t.deferred_tables().map(|pa| (pa, "deferred"))) {
        let units = t.frame(pa).map_or(1, |m| u64::from(m.frames.max(1)));
        let end = pa + units * granule;
        let mut page = pa >> page_shift << page_shift;
        while page < end {
            match t.host_page(page) {
                Some(i) if i.state != PageState::Free => {}
                i => {
                    return Err(S::TableInFreePage {
                        what,
                        pa,
                        page,
                        state: i.map(|i| i.state),
                    }
                    .into())
                }
            }
            page += 1 << page_shift;
        }
        spans.push((pa, end, what));
    }
    spans.sort_unstable();
    for w in spans.windows(2) {
        let ((a, a_end, a_what), (b, _, b_what)) = (w[0], w[1]);
        if b < a_end {
            return Err(S::TablesOverlap {
                first: a,
                first_end: a_end,
                first_what: a_what,
                second: b,
                second_what: b_what,
                page: b >> page_shift << page_shift,
            }
            .into());
        }
    }
    Ok(())
}
