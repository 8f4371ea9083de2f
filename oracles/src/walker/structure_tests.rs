//! The structure walk against hand-built allocator states: each corruption an engine bug
//! could leave is reported.

use ptfuzz_engine::alloc::{Counters, FrameState, POISON};
use ptfuzz_engine::config::{DomainConfig, FormatKind, Granule};
use ptfuzz_engine::prot::Prot;

use super::range::{walk_range, LeafMatch};
use super::structure::check_structure;
use super::view::{FrameInfo, TableView};
use super::WalkParams;
use crate::model::Model;

pub(crate) const BASE: u64 = 0x4000_0000;
const AF: u64 = 1 << 10;
const NG: u64 = 1 << 11;
const AP_UNPRIV: u64 = 1 << 6;
const SH_OS: u64 = 2 << 8;
const XN: u64 = 3 << 53;
/// Stage-1 page for prot `rw` (SEMANTICS.md "Descriptors"), without the OA.
const S1_RW_PAGE: u64 = 0b11 | AF | NG | AP_UNPRIV | SH_OS | XN;

/// A hand-built engine state: memory (one view), frame metadata (units of `1 << g` bytes),
/// counters. Also the fake of the short-descriptor tests (1 KiB units).
pub(crate) struct Fake {
    g: u32,
    mem: Vec<u64>,
    pub(crate) frames: Vec<FrameInfo>,
    pub(crate) root: u64,
    pub(crate) counters: Counters,
    deferred: u64,
}

impl Fake {
    pub(crate) fn new(g: u32, start_level: u8, root_frames: u64) -> Fake {
        let mut f = Fake {
            g,
            mem: Vec::new(),
            frames: Vec::new(),
            root: 0,
            counters: Counters::default(),
            deferred: 0,
        };
        f.root = f.alloc(start_level, root_frames);
        f
    }
    fn words_per_frame(&self) -> usize {
        1 << (self.g - 3)
    }
    fn idx(&self, pa: u64) -> usize {
        ((pa - BASE) >> self.g) as usize
    }
    pub(crate) fn alloc(&mut self, level: u8, frames: u64) -> u64 {
        let pa = BASE + ((self.frames.len() as u64) << self.g);
        for k in 0..frames {
            self.frames.push(FrameInfo {
                state: if k == 0 {
                    FrameState::Live
                } else {
                    FrameState::Tail
                },
                level,
                frames: if k == 0 { frames as u8 } else { 0 },
                live: 0,
            });
            self.mem.resize(self.mem.len() + self.words_per_frame(), 0);
        }
        self.counters.allocated += 1;
        self.counters.live += 1;
        pa
    }
    /// Writes entry `i` of `table`, keeping the table's live count.
    fn set(&mut self, table: u64, i: u64, d: u64) {
        let w = ((table - BASE) / 8 + i) as usize;
        let old = self.mem[w];
        self.mem[w] = d;
        let f = self.idx(table);
        self.frames[f].live =
            (self.frames[f].live as i64 + (d & 1) as i64 - (old & 1) as i64) as u32;
    }
    /// Writes 4-byte slot `i` of the short-descriptor `table`, keeping its live count.
    pub(crate) fn set_short(&mut self, table: u64, i: u64, d: u32) {
        let w = ((table - BASE) / 8 + i / 2) as usize;
        let sh = 32 * (i & 1);
        let old = (self.mem[w] >> sh) as u32;
        self.mem[w] = self.mem[w] & !(0xffff_ffff << sh) | (d as u64) << sh;
        let f = self.idx(table);
        let valid = |d: u32| (d & 3 != 0) as i64;
        self.frames[f].live = (self.frames[f].live as i64 + valid(d) - valid(old)) as u32;
    }
    /// Writes the 8-byte word at `pa` as is (no live count).
    pub(crate) fn poke(&mut self, pa: u64, w: u64) {
        self.mem[((pa - BASE) / 8) as usize] = w;
    }
    pub(crate) fn meta(&mut self, pa: u64) -> &mut FrameInfo {
        let i = self.idx(pa);
        &mut self.frames[i]
    }
}

