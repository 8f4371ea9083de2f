//! W1..W14 of `/work/shared/BENCHMARKS.md`: this engine side by side with the
//! `aarch64-paging` crate (the peer), in one process.
//!
//! Run it with the glibc heap kept warm, so that both sides measure page tables and not
//! page faults:
//!
//! ```text
//! MALLOC_TRIM_THRESHOLD_=4294967296 MALLOC_TOP_PAD_=268435456 MALLOC_MMAP_THRESHOLD_=4294967296 \
//!     cargo bench -p ptfuzz-engine --bench peer
//! ```
//!
//! - `PTFUZZ_BENCH_QUICK=1` divides every size by 16 and takes 3 repetitions (a CI smoke run).
//! - Workload ids as arguments run only those: `cargo bench -p ptfuzz-engine --bench peer -- W3 W14`.
//!
//! Rules followed (BENCHMARKS.md): A B A B interleaving, 9 repetitions after one discarded
//! warm-up of each side, median and min; 4K granule, 48-bit, 4 levels on both sides; the
//! peer is an inactive `Mapping` (no TLB maintenance), ours has the no-op `NullFlush`; the
//! peer gets exactly our leaf attributes and the same IOVA/PA layout; 4K workloads forbid
//! the peer block mappings (ours never makes blocks out of 4K maps); fresh tables and all
//! correctness checks stay outside the timed region; the peer unmaps with a non-zero PA.
//! The ratio is median(ours) / median(peer); below 1 is better.

use std::hint::black_box;
use std::time::Instant;

use aarch64_paging::descriptor::{
    El1Attributes, PagingAttributes, PhysicalAddress, Stage2Attributes,
};
use aarch64_paging::idmap::IdTranslation;
use aarch64_paging::paging::{
    Constraints, El1And0, MemoryRegion, Stage2, TranslationRegime, VaRange,
};
use aarch64_paging::Mapping;
use ptfuzz_engine::format::{Format, Lpae};
use ptfuzz_engine::{Domain, DomainConfig, FormatKind, Granule, Prot};

const K4: u64 = 1 << 12;
const M2: u64 = 1 << 21;
/// IOVA base (1 GiB aligned) and PA base; W7/W10 add 2 MiB to the PA (PA = 2M mod 1G), so
/// neither side can use 1 GiB blocks.
const IOVA: u64 = 0x10_0000_0000;
const PA: u64 = 0x80_0000_0000;
const OFF: u64 = 0x123;

// ---------------------------------------------------------------------------------------
// Timing helpers.

/// Runs `f`, returns its wall time in ns and its result.
#[inline(always)]
fn time<R>(f: impl FnOnce() -> R) -> (f64, R) {
    let t = Instant::now();
    let r = black_box(f());
    (t.elapsed().as_nanos() as f64, r)
}

/// One discarded warm-up, then `reps` samples of `f` (which times its own region and
/// returns ns per unit), sorted.
fn measure(reps: usize, mut f: impl FnMut() -> f64) -> Vec<f64> {
    f();
    let mut v: Vec<f64> = (0..reps).map(|_| f()).collect();
    v.sort_by(f64::total_cmp);
    v
}

/// A B A B ...: one discarded warm-up of each, then `reps` samples of each, both sorted.
fn interleave(
    reps: usize,
    mut a: impl FnMut() -> f64,
    mut b: impl FnMut() -> f64,
) -> (Vec<f64>, Vec<f64>) {
    a();
    b();
    let (mut va, mut vb) = (Vec::with_capacity(reps), Vec::with_capacity(reps));
    for _ in 0..reps {
        va.push(a());
        vb.push(b());
    }
    va.sort_by(f64::total_cmp);
    vb.sort_by(f64::total_cmp);
    (va, vb)
}

fn median(v: &[f64]) -> f64 {
    v[v.len() / 2]
}

/// xorshift64*: a fixed, reproducible pseudo-random sequence.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

// ---------------------------------------------------------------------------------------
// The two sides.

fn ours(kind: FormatKind, g: Granule) -> Domain {
    Domain::new(DomainConfig::new(kind, g, 48, 48)).expect("domain")
}

