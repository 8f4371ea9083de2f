//! Domain validity, start level and supported page sizes, written from docs/SEMANTICS.md
//! ("Domains") as lookup tables rather than as a page-table geometry.

use ptfuzz_engine::config::{Concat, DomainConfig, FormatKind, Granule};
use ptfuzz_engine::error::ErrorKind;

/// What one format accepts (SEMANTICS.md table "Domains").
struct FormatRow {
    format: FormatKind,
    granules: &'static [Granule],
    ias: (u32, u32),
    oas: (u32, u32),
}

const ALL_GRANULES: &[Granule] = &[Granule::G4K, Granule::G16K, Granule::G64K];

const FORMATS: [FormatRow; 4] = [
    FormatRow {
        format: FormatKind::Arm64S1,
        granules: ALL_GRANULES,
        ias: (32, 48),
        oas: (32, 48),
    },
    FormatRow {
        format: FormatKind::Arm64S2,
        granules: ALL_GRANULES,
        ias: (32, 48),
        oas: (32, 48),
    },
    FormatRow {
        format: FormatKind::Arm32LpaeS1,
        granules: &[Granule::G4K],
        ias: (32, 32),
        oas: (32, 40),
    },
    FormatRow {
        format: FormatKind::Arm32LpaeS2,
        granules: &[Granule::G4K],
        ias: (32, 40),
        oas: (32, 40),
    },
];

/// Start levels a stage-2 SL0 field can encode, per format and granule, ascending.
fn sl0_levels(format: FormatKind, granule: Granule) -> &'static [u32] {
    match (format, granule) {
        (FormatKind::Arm32LpaeS2, _) => &[1, 2],
        (_, Granule::G4K) => &[0, 1, 2],
        _ => &[1, 2, 3],
    }
}

/// Minimum PA size a stage-2 start level needs (R_SRKBC), if it has one.
fn min_pa_bits(granule: Granule, level: u32) -> Option<u32> {
    match (granule, level) {
        (Granule::G4K, 0) => Some(44),
        (Granule::G16K, 1) => Some(42),
        (Granule::G64K, 1) => Some(44),
        _ => None,
    }
}

/// Levels at which the granule allows a leaf (block or page).
fn leaf_levels(granule: Granule) -> &'static [u32] {
    match granule {
        Granule::G4K => &[1, 2, 3],
        Granule::G16K | Granule::G64K => &[2, 3],
    }
}

/// The facts about a valid domain that the model needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DomainRules {
    pub granule: Granule,
    pub ias: u32,
    pub oas: u32,
    pub start_level: u32,
    /// The deepest level: 3 (LPAE), 2 (armv7s).
    pub last_level: u32,
    /// Armv7 short descriptor (SEMANTICS.md "Armv7 short descriptor"): levels 1 (4096
    /// entries of 4 bytes, 1M each) and 2 (256 entries, 4K each); 64K and 16M leaves.
    pub short: bool,
}

/// armv7s: the span of one entry at level 1 and 2, and its leaf sizes.
const SHORT_SHIFTS: [u32; 2] = [20, 12];
const SHORT_SIZES: [u64; 4] = [1 << 12, 1 << 16, 1 << 20, 1 << 24];

