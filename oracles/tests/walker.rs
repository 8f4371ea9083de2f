//! The walker against real engine domains: it passes on what the engine builds for every
//! format and granule, and it fails when the model says something else.

mod common;
#[path = "../../engine/tests/formats/mod.rs"]
#[macro_use]
mod formats;

use common::{cfg, XorShiftStar as Rng};
use std::time::Instant;

use ptfuzz_engine::{Domain, DomainConfig, ErrorKind, FlushLog, FormatKind, Granule, Prot};
use ptfuzz_oracles::walker::{check_domain, check_range, translate_domain, FaultKind};
use ptfuzz_oracles::Model;

use FormatKind::*;
use Granule::*;

struct Pair {
    dom: Domain<FlushLog>,
    model: Model,
}

impl Pair {
    fn new(cfg: DomainConfig) -> Pair {
        let dom = Domain::with_flush(cfg, FlushLog::default(), None)
            .unwrap_or_else(|e| panic!("{cfg:?}: {e}"));
        let model = Model::new(&cfg).unwrap();
        Pair { dom, model }
    }

    fn ias_end(&self) -> u64 {
        1 << self.dom.config().ias
    }

    fn map(&mut self, iova: u64, pa: u64, pgsize: u64, count: u64, prot: Prot) {
        let e = self.dom.map(iova, pa, pgsize, count, prot);
        let m = match e {
            // An injected allocation failure: the model maps only what the engine did
            // (the model has no tables, so it cannot know where allocation fails).
            Err(err) if err.kind == ErrorKind::Nomem => {
                let done = err.mapped / pgsize;
                if done > 0 {
                    self.model.map(iova, pa, pgsize, done, prot).unwrap();
                }
                Err(err)
            }
            _ => self.model.map(iova, pa, pgsize, count, prot),
        };
        assert_eq!(e, m, "map {iova:#x} {pa:#x} {pgsize:#x} x{count} {prot}");
    }

    fn unmap(&mut self, iova: u64, pgsize: u64, count: u64) {
        let e = self.dom.unmap(iova, pgsize, count);
        let m = self.model.unmap(iova, pgsize, count);
        assert_eq!(e, m, "unmap {iova:#x} {pgsize:#x} x{count}");
    }

    fn samples(&self) -> Vec<u64> {
        let end = self.ias_end();
        let mut v = vec![
            0,
            0x1234,
            end / 3,
            end / 2 + 0x10_0008,
            end - 1,
            end,
            end + 0x1000,
            u64::MAX,
        ];
        for q in 0..4 {
            v.push(q * (end / 4) + 0x77_7778 % (end / 4));
        }
        v
    }

    #[track_caller]
    fn check(&self) {
        if let Err(d) = check_domain(&self.dom, &self.model, &self.samples()) {
            panic!("{:?}: {d}", self.dom.config());
        }
    }
}

/// Every format and granule, with start levels L0..L3 and concatenated stage-2 roots.
/// The shared suite's configurations of `f` (engine/tests/formats/mod.rs), each with a
/// coherent and a non-coherent walker.
fn configs(f: FormatKind) -> Vec<DomainConfig> {
    let mut out: Vec<DomainConfig> = Vec::new();
    for n in formats::configs(f) {
        for coherent in [true, false] {
            let c = DomainConfig { coherent, ..n.cfg };
            if !out.contains(&c) {
                out.push(c);
            }
        }
    }
    out
}

// Per format (`arm64_s1::walker_agrees_with_engine_and_model_on_every_format`, ...); the
// armv7s walker runs in tests/suite.rs (`armv7s::walker_against_model`).
per_format!(lpae: [walker_agrees_with_engine_and_model_on_every_format, random_ops_agree]);

const PROTS: [Prot; 3] = [Prot::RW, Prot::READ, Prot::WRITE];

/// A prot cycling through every letter combination with r or w.
fn prot(i: u64) -> Prot {
    let p = Prot::from_bits_truncate((i * 7 + 1) as u8 & 0x3f);
    if p.readable() || p.writable() {
        p
    } else {
        p | PROTS[(i % 3) as usize]
    }
}

