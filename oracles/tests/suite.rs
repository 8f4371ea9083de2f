//! The generic oracle suite: the engine against the reference model, the independent
//! walker, the TLB oracle and the frame accounting, over a seeded random op sequence, once
//! per format as a named test group (`cargo test -p ptfuzz-oracles arm64_s1::`, `...
//! armv7s::`), over every configuration of the engine suite's list
//! (`engine/tests/formats/mod.rs`). Where an oracle does not cover a format yet (the TLB
//! oracle on armv7s), that format's test asserts the documented choice and a weaker
//! property instead of skipping silently.

#[path = "../../engine/tests/formats/mod.rs"]
#[macro_use]
mod formats;

use formats::{configs, Named, Rng};
use ptfuzz_engine::{Domain, FlushEvent, FormatKind, OrderedFlushLog, Prot};
use ptfuzz_oracles::walker::short::{check_short_domain, check_short_range};
use ptfuzz_oracles::walker::WalkParams;
use ptfuzz_oracles::{check_domain, check_range, FrameAccounting, Model, TlbOracle};

/// Ops per configuration and body.
const OPS: usize = 300;

/// Which oracles a run applies after every op (the model is always compared).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Check {
    Model,
    Walker,
    Tlb,
    Accounting,
}

struct Run {
    name: &'static str,
    dom: Domain<OrderedFlushLog>,
    model: Model,
    check: Check,
    lpae: bool,
    tlb: Option<TlbOracle>,
    frames: FrameAccounting,
    sizes: Vec<u64>,
    ias_end: u64,
    oa_end: u64,
    op: usize,
    /// Flush events of the last op (when logging).
    flushes: Vec<FlushEvent>,
    /// Page sizes of the maps that mapped something.
    mapped_sizes: Vec<u64>,
}

impl Run {
    fn new(n: &Named, check: Check) -> Run {
        let c = n.cfg;
        let mut dom = Domain::with_flush(c, OrderedFlushLog::default(), None)
            .unwrap_or_else(|e| panic!("{}: {e}", n.name));
        let model = Model::new(&c).unwrap_or_else(|e| panic!("{}: model {e:?}", n.name));
        let lpae = c.format != FormatKind::Armv7s;
        let logging = matches!(check, Check::Tlb | Check::Accounting);
        dom.set_event_logging(logging);
        let p = WalkParams::for_domain(&c, model.rules());
        // armv7s accounting keeps this test's own short-descriptor decode (short_tables).
        let tlb =
            (logging && (lpae || check == Check::Tlb)).then(|| TlbOracle::new(&c, dom.root(), &p));
        // One accounting unit per smallest table (1 KiB for armv7s level 2).
        let frames = FrameAccounting::new(model.rules().table_bytes().trailing_zeros());
        Run {
            name: n.name,
            sizes: dom.page_sizes(),
            ias_end: 1 << c.ias,
            oa_end: 1 << c.oas,
            dom,
            model,
            check,
            lpae,
            tlb,
            frames,
            op: 0,
            flushes: Vec::new(),
            mapped_sizes: Vec::new(),
        }
    }

    /// An iova of a `ps` page near one of three bases (bottom, middle, top of the IAS),
    /// within 64 pages (at most a quarter of the IAS) of it, so pages of different sizes
    /// meet.
    fn iova(&self, r: &mut Rng, ps: u64) -> u64 {
        let k = (self.ias_end / ps / 4).clamp(1, 64);
        let bases = [0, self.ias_end / 2, self.ias_end - k * ps];
        let base = bases[r.below(3) as usize];
        base + r.below(k) * ps
    }

    fn pa(&self, r: &mut Rng, ps: u64, count: u64) -> u64 {
        r.below((self.oa_end / ps).saturating_sub(count).max(1)) * ps
    }