impl DomainRules {
    /// Validates `cfg`; every refusal is `Inval`.
    pub fn new(cfg: &DomainConfig) -> Result<Self, ErrorKind> {
        if cfg.format == FormatKind::Armv7s {
            let ok = cfg.granule == Granule::G4K
                && cfg.ias == 32
                && cfg.oas == 32
                && cfg.concat == Concat::Required
                && cfg.phys_base.is_multiple_of(16 * 4096)
                // The 16 KiB first level must end below 2^32.
                && cfg.phys_base.checked_add(16 << 10).is_some_and(|e| e <= 1 << 32);
            return if ok {
                Ok(DomainRules {
                    granule: Granule::G4K,
                    ias: 32,
                    oas: 32,
                    start_level: 1,
                    last_level: 2,
                    short: true,
                })
            } else {
                Err(ErrorKind::Inval)
            };
        }
        let row = FORMATS
            .iter()
            .find(|r| r.format == cfg.format)
            .ok_or(ErrorKind::Inval)?;
        let within = |v: u32, (lo, hi): (u32, u32)| (lo..=hi).contains(&v);
        if !row.granules.contains(&cfg.granule)
            || !within(cfg.ias, row.ias)
            || !within(cfg.oas, row.oas)
        {
            return Err(ErrorKind::Inval);
        }
        // Table frames are placed from phys_base; a concatenated root (up to 16 frames) must be
        // aligned to its size, so phys_base must be too.
        if !cfg.phys_base.is_multiple_of(16 * cfg.granule.size()) {
            return Err(ErrorKind::Inval);
        }
        let start_level = if cfg.format.is_stage2() {
            if cfg.ias > cfg.oas {
                return Err(ErrorKind::Inval);
            }
            stage2_start(cfg).ok_or(ErrorKind::Inval)?
        } else {
            // The concatenation policy only means something at stage 2.
            if cfg.concat == Concat::Max {
                return Err(ErrorKind::Inval);
            }
            stage1_start(cfg.granule, cfg.ias).ok_or(ErrorKind::Inval)?
        };
        let rules = DomainRules {
            granule: cfg.granule,
            ias: cfg.ias,
            oas: cfg.oas,
            start_level,
            last_level: 3,
            short: false,
        };
        // Tables are carved from host pages at least a granule large.
        let page = cfg.host_page().size();
        if page < cfg.granule.size() {
            return Err(ErrorKind::Inval);
        }
        // The root sits at phys_base and must be reachable: it, and the host page(s) it
        // takes, have to end below 2^OAS.
        let root_bytes = rules.root_tables() * cfg.granule.size();
        if cfg
            .phys_base
            .checked_add(root_bytes.max(page))
            .is_none_or(|end| end > 1u64 << cfg.oas)
        {
            return Err(ErrorKind::Inval);
        }
        Ok(rules)
    }

    /// Bits resolved per level below the root.
    fn stride(&self) -> u32 {
        self.granule.shift() - 3
    }

    /// log2 of the span one entry at `level` maps.
    pub fn level_shift(&self, level: u32) -> u32 {
        if self.short {
            SHORT_SHIFTS[level as usize - 1]
        } else {
            shift(self.granule, level)
        }
    }

    /// Entries in the root (more than 2^s means concatenated tables).
    pub fn root_entries(&self) -> u64 {
        1 << (self.ias - self.level_shift(self.start_level))
    }

    /// Number of concatenated root tables (1 for a root of at most one table).
    pub fn root_tables(&self) -> u64 {
        if self.short {
            // 4096 entries of 4 bytes: four 4K frames.
            return 4;
        }
        (self.root_entries() >> self.stride()).max(1)
    }

    /// Bytes of a table below the root: one granule (LPAE), 256 entries of 4 bytes
    /// (armv7s level 2, SEMANTICS.md "Armv7 short descriptor").
    pub fn table_bytes(&self) -> u64 {
        if self.short {
            return 1 << 10;
        }
        self.granule.size()
    }

    /// Bytes of the root: 16 KiB for armv7s, else its concatenated granules.
    pub fn root_bytes(&self) -> u64 {
        self.root_tables() * self.granule.size()
    }

    /// Leaf sizes at or below the start level, ascending.
    pub fn page_sizes(&self) -> Vec<u64> {
        if self.short {
            return SHORT_SIZES.to_vec();
        }
        let mut v: Vec<u64> = leaf_levels(self.granule)
            .iter()
            .filter(|&&l| l >= self.start_level)
            .map(|&l| 1u64 << self.level_shift(l))
            .collect();
        v.sort_unstable();
        v
    }
}

/// `shift(L) = g + s * (3 - L)`.
fn shift(granule: Granule, level: u32) -> u32 {
    let g = granule.shift();
    g + (g - 3) * (3 - level)
}

/// Stage 1: `levels = ceil((IAS - g) / s)`, `start = 4 - levels`.
fn stage1_start(granule: Granule, ias: u32) -> Option<u32> {
    let g = granule.shift();
    let s = g - 3;
    let levels = ias.checked_sub(g)?.div_ceil(s);
    4u32.checked_sub(levels).filter(|_| levels >= 1)
}

