//! Shared helpers for the engine's integration tests.
//!
//! Everything here is written from the documents (`../shared/DESIGN.md`,
//! `docs/SEMANTICS.md`, `../shared/ARM-FACTS.md`), not from the engine's code: the expected
//! geometry is a hard-coded copy of the tables in ARM-FACTS §2/§3 and SEMANTICS "Domains",
//! the walker decodes descriptors with its own bit masks, and [`Model`] is a tiny reference
//! model of map/unmap/table lifetime as SEMANTICS describes it.

#![allow(dead_code)]

/// The shared per-format configuration list and `per_format!` (engine/tests/formats/).
#[path = "../formats/mod.rs"]
#[macro_use]
pub mod formats;

use std::collections::{BTreeMap, BTreeSet};

use ptfuzz_engine::{
    Concat, Counters, Domain, DomainConfig, ErrorKind, FlushEvent, FlushLog, FlushOps, FormatKind,
    Granule, MapError, Prot,
};

pub const K4: u64 = 1 << 12;
pub const K16: u64 = 1 << 14;
pub const K64: u64 = 1 << 16;
pub const M2: u64 = 1 << 21;
pub const M32: u64 = 1 << 25;
pub const M512: u64 = 1 << 29;
pub const G1: u64 = 1 << 30;

/// Every size someone might pass as a page size: the supported leaf sizes of all granules,
/// the L0/L1 block sizes that are never leaves without LPA/LPA2, and a few oddities.
pub const CANDIDATE_PGSIZES: [u64; 14] = [
    0,
    1,
    0x800,
    K4,
    0x2000,
    K16,
    K64,
    M2,
    M32,
    M512,
    G1,
    1 << 36, // 16K L1 (64G)
    1 << 39, // 4K L0 (512G)
    1 << 42, // 64K L1 (4T)
];

/// log2(granule), from the notation of SEMANTICS.md.
pub fn g_of(granule: Granule) -> u32 {
    match granule {
        Granule::G4K => 12,
        Granule::G16K => 14,
        Granule::G64K => 16,
    }
}

/// What the documents say a domain looks like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expect {
    pub format: FormatKind,
    pub granule: Granule,
    pub ias: u32,
    pub oas: u32,
    /// log2(granule).
    pub g: u32,
    pub start: u32,
    /// Entries of the root, all concatenated tables together.
    pub root_entries: u64,
    /// Stage-2 start-level policy the domain is created with.
    pub concat: Concat,
}

impl Expect {
    /// Index bits of a full table.
    pub fn s(&self) -> u32 {
        self.g - 3
    }
    pub fn granule_size(&self) -> u64 {
        1 << self.g
    }
    /// `shift(L) = g + s * (3 - L)`.
    pub fn shift(&self, level: u32) -> u32 {
        self.g + self.s() * (3 - level)
    }
    /// Bytes mapped by one entry at `level`.
    pub fn entry_span(&self, level: u32) -> u64 {
        1 << self.shift(level)
    }
    /// Bytes covered by a whole table at `level` (the span of the parent entry).
    pub fn table_span(&self, level: u32) -> u64 {
        if level == self.start {
            1 << self.ias
        } else {
            self.entry_span(level - 1)
        }
    }
    /// Entries of the table at `level`.
    pub fn entries(&self, level: u32) -> u64 {
        if level == self.start {
            self.root_entries
        } else {
            1 << self.s()
        }
    }
    /// Number of concatenated tables in the root (1 when not concatenated).
    pub fn root_tables(&self) -> u64 {
        (self.root_entries >> self.s()).max(1)
    }
    /// Index of `iova` in the table at `level` (ARM-FACTS §3 "Indexing across
    /// concatenated tables": one flat array at the start level).
    pub fn index(&self, iova: u64, level: u32) -> u64 {
        (iova >> self.shift(level)) & (self.entries(level) - 1)
    }
    /// Levels at which the granule allows a leaf (ARM-FACTS §1, SEMANTICS "Page sizes").
    pub fn block_allowed(&self, level: u32) -> bool {
        match self.granule {
            Granule::G4K => matches!(level, 1..=3),
            Granule::G16K | Granule::G64K => matches!(level, 2..=3),
        }
    }
    /// Leaf levels of this domain, deepest (smallest leaf) first.
    pub fn leaf_levels(&self) -> Vec<u32> {
        (self.start..=3)
            .rev()
            .filter(|&l| self.block_allowed(l))
            .collect()
    }
    /// Supported page sizes, ascending.
    pub fn page_sizes(&self) -> Vec<u64> {
        self.leaf_levels()
            .into_iter()
            .map(|l| self.entry_span(l))
            .collect()
    }
    pub fn level_of(&self, pgsize: u64) -> u32 {
        self.leaf_levels()
            .into_iter()
            .find(|&l| self.entry_span(l) == pgsize)
            .unwrap_or_else(|| panic!("{pgsize:#x} is not a page size of {self:?}"))
    }
    pub fn ia_size(&self) -> u64 {
        1 << self.ias
    }
    pub fn oa_size(&self) -> u64 {
        1 << self.oas
    }
    pub fn config(&self) -> DomainConfig {
        let mut cfg = DomainConfig::new(self.format, self.granule, self.ias, self.oas);
        cfg.concat = self.concat;
        cfg
    }
    pub fn is_arm64(&self) -> bool {
        matches!(self.format, FormatKind::Arm64S1 | FormatKind::Arm64S2)
    }
}

