//! The run representation of the model's leaves: splitting, stops inside a run, `leaf_nth`,
//! and a differential check against a page-by-page reference (the model as it was before
//! runs: one entry per leaf, every rule tested per page).

use super::*;
use ptfuzz_engine::config::{FormatKind, Granule};

const K4: u64 = 1 << 12;
const M2: u64 = 1 << 21;
const G1: u64 = 1 << 30;
const RW: Prot = Prot::RW;

fn s1_4k() -> Model {
    Model::new(&DomainConfig::new(
        FormatKind::Arm64S1,
        Granule::G4K,
        48,
        48,
    ))
    .unwrap()
}

fn err(kind: ErrorKind, mapped: u64) -> Result<u64, MapError> {
    Err(MapError::new(kind, mapped))
}

fn runs(m: &Model) -> Vec<(u64, u64, u64, u64)> {
    m.runs().map(|(a, pa, s, n, _)| (a, pa, s, n)).collect()
}

/// `n` 4K leaves from `iova` to `pa` onwards.
fn pages(iova: u64, pa: u64, n: u64) -> Vec<(u64, u64, u64, Prot)> {
    (0..n)
        .map(|k| (iova + k * K4, pa + k * K4, K4, RW))
        .collect()
}

#[test]
fn one_map_is_one_run() {
    let mut m = s1_4k();
    assert_eq!(m.map(0x10_0000, 0x800_0000, K4, 512, RW), Ok(512 * K4));
    assert_eq!(runs(&m), [(0x10_0000, 0x800_0000, K4, 512)]);
    assert_eq!(m.leaf_count(), 512);
    assert_eq!(
        m.leaves().collect::<Vec<_>>(),
        pages(0x10_0000, 0x800_0000, 512)
    );
    assert_eq!(
        m.leaf_at(0x10_0000 + 7 * K4 + 5),
        Some((0x10_7000, 0x800_7000, K4, RW))
    );
    assert_eq!(m.lookup(0x10_0000 + 512 * K4), None);
}

#[test]
fn unmap_of_the_middle_of_a_run_splits_it() {
    let mut m = s1_4k();
    m.map(0, 0x100_0000, K4, 10, RW).unwrap();
    let _ = m.take_removed_leaves();
    assert_eq!(m.unmap(3 * K4, K4, 4), Ok(4 * K4));
    assert_eq!(
        runs(&m),
        [(0, 0x100_0000, K4, 3), (7 * K4, 0x100_7000, K4, 3)]
    );
    assert_eq!(m.take_removed_leaves(), pages(3 * K4, 0x100_3000, 4));
    let mut want = pages(0, 0x100_0000, 3);
    want.extend(pages(7 * K4, 0x100_7000, 3));
    assert_eq!(m.leaves().collect::<Vec<_>>(), want);
    assert_eq!(m.leaf_count(), 6);
    // The hole now stops an unmap that starts before it, after the pages before it.
    assert_eq!(m.unmap(K4, K4, 5), Ok(2 * K4));
    assert_eq!(m.leaf_count(), 4);
    assert_eq!(m.take_removed_leaves(), pages(K4, 0x100_1000, 2));
    // Both ends of a run go: what is left is the middle.
    assert_eq!(m.unmap(0, K4, 1), Ok(K4));
    assert_eq!(m.unmap(9 * K4, K4, 1), Ok(K4));
    assert_eq!(runs(&m), [(7 * K4, 0x100_7000, K4, 2)]);
}

