//! The TLB / walk-cache oracle: silent on what the engine does (every format, granule,
//! concatenated roots, coherent or not), and loud on hand-made logs that break each rule.

mod common;
#[path = "../../engine/tests/formats/mod.rs"]
#[macro_use]
mod formats;

use common::{cfg, XorShift as Rng};
use ptfuzz_engine::{
    AllocEvent, DeviceWrite, Domain, DomainConfig, FlushEvent, FormatKind, Granule,
    OrderedFlushLog, Owner, Prot,
};
use ptfuzz_oracles::tlb::TlbStats;
use ptfuzz_oracles::walker::WalkParams;
use ptfuzz_oracles::{Divergence, Model, TlbOracle};

use FormatKind::*;
use Granule::*;

// ---------------------------------------------------------------------------------------
// The real engine: random-ish op sequences give no divergence.

/// The shared suite's configurations of `f` (engine/tests/formats/mod.rs), each with a
/// coherent and a non-coherent walker.
fn configs(f: FormatKind) -> Vec<DomainConfig> {
    both_coherencies(formats::configs(f).into_iter().map(|n| n.cfg))
}

fn both_coherencies(v: impl Iterator<Item = DomainConfig>) -> Vec<DomainConfig> {
    let mut out: Vec<DomainConfig> = Vec::new();
    for c in v {
        for coherent in [true, false] {
            let c = DomainConfig { coherent, ..c };
            if !out.contains(&c) {
                out.push(c);
            }
        }
    }
    out
}

/// Every LPAE configuration of the shared list.
fn lpae_configs() -> Vec<DomainConfig> {
    FormatKind::ALL.into_iter().flat_map(configs).collect()
}

struct Run {
    dom: Domain<OrderedFlushLog>,
    tlb: TlbOracle,
    sizes: Vec<u64>,
    op: usize,
    ias_end: u64,
    oas: u32,
}

impl Run {
    fn new(c: DomainConfig) -> Run {
        let mut dom = Domain::with_flush(c, OrderedFlushLog::default(), None)
            .unwrap_or_else(|e| panic!("{c:?}: {e}"));
        dom.set_event_logging(true);
        let model = Model::new(&c).unwrap();
        let p = WalkParams::for_domain(&c, model.rules());
        let tlb = TlbOracle::new(&c, dom.root(), &p);
        Run {
            sizes: dom.page_sizes(),
            dom,
            tlb,
            op: 0,
            ias_end: 1u64 << c.ias,
            oas: c.oas,
        }
    }

    #[track_caller]
    fn check(&mut self, what: &str) {
        if let Err(d) = self.tlb.check_domain_op(self.op, &mut self.dom) {
            panic!("{:?} op {} ({what}): {d}", self.dom.config(), self.op);
        }
        self.op += 1;
    }

    fn pa(&self, r: &mut Rng, size: u64) -> u64 {
        let top = 1u64 << self.oas;
        (r.below(top / size / 2) + top / size / 2 - 1) * size
    }

    fn map(&mut self, iova: u64, pa: u64, size: u64, count: u64) {
        let _ = self.dom.map(iova, pa, size, count, Prot::RW);
        self.check(&format!("map {iova:#x} {pa:#x} {size:#x} x{count}"));
    }

    fn unmap(&mut self, iova: u64, size: u64, count: u64) {
        let _ = self.dom.unmap(iova, size, count);
        self.check(&format!("unmap {iova:#x} {size:#x} x{count}"));
    }
}

/// Random map/unmap/grace/clear in a few windows of the address space, with the patterns
/// that exercise every flush path: leaf unmaps (gathers), unmaps that free whole tables,
/// an empty table replaced by a block, injected allocation failures.
fn exercise(c: DomainConfig, seed: u64, ops: usize) -> TlbStats {
    let mut t = Run::new(c);
    let mut r = Rng(seed | 1);
    let small = t.sizes[0];
    let big = *t.sizes.last().unwrap();
    // A window a few of the second leaf size wide (or of 16 small pages), at the bottom,
    // in the middle and at the top of the input space.
    let unit = t
        .sizes
        .get(1)
        .copied()
        .unwrap_or(small * 16)
        .min(t.ias_end / 8);
    let window = (unit * 4).min(t.ias_end / 4);
    let bases = [0, t.ias_end / 2, t.ias_end - window];
    for _ in 0..ops {
        let base = bases[r.below(3) as usize];
        let size = if r.below(4) == 0 {
            t.sizes[r.below(t.sizes.len() as u64) as usize]
        } else {
            t.sizes[r.below(t.sizes.len().min(2) as u64) as usize]
        };
        let slots = (window / size).max(1);
        let iova = base + r.below(slots) * size;
        let count = 1 + r.below((slots - (iova - base) / size).clamp(1, 8));
        match r.below(16) {
            0..=5 => {
                let pa = t.pa(&mut r, size);
                t.map(iova, pa, size, count)
            }
            6..=9 => t.unmap(iova, size, count),
            10 => {
                // Unmap a whole window with the largest size that fits: frees tables.
                let s = t
                    .sizes
                    .iter()
                    .rev()
                    .find(|&&s| s <= window)
                    .copied()
                    .unwrap();
                t.unmap(base, s, window / s);
            }
            11 if unit > small && unit <= window => {
                // Empty table replaced by a block: map a small page, unmap it, map the
                // block over it.
                let at = base + r.below(window / unit) * unit;
                t.unmap(at, unit, 1);
                let pa = t.pa(&mut r, small);
                t.map(at + r.below(unit / small) * small, pa, small, 1);
                let _ = t.dom.unmap(at, small, unit / small);
                t.check("unmap the run");
                let pa = t.pa(&mut r, unit);
                t.map(at, pa, unit, 1);
            }
            12 => {
                t.dom.grace_period();
                t.check("grace_period");
            }
            13 if r.below(4) == 0 => {
                t.dom.clear();
                t.check("clear");
            }
            14 => {
                t.dom.fail_nth_alloc(Some(1 + r.below(3)));
                let pa = t.pa(&mut r, small);
                t.map(iova, pa, small, count);
                t.dom.fail_nth_alloc(None);
            }
            _ => {
                // Pages over a whole next-level span, then unmap them one size up.
                if unit > small && unit <= window && big >= unit {
                    let at = base + r.below(window / unit) * unit;
                    let pa = t.pa(&mut r, unit);
                    t.map(at, pa, small, (unit / small).min(64));
                    t.unmap(at, unit, 1);
                }
            }
        }
    }
    t.dom.clear();
    t.check("final clear");
    t.dom.grace_period();
    t.check("final grace_period");
    t.tlb.stats()
}