/// The documented geometry of a configuration with the default (Linux) stage-2 policy.
pub fn expected(format: FormatKind, granule: Granule, ias: u32, oas: u32) -> Option<Expect> {
    expected_with(format, granule, ias, oas, Concat::Required)
}

/// The documented geometry of a configuration, or `None` when the domain must be refused.
///
/// Stage 1: ARM-FACTS §2 table. Stage 2 `concat=max`: the "deepest legal start level" rule
/// of SEMANTICS applied to the option table of ARM-FACTS §3; the default: Linux's results
/// (ARM-FACTS §3 "When concatenation is mandatory") extended to IAS < OAS by the same
/// option table (worked out by hand, one arm per row).
pub fn expected_with(
    format: FormatKind,
    granule: Granule,
    ias: u32,
    oas: u32,
    concat: Concat,
) -> Option<Expect> {
    use FormatKind::*;
    use Granule::*;
    if concat == Concat::Max && !format.is_stage2() {
        return None;
    }
    let (start, root_entries): (u32, u64) = match format {
        // The short-descriptor format has its own suite (tests/v7s.rs).
        Armv7s => return None,
        Arm64S2 if concat == Concat::Required => {
            if !(32..=48).contains(&ias) || !(32..=48).contains(&oas) || ias > oas {
                return None;
            }
            match (granule, ias) {
                // 4K: as stage 1, except an L0 start without PA >= 44 (IAS 40..43, OAS
                // 40..43) becomes L1 with 2..16 tables.
                (G4K, 32..=39) => (1, 4 << (ias - 32)),
                (G4K, 40..=43) if oas < 44 => (1, 1024 << (ias - 40)),
                (G4K, 40..=48) => (0, 2 << (ias - 40)),
                // 16K: an L1 start needs PA >= 42 (IAS 37..40 with OAS < 42 -> L2, 2..16
                // tables; IAS 41, OAS 41 has no legal level); L0 is not encodable (IAS 48 ->
                // L1, 2 tables).
                (G16K, 32..=36) => (2, 128 << (ias - 32)),
                (G16K, 37..=40) if oas < 42 => (2, 4096 << (ias - 37)),
                (G16K, 41) if oas < 42 => return None,
                (G16K, 37..=47) => (1, 2 << (ias - 37)),
                (G16K, 48) => (1, 4096),
                // 64K: an L1 start needs PA >= 44 (IAS 43, OAS 43 -> L2, 2 tables).
                (G64K, 32..=42) => (2, 8 << (ias - 32)),
                (G64K, 43) if oas < 44 => (2, 16384),
                (G64K, 43..=48) => (1, 2 << (ias - 43)),
                _ => unreachable!(),
            }
        }
        Arm32LpaeS2 if concat == Concat::Required => {
            if granule != G4K || !(32..=40).contains(&ias) || !(32..=40).contains(&oas) || ias > oas
            {
                return None;
            }
            // As stage 1, except IAS 40: no L0 in the arm32 VTCR, so L1 with 2 tables.
            match ias {
                32..=39 => (1, 4 << (ias - 32)),
                40 => (1, 1024),
                _ => unreachable!(),
            }
        }
        Arm64S1 => {
            if !(32..=48).contains(&ias) || !(32..=48).contains(&oas) {
                return None;
            }
            match (granule, ias) {
                (G4K, 32..=39) => (1, 4 << (ias - 32)),
                (G4K, 40..=48) => (0, 2 << (ias - 40)),
                (G16K, 32..=36) => (2, 128 << (ias - 32)),
                (G16K, 37..=47) => (1, 2 << (ias - 37)),
                (G16K, 48) => (0, 2),
                (G64K, 32..=42) => (2, 8 << (ias - 32)),
                (G64K, 43..=48) => (1, 2 << (ias - 43)),
                _ => unreachable!(),
            }
        }
        Arm64S2 => {
            if !(32..=48).contains(&ias) || !(32..=48).contains(&oas) || ias > oas {
                return None;
            }
            let (start, entries) = match (granule, ias) {
                // 4K: 32..34 L2 4/8/16 tables; 35..39 L1 only; 40..43 L1 2..16 tables
                // (deeper than L0); 44..48 L0 only.
                (G4K, 32..=34) => (2, 2048 << (ias - 32)),
                (G4K, 35..=39) => (1, 32 << (ias - 35)),
                (G4K, 40..=43) => (1, 1024 << (ias - 40)),
                (G4K, 44..=48) => (0, 32 << (ias - 44)),
                // 16K: 32..36 L2; 37..40 L2 2..16 tables; 41..47 L1 only; 48 L1 2 tables.
                (G16K, 32..=36) => (2, 128 << (ias - 32)),
                (G16K, 37..=40) => (2, 4096 << (ias - 37)),
                (G16K, 41..=47) => (1, 32 << (ias - 41)),
                (G16K, 48) => (1, 4096),
                // 64K: 32..33 L3 8/16 tables; 34..42 L2; 43..46 L2 2..16 tables; 47..48 L1.
                (G64K, 32..=33) => (3, 65536 << (ias - 32)),
                (G64K, 34..=42) => (2, 32 << (ias - 34)),
                (G64K, 43..=46) => (2, 16384 << (ias - 43)),
                (G64K, 47..=48) => (1, 32 << (ias - 47)),
                _ => unreachable!(),
            };
            // Rule 3 (R_SRKBC), PS = OAS itself (not rounded up). The rows above have a single
            // option where the rule applies, so failing it means no legal start level; with
            // IAS <= OAS that happens only for 16K, IAS 41, OAS 41.
            let ps = oas;
            let pa_ok = match (granule, start) {
                (G4K, 0) => ps >= 44,
                (G16K, 1) => ps >= 42,
                (G64K, 1) => ps >= 44,
                _ => true,
            };
            if !pa_ok {
                return None;
            }
            (start, entries)
        }
        Arm32LpaeS1 => {
            if granule != G4K || ias != 32 || !(32..=40).contains(&oas) {
                return None;
            }
            (1, 4)
        }
        Arm32LpaeS2 => {
            if granule != G4K || !(32..=40).contains(&ias) || !(32..=40).contains(&oas) || ias > oas
            {
                return None;
            }
            match ias {
                32..=34 => (2, 2048 << (ias - 32)),
                35..=40 => (1, 32 << (ias - 35)),
                _ => unreachable!(),
            }
        }
    };
    Some(Expect {
        format,
        granule,
        ias,
        oas,
        g: g_of(granule),
        start,
        root_entries,
        concat,
    })
}