/// Maps, unmaps (freeing tables), ends grace periods and maps again, checking after each step.
fn exercise(c: DomainConfig) {
    let mut t = Pair::new(c);
    t.check();
    let end = t.ias_end();
    let quarter = end / 4;
    let sizes = t.model.page_sizes().to_vec();
    let oa_mid = 1u64 << (c.oas - 1);
    let mut n = 0;
    for (r, &ps) in sizes.iter().enumerate() {
        let base = r as u64 * quarter;
        let count = (quarter / ps).min(3);
        t.map(base, oa_mid + r as u64 * ps * 8, ps, count, prot(n));
        n += 1;
        // the last page of the region and of the whole space
        t.map(base + quarter - ps, oa_mid - ps, ps, 1, prot(n));
        n += 1;
        t.check();
        // exists, and a partial map stopped by it
        t.map(base, 0, ps, 1, Prot::RW);
        if count >= 2 && ps < quarter {
            t.map(base + quarter - 2 * ps, ps, ps, 2, prot(n));
        }
        t.check();
    }
    let small = sizes[0];
    // the last page of the input space to the last page of the output space
    t.map(end - small, (1u64 << c.oas) - small, small, 1, Prot::READ);
    // A run of small pages over a whole next-level table span, then unmap it (frees a table).
    let span = (sizes.get(1).copied().unwrap_or(small * 16)).min(quarter / 2);
    let run_at = 3 * quarter - span;
    if t.model.leaf_at(run_at).is_none() && t.model.leaf_at(run_at + span - 1).is_none() {
        t.map(
            run_at,
            oa_mid / 2,
            small,
            span / small,
            Prot::RW | Prot::CACHE,
        );
        t.check();
        t.unmap(run_at + small, small, 1);
        t.check();
        t.unmap(run_at, small, span / small);
        t.check();
    }
    for (r, &ps) in sizes.iter().enumerate() {
        t.unmap(r as u64 * quarter, ps, 2);
        t.check();
    }
    t.dom.grace_period();
    t.check();
    // Remap over the freed space: freed tables are reused.
    for (r, &ps) in sizes.iter().enumerate() {
        t.map(r as u64 * quarter, oa_mid, ps, 1, prot(n + r as u64));
    }
    t.check();
    t.unmap(end - small, small, 1);
    t.dom.grace_period();
    t.check();
}

fn walker_agrees_with_engine_and_model_on_every_format(f: FormatKind) {
    for c in configs(f) {
        exercise(c);
    }
}

/// The engine's attributes for every prot, at every leaf size, match SEMANTICS.md.
#[test]
fn every_prot_at_every_size() {
    for (f, g) in [
        (Arm64S1, G4K),
        (Arm64S2, G4K),
        (Arm64S1, G64K),
        (Arm32LpaeS1, G4K),
    ] {
        let ias = if f == Arm32LpaeS1 { 32 } else { 40 };
        let mut t = Pair::new(cfg(f, g, ias, 40, true));
        for (k, ps) in t.model.page_sizes().to_vec().into_iter().enumerate() {
            for bits in 0..64u64 {
                let p = Prot::from_bits_truncate(bits as u8);
                let iova = ((k as u64) << (ias - 2)) + bits * ps;
                t.map(iova, ps * (bits + 1), ps, 1, p);
            }
        }
        t.check();
    }
}

fn small_domain() -> Pair {
    let mut t = Pair::new(DomainConfig::new(Arm64S1, G4K, 48, 48));
    t.map(0x20_0000, 0x4020_0000, 0x20_0000, 1, Prot::RW);
    t.map(0x40_1000, 0x8000_0000, 0x1000, 4, Prot::READ | Prot::CACHE);
    t.check();
    t
}

#[test]
fn extra_model_leaf_is_a_divergence() {
    let mut t = small_domain();
    t.model
        .map(0x80_0000, 0x1234_5000, 0x1000, 1, Prot::RW)
        .unwrap();
    let d = check_domain(&t.dom, &t.model, &[]).unwrap_err();
    assert_eq!(d.oracle(), ptfuzz_oracles::OracleId::Walker);
    assert_eq!(d.kind(), "walker/mapped-faults");
    let s = d.to_string();
    assert!(
        s.starts_with("walker: iova 0x800000: model maps it to pa 0x12345000"),
        "{s}"
    );
    assert!(s.contains("translation fault at L2"), "{s}");
    // check_range sees it only when the range covers it.
    assert!(check_range(&t.dom, &t.model, 0, 0x80_0000, &[]).is_ok());
    assert!(check_range(&t.dom, &t.model, 0x80_0fff, 0x80_1000, &[]).is_err());
    // and as a sample
    assert!(check_range(&t.dom, &t.model, 0, 0, &[0x80_0010]).is_err());
}

#[test]
fn engine_leaf_missing_from_model_is_a_divergence() {
    let mut t = small_domain();
    t.dom
        .map(0x1_0000_0000, 0x9000_0000, 0x1000, 1, Prot::RW)
        .unwrap();
    // Not sampled: the structure walk finds it.
    let d = check_domain(&t.dom, &t.model, &[]).unwrap_err().to_string();
    assert!(
        d.contains("leaf at iova 0x100000000") && d.contains("no mapping"),
        "{d}"
    );
    // Sampled: the translation shows it.
    let d = check_range(&t.dom, &t.model, 0, 0, &[0x1_0000_0008])
        .unwrap_err()
        .to_string();
    assert!(
        d.contains("unmapped in the model") && d.contains("pa 0x90000008"),
        "{d}"
    );
}