#[test]
fn a_bigger_page_size_unmaps_several_runs_and_splits_the_last() {
    let mut m = s1_4k();
    // Three runs inside the first 2M (with a gap), one run reaching past it.
    m.map(0, 0x1000_0000, K4, 4, RW).unwrap();
    m.map(8 * K4, 0x2000_0000, K4, 2, Prot::READ).unwrap();
    m.map(M2 - 2 * K4, 0x3000_0000, K4, 5, RW).unwrap();
    let _ = m.take_removed_leaves();
    assert_eq!(m.unmap(0, M2, 1), Ok(M2));
    let mut want = pages(0, 0x1000_0000, 4);
    want.extend((0..2).map(|k| (8 * K4 + k * K4, 0x2000_0000 + k * K4, K4, Prot::READ)));
    want.extend(pages(M2 - 2 * K4, 0x3000_0000, 2));
    assert_eq!(m.take_removed_leaves(), want);
    assert_eq!(runs(&m), [(M2, 0x3000_2000, K4, 3)]);
    assert_eq!(m.leaf_count(), 3);
    // The last-level table of the first 2M went with its whole span.
    assert_eq!(m.take_freed_tables(), [(3, 0, M2)]);
    // The next 2M holds leaves only in its first pages: still counted (no hole), and its
    // table goes too.
    assert_eq!(m.unmap(M2, M2, 2), Ok(M2));
    assert_eq!(m.leaf_count(), 0);
    assert_eq!(m.take_freed_tables(), [(3, M2, M2)]);
}

#[test]
fn a_block_inside_the_range_stops_unmap_after_the_runs_before_it() {
    let mut m = s1_4k();
    m.map(0, 0, K4, 512, RW).unwrap();
    m.map(M2, 0x4000_0000, M2, 2, RW).unwrap();
    assert_eq!(m.unmap(0, K4, 1024), Ok(M2));
    assert_eq!(runs(&m), [(M2, 0x4000_0000, M2, 2)]);
    // The block run covers the first page asked: nothing is unmapped, nothing split.
    assert_eq!(m.unmap(M2 + 3 * K4, K4, 1), Ok(0));
    assert_eq!(m.unmap(2 * M2, M2, 1), Ok(M2));
    assert_eq!(runs(&m), [(M2, 0x4000_0000, M2, 1)]);
}

#[test]
fn exists_in_the_middle_of_a_run_gives_the_pages_before_it() {
    let mut m = s1_4k();
    m.map(20 * K4, 0x9000_0000, K4, 30, RW).unwrap();
    // A map from below stops at the run's first page.
    assert_eq!(m.map(0, 0, K4, 100, RW), err(ErrorKind::Exists, 20 * K4));
    // One starting inside the run stops at once, one after it maps.
    assert_eq!(m.map(35 * K4, 0, K4, 2, RW), err(ErrorKind::Exists, 0));
    assert_eq!(m.map(50 * K4, 0x50_000, K4, 2, RW), Ok(2 * K4));
    // Unmap the middle of the run, then map across the hole: stops where the run resumes.
    assert_eq!(m.unmap(30 * K4, K4, 5), Ok(5 * K4));
    assert_eq!(
        m.map(30 * K4, 0x7000_0000, K4, 10, RW),
        err(ErrorKind::Exists, 5 * K4)
    );
    assert_eq!(m.leaf_at(34 * K4), Some((34 * K4, 0x7000_4000, K4, RW)));
    assert_eq!(m.leaf_at(35 * K4), Some((35 * K4, 0x9000_f000, K4, RW)));
    assert_eq!(m.leaf_count(), 20 + 30 + 2);
    // A block over the run stops at the block holding it, after the blocks before.
    let base = 4 * G1;
    m.map(base + 3 * M2 + 7 * K4, 0, K4, 1, RW).unwrap();
    assert_eq!(m.map(base, 0, M2, 8, RW), err(ErrorKind::Exists, 3 * M2));
}

