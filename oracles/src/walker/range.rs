//! In-order walks of the device view: every valid leaf of an input range, ascending, read
//! once each. The per-op check matches them one to one against the model's leaves there, so
//! an op's whole range costs one pass over its descriptors instead of a full translation per
//! page, and a leaf the model does not have is seen in the op that wrote it.

use ptfuzz_engine::alloc::{FrameState, POISON};
use ptfuzz_engine::prot::Prot;

use super::attrs::LeafAttrs;
use super::descriptor::{decode, Descriptor};
use super::params::WalkParams;
use super::view::TableView;
use crate::divergence::Divergence;
use crate::finding::{LeafSeen, ModelLeaf, StructureFinding, WalkerFinding};

/// Words compared at once when skipping runs of one value.
pub(crate) const CHUNK: usize = 64;
const ZEROS: [u64; CHUNK] = [0; CHUNK];

/// The words of `words` that differ from `fill[0]` (every word of `fill` is that value), with
/// their indices. Runs of it are skipped a chunk at a time (one `memcmp`, not one branch per
/// word: under comparison tracing each branch is a call).
pub(crate) fn other_than<'a>(
    words: &'a [u64],
    fill: &'a [u64; CHUNK],
) -> impl Iterator<Item = (usize, u64)> + 'a {
    words
        .chunks(CHUNK)
        .enumerate()
        .filter(move |(_, c)| *c != &fill[..c.len()])
        .flat_map(move |(ci, c)| {
            c.iter()
                .enumerate()
                .filter(move |(_, &d)| d != fill[0])
                .map(move |(j, &d)| (ci * CHUNK + j, d))
        })
}

/// The nonzero words of `words` with their indices.
pub(crate) fn nonzero(words: &[u64]) -> impl Iterator<Item = (usize, u64)> + '_ {
    other_than(words, &ZEROS)
}

/// A valid leaf descriptor as the walk found it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FoundLeaf {
    pub level: u32,
    pub iova: u64,
    pub size: u64,
    pub oa: u64,
    pub attrs: LeafAttrs,
    /// Where the descriptor sits, and its value (for messages).
    pub pa: u64,
    pub desc: u64,
}

impl FoundLeaf {
    fn seen(&self) -> LeafSeen {
        LeafSeen {
            level: self.level,
            iova: self.iova,
            size: self.size,
            oa: self.oa,
            attrs: self.attrs,
            desc_pa: self.pa,
            desc: self.desc,
        }
    }
}

/// The device view of the `n` words of the table at `pa`.
pub(crate) fn table_words<T: TableView>(t: &T, pa: u64, n: u64) -> Result<&[u64], Divergence> {
    t.device_words(pa, n).ok_or_else(|| {
        let (base, end) = t.mem_range();
        StructureFinding::TableOutsideMemory {
            pa,
            entries: n,
            mem_base: base,
            mem_end: end,
        }
        .into()
    })
}

/// A table descriptor's target: a Live single-frame table of the next level.
pub(crate) fn check_child<T: TableView>(
    t: &T,
    level: u32,
    addr: u64,
    from: u64,
    iova: u64,
) -> Result<(), Divergence> {
    match t.frame(addr) {
        Some(m) if m.state == FrameState::Live && m.level as u32 == level && m.frames == 1 => {
            Ok(())
        }
        meta => Err(StructureFinding::BadChild {
            desc_pa: from,
            iova,
            target: addr,
            level,
            meta,
        }
        .into()),
    }
}