pub fn expect_of(cfg: &DomainConfig) -> Expect {
    expected_with(cfg.format, cfg.granule, cfg.ias, cfg.oas, cfg.concat)
        .unwrap_or_else(|| panic!("{cfg:?} is not a valid domain per the documents"))
}

/// The default geometry of a configuration and, where `concat=max` gives another one, that.
pub fn policies(f: FormatKind, g: Granule, ias: u32, oas: u32) -> Vec<Expect> {
    let mut v: Vec<Expect> = expected(f, g, ias, oas).into_iter().collect();
    if let Some(m) = expected_with(f, g, ias, oas, Concat::Max) {
        if v.iter().all(|e| e.start != m.start) {
            v.push(m);
        }
    }
    v
}

/// Every valid configuration (IAS/OAS over the documented ranges), both stage-2 policies.
pub fn all_valid() -> Vec<Expect> {
    let mut v = Vec::new();
    for f in FormatKind::ALL {
        for g in Granule::ALL {
            for ias in 32..=48 {
                for oas in 32..=48 {
                    for c in Concat::ALL {
                        if let Some(e) = expected_with(f, g, ias, oas, c) {
                            v.push(e);
                        }
                    }
                }
            }
        }
    }
    v
}

/// A handful of configurations per format and granule: the smallest and largest IAS, every
/// concatenated stage-2 root shape, and a few in between. OAS is the format's maximum, and
/// for stage 2 also equal to IAS.
pub fn sample() -> Vec<Expect> {
    let mut v: Vec<Expect> = Vec::new();
    for f in FormatKind::ALL {
        for g in Granule::ALL {
            let max_oas = match f {
                FormatKind::Arm64S1 | FormatKind::Arm64S2 => 48,
                _ => 40,
            };
            for ias in [32, 33, 34, 36, 37, 39, 40, 41, 43, 44, 46, 47, 48] {
                for oas in [max_oas, ias] {
                    for e in policies(f, g, ias, oas) {
                        if !v.contains(&e) {
                            v.push(e);
                        }
                    }
                }
            }
        }
    }
    v
}

/// Every format, granule and IAS, with OAS the format's maximum and, where different and
/// valid, OAS = IAS.
pub fn all_ias() -> Vec<Expect> {
    let mut v: Vec<Expect> = Vec::new();
    for f in FormatKind::ALL {
        let max_oas = match f {
            FormatKind::Arm64S1 | FormatKind::Arm64S2 => 48,
            _ => 40,
        };
        for g in Granule::ALL {
            for ias in 32..=48 {
                for oas in [max_oas, ias] {
                    for e in policies(f, g, ias, oas) {
                        if !v.contains(&e) {
                            v.push(e);
                        }
                    }
                }
            }
        }
    }
    v
}

pub fn config(format: FormatKind, granule: Granule, ias: u32, oas: u32) -> DomainConfig {
    DomainConfig::new(format, granule, ias, oas)
}

/// A domain that records its TLB maintenance.
pub fn domain(cfg: DomainConfig) -> Domain<FlushLog> {
    Domain::with_flush(cfg, FlushLog::default(), None)
        .unwrap_or_else(|e| panic!("{cfg:?} refused: {e}"))
}

pub fn domain_for(e: &Expect) -> Domain<FlushLog> {
    domain(e.config())
}

// ---------------------------------------------------------------------------------------
// An independent walker over the device view (ARM-FACTS §1 and §4 encodings).

/// Output / table address bits [47:12] (48-bit OA, no LPA).
pub const ADDR_47_12: u64 = ((1 << 48) - 1) & !0xfff;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Desc {
    Invalid,
    Table(u64),
    /// A block or page; output address of the first byte.
    Leaf(u64),
}