/// Ours with tables packed into host pages of `host` (issue 16: sub-page tables).
fn ours_on(kind: FormatKind, g: Granule, host: Granule) -> Domain {
    let mut cfg = DomainConfig::new(kind, g, 48, 48);
    cfg.host_page = Some(host);
    Domain::new(cfg).expect("domain")
}

/// The peer: an inactive `Mapping` over heap tables (identity translation), with our leaf
/// attributes.
struct Peer<R: TranslationRegime> {
    m: Mapping<IdTranslation<R::Attributes>, R>,
    attrs: R::Attributes,
}

/// Our leaf attributes at a block level (the peer adds TABLE_OR_PAGE at level 3 itself).
fn our_attrs(kind: FormatKind) -> usize {
    Lpae::new(kind).leaf_attrs(Prot::RW, 2, 21) as usize
}

fn peer_s1() -> Peer<El1And0> {
    Peer {
        m: Mapping::with_asid_and_va_range(IdTranslation::new(), 1, 0, El1And0, VaRange::Lower),
        attrs: El1Attributes::from_bits_retain(our_attrs(FormatKind::Arm64S1)),
    }
}

fn peer_s2() -> Peer<Stage2> {
    Peer {
        m: Mapping::new(IdTranslation::new(), 0, Stage2),
        attrs: Stage2Attributes::from_bits_retain(our_attrs(FormatKind::Arm64S2)),
    }
}

impl<R: TranslationRegime> Peer<R> {
    fn region(iova: u64, len: u64) -> MemoryRegion {
        MemoryRegion::new(iova as usize, (iova + len) as usize)
    }

    /// Maps `[iova, iova + len)` to `pa`; `blocks` allows block descriptors (2M workloads).
    #[inline(always)]
    fn map(&mut self, iova: u64, pa: u64, len: u64, blocks: bool) -> bool {
        let c = if blocks {
            Constraints::NO_CONTIGUOUS_HINT
        } else {
            Constraints::NO_BLOCK_MAPPINGS | Constraints::NO_CONTIGUOUS_HINT
        };
        self.m
            .map_range(
                &Self::region(iova, len),
                PhysicalAddress(pa as usize),
                self.attrs,
                c,
            )
            .is_ok()
    }

    /// Unmaps: `map_range` without VALID, with the (non-zero) PA that was mapped there.
    #[inline(always)]
    fn unmap(&mut self, iova: u64, pa: u64, len: u64) -> bool {
        self.m
            .map_range(
                &Self::region(iova, len),
                PhysicalAddress(pa as usize),
                R::Attributes::default(),
                Constraints::NO_CONTIGUOUS_HINT,
            )
            .is_ok()
    }

    /// The leaf descriptor covering `va` and its level, through `walk_range`.
    #[inline(always)]
    fn leaf(&self, va: u64) -> Option<(u64, usize)> {
        let mut out = None;
        let va = va as usize;
        let _ = self
            .m
            .walk_range(&MemoryRegion::new(va, va + 1), &mut |_, d, level| {
                if d.is_valid() {
                    out = Some(((d.output_address().0 | attr_bits(d.flags())) as u64, level));
                }
                Ok(())
            });
        out
    }

    #[inline(always)]
    fn lookup(&self, va: u64) -> Option<u64> {
        self.leaf(va).map(|(desc, level)| {
            let mask = (K4 << (9 * (3 - level))) - 1;
            (desc & !mask & ((1 << 48) - 1)) | (va & mask)
        })
    }
}

fn attr_bits<A: PagingAttributes>(a: A) -> usize {
    a.bits()
}

/// What a side must answer: per-workload correctness checks go through this.
trait Side {
    fn look(&self, va: u64) -> Option<u64>;
}
impl Side for Domain {
    fn look(&self, va: u64) -> Option<u64> {
        self.lookup(va)
    }
}
impl<R: TranslationRegime> Side for Peer<R> {
    fn look(&self, va: u64) -> Option<u64> {
        self.lookup(va)
    }
}

