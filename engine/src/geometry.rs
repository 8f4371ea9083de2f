//! Level layout derived from a domain's configuration: start level, root size, concatenation,
//! leaf sizes. Everything the walker needs as plain numbers, computed once per domain.

use crate::config::{Concat, DomainConfig, FormatKind, Granule};

/// Arm lookup levels are 0..=3; the last level is always 3.
pub const LAST_LEVEL: u32 = 3;

/// The per-domain level layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    pub granule: Granule,
    /// log2(granule).
    pub g: u32,
    /// Index bits per full table (g - 3).
    pub s: u32,
    pub ias: u32,
    pub oas: u32,
    pub start_level: u32,
    /// log2 of the number of entries in the root (concatenated roots included).
    pub root_bits: u32,
    /// Bit mask of levels (bit L) at which a leaf is allowed in this domain.
    pub leaf_levels: u8,
    /// Per level: log2 of one entry's span.
    shifts: [u32; 4],
    /// Per level: index mask (entries - 1).
    masks: [u64; 4],
    /// Per log2(size): the level whose leaves have that size, or `NO_LEVEL`.
    level_by_log2: [u8; 64],
}

const NO_LEVEL: u8 = u8::MAX;

/// Why a configuration cannot be a domain.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid domain configuration: {0}")]
pub struct ConfigError(pub String);

impl ConfigError {
    pub fn kind(&self) -> crate::ErrorKind {
        crate::ErrorKind::Inval
    }
}

fn bad<T>(msg: String) -> Result<T, ConfigError> {
    Err(ConfigError(msg))
}

/// Stage-2 start level. Only `va_start` (whose root resolves 1..=s bits) and `va_start + 1`
/// (s+1..=2s bits, i.e. 2..2^s concatenated tables) can resolve the 1..=s+4 bits the
/// architecture allows at the start level (AArch64.S2InconsistentSL); of those, a level must
/// also be encodable in SL0 and meet the PA-size rule (R_SRKBC). `Required` prefers
/// `va_start` (Linux io-pgtable-arm), `Max` prefers the deeper one.
fn stage2_start(cfg: &DomainConfig, g: u32, va_start: u32) -> Result<u32, ConfigError> {
    let s = g - 3;
    let shift = |l: u32| g + s * (3 - l);
    let encodable: &[u32] = match (cfg.format, cfg.granule) {
        (FormatKind::Arm32LpaeS2, _) => &[1, 2],
        (_, Granule::G4K) => &[0, 1, 2],
        _ => &[1, 2, 3],
    };
    let pa_ok = |l: u32| match (cfg.granule, l) {
        (Granule::G4K, 0) => cfg.oas >= 44,
        (Granule::G16K, 1) => cfg.oas >= 42,
        (Granule::G64K, 1) => cfg.oas >= 44,
        _ => true,
    };
    let legal = |l: u32| {
        l <= LAST_LEVEL
            && encodable.contains(&l)
            && cfg.ias > shift(l)
            && cfg.ias - shift(l) <= s + 4
            && pa_ok(l)
    };
    let order = match cfg.concat {
        Concat::Required => [va_start, va_start + 1],
        Concat::Max => [va_start + 1, va_start],
    };
    order.into_iter().find(|&l| legal(l)).ok_or_else(|| {
        ConfigError(format!(
            "no legal stage-2 start level for {} granule, IAS {}, OAS {}",
            cfg.granule, cfg.ias, cfg.oas
        ))
    })
}