#[test]
fn wrong_pa_size_or_prot_in_model_is_a_divergence() {
    // pa
    let mut t = small_domain();
    t.model.unmap(0x40_1000, 0x1000, 1).unwrap();
    t.model
        .map(0x40_1000, 0x8000_2000, 0x1000, 1, Prot::READ | Prot::CACHE)
        .unwrap();
    let d = check_domain(&t.dom, &t.model, &[]).unwrap_err().to_string();
    assert!(
        d.contains("output address differs") && d.contains("0x80002000"),
        "{d}"
    );
    // prot
    let mut t = small_domain();
    t.model.unmap(0x40_1000, 0x1000, 1).unwrap();
    t.model
        .map(0x40_1000, 0x8000_0000, 0x1000, 1, Prot::RW | Prot::CACHE)
        .unwrap();
    let d = check_domain(&t.dom, &t.model, &[]).unwrap_err().to_string();
    assert!(d.contains("attributes differ"), "{d}");
    // leaf size: the model has 512 4K pages where the engine has one 2M block
    let mut t = small_domain();
    t.model.unmap(0x20_0000, 0x20_0000, 1).unwrap();
    t.model
        .map(0x20_0000, 0x4020_0000, 0x1000, 512, Prot::RW)
        .unwrap();
    let d = check_domain(&t.dom, &t.model, &[]).unwrap_err().to_string();
    assert!(d.contains("leaf size differs"), "{d}");
    // a model for another domain
    let t = small_domain();
    let other = Model::new(&DomainConfig::new(Arm64S1, G4K, 47, 48)).unwrap();
    assert!(check_domain(&t.dom, &other, &[]).is_err());
}

#[test]
fn stage2_concatenated_root_uses_its_second_table() {
    let mut t = Pair::new(DomainConfig::new(Arm64S2, G4K, 40, 40));
    let iova = 700u64 << 30;
    t.map(iova, 0x40_0000_0000 >> 2, 1 << 30, 1, Prot::RW);
    t.check();
    let tr = translate_domain(&t.dom, &t.model, iova + 0x1234)
        .unwrap()
        .unwrap();
    assert_eq!(tr.desc_pa, t.dom.root() + 0x1000 + 8 * (700 - 512));
    assert_eq!(tr.level, 1);
    let f = translate_domain(&t.dom, &t.model, 188 << 30)
        .unwrap()
        .unwrap_err();
    assert_eq!(f.kind, FaultKind::Translation);
}

/// A non-coherent domain is walked through the device view (the engine syncs; both views
/// agree after every op).
#[test]
fn non_coherent_domain_uses_device_view() {
    let mut t = Pair::new(cfg(Arm64S1, G16K, 48, 48, false));
    t.map(0x200_0000, 0x4_0000_0000, 0x200_0000, 2, Prot::RW);
    t.map(0x1_0000_0000, 0x4_1000_0000, 0x4000, 100, Prot::READ);
    t.check();
    assert_eq!(t.dom.mem().device_view(), t.dom.mem().cpu_view());
}

/// 65536 leaves: the full check stays well under a second in release.
#[test]
fn big_domain_is_fast() {
    let mut t = Pair::new(DomainConfig::new(Arm64S1, G4K, 48, 48));
    // 32768 contiguous pages plus 32768 scattered ones (one per 2M: many L3 tables).
    t.map(0x1_0000_0000, 0x1_0000_0000, 0x1000, 32768, Prot::RW);
    for i in 0..32768u64 {
        t.map(
            0x100_0000_0000 + i * 0x20_0000,
            0x2_0000_0000 + i * 0x1000,
            0x1000,
            1,
            Prot::READ,
        );
    }
    let start = Instant::now();
    check_domain(&t.dom, &t.model, &t.samples()).unwrap();
    let took = start.elapsed();
    eprintln!(
        "check_domain over 65536 leaves, {} tables: {took:?}",
        t.dom.counters().live
    );
    if !cfg!(debug_assertions) {
        assert!(took.as_millis() < 500, "{took:?}");
    }
}