/// A few lookups: pages 0, 1, n/2, n-1 of `[iova, +n*pgsize)` map to `pa`, the page after
/// the range does not.
fn check_mapped(s: &impl Side, iova: u64, pa: u64, pgsize: u64, n: u64) {
    for k in [0, 1.min(n - 1), n / 2, n - 1] {
        let va = iova + k * pgsize + OFF;
        assert_eq!(s.look(va), Some(pa + k * pgsize + OFF), "lookup {va:#x}");
    }
    assert_eq!(s.look(iova + n * pgsize + OFF), None, "past the end");
}

fn check_unmapped(s: &impl Side, iova: u64, pgsize: u64, n: u64) {
    for k in [0, 1.min(n - 1), n / 2, n - 1] {
        assert_eq!(s.look(iova + k * pgsize + OFF), None, "unmapped page {k}");
    }
}

/// Both sides write the same descriptor bits (checked once, outside every timed region).
fn check_same_descriptors() {
    for (kind, is_s2) in [(FormatKind::Arm64S1, false), (FormatKind::Arm64S2, true)] {
        let f = Lpae::new(kind);
        let leaf = |va| {
            if is_s2 {
                let mut p = peer_s2();
                assert!(p.map(IOVA, PA, K4, false) && p.map(IOVA + (1 << 30), PA + M2, M2, true));
                p.leaf(va)
            } else {
                let mut p = peer_s1();
                assert!(p.map(IOVA, PA, K4, false) && p.map(IOVA + (1 << 30), PA + M2, M2, true));
                p.leaf(va)
            }
        };
        assert_eq!(
            leaf(IOVA),
            Some((PA | f.leaf_attrs(Prot::RW, 3, 12), 3)),
            "{kind} page"
        );
        assert_eq!(
            leaf(IOVA + (1 << 30)),
            Some(((PA + M2) | f.leaf_attrs(Prot::RW, 2, 21), 2)),
            "{kind} block"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Workloads. Each returns the rows it prints.

struct Cfg {
    reps: usize,
    div: u64,
}

struct Row {
    id: &'static str,
    name: String,
    unit: &'static str,
    ours: Vec<f64>,
    peer: Option<Vec<f64>>,
    /// Target ratio (ours/peer median), if the row has one.
    target: Option<f64>,
    note: String,
}

fn row(
    id: &'static str,
    name: impl Into<String>,
    unit: &'static str,
    (a, b): (Vec<f64>, Vec<f64>),
    target: f64,
) -> Row {
    Row {
        id,
        name: name.into(),
        unit,
        ours: a,
        peer: Some(b),
        target: Some(target),
        note: String::new(),
    }
}

/// W1: map 4K one call per page into a fresh table, stage 1 or 2.
fn w1<R: TranslationRegime>(c: &Cfg, kind: FormatKind, mk: fn() -> Peer<R>) -> Row {
    w1_on(c, kind, mk, Granule::G4K)
}

/// W1 with 4K tables packed into host pages of `host`; W15 when larger than 4K.
fn w1_on<R: TranslationRegime>(
    c: &Cfg,
    kind: FormatKind,
    mk: fn() -> Peer<R>,
    host: Granule,
) -> Row {
    let n = 65536 / c.div;
    let r = interleave(
        c.reps,
        || {
            let mut d = ours_on(kind, Granule::G4K, host);
            let (t, ok) = time(|| {
                let mut ok = true;
                for i in 0..n {
                    ok &= d.map(IOVA + i * K4, PA + i * K4, K4, 1, Prot::RW) == Ok(K4);
                }
                ok
            });
            assert!(ok);
            check_mapped(&d, IOVA, PA, K4, n);
            t / n as f64
        },
        || {
            let mut p = mk();
            let (t, ok) = time(|| {
                let mut ok = true;
                for i in 0..n {
                    ok &= p.map(IOVA + i * K4, PA + i * K4, K4, false);
                }
                ok
            });
            assert!(ok);
            check_mapped(&p, IOVA, PA, K4, n);
            t / n as f64
        },
    );
    let s = if kind.is_stage2() { "S2" } else { "S1" };
    if host == Granule::G4K {
        row("W1", format!("W1 map 4K per page, {s}"), "ns/op", r, 0.25)
    } else {
        let name = format!("W15 map 4K per page, {s}, {host} host");
        row("W15", name, "ns/op", r, 0.25)
    }
}

/// W2: map 4K, one call for the range, fresh table.
fn w2(c: &Cfg) -> Row {
    let n = 65536 / c.div;
    let r = interleave(
        c.reps,
        || {
            let mut d = ours(FormatKind::Arm64S1, Granule::G4K);
            let (t, res) = time(|| d.map(IOVA, PA, K4, n, Prot::RW));
            assert_eq!(res, Ok(n * K4));
            check_mapped(&d, IOVA, PA, K4, n);
            t / n as f64
        },
        || {
            let mut p = peer_s1();
            let (t, ok) = time(|| p.map(IOVA, PA, n * K4, false));
            assert!(ok);
            check_mapped(&p, IOVA, PA, K4, n);
            t / n as f64
        },
    );
    row("W2", "W2 map 4K one range call", "ns/page", r, 0.5)
}

/// Both sides with `n` 4K pages mapped at IOVA -> PA in one range call.
fn mapped_pair(n: u64) -> (Domain, Peer<El1And0>) {
    let mut d = ours(FormatKind::Arm64S1, Granule::G4K);
    assert_eq!(d.map(IOVA, PA, K4, n, Prot::RW), Ok(n * K4));
    let mut p = peer_s1();
    assert!(p.map(IOVA, PA, n * K4, false));
    (d, p)
}

/// Lookups of the addresses in `vas` on both sides, checked against a checksum.
fn lookups(c: &Cfg, d: &Domain, p: &Peer<El1And0>, vas: &[u64]) -> (Vec<f64>, Vec<f64>) {
    // Every va is IOVA + k*4K + off, mapped to PA + k*4K + off.
    let expect = vas.iter().fold(0u64, |s, &v| s.wrapping_add(v - IOVA + PA));
    let n = vas.len() as f64;
    interleave(
        c.reps,
        || {
            let (t, sum) = time(|| {
                vas.iter()
                    .fold(0u64, |s, &v| s.wrapping_add(d.lookup(v).unwrap_or(0)))
            });
            assert_eq!(sum, expect);
            t / n
        },
        || {
            let (t, sum) = time(|| {
                vas.iter()
                    .fold(0u64, |s, &v| s.wrapping_add(p.lookup(v).unwrap_or(0)))
            });
            assert_eq!(sum, expect);
            t / n
        },
    )
}

/// W3: sequential lookups, W4: a fixed random permutation of the same addresses.
fn w3_w4(c: &Cfg, want: &dyn Fn(&str) -> bool) -> Vec<Row> {
    let n = 65536 / c.div;
    let (d, p) = mapped_pair(n);
    check_mapped(&d, IOVA, PA, K4, n);
    check_mapped(&p, IOVA, PA, K4, n);
    let mut vas: Vec<u64> = (0..n).map(|i| IOVA + i * K4 + OFF).collect();
    let mut rows = Vec::new();
    if want("W3") {
        rows.push(row(
            "W3",
            "W3 lookup sequential +0x123",
            "ns/op",
            lookups(c, &d, &p, &vas),
            0.25,
        ));
    }
    if want("W4") {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for i in (1..vas.len()).rev() {
            vas.swap(i, (rng.next() % (i as u64 + 1)) as usize);
        }
        rows.push(row(
            "W4",
            "W4 lookup random permutation",
            "ns/op",
            lookups(c, &d, &p, &vas),
            0.25,
        ));
    }
    rows
}

/// W5: unmap 4K one call per page, from a range mapped outside the timed region.
fn w5(c: &Cfg) -> Row {
    let n = 65536 / c.div;
    let r = interleave(
        c.reps,
        || {
            let mut d = mapped_ours(n);
            let (t, ok) = time(|| {
                let mut ok = true;
                for i in 0..n {
                    ok &= d.unmap(IOVA + i * K4, K4, 1) == Ok(K4);
                }
                ok
            });
            assert!(ok);
            check_unmapped(&d, IOVA, K4, n);
            t / n as f64
        },
        || {
            let mut p = mapped_peer(n);
            let (t, ok) = time(|| {
                let mut ok = true;
                for i in 0..n {
                    ok &= p.unmap(IOVA + i * K4, PA + i * K4, K4);
                }
                ok
            });
            assert!(ok);
            check_unmapped(&p, IOVA, K4, n);
            t / n as f64
        },
    );
    row("W5", "W5 unmap 4K per page", "ns/op", r, 0.3)
}

fn mapped_ours(n: u64) -> Domain {
    let mut d = ours(FormatKind::Arm64S1, Granule::G4K);
    assert_eq!(d.map(IOVA, PA, K4, n, Prot::RW), Ok(n * K4));
    d
}

fn mapped_peer(n: u64) -> Peer<El1And0> {
    let mut p = peer_s1();
    assert!(p.map(IOVA, PA, n * K4, false));
    p
}

/// W6: unmap 256 MiB of 4K pages in one call (whole last-level tables go).
fn w6(c: &Cfg) -> Row {
    let n = 65536 / c.div;
    let r = interleave(
        c.reps,
        || {
            let mut d = mapped_ours(n);
            let (t, res) = time(|| d.unmap(IOVA, K4, n));
            assert_eq!(res, Ok(n * K4));
            check_unmapped(&d, IOVA, K4, n);
            t / n as f64
        },
        || {
            let mut p = mapped_peer(n);
            let (t, ok) = time(|| p.unmap(IOVA, PA, n * K4));
            assert!(ok);
            check_unmapped(&p, IOVA, K4, n);
            t / n as f64
        },
    );
    row(
        "W6",
        format!("W6 unmap {} MiB one call", (n * K4) >> 20),
        "ns/page",
        r,
        1.5,
    )
}

/// W7: map 2M blocks, one call per block or one call for the range; PA = 2M mod 1G.
fn w7(c: &Cfg, per_call: bool) -> Row {
    let n = 32768 / c.div;
    let pa = PA + M2;
    let r = interleave(
        c.reps,
        || {
            let mut d = ours(FormatKind::Arm64S1, Granule::G4K);
            let (t, ok) = time(|| {
                if per_call {
                    let mut ok = true;
                    for i in 0..n {
                        ok &= d.map(IOVA + i * M2, pa + i * M2, M2, 1, Prot::RW) == Ok(M2);
                    }
                    ok
                } else {
                    d.map(IOVA, pa, M2, n, Prot::RW) == Ok(n * M2)
                }
            });
            assert!(ok);
            check_mapped(&d, IOVA, pa, M2, n);
            t / n as f64
        },
        || {
            let mut p = peer_s1();
            let (t, ok) = time(|| {
                if per_call {
                    let mut ok = true;
                    for i in 0..n {
                        ok &= p.map(IOVA + i * M2, pa + i * M2, M2, true);
                    }
                    ok
                } else {
                    p.map(IOVA, pa, n * M2, true)
                }
            });
            assert!(ok);
            check_mapped(&p, IOVA, pa, M2, n);
            t / n as f64
        },
    );
    if per_call {
        row("W7", "W7 map 2M per call", "ns/block", r, 0.3)
    } else {
        row("W7", "W7 map 2M one range call", "ns/block", r, 0.5)
    }
}

/// W8-W10: `pairs` times map + unmap of `count` pages of `pgsize` at one IOVA, on tables
/// that already exist (one warm-up pair outside the timed region).
fn map_unmap(c: &Cfg, id: &'static str, pgsize: u64, count: u64, target: f64) -> Row {
    let pairs = 20000 / c.div;
    let len = pgsize * count;
    let pa = if pgsize == M2 { PA + M2 } else { PA };
    let blocks = pgsize == M2;
    let r = interleave(
        c.reps,
        || {
            let mut d = ours(FormatKind::Arm64S1, Granule::G4K);
            assert_eq!(d.map(IOVA, pa, pgsize, count, Prot::RW), Ok(len));
            assert_eq!(d.unmap(IOVA, pgsize, count), Ok(len));
            let (t, ok) = time(|| {
                let mut ok = true;
                for _ in 0..pairs {
                    ok &= d.map(IOVA, pa, pgsize, count, Prot::RW) == Ok(len);
                    ok &= d.unmap(IOVA, pgsize, count) == Ok(len);
                }
                ok
            });
            assert!(ok);
            check_unmapped(&d, IOVA, pgsize, count);
            assert_eq!(d.map(IOVA, pa, pgsize, count, Prot::RW), Ok(len));
            check_mapped(&d, IOVA, pa, pgsize, count);
            t / pairs as f64
        },
        || {
            let mut p = peer_s1();
            assert!(p.map(IOVA, pa, len, blocks) && p.unmap(IOVA, pa, len));
            let (t, ok) = time(|| {
                let mut ok = true;
                for _ in 0..pairs {
                    ok &= p.map(IOVA, pa, len, blocks);
                    ok &= p.unmap(IOVA, pa, len);
                }
                ok
            });
            assert!(ok);
            check_unmapped(&p, IOVA, pgsize, count);
            assert!(p.map(IOVA, pa, len, blocks));
            check_mapped(&p, IOVA, pa, pgsize, count);
            t / pairs as f64
        },
    );
    let size = if pgsize == M2 { "2M" } else { "4K" };
    row(
        id,
        format!("{id} map+unmap {count} x {size}"),
        "ns/pair",
        r,
        target,
    )
}

/// W11: re-map 4K per page into existing, emptied tables (mapped then unmapped page by
/// page outside the timed region, so no table was freed).
fn w11(c: &Cfg) -> Row {
    let n = 65536 / c.div;
    let r = interleave(
        c.reps,
        || {
            let mut d = mapped_ours(n);
            for i in 0..n {
                assert_eq!(d.unmap(IOVA + i * K4, K4, 1), Ok(K4));
            }
            let tables = d.counters().live;
            let (t, ok) = time(|| {
                let mut ok = true;
                for i in 0..n {
                    ok &= d.map(IOVA + i * K4, PA + i * K4, K4, 1, Prot::RW) == Ok(K4);
                }
                ok
            });
            assert!(ok);
            assert_eq!(d.counters().live, tables, "no table allocated");
            check_mapped(&d, IOVA, PA, K4, n);
            t / n as f64
        },
        || {
            let mut p = mapped_peer(n);
            for i in 0..n {
                assert!(p.unmap(IOVA + i * K4, PA + i * K4, K4));
            }
            let (t, ok) = time(|| {
                let mut ok = true;
                for i in 0..n {
                    ok &= p.map(IOVA + i * K4, PA + i * K4, K4, false);
                }
                ok
            });
            assert!(ok);
            check_mapped(&p, IOVA, PA, K4, n);
            t / n as f64
        },
    );
    row(
        "W11",
        "W11 re-map 4K per page, existing tables",
        "ns/op",
        r,
        0.25,
    )
}

/// W12: drop a table holding 65536 x 4K.
fn w12(c: &Cfg) -> Row {
    let n = 65536 / c.div;
    let r = interleave(
        c.reps,
        || {
            let d = mapped_ours(n);
            check_mapped(&d, IOVA, PA, K4, n);
            time(|| drop(d)).0 / n as f64
        },
        || {
            let p = mapped_peer(n);
            check_mapped(&p, IOVA, PA, K4, n);
            time(|| drop(p)).0 / n as f64
        },
    );
    row("W12", "W12 drop table of 4K pages", "ns/page", r, 1.5)
}

/// W13 (ours only): 256 MiB range maps at the 16K and 64K granules; ns per PTE and in all.
fn w13(c: &Cfg) -> Vec<Row> {
    let mut rows = Vec::new();
    for g in [Granule::G16K, Granule::G64K] {
        let pg = g.size();
        let n = (256 << 20) / pg / c.div;
        let total = measure(c.reps, || {
            let mut d = ours(FormatKind::Arm64S1, g);
            let (t, res) = time(|| d.map(IOVA, PA, pg, n, Prot::RW));
            assert_eq!(res, Ok(n * pg));
            check_mapped(&d, IOVA, PA, pg, n);
            t
        });
        let per = |v: &[f64]| v.iter().map(|t| t / n as f64).collect::<Vec<_>>();
        let per4k = median(&total) / (n * pg / K4) as f64;
        rows.push(Row {
            id: "W13",
            name: format!("W13 {g} map {} MiB one call", (n * pg) >> 20),
            unit: "ns/PTE",
            ours: per(&total),
            peer: None,
            target: None,
            note: format!(
                "{n} PTEs; call {:.0} ns median, {:.0} min; {per4k:.2} ns/4K-equiv",
                median(&total),
                total[0]
            ),
        });
    }
    rows
}

/// W16 (ours only): armv7s (short descriptors, 4-byte entries, 1 KiB level-2 tables): a
/// 256 MiB range mapped in one call at each page size (64K and 16M leaves are 16 repeated
/// entries), then unmapped in one call; ns per page for the map. The level-2 tables are
/// packed four to a 4K host page: the 4K and 64K rows' 256 tables take 64 pages beside the
/// first level's 4 (256 pages, one per table, before packing).
fn w16(c: &Cfg) -> Vec<Row> {
    const V7S_IOVA: u64 = 0x1000_0000;
    const V7S_PA: u64 = 0x8000_0000;
    let mut rows = Vec::new();
    for pg in [K4, 1 << 16, 1 << 20, 1 << 24] {
        let n = ((256u64 << 20) / pg / c.div).max(1);
        let total = measure(c.reps, || {
            let cfg = DomainConfig::new(FormatKind::Armv7s, Granule::G4K, 32, 32);
            let mut d = Domain::new(cfg).expect("armv7s domain");
            let (t, res) = time(|| d.map(V7S_IOVA, V7S_PA, pg, n, Prot::RW));
            assert_eq!(res, Ok(n * pg));
            assert_eq!(d.lookup(V7S_IOVA + n * pg - 1), Some(V7S_PA + n * pg - 1));
            let tables = if pg < 1 << 20 {
                (n * pg).div_ceil(1 << 20)
            } else {
                0
            };
            assert_eq!(d.mem().frames(), 4 + tables.div_ceil(4), "packed tables");
            assert_eq!(d.unmap(V7S_IOVA, pg, n), Ok(n * pg));
            t
        });
        let per = |v: &[f64]| v.iter().map(|t| t / n as f64).collect::<Vec<_>>();
        rows.push(Row {
            id: "W16",
            name: format!(
                "W16 armv7s map {} KiB pages, {} MiB",
                pg >> 10,
                (n * pg) >> 20
            ),
            unit: "ns/page",
            ours: per(&total),
            peer: None,
            target: None,
            note: format!("{n} pages; call {:.0} ns median", median(&total)),
        });
    }
    rows
}

/// W14: random lookups over 16M mapped 4K pages (128 MiB of last-level tables).
fn w14(c: &Cfg) -> Row {
    let n = (16 << 20) / c.div;
    let lk = (1 << 20) / c.div;
    let (d, p) = mapped_pair(n);
    check_mapped(&d, IOVA, PA, K4, n);
    check_mapped(&p, IOVA, PA, K4, n);
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let vas: Vec<u64> = (0..lk)
        .map(|_| IOVA + (rng.next() % n) * K4 + OFF)
        .collect();
    let r = lookups(c, &d, &p, &vas);
    let mut rw = row(
        "W14",
        format!("W14 random lookup over {}M pages", n >> 20),
        "ns/op",
        r,
        0.5,
    );
    rw.note = format!("{lk} lookups");
    rw
}

// ---------------------------------------------------------------------------------------

fn main() {
    let quick = std::env::var("PTFUZZ_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
    let c = if quick {
        Cfg { reps: 3, div: 16 }
    } else {
        Cfg { reps: 9, div: 1 }
    };
    // cargo bench passes `--bench`; every other argument names a workload to run.
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .map(|a| a.to_uppercase())
        .collect();
    let want = |id: &str| only.is_empty() || only.iter().any(|o| o == id);

    let warm = [
        "MALLOC_TRIM_THRESHOLD_",
        "MALLOC_TOP_PAD_",
        "MALLOC_MMAP_THRESHOLD_",
    ]
    .iter()
    .all(|v| std::env::var_os(v).is_some());
    println!(
        "ptfuzz-engine vs aarch64-paging 0.12.3: {} reps, sizes / {}{}{}",
        c.reps,
        c.div,
        if quick { " (PTFUZZ_BENCH_QUICK)" } else { "" },
        if cfg!(debug_assertions) {
            ", DEBUG BUILD"
        } else {
            ""
        }
    );
    if !warm {
        println!("warning: glibc heap not kept warm (set MALLOC_TRIM_THRESHOLD_, MALLOC_TOP_PAD_, MALLOC_MMAP_THRESHOLD_)");
    }
    check_same_descriptors();

    let mut rows: Vec<Row> = Vec::new();
    let mut emit = |rs: Vec<Row>| {
        for r in rs {
            print_row(&r);
            rows.push(r);
        }
    };
    print_header();
    if want("W1") {
        emit(vec![
            w1(&c, FormatKind::Arm64S1, peer_s1),
            w1(&c, FormatKind::Arm64S2, peer_s2),
        ]);
    }
    if want("W15") {
        // Next to W1: the same LPAE workload with 4K tables sixteen to a 64K host page.
        emit(vec![
            w1_on(&c, FormatKind::Arm64S1, peer_s1, Granule::G64K),
            w1_on(&c, FormatKind::Arm64S2, peer_s2, Granule::G64K),
        ]);
    }
    if want("W2") {
        emit(vec![w2(&c)]);
    }
    if want("W3") || want("W4") {
        emit(w3_w4(&c, &want));
    }
    if want("W5") {
        emit(vec![w5(&c)]);
    }
    if want("W6") {
        emit(vec![w6(&c)]);
    }
    if want("W7") {
        emit(vec![w7(&c, true), w7(&c, false)]);
    }
    if want("W8") {
        emit(vec![map_unmap(&c, "W8", K4, 1, 0.3)]);
    }
    if want("W9") {
        emit(vec![map_unmap(&c, "W9", K4, 256, 0.5)]);
    }
    if want("W10") {
        emit(vec![map_unmap(&c, "W10", M2, 256, 0.5)]);
    }
    if want("W11") {
        emit(vec![w11(&c)]);
    }
    if want("W12") {
        emit(vec![w12(&c)]);
    }
    if want("W13") {
        emit(w13(&c));
    }
    if want("W14") {
        emit(vec![w14(&c)]);
    }
    if want("W16") {
        emit(w16(&c));
    }

    let missed: Vec<&str> = rows
        .iter()
        .filter(|r| matches!((&r.peer, r.target), (Some(p), Some(t)) if median(&r.ours) / median(p) > t))
        .map(|r| r.id)
        .collect();
    println!(
        "\nmissed targets: {}",
        if missed.is_empty() {
            "none".to_string()
        } else {
            missed.join(" ")
        }
    );
}

fn print_header() {
    println!(
        "\n{:<40} {:>8} {:>9} {:>9} {:>9} {:>9} {:>7} {:>7}  verdict / notes",
        "workload", "unit", "ours med", "ours min", "peer med", "peer min", "ratio", "target"
    );
    println!("{}", "-".repeat(122));
}

fn print_row(r: &Row) {
    let f = |x: f64| {
        if x < 0.1 {
            format!("{x:.3}")
        } else if x < 10.0 {
            format!("{x:.2}")
        } else if x < 1000.0 {
            format!("{x:.1}")
        } else {
            format!("{x:.0}")
        }
    };
    let (pm, pn, ratio, target, verdict) = match (&r.peer, r.target) {
        (Some(p), Some(t)) => {
            let ratio = median(&r.ours) / median(p);
            (
                f(median(p)),
                f(p[0]),
                format!("{ratio:.3}"),
                format!("<={t}"),
                if ratio <= t { "ok" } else { "MISS" },
            )
        }
        _ => ("-".into(), "-".into(), "-".into(), "report".into(), ""),
    };
    let sep = if verdict.is_empty() || r.note.is_empty() {
        ""
    } else {
        "; "
    };
    println!(
        "{:<40} {:>8} {:>9} {:>9} {:>9} {:>9} {:>7} {:>7}  {verdict}{sep}{}",
        r.name,
        r.unit,
        f(median(&r.ours)),
        f(r.ours[0]),
        pm,
        pn,
        ratio,
        target,
        r.note
    );
}
