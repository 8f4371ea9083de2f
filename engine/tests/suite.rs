//! The generic engine suite: every body below runs once per format, as a named test group
//! (`cargo test -p ptfuzz-engine arm64_s1::`, `... armv7s::`), over every configuration
//! `formats::configs` lists for that format. Rules: docs/SEMANTICS.md ("map", "unmap",
//! "Memory and the allocator", "Preallocation"). Format-specific tests (descriptor bytes,
//! v7s supersections, ...) stay in their own files.

#[macro_use]
mod formats;

use formats::{configs, Named};
use ptfuzz_engine::{Counters, Domain, ErrorKind, FormatKind, MapError, Prot};

const RW: Prot = Prot::RW;

fn domain(n: &Named) -> Domain {
    Domain::new(n.cfg).unwrap_or_else(|e| panic!("{}: {e}", n.name))
}

/// What one configuration looks like to the generic bodies.
struct Shape {
    ias_end: u64,
    oa_end: u64,
    start: u32,
    sizes: Vec<u64>,
    /// Leaf level of each page size.
    levels: Vec<u32>,
    /// Bytes one entry at each level spans.
    span: Vec<u64>,
}

impl Shape {
    fn of(d: &Domain) -> Shape {
        let geo = d.geometry();
        let sizes = d.page_sizes();
        assert!(!sizes.is_empty(), "{:?}: no page size", d.config());
        let levels = sizes
            .iter()
            .map(|&s| geo.level_of_pgsize(s).expect("a page size has a level"))
            .collect();
        Shape {
            ias_end: 1 << geo.ias,
            oa_end: 1 << geo.oas,
            start: geo.start_level,
            levels,
            span: (0..=geo.last_level)
                .map(|l| {
                    if l < geo.start_level {
                        0
                    } else {
                        1 << geo.shift(l)
                    }
                })
                .collect(),
            sizes,
        }
    }
    fn small(&self) -> u64 {
        self.sizes[0]
    }
    /// The span of the table holding the smallest pages, when it is not the root.
    fn leaf_table_span(&self) -> Option<u64> {
        let l = self.levels[0];
        (l > self.start).then(|| self.span[(l - 1) as usize])
    }
}

fn delta(after: Counters, before: Counters) -> (u64, u64, u64, u64) {
    (
        after.allocated - before.allocated,
        after.live.wrapping_sub(before.live),
        after.deferred.wrapping_sub(before.deferred),
        after.freed - before.freed,
    )
}

/// Every listed configuration is a domain of its format, and the list covers each format.
pub fn configurations_are_domains(f: FormatKind) {
    let list = configs(f);
    assert!(!list.is_empty(), "{f}: no configuration");
    assert!(
        list.iter().any(|n| !n.cfg.coherent),
        "{f}: no non-coherent walker"
    );
    let mut names: Vec<&str> = list.iter().map(|n| n.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), list.len(), "{f}: configuration names repeat");
    for n in &list {
        assert_eq!(n.cfg.format, f, "{} is listed under {f}", n.name);
        let d = domain(n);
        let s = Shape::of(&d);
        assert!(s.sizes.windows(2).all(|w| w[0] < w[1]), "{}", n.name);
        assert!(s.sizes.iter().all(|p| p.is_power_of_two()), "{}", n.name);
        assert_eq!(s.small(), n.cfg.granule.size(), "{}: smallest page", n.name);
        assert_eq!(
            d.counters().live,
            1,
            "{}: a new domain holds its root",
            n.name
        );
    }
}

/// Page sizes as docs/SEMANTICS.md "Page sizes" states them: a stage-2 domain under the
/// default policy has exactly the leaf sizes of a stage-1 domain of the same granule and IAS
/// (a deeper start with `concat=max` may only drop the largest); armv7s has 4K, 64K, 1M,
/// 16M.
pub fn page_sizes_follow_the_documents(f: FormatKind) {
    use ptfuzz_engine::{Concat, DomainConfig};
    for n in configs(f) {
        let got = domain(&n).page_sizes();
        let c = n.cfg;
        let want = match f {
            FormatKind::Armv7s => vec![1 << 12, 1 << 16, 1 << 20, 1 << 24],
            _ => {
                let s1 = DomainConfig::new(FormatKind::Arm64S1, c.granule, c.ias, 48);
                Domain::new(s1).expect("the stage-1 twin").page_sizes()
            }
        };
        if c.concat == Concat::Max {
            assert!(
                got.len() < want.len() || got == want,
                "{}: {got:x?}",
                n.name
            );
            assert_eq!(got[..], want[..got.len()], "{}: {got:x?}", n.name);
        } else {
            assert_eq!(got, want, "{}", n.name);
        }
    }
}