impl TableView for Fake {
    fn root(&self) -> u64 {
        self.root
    }
    fn mem_range(&self) -> (u64, u64) {
        (BASE, BASE + 8 * self.mem.len() as u64)
    }
    fn device_words(&self, pa: u64, n: u64) -> Option<&[u64]> {
        let w = (pa.checked_sub(BASE)? / 8) as usize;
        self.mem.get(w..w + n as usize)
    }
    fn frame(&self, pa: u64) -> Option<FrameInfo> {
        if pa < BASE || !(pa - BASE).is_multiple_of(1 << self.g) {
            return None;
        }
        self.frames.get(self.idx(pa)).copied()
    }
    fn live_tables(&self) -> impl Iterator<Item = u64> + '_ {
        self.frames
            .iter()
            .enumerate()
            .filter(|(_, m)| m.state == FrameState::Live)
            .map(|(i, _)| BASE + ((i as u64) << self.g))
    }
    fn deferred_count(&self) -> u64 {
        self.deferred
    }
    fn counters(&self) -> Counters {
        self.counters
    }
}

/// 4K, 48-bit stage 1 with one page at iova 0x4000_1000 -> 0x8000_0000 (L0 -> L1 -> L2 -> L3),
/// and the matching model. Returns (fake, model, params, [l1, l2, l3]).
fn baseline() -> (Fake, Model, WalkParams, [u64; 3]) {
    let cfg = DomainConfig::new(FormatKind::Arm64S1, Granule::G4K, 48, 48);
    let mut model = Model::new(&cfg).unwrap();
    model
        .map(0x4000_1000, 0x8000_0000, 0x1000, 1, Prot::RW)
        .unwrap();
    let p = WalkParams::for_domain(&cfg, model.rules());
    let mut f = Fake::new(12, 0, 1);
    let l1 = f.alloc(1, 1);
    let l2 = f.alloc(2, 1);
    let l3 = f.alloc(3, 1);
    let root = f.root;
    f.set(root, 0, l1 | 0b11);
    f.set(l1, 1, l2 | 0b11);
    f.set(l2, 0, l3 | 0b11);
    f.set(l3, 1, 0x8000_0000 | S1_RW_PAGE);
    assert_eq!(
        check_structure(&f, &p, &model).map(|s| (s.tables, s.leaves)),
        Ok((4, 1))
    );
    (f, model, p, [l1, l2, l3])
}

#[track_caller]
fn fails(f: &Fake, model: &Model, p: &WalkParams, needle: &str) {
    let d = check_structure(f, p, model).expect_err("expected a divergence");
    let s = d.to_string();
    assert!(
        (s.starts_with("walker: ") || s.starts_with("structure: ")) && s.contains(needle),
        "{needle:?} not in {s}"
    );
}

#[test]
fn baseline_passes_and_counts() {
    baseline();
}

#[test]
fn leak_is_reported() {
    let (mut f, model, p, _) = baseline();
    f.alloc(3, 1);
    fails(&f, &model, &p, "leak: Live table");
}

#[test]
fn table_reachable_twice_is_reported() {
    let (mut f, model, p, [_, l2, l3]) = baseline();
    f.set(l2, 7, l3 | 0b11);
    fails(&f, &model, &p, "reachable twice");
}

#[test]
fn wrong_live_count_is_reported() {
    let (mut f, model, p, [_, _, l3]) = baseline();
    f.meta(l3).live = 2;
    fails(
        &f,
        &model,
        &p,
        "has 1 valid entries, metadata live count Some(2)",
    );
}

#[test]
fn reachable_deferred_free_or_mislevelled_table_is_reported() {
    for state in [FrameState::Deferred, FrameState::Free, FrameState::Tail] {
        let (mut f, model, p, [_, _, l3]) = baseline();
        f.meta(l3).state = state;
        fails(&f, &model, &p, "expected a Live L3 table");
    }
    let (mut f, model, p, [_, _, l3]) = baseline();
    f.meta(l3).level = 2;
    fails(&f, &model, &p, "expected a Live L3 table");
}

#[test]
fn poison_in_reachable_table_is_reported() {
    let (mut f, model, p, [_, _, l3]) = baseline();
    let w = ((l3 - BASE) / 8 + 9) as usize;
    f.mem[w] = POISON;
    fails(&f, &model, &p, "holds poison");
}