fn add(a: &mut TlbStats, b: TlbStats) {
    a.breaks += b.breaks;
    a.table_breaks += b.table_breaks;
    a.all += b.all;
    a.walks += b.walks;
    a.leaves += b.leaves;
    a.placed += b.placed;
    a.defers_checked += b.defers_checked;
}

// Per format (`arm64_s1::engine_passes_on_every_geometry`, ..., `armv7s::...`).
per_format!(all: [engine_passes_on_every_geometry, engine_passes_fixed_patterns]);

fn engine_passes_on_every_geometry(f: FormatKind) {
    for (i, c) in configs(f).into_iter().enumerate() {
        let mut st = TlbStats::default();
        for s in 0..2u64 {
            add(
                &mut st,
                exercise(c, 0x9e37_79b9_7f4a_7c15 ^ (i as u64 * 1000 + s), 200),
            );
        }
        println!(
            "{} {} ias {} coherent {}: {st:?}",
            c.format, c.granule, c.ias, c.coherent
        );
        // The oracle was not idle: leaves and tables were cleared and invalidated both ways.
        assert!(
            st.breaks > 0 && st.leaves > 0 && st.all > 0,
            "{c:?}: {st:?}"
        );
        if Model::new(&c).unwrap().rules().start_level < 3 {
            assert!(st.table_breaks > 0 && st.placed > 0, "{c:?}: {st:?}");
            assert!(st.walks > 0 && st.defers_checked > 0, "{c:?}: {st:?}");
        }
    }
}

/// Longer soak: `TLB_SOAK_SEEDS=n cargo test --release -p ptfuzz-oracles --test tlb -- --ignored`.
#[test]
#[ignore]
fn engine_soak() {
    let seeds: u64 = std::env::var("TLB_SOAK_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    for (i, c) in lpae_configs().into_iter().enumerate() {
        for s in 0..seeds {
            exercise(c, 0x1234_5678 ^ (i as u64) << 32 ^ s, 2000);
        }
    }
}

fn engine_passes_fixed_patterns(f: FormatKind) {
    for c in configs(f) {
        let mut t = Run::new(c);
        let small = t.sizes[0];
        let Some(&block) = t.sizes.get(1) else {
            continue;
        };
        if block > t.ias_end / 2 {
            continue;
        }
        let pa = 1u64 << (c.oas - 1);
        // Empty-table replacement: 4K, unmap, 2M over it.
        t.map(0, pa, small, 1);
        t.unmap(0, small, 1);
        t.map(0, pa, block, 1);
        t.unmap(0, block, 1);
        // A full table of pages, partly unmapped, then the rest freed with one big unmap.
        t.map(block, pa, small, block / small);
        t.unmap(block + small, small, 3);
        t.unmap(block, block, 1);
        t.dom.grace_period();
        t.check("grace");
        // Reuse of the released frames.
        t.map(block, pa, small, 2);
        t.map(2 * block, pa, block, 1);
        t.dom.clear();
        t.check("clear");
        t.map(0, pa, small, 4);
        t.dom.grace_period();
        t.check("grace");
        t.unmap(0, small, 4);
    }
}