#[test]
fn fail_nth_in_the_middle_of_a_multi_table_map() {
    let mut m = s1_4k();
    // 1100 pages from 1M: three last-level tables (0, 2M, 4M) under one L1 and L2 path.
    m.map(0, 0, K4, 1, RW).unwrap(); // L1, L2, L3 at 0 exist
    let before = m.counters();
    // Attempts: L3 at 2M (1st), L3 at 4M (2nd, fails).
    m.fail_nth(Some(2));
    let iova = 0x10_0000;
    assert_eq!(
        m.map(iova, 0, K4, 1100, RW),
        err(ErrorKind::Nomem, 2 * M2 - iova)
    );
    assert_eq!(m.counters().allocated, before.allocated + 1);
    assert_eq!(m.counters().failed, before.failed + 1);
    assert!(m.has_table(3, M2) && !m.has_table(3, 2 * M2));
    assert_eq!(m.leaf_count(), 1 + ((2 * M2 - iova) / K4) as usize);
    assert_eq!(m.lookup(2 * M2 - 1), Some(2 * M2 - 1 - iova));
    assert_eq!(m.lookup(2 * M2), None);
    // Disarmed: the rest maps, its tables allocated.
    let rest = 2 * M2;
    assert_eq!(m.map(rest, 0, K4, 100, RW), Ok(100 * K4));
    assert!(m.has_table(3, 2 * M2));
}

#[test]
fn blocks_replacing_empty_subtrees_log_them_page_by_page() {
    let mut m = s1_4k();
    // Empty L2 and L3 tables in two 1G slots (an unmap of a page frees no table).
    for a in [G1, 2 * G1 + 5 * M2] {
        m.map(a, 0, K4, 1, RW).unwrap();
        assert_eq!(m.unmap(a, K4, 1), Ok(K4));
    }
    assert_eq!(m.take_freed_tables(), []);
    assert_eq!(m.map(G1, 0, G1, 2, RW), Ok(2 * G1));
    let m2 = G1 >> 9;
    assert_eq!(
        m.take_freed_tables(),
        [
            (2, G1, G1),
            (3, G1, m2),
            (2, 2 * G1, G1),
            (3, 2 * G1 + 5 * M2, m2)
        ]
    );
    assert_eq!(runs(&m), [(G1, 0, G1, 2)]);
}

#[test]
fn leaf_nth_across_runs() {
    let mut m = s1_4k();
    m.map(G1, 0x4000_0000, M2, 3, RW).unwrap();
    m.map(0, 0x10_0000, K4, 5, Prot::READ).unwrap();
    m.map(8 * K4, 0x20_0000, K4, 2, RW).unwrap();
    m.unmap(2 * K4, K4, 1).unwrap();
    let all: Vec<_> = m.leaves().collect();
    assert_eq!(all.len(), m.leaf_count());
    assert_eq!(all.len(), 4 + 2 + 3);
    for (n, leaf) in all.iter().enumerate() {
        assert_eq!(m.leaf_nth(n), Some(*leaf), "n={n}");
    }
    assert_eq!(m.leaf_nth(all.len()), None);
    assert_eq!(m.leaf_nth(usize::MAX), None);
    assert_eq!(m.leaf_nth(4), Some((8 * K4, 0x20_0000, K4, RW)));
    assert_eq!(m.leaf_nth(8), Some((G1 + 2 * M2, 0x4040_0000, M2, RW)));
}

#[test]
fn leaves_overlapping_cuts_runs_at_both_ends() {
    let mut m = s1_4k();
    m.map(0, 0x10_0000, K4, 16, RW).unwrap();
    m.map(M2, 0x4000_0000, M2, 4, RW).unwrap();
    let got: Vec<_> = m.leaves_overlapping(3 * K4 + 1, 6 * K4 + 1).collect();
    assert_eq!(got, pages(3 * K4, 0x10_3000, 4));
    let got: Vec<_> = m.leaves_overlapping(15 * K4, 2 * M2 + 1).collect();
    let mut want = pages(15 * K4, 0x10_f000, 1);
    want.extend([(M2, 0x4000_0000, M2, RW), (2 * M2, 0x4020_0000, M2, RW)]);
    assert_eq!(got, want);
    assert_eq!(m.leaves_overlapping(16 * K4, M2).count(), 0);
    assert_eq!(m.leaves_overlapping(5 * K4, 5 * K4).count(), 0);
    assert_eq!(m.leaves_overlapping(9 * K4, 2 * K4).count(), 0);
}