#[test]
fn write_after_free_is_reported() {
    let (mut f, model, p, _) = baseline();
    let free = f.alloc(3, 1);
    f.meta(free).state = FrameState::Free;
    f.counters.live -= 1;
    f.counters.freed += 1;
    let w = ((free - BASE) / 8) as usize;
    f.mem[w..w + 512].fill(POISON);
    check_structure(&f, &p, &model).unwrap();
    f.mem[w + 3] = 0x1234_0003;
    fails(&f, &model, &p, "written after free");
}

#[test]
fn counters_are_checked() {
    let (mut f, model, p, _) = baseline();
    f.counters.allocated += 1;
    fails(&f, &model, &p, "counters inconsistent");
    let (mut f, model, p, _) = baseline();
    f.counters.deferred = 1;
    f.counters.allocated += 1;
    fails(&f, &model, &p, "wait for the grace period");
    let (mut f, model, p, _) = baseline();
    f.counters.live += 1;
    f.counters.allocated += 1;
    fails(
        &f,
        &model,
        &p,
        "counters say 5 live tables, 4 are reachable",
    );
}

#[test]
fn malformed_descriptors_are_reported() {
    // L3 `01`, a RES0 bit in a page, an L0 block, table attribute bits.
    let cases: [(usize, u64, u64, &str); 4] = [
        (3, 5, 0x9000_0000 | 0b01 | AF, "translation fault"),
        (3, 1, 0x8000_0000 | S1_RW_PAGE | (1 << 48), "RES0"),
        (0, 3, (3 << 39) | 0b01 | AF, "translation fault"),
        (1, 1, 0b11 | (1 << 63), "attribute/ignored bits"),
    ];
    for (which, i, d, needle) in cases {
        let (mut f, model, p, tables) = baseline();
        let table = if which == 0 {
            f.root
        } else {
            tables[which - 1]
        };
        let d = if which == 1 { d | tables[1] } else { d };
        f.set(table, i, d);
        fails(&f, &model, &p, needle);
    }
}

#[test]
fn leaves_must_match_the_model() {
    let (mut f, model, p, [_, _, l3]) = baseline();
    f.set(l3, 2, 0x8000_1000 | S1_RW_PAGE);
    fails(&f, &model, &p, "the model has no mapping there");
    let (mut f, model, p, [_, _, l3]) = baseline();
    f.set(l3, 1, 0x8000_0000 | S1_RW_PAGE | (1 << 7)); // read-only
    fails(
        &f,
        &model,
        &p,
        "the model has leaf 0x40001000+0x1000 -> pa 0x80000000",
    );
    let (mut f, model, p, [_, _, l3]) = baseline();
    f.set(l3, 1, 0);
    fails(&f, &model, &p, "tables hold 0 leaves, model has 1");
}

#[test]
fn root_checks() {
    // A 4K IAS 40 stage-1 root has 2 entries; the rest of its frame stays zero.
    let cfg = DomainConfig::new(FormatKind::Arm64S1, Granule::G4K, 40, 40);
    let model = Model::new(&cfg).unwrap();
    let p = WalkParams::for_domain(&cfg, model.rules());
    let mut f = Fake::new(12, 0, 1);
    check_structure(&f, &p, &model).unwrap();
    f.mem[5] = 0x5000_0003;
    fails(&f, &model, &p, "beyond them");
    let f = Fake::new(12, 1, 1);
    fails(&f, &model, &p, "expected a Live L0 table");

    // 4K IAS 40 stage 2: two concatenated L1 tables, the second a Tail.
    let cfg = DomainConfig::new(FormatKind::Arm64S2, Granule::G4K, 40, 40);
    let model = Model::new(&cfg).unwrap();
    let p = WalkParams::for_domain(&cfg, model.rules());
    let mut f = Fake::new(12, 1, 2);
    check_structure(&f, &p, &model).unwrap();
    f.meta(BASE + 0x1000).state = FrameState::Live;
    fails(&f, &model, &p, "should be a Tail");
    let f = Fake::new(12, 1, 1);
    fails(&f, &model, &p, "of 2 frame(s)");
    // Root not aligned to its 2-frame size.
    let mut f = Fake::new(12, 1, 1);
    f.meta(BASE).state = FrameState::Free;
    let r = f.alloc(1, 2);
    f.root = r;
    f.meta(BASE).state = FrameState::Free;
    assert_eq!(r, BASE + 0x1000);
    fails(&f, &model, &p, "not aligned");
}