/// Decodes `desc` at `level` from the architecture, panicking on encodings the engine must
/// never write (block at a level without blocks, L3 `01`, table descriptors with attribute
/// bits, nonzero RES0 below a block's output address).
pub fn decode(e: &Expect, desc: u64, level: u32) -> Desc {
    match desc & 0b11 {
        0b00 | 0b10 => Desc::Invalid,
        0b01 => {
            assert!(
                level < 3,
                "L3 descriptor {desc:#x} with bits[1:0]=01 (reserved)"
            );
            assert!(
                e.block_allowed(level),
                "block {desc:#x} at L{level}, where {} granule has no blocks",
                e.granule
            );
            let oa_mask = ADDR_47_12 & !(e.entry_span(level) - 1);
            let res0 = ADDR_47_12 & (e.entry_span(level) - 1);
            assert_eq!(
                desc & res0,
                0,
                "block {desc:#x} at L{level}: RES0 bits below the OA set"
            );
            Desc::Leaf(desc & oa_mask)
        }
        _ => {
            if level == 3 {
                let oa_mask = ADDR_47_12 & !(e.granule_size() - 1);
                assert_eq!(
                    desc & ADDR_47_12 & (e.granule_size() - 1),
                    0,
                    "page {desc:#x}: RES0 bits below the OA set"
                );
                Desc::Leaf(desc & oa_mask)
            } else {
                let pa = desc & ADDR_47_12;
                assert_eq!(
                    desc & !ADDR_47_12,
                    0b11,
                    "table descriptor {desc:#x} at L{level} carries attribute bits"
                );
                assert_eq!(
                    pa % e.granule_size(),
                    0,
                    "table address {pa:#x} not granule aligned"
                );
                assert!(
                    pa >> e.oas == 0,
                    "table address {pa:#x} at or above 2^OAS (address size fault)"
                );
                Desc::Table(pa)
            }
        }
    }
}

/// Reads the device view of the word at `pa`.
pub fn dev_word<F: FlushOps>(d: &Domain<F>, pa: u64) -> u64 {
    d.mem()
        .read_device(pa)
        .unwrap_or_else(|| panic!("table word {pa:#x} is outside the simulated memory"))
}

/// One step of a walk.
#[derive(Clone, Copy, Debug)]
pub struct Step {
    pub level: u32,
    pub table: u64,
    pub index: u64,
    pub slot: u64,
    pub desc: u64,
}

/// Walks the device view for `iova`: the steps taken and the leaf found (level, descriptor).
pub fn walk<F: FlushOps>(d: &Domain<F>, e: &Expect, iova: u64) -> (Vec<Step>, Option<(u32, u64)>) {
    let mut steps = Vec::new();
    if iova >> e.ias != 0 {
        return (steps, None);
    }
    let mut table = d.root();
    for level in e.start..=3 {
        let index = e.index(iova, level);
        let slot = table + 8 * index;
        let desc = dev_word(d, slot);
        steps.push(Step {
            level,
            table,
            index,
            slot,
            desc,
        });
        match decode(e, desc, level) {
            Desc::Invalid => return (steps, None),
            Desc::Table(next) => table = next,
            Desc::Leaf(_) => return (steps, Some((level, desc))),
        }
    }
    unreachable!("walk fell off L3")
}

/// The translation of the byte at `iova`, by the independent walker.
pub fn translate<F: FlushOps>(d: &Domain<F>, e: &Expect, iova: u64) -> Option<u64> {
    let (_, leaf) = walk(d, e, iova);
    leaf.map(|(level, desc)| match decode(e, desc, level) {
        Desc::Leaf(oa) => oa | (iova & (e.entry_span(level) - 1)),
        _ => unreachable!(),
    })
}

/// A table reached from the root: its address, level and the first IOVA it covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct TableAt {
    pub pa: u64,
    pub level: u32,
    pub base: u64,
}

/// A leaf reached from the root.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct LeafAt {
    pub iova: u64,
    pub size: u64,
    pub oa: u64,
    pub desc: u64,
}

/// Every table (root included) and every leaf reachable in the device view.
pub fn scan<F: FlushOps>(d: &Domain<F>, e: &Expect) -> (Vec<TableAt>, Vec<LeafAt>) {
    fn rec<F: FlushOps>(
        d: &Domain<F>,
        e: &Expect,
        t: TableAt,
        tables: &mut Vec<TableAt>,
        leaves: &mut Vec<LeafAt>,
    ) {
        tables.push(t);
        let mem = d.mem();
        let n = e.entries(t.level);
        assert!(
            mem.contains(t.pa, 8 * n),
            "table {:#x} outside the simulated memory",
            t.pa
        );
        let first = ((t.pa - mem.base()) / 8) as usize;
        let words = &mem.device_view()[first..first + n as usize];
        // Skip empty stretches with a slice comparison (cheap even in debug builds).
        const ZERO: [u64; 64] = [0; 64];
        let mut next = 0u64;
        while next < n {
            let i = next;
            next += 1;
            if i.is_multiple_of(64) {
                let end = (i + 64).min(n);
                if words[i as usize..end as usize] == ZERO[..(end - i) as usize] {
                    next = end;
                    continue;
                }
            }
            let desc = words[i as usize];
            if desc == 0 {
                continue;
            }
            let iova = t.base + i * e.entry_span(t.level);
            match decode(e, desc, t.level) {
                Desc::Invalid => {}
                Desc::Table(pa) => {
                    assert!(t.level < 3);
                    rec(
                        d,
                        e,
                        TableAt {
                            pa,
                            level: t.level + 1,
                            base: iova,
                        },
                        tables,
                        leaves,
                    )
                }
                Desc::Leaf(oa) => leaves.push(LeafAt {
                    iova,
                    size: e.entry_span(t.level),
                    oa,
                    desc,
                }),
            }
        }
    }
    let mut tables = Vec::new();
    let mut leaves = Vec::new();
    let root = TableAt {
        pa: d.root(),
        level: e.start,
        base: 0,
    };
    rec(d, e, root, &mut tables, &mut leaves);
    (tables, leaves)
}

