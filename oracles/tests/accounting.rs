//! Frame accounting: silent on what the engine does (map, unmap, grace, clear, reservations,
//! jobs, tight windows that run out of frames), and loud on hand-made allocator states in
//! which a frame has left the bookkeeping.

mod common;
#[path = "../../engine/tests/formats/mod.rs"]
#[macro_use]
mod formats;

use common::XorShift as Rng;
use ptfuzz_engine::alloc::{Counters, FrameState, POISON};
use ptfuzz_engine::{Domain, DomainConfig, FormatKind, OrderedFlushLog, Prot};
use ptfuzz_oracles::accounting::FrameLists;
use ptfuzz_oracles::walker::{FrameInfo, TableView, WalkParams};
use ptfuzz_oracles::OracleId;
use ptfuzz_oracles::{Divergence, FrameAccounting, Model, TlbOracle};

// ---------------------------------------------------------------------------------------
// The real engine.

struct Run {
    dom: Domain<OrderedFlushLog>,
    tlb: TlbOracle,
    frames: FrameAccounting,
    op: usize,
}

impl Run {
    fn new(c: DomainConfig) -> Run {
        let mut dom = Domain::with_flush(c, OrderedFlushLog::default(), None)
            .unwrap_or_else(|e| panic!("{c:?}: {e}"));
        dom.set_event_logging(true);
        let model = Model::new(&c).unwrap();
        let p = WalkParams::for_domain(&c, model.rules());
        Run {
            tlb: TlbOracle::new(&c, dom.root(), &p),
            frames: FrameAccounting::new(c.granule.size().trailing_zeros()),
            dom,
            op: 0,
        }
    }

    #[track_caller]
    fn check(&mut self, what: &str) {
        let c = *self.dom.config();
        if let Err(d) = self.tlb.check_domain_op(self.op, &mut self.dom) {
            panic!("{c:?} op {} ({what}): {d}", self.op);
        }
        if let Err(d) = self.frames.check(&self.dom, self.tlb.reachable_tables()) {
            panic!("{c:?} op {} ({what}): {d}", self.op);
        }
        self.op += 1;
    }
}

/// Random ops in a few windows; returns how many frames reached the free list (were checked
/// for poison) and how often an allocation failed for want of frames.
fn exercise(c: DomainConfig, seed: u64, ops: usize) -> (u64, u64) {
    let mut t = Run::new(c);
    let mut r = Rng(seed | 1);
    let small = t.dom.page_sizes()[0];
    let ias_end = 1u64 << c.ias;
    let window = (small << 12).min(ias_end / 4);
    let sizes: Vec<u64> = t
        .dom
        .page_sizes()
        .into_iter()
        .filter(|&s| s <= window / 8)
        .collect();
    let bases = [0, ias_end / 2, ias_end - window];
    let mut nomem = 0;
    for i in 0..ops {
        let base = bases[r.below(3) as usize];
        let size = sizes[r.below(sizes.len() as u64) as usize];
        let iova = base + r.below(window / size) * size;
        let count = 1 + r.below(8);
        let what = match r.below(16) {
            0..=6 => {
                let pa = (1u64 << (c.oas - 1)) + r.below(64) * size;
                if let Err(e) = t.dom.map(iova, pa & !(size - 1), size, count, Prot::RW) {
                    nomem += u64::from(e.kind == ptfuzz_engine::ErrorKind::Nomem);
                }
                "map"
            }
            7..=10 => {
                let _ = t.dom.unmap(iova, size, count);
                "unmap"
            }
            11 | 12 => {
                t.dom.grace_period();
                "grace"
            }
            13 => {
                let _ = t.dom.reserve_va(iova, small * 8);
                "reserve"
            }
            14 => {
                let r = t.dom.reservations().next().map(|(k, _)| k);
                if let Some((iova, size)) = r {
                    t.dom.unreserve_va(iova, size).unwrap();
                }
                "unreserve"
            }
            _ => {
                let job = i as u32;
                if t.dom.job_prepare(job, iova, small * count).is_ok() {
                    let _ = t
                        .dom
                        .job_run(job, iova, 0x4000_0000, small, count, Prot::RW);
                    t.dom.job_cleanup(job).unwrap();
                }
                "job"
            }
        };
        t.check(what);
    }
    (t.frames.stats().poison_checked, nomem)
}