/// The engine's own logs with one kind of maintenance removed or moved: the oracle notices.
fn tampered_run(
    c: DomainConfig,
    tamper: fn(&mut Vec<(u64, FlushEvent)>, &mut Vec<AllocEvent>),
    ops: fn(&mut Domain<OrderedFlushLog>, &[u64]),
) -> Result<(), Divergence> {
    let mut dom = Domain::with_flush(c, OrderedFlushLog::default(), None).unwrap();
    dom.set_event_logging(true);
    let model = Model::new(&c).unwrap();
    let p = WalkParams::for_domain(&c, model.rules());
    let mut tlb = TlbOracle::new(&c, dom.root(), &p);
    let sizes = dom.page_sizes();
    ops(&mut dom, &sizes);
    let mut flushes = std::mem::take(&mut dom.flush_ops_mut().events);
    let writes = dom.take_device_log();
    let mut allocs = dom.take_alloc_log();
    tamper(&mut flushes, &mut allocs);
    tlb.check_op(7, &flushes, &writes, &allocs)
}

fn tamper_configs() -> [DomainConfig; 3] {
    [
        cfg(Arm64S1, G4K, 48, 48, true),
        cfg(Arm64S2, G16K, 40, 40, false), // 16 concatenated root tables (PA 40)
        cfg(Arm64S1, G64K, 48, 48, false),
    ]
}

const PA: u64 = 0x80_0000_0000;

/// Pages, their unmap (leaf flushes), a page and its unmap then a block over it (a walk
/// flush and a defer), all in one "op".
fn ops_replace(d: &mut Domain<OrderedFlushLog>, s: &[u64]) {
    d.map(s[1], PA, s[0], 4, Prot::RW).unwrap();
    d.unmap(s[1], s[0], 4).unwrap();
    d.map(s[1], PA, s[1], 1, Prot::RW).unwrap();
}

/// A full table of pages unmapped with one larger unmap (the table is freed).
fn ops_free_table(d: &mut Domain<OrderedFlushLog>, s: &[u64]) {
    d.map(s[1], PA, s[0], 8, Prot::RW).unwrap();
    d.unmap(s[1], s[1], 1).unwrap();
}

/// The same input gives the same finding, message included, however many events the thread
/// numbered before it (a campaign's worker runs many inputs; `ptfuzz repro` runs one twice).
#[test]
fn findings_do_not_depend_on_what_the_thread_ran_before() {
    let no_walk: fn(&mut Vec<(u64, FlushEvent)>, &mut Vec<AllocEvent>) =
        |f, _| f.retain(|e| !matches!(e.1, FlushEvent::Walk { .. }));
    for c in tamper_configs() {
        let first = tampered_run(c, no_walk, ops_replace).expect_err("no walk flush is caught");
        // Other work numbers more events in between.
        exercise(c, 3, 50);
        let second = tampered_run(c, no_walk, ops_replace).expect_err("caught again");
        assert!(first.what().contains("seq"), "{}", first.what());
        assert_eq!(first, second);
        assert_eq!(first.what(), second.what());
    }
}

#[test]
fn engine_logs_without_their_maintenance_are_caught() {
    let untouched: fn(&mut Vec<(u64, FlushEvent)>, &mut Vec<AllocEvent>) = |_, _| {};
    for c in tamper_configs() {
        tampered_run(c, untouched, ops_replace).unwrap();
        tampered_run(c, untouched, ops_free_table).unwrap();
        tampered_run(c, untouched, |d, s| {
            d.map(0, PA, s[0], 3, Prot::RW).unwrap();
            d.clear();
        })
        .unwrap();
        // No leaf invalidation after the unmap of pages.
        // (In ops_replace the later walk invalidation of the replaced table covers them.)
        tampered_run(
            c,
            |f, _| f.retain(|e| !matches!(e.1, FlushEvent::Leaves { .. })),
            ops_replace,
        )
        .unwrap();
        let e = tampered_run(
            c,
            |f, _| f.retain(|e| !matches!(e.1, FlushEvent::Leaves { .. })),
            |d, s| {
                d.map(s[1], PA, s[0], 4, Prot::RW).unwrap();
                d.unmap(s[1] + s[0], s[0], 2).unwrap();
            },
        );
        expect_err(e, &["stale translation", "leaf at level 3"]);
        // No walk invalidation: the table freed by the block map.
        let e = tampered_run(
            c,
            |f, _| f.retain(|e| !matches!(e.1, FlushEvent::Walk { .. })),
            ops_replace,
        );
        expect_err(e, &["freed before the walk invalidation"]);
        let e = tampered_run(
            c,
            |f, _| f.retain(|e| !matches!(e.1, FlushEvent::Walk { .. })),
            ops_free_table,
        );
        expect_err(e, &["freed before the walk invalidation"]);
        // The walk invalidation demoted to a leaf one.
        let e = tampered_run(
            c,
            |f, _| {
                for e in f.iter_mut() {
                    if let FlushEvent::Walk {
                        iova,
                        size,
                        granule,
                    } = e.1
                    {
                        e.1 = FlushEvent::Leaves {
                            start: iova,
                            end: iova + size - 1,
                            pgsize: granule,
                        };
                    }
                }
            },
            ops_free_table,
        );
        expect_err(e, &["freed before the walk invalidation"]);
        // The defer moved before the walk invalidation.
        let e = tampered_run(
            c,
            |f, a| {
                let walk = f
                    .iter()
                    .find(|e| matches!(e.1, FlushEvent::Walk { .. }))
                    .unwrap()
                    .0;
                for ev in a.iter_mut() {
                    if let AllocEvent::Defer { seq, .. } = ev {
                        *seq = walk - 1;
                    }
                }
            },
            ops_free_table,
        );
        expect_err(e, &["freed before the walk invalidation"]);
        // clear() without its full invalidation.
        let e = tampered_run(
            c,
            |f, _| f.retain(|e| e.1 != FlushEvent::All),
            |d, s| {
                d.map(0, PA, s[0], 3, Prot::RW).unwrap();
                d.clear();
            },
        );
        expect_err(e, &["freed before the walk invalidation"]);
    }
}