/// The model before runs: a leaf per entry, map and unmap page by page, on the tables of an
/// otherwise unused `Model` (so the table accounting is the one under test, driven the old way).
struct PageModel {
    m: Model,
    leaves: BTreeMap<u64, (u64, u64, Prot)>,
    removed: Vec<RemovedLeaf>,
}

impl PageModel {
    fn new(cfg: &DomainConfig) -> Self {
        PageModel {
            m: Model::new(cfg).unwrap(),
            leaves: BTreeMap::new(),
            removed: Vec::new(),
        }
    }

    fn leaf_entry(&self, iova: u64) -> Option<(u64, (u64, u64, Prot))> {
        let (&a, &l) = self.leaves.range(..=iova).next_back()?;
        (iova - a < l.1).then_some((a, l))
    }

    fn overlaps(&self, start: u64, len: u64) -> bool {
        let end = start + len;
        self.leaves
            .range(..end)
            .next_back()
            .is_some_and(|(&a, l)| a + l.1 > start)
    }

    fn map(
        &mut self,
        iova: u64,
        pa: u64,
        pgsize: u64,
        count: u64,
        prot: Prot,
    ) -> Result<u64, MapError> {
        let inval = |k| MapError::new(k, 0);
        self.m.check_pages(iova, pgsize, count).map_err(inval)?;
        if !pa.is_multiple_of(pgsize) {
            return Err(inval(ErrorKind::Inval));
        }
        let size = Model::range_size(iova, pgsize, count, self.m.ias_end()).map_err(inval)?;
        Model::range_size(pa, pgsize, count, self.m.oas_end()).map_err(inval)?;
        if !prot.readable() && !prot.writable() {
            return Ok(0);
        }
        let level = self.m.leaf_level(pgsize);
        let mut seen = [u64::MAX; 4];
        for k in 0..count {
            let off = k * pgsize;
            let a = iova + off;
            if level < 3 && self.m.tables.pinned(level + 1, a) {
                return Err(MapError::new(ErrorKind::Busy, off));
            }
            if self.overlaps(a, pgsize) {
                return Err(MapError::new(ErrorKind::Exists, off));
            }
            let t = &mut self.m.tables;
            if t.ensure_path(a, level, &mut seen).is_err() {
                let kind = if std::mem::take(&mut t.dry) {
                    ErrorKind::Budget
                } else {
                    ErrorKind::Nomem
                };
                return Err(MapError::new(kind, off));
            }
            if level < 3 && t.contains(level + 1, a) {
                t.free_inside(a, a + pgsize, level + 1);
            }
            self.leaves.insert(a, (pa + off, pgsize, prot));
        }
        Ok(size)
    }

