//! Stream table entries (64 bytes) built from a [`StreamConfig`]. Encoding refuses what
//! QEMU cannot take: S2AA64 is always 1 (0 aborts QEMU), and S2 settings QEMU would
//! reject as C_BAD_STE (T0SZ range, SL0, more than 16 concatenated root tables, S2PS
//! smaller than the input size) are a `QemuError::Config`.

use super::cd::{size_bits, tg_bits, S1Config};
use super::error::QemuError;

/// Stage-2 configuration of a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct S2Config {
    /// 4096, 16384 or 65536.
    pub granule: u64,
    /// IPA size is 64 - t0sz bits.
    pub t0sz: u8,
    /// Start level: 4K: 0 = L2, 1 = L1, 2 = L0; 16K/64K: 0 = L3, 1 = L2, 2 = L1.
    pub sl0: u8,
    /// STE.S2PS encoding 0..=6 (QEMU caps the output size at 44 bits).
    pub ps: u8,
    pub ttb: u64,
    pub vmid: u16,
    pub affd: bool,
}

impl S2Config {
    /// The walk's start level (0..=3).
    pub fn start_level(&self) -> u32 {
        let l = if self.granule == 4096 {
            2 - self.sl0 as i32
        } else {
            3 - self.sl0 as i32
        };
        l.max(0) as u32
    }

    /// Number of concatenated root tables the IPA size needs at the start level.
    /// QEMU only indexes the first one correctly (shared/qemu-smmuv3.md §12.1).
    pub fn root_tables(&self) -> u64 {
        let g = self.granule.trailing_zeros();
        let covered = g + (4 - self.start_level()) * (g - 3);
        let ipa = 64 - self.t0sz as u32;
        1u64 << ipa.saturating_sub(covered).min(63)
    }
}

/// What a stream (one edu device) does with its DMA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamConfig {
    /// STE.Config = 000: every access aborts silently.
    Abort,
    /// STE.Config = 100: addresses pass untranslated.
    Bypass,
    S1(S1Config),
    S2(S2Config),
    /// Stage 1 then stage 2; the CD address and TTB0 are IPAs.
    Nested(S1Config, S2Config),
}

const STE_V: u64 = 1;
const CFG_ABORT: u64 = 0b000;
const CFG_BYPASS: u64 = 0b100;
const CFG_S1: u64 = 0b101;
const CFG_S2: u64 = 0b110;
const CFG_NESTED: u64 = 0b111;
/// D1: S1CIR/S1COR write-back, S1CSH inner shareable (QEMU reads only S1STALLD = 0).
const D1_S1_ATTRS: u64 = 0xd4;
const ADDR_MASK: u64 = ((1 << 52) - 1) & !0xf;

fn check_s2(s: &S2Config, oas_bits: u32) -> Result<u64, QemuError> {
    let tg = tg_bits(s.granule)?;
    let bad = |m: String| Err(QemuError::Config(m));
    let Some(ps_bits) = size_bits(s.ps) else {
        return bad(format!("S2PS {} is reserved", s.ps));
    };
    let eff_ps = ps_bits.min(oas_bits);
    if s.sl0 > 2 {
        return bad(format!("S2SL0 {} is reserved", s.sl0));
    }
    let min_t0sz = if s.granule == 65536 {
        64 - eff_ps
    } else {
        (64 - eff_ps).max(16)
    };
    if s.t0sz > 39 || (s.t0sz as u32) < min_t0sz {
        return bad(format!(
            "S2T0SZ {} outside {min_t0sz}..=39 (S2PS {} = {eff_ps} bits)",
            s.t0sz, s.ps
        ));
    }
    let g = s.granule.trailing_zeros();
    let below = g + (3 - s.start_level()) * (g - 3);
    if 64 - s.t0sz as u32 <= below {
        return bad(format!(
            "S2SL0 {} starts above the {}-bit IPA",
            s.sl0,
            64 - s.t0sz
        ));
    }
    if s.root_tables() > 16 {
        return bad(format!(
            "S2T0SZ {} with S2SL0 {} needs {} concatenated tables (max 16)",
            s.t0sz,
            s.sl0,
            s.root_tables()
        ));
    }
    if s.ttb >> eff_ps != 0 || s.ttb & 0xf != 0 {
        return bad(format!(
            "S2TTB {:#x} unaligned or beyond the {eff_ps}-bit output size",
            s.ttb
        ));
    }
    Ok(s.vmid as u64
        | (s.t0sz as u64) << 32
        | (s.sl0 as u64) << 38
        | 1 << 40 // S2IR0 write-back
        | 1 << 42 // S2OR0 write-back
        | 3 << 44 // S2SH0 inner shareable
        | tg << 46
        | (s.ps as u64) << 48
        | 1 << 51 // S2AA64 (0 aborts QEMU)
        | (s.affd as u64) << 53
        | 1 << 58) // S2R: record faults
}