/// Structural checks every state must pass: the counter identity, no table reachable twice,
/// every reachable table live (with the right level), every live table reachable (no leak),
/// the deferred list and counters agreeing. Returns the reachable tables and leaves.
pub fn check_structure<F: FlushOps>(d: &Domain<F>, e: &Expect) -> (Vec<TableAt>, Vec<LeafAt>) {
    let c = d.counters();
    assert_eq!(
        c.allocated,
        c.live + c.deferred + c.freed,
        "allocated = live + deferred + freed does not hold: {c:?}"
    );
    let (tables, leaves) = scan(d, e);
    let reach: BTreeSet<u64> = tables.iter().map(|t| t.pa).collect();
    assert_eq!(
        reach.len(),
        tables.len(),
        "a table is reachable twice: {tables:x?}"
    );
    for t in &tables {
        let m = d
            .tables()
            .meta(t.pa)
            .unwrap_or_else(|| panic!("reachable table {:#x} has no metadata", t.pa));
        assert_eq!(
            m.state,
            ptfuzz_engine::FrameState::Live,
            "reachable table {t:x?} is {:?}",
            m.state
        );
        assert_eq!(m.level as u32, t.level, "table {t:x?}: metadata level");
    }
    let live: BTreeSet<u64> = d.tables().live_tables().map(|(pa, _)| pa).collect();
    assert_eq!(
        live, reach,
        "live tables differ from reachable ones (leak or use-after-free)"
    );
    assert_eq!(c.live, live.len() as u64, "counters.live vs live_tables()");
    assert_eq!(
        c.deferred,
        d.tables().deferred().count() as u64,
        "counters.deferred vs deferred()"
    );
    for pa in d.tables().deferred() {
        assert!(
            !reach.contains(&pa),
            "deferred table {pa:#x} still reachable"
        );
    }
    (tables, leaves)
}

/// For a non-coherent domain: the device view of every live table equals the CPU view.
pub fn check_device_synced<F: FlushOps>(d: &Domain<F>, what: &str) {
    let mem = d.mem();
    let cpu = mem.cpu_view();
    let fs = mem.frame_size();
    for (pa, m) in d.tables().live_tables() {
        let frames = (m.frames as u64).max(1);
        let first = ((pa - mem.base()) / 8) as usize;
        let n = (frames * fs / 8) as usize;
        let dev = &mem.device_view()[first..first + n];
        if dev == &cpu[first..first + n] {
            continue;
        }
        let w = (0..n).find(|&w| dev[w] != cpu[first + w]).unwrap();
        panic!(
            "{what}: live table {pa:#x} word at {:#x}: device sees {:#x}, CPU wrote {:#x}",
            pa + 8 * w as u64,
            dev[w],
            cpu[first + w]
        );
    }
}

// ---------------------------------------------------------------------------------------
// "Nothing changed".

#[derive(Clone, Debug)]
pub struct Snapshot {
    pub cpu: Vec<u64>,
    pub dev: Vec<u64>,
    pub counters: Counters,
    pub events: Vec<FlushEvent>,
    pub deferred: Vec<u64>,
}

pub fn snapshot(d: &Domain<FlushLog>) -> Snapshot {
    Snapshot {
        cpu: d.mem().cpu_view().to_vec(),
        // A coherent domain's device view is its CPU view: no need to copy it twice.
        dev: if d.mem().is_coherent() {
            Vec::new()
        } else {
            d.mem().device_view().to_vec()
        },
        counters: d.counters(),
        events: d.flush_ops().events.clone(),
        deferred: d.tables().deferred().collect(),
    }
}