// ---------------------------------------------------------------------------------------
// Hand-made logs: each rule can fail. 4K granule, stage 1, IAS 39: root at L1 (512
// entries, 1G each), descriptors encoded from ARM-FACTS §4.

const ROOT: u64 = 0x4000_0000;
const T2: u64 = 0x4000_1000; // L2 table for IOVA [0, 1G)
const T3: u64 = 0x4000_2000; // L3 table for IOVA [0, 2M)
const T3B: u64 = 0x4000_3000; // L3 table for IOVA [2M, 4M)

/// Table descriptor: address | 0b11.
fn table(pa: u64) -> u64 {
    pa | 0b11
}
/// L3 page: OA | AF (bit 10) | 0b11.
fn page(oa: u64) -> u64 {
    oa | 1 << 10 | 0b11
}
/// L1/L2 block: OA | AF | 0b01.
fn block(oa: u64) -> u64 {
    oa | 1 << 10 | 0b01
}

struct Hand {
    tlb: TlbOracle,
    seq: u64,
    op: usize,
    flushes: Vec<(u64, FlushEvent)>,
    writes: Vec<DeviceWrite>,
    allocs: Vec<AllocEvent>,
}

impl Hand {
    fn new() -> Hand {
        let c = DomainConfig::new(Arm64S1, G4K, 39, 48);
        let p = WalkParams::new(G4K, 39, 48, 1, false);
        Hand {
            tlb: TlbOracle::new(&c, ROOT, &p),
            seq: 100,
            op: 0,
            flushes: vec![],
            writes: vec![],
            allocs: vec![],
        }
    }

    fn next(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }
    fn w(&mut self, pa: u64, old: u64, new: u64) -> &mut Self {
        let seq = self.next();
        self.writes.push(DeviceWrite { seq, pa, old, new });
        self
    }
    fn walk(&mut self, iova: u64, size: u64) -> &mut Self {
        let seq = self.next();
        self.flushes.push((
            seq,
            FlushEvent::Walk {
                iova,
                size,
                granule: 0x1000,
            },
        ));
        self
    }
    fn leaves(&mut self, start: u64, end: u64, pgsize: u64) -> &mut Self {
        let seq = self.next();
        self.flushes
            .push((seq, FlushEvent::Leaves { start, end, pgsize }));
        self
    }
    fn all(&mut self) -> &mut Self {
        let seq = self.next();
        self.flushes.push((seq, FlushEvent::All));
        self
    }
    fn alloc(&mut self, pa: u64, level: u8) -> &mut Self {
        let seq = self.next();
        self.allocs.push(AllocEvent::Alloc {
            seq,
            pa,
            level,
            frames: 1,
            owner: Owner::Default,
        });
        self
    }
    fn defer(&mut self, pa: u64) -> &mut Self {
        let seq = self.next();
        self.allocs.push(AllocEvent::Defer { seq, pa });
        self
    }
    fn release(&mut self, pa: u64) -> &mut Self {
        let seq = self.next();
        self.allocs.push(AllocEvent::Release { seq, pa });
        self
    }
    /// Ends the op: checks the logs recorded since the last one.
    fn op(&mut self) -> Result<(), Divergence> {
        let r = self.tlb.check_op(
            self.op,
            &std::mem::take(&mut self.flushes),
            &std::mem::take(&mut self.writes),
            &std::mem::take(&mut self.allocs),
        );
        self.op += 1;
        r
    }

    /// Op 0: root[0] -> T2, T2[0] -> T3, T2[1] -> T3B, T3[1] = page 0x8000_1000 (IOVA 0x1000),
    /// T3B[0] = page (IOVA 0x20_0000); no invalidation needed (nothing was valid before).
    fn populated() -> Hand {
        let mut h = Hand::new();
        h.alloc(T2, 2).w(ROOT, 0, table(T2));
        h.alloc(T3, 3).w(T2, 0, table(T3));
        h.alloc(T3B, 3).w(T2 + 8, 0, table(T3B));
        h.w(T3 + 8, 0, page(0x8000_1000));
        h.w(T3B, 0, page(0x8020_0000));
        h.op().expect("building tables needs no invalidation");
        h
    }
}

#[track_caller]
fn expect_err(r: Result<(), Divergence>, parts: &[&str]) -> Divergence {
    let d = r.expect_err("the oracle must report this");
    assert_eq!(d.oracle(), ptfuzz_oracles::OracleId::Tlb);
    for p in parts {
        assert!(d.what().contains(p), "{:?} lacks {p:?}", d.what());
    }
    d
}