/// One nonzero descriptor at slot `pa` (input address `iova`) of a level-`level` table,
/// decoded, with the checks every walk makes: no poison, nothing malformed, no table
/// attribute bits, and a table descriptor points to a Live table of the next level.
pub(crate) fn decode_checked<T: TableView>(
    t: &T,
    p: &WalkParams,
    level: u32,
    pa: u64,
    iova: u64,
    d: u64,
) -> Result<Descriptor, Divergence> {
    if d == POISON {
        return Err(StructureFinding::PoisonReachable { level, pa, iova }.into());
    }
    let desc = decode(p, level, d).map_err(|why| StructureFinding::Malformed {
        level,
        pa,
        iova,
        desc: d,
        why,
    })?;
    if let Descriptor::Table { addr, extra } = desc {
        if extra != 0 {
            return Err(StructureFinding::TableAttrBits {
                level,
                pa,
                iova,
                desc: d,
                bits: extra,
            }
            .into());
        }
        check_child(t, level + 1, addr, pa, iova)?;
    }
    Ok(desc)
}

/// Calls `leaf` for every valid leaf overlapping `[lo, hi)`, in ascending input order,
/// descending into tables as it meets them.
pub(crate) fn walk_range<T: TableView>(
    t: &T,
    p: &WalkParams,
    lo: u64,
    hi: u64,
    leaf: &mut impl FnMut(&FoundLeaf) -> Result<(), Divergence>,
) -> Result<(), Divergence> {
    let hi = hi.min(1u64 << p.ias);
    if lo >= hi {
        return Ok(());
    }
    walk_table(t, p, t.root(), p.start_level, 0, lo, hi, leaf)
}

#[allow(clippy::too_many_arguments)]
fn walk_table<T: TableView>(
    t: &T,
    p: &WalkParams,
    table: u64,
    level: u32,
    base: u64,
    lo: u64,
    hi: u64,
    leaf: &mut impl FnMut(&FoundLeaf) -> Result<(), Divergence>,
) -> Result<(), Divergence> {
    let shift = p.shift(level);
    // Entries [first, end) overlap [lo, hi); the caller made sure the table does.
    let first = (lo.max(base) - base) >> shift;
    let end = (((hi - base - 1) >> shift) + 1).min(p.entries_at(level));
    table_entries(t, p, table, level, base, first..end, |e| match *e {
        Entry::Table { addr, iova, .. } => walk_table(t, p, addr, level + 1, iova, lo, hi, leaf),
        Entry::Leaf(ref l) => leaf(l),
    })
}

/// A valid entry of a table, decoded and checked.
pub(crate) enum Entry {
    /// A table descriptor at `pa` (input address `iova`) linking the Live table `addr`.
    Table {
        addr: u64,
        pa: u64,
        iova: u64,
    },
    Leaf(FoundLeaf),
}

/// Calls `f` for each valid entry with index in `range` of the table at `table` (lookup level
/// `level`, first entry at input address `base`), in ascending order.
pub(crate) fn table_entries<T: TableView>(
    t: &T,
    p: &WalkParams,
    table: u64,
    level: u32,
    base: u64,
    range: std::ops::Range<u64>,
    mut f: impl FnMut(&Entry) -> Result<(), Divergence>,
) -> Result<(), Divergence> {
    let shift = p.shift(level);
    let words = table_words(t, table, p.entries_at(level))?;
    let mut run = LeafRun::new(p, level);
    for (i, d) in nonzero(&words[range.start as usize..range.end as usize]) {
        let i = range.start + i as u64;
        let pa = table + 8 * i;
        let iova = base + (i << shift);
        match run.decode(i, d, || decode_checked(t, p, level, pa, iova, d))? {
            Descriptor::Invalid => {}
            Descriptor::Table { addr, .. } => f(&Entry::Table { addr, pa, iova })?,
            Descriptor::Leaf { oa, attrs } => f(&Entry::Leaf(FoundLeaf {
                level,
                iova,
                size: 1 << shift,
                oa,
                attrs,
                pa,
                desc: d,
            }))?,
        }
    }
    Ok(())
}

/// Decodes the entries of one table in ascending order, skipping the decoder for a leaf that
/// is the previous entry's leaf with its output address one leaf further (what a range map
/// writes): its attribute bits are the previous ones, and, its output address ending below
/// 2^OAS <= 2^48, no carry reaches a bit above the address field, so decoding it could only
/// give that same leaf.
pub(crate) struct LeafRun {
    size: u64,
    oa_end: u64,
    /// (index, descriptor, output address, attributes) of the previous entry, if a leaf.
    prev: Option<(u64, u64, u64, LeafAttrs)>,
}