// Per format (`arm64_s1::engine_passes_in_wide_and_tight_windows`, ...) over the shared
// configuration list; armv7s's frame accounting runs in tests/suite.rs
// (`armv7s::frame_accounting`), with reachable tables from a short-descriptor decode.
per_format!(lpae: [engine_passes_in_wide_and_tight_windows]);

fn engine_passes_in_wide_and_tight_windows(f: FormatKind) {
    let (mut poisoned, mut nomem) = (0, 0);
    for n in formats::configs(f) {
        let mut c = n.cfg;
        exercise(c, 7, 300);
        // Tables in the last 16 frames below 2^OAS (the base must be aligned to 16
        // granules): frames run out and are reused.
        c.phys_base = (1u64 << c.oas) - 16 * c.granule.size();
        let (p, n) = exercise(c, 11, 300);
        poisoned += p;
        nomem += n;
    }
    println!("{f}: {poisoned} frames freed, {nomem} allocations refused");
    assert!(
        poisoned > 100,
        "{f}: only {poisoned} frames were freed: the test exercises too little"
    );
    assert!(
        nomem > 20,
        "{f}: tight windows ran out of frames only {nomem} times"
    );
}

// ---------------------------------------------------------------------------------------
// Hand-made allocator states.

const BASE: u64 = 0x4000_0000;
const SHIFT: u32 = 12;

/// An allocator state built by hand: frame metadata, lists and counters set independently,
/// so each can be made to disagree.
struct Fake {
    meta: Vec<FrameInfo>,
    mem: Vec<u64>,
    free: Vec<u64>,
    free_len: u64,
    deferred: Vec<u64>,
    pooled: Vec<u64>,
    counters: Counters,
}

fn info(state: FrameState, level: u8) -> FrameInfo {
    FrameInfo {
        state,
        level,
        frames: 1,
        live: 0,
    }
}

fn pa(i: u64) -> u64 {
    BASE + (i << SHIFT)
}

impl Fake {
    /// Frame 0: the root; 1, 2: live tables; 3, 4: free (poisoned); 5: deferred; 6: pooled.
    fn new() -> Fake {
        use FrameState::*;
        let states = [Live, Live, Live, Free, Free, Deferred, Pooled];
        let mut f = Fake {
            meta: states.iter().map(|&s| info(s, 1)).collect(),
            mem: vec![0; states.len() << (SHIFT - 3)],
            free: vec![pa(4), pa(3)],
            free_len: 2,
            deferred: vec![pa(5)],
            pooled: vec![pa(6)],
            counters: Counters {
                allocated: 5,
                live: 3,
                deferred: 1,
                freed: 1,
                failed: 0,
                pooled: 1,
                ..Counters::default()
            },
        };
        f.poison(3);
        f.poison(4);
        f
    }
    fn poison(&mut self, i: u64) {
        let w = 1usize << (SHIFT - 3);
        self.mem[i as usize * w..][..w].fill(POISON);
    }
}

impl TableView for Fake {
    fn root(&self) -> u64 {
        BASE
    }
    fn mem_range(&self) -> (u64, u64) {
        (BASE, pa(self.meta.len() as u64))
    }
    fn device_words(&self, at: u64, n: u64) -> Option<&[u64]> {
        let w = (at.checked_sub(BASE)? / 8) as usize;
        self.mem.get(w..w + n as usize)
    }
    fn frame(&self, at: u64) -> Option<FrameInfo> {
        self.meta
            .get((at.checked_sub(BASE)? >> SHIFT) as usize)
            .copied()
    }
    fn live_tables(&self) -> impl Iterator<Item = u64> + '_ {
        (0..self.meta.len() as u64)
            .filter(|&i| self.meta[i as usize].state == FrameState::Live)
            .map(pa)
    }
    fn deferred_count(&self) -> u64 {
        self.deferred.len() as u64
    }
    fn counters(&self) -> Counters {
        self.counters
    }
}

impl FrameLists for Fake {
    fn free_list(&self) -> impl Iterator<Item = u64> + '_ {
        self.free.iter().copied()
    }
    fn free_len(&self) -> u64 {
        self.free_len
    }
    fn deferred_list(&self) -> impl Iterator<Item = u64> + '_ {
        self.deferred.iter().copied()
    }
    fn pooled_frames(&self) -> impl Iterator<Item = u64> + '_ {
        self.pooled.iter().copied()
    }
}