#[test]
fn cleared_leaf_without_invalidation_is_stale() {
    let mut h = Hand::populated();
    h.w(T3 + 8, page(0x8000_1000), 0);
    let d = expect_err(
        h.op(),
        &[
            "stale translation at IOVA 0x1000 after op 1",
            "leaf at level 3",
        ],
    );
    println!("{d}");
    // The same with a covering leaf invalidation passes.
    let mut h = Hand::populated();
    h.w(T3 + 8, page(0x8000_1000), 0)
        .leaves(0x1000, 0x1fff, 0x1000);
    h.op().unwrap();
    // An invalidation issued before the clear does not count.
    let mut h = Hand::populated();
    h.leaves(0x1000, 0x1fff, 0x1000)
        .w(T3 + 8, page(0x8000_1000), 0);
    expect_err(h.op(), &["stale translation at IOVA 0x1000"]);
    // Neither does one of another range.
    let mut h = Hand::populated();
    h.w(T3 + 8, page(0x8000_1000), 0)
        .leaves(0x2000, 0x2fff, 0x1000);
    expect_err(h.op(), &["stale translation at IOVA 0x1000"]);
}

#[test]
fn leaf_invalidation_with_the_wrong_ttl_is_stale() {
    // A 2M block invalidated as 4K pages: TTL 3 names level 3, the block is at level 2.
    let mut h = Hand::new();
    h.alloc(T2, 2)
        .w(ROOT, 0, table(T2))
        .w(T2 + 16, 0, block(0x8040_0000));
    h.op().unwrap();
    h.w(T2 + 16, block(0x8040_0000), 0)
        .leaves(0x40_0000, 0x5f_ffff, 0x1000);
    expect_err(
        h.op(),
        &["stale translation at IOVA 0x400000", "leaf at level 2"],
    );
    h.w(T2 + 16, 0, block(0x8040_0000)).op().unwrap();
    h.w(T2 + 16, block(0x8040_0000), 0)
        .leaves(0x40_0000, 0x5f_ffff, 0x20_0000);
    h.op().unwrap();
}

#[test]
fn table_entry_covered_only_by_leaves_is_stale() {
    let mut h = Hand::populated();
    // Unlink T3 (its leaf at 0x1000 is gone with it) and invalidate only leaves.
    h.w(T2, table(T3), 0).leaves(0, 0x1f_ffff, 0x1000);
    let d = expect_err(
        h.op(),
        &[
            "stale translation at IOVA 0x0 after op 1",
            "table entry at level 2",
            "0x40002003",
        ],
    );
    println!("{d}");
    // A walk invalidation covers it (and the leaf below it).
    let mut h = Hand::populated();
    h.w(T2, table(T3), 0).walk(0, 0x20_0000);
    h.op().unwrap();
}

#[test]
fn unlinked_subtree_needs_its_whole_span_invalidated() {
    // Unlinking T2 (IOVA [0, 1G)) makes every entry below it stale; a walk of the first
    // 2M covers T2[0] and the leaf at 0x1000, but neither the root entry (its span is 1G)
    // nor T2[1] and the leaf at 2M.
    let mut h = Hand::populated();
    h.w(ROOT, table(T2), 0).walk(0, 0x20_0000);
    expect_err(
        h.op(),
        &[
            "stale translation at IOVA 0x0 after op 1",
            "table entry at level 1",
            "IOVA span [0x0, 0x3fffffff]",
            "2 more stale entries",
        ],
    );
    let mut h = Hand::populated();
    h.w(ROOT, table(T2), 0).walk(0, 0x4000_0000);
    h.op().unwrap();
}

#[test]
fn a_table_linked_from_a_second_entry_is_reported() {
    let mut h = Hand::populated();
    h.w(T2 + 16, 0, table(T3));
    expect_err(
        h.op(),
        &[
            "table 0x40002000 linked a second time in op 1",
            "IOVA 0x400000",
        ],
    );
    // Linking it again after its first link was cleared (and invalidated) is a move.
    let mut h = Hand::populated();
    h.w(T2, table(T3), 0)
        .walk(0, 0x20_0000)
        .w(T2 + 16, 0, table(T3));
    h.op().unwrap();
}