impl Geometry {
    pub fn new(cfg: &DomainConfig) -> Result<Geometry, ConfigError> {
        let fmt = cfg.format;
        let (ias_range, oas_range, granules): (_, _, &[Granule]) = match fmt {
            FormatKind::Arm64S1 | FormatKind::Arm64S2 => (32..=48, 32..=48, &Granule::ALL),
            FormatKind::Arm32LpaeS1 => (32..=32, 32..=40, &[Granule::G4K]),
            FormatKind::Arm32LpaeS2 => (32..=40, 32..=40, &[Granule::G4K]),
        };
        if !granules.contains(&cfg.granule) {
            return bad(format!("{fmt} has no {} granule", cfg.granule));
        }
        if !ias_range.contains(&cfg.ias) {
            return bad(format!("{fmt} takes IAS {ias_range:?}, not {}", cfg.ias));
        }
        if !oas_range.contains(&cfg.oas) {
            return bad(format!("{fmt} takes OAS {oas_range:?}, not {}", cfg.oas));
        }
        if fmt.is_stage2() && cfg.ias > cfg.oas {
            return bad(format!("stage 2 IAS {} exceeds OAS {}", cfg.ias, cfg.oas));
        }
        if !cfg.phys_base.is_multiple_of(16 * cfg.granule.size()) {
            return bad(format!(
                "phys_base {:#x} is not aligned to 16 granules",
                cfg.phys_base
            ));
        }
        let g = cfg.granule.shift();
        let s = g - 3;
        let shift = |l: u32| g + s * (3 - l);
        // Stage 1 (and Linux's first choice at stage 2): the fewest levels that resolve IAS.
        let va_start = 4 - (cfg.ias - g).div_ceil(s);
        let start_level = if fmt.is_stage2() {
            stage2_start(cfg, g, va_start)?
        } else if cfg.concat != Concat::Required {
            return bad(format!("concat={} applies to stage 2 only", cfg.concat));
        } else {
            va_start
        };
        let block_levels: u8 = match cfg.granule {
            Granule::G4K => 0b1110,
            Granule::G16K | Granule::G64K => 0b1100,
        };
        let at_or_below_start = !((1u8 << start_level) - 1) & 0xf;
        let root_bits = cfg.ias - shift(start_level);
        let leaf_levels = block_levels & at_or_below_start;
        let mut level_by_log2 = [NO_LEVEL; 64];
        for l in start_level..=LAST_LEVEL {
            if leaf_levels & (1 << l) != 0 {
                level_by_log2[shift(l) as usize] = l as u8;
            }
        }
        let bits = |l: u32| if l == start_level { root_bits } else { s };
        Ok(Geometry {
            granule: cfg.granule,
            g,
            s,
            ias: cfg.ias,
            oas: cfg.oas,
            start_level,
            root_bits,
            leaf_levels,
            shifts: [shift(0), shift(1), shift(2), shift(3)],
            masks: [0, 1, 2, 3].map(|l| (1u64 << bits(l)) - 1),
            level_by_log2,
        })
    }

    /// log2 of the span of one entry at `level`.
    #[inline(always)]
    pub fn shift(&self, level: u32) -> u32 {
        self.shifts[level as usize]
    }

    /// log2 of the entries of a table at `level`.
    #[inline(always)]
    pub fn table_bits(&self, level: u32) -> u32 {
        if level == self.start_level {
            self.root_bits
        } else {
            self.s
        }
    }

    /// Index of `iova` in the table at `level`.
    #[inline(always)]
    pub fn index(&self, iova: u64, level: u32) -> usize {
        ((iova >> self.shifts[level as usize]) & self.masks[level as usize]) as usize
    }

    /// Number of granule frames the root occupies (1, or 2..=16 when concatenated).
    pub fn root_frames(&self) -> u64 {
        1u64 << self.root_bits.saturating_sub(self.s)
    }

    pub fn leaf_allowed(&self, level: u32) -> bool {
        self.leaf_levels & (1 << level) != 0
    }

    /// The level whose entries map `pgsize`, if this domain supports it as a leaf.
    #[inline(always)]
    pub fn level_of_pgsize(&self, pgsize: u64) -> Option<u32> {
        if !pgsize.is_power_of_two() {
            return None;
        }
        match self.level_by_log2[pgsize.trailing_zeros() as usize] {
            NO_LEVEL => None,
            l => Some(l as u32),
        }
    }

    /// Supported leaf sizes, ascending.
    pub fn page_sizes(&self) -> Vec<u64> {
        (self.start_level..=LAST_LEVEL)
            .rev()
            .filter(|&l| self.leaf_allowed(l))
            .map(|l| 1u64 << self.shift(l))
            .collect()
    }

    /// Input address space size in bytes.
    pub fn ia_size(&self) -> u64 {
        1u64 << self.ias
    }

    pub fn oa_size(&self) -> u64 {
        1u64 << self.oas
    }
}
