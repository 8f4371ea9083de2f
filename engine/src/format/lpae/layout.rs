//! The LPAE level layout of a configuration: granule, IAS/OAS ranges per format, start level
//! (stage 1 from IAS; stage 2 from the SL0/concatenation rules), block levels.

use crate::config::{Concat, DomainConfig, FormatKind, Granule};
use crate::format::{Layout, MAX_LEVELS};
use crate::geometry::ConfigError;

/// Arm lookup levels are 0..=3; the last level is always 3.
pub(super) const LAST_LEVEL: u32 = 3;

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

/// The layout of an LPAE domain of `kind`, or why `cfg` is refused.
pub(super) fn layout(kind: FormatKind, cfg: &DomainConfig) -> Result<Layout, ConfigError> {
    let fmt = kind;
    let (ias_range, oas_range, granules): (_, _, &[Granule]) = match fmt {
        FormatKind::Arm32LpaeS1 => (32..=32, 32..=40, &[Granule::G4K]),
        FormatKind::Arm32LpaeS2 => (32..=40, 32..=40, &[Granule::G4K]),
        _ => (32..=48, 32..=48, &Granule::ALL),
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
    let block_levels: &[u32] = match cfg.granule {
        Granule::G4K => &[1, 2, 3],
        Granule::G16K | Granule::G64K => &[2, 3],
    };
    let leaf_sizes = block_levels
        .iter()
        .filter(|&&l| l >= start_level)
        .fold(0u64, |m, &l| m | 1 << shift(l));
    let mut shifts = [0; MAX_LEVELS];
    let mut table_bits = [0; MAX_LEVELS];
    for l in start_level..=LAST_LEVEL {
        shifts[l as usize] = shift(l);
        table_bits[l as usize] = if l == start_level {
            cfg.ias - shift(l)
        } else {
            s
        };
    }
    Ok(Layout {
        frame_shift: g,
        entry_bytes: 8,
        start_level,
        last_level: LAST_LEVEL,
        shifts,
        table_bits,
        leaf_sizes,
    })
}