#[test]
fn a_walk_over_part_of_a_table_span_leaves_the_table_entry_cached() {
    // Issue 13: an SMMU may cache T2[0] (-> T3, span [0, 2M)) for any address in the span,
    // so emptying T3 and invalidating only the page that was mapped leaves it cached.
    let mut h = Hand::populated();
    h.w(T3 + 8, page(0x8000_1000), 0)
        .w(T2, table(T3), 0)
        .walk(0x1000, 0x1000);
    let d = expect_err(
        h.op(),
        &[
            "stale translation at IOVA 0x0 after op 1",
            "table entry at level 2",
            "0x40002003",
        ],
    );
    println!("{d}");
    // Freeing the table after that partial walk is a free before its invalidation.
    let mut h = Hand::populated();
    h.w(T3 + 8, page(0x8000_1000), 0)
        .w(T2, table(T3), 0)
        .walk(0x1000, 0x1000)
        .defer(T3);
    expect_err(
        h.op(),
        &[
            "table 0x40002000",
            "[0x0, 0x1fffff]",
            "freed before the walk invalidation",
        ],
    );
    // A walk that ends one byte short of the span, or starts one page in, is not enough.
    for (iova, size) in [(0, 0x1f_ffff), (0x1000, 0x1f_f000)] {
        let mut h = Hand::populated();
        h.w(T2, table(T3), 0).walk(iova, size);
        expect_err(h.op(), &["table entry at level 2"]);
    }
    // The whole span evicts it, and so does a wider walk; the leaf needs only an overlap.
    for (iova, size) in [(0, 0x20_0000), (0, 0x4000_0000)] {
        let mut h = Hand::populated();
        h.w(T3 + 8, page(0x8000_1000), 0)
            .w(T2, table(T3), 0)
            .walk(iova, size)
            .defer(T3);
        h.op().unwrap();
    }
    let mut h = Hand::populated();
    h.w(T3 + 8, page(0x8000_1000), 0).walk(0x1800, 1);
    h.op().unwrap();
}

#[test]
fn defer_before_the_walk_invalidation() {
    let mut h = Hand::populated();
    h.w(T2, table(T3), 0).defer(T3).walk(0, 0x20_0000);
    let d = expect_err(
        h.op(),
        &[
            "table 0x40002000",
            "[0x0, 0x1fffff]",
            "freed before the walk invalidation that covers it, op 1",
        ],
    );
    println!("{d}");
    // A leaf invalidation is not enough either.
    let mut h = Hand::populated();
    h.w(T2, table(T3), 0)
        .leaves(0, 0x1f_ffff, 0x1000)
        .defer(T3)
        .walk(0, 0x20_0000);
    expect_err(
        h.op(),
        &["table 0x40002000", "freed before the walk invalidation"],
    );
    // Nor freeing a table still linked.
    let mut h = Hand::populated();
    h.defer(T3B);
    expect_err(
        h.op(),
        &["table 0x40003000", "[0x200000, 0x3fffff]", "still valid"],
    );
    // Clear, walk, defer: fine; and with a full invalidation too.
    let mut h = Hand::populated();
    h.w(T2, table(T3), 0).walk(0, 0x20_0000).defer(T3);
    h.op().unwrap();
    let mut h = Hand::populated();
    h.w(ROOT, table(T2), 0).all().defer(T3).defer(T3B).defer(T2);
    h.op().unwrap();
}

#[test]
fn valid_to_different_valid_breaks_bbm() {
    let mut h = Hand::populated();
    h.w(T3 + 8, page(0x8000_1000), page(0x9000_1000))
        .leaves(0x1000, 0x1fff, 0x1000);
    let d = expect_err(
        h.op(),
        &[
            "break-before-make violated at IOVA 0x1000 (level 3) in op 1",
            "old 0x80001403 new 0x90001403",
        ],
    );
    println!("{d}");
    // A table replaced by a block in place.
    let mut h = Hand::populated();
    h.w(T2 + 8, table(T3B), block(0x8020_0000))
        .walk(0x20_0000, 0x20_0000);
    expect_err(
        h.op(),
        &["break-before-make violated at IOVA 0x200000 (level 2)"],
    );
}

#[test]
fn valid_invalid_valid_without_invalidation_breaks_bbm() {
    let mut h = Hand::populated();
    h.w(T3 + 8, page(0x8000_1000), 0)
        .w(T3 + 8, 0, page(0x9000_1000));
    let d = expect_err(
        h.op(),
        &[
            "break-before-make violated at IOVA 0x1000 (level 3) in op 1",
            "old 0x80001403 new 0x90001403",
        ],
    );
    println!("{d}");
    // Empty table replaced by a block without the walk invalidation in between.
    let mut h = Hand::populated();
    h.w(T3 + 8, page(0x8000_1000), 0)
        .leaves(0x1000, 0x1fff, 0x1000)
        .op()
        .unwrap();
    h.w(T2, table(T3), 0)
        .w(T2, 0, block(0x8000_0000))
        .walk(0, 0x20_0000);
    expect_err(
        h.op(),
        &["break-before-make violated at IOVA 0x0 (level 2) in op 2"],
    );
    // With the invalidation in between it is fine.
    let mut h = Hand::populated();
    h.w(T3 + 8, page(0x8000_1000), 0)
        .leaves(0x1000, 0x1fff, 0x1000)
        .op()
        .unwrap();
    h.w(T2, table(T3), 0)
        .walk(0, 0x20_0000)
        .defer(T3)
        .w(T2, 0, block(0x8000_0000));
    h.op().unwrap();
}

