//! The model's table prediction against the real engine: the same deterministic random op
//! sequences (maps, unmaps, injected allocation failures, grace periods, clears) on both,
//! with identical results and identical allocator counters after every op; the engine's
//! tables (found by walking its device view with the walker's own decoder) equal the
//! model's nodes; every walk invalidation the engine issues is exactly a table the model
//! says was freed, and every freed table and removed leaf is covered by an invalidation.

mod common;
#[path = "../../engine/tests/formats/mod.rs"]
#[macro_use]
mod formats;

use common::XorShiftStar as Rng;
use std::collections::BTreeSet;

use ptfuzz_engine::{
    Concat, Counters, Domain, DomainConfig, ErrorKind, FlushEvent, FlushLog, FormatKind, Granule,
    MapError, Prot,
};
use ptfuzz_oracles::model::{Model, ModelCounters};
use ptfuzz_oracles::walker::{decode, Descriptor, WalkParams};

use FormatKind::*;
use Granule::*;

fn counters(c: Counters) -> ModelCounters {
    ModelCounters {
        allocated: c.allocated,
        live: c.live,
        deferred: c.deferred,
        freed: c.freed,
        failed: c.failed,
    }
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Map {
        iova: u64,
        pa: u64,
        pgsize: u64,
        count: u64,
        prot: Prot,
    },
    Unmap {
        iova: u64,
        pgsize: u64,
        count: u64,
    },
    FailNth(Option<u64>),
    Grace,
    Clear,
}

struct Pair {
    dom: Domain<FlushLog>,
    model: Model,
    params: WalkParams,
    /// Ops so far, for the failure message.
    trace: Vec<Op>,
    stats: Stats,
    /// Whether an injected failure may be pending (for the stats only).
    armed: bool,
}

/// What the ops exercised, so a test cannot pass vacuously.
#[derive(Clone, Copy, Debug, Default)]
struct Stats {
    nomem: u64,
    nomem_partial: u64,
    exists: u64,
    /// Tables freed by a map (empty tables replaced by a block).
    replaced: u64,
    /// Tables freed by an unmap.
    unmapped: u64,
    /// Allocation failures with no injection armed (the 2^OAS limit).
    limit: u64,
}

impl std::ops::AddAssign for Stats {
    fn add_assign(&mut self, o: Stats) {
        self.nomem += o.nomem;
        self.nomem_partial += o.nomem_partial;
        self.exists += o.exists;
        self.replaced += o.replaced;
        self.unmapped += o.unmapped;
        self.limit += o.limit;
    }
}

impl Pair {
    fn new(cfg: DomainConfig) -> Pair {
        let dom = Domain::with_flush(cfg, FlushLog::default(), None)
            .unwrap_or_else(|e| panic!("{cfg:?}: {e}"));
        let model = Model::new(&cfg).unwrap();
        let params = WalkParams::for_domain(&cfg, model.rules());
        Pair {
            dom,
            model,
            params,
            trace: Vec::new(),
            stats: Stats::default(),
            armed: false,
        }
    }

    fn fail(&self, what: String) -> ! {
        let n = self.trace.len();
        let tail: Vec<String> = self.trace[n.saturating_sub(12)..]
            .iter()
            .map(|o| format!("{o:x?}"))
            .collect();
        panic!(
            "{:?} after {n} ops: {what}\nlast ops:\n  {}",
            self.dom.config(),
            tail.join("\n  ")
        );
    }

    fn apply(&mut self, op: Op) {
        self.trace.push(op);
        self.dom.flush_ops_mut().events.clear();
        match op {
            Op::Map {
                iova,
                pa,
                pgsize,
                count,
                prot,
            } => {
                let e = self.dom.map(iova, pa, pgsize, count, prot);
                let m = self.model.map(iova, pa, pgsize, count, prot);
                if e != m {
                    self.fail(format!("map: engine {e:x?}, model {m:x?}"));
                }
                match e {
                    Err(MapError {
                        kind: ErrorKind::Nomem,
                        mapped,
                    }) => {
                        self.stats.nomem += 1;
                        self.stats.nomem_partial += (mapped > 0) as u64;
                        if !self.armed {
                            self.stats.limit += 1;
                        }
                        self.armed = false;
                    }
                    Err(MapError {
                        kind: ErrorKind::Exists,
                        ..
                    }) => self.stats.exists += 1,
                    _ => {}
                }
            }
            Op::Unmap {
                iova,
                pgsize,
                count,
            } => {
                let e = self.dom.unmap(iova, pgsize, count);
                let m = self.model.unmap(iova, pgsize, count);
                if e != m {
                    self.fail(format!("unmap: engine {e:x?}, model {m:x?}"));
                }
            }
            Op::FailNth(n) => {
                self.armed = n.is_some_and(|n| n > 0);
                self.dom.fail_nth_alloc(n);
                self.model.fail_nth(n);
            }
            Op::Grace => {
                self.dom.grace_period();
                self.model.grace_period();
            }
            Op::Clear => {
                self.dom.clear();
                self.model.clear();
            }
        }
        let (e, m) = (counters(self.dom.counters()), self.model.counters());
        if e != m {
            self.fail(format!("counters: engine {e:?}, model {m:?}"));
        }
        self.check_flushes(op);
    }