/// Random maps, unmaps, allocation failures and grace periods in a small window (so they
/// collide), checked by the walker after every op.
fn random_ops(c: DomainConfig, seed: u64, ops: usize) {
    let mut t = Pair::new(c);
    let mut rng = Rng(seed | 1);
    let sizes = t.model.page_sizes().to_vec();
    let top = *sizes.last().unwrap();
    let end = t.ias_end();
    // Sometimes a window of a few blocks, sometimes one of a few small-page tables.
    let window = match rng.below(3) {
        0 => 4 * top,
        1 => 2 * sizes.get(1).copied().unwrap_or(top),
        _ => 64 * sizes[0],
    }
    .min(end);
    let base = match rng.below(3) {
        0 => 0,
        1 => end - window,
        _ => rng.below(end / window) * window,
    };
    let oas_end = 1u64 << c.oas;
    for op in 0..ops {
        let fit: Vec<u64> = sizes.iter().copied().filter(|&s| s <= window).collect();
        let ps = fit[rng.below(fit.len() as u64) as usize];
        let pages = window / ps;
        let first = rng.below(pages);
        let count = 1 + rng.below((pages - first).min(if ps == sizes[0] { 600 } else { 3 }));
        let iova = base + first * ps;
        let (lo, hi) = (iova, iova + count * ps);
        match rng.below(10) {
            0..=4 => {
                let pa = rng.below(oas_end / ps - count + 1) * ps;
                let prot = Prot::from_bits_truncate(rng.next() as u8);
                if rng.below(8) == 0 {
                    t.dom.fail_nth_alloc(Some(1 + rng.below(3)));
                }
                t.map(iova, pa, ps, count, prot);
                t.dom.fail_nth_alloc(None);
            }
            5..=8 => t.unmap(iova, ps, count),
            _ => t.dom.grace_period(),
        }
        let samples = [lo, hi - 1, hi, lo.wrapping_sub(1), base + rng.below(window)];
        if let Err(d) = check_range(&t.dom, &t.model, lo, hi, &samples) {
            panic!("{c:?} seed {seed} op {op}: {d}");
        }
        if op % 16 == 15 {
            if let Err(d) = check_domain(&t.dom, &t.model, &samples) {
                panic!("{c:?} seed {seed} op {op}: {d}");
            }
        }
    }
    t.check();
}

fn random_ops_agree(f: FormatKind) {
    let ops = if cfg!(debug_assertions) { 150 } else { 800 };
    for (i, c) in configs(f).into_iter().enumerate() {
        for seed in 0..3u64 {
            random_ops(c, 0x9e37_79b9_7f4a_7c15 ^ (i as u64 * 1000 + seed), ops);
        }
    }
}

#[test]
fn random_ops_more_geometries() {
    let ops = if cfg!(debug_assertions) { 100 } else { 600 };
    let mut v = vec![
        cfg(Arm64S1, G16K, 37, 48, true),
        cfg(Arm64S1, G64K, 43, 48, false),
        cfg(Arm64S1, G4K, 40, 33, true),
        cfg(Arm64S2, G4K, 43, 43, true),
        cfg(Arm64S2, G4K, 44, 44, false),
        cfg(Arm64S2, G16K, 41, 42, true),
        cfg(Arm64S2, G64K, 33, 33, true),
        cfg(Arm32LpaeS2, G4K, 34, 34, false),
    ];
    let mut c = cfg(Arm64S1, G64K, 40, 40, true);
    c.phys_base = 0x80_0000_0000 - (16 << 16) * 64;
    v.push(c);
    for (i, c) in v.into_iter().enumerate() {
        for seed in 0..2u64 {
            random_ops(c, 0x1234_5678_9abc_def1 ^ (i as u64 * 77 + seed), ops);
        }
    }
}

#[test]
fn model_leaves_overlapping() {
    let t = small_domain();
    let got = |lo, hi| -> Vec<u64> { t.model.leaves_overlapping(lo, hi).map(|l| l.0).collect() };
    assert_eq!(
        got(0, u64::MAX),
        [0x20_0000, 0x40_1000, 0x40_2000, 0x40_3000, 0x40_4000]
    );
    assert_eq!(got(0x3f_ffff, 0x40_1001), [0x20_0000, 0x40_1000]);
    assert_eq!(got(0x40_0000, 0x40_1000), Vec::<u64>::new());
    assert_eq!(got(0x40_2fff, 0x40_3000), [0x40_2000]);
    assert_eq!(got(0x40_2fff, 0x40_2fff), Vec::<u64>::new());
}

/// Engine finding (see the report): nothing stops table frames from being placed at or above
/// 2^OAS (phys_base is only checked for alignment), and the engine then links tables whose
/// addresses a real SMMU refuses with an address size fault. The walker reports it; if the
/// engine starts refusing such domains, the test still passes.
#[test]
fn tables_beyond_oas_are_reported() {
    let mut c = DomainConfig::new(Arm64S1, G4K, 32, 32);
    c.phys_base = 0x1_0000_0000;
    let Ok(mut dom) = Domain::new(c) else { return };
    let Ok(mut model) = Model::new(&c) else {
        return;
    };
    assert_eq!(dom.map(0x1000, 0x2000, 0x1000, 1, Prot::RW), Ok(0x1000));
    model.map(0x1000, 0x2000, 0x1000, 1, Prot::RW).unwrap();
    let d = check_domain(&dom, &model, &[]).unwrap_err().to_string();
    assert!(d.contains("address size fault"), "{d}");
}