/// Encodes the STE; `cd_addr` is where the stage-1 CD goes (ignored without stage 1).
pub fn encode_ste(cfg: &StreamConfig, cd_addr: u64, oas_bits: u32) -> Result<[u64; 8], QemuError> {
    if cd_addr & 0x3f != 0 || cd_addr >> 52 != 0 {
        return Err(QemuError::Config(format!(
            "CD address {cd_addr:#x} is not 64-byte aligned"
        )));
    }
    let mut ste = [0u64; 8];
    match cfg {
        StreamConfig::Abort => ste[0] = STE_V | CFG_ABORT << 1,
        StreamConfig::Bypass => ste[0] = STE_V | CFG_BYPASS << 1,
        StreamConfig::S1(_) => {
            ste[0] = STE_V | CFG_S1 << 1 | cd_addr;
            ste[1] = D1_S1_ATTRS;
        }
        StreamConfig::S2(s2) => {
            ste[0] = STE_V | CFG_S2 << 1;
            ste[2] = check_s2(s2, oas_bits)?;
            ste[3] = s2.ttb & ADDR_MASK;
        }
        StreamConfig::Nested(_, s2) => {
            ste[0] = STE_V | CFG_NESTED << 1 | cd_addr;
            ste[1] = D1_S1_ATTRS;
            ste[2] = check_s2(s2, oas_bits)?;
            ste[3] = s2.ttb & ADDR_MASK;
        }
    }
    Ok(ste)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s2() -> S2Config {
        S2Config {
            granule: 4096,
            t0sz: 24,
            sl0: 1,
            ps: 4,
            ttb: 0x4020_0000,
            vmid: 1,
            affd: false,
        }
    }

    #[test]
    fn ste_matches_the_prototype() {
        let ste = encode_ste(&StreamConfig::S2(s2()), 0, 44).unwrap();
        assert_eq!(ste[0], 0xd);
        assert_eq!(ste[2], 0x040c_3558_0000_0001);
        assert_eq!(ste[3], 0x4020_0000);
        let s1 = S1Config::new(4096, 16, 4, 0x4010_0000, 1);
        assert_eq!(
            encode_ste(&StreamConfig::S1(s1), 0x7f03_0040, 44).unwrap()[0],
            0x7f03_0040 | 0xb
        );
        assert_eq!(
            encode_ste(&StreamConfig::Nested(s1, s2()), 0x4000_1000, 44).unwrap()[0],
            0x4000_1000 | 0xf
        );
        assert_eq!(encode_ste(&StreamConfig::Bypass, 0, 44).unwrap()[0], 0x9);
        assert_eq!(encode_ste(&StreamConfig::Abort, 0, 44).unwrap()[0], 0x1);
    }

    #[test]
    fn start_levels_and_concatenation() {
        assert_eq!(s2().start_level(), 1);
        // A 4K L1 table resolves 39 bits: a 40-bit IPA needs two, 41 bits four.
        assert_eq!(S2Config { t0sz: 25, ..s2() }.root_tables(), 1);
        assert_eq!(s2().root_tables(), 2);
        assert_eq!(S2Config { t0sz: 23, ..s2() }.root_tables(), 4);
        let g64 = S2Config {
            granule: 65536,
            t0sz: 22,
            sl0: 1,
            ..s2()
        };
        assert_eq!((g64.start_level(), g64.root_tables()), (2, 1));
        let g16 = S2Config {
            granule: 16384,
            t0sz: 17,
            sl0: 2,
            ..s2()
        };
        assert_eq!((g16.start_level(), g16.root_tables()), (1, 1));
    }

    #[test]
    fn refuses_what_qemu_cannot_take() {
        let bad = |s: S2Config| {
            matches!(
                encode_ste(&StreamConfig::S2(s), 0, 44),
                Err(QemuError::Config(_))
            )
        };
        assert!(bad(S2Config { sl0: 3, ..s2() }));
        assert!(bad(S2Config { t0sz: 40, ..s2() }));
        assert!(bad(S2Config { t0sz: 19, ..s2() })); // 45-bit IPA > 44-bit PS
        assert!(bad(S2Config { ps: 7, ..s2() }));
        assert!(bad(S2Config { ps: 1, ..s2() })); // 36-bit PS < 40-bit IPA
        assert!(!bad(S2Config { ps: 2, ..s2() })); // 40-bit PS = 40-bit IPA
        assert!(bad(S2Config {
            t0sz: 20,
            sl0: 0,
            ..s2()
        })); // 44 bits from L2: 32 tables
        assert!(bad(S2Config {
            t0sz: 39,
            sl0: 2,
            ..s2()
        })); // 25 bits cannot start at L0
        assert!(bad(S2Config {
            ttb: 0x4020_0008,
            ..s2()
        }));
        assert!(bad(S2Config {
            granule: 8192,
            ..s2()
        }));
        assert!(!bad(S2Config {
            t0sz: 20,
            sl0: 2,
            ..s2()
        }));
        assert!(matches!(
            encode_ste(&StreamConfig::Bypass, 0x20, 44),
            Err(QemuError::Config(_))
        ));
    }
}