    /// One random op on both sides; returns its description and the range it touched.
    fn step(&mut self, r: &mut Rng) -> (String, u64, u64) {
        let small = self.sizes[0];
        let ps = self.sizes[r.below(self.sizes.len() as u64) as usize];
        let what;
        let (lo, hi);
        match r.below(100) {
            0..=44 => {
                let count = 1 + r.below(4);
                let iova = self.iova(r, ps);
                let pa = self.pa(r, ps, count);
                let prot = Prot::from_bits_truncate(r.below(64) as u8);
                what = format!("map {iova:#x} pa {pa:#x} {ps:#x} x{count} {prot:?}");
                let e = self.dom.map(iova, pa, ps, count, prot);
                let m = self.model.map(iova, pa, ps, count, prot);
                assert_eq!(e, m, "{}: op {} {what}", self.name, self.op);
                if matches!(e, Ok(n) if n > 0) && !self.mapped_sizes.contains(&ps) {
                    self.mapped_sizes.push(ps);
                }
                (lo, hi) = (iova, iova.saturating_add(ps * count).min(self.ias_end));
            }
            45..=74 => {
                let count = 1 + r.below(8);
                let iova = self.iova(r, ps);
                what = format!("unmap {iova:#x} {ps:#x} x{count}");
                let e = self.dom.unmap(iova, ps, count);
                let m = self.model.unmap(iova, ps, count);
                assert_eq!(e, m, "{}: op {} {what}", self.name, self.op);
                (lo, hi) = (iova, iova.saturating_add(ps * count).min(self.ias_end));
            }
            75..=80 => {
                what = "grace".to_string();
                self.dom.grace_period();
                self.model.grace_period();
                (lo, hi) = (0, 0);
            }
            81..=83 => {
                let n = 1 + r.below(3);
                what = format!("fail_nth {n}");
                self.dom.fail_nth_alloc(Some(n));
                self.model.fail_nth(Some(n));
                (lo, hi) = (0, 0);
            }
            84..=87 => {
                let iova = self.iova(r, small);
                let size = small * (1 + r.below(8));
                what = format!("reserve {iova:#x} {size:#x}");
                let e = self.dom.reserve_va(iova, size);
                let m = self.model.reserve_va(iova, size);
                assert_eq!(e, m, "{}: op {} {what}", self.name, self.op);
                (lo, hi) = (iova, (iova + size).min(self.ias_end));
            }
            88..=89 => {
                let held: Vec<(u64, u64)> = self.dom.reservations().map(|(k, _)| k).collect();
                let (iova, size) = if held.is_empty() {
                    (0, small)
                } else {
                    held[r.below(held.len() as u64) as usize]
                };
                what = format!("unreserve {iova:#x} {size:#x}");
                let e = self.dom.unreserve_va(iova, size);
                let m = self.model.unreserve_va(iova, size);
                assert_eq!(e, m, "{}: op {} {what}", self.name, self.op);
                (lo, hi) = (iova, iova + size);
            }
            90..=92 => {
                let job = r.below(3) as u32;
                let iova = self.iova(r, small);
                let size = small * (1 + r.below(16));
                what = format!("job.prepare {job} {iova:#x} {size:#x}");
                let e = self.dom.job_prepare(job, iova, size);
                let m = self.model.job_prepare(job, iova, size);
                assert_eq!(e, m, "{}: op {} {what}", self.name, self.op);
                (lo, hi) = (0, 0);
            }
            93..=95 => {
                let job = r.below(3) as u32;
                let count = 1 + r.below(4);
                let iova = self.iova(r, ps);
                let pa = self.pa(r, ps, count);
                what = format!("job.run {job} {iova:#x} pa {pa:#x} {ps:#x} x{count}");
                let e = self.dom.job_run(job, iova, pa, ps, count, Prot::RW);
                let m = self.model.job_run(job, iova, pa, ps, count, Prot::RW);
                assert_eq!(e, m, "{}: op {} {what}", self.name, self.op);
                (lo, hi) = (iova, iova.saturating_add(ps * count).min(self.ias_end));
            }
            96..=98 => {
                let job = r.below(3) as u32;
                what = format!("job.cleanup {job}");
                let e = self.dom.job_cleanup(job);
                let m = self.model.job_cleanup(job);
                assert_eq!(e, m, "{}: op {} {what}", self.name, self.op);
                (lo, hi) = (0, 0);
            }
            _ => {
                what = "clear".to_string();
                self.dom.clear();
                self.model.clear();
                (lo, hi) = (0, self.ias_end);
            }
        }
        (what, lo, hi)
    }