/// Stage 2: among the start levels the SL0 encoding has, that resolve 1..=s+4 bits and that
/// the PA size allows, the shallowest (Linux io-pgtable-arm: concatenate only where the
/// architecture requires it) or, with `concat=max`, the deepest.
fn stage2_start(cfg: &DomainConfig) -> Option<u32> {
    let s = cfg.granule.shift() - 3;
    let mut legal = sl0_levels(cfg.format, cfg.granule)
        .iter()
        .copied()
        .filter(|&l| {
            let bits = cfg.ias as i64 - shift(cfg.granule, l) as i64;
            // PA-size rule compared with the OAS itself (not rounded up to an encodable PS):
            // rounding up would make the rule never fire, and SEMANTICS.md's own example
            // (16K, IAS 41, OAS 41 refused) needs it to.
            let pa_ok = min_pa_bits(cfg.granule, l).is_none_or(|m| cfg.oas >= m);
            (1..=(s as i64 + 4)).contains(&bits) && pa_ok
        });
    // The lists are ascending: shallowest first.
    match cfg.concat {
        Concat::Required => legal.next(),
        Concat::Max => legal.next_back(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use FormatKind::*;
    use Granule::*;

    fn rules(f: FormatKind, g: Granule, ias: u32, oas: u32) -> Result<DomainRules, ErrorKind> {
        DomainRules::new(&DomainConfig::new(f, g, ias, oas))
    }

    fn rules_max(f: FormatKind, g: Granule, ias: u32, oas: u32) -> Result<DomainRules, ErrorKind> {
        let mut cfg = DomainConfig::new(f, g, ias, oas);
        cfg.concat = Concat::Max;
        DomainRules::new(&cfg)
    }

    const K4: u64 = 1 << 12;
    const K16: u64 = 1 << 14;
    const K64: u64 = 1 << 16;
    const M2: u64 = 1 << 21;
    const M32: u64 = 1 << 25;
    const M512: u64 = 1 << 29;
    const G1: u64 = 1 << 30;

    #[test]
    fn stage2_examples_from_semantics() {
        // (granule, ias, oas, start, root entries, root tables), the default (Linux) policy
        let cases = [
            (G4K, 32, 48, 1, 4, 1),
            (G4K, 40, 48, 0, 2, 1),
            (G4K, 40, 40, 1, 1024, 2),
            (G4K, 42, 42, 1, 4096, 8),
            (G4K, 48, 48, 0, 512, 1),
            (G16K, 40, 40, 2, 32768, 16),
            (G16K, 40, 42, 1, 16, 1),
            (G16K, 48, 48, 1, 4096, 2),
            (G64K, 32, 48, 2, 8, 1),
            (G64K, 48, 48, 1, 64, 1),
        ];
        for (g, ias, oas, start, entries, tables) in cases {
            let r = rules(Arm64S2, g, ias, oas).unwrap();
            assert_eq!(
                (r.start_level, r.root_entries(), r.root_tables()),
                (start, entries, tables),
                "{g} ias {ias} oas {oas}"
            );
        }
        // concat=max: the deepest legal level
        let cases = [
            (G4K, 32, 2, 2048, 4),
            (G4K, 40, 1, 1024, 2),
            (G4K, 48, 0, 512, 1),
            (G16K, 48, 1, 4096, 2),
            (G64K, 32, 3, 65536, 8),
            (G64K, 48, 1, 64, 1),
        ];
        for (g, ias, start, entries, tables) in cases {
            let r = rules_max(Arm64S2, g, ias, 48).unwrap();
            assert_eq!(
                (r.start_level, r.root_entries(), r.root_tables()),
                (start, entries, tables),
                "max {g} ias {ias}"
            );
        }
    }

    /// Linux's results for IAS = OAS (ARM-FACTS.md §3, "Linux result for the legal IAS=OAS
    /// values"): (granule, ias, start, root entries).
    #[test]
    fn stage2_default_matches_linux() {
        let cases = [
            (G4K, 32, 1, 4),
            (G4K, 36, 1, 64),
            (G4K, 40, 1, 1024),
            (G4K, 42, 1, 4096),
            (G4K, 44, 0, 32),
            (G4K, 48, 0, 512),
            (G16K, 32, 2, 128),
            (G16K, 36, 2, 2048),
            (G16K, 40, 2, 32768),
            (G16K, 42, 1, 64),
            (G16K, 44, 1, 256),
            (G16K, 48, 1, 4096),
            (G64K, 32, 2, 8),
            (G64K, 36, 2, 128),
            (G64K, 40, 2, 2048),
            (G64K, 42, 2, 8192),
            (G64K, 44, 1, 4),
            (G64K, 48, 1, 64),
        ];
        for (g, ias, start, entries) in cases {
            let r = rules(Arm64S2, g, ias, ias).unwrap();
            assert_eq!(
                (r.start_level, r.root_entries()),
                (start, entries),
                "{g} {ias}"
            );
        }
    }

    /// Both policies accept the same domains; they differ only where two levels are legal.
    #[test]
    fn concat_policies_accept_the_same_domains() {
        let mut differ = 0;
        for f in [Arm64S2, Arm32LpaeS2] {
            for g in Granule::ALL {
                for ias in 30..=50 {
                    for oas in 30..=50 {
                        let (a, b) = (rules(f, g, ias, oas), rules_max(f, g, ias, oas));
                        assert_eq!(a.is_ok(), b.is_ok(), "{f} {g} {ias} {oas}");
                        if let (Ok(a), Ok(b)) = (a, b) {
                            assert!(
                                b.start_level == a.start_level
                                    || b.start_level == a.start_level + 1
                            );
                            differ += usize::from(a.start_level != b.start_level);
                        }
                    }
                }
            }
        }
        assert!(differ > 0);
        // Stage 1 has no concatenation to choose.
        assert_eq!(rules_max(Arm64S1, G4K, 48, 48), Err(ErrorKind::Inval));
    }

    #[test]
    fn stage1_start_levels() {
        // (granule, ias, start, root entries)
        let cases = [
            (G4K, 48, 0, 512),
            (G4K, 39, 1, 512),
            (G4K, 40, 0, 2),
            (G4K, 32, 1, 4),
            (G16K, 48, 0, 2),
            (G16K, 47, 1, 2048),
            (G16K, 32, 2, 128),
            (G64K, 48, 1, 64),
            (G64K, 42, 2, 8192),
            (G64K, 32, 2, 8),
        ];
        for (g, ias, start, entries) in cases {
            let r = rules(Arm64S1, g, ias, 48).unwrap();
            assert_eq!(
                (r.start_level, r.root_entries()),
                (start, entries),
                "{g} ias {ias}"
            );
        }
        let r = rules(Arm32LpaeS1, G4K, 32, 40).unwrap();
        assert_eq!((r.start_level, r.root_entries()), (1, 4));
    }

    #[test]
    fn page_sizes_follow_start_level() {
        assert_eq!(
            rules(Arm64S1, G4K, 48, 48).unwrap().page_sizes(),
            [K4, M2, G1]
        );
        assert_eq!(
            rules(Arm64S1, G4K, 32, 32).unwrap().page_sizes(),
            [K4, M2, G1]
        );
        assert_eq!(
            rules(Arm64S1, G16K, 48, 48).unwrap().page_sizes(),
            [K16, M32]
        );
        assert_eq!(
            rules(Arm64S1, G64K, 32, 48).unwrap().page_sizes(),
            [K64, M512]
        );
        // Stage 2 4K IAS 32 starts at L1 as Linux does: 1G leaves (as stage 1).
        assert_eq!(
            rules(Arm64S2, G4K, 32, 32).unwrap().page_sizes(),
            [K4, M2, G1]
        );
        assert_eq!(
            rules(Arm64S2, G64K, 32, 32).unwrap().page_sizes(),
            [K64, M512]
        );
        // concat=max: 4K IAS 34 starts at L2: no 1G; IAS 35 starts at L1: 1G.
        assert_eq!(
            rules_max(Arm64S2, G4K, 34, 48).unwrap().page_sizes(),
            [K4, M2]
        );
        assert_eq!(
            rules_max(Arm64S2, G4K, 35, 48).unwrap().page_sizes(),
            [K4, M2, G1]
        );
        // concat=max: 64K IAS 32/33 start at L3: only 64K; IAS 34 at L2.
        assert_eq!(
            rules_max(Arm64S2, G64K, 32, 48).unwrap().page_sizes(),
            [K64]
        );
        assert_eq!(
            rules_max(Arm64S2, G64K, 33, 48).unwrap().page_sizes(),
            [K64]
        );
        assert_eq!(
            rules_max(Arm64S2, G64K, 34, 48).unwrap().page_sizes(),
            [K64, M512]
        );
        assert_eq!(
            rules(Arm64S2, G16K, 32, 48).unwrap().page_sizes(),
            [K16, M32]
        );
        // arm32 LPAE stage 2 has no L0 start: IAS 40 starts at L1 (2 tables); with
        // concat=max IAS 32..=34 start at L2, IAS 35..=40 at L1.
        assert_eq!(rules(Arm32LpaeS2, G4K, 32, 40).unwrap().start_level, 1);
        assert_eq!(rules(Arm32LpaeS2, G4K, 40, 40).unwrap().start_level, 1);
        assert_eq!(rules_max(Arm32LpaeS2, G4K, 34, 40).unwrap().start_level, 2);
        assert_eq!(rules_max(Arm32LpaeS2, G4K, 35, 40).unwrap().start_level, 1);
        assert_eq!(
            rules(Arm32LpaeS2, G4K, 40, 40).unwrap().page_sizes(),
            [K4, M2, G1]
        );
    }

    #[test]
    fn refused_domains() {
        let bad = [
            (Arm64S2, G16K, 41, 41), // L2 needs 16 bits > 15, L1 needs PA >= 42
            (Arm32LpaeS1, G4K, 33, 40),
            (Arm32LpaeS1, G4K, 32, 41),
            (Arm32LpaeS1, G16K, 32, 40),
            (Arm32LpaeS2, G64K, 32, 40),
            (Arm32LpaeS2, G4K, 41, 41),
            (Arm32LpaeS2, G4K, 36, 35), // IAS > OAS
            (Arm64S2, G4K, 40, 36),     // IAS > OAS
            (Arm64S2, G64K, 48, 44),    // IAS > OAS
            (Arm64S1, G4K, 31, 48),
            (Arm64S1, G4K, 49, 48),
            (Arm64S1, G4K, 48, 31),
            (Arm64S1, G4K, 48, 49),
            (Arm64S2, G4K, 32, 49),
            (Arm64S1, G4K, 0, 0),
            (Arm64S1, G4K, u32::MAX, u32::MAX),
        ];
        for (f, g, ias, oas) in bad {
            assert_eq!(
                rules(f, g, ias, oas),
                Err(ErrorKind::Inval),
                "{f} {g} {ias} {oas}"
            );
        }
        // The PA rule only decides at the boundary: 16K IAS 41 works with OAS 42.
        assert_eq!(rules(Arm64S2, G16K, 41, 42).unwrap().start_level, 1);
        // Stage 1 has no IAS <= OAS rule.
        assert!(rules(Arm64S1, G4K, 48, 32).is_ok());
    }

    #[test]
    fn phys_base_alignment() {
        let mut cfg = DomainConfig::new(Arm64S1, G64K, 48, 48);
        cfg.phys_base = 16 * K64;
        assert!(DomainRules::new(&cfg).is_ok());
        cfg.phys_base = 8 * K64;
        assert_eq!(DomainRules::new(&cfg), Err(ErrorKind::Inval));
        cfg.granule = G4K;
        assert!(DomainRules::new(&cfg).is_ok());
        cfg.coherent = false;
        cfg.phys_base = 0;
        assert!(DomainRules::new(&cfg).is_ok());
    }

    /// Every accepted stage-2 domain's root fits in 16 tables and resolves at least one bit.
    #[test]
    fn stage2_roots_are_bounded() {
        for f in [Arm64S2, Arm32LpaeS2] {
            for g in Granule::ALL {
                for ias in 0..=64 {
                    for oas in 0..=64 {
                        for r in [rules(f, g, ias, oas), rules_max(f, g, ias, oas)] {
                            let Ok(r) = r else { continue };
                            assert!(
                                r.root_entries() >= 2 && r.root_tables() <= 16,
                                "{f} {g} {ias} {oas}"
                            );
                        }
                    }
                }
            }
        }
    }
}