    fn unmap(&mut self, iova: u64, pgsize: u64, count: u64) -> Result<u64, ErrorKind> {
        self.m.check_pages(iova, pgsize, count)?;
        Model::range_size(iova, pgsize, count, self.m.ias_end())?;
        let mut done = count * pgsize;
        'pages: for k in 0..count {
            let start = iova + k * pgsize;
            if self.leaf_entry(start).is_some_and(|(_, l)| l.1 > pgsize) {
                done = k * pgsize;
                break 'pages;
            }
            let inside: Vec<u64> = self
                .leaves
                .range(start..start + pgsize)
                .map(|(&a, _)| a)
                .collect();
            if inside.is_empty() {
                done = k * pgsize;
                break 'pages;
            }
            for a in inside {
                let l = self.leaves.remove(&a).unwrap();
                self.removed.push((a, l.0, l.1, l.2));
            }
        }
        if done > 0 {
            self.m.tables.free_inside(iova, iova + done, 0);
        }
        Ok(done)
    }

    fn clear(&mut self) {
        let leaves = std::mem::take(&mut self.leaves);
        self.removed
            .extend(leaves.into_iter().map(|(a, l)| (a, l.0, l.1, l.2)));
        self.m.tables.free_all();
        self.m.reservations.clear();
    }

    /// Reservations read only leaves and tables: give the inner model this model's leaves
    /// (a run per leaf) and let it do them.
    fn sync_leaves(&mut self) {
        self.m.runs = self
            .leaves
            .iter()
            .map(|(&a, &(pa, size, prot))| {
                (
                    a,
                    Run {
                        pa,
                        size,
                        count: 1,
                        prot,
                    },
                )
            })
            .collect();
        self.m.leaf_count = self.leaves.len();
    }

    fn leaves(&self) -> Vec<RemovedLeaf> {
        self.leaves
            .iter()
            .map(|(&a, l)| (a, l.0, l.1, l.2))
            .collect()
    }
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Random maps, unmaps, clears, reservations, injected failures and pool draws on both
/// models: every result, the leaves, the tables, the counters and both logs agree.
fn differential(cfg: DomainConfig, seed: u64, steps: usize) {
    let mut m = Model::new(&cfg).unwrap();
    let mut r = PageModel::new(&cfg);
    let mut rng = Rng(seed | 1);
    let sizes = m.page_sizes().to_vec();
    let g = sizes[0];
    // A window of a few last-level tables' worth of pages, so ops collide.
    let window = (4 * g * (g / 8)).min(1 << cfg.ias);
    for step in 0..steps {
        let what = format!("seed {seed} step {step}");
        let size = sizes[rng.below(sizes.len() as u64) as usize];
        // At least a few pages of every size; sometimes a few gigabytes up, so larger pages
        // meet several tables' subtrees.
        let slots = (window / size).max(4).min((1 << cfg.ias) / size);
        let hop = if 1u64 << cfg.ias >= 8 * G1 {
            rng.below(3) * G1
        } else {
            0
        };
        let slot = rng.below(slots);
        let iova = hop + slot * size;
        let count = match rng.below(4) {
            0 => 1,
            1 => 1 + rng.below(4),
            _ => 1 + rng.below(slots - slot + 1),
        };
        match rng.below(20) {
            0..=8 => {
                let pa = rng.below(64) * size;
                let prot = [RW, Prot::READ, Prot::WRITE, Prot::from_bits_truncate(0)]
                    [rng.below(4) as usize];
                if rng.below(6) == 0 {
                    let n = Some(1 + rng.below(4));
                    m.fail_nth(n);
                    r.m.fail_nth(n);
                }
                // Sometimes a job's run: a pool of a few frames is the only source.
                let mut pool = (rng.below(8) == 0).then(|| rng.below(4));
                if let Some(n) = pool {
                    let ok = m.tables.reserve_frames(n);
                    assert_eq!(ok, r.m.tables.reserve_frames(n), "{what}");
                    pool = pool.filter(|_| ok.is_ok());
                }
                m.tables.drawing = pool;
                r.m.tables.drawing = pool;
                let got = m.map(iova, pa, size, count, prot);
                let want = r.map(iova, pa, size, count, prot);
                assert_eq!(got, want, "{what}: map {iova:#x} {size:#x} x{count}");
                let left = m.tables.drawing.take();
                assert_eq!(left, r.m.tables.drawing.take(), "{what}");
                if let Some(n) = left {
                    m.tables.return_frames(n);
                    r.m.tables.return_frames(n);
                }
                m.tables.dry = false;
                r.m.tables.dry = false;
                m.fail_nth(None);
                r.m.fail_nth(None);
            }
            9..=15 => {
                let got = m.unmap(iova, size, count);
                let want = r.unmap(iova, size, count);
                assert_eq!(got, want, "{what}: unmap {iova:#x} {size:#x} x{count}");
            }
            16 => {
                m.clear();
                r.clear();
            }
            17 => {
                m.grace_period();
                r.m.grace_period();
            }
            _ => {
                let rsize = g * (1 + rng.below(4));
                let held: Vec<(u64, u64)> = m.reservations().map(|(k, _)| k).collect();
                r.sync_leaves();
                if !held.is_empty() && rng.below(2) == 0 {
                    let (a, s) = held[rng.below(held.len() as u64) as usize];
                    assert_eq!(m.unreserve_va(a, s), r.m.unreserve_va(a, s), "{what}");
                } else {
                    let a = iova & !(g - 1);
                    assert_eq!(m.reserve_va(a, rsize), r.m.reserve_va(a, rsize), "{what}");
                }
            }
        }
        let leaves: Vec<_> = m.leaves().collect();
        assert_eq!(leaves, r.leaves(), "{what}: leaves");
        assert_eq!(m.leaf_count(), leaves.len(), "{what}");
        assert_eq!(
            m.tables().collect::<Vec<_>>(),
            r.m.tables().collect::<Vec<_>>(),
            "{what}"
        );
        assert_eq!(m.counters(), r.m.counters(), "{what}");
        assert_eq!(
            m.take_removed_leaves(),
            std::mem::take(&mut r.removed),
            "{what}"
        );
        assert_eq!(m.take_freed_tables(), r.m.take_freed_tables(), "{what}");
        assert_eq!(m.total_pins(), r.m.total_pins(), "{what}");
        // Point queries against the leaf list.
        for _ in 0..4 {
            let x = rng.below(window + g);
            let want = leaves.iter().find(|l| l.0 <= x && x < l.0 + l.2).copied();
            assert_eq!(m.leaf_at(x), want, "{what}: leaf_at {x:#x}");
            let y = x + rng.below(4 * size);
            let want: Vec<_> = leaves
                .iter()
                .filter(|l| x < y && l.0 < y && x < l.0 + l.2)
                .copied()
                .collect();
            assert_eq!(
                m.leaves_overlapping(x, y).collect::<Vec<_>>(),
                want,
                "{what}: [{x:#x}, {y:#x})"
            );
            if !leaves.is_empty() {
                let n = rng.below(leaves.len() as u64) as usize;
                assert_eq!(m.leaf_nth(n), Some(leaves[n]), "{what}: leaf_nth {n}");
            }
        }
        let expanded: Vec<_> = m
            .runs()
            .flat_map(|(a, pa, s, n, p)| (0..n).map(move |k| (a + k * s, pa + k * s, s, p)))
            .collect();
        assert_eq!(expanded, leaves, "{what}: runs");
    }
}

