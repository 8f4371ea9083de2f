//! Breaks not yet invalidated: cached entries (worst case) whose descriptor was cleared or
//! became unreachable. Indexed by slot and, per level, by IOVA, so that an invalidation
//! finds the entries it covers in O(log n + hits): within one level all entries have the
//! same span, so the ones overlapping a range have their base in one contiguous key range.
//! The per-level index is a vector sorted on demand: breaks mostly arrive in IOVA order (an
//! unmap walks upwards) and leave in bulk (one invalidation covers them all), which a vector
//! does in a fraction of a B-tree's time.

use std::collections::HashMap;

use super::entry::EntryKind;

/// One cached entry that is no longer what the tables say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Break {
    /// Sequence number of the event that made it stale.
    pub seq: u64,
    /// Physical address of the descriptor word.
    pub slot: u64,
    pub kind: EntryKind,
    pub level: u32,
    /// First IOVA of the entry's span.
    pub iova: u64,
    /// log2 of the entry's span.
    pub shift: u32,
    /// The descriptor value the cache may still hold.
    pub old: u64,
    /// Set when the entry itself was not written but a table above it was unlinked: the
    /// slot of that table's (cleared) parent entry.
    pub under: Option<u64>,
    /// A leaf only an invalidation of its whole span surely evicts (a short-descriptor
    /// repeated leaf, `format.rs`).
    pub whole: bool,
}

impl Break {
    pub fn span(&self) -> u64 {
        1u64 << self.shift
    }

    /// Last IOVA of the span (inclusive).
    pub fn last(&self) -> u64 {
        self.iova.saturating_add(self.span() - 1)
    }
}

/// What an invalidation covers.
#[derive(Clone, Copy, Debug)]
pub enum Cover {
    /// Leaf entries overlapping `[lo, hi]`, and table entries whose whole span lies inside
    /// it (Leaf=0). A walk cache may hold a table entry for any address the entry covers
    /// (issue 13: worst case across the span), so only an invalidation of the whole span
    /// is sure to evict it, as Linux's `io_pgtable_tlb_flush_walk` of the entry's block size
    /// does.
    Walk { lo: u64, hi: u64 },
    /// Leaf entries overlapping `[lo, hi]` at `level`, or at any level when `None` (Leaf=1).
    Leaves {
        lo: u64,
        hi: u64,
        level: Option<u32>,
    },
}

#[derive(Debug, Default)]
pub struct Pending {
    by_slot: HashMap<u64, Break, crate::FixedState>,
    /// Per level 0..=3: (iova, slot), distinct.
    by_level: [Level; 4],
}

/// One level's (iova, slot) keys, sorted whenever a range is asked for.
#[derive(Debug, Default)]
struct Level {
    keys: Vec<(u64, u64)>,
    sorted: bool,
}

impl Level {
    fn push(&mut self, key: (u64, u64)) {
        if self.keys.last().is_some_and(|&last| last > key) {
            self.sorted = false;
        } else if self.keys.is_empty() {
            self.sorted = true;
        }
        self.keys.push(key);
    }

    /// The index range of keys in `[from, to]` (inclusive, by key order).
    fn range(&mut self, from: (u64, u64), to: (u64, u64)) -> std::ops::Range<usize> {
        if !self.sorted {
            self.keys.sort_unstable();
            self.sorted = true;
        }
        let a = self.keys.partition_point(|&k| k < from);
        let b = a + self.keys[a..].partition_point(|&k| k <= to);
        a..b
    }
}

/// An unmap leaves a break per entry it clears until its invalidation: on a fuzz corpus the
/// set held 128-511 breaks at most inserts (and up to 2,050). The map starts that big
/// instead of growing, and rehashing, through every power of two in each input.
const EXPECTED_BREAKS: usize = 512;

impl Pending {
    /// Empty, with room for the breaks an input usually leaves pending at once.
    pub fn with_room() -> Pending {
        Pending {
            by_slot: HashMap::with_capacity_and_hasher(EXPECTED_BREAKS, Default::default()),
            by_level: Default::default(),
        }
    }

    /// Forgets every break, keeping the storage.
    pub fn clear(&mut self) {
        self.by_slot.clear();
        for s in &mut self.by_level {
            s.keys.clear();
            s.sorted = true;
        }
    }