#[test]
fn alloc_of_a_deferred_frame_is_reuse_before_grace() {
    let mut h = Hand::populated();
    h.w(T2, table(T3), 0)
        .walk(0, 0x20_0000)
        .defer(T3)
        .op()
        .unwrap();
    h.alloc(T3, 3);
    let d = expect_err(
        h.op(),
        &["table 0x40002000 reused before the grace period in op 2"],
    );
    println!("{d}");
    // After the release it may be allocated, linked and written again.
    let mut h = Hand::populated();
    h.w(T2, table(T3), 0)
        .walk(0, 0x20_0000)
        .defer(T3)
        .op()
        .unwrap();
    // Poisoning a deferred frame is ignored.
    h.w(T3 + 8, page(0x8000_1000), 0x7f7f_7f7f_7f7f_7f7c)
        .release(T3)
        .op()
        .unwrap();
    h.alloc(T3, 3)
        .w(T3 + 8, 0x7f7f_7f7f_7f7f_7f7c, 0)
        .w(T2 + 8 * 5, 0, table(T3));
    h.w(T3 + 16, 0, page(0x8000_0000)).op().unwrap();
    // The reused frame now sits at IOVA 5 * 2M: clearing its leaf needs that address.
    h.w(T3 + 16, page(0x8000_0000), 0)
        .leaves(0x2000, 0x2fff, 0x1000);
    expect_err(h.op(), &["stale translation at IOVA 0xa02000"]);
}

#[test]
fn concatenated_root_is_one_flat_array() {
    // Stage 2, 4K, IAS 40: L1 start, 2 concatenated tables (1024 entries of 1G).
    let c = DomainConfig::new(Arm64S2, G4K, 40, 40);
    let p = WalkParams::new(G4K, 40, 40, 1, true);
    let mut h = Hand::new();
    h.tlb = TlbOracle::new(&c, ROOT, &p);
    let t2 = ROOT + 0x2000;
    // Entry 600 lives in the second root table.
    h.alloc(t2, 2)
        .w(ROOT + 600 * 8, 0, table(t2))
        .w(t2 + 8, 0, block(0x8020_0000));
    h.op().unwrap();
    h.w(t2 + 8, block(0x8020_0000), 0)
        .leaves(0x96_0020_0000, 0x96_003f_ffff, 0x20_0000);
    h.op().unwrap();
    h.w(t2 + 8, 0, block(0x8020_0000)).op().unwrap();
    h.w(t2 + 8, block(0x8020_0000), 0);
    expect_err(h.op(), &["stale translation at IOVA 0x9600200000"]);
}

// ---------------------------------------------------------------------------------------
// Armv7 short descriptors (ARM-FACTS §8): 4-byte descriptors, logged as 8-byte words.

const S_ROOT: u64 = 0x4000_0000; // 16 KiB level-1 table
const S_L2: u64 = 0x4001_0000; // 1 KiB level-2 table for IOVA [0, 1M)
const S_L2B: u64 = 0x4001_0400; // its neighbour in the same 4K page, for [1M, 2M)

/// Level-1 page-table pointer: address [31:10] | 0b01.
fn s_table(pa: u64) -> u32 {
    pa as u32 | 0b01
}
/// Small page: OA | AP[0] | 0b10.
fn s_small(oa: u64) -> u32 {
    oa as u32 | 1 << 4 | 0b10
}
/// Large page (64K): OA | AP[0] | 0b01.
fn s_large(oa: u64) -> u32 {
    oa as u32 | 1 << 4 | 0b01
}
/// Supersection (16M): OA | bit 18 | AP[0] | 0b10.
fn s_super(oa: u64) -> u32 {
    oa as u32 | 1 << 18 | 1 << 10 | 0b10
}

/// A short-descriptor `Hand`: 4-byte writes become 8-byte words of a shadow memory.
struct Short {
    h: Hand,
    mem: std::collections::HashMap<u64, u64>,
}

impl Short {
    fn new() -> Short {
        let c = DomainConfig::new(Armv7s, G4K, 32, 32);
        // The oracle takes the short layout from the config; the LPAE parameters are unused.
        let p = WalkParams::new(G4K, 32, 32, 1, false);
        let mut h = Hand::new();
        h.tlb = TlbOracle::new(&c, S_ROOT, &p);
        Short {
            h,
            mem: Default::default(),
        }
    }

    fn w(&mut self, pa: u64, d: u32) -> &mut Self {
        let word = pa & !7;
        let sh = 8 * (pa & 4);
        let old = self.mem.get(&word).copied().unwrap_or(0);
        let new = (old & !(0xffff_ffff << sh)) | (u64::from(d) << sh);
        self.mem.insert(word, new);
        self.h.w(word, old, new);
        self
    }

    /// `d` in the 16 slots from `pa` (a large page or supersection).
    fn w16(&mut self, pa: u64, d: u32) -> &mut Self {
        for i in 0..16 {
            self.w(pa + 4 * i, d);
        }
        self
    }

