//! Reference model: the mapping state as a sparse ordered map from leaf start IOVA to
//! (pa, size, prot). It knows nothing of tables or descriptors; it computes the result every
//! map/unmap/lookup must return under docs/SEMANTICS.md.

pub mod domain_rules;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use ptfuzz_engine::config::DomainConfig;
use ptfuzz_engine::error::{ErrorKind, MapError};
use ptfuzz_engine::prot::Prot;

pub use domain_rules::DomainRules;

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
}

impl Model {
    /// `Err(Inval)` for every configuration docs/SEMANTICS.md refuses.
    pub fn new(cfg: &DomainConfig) -> Result<Model, ErrorKind> {
        let rules = DomainRules::new(cfg)?;
        Ok(Model {
            sizes: rules.page_sizes(),
            rules,
            leaves: BTreeMap::new(),
        })
    }

    /// The validated domain facts (start level, root size) for other oracles.
    pub fn rules(&self) -> &DomainRules {
        &self.rules
    }

    /// Supported leaf sizes, ascending.
    pub fn page_sizes(&self) -> Vec<u64> {
        self.sizes.clone()
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
        // Both ranges were checked above, so every page offset below is in range.
        for k in 0..count {
            let off = k * pgsize;
            if self.overlaps(iova + off, pgsize) {
                return Err(MapError::new(ErrorKind::Exists, off));
            }
            self.leaves.insert(
                iova + off,
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
    pub fn unmap(&mut self, iova: u64, pgsize: u64, count: u64) -> Result<u64, ErrorKind> {
        self.check_pages(iova, pgsize, count)?;
        Self::range_size(iova, pgsize, count, self.ias_end())?;
        for k in 0..count {
            let start = iova + k * pgsize;
            let end = start + pgsize;
            // Leaves are aligned to their sizes and sizes divide each other, so a leaf larger
            // than the page that overlaps it covers it (block splitting is not done: stop).
            if let Some((_, l)) = self.leaf_entry(start) {
                if l.size > pgsize {
                    return Ok(k * pgsize);
                }
            }
            let inside: Vec<u64> = self.leaves.range(start..end).map(|(&a, _)| a).collect();
            if inside.is_empty() {
                return Ok(k * pgsize); // a hole
            }
            for a in inside {
                self.leaves.remove(&a);
            }
        }
        Ok(count * pgsize)
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

    /// Clears everything (a "free everything" op).
    pub fn clear(&mut self) {
        self.leaves.clear();
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