    /// Walk invalidations are exactly the freed tables; removed leaves are covered by a leaf
    /// invalidation or by a freed table's walk invalidation.
    fn check_flushes(&mut self, op: Op) {
        let freed = self.model.take_freed_tables();
        let removed = self.model.take_removed_leaves();
        match op {
            Op::Map { .. } => self.stats.replaced += freed.len() as u64,
            Op::Unmap { .. } => self.stats.unmapped += freed.len() as u64,
            _ => {}
        }
        if matches!(op, Op::Clear) {
            return; // clear's invalidation is the engine's choice (e.g. flush all)
        }
        let events = std::mem::take(&mut self.dom.flush_ops_mut().events);
        let walks: Vec<(u64, u64)> = events
            .iter()
            .filter_map(|e| match *e {
                FlushEvent::Walk { iova, size, .. } => Some((iova, size)),
                _ => None,
            })
            .collect();
        let freed_spans: BTreeSet<(u64, u64)> = freed.iter().map(|&(_, b, s)| (b, s)).collect();
        for &(iova, size) in &walks {
            if !freed_spans.contains(&(iova, size)) {
                self.fail(format!(
                    "walk flush {iova:#x}+{size:#x} is no freed table; model freed {freed:x?}"
                ));
            }
        }
        let covered = |lo: u64, len: u64| {
            events.iter().any(|e| match *e {
                FlushEvent::All => true,
                FlushEvent::Walk { iova, size, .. } => iova <= lo && lo + len <= iova + size,
                FlushEvent::Leaves { start, end, .. } => start <= lo && lo + len - 1 <= end,
            })
        };
        for &(l, b, s) in &freed {
            if !covered(b, s) {
                self.fail(format!(
                    "freed table L{l} {b:#x}+{s:#x} has no walk flush: {events:x?}"
                ));
            }
        }
        for &(a, _, s, _) in &removed {
            if !covered(a, s) {
                self.fail(format!(
                    "removed leaf {a:#x}+{s:#x} not invalidated: {events:x?}"
                ));
            }
        }
    }

    /// The engine's tables as (level, base), by walking its device view.
    fn engine_tables(&self) -> BTreeSet<(u32, u64)> {
        let p = &self.params;
        let mem = self.dom.mem();
        let mut out = BTreeSet::new();
        let mut stack = vec![(self.dom.root(), p.start_level, 0u64)];
        while let Some((table, level, base)) = stack.pop() {
            let shift = p.shift(level);
            for i in 0..p.entries_at(level) {
                let pa = table + 8 * i;
                let d = mem
                    .read_device(pa)
                    .unwrap_or_else(|| self.fail(format!("L{level} table {table:#x} not backed")));
                let iova = base + (i << shift);
                match decode(p, level, d) {
                    Ok(Descriptor::Table { addr, .. }) => {
                        out.insert((level + 1, iova));
                        stack.push((addr, level + 1, iova));
                    }
                    Ok(_) => {}
                    Err(k) => self.fail(format!("L{level} {iova:#x}: {d:#x} faults {k:?}")),
                }
            }
        }
        out
    }

    fn check_tables(&self) {
        if self.params.start_level == 3 {
            return; // no table below the root
        }
        let e = self.engine_tables();
        let m: BTreeSet<(u32, u64)> = self.model.tables().collect();
        if e != m {
            let only_e: Vec<_> = e.difference(&m).collect();
            let only_m: Vec<_> = m.difference(&e).collect();
            self.fail(format!(
                "tables: only engine {only_e:x?}, only model {only_m:x?}"
            ));
        }
    }
}