const REACHED: [u64; 3] = [BASE, BASE + 0x1000, BASE + 0x2000];

fn check(f: &Fake, reached: &[u64]) -> Result<(), Divergence> {
    FrameAccounting::new(SHIFT).check(f, reached.iter().copied())
}

#[track_caller]
fn expect_err(f: &Fake, reached: &[u64], parts: &[&str]) {
    let d = check(f, reached).expect_err("the accounting must report this");
    assert_eq!(d.oracle(), OracleId::Accounting);
    for p in parts {
        assert!(d.what().contains(p), "{:?} lacks {p:?}", d.what());
    }
}

#[test]
fn a_consistent_state_passes() {
    check(&Fake::new(), &REACHED).unwrap();
}

#[test]
fn a_released_frame_missing_from_the_free_list_is_lost() {
    // The grace period marked frame 3 Free and counted it, but never linked it in.
    let mut f = Fake::new();
    f.free = vec![pa(4)];
    f.free_len = 1;
    expect_err(
        &f,
        &REACHED,
        &["frame 0x40003000", "Free, but not on the free list"],
    );
}

#[test]
fn a_free_list_that_skips_a_node_disagrees_with_its_count() {
    let mut f = Fake::new();
    f.free = vec![pa(4)];
    expect_err(&f, &REACHED, &["free list holds 1 frames", "counts 2"]);
}

#[test]
fn a_frame_twice_on_a_list_or_on_two_lists() {
    let mut f = Fake::new();
    f.free = vec![pa(4), pa(3), pa(4)];
    f.free_len = 3;
    expect_err(
        &f,
        &REACHED,
        &["frame 0x40004000 is twice in the free list"],
    );
    let mut f = Fake::new();
    f.deferred.push(pa(3));
    f.counters.deferred = 2;
    expect_err(
        &f,
        &REACHED,
        &["deferred list holds frame 0x40003000", "Free"],
    );
}

#[test]
fn deferred_and_pooled_frames_must_be_listed() {
    let mut f = Fake::new();
    f.deferred.clear();
    f.counters.deferred = 0;
    expect_err(
        &f,
        &REACHED,
        &["frame 0x40005000", "not on the deferred list"],
    );
    let mut f = Fake::new();
    f.pooled.clear();
    f.counters.pooled = 0;
    expect_err(
        &f,
        &REACHED,
        &["frame 0x40006000", "Pooled, but in no pool"],
    );
    let mut f = Fake::new();
    f.counters.pooled = 2;
    expect_err(&f, &REACHED, &["pools hold 1 frames", "counter says 2"]);
}

#[test]
fn live_tables_and_reachable_tables_agree() {
    let f = Fake::new();
    // Frame 2 is Live but nothing reaches it.
    let mut g = Fake::new();
    g.counters.live = 2;
    expect_err(
        &g,
        &REACHED[..2],
        &["frame 0x40002000", "not reachable from the root: a leak"],
    );
    // A table reached that the allocator thinks is free.
    expect_err(
        &f,
        &[BASE, pa(1), pa(2), pa(3)],
        &["table 0x40003000 is reachable", "Free"],
    );
    // Reached, Live, but the counter disagrees.
    let mut g = Fake::new();
    g.counters.live = 4;
    expect_err(&g, &REACHED, &["3 tables are reachable", "says 4 live"]);
}

#[test]
fn a_frame_reaching_the_free_list_holds_poison() {
    let mut f = Fake::new();
    f.mem[(3 << (SHIFT - 3)) + 5] = 0x4000_0003;
    expect_err(
        &f,
        &REACHED,
        &[
            "frame 0x40003000 reached the free list without poison",
            "0x40003028",
        ],
    );
    // Checked when a frame arrives, not again while it stays free.
    let mut acc = FrameAccounting::new(SHIFT);
    let f = Fake::new();
    acc.check(&f, REACHED.iter().copied()).unwrap();
    assert_eq!(acc.stats().poison_checked, 2);
    acc.check(&f, REACHED.iter().copied()).unwrap();
    assert_eq!(acc.stats().poison_checked, 2);
}