impl LeafRun {
    pub fn new(p: &WalkParams, level: u32) -> LeafRun {
        LeafRun {
            size: 1 << p.shift(level),
            oa_end: 1 << p.oas,
            prev: None,
        }
    }

    /// The descriptor `d` at index `i`; `full` decodes and checks it the long way.
    pub fn decode(
        &mut self,
        i: u64,
        d: u64,
        full: impl FnOnce() -> Result<Descriptor, Divergence>,
    ) -> Result<Descriptor, Divergence> {
        let size = self.size;
        let desc = match self.prev {
            Some((pi, pd, poa, attrs))
                if pi + 1 == i && pd.wrapping_add(size) == d && poa + 2 * size <= self.oa_end =>
            {
                Descriptor::Leaf {
                    oa: poa + size,
                    attrs,
                }
            }
            _ => full()?,
        };
        self.prev = match desc {
            Descriptor::Leaf { oa, attrs } => Some((i, d, oa, attrs)),
            _ => None,
        };
        Ok(desc)
    }
}

/// Found leaves against expected ones, both ascending: equal one to one (start, size, output
/// address, the attributes the model's prot implies).
pub(crate) struct LeafMatch<I: Iterator<Item = (u64, u64, u64, Prot)>> {
    expected: std::iter::Peekable<I>,
    /// The attributes a prot implies for this domain's format.
    expect: fn(Prot) -> LeafAttrs,
    /// The attributes the last prot seen implies (runs of leaves share one prot).
    last: Option<(Prot, LeafAttrs)>,
}

impl<I: Iterator<Item = (u64, u64, u64, Prot)>> LeafMatch<I> {
    /// LPAE leaves of a stage-1 or stage-2 domain.
    pub fn new(expected: I, stage2: bool) -> Self {
        let expect: fn(Prot) -> LeafAttrs = if stage2 {
            |p| LeafAttrs::expected(p, true)
        } else {
            |p| LeafAttrs::expected(p, false)
        };
        Self::with_expect(expected, expect)
    }

    /// Leaves whose attributes for a prot are `expect(prot)`.
    pub fn with_expect(expected: I, expect: fn(Prot) -> LeafAttrs) -> Self {
        LeafMatch {
            expected: expected.peekable(),
            expect,
            last: None,
        }
    }

    pub fn found(&mut self, f: &FoundLeaf) -> Result<(), Divergence> {
        match self.expected.peek().copied() {
            Some((start, ..)) if start < f.iova => Err(self.missing()),
            Some((start, mpa, msize, prot)) if start == f.iova => {
                self.expected.next();
                let want = match self.last {
                    Some((p, a)) if p == prot => a,
                    _ => {
                        let a = (self.expect)(prot);
                        self.last = Some((prot, a));
                        a
                    }
                };
                if msize != f.size || mpa != f.oa || want != f.attrs {
                    return Err(WalkerFinding::LeafDiffers {
                        found: f.seen(),
                        model: ModelLeaf::new((start, mpa, msize, prot)),
                        model_attrs: want,
                    }
                    .into());
                }
                Ok(())
            }
            // The model's next leaf starts later, or there is none.
            _ => Err(WalkerFinding::LeafNotInModel { found: f.seen() }.into()),
        }
    }

    /// Every expected leaf was found.
    pub fn finish(mut self) -> Result<(), Divergence> {
        match self.expected.peek() {
            Some(_) => Err(self.missing()),
            None => Ok(()),
        }
    }

    fn missing(&mut self) -> Divergence {
        let leaf = self.expected.next().expect("peeked");
        WalkerFinding::ModelLeafMissing {
            model: ModelLeaf::new(leaf),
        }
        .into()
    }
}