/// map → lookup → unmap at every page size, at the first and at the last page below IAS,
/// on a fresh domain each: the tables a map allocates are exactly the path to its leaf.
pub fn round_trip_at_every_page_size(f: FormatKind) {
    for n in configs(f) {
        let s = Shape::of(&domain(&n));
        for (i, &ps) in s.sizes.iter().enumerate() {
            for (iova, pa) in [(0, s.oa_end - ps), (s.ias_end - ps, ps)] {
                let what = format!("{} pgsize {ps:#x} iova {iova:#x}", n.name);
                let mut d = domain(&n);
                let c0 = d.counters();
                assert_eq!(d.map(iova, pa, ps, 1, RW), Ok(ps), "{what}");
                let tables = (s.levels[i] - s.start) as u64;
                assert_eq!(delta(d.counters(), c0), (tables, tables, 0, 0), "{what}");
                for off in [0, ps / 2, ps - 1] {
                    assert_eq!(d.lookup(iova + off), Some(pa + off), "{what} +{off:#x}");
                }
                if iova > 0 {
                    assert_eq!(d.lookup(iova - 1), None, "{what}: below");
                }
                if iova + ps < s.ias_end {
                    assert_eq!(d.lookup(iova + ps), None, "{what}: above");
                }
                assert_eq!(
                    d.map(iova, pa, ps, 1, RW),
                    Err(MapError::new(ErrorKind::Exists, 0)),
                    "{what}: again"
                );
                assert_eq!(d.unmap(iova, ps, 1), Ok(ps), "{what}");
                assert_eq!(d.lookup(iova), None, "{what}: after unmap");
                assert_eq!(d.unmap(iova, ps, 1), Ok(0), "{what}: a hole unmaps nothing");
                // Beyond IAS: range; misaligned: inval.
                assert_eq!(
                    d.map(s.ias_end, 0, ps, 1, RW).map_err(|e| e.kind),
                    Err(ErrorKind::Range)
                );
                assert_eq!(
                    d.unmap(s.ias_end - ps, ps, 2),
                    Err(ErrorKind::Range),
                    "{what}"
                );
                assert_eq!(
                    d.unmap(iova + ps / 2, ps, 1),
                    Err(ErrorKind::Inval),
                    "{what}"
                );
                assert_eq!(d.lookup(s.ias_end), None, "{what}");
            }
        }
    }
}

/// Pages that straddle a table boundary land in two tables; unmapping a table's whole span
/// frees it (deferred until the grace period), one that is only partly unmapped stays.
pub fn table_boundaries_and_freeing(f: FormatKind) {
    for n in configs(f) {
        let mut d = domain(&n);
        let s = Shape::of(&d);
        let ps = s.small();
        let Some(t) = s.leaf_table_span() else {
            // The smallest pages live in the root: nothing to allocate or free.
            let c0 = d.counters();
            let iova = s.ias_end / 2 - ps;
            assert_eq!(d.map(iova, 0, ps, 2, RW), Ok(2 * ps), "{}", n.name);
            assert_eq!(d.unmap(iova, ps, 2), Ok(2 * ps), "{}", n.name);
            assert_eq!(d.counters(), c0, "{}: the root alone", n.name);
            continue;
        };
        let what = n.name;
        // Two pages either side of the boundary at t (two leaf tables).
        let c0 = d.counters();
        assert_eq!(d.map(t - ps, 0, ps, 2, RW), Ok(2 * ps), "{what}");
        assert_eq!(d.lookup(t - 1), Some(ps - 1), "{what}");
        assert_eq!(d.lookup(t), Some(ps), "{what}");
        let (alloc, ..) = delta(d.counters(), c0);
        assert!(alloc >= 2, "{what}: {alloc} tables for two leaf tables");
        // Unmapping both pages leaves both tables (neither span is covered).
        assert_eq!(d.unmap(t - ps, ps, 2), Ok(2 * ps), "{what}");
        let c1 = d.counters();
        assert_eq!(
            c1.deferred, c0.deferred,
            "{what}: partly unmapped tables stay"
        );
        // Fill the whole second table and unmap it: that table (only) is freed.
        let pages = t / ps;
        assert_eq!(d.map(t, s.oa_end - t, ps, pages, RW), Ok(t), "{what}");
        assert_eq!(d.lookup(2 * t - 1), Some(s.oa_end - 1), "{what}");
        assert_eq!(d.unmap(t, ps, pages), Ok(t), "{what}");
        let c2 = d.counters();
        assert_eq!(
            delta(c2, c1),
            (0, u64::MAX, 1, 0),
            "{what}: one table deferred"
        );
        d.grace_period();
        let c3 = d.counters();
        assert_eq!(
            (c3.deferred, c3.freed - c2.freed),
            (0, 1),
            "{what}: grace period"
        );
        // The freed table is reused before memory grows.
        let frames = d.mem().frames();
        assert_eq!(d.map(t, 0, ps, 1, RW), Ok(ps), "{what}");
        assert_eq!(d.mem().frames(), frames, "{what}: reuse before growth");
        assert_eq!(d.lookup(t + 1), Some(1), "{what}");
    }
}