/// `baseline` with three more pages after the first, one map call: iova 0x4000_1000..+4
/// pages -> 0x8000_0000.., a run of consecutive descriptors (what the run decoder skips).
fn run_of_four() -> (Fake, Model, WalkParams, u64) {
    let (mut f, _, p, [_, _, l3]) = baseline();
    let cfg = DomainConfig::new(FormatKind::Arm64S1, Granule::G4K, 48, 48);
    let mut model = Model::new(&cfg).unwrap();
    model
        .map(0x4000_1000, 0x8000_0000, 0x1000, 4, Prot::RW)
        .unwrap();
    for k in 0..4 {
        f.set(l3, 1 + k, (0x8000_0000 + k * 0x1000) | S1_RW_PAGE);
    }
    check_structure(&f, &p, &model).expect("four pages match");
    (f, model, p, l3)
}

/// The per-op walk of `[lo, hi)` matched against the model's leaves there.
fn range(f: &Fake, model: &Model, p: &WalkParams, lo: u64, hi: u64) -> Result<(), String> {
    let mut m = LeafMatch::new(model.leaves_overlapping(lo, hi), p.stage2);
    walk_range(f, p, lo, hi, &mut |l| m.found(l))
        .and_then(|()| m.finish())
        .map_err(|d| d.to_string())
}

#[test]
fn a_run_is_checked_leaf_by_leaf() {
    // Every leaf of a run still differs visibly: the run decoder only skips a descriptor that
    // is exactly the previous one with the next output address.
    let cases: [(u64, &str); 4] = [
        // read-only in the middle of a read-write run
        (
            0x8000_1000 | S1_RW_PAGE | (1 << 7),
            "the model has leaf 0x40002000+0x1000",
        ),
        // the output address of the run skips a page
        (0x8000_3000 | S1_RW_PAGE, "-> pa 0x80003000"),
        // a RES0 bit next to the address
        (0x8000_1000 | S1_RW_PAGE | (1 << 48), "RES0"),
        // the previous descriptor again
        (0x8000_0000 | S1_RW_PAGE, "-> pa 0x80000000"),
    ];
    for (d, needle) in cases {
        let (mut f, model, p, l3) = run_of_four();
        f.set(l3, 2, d);
        fails(&f, &model, &p, needle);
        let e = range(&f, &model, &p, 0x4000_1000, 0x4000_5000).expect_err("range walk");
        assert!(e.contains(needle), "{needle:?} not in {e}");
    }
}

#[test]
fn range_walk_matches_both_ways_inside_the_range_only() {
    let (mut f, model, p, l3) = run_of_four();
    assert_eq!(range(&f, &model, &p, 0x4000_0000, 0x4020_0000), Ok(()));
    // A leaf the model does not have, inside the range: seen by the op's walk.
    f.set(l3, 9, 0x8000_9000 | S1_RW_PAGE);
    let e = range(&f, &model, &p, 0x4000_8000, 0x4000_a000).unwrap_err();
    assert!(
        e.contains("L3 leaf at iova 0x40009000") && e.contains("no mapping there"),
        "{e}"
    );
    // Outside the range it is not this op's business (the end-of-input walk sees it).
    assert_eq!(range(&f, &model, &p, 0x4000_1000, 0x4000_5000), Ok(()));
    fails(&f, &model, &p, "no mapping there");
    // A model leaf the tables lost, in the middle of the range.
    let (mut f, model, p, l3) = run_of_four();
    f.set(l3, 3, 0);
    let e = range(&f, &model, &p, 0x4000_2000, 0x4000_4000).unwrap_err();
    assert!(
        e.contains("leaf 0x40003000+0x1000") && e.contains("hold no leaf"),
        "{e}"
    );
    // A range that ends inside a table and starts inside another level's entry.
    assert_eq!(range(&f, &model, &p, 0x4000_1fff, 0x4000_2001), Ok(()));
}