/// Random ops in a window small enough that they collide, with page runs that cross table
/// boundaries and blocks that land on emptied tables.
fn random_ops(cfg: DomainConfig, seed: u64, ops: usize) -> Stats {
    let mut t = Pair::new(cfg);
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let sizes = t.model.page_sizes().to_vec();
    let small = sizes[0];
    let top = *sizes.last().unwrap();
    let end = 1u64 << cfg.ias;
    let oas_end = 1u64 << cfg.oas;
    // Span of the tables holding small pages (or the whole space when the root does).
    let l3_span = (small << (cfg.granule.shift() - 3)).min(end);
    let window = match rng.below(4) {
        0 => 4 * top,
        1 => 2 * sizes.get(1).copied().unwrap_or(top),
        2 => 3 * l3_span,
        _ => 64 * small,
    }
    .min(end);
    let wbase = match rng.below(3) {
        0 => 0,
        1 => end - window,
        _ => rng.below(end / window) * window,
    };
    for i in 0..ops {
        let fit: Vec<u64> = sizes.iter().copied().filter(|&s| s <= window).collect();
        let ps = fit[rng.below(fit.len() as u64) as usize];
        let pages = window / ps;
        let mut first = rng.below(pages);
        if ps == small && rng.below(3) == 0 {
            // Just before a table boundary inside the window.
            let boundary = (wbase + (first + 1) * ps).next_multiple_of(l3_span);
            if boundary > wbase + 4 * ps && boundary < wbase + window {
                first = (boundary - wbase) / ps - 1 - rng.below(4);
            }
        }
        let max = if ps == small { 1100 } else { 3 };
        let count = 1 + rng.below((pages - first).min(max));
        let iova = wbase + first * ps;
        if let (true, Some(&big)) = (rng.below(12) == 0, fit.iter().find(|&&s| s > ps)) {
            // A small page mapped and unmapped leaves its tables empty; a block over them
            // replaces them (unless something else still lives under the block).
            let a = wbase + rng.below(window / small) * small;
            let b = a & !(big - 1);
            t.apply(Op::Map {
                iova: a,
                pa: 0,
                pgsize: small,
                count: 1,
                prot: Prot::RW,
            });
            t.apply(Op::Unmap {
                iova: a,
                pgsize: small,
                count: 1,
            });
            t.apply(Op::Map {
                iova: b,
                pa: big,
                pgsize: big,
                count: 1,
                prot: Prot::READ,
            });
            t.check_tables();
            continue;
        }
        let op = match rng.below(100) {
            0..=4 => {
                // Clear the window with its largest fitting page size: room for new maps.
                let big = *fit.last().unwrap();
                Op::Unmap {
                    iova: wbase,
                    pgsize: big,
                    count: window / big,
                }
            }
            5..=44 => Op::Map {
                iova,
                pa: rng.below(oas_end / ps - count + 1) * ps,
                pgsize: ps,
                count,
                prot: Prot::from_bits_truncate(rng.next() as u8 | (rng.below(16) != 0) as u8),
            },
            45..=79 => Op::Unmap {
                iova,
                pgsize: ps,
                count,
            },
            80..=86 => Op::Grace,
            87..=95 => Op::FailNth(Some(1 + rng.below(5))),
            96..=98 => Op::FailNth(None),
            _ => Op::Clear,
        };
        t.apply(op);
        if i % 4 == 3 || !matches!(op, Op::Unmap { .. } | Op::Map { .. }) {
            t.check_tables();
        }
    }
    t.check_tables();
    t.stats
}

/// The same domain with `concat=max` (the deepest stage-2 start level).
fn max(mut c: DomainConfig) -> DomainConfig {
    c.concat = Concat::Max;
    c
}

/// The shared suite's configurations of `f` (engine/tests/formats/mod.rs), and domains
/// whose table frames run out at 2^OAS: 16 frames in all, the root included (4K stage 2
/// IAS 34: a 16-table root takes every frame, no table ever fits).
fn configs(f: FormatKind) -> Vec<DomainConfig> {
    let mut v: Vec<DomainConfig> = formats::configs(f).into_iter().map(|n| n.cfg).collect();
    let limited = [
        (Arm64S1, G4K, 32),
        (Arm64S2, G4K, 36),
        (Arm64S2, G64K, 36),
        (Arm64S2, G4K, 34),
    ];
    for (lf, g, bits) in limited.into_iter().filter(|l| l.0 == f) {
        let mut c = max(DomainConfig::new(lf, g, bits, bits));
        if !lf.is_stage2() {
            c.concat = Concat::Required;
        }
        c.phys_base = (1u64 << bits) - 16 * g.size();
        v.push(c);
    }
    v
}

// Per format (`arm64_s1::model_predicts_engine_tables_and_counters`, ...): the tables are
// found with the LPAE decoder; armv7s's model runs in tests/suite.rs
// (`armv7s::engine_against_model`).
per_format!(lpae: [model_predicts_engine_tables_and_counters, fail_nth_for_every_n]);