/// No splitting, holes stop an unmap, `exists` under and over leaves, an empty table is
/// replaced by a block (docs/SEMANTICS.md "map", "unmap").
pub fn partial_unmaps_and_holes(f: FormatKind) {
    for n in configs(f) {
        let mut d = domain(&n);
        let s = Shape::of(&d);
        let what = n.name;
        let small = s.small();
        // Holes: pages at 0 and 2*small, an unmap of three stops at the hole.
        assert_eq!(d.map(0, 0, small, 1, RW), Ok(small), "{what}");
        assert_eq!(
            d.map(2 * small, 2 * small, small, 1, RW),
            Ok(small),
            "{what}"
        );
        assert_eq!(d.unmap(0, small, 3), Ok(small), "{what}: stops at the hole");
        assert_eq!(d.lookup(2 * small), Some(2 * small), "{what}");
        assert_eq!(d.unmap(small, small, 2), Ok(0), "{what}: starts at a hole");
        assert_eq!(d.unmap(2 * small, small, 1), Ok(small), "{what}");
        // prot without r or w maps nothing.
        assert_eq!(d.map(0, 0, small, 1, Prot::EXEC), Ok(0), "{what}");
        assert_eq!(d.lookup(0), None, "{what}");
        for i in 1..s.sizes.len() {
            let big = s.sizes[i];
            let what = format!("{} big {big:#x}", n.name);
            let iova = big; // aligned, below IAS (big <= IAS/2 for every listed config)
            assert!(2 * big <= s.ias_end, "{what}");
            assert_eq!(d.map(iova, big, big, 1, RW), Ok(big), "{what}");
            // A smaller unmap inside the block stops at once: no splitting.
            assert_eq!(d.unmap(iova, small, 1), Ok(0), "{what}");
            assert_eq!(d.unmap(iova + big - small, small, 1), Ok(0), "{what}");
            assert_eq!(d.lookup(iova + small), Some(big + small), "{what}");
            // A smaller map inside the block: exists.
            assert_eq!(
                d.map(iova + small, 0, small, 1, RW),
                Err(MapError::new(ErrorKind::Exists, 0)),
                "{what}"
            );
            assert_eq!(d.unmap(iova, big, 1), Ok(big), "{what}");
            // A leaf under the block's slot: exists; once unmapped, the empty table (if
            // the block sits above it) is replaced by the block.
            assert_eq!(d.map(iova + small, 0, small, 1, RW), Ok(small), "{what}");
            assert_eq!(
                d.map(iova, big, big, 1, RW),
                Err(MapError::new(ErrorKind::Exists, 0)),
                "{what}"
            );
            assert_eq!(d.unmap(iova + small, small, 1), Ok(small), "{what}");
            let c0 = d.counters();
            assert_eq!(d.map(iova, big, big, 1, RW), Ok(big), "{what}: replaces");
            // The whole empty subtree under the block's slot goes.
            let replaced = (s.levels[0] - s.levels[i]) as u64;
            assert_eq!(d.counters().deferred - c0.deferred, replaced, "{what}");
            assert_eq!(d.lookup(iova + big - 1), Some(2 * big - 1), "{what}");
            // A larger unmap over the block and the hole after it counts the block only.
            assert_eq!(d.unmap(iova, big, 2), Ok(big), "{what}");
            d.grace_period();
        }
    }
}

