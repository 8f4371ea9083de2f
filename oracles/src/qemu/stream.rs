//! Which SMMU stream configuration (STE, CD) translates a domain's tables the way the
//! domain's format means them, and which domains QEMU cannot translate at all.
//!
//! Written from the Arm SMMUv3 encodings (`../shared/qemu-smmuv3.md` §6), not from the
//! engine: the start level comes from the model's rules.

use ptfuzz_engine::{DomainConfig, FormatKind};

use super::driver::{S1Config, S2Config};
use crate::model::DomainRules;

/// The TLB tags the oracle uses: stage-1 context `ASID`, stage-2 (and nested) `VMID`.
/// QEMU tags stage-1-only entries with the STE's S2VMID, which the driver leaves at 0.
pub const ASID: u16 = 1;
pub const S1_VMID: u16 = 0;
pub const S2_VMID: u16 = 1;

/// Why a domain is not translated by QEMU (its probes are skipped, never compared).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsupported(pub String);

/// The encodings of a physical address size, as CD.IPS and STE.S2PS take them.
const PA_SIZES: [(u32, u8); 6] = [(32, 0), (36, 1), (40, 2), (42, 3), (44, 4), (48, 5)];

/// The smallest encodable size holding `bits` (never 6 or 7: those abort QEMU).
fn pa_size_encoding(bits: u32) -> Option<u8> {
    PA_SIZES.iter().find(|(b, _)| *b >= bits).map(|(_, e)| *e)
}

/// QEMU's largest output size (IDR5.OAS = 44 bits).
pub const QEMU_OAS: u32 = 44;

fn aarch64_only(cfg: &DomainConfig) -> Result<(), Unsupported> {
    match cfg.format {
        FormatKind::Arm64S1 | FormatKind::Arm64S2 => Ok(()),
        // CD.AA64 = 0 is refused (C_BAD_CD) and STE.S2AA64 = 0 aborts QEMU.
        f => Err(Unsupported(format!(
            "{f}: QEMU's SMMUv3 walks AArch64 tables only"
        ))),
    }
}

/// Stage-1 context for a stage-1 domain whose root is `ttb0`.
pub fn stage1(cfg: &DomainConfig, ttb0: u64) -> Result<S1Config, Unsupported> {
    aarch64_only(cfg)?;
    if cfg.format.is_stage2() {
        return Err(Unsupported(format!("{}: not a stage-1 format", cfg.format)));
    }
    let t0sz = 64 - cfg.ias;
    if !(16..=39).contains(&t0sz) {
        return Err(Unsupported(format!(
            "IAS {}: QEMU takes T0SZ 16..=39 only",
            cfg.ias
        )));
    }
    let ips = pa_size_encoding(cfg.oas).ok_or_else(|| Unsupported(format!("OAS {}", cfg.oas)))?;
    Ok(S1Config {
        granule: cfg.granule.size(),
        t0sz: t0sz as u8,
        ips,
        ttb0,
        asid: ASID,
        affd: false,
        cd_addr: None,
    })
}

/// Stage-2 configuration for a stage-2 domain whose root is `ttb`.
pub fn stage2(cfg: &DomainConfig, rules: &DomainRules, ttb: u64) -> Result<S2Config, Unsupported> {
    aarch64_only(cfg)?;
    if !cfg.format.is_stage2() {
        return Err(Unsupported(format!("{}: not a stage-2 format", cfg.format)));
    }
    // SL0 counts up from the deepest level the granule allows a start at: 4K starts at
    // L2 for SL0 = 0, 16K and 64K at L3.
    let deepest: u32 = match cfg.granule.shift() {
        12 => 2,
        _ => 3,
    };
    let sl0 = deepest
        .checked_sub(rules.start_level)
        .filter(|&s| s <= 2)
        .ok_or_else(|| Unsupported(format!("start level {} has no SL0", rules.start_level)))?;
    // S2PS must cover the IPA size too (QEMU: C_BAD_STE otherwise); IAS <= OAS for stage 2.
    let ps = pa_size_encoding(cfg.oas.max(cfg.ias))
        .ok_or_else(|| Unsupported(format!("OAS {}", cfg.oas)))?;
    if cfg.ias > QEMU_OAS {
        return Err(Unsupported(format!(
            "IAS {}: QEMU caps S2PS at {QEMU_OAS} bits and refuses a larger IPA",
            cfg.ias
        )));
    }
    Ok(S2Config {
        granule: cfg.granule.size(),
        t0sz: (64 - cfg.ias) as u8,
        sl0: sl0 as u8,
        ps,
        ttb,
        vmid: S2_VMID,
        affd: false,
    })
}

/// The root-table index an input address selects among concatenated stage-2 root tables
/// (0 when the root is a single table). QEMU only ever indexes table 0 (§12.1).
pub fn concatenated_table(rules: &DomainRules, iova: u64) -> u64 {
    let stride = rules.granule.shift() - 3;
    let per_table_bits = rules.level_shift(rules.start_level) + stride;
    if rules.root_tables() > 1 {
        iova >> per_table_bits
    } else {
        0
    }
}
