//! Preallocation and VA reservation: the worst-case count for every granule and start
//! level, job pools (prepare/run/cleanup in any order, the pool as the only table source,
//! leftovers returned, `budget` when dry), and reservations (map allocates nothing, unmap
//! frees nothing, `busy` for larger leaves, nesting, `inval` for unknown ranges).

use ptfuzz_engine::prealloc::worst_case_tables;
use ptfuzz_engine::{
    noalloc, Domain, DomainConfig, ErrorKind, FlushOps, FormatKind, Gather, Granule, MapError, Prot,
};

use FormatKind::*;
use Granule::*;

const RW: Prot = Prot::READ.union(Prot::WRITE);
const K4: u64 = 4096;
const M2: u64 = 2 << 20;
const G1: u64 = 1 << 30;

fn dom(fmt: FormatKind, g: Granule, ias: u32, oas: u32) -> Domain {
    Domain::new(DomainConfig::new(fmt, g, ias, oas)).unwrap()
}

/// The seeds' 4K/48-bit formula, written out: the 512G, 1G and 2M regions touched.
fn seeds_formula(iova: u64, len: u64) -> u64 {
    let regions = |shift: u32| {
        let up = (iova + len).next_multiple_of(1 << shift);
        let down = iova & !((1u64 << shift) - 1);
        (up - down) >> shift
    };
    regions(39) + regions(30) + regions(21)
}

#[test]
fn count_matches_the_seeds_formula_for_4k_48() {
    let d = dom(Arm64S1, G4K, 48, 48);
    for (iova, len) in [
        (0, K4),
        (M2 - K4, 2 * K4),
        (G1 - K4, 2 * K4),
        ((512 << 30) - K4, 2 * K4),
        (0x1234_5000, 0x10_0000_0000),
        (0, 1 << 48),
    ] {
        assert_eq!(
            worst_case_tables(d.geometry(), iova, len),
            seeds_formula(iova, len),
            "{iova:#x}+{len:#x}"
        );
        assert_eq!(d.prealloc_count(iova, len), Ok(seeds_formula(iova, len)));
    }
}

#[test]
fn count_for_other_granules_and_start_levels() {
    // 16K, 48-bit: levels 0..3, each L1 table spans 64G, L2 32M... tables at levels 1, 2, 3.
    let d = dom(Arm64S1, G16K, 48, 48);
    assert_eq!(d.prealloc_count(0, 16 << 10), Ok(3));
    // 64K, 48-bit: start level 1 (a 64-entry root), tables at levels 2 and 3.
    let d = dom(Arm64S1, G64K, 48, 48);
    assert_eq!(d.prealloc_count(0, 64 << 10), Ok(2));
    assert_eq!(d.prealloc_count((512 << 20) - (64 << 10), 128 << 10), Ok(3));
    // 4K, 32-bit stage 1: start level 1, tables at levels 2 and 3.
    let d = dom(Arm64S1, G4K, 32, 48);
    assert_eq!(d.prealloc_count(0, K4), Ok(2));
    // Stage 2 with a concatenated root (4K, IAS 40: start level 1, 2 root frames).
    let d = dom(Arm64S2, G4K, 40, 40);
    assert_eq!(d.prealloc_count(G1 - K4, 2 * K4), Ok(4));
    // Argument checks.
    assert_eq!(d.prealloc_count(0, 0), Err(ErrorKind::Inval));
    assert_eq!(d.prealloc_count(1, K4), Err(ErrorKind::Inval));
    assert_eq!(
        d.prealloc_count((1 << 40) - K4, 2 * K4),
        Err(ErrorKind::Range)
    );
}

#[test]
fn jobs_run_out_of_order_and_take_tables_only_from_their_pools() {
    let mut d = dom(Arm64S1, G4K, 48, 48);
    let a = d.job_prepare(1, 0, 2 * M2).unwrap();
    let b = d.job_prepare(2, 0x80_0000_0000, M2).unwrap();
    assert_eq!((a, b), (1 + 1 + 2, 1 + 1 + 1));
    assert_eq!(d.job_prepare(1, 0, K4), Err(ErrorKind::Exists));
    let c0 = d.counters();
    assert_eq!(c0.pooled, a + b);
    assert_eq!(c0.allocated, 1);
    // Job 2 runs first and uses its 3 pages exactly.
    assert_eq!(d.job_run(2, 0x80_0000_0000, 0, K4, 4, RW), Ok(4 * K4));
    let c1 = d.counters();
    assert_eq!((c1.allocated, c1.pooled), (4, a + b - 3));
    // A plain map in between changes the tree; job 1 then needs fewer tables.
    d.map(M2, 0, K4, 1, RW).unwrap();
    assert_eq!(
        d.counters().pooled,
        a + b - 3,
        "a plain map never takes pool pages"
    );
    assert_eq!(d.job_run(1, 0, 0, K4, 512, RW), Ok(512 * K4));
    assert_eq!(
        d.job_run(1, 0, 0, K4, 1, RW),
        Err(MapError::new(ErrorKind::Inval, 0)),
        "runs once"
    );
    // The plain map built L1, L2 and the 2M..4M table: job 1 only needed the 0..2M one.
    assert_eq!(d.job_cleanup(1), Ok(3));
    assert_eq!(d.job_cleanup(2), Ok(0));
    assert_eq!(d.job_cleanup(2), Err(ErrorKind::Inval));
    assert_eq!(d.counters().pooled, 0);
    assert!(d.tables().pools().next().is_none());
}