/// clear removes every leaf and table but the root; everything is freed after the grace
/// period, and the domain maps again.
pub fn clear_frees_everything(f: FormatKind) {
    for n in configs(f) {
        let mut d = domain(&n);
        let s = Shape::of(&d);
        let c0 = d.counters();
        let mut mapped = Vec::new();
        for (k, &ps) in s.sizes.iter().enumerate() {
            for iova in [ps * (k as u64 + 1), s.ias_end - ps * (k as u64 + 1)] {
                if d.map(iova, ps, ps, 1, RW) == Ok(ps) {
                    mapped.push(iova);
                }
            }
        }
        assert!(mapped.len() >= s.sizes.len(), "{}: {mapped:x?}", n.name);
        let c1 = d.counters();
        d.clear();
        for &iova in &mapped {
            assert_eq!(d.lookup(iova), None, "{}: {iova:#x} after clear", n.name);
        }
        let c2 = d.counters();
        assert_eq!(c2.live, c0.live, "{}: only the root is live", n.name);
        assert_eq!(
            c2.deferred,
            c1.live - c0.live,
            "{}: all else deferred",
            n.name
        );
        d.grace_period();
        assert_eq!(d.counters().deferred, 0, "{}", n.name);
        let ps = s.small();
        assert_eq!(
            d.map(0, 0, ps, 1, RW),
            Ok(ps),
            "{}: maps after clear",
            n.name
        );
    }
}

/// An injected allocation failure stops a map with `nomem`, the pages before it stay
/// mapped and the tables allocated before it stay; the next map succeeds.
pub fn allocation_failure_injection(f: FormatKind) {
    for n in configs(f) {
        let mut d = domain(&n);
        let s = Shape::of(&d);
        let ps = s.small();
        let what = n.name;
        let Some(t) = s.leaf_table_span() else {
            // No table to allocate: an armed failure is never reached.
            d.fail_nth_alloc(Some(1));
            assert_eq!(d.map(0, 0, ps, 1, RW), Ok(ps), "{what}");
            assert_eq!(d.counters().failed, 0, "{what}");
            continue;
        };
        d.fail_nth_alloc(Some(1));
        assert_eq!(
            d.map(t, 0, ps, 1, RW),
            Err(MapError::new(ErrorKind::Nomem, 0)),
            "{what}"
        );
        assert_eq!(d.counters().failed, 1, "{what}");
        assert_eq!(d.lookup(t), None, "{what}");
        // The page before the boundary gets its path; the one after needs a new leaf table.
        assert_eq!(d.map(t - ps, 0, ps, 1, RW), Ok(ps), "{what}");
        d.fail_nth_alloc(Some(1));
        assert_eq!(
            d.map(t - ps, 0, ps, 2, RW),
            Err(MapError::new(ErrorKind::Exists, 0)),
            "{what}: exists first"
        );
        assert_eq!(d.unmap(t - ps, ps, 1), Ok(ps), "{what}");
        assert_eq!(
            d.map(t - ps, 0, ps, 2, RW),
            Err(MapError::new(ErrorKind::Nomem, ps)),
            "{what}: the page before the failure stays"
        );
        assert_eq!(d.lookup(t - ps), Some(0), "{what}");
        assert_eq!(d.lookup(t), None, "{what}");
        assert_eq!(d.counters().failed, 2, "{what}");
        assert_eq!(d.map(t, ps, ps, 1, RW), Ok(ps), "{what}: disarmed");
        assert_eq!(d.lookup(t), Some(ps), "{what}");
    }
}