    /// The model's counters, lookups at the range's edges, then the run's oracle.
    fn after(&mut self, what: &str, lo: u64, hi: u64) {
        let ctx = format!("{}: op {} {what}", self.name, self.op);
        let (e, m) = (self.dom.counters(), self.model.counters());
        assert_eq!(
            (e.allocated, e.live, e.deferred, e.freed, e.failed),
            (m.allocated, m.live, m.deferred, m.freed, m.failed),
            "{ctx}: counters (allocated, live, deferred, freed, failed)"
        );
        assert_eq!(e.pooled, self.model.pooled(), "{ctx}: pooled");
        assert_eq!(
            self.dom.mem().frames(),
            self.model.backed_frames(),
            "{ctx}: backed"
        );
        let samples: Vec<u64> = [
            lo.wrapping_sub(1),
            lo,
            lo + (hi - lo) / 2,
            hi.wrapping_sub(1),
            hi,
        ]
        .into_iter()
        .filter(|&a| a < self.ias_end)
        .collect();
        for &a in &samples {
            assert_eq!(
                self.dom.lookup(a),
                self.model.lookup(a),
                "{ctx}: lookup {a:#x}"
            );
        }
        match self.check {
            Check::Model => {}
            Check::Walker if self.lpae => {
                let r = if self.op % 32 == 31 {
                    check_domain(&self.dom, &self.model, &samples)
                } else {
                    check_range(&self.dom, &self.model, lo, hi.min(lo + (1 << 30)), &samples)
                };
                r.unwrap_or_else(|d| panic!("{ctx}: {d}"));
            }
            Check::Walker => {
                let r = if self.op % 32 == 31 {
                    check_short_domain(&self.dom, &self.model)
                } else {
                    check_short_range(&self.dom, &self.model, lo, hi, &samples)
                };
                r.unwrap_or_else(|d| panic!("{ctx}: {d}"));
            }
            Check::Tlb | Check::Accounting => {
                let reached: Vec<u64> = match &mut self.tlb {
                    Some(t) => {
                        t.check_domain_op(self.op, &mut self.dom)
                            .unwrap_or_else(|d| panic!("{ctx}: {d}"));
                        t.reachable_tables().collect()
                    }
                    None => {
                        self.flushes = std::mem::take(&mut self.dom.flush_ops_mut().events)
                            .into_iter()
                            .map(|(_, f)| f)
                            .collect();
                        drop(self.dom.take_device_log());
                        drop(self.dom.take_alloc_log());
                        short_tables(&self.dom)
                    }
                };
                if self.check == Check::Accounting {
                    self.frames
                        .check(&self.dom, reached.into_iter())
                        .unwrap_or_else(|d| panic!("{ctx}: {d}"));
                }
            }
        }
        self.op += 1;
    }

    /// At the end: every model leaf is where the engine has it, and the full walk.
    fn finish(&self) {
        for (iova, pa, size, _) in self.model.leaves() {
            for off in [0, size - 1] {
                assert_eq!(self.dom.lookup(iova + off), Some(pa + off), "{}", self.name);
            }
        }
        if self.check == Check::Walker {
            let r = if self.lpae {
                check_domain(&self.dom, &self.model, &[])
            } else {
                check_short_domain(&self.dom, &self.model)
            };
            r.unwrap_or_else(|d| panic!("{}: {d}", self.name));
        }
    }
}

/// The tables an armv7s walk reaches: the root and the level-2 tables its entries link
/// (level-1 type `01`, address bits [31:10]), read from the device view with this test's
/// own decode (ARM-FACTS §8).
fn short_tables(dom: &Domain<OrderedFlushLog>) -> Vec<u64> {
    let root = dom.root();
    let mut v = vec![root];
    for i in 0..4096u64 {
        let pa = root + 4 * i;
        let word = dom.mem().read_device(pa & !7).expect("root in memory");
        let d = (word >> (8 * (pa & 4))) as u32;
        if d & 3 == 1 {
            v.push((d & 0xffff_fc00) as u64);
        }
    }
    v
}