#[test]
fn a_job_never_run_is_cleaned_up_without_leaking() {
    let mut d = dom(Arm64S1, G4K, 39, 40);
    let before = d.mem().frames();
    let n = d.job_prepare(7, 0, G1).unwrap();
    assert_eq!(d.mem().frames(), before + n);
    assert_eq!(d.job_cleanup(7), Ok(n));
    // The frames are on the free list: the next allocations reuse them, no memory grows.
    d.map(0, 0, K4, 1, RW).unwrap();
    assert_eq!(d.mem().frames(), before + n);
    assert_eq!(d.counters().pooled, 0);
}

#[test]
fn a_dry_pool_stops_the_map_with_budget() {
    let mut d = dom(Arm64S1, G4K, 48, 48);
    assert_eq!(d.job_prepare(1, 0, K4), Ok(3));
    // Mapped outside its range: the first 2M fits the pool, the next 2M needs a 4th table.
    let r = d.job_run(1, M2 - K4, 0, K4, 2, RW);
    assert_eq!(r, Err(MapError::new(ErrorKind::Budget, K4)));
    assert_eq!(d.counters().allocated, 1 + 3, "nothing from the allocator");
}

#[test]
fn failed_prepare_takes_nothing() {
    let mut d = dom(Arm64S1, G4K, 48, 48);
    d.fail_nth_alloc(Some(1));
    assert_eq!(d.job_prepare(1, 0, K4), Err(ErrorKind::Nomem));
    assert_eq!(d.counters().pooled, 0);
    assert_eq!(d.job_cleanup(1), Err(ErrorKind::Inval));
    // Past 2^OAS: 32-bit output, a huge range needs more frames than fit.
    let mut d = dom(Arm64S1, G4K, 48, 32);
    assert_eq!(d.job_prepare(1, 0, 1 << 47), Err(ErrorKind::Nomem));
    assert_eq!(d.counters().failed, 1);
}

#[test]
fn reserved_ranges_never_allocate_nor_free() {
    let mut d = dom(Arm64S1, G4K, 48, 48);
    assert_eq!(d.reserve_va(M2 - K4, 2 * K4), Ok(1 + 1 + 2));
    let c = d.counters();
    assert_eq!((c.allocated, c.live, c.pooled), (5, 5, 0));
    d.map(M2 - K4, 0, K4, 2, RW).unwrap();
    assert_eq!(d.unmap(M2 - K4, K4, 2), Ok(2 * K4));
    assert_eq!(d.counters(), c, "map and unmap inside the reservation");
    // A 2M leaf over the pinned last-level table: busy.
    assert_eq!(
        d.map(0, 0, M2, 1, RW),
        Err(MapError::new(ErrorKind::Busy, 0))
    );
    // Nesting: a second, overlapping reservation allocates nothing more.
    assert_eq!(d.reserve_va(M2, K4), Ok(0));
    assert_eq!(
        d.unreserve_va(M2 - K4, 2 * K4),
        Ok(1),
        "0..2M table is now unpinned and empty"
    );
    assert_eq!(d.unreserve_va(M2 - K4, 2 * K4), Err(ErrorKind::Inval));
    assert_eq!(d.unreserve_va(M2, K4), Ok(3));
    assert_eq!(d.counters().live, 1);
}

#[test]
fn reserve_refuses_block_leaves_and_unmap_strips_pinned_tables() {
    let mut d = dom(Arm64S1, G4K, 48, 48);
    d.map(0, 0, M2, 1, RW).unwrap();
    assert_eq!(d.reserve_va(K4, K4), Err(ErrorKind::Exists));
    assert_eq!(d.counters().allocated, 3);
    assert_eq!(d.reserve_va(G1 + K4, K4), Ok(2));
    d.map(G1, 0, K4, 4, RW).unwrap();
    // Unmapping 1G around the pinned tables removes the leaves, keeps the tables.
    assert_eq!(d.unmap(G1, G1, 1), Ok(G1));
    let live = d.counters().live;
    assert_eq!(d.lookup(G1), None);
    assert_eq!(d.unreserve_va(G1 + K4, K4), Ok(2));
    assert_eq!(d.counters().live, live - 2);
}

/// Records whether each flush call ran inside a no-allocate section (it should not see
/// one: flush logging pauses it; here we only observe the flag around the engine).
#[derive(Default)]
struct SeeSection(Vec<bool>);

impl FlushOps for SeeSection {
    fn flush_all(&mut self) {}
    fn flush_walk(&mut self, _: u64, _: u64, _: u64) {
        let on = noalloc::active();
        let _p = noalloc::Pause::new();
        self.0.push(on);
    }
    fn sync(&mut self, _: &Gather) {}
}

#[test]
fn job_runs_are_no_allocate_sections() {
    let mut d = Domain::with_flush(
        DomainConfig::new(Arm64S1, G4K, 48, 48),
        SeeSection::default(),
        None,
    )
    .unwrap();
    // Replacing an empty table outside a job: no section.
    d.map(G1, 0, K4, 1, RW).unwrap();
    d.unmap(G1, K4, 1).unwrap();
    d.map(G1, 0, M2, 1, RW).unwrap();
    d.map(0, 0, K4, 1, RW).unwrap();
    d.job_prepare(1, 0, M2).unwrap();
    // Replacing an empty table in a job run: the walk flush happens inside the section.
    d.unmap(0, K4, 1).unwrap();
    d.job_run(1, 0, 0, M2, 1, RW).unwrap();
    assert!(!noalloc::active());
    assert_eq!(d.flush_ops().0.last(), Some(&true));
    assert_eq!(d.flush_ops().0.first(), Some(&false));
}