    /// Forgets every break and gives back storage beyond the usual size: clearing and
    /// draining a hash map take time in its capacity, so one large input must not slow
    /// down every later one that reuses this storage.
    pub fn clear_and_trim(&mut self) {
        self.clear();
        self.by_slot.shrink_to(EXPECTED_BREAKS);
        for s in &mut self.by_level {
            s.keys.shrink_to(EXPECTED_BREAKS);
        }
    }

    pub fn get(&self, slot: u64) -> Option<&Break> {
        // Most writes happen with nothing pending: skip the hashing.
        if self.by_slot.is_empty() {
            return None;
        }
        self.by_slot.get(&slot)
    }

    /// Records `b` unless its slot already has a pending break (the older one is what a
    /// cache may still hold).
    pub fn insert(&mut self, b: Break) {
        if let std::collections::hash_map::Entry::Vacant(v) = self.by_slot.entry(b.slot) {
            v.insert(b);
            self.by_level[b.level as usize & 3].push((b.iova, b.slot));
        }
    }

    /// Removes every break `c` covers, handing each to `removed`.
    pub fn remove_covered(
        &mut self,
        c: Cover,
        shift_of: impl Fn(u32) -> u32,
        mut removed: impl FnMut(Break),
    ) {
        let (lo, hi) = match c {
            Cover::Walk { lo, hi } | Cover::Leaves { lo, hi, .. } => (lo, hi),
        };
        for level in 0..4u32 {
            if let Cover::Leaves { level: Some(l), .. } = c {
                if l != level {
                    continue;
                }
            }
            let set = &mut self.by_level[level as usize];
            if set.keys.is_empty() {
                continue;
            }
            let span_m1 = 1u64
                .checked_shl(shift_of(level))
                .map_or(u64::MAX, |s| s - 1);
            let from = lo.saturating_sub(span_m1);
            let hits = set.range((from, 0), (hi, u64::MAX));
            let leaves_only = matches!(c, Cover::Leaves { .. });
            let mut kept = hits.start;
            for i in hits.clone() {
                let key = set.keys[i];
                let b = &self.by_slot[&key.1];
                // Keys start from the level's largest span: smaller entries in the key
                // range may still miss `[lo, hi]`.
                let partial = b.iova < lo || b.last() > hi;
                let stays = if b.iova > hi || b.last() < lo {
                    true
                } else if b.kind == EntryKind::Leaf {
                    b.whole && partial
                } else {
                    leaves_only || partial
                };
                if stays {
                    set.keys[kept] = key;
                    kept += 1;
                    continue;
                }
                removed(
                    self.by_slot
                        .remove(&key.1)
                        .expect("every key has its break"),
                );
            }
            // Keys kept stay in order; the covered ones leave in one move.
            set.keys.drain(kept..hits.end);
        }
    }

    /// Removes and returns everything (a full invalidation, or the end of an op), in no
    /// particular order.
    pub fn take_all(&mut self) -> Vec<Break> {
        for s in &mut self.by_level {
            s.keys.clear();
        }
        self.by_slot.drain().map(|(_, b)| b).collect()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.by_slot.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(slot: u64, iova: u64) -> Break {
        Break {
            seq: slot,
            slot,
            kind: EntryKind::Leaf,
            level: 3,
            iova,
            shift: 12,
            old: 0x403,
            under: None,
            whole: false,
        }
    }

    #[test]
    fn clear_forgets_everything_and_the_set_works_after_it() {
        let mut p = Pending::with_room();
        for i in (0..40u64).rev() {
            p.insert(leaf(0x1000 + 8 * i, i << 12));
        }
        p.clear();
        assert!(p.is_empty());
        assert!(p.get(0x1000).is_none());
        let mut got = Vec::new();
        p.remove_covered(
            Cover::Walk {
                lo: 0,
                hi: u64::MAX,
            },
            |_| 12,
            |b| got.push(b),
        );
        assert!(got.is_empty());
        // Out of order again after the clear: the range still finds exactly what it covers.
        p.insert(leaf(0x2010, 0x2000));
        p.insert(leaf(0x2000, 0x0));
        p.remove_covered(
            Cover::Leaves {
                lo: 0x1000,
                hi: 0x2fff,
                level: Some(3),
            },
            |_| 12,
            |b| got.push(b),
        );
        assert_eq!(got.iter().map(|b| b.slot).collect::<Vec<_>>(), [0x2010]);
        assert_eq!(p.get(0x2000).map(|b| b.iova), Some(0));
    }
}