#[test]
fn runs_agree_with_the_page_by_page_model() {
    use FormatKind::*;
    use Granule::*;
    let mut configs = vec![
        DomainConfig::new(Arm64S1, G4K, 48, 48),
        DomainConfig::new(Arm64S2, G4K, 34, 34),
        DomainConfig::new(Arm64S1, G16K, 36, 40),
        DomainConfig::new(Arm64S1, G64K, 42, 48),
    ];
    // Few frames below 2^OAS: the address limit stops maps too.
    let mut tight = DomainConfig::new(Arm64S1, G4K, 32, 32);
    tight.phys_base = (1 << 32) - 32 * K4;
    configs.push(tight);
    for (i, cfg) in configs.into_iter().enumerate() {
        for seed in 0..4u64 {
            differential(cfg, 0x9e37_79b9 * (seed + 1) + i as u64, 300);
        }
    }
}

#[test]
fn runs_stay_cheap_without_logging() {
    // Millions of pages in a few calls: cost per run and per table, not per page.
    let mut m = s1_4k();
    m.set_removal_logging(false);
    let n = 1 << 22; // 16G of 4K pages: 8192 last-level tables
    assert_eq!(m.map(0, 0, K4, n, RW), Ok(n * K4));
    assert_eq!(m.leaf_count(), n as usize);
    assert_eq!(m.unmap(K4, K4, n - 2), Ok((n - 2) * K4));
    assert_eq!(m.leaf_count(), 2);
    assert_eq!(
        runs(&m),
        [(0, 0, K4, 1), ((n - 1) * K4, (n - 1) * K4, K4, 1)]
    );
}