/// Asserts that the domain's memory (both views), counters, deferred list and flush log
/// are exactly as in `before`.
pub fn assert_unchanged(d: &Domain<FlushLog>, before: &Snapshot, what: &str) {
    let now = snapshot(d);
    assert_eq!(now.counters, before.counters, "{what}: counters changed");
    assert_eq!(now.events, before.events, "{what}: flush requests issued");
    assert_eq!(
        now.deferred, before.deferred,
        "{what}: deferred list changed"
    );
    for (view, a, b) in [
        ("cpu", &before.cpu, &now.cpu),
        ("device", &before.dev, &now.dev),
    ] {
        assert_eq!(a.len(), b.len(), "{what}: memory grew ({view} view)");
        if a == b {
            continue;
        }
        if let Some(w) = (0..a.len()).find(|&w| a[w] != b[w]) {
            panic!(
                "{what}: {view} word {:#x} changed {:#x} -> {:#x}",
                d.mem().base() + 8 * w as u64,
                a[w],
                b[w]
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// Flush helpers.

/// Whether a Leaves event of exactly `size` pages covers `[iova, iova + size)`.
pub fn leaf_flushed(events: &[FlushEvent], iova: u64, size: u64) -> bool {
    events.iter().any(|ev| match *ev {
        FlushEvent::Leaves { start, end, pgsize } => {
            pgsize == size && start <= iova && end >= iova + (size - 1)
        }
        _ => false,
    })
}

/// Whether a walk invalidation (or a flush-all) covers `[iova, iova + size)`.
pub fn walk_flushed(events: &[FlushEvent], iova: u64, size: u64) -> bool {
    events.iter().any(|ev| match *ev {
        FlushEvent::Walk {
            iova: w, size: ws, ..
        } => w <= iova && w.checked_add(ws).is_none_or(|we| we >= iova + size),
        FlushEvent::All => true,
        _ => false,
    })
}

// ---------------------------------------------------------------------------------------
// A small reference model of SEMANTICS.md "map", "unmap" and table lifetime.

#[derive(Clone, Debug)]
pub struct Model {
    pub e: Expect,
    /// iova -> (size, pa)
    pub leaves: BTreeMap<u64, (u64, u64)>,
    /// Non-root tables: (level, base iova).
    pub tables: BTreeSet<(u32, u64)>,
    /// Armed allocation failure, counting down like `fail_nth_alloc`.
    pub fail_nth: Option<u64>,
}

/// What a model operation did besides its return value.
#[derive(Clone, Debug, Default)]
pub struct Effects {
    /// Leaves removed: (iova, size).
    pub removed: Vec<(u64, u64)>,
    /// Tables unlinked (to be freed): (level, base).
    pub freed: Vec<(u32, u64)>,
    /// Tables allocated: (level, base).
    pub allocated: Vec<(u32, u64)>,
}

impl Model {
    pub fn new(e: Expect) -> Model {
        Model {
            e,
            leaves: BTreeMap::new(),
            tables: BTreeSet::new(),
            fail_nth: None,
        }
    }

    /// Leaves overlapping `[lo, hi)` (leaves never overlap each other, so at most one of
    /// them starts below `lo`).
    pub fn overlapping(&self, lo: u64, hi: u64) -> Vec<(u64, u64, u64)> {
        let below = self
            .leaves
            .range(..lo)
            .next_back()
            .filter(|(&iova, &(size, _))| iova + size > lo);
        below
            .into_iter()
            .chain(self.leaves.range(lo..hi))
            .map(|(&iova, &(size, pa))| (iova, size, pa))
            .collect()
    }

    pub fn lookup(&self, iova: u64) -> Option<u64> {
        if iova >> self.e.ias != 0 {
            return None;
        }
        self.overlapping(iova, iova + 1)
            .first()
            .map(|&(va, _, pa)| pa + (iova - va))
    }

    fn take_tables_within(&mut self, lo: u64, hi: u64, min_level: u32, fx: &mut Effects) {
        let e = self.e;
        let doomed: Vec<(u32, u64)> = self
            .tables
            .iter()
            .copied()
            .filter(|&(l, base)| l >= min_level && base >= lo && base + e.table_span(l) <= hi)
            .collect();
        for t in doomed {
            self.tables.remove(&t);
            fx.freed.push(t);
        }
    }

    pub fn map(
        &mut self,
        iova: u64,
        pa: u64,
        pgsize: u64,
        count: u64,
        prot: Prot,
    ) -> (Result<u64, MapError>, Effects) {
        let mut fx = Effects::default();
        let e = self.e;
        if count == 0
            || !e.page_sizes().contains(&pgsize)
            || !iova.is_multiple_of(pgsize)
            || !pa.is_multiple_of(pgsize)
        {
            return (Err(MapError::new(ErrorKind::Inval, 0)), fx);
        }
        let size = match count.checked_mul(pgsize) {
            Some(s) => s,
            None => return (Err(MapError::new(ErrorKind::Range, 0)), fx),
        };
        let fits = |a: u64, bits: u32| a.checked_add(size).is_some_and(|end| end <= 1u64 << bits);
        if !fits(iova, e.ias) || !fits(pa, e.oas) {
            return (Err(MapError::new(ErrorKind::Range, 0)), fx);
        }
        if !prot.readable() && !prot.writable() {
            return (Ok(0), fx);
        }
        let level = e.level_of(pgsize);
        for k in 0..count {
            let va = iova + k * pgsize;
            let done = k * pgsize;
            if !self.overlapping(va, va + pgsize).is_empty() {
                return (Err(MapError::new(ErrorKind::Exists, done)), fx);
            }
            if level < 3 && self.tables.contains(&(level + 1, va)) {
                // An empty table at the slot: replaced (its subtree freed).
                self.take_tables_within(va, va + pgsize, level + 1, &mut fx);
            } else {
                for l in e.start + 1..=level {
                    let base = va & !(e.table_span(l) - 1);
                    if self.tables.contains(&(l, base)) {
                        continue;
                    }
                    if let Some(n) = self.fail_nth {
                        if n == 1 {
                            self.fail_nth = None;
                            return (Err(MapError::new(ErrorKind::Nomem, done)), fx);
                        }
                        self.fail_nth = Some(n - 1);
                    }
                    self.tables.insert((l, base));
                    fx.allocated.push((l, base));
                }
            }
            self.leaves.insert(va, (pgsize, pa + k * pgsize));
        }
        (Ok(size), fx)
    }

    pub fn unmap(
        &mut self,
        iova: u64,
        pgsize: u64,
        count: u64,
    ) -> (Result<u64, ErrorKind>, Effects) {
        let mut fx = Effects::default();
        let e = self.e;
        if count == 0 || !e.page_sizes().contains(&pgsize) || !iova.is_multiple_of(pgsize) {
            return (Err(ErrorKind::Inval), fx);
        }
        let in_range = count
            .checked_mul(pgsize)
            .and_then(|s| iova.checked_add(s))
            .is_some_and(|end| end <= e.ia_size());
        if !in_range {
            return (Err(ErrorKind::Range), fx);
        }
        let mut bytes = 0;
        for k in 0..count {
            let va = iova + k * pgsize;
            let ov = self.overlapping(va, va + pgsize);
            if ov.is_empty() || ov.iter().any(|&(_, size, _)| size > pgsize) {
                break;
            }
            for (leaf, size, _) in ov {
                self.leaves.remove(&leaf);
                fx.removed.push((leaf, size));
            }
            bytes += pgsize;
        }
        self.take_tables_within(iova, iova + bytes, 0, &mut fx);
        (Ok(bytes), fx)
    }

    /// The tables (level, base) the engine should have, root excluded.
    pub fn table_set(&self) -> BTreeSet<(u32, u64)> {
        self.tables.clone()
    }
}

/// Compares the engine's state to the model: reachable tables, reachable leaves, lookups.
pub fn check_against_model<F: FlushOps>(d: &Domain<F>, m: &Model, what: &str) {
    let e = &m.e;
    let (tables, leaves) = check_structure(d, e);
    let got_tables: BTreeSet<(u32, u64)> = tables
        .iter()
        .filter(|t| t.pa != d.root())
        .map(|t| (t.level, t.base))
        .collect();
    assert_eq!(
        got_tables,
        m.table_set(),
        "{what}: tables (level, base iova)"
    );
    let got_leaves: BTreeMap<u64, (u64, u64)> =
        leaves.iter().map(|l| (l.iova, (l.size, l.oa))).collect();
    assert_eq!(got_leaves, m.leaves, "{what}: leaves (iova -> size, pa)");
    // Every leaf was compared above through the device walk; the engine's own lookup is
    // checked on an even sample of them (first and last included) to keep this cheap.
    let step = (m.leaves.len() / 48).max(1);
    let last = m.leaves.len().saturating_sub(1);
    for (i, (&iova, &(size, pa))) in m.leaves.iter().enumerate() {
        if i % step != 0 && i != last {
            continue;
        }
        for off in [0, size / 2 + 0x18, size - 1] {
            assert_eq!(
                d.lookup(iova + off),
                Some(pa + off),
                "{what}: lookup {:#x}",
                iova + off
            );
        }
        if iova > 0 {
            assert_eq!(
                d.lookup(iova - 1),
                m.lookup(iova - 1),
                "{what}: lookup {:#x}",
                iova - 1
            );
        }
        assert_eq!(
            d.lookup(iova + size),
            m.lookup(iova + size),
            "{what}: lookup {:#x}",
            iova + size
        );
    }
}

// ---------------------------------------------------------------------------------------
// Deterministic randomness.

pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn pick<T: Copy>(&mut self, v: &[T]) -> T {
        v[self.below(v.len() as u64) as usize]
    }
}

/// An aligned output address for `count` pages of `pgsize` that fits in OAS, varied by `salt`.
pub fn pa_for(e: &Expect, pgsize: u64, count: u64, salt: u64) -> u64 {
    let pages = e.oa_size() / pgsize;
    assert!(
        pages > count,
        "{count} pages of {pgsize:#x} do not fit in OAS {}",
        e.oas
    );
    let slots = pages - count;
    (salt.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 7) % slots * pgsize
}

// ---------------------------------------------------------------------------------------
// A deterministic random driver: engine and model side by side.

#[derive(Clone, Copy, Debug)]
pub enum Op {
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
    GracePeriod,
    FailNth(u64),
}

/// One executed op: what the model says it did, the flush requests it made, the deferred
/// tables it added, and the tables reachable before it (level, base) -> pa.
#[derive(Clone, Debug)]
pub struct OpResult {
    pub index: usize,
    pub op: Op,
    pub fx: Effects,
    pub events: Vec<FlushEvent>,
    pub before: Counters,
    pub after: Counters,
    pub tables_before: BTreeMap<(u32, u64), u64>,
    pub new_deferred: Vec<u64>,
}

/// Interesting addresses of a domain: 0, the top, table boundaries at every level, the
/// boundaries between concatenated root tables.
pub fn focus_points(e: &Expect) -> Vec<u64> {
    let ia = e.ia_size();
    let mut v = vec![0, ia / 2, ia - 1];
    for l in e.start + 1..=3 {
        let t = e.table_span(l);
        v.push(t);
        if 5 * t < ia {
            v.push(5 * t);
        }
    }
    let n = e.root_tables();
    if n > 1 {
        v.push(ia / n);
        v.push((n - 1) * (ia / n));
    }
    v
}

fn random_count(rng: &mut Rng, e: &Expect, pg: u64) -> u64 {
    let smallest = e.page_sizes()[0];
    let max = if pg == smallest {
        match rng.below(10) {
            0..=4 => 4,
            5..=7 => 64,
            _ => (1 << e.s()) + 3,
        }
    } else if rng.below(10) == 0 {
        (1 << e.s()) + 3
    } else {
        4
    };
    let max = max.min(e.ia_size() / pg).min(e.oa_size() / pg - 1);
    1 + rng.below(max)
}

fn random_iova(rng: &mut Rng, e: &Expect, focus: &[u64], pg: u64, count: u64) -> u64 {
    let f = rng.pick(focus) & !(pg - 1);
    let reach = (count + 4) as i64;
    let off = rng.below(2 * reach as u64 + 1) as i64 - reach;
    let lim = (e.ia_size() - count * pg) as i128;
    let iova = (f as i128 + off as i128 * pg as i128).clamp(0, lim) as u64;
    iova & !(pg - 1)
}

pub fn random_op(rng: &mut Rng, e: &Expect, focus: &[u64]) -> Op {
    let sizes = e.page_sizes();
    match rng.below(100) {
        0..=47 => {
            let pgsize = rng.pick(&sizes);
            let count = random_count(rng, e, pgsize);
            let iova = random_iova(rng, e, focus, pgsize, count);
            let pa = pa_for(e, pgsize, count, rng.next());
            let prot = if rng.below(10) == 0 {
                Prot::from_bits_truncate(rng.next() as u8)
            } else {
                let rw = if rng.below(2) == 0 {
                    Prot::READ
                } else {
                    Prot::WRITE
                };
                Prot::from_bits_truncate(rng.next() as u8) | rw
            };
            Op::Map {
                iova,
                pa,
                pgsize,
                count,
                prot,
            }
        }
        48..=85 => {
            let pgsize = rng.pick(&sizes);
            let count = random_count(rng, e, pgsize);
            let iova = random_iova(rng, e, focus, pgsize, count);
            Op::Unmap {
                iova,
                pgsize,
                count,
            }
        }
        86..=93 => Op::GracePeriod,
        _ => Op::FailNth(1 + rng.below(4)),
    }
}

/// Runs `ops` random ops on a fresh domain and its model, checking that every return value
/// agrees, and calls `after` after each op.
pub fn drive(
    e: &Expect,
    coherent: bool,
    seed: u64,
    ops: usize,
    mut after: impl FnMut(&Domain<FlushLog>, &Model, &OpResult),
) {
    let mut cfg = e.config();
    cfg.coherent = coherent;
    let mut d = domain(cfg);
    let mut m = Model::new(*e);
    let mut rng = Rng(seed);
    let focus = focus_points(e);
    for index in 0..ops {
        let op = random_op(&mut rng, e, &focus);
        let what = format!("{e:?} coherent={coherent} seed {seed} op {index}: {op:?}");
        let tables_before: BTreeMap<(u32, u64), u64> = scan(&d, e)
            .0
            .into_iter()
            .map(|t| ((t.level, t.base), t.pa))
            .collect();
        let deferred_before: BTreeSet<u64> = d.tables().deferred().collect();
        let before = d.counters();
        d.flush_ops_mut().events.clear();
        let fx = match op {
            Op::Map {
                iova,
                pa,
                pgsize,
                count,
                prot,
            } => {
                let (want, fx) = m.map(iova, pa, pgsize, count, prot);
                assert_eq!(d.map(iova, pa, pgsize, count, prot), want, "{what}");
                fx
            }
            Op::Unmap {
                iova,
                pgsize,
                count,
            } => {
                let (want, fx) = m.unmap(iova, pgsize, count);
                assert_eq!(d.unmap(iova, pgsize, count), want, "{what}");
                fx
            }
            Op::GracePeriod => {
                d.grace_period();
                Effects::default()
            }
            Op::FailNth(n) => {
                d.fail_nth_alloc(Some(n));
                m.fail_nth = Some(n);
                Effects::default()
            }
        };
        let new_deferred = d
            .tables()
            .deferred()
            .filter(|pa| !deferred_before.contains(pa))
            .collect();
        let r = OpResult {
            index,
            op,
            fx,
            events: d.flush_ops().events.clone(),
            before,
            after: d.counters(),
            tables_before,
            new_deferred,
        };
        after(&d, &m, &r);
    }
}

/// A few configurations per format and granule for the random driver: the largest IAS and
/// the largest concatenated stage-2 root.
pub fn drive_configs(format: FormatKind) -> Vec<Expect> {
    let mut v = Vec::new();
    for (f, g, ias, oas) in [
        (FormatKind::Arm64S1, Granule::G4K, 48, 48),
        (FormatKind::Arm64S1, Granule::G4K, 32, 32),
        (FormatKind::Arm64S1, Granule::G16K, 48, 48),
        (FormatKind::Arm64S1, Granule::G16K, 36, 40),
        (FormatKind::Arm64S1, Granule::G64K, 48, 48),
        (FormatKind::Arm64S1, Granule::G64K, 42, 42),
        (FormatKind::Arm64S2, Granule::G4K, 48, 48),
        (FormatKind::Arm64S2, Granule::G4K, 34, 40),
        (FormatKind::Arm64S2, Granule::G4K, 40, 40),
        (FormatKind::Arm64S2, Granule::G16K, 48, 48),
        (FormatKind::Arm64S2, Granule::G16K, 40, 40),
        (FormatKind::Arm64S2, Granule::G64K, 33, 36),
        (FormatKind::Arm64S2, Granule::G64K, 46, 48),
        (FormatKind::Arm32LpaeS1, Granule::G4K, 32, 40),
        (FormatKind::Arm32LpaeS2, Granule::G4K, 34, 40),
        (FormatKind::Arm32LpaeS2, Granule::G4K, 40, 40),
    ] {
        if f == format {
            v.push(expected(f, g, ias, oas).unwrap());
        }
    }
    // And the configurations of the shared list this file's model describes (its own walker
    // and model are LPAE, one table per frame; coherency is each test's choice) whose shape
    // (granule, start level, concatenated root or not, policy) the list above lacks: these
    // walks check every table after every op, so shapes, not sizes, buy coverage.
    let shape = |e: &Expect| (e.granule, e.start, e.root_tables() > 1, e.concat);
    for n in formats::configs(format) {
        let c = n.cfg;
        if c.host_page.is_some() || !c.coherent {
            continue;
        }
        let e = expected_with(c.format, c.granule, c.ias, c.oas, c.concat)
            .unwrap_or_else(|| panic!("{}: not a documented domain", n.name));
        if !v.iter().any(|o| shape(o) == shape(&e)) {
            v.push(e);
        }
    }
    v
}