/// Seed of a configuration: its name hashed (FNV-1a), so every configuration draws its
/// own sequence, the same on every run.
fn seed(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    }) | 1
}

fn run_all(f: FormatKind, check: Check) -> Vec<Run> {
    let mut runs = Vec::new();
    for n in configs(f) {
        let mut t = Run::new(&n, check);
        let mut r = Rng(seed(n.name));
        for _ in 0..OPS {
            let (what, lo, hi) = t.step(&mut r);
            t.after(&what, lo, hi);
        }
        t.finish();
        runs.push(t);
    }
    runs
}

/// Outcomes, counters and lookups of engine and model agree op by op; every configuration's
/// sequence maps pages of every size, and the format's sequences free tables.
pub fn engine_against_model(f: FormatKind) {
    let mut freed = 0;
    for t in run_all(f, Check::Model) {
        // Pages of a quarter of the IAS or more have one slot per base, where smaller
        // pages keep tables; the engine suite's round trips map those.
        let mut want: Vec<u64> = t
            .sizes
            .iter()
            .copied()
            .filter(|&p| p < t.ias_end / 4)
            .collect();
        let mut seen: Vec<u64> = t
            .mapped_sizes
            .iter()
            .copied()
            .filter(|p| want.contains(p))
            .collect();
        seen.sort_unstable();
        want.sort_unstable();
        assert_eq!(seen, want, "{}: page sizes the sequence mapped", t.name);
        freed += t.dom.counters().freed;
    }
    assert!(freed > 0, "{f}: no sequence freed a table");
}

/// The independent walker (LPAE walker; the short-descriptor walker for armv7s) agrees
/// with the model after every op.
pub fn walker_against_model(f: FormatKind) {
    run_all(f, Check::Walker);
}

/// The TLB oracle (LPAE or short descriptors) finds nothing in the engine's maintenance, and
/// saw stale entries to check (for armv7s also table entries: level-2 tables unlinked).
pub fn tlb_oracle(f: FormatKind) {
    let mut table_breaks = 0;
    for t in run_all(f, Check::Tlb) {
        let s = t
            .tlb
            .as_ref()
            .expect("Check::Tlb runs the TLB oracle")
            .stats();
        assert!(
            s.breaks > 0,
            "{}: the oracle saw no stale entry: {s:?}",
            t.name
        );
        table_breaks += s.table_breaks;
    }
    assert!(table_breaks > 0, "{f}: no table entry was ever made stale");
}

/// Frame accounting finds nothing after every op (armv7s: over the tables this test's own
/// short-descriptor decode reaches).
pub fn frame_accounting(f: FormatKind) {
    let mut poison_checked = 0;
    for t in run_all(f, Check::Accounting) {
        let s = t.frames.stats();
        assert_eq!(s.checks, OPS as u64, "{}", t.name);
        poison_checked += s.poison_checked;
    }
    assert!(
        poison_checked > 0,
        "{f}: no freed frame was checked for poison"
    );
}

/// The model refuses exactly what the engine refuses around each listed configuration
/// (the neighbouring IAS/OAS), so the list's configurations are valid on both sides.
pub fn model_accepts_the_configurations(f: FormatKind) {
    for n in configs(f) {
        for (di, do_) in [(0i32, 0i32), (1, 0), (-1, 0), (0, 1), (0, -1), (1, 1)] {
            let mut c = n.cfg;
            c.ias = (c.ias as i32 + di) as u32;
            c.oas = (c.oas as i32 + do_) as u32;
            let e = Domain::new(c).map(|_| ()).map_err(|e| e.kind());
            let m = Model::new(&c).map(|_| ());
            assert_eq!(e, m, "{} ias {} oas {}", n.name, c.ias, c.oas);
            if (di, do_) == (0, 0) {
                assert_eq!(e, Ok(()), "{}", n.name);
            }
        }
    }
}

per_format!(all: [
    engine_against_model,
    walker_against_model,
    tlb_oracle,
    frame_accounting,
    model_accepts_the_configurations,
]);