    /// Op 0: root[0] -> S_L2, root[1] -> S_L2B, S_L2[1] small page (IOVA 0x1000), S_L2[16..32]
    /// a large page (IOVA 0x10000), S_L2B[0] small page (IOVA 0x10_0000), root[16..32] a
    /// supersection (IOVA 0x100_0000).
    fn populated() -> Short {
        let mut s = Short::new();
        s.h.alloc(S_L2, 2).alloc(S_L2B, 2);
        s.w(S_ROOT, s_table(S_L2)).w(S_ROOT + 4, s_table(S_L2B));
        s.w(S_L2 + 4, s_small(0x8000_1000))
            .w16(S_L2 + 4 * 16, s_large(0x8001_0000))
            .w(S_L2B, s_small(0x8010_0000))
            .w16(S_ROOT + 4 * 16, s_super(0x8100_0000));
        s.h.op().expect("building tables needs no invalidation");
        s
    }
}

#[test]
fn short_cleared_small_page_without_invalidation_is_stale() {
    let mut s = Short::populated();
    s.w(S_L2 + 4, 0);
    let d = expect_err(
        s.h.op(),
        &[
            "stale translation at IOVA 0x1000 after op 1",
            "leaf at level 2",
        ],
    );
    println!("{d}");
    // Its neighbour in the same 8-byte word is untouched: one leaf invalidation suffices.
    let mut s = Short::populated();
    s.w(S_L2 + 4, 0).h.leaves(0x1000, 0x1fff, 0x1000);
    s.h.op().unwrap();
    // Another range does not.
    let mut s = Short::populated();
    s.w(S_L2 + 4, 0).h.leaves(0x2000, 0x2fff, 0x1000);
    expect_err(s.h.op(), &["stale translation at IOVA 0x1000"]);
}

#[test]
fn short_large_page_partly_invalidated_is_stale() {
    // The 16 slots cleared, only the first 4K of the page invalidated: a fragment of the
    // page may still be cached for the rest of its range.
    let mut s = Short::populated();
    s.w16(S_L2 + 4 * 16, 0).h.leaves(0x1_0000, 0x1_0fff, 0x1000);
    let d = expect_err(
        s.h.op(),
        &[
            "stale translation at IOVA 0x10000 after op 1",
            "0x1ffff",
            "leaf at level 2",
        ],
    );
    println!("{d}");
    // The whole page: fine.
    let mut s = Short::populated();
    s.w16(S_L2 + 4 * 16, 0)
        .h
        .leaves(0x1_0000, 0x1_ffff, 0x1_0000);
    s.h.op().unwrap();
    // A supersection likewise: its first section's range is not enough, its 16M is.
    let mut s = Short::populated();
    s.w16(S_ROOT + 4 * 16, 0)
        .h
        .leaves(0x100_0000, 0x10f_ffff, 0x10_0000);
    expect_err(
        s.h.op(),
        &["stale translation at IOVA 0x1000000", "leaf at level 1"],
    );
    let mut s = Short::populated();
    s.w16(S_ROOT + 4 * 16, 0)
        .h
        .leaves(0x100_0000, 0x1ff_ffff, 0x100_0000);
    s.h.op().unwrap();
}

#[test]
fn short_level2_table_freed_before_the_walk_invalidation() {
    let mut s = Short::populated();
    s.w(S_ROOT, 0).h.defer(S_L2).walk(0, 0x10_0000);
    let d = expect_err(
        s.h.op(),
        &[
            "table 0x40010000",
            "[0x0, 0xfffff]",
            "freed before the walk invalidation that covers it, op 1",
        ],
    );
    println!("{d}");
    // Clear, walk, defer: fine; its packed neighbour stays linked and may not be freed.
    let mut s = Short::populated();
    s.w(S_ROOT, 0).h.walk(0, 0x10_0000).defer(S_L2);
    s.h.op().unwrap();
    s.h.defer(S_L2B);
    expect_err(
        s.h.op(),
        &["table 0x40010400", "[0x100000, 0x1fffff]", "still valid"],
    );
    // The leaves below an unlinked table need its walk invalidation too.
    let mut s = Short::populated();
    s.w(S_ROOT, 0).h.leaves(0, 0xf_ffff, 0x1000);
    expect_err(s.h.op(), &["stale translation at IOVA 0x0", "table entry"]);
}

#[test]
fn short_valid_to_different_valid_breaks_bbm() {
    let mut s = Short::populated();
    s.w(S_L2 + 4, s_small(0x9000_1000))
        .h
        .leaves(0x1000, 0x1fff, 0x1000);
    let d = expect_err(
        s.h.op(),
        &[
            "break-before-make violated at IOVA 0x1000 (level 2) in op 1",
            "old 0x80001012 new 0x90001012",
        ],
    );
    println!("{d}");
    // A level-2 table replaced by a section in place.
    let mut s = Short::populated();
    s.w(S_ROOT + 4, s_small(0x8010_0000))
        .h
        .walk(0x10_0000, 0x10_0000);
    expect_err(
        s.h.op(),
        &["break-before-make violated at IOVA 0x100000 (level 1)"],
    );
    // Through invalid with its invalidation: fine.
    let mut s = Short::populated();
    s.w(S_L2 + 4, 0).h.leaves(0x1000, 0x1fff, 0x1000);
    s.w(S_L2 + 4, s_small(0x9000_1000));
    s.h.op().unwrap();
}