fn model_predicts_engine_tables_and_counters(f: FormatKind) {
    let ops = if cfg!(debug_assertions) { 200 } else { 1500 };
    // More seeds for a soak: PTFUZZ_MODEL_SEEDS=200 cargo test --release --test model_tables
    let seeds: u64 = std::env::var("PTFUZZ_MODEL_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let mut all = Stats::default();
    for (i, cfg) in configs(f).into_iter().enumerate() {
        let mut s = Stats::default();
        for seed in 0..seeds {
            s += random_ops(cfg, (i as u64) << 32 | (seed + 1), ops);
        }
        eprintln!(
            "{} {} ias {} oas {}: {s:?}",
            cfg.format, cfg.granule, cfg.ias, cfg.oas
        );
        all += s;
    }
    assert!(all.nomem_partial > 0, "{all:?}");
    // The arm64 formats have the domains whose frames run out at 2^OAS.
    if matches!(f, Arm64S1 | Arm64S2) {
        assert!(all.limit > 0, "{all:?}");
    }
    assert!(
        all.exists > 0 && all.replaced > 0 && all.unmapped > 0,
        "{all:?}"
    );
}

/// fail_nth for every n over a map that allocates several tables and crosses table
/// boundaries: the engine and the model stop at the same page with the same counters.
fn fail_nth_for_every_n(f: FormatKind) {
    for cfg in configs(f) {
        let probe = Model::new(&cfg).unwrap();
        let small = probe.page_sizes()[0];
        let span = (small << (cfg.granule.shift() - 3)).min(1u64 << cfg.ias);
        let count = (span / small + 3).min((1u64 << cfg.ias) / small);
        let iova = ((1u64 << cfg.ias) - count * small) & !(small - 1);
        for n in 1..=8u64 {
            let mut t = Pair::new(cfg);
            t.apply(Op::FailNth(Some(n)));
            t.apply(Op::Map {
                iova,
                pa: 0,
                pgsize: small,
                count,
                prot: Prot::RW,
            });
            t.check_tables();
            // The rest maps with no failure armed.
            t.apply(Op::FailNth(None));
            t.apply(Op::Map {
                iova,
                pa: 0,
                pgsize: small,
                count,
                prot: Prot::RW,
            });
            t.check_tables();
            t.apply(Op::Unmap {
                iova,
                pgsize: small,
                count,
            });
            t.check_tables();
        }
    }
}

/// The differential tests would pass vacuously if no allocation ever failed: make sure the
/// model (and so the engine) does stop with nomem in the middle of a map.
#[test]
fn nomem_mid_map_matches() {
    let cfg = DomainConfig::new(Arm64S1, G4K, 48, 48);
    let mut t = Pair::new(cfg);
    t.apply(Op::FailNth(Some(4)));
    let (iova, pgsize) = (0x20_0000 - 0x2000, 0x1000);
    t.apply(Op::Map {
        iova,
        pa: 0,
        pgsize,
        count: 4,
        prot: Prot::RW,
    });
    assert_eq!(
        t.dom.map(iova + 0x2000, 0, pgsize, 2, Prot::RW),
        t.model.map(iova + 0x2000, 0, pgsize, 2, Prot::RW)
    );
    let mut t = Pair::new(cfg);
    t.apply(Op::FailNth(Some(4)));
    let e = t.dom.map(iova, 0, pgsize, 4, Prot::RW);
    assert_eq!(e, Err(MapError::new(ErrorKind::Nomem, 0x2000)));
    assert_eq!(t.model.map(iova, 0, pgsize, 4, Prot::RW), e);
}

/// Table frames that run out at 2^OAS: the engine and the model refuse the same allocation,
/// before an armed injection is consulted, and reuse released frames only after a grace
/// period.
#[test]
fn oas_limit_matches() {
    for (f, g, bits) in [(Arm64S1, G4K, 32), (Arm64S2, G16K, 36), (Arm64S1, G64K, 40)] {
        let mut cfg = DomainConfig::new(f, g, bits, bits);
        cfg.phys_base = (1u64 << bits) - 16 * g.size();
        let mut t = Pair::new(cfg);
        let small = t.model.page_sizes()[0];
        let span = small << (g.shift() - 3);
        let mut failed = 0;
        for i in 0..20u64 {
            if i == 10 {
                t.apply(Op::FailNth(Some(2)));
            }
            t.apply(Op::Map {
                iova: i * span,
                pa: 0,
                pgsize: small,
                count: 2,
                prot: Prot::RW,
            });
            failed = t.model.counters().failed;
        }
        assert!(failed >= 5, "{cfg:?}: {failed}");
        t.check_tables();
        t.apply(Op::Unmap {
            iova: 0,
            pgsize: small,
            count: 3 * span / small,
        });
        t.apply(Op::Map {
            iova: 15 * span,
            pa: 0,
            pgsize: small,
            count: 1,
            prot: Prot::RW,
        });
        t.apply(Op::Grace);
        for i in 15..20u64 {
            t.apply(Op::Map {
                iova: i * span,
                pa: 0,
                pgsize: small,
                count: 1,
                prot: Prot::RW,
            });
        }
        t.check_tables();
        t.apply(Op::Clear);
        t.check_tables();
        t.apply(Op::Grace);
        t.apply(Op::Map {
            iova: 0,
            pa: 0,
            pgsize: small,
            count: 4 * span / small,
            prot: Prot::RW,
        });
        t.check_tables();
    }
}