/// A reservation installs and pins the tables of its range: maps inside need no
/// allocation, a block over a pinned table is `busy`, unreserve frees what it pinned.
pub fn va_reservation(f: FormatKind) {
    for n in configs(f) {
        let mut d = domain(&n);
        let s = Shape::of(&d);
        let ps = s.small();
        let what = n.name;
        let Some(t) = s.leaf_table_span() else {
            assert_eq!(d.reserve_va(0, ps), Ok(0), "{what}: nothing to install");
            assert_eq!(d.unreserve_va(0, ps), Ok(0), "{what}");
            continue;
        };
        assert_eq!(d.reserve_va(t, ps / 2), Err(ErrorKind::Inval), "{what}");
        assert_eq!(
            d.reserve_va(s.ias_end - ps, 2 * ps),
            Err(ErrorKind::Range),
            "{what}"
        );
        let c0 = d.counters();
        let tables = (s.levels[0] - s.start) as u64;
        assert_eq!(d.reserve_va(t, t), Ok(tables), "{what}");
        assert_eq!(d.counters().live - c0.live, tables, "{what}");
        // Inside the reservation nothing is allocated, even with a failure armed.
        d.fail_nth_alloc(Some(1));
        assert_eq!(d.map(t, 0, ps, 1, RW), Ok(ps), "{what}");
        assert_eq!(d.map(2 * t - ps, ps, ps, 1, RW), Ok(ps), "{what}");
        d.fail_nth_alloc(None);
        if let Some(_block) = s.sizes.iter().find(|&&b| b == t) {
            assert_eq!(
                d.map(t, 0, t, 1, RW),
                Err(MapError::new(ErrorKind::Busy, 0)),
                "{what}: a block over a pinned table"
            );
        }
        // Unmapping the whole span removes leaves but frees no pinned table.
        assert_eq!(d.unmap(t, ps, 1), Ok(ps), "{what}");
        assert_eq!(d.unmap(2 * t - ps, ps, 1), Ok(ps), "{what}");
        assert_eq!(
            d.counters().deferred,
            c0.deferred,
            "{what}: pinned tables stay"
        );
        assert_eq!(d.unreserve_va(t, 2 * t), Err(ErrorKind::Inval), "{what}");
        assert_eq!(
            d.unreserve_va(t, t),
            Ok(tables),
            "{what}: unpinned and empty"
        );
        assert_eq!(d.counters().live, c0.live, "{what}");
        // A reservation over a block leaf: exists.
        if let Some(&big) = s.sizes.get(1) {
            assert_eq!(d.map(big, 0, big, 1, RW), Ok(big), "{what}");
            let r = d.reserve_va(big, big);
            if s.levels[1] < s.levels[0] {
                assert_eq!(r, Err(ErrorKind::Exists), "{what}: a block in the range");
            } else {
                // armv7s: a 64K large page lives in a last-level table.
                assert!(r.is_ok(), "{what}: {r:?}");
            }
        }
    }
}

/// A job's pool covers its prepared range: the run maps without allocating from the
/// allocator (failure injection does not reach it), cleanup returns what it left.
pub fn prealloc_jobs(f: FormatKind) {
    for n in configs(f) {
        let mut d = domain(&n);
        let s = Shape::of(&d);
        let ps = s.small();
        let what = n.name;
        let t = s.leaf_table_span().unwrap_or(2 * ps);
        let (iova, size) = (t, 2 * t.min(s.ias_end / 4));
        let need = d.prealloc_count(iova, size).expect(what);
        assert_eq!(
            d.prealloc_count(iova, ps / 2),
            Err(ErrorKind::Inval),
            "{what}"
        );
        let c0 = d.counters();
        assert_eq!(d.job_prepare(7, iova, size), Ok(need), "{what}");
        assert_eq!(
            d.job_prepare(7, iova, size),
            Err(ErrorKind::Exists),
            "{what}"
        );
        assert_eq!(d.counters().pooled, need, "{what}: pooled");
        d.fail_nth_alloc(Some(1));
        let mid = iova + size / 2 - ps;
        assert_eq!(d.job_run(7, mid, 0, ps, 2, RW), Ok(2 * ps), "{what}");
        assert_eq!(
            d.job_run(7, mid, 0, ps, 2, RW),
            Err(MapError::new(ErrorKind::Inval, 0)),
            "{what}: a job runs once"
        );
        d.fail_nth_alloc(None);
        assert_eq!(d.lookup(mid + ps), Some(ps), "{what}");
        let taken = d.counters().allocated - c0.allocated;
        assert_eq!(d.counters().failed, 0, "{what}");
        assert_eq!(d.job_cleanup(7), Ok(need - taken), "{what}: leftovers");
        assert_eq!(d.counters().pooled, 0, "{what}");
        assert_eq!(d.job_cleanup(7), Err(ErrorKind::Inval), "{what}");
    }
}

per_format!(all: [
    configurations_are_domains,
    page_sizes_follow_the_documents,
    round_trip_at_every_page_size,
    table_boundaries_and_freeing,
    partial_unmaps_and_holes,
    clear_frees_everything,
    allocation_failure_injection,
    va_reservation,
    prealloc_jobs,
]);

/// The suite instantiates a group for every format there is (`FormatKind::ALL` and the
/// trace-only armv7s): a new format without a group fails here.
#[test]
fn every_format_has_a_group() {
    let mut kinds: Vec<FormatKind> = FormatKind::ALL.to_vec();
    kinds.push(FormatKind::Armv7s);
    for k in kinds {
        assert!(
            formats::FORMATS.iter().any(|&(f, _)| f == k),
            "{k} has no test group"
        );
        assert_eq!(FormatKind::from_name(k.name()), Some(k));
    }
}
