//! Context descriptors (stage-1 configuration, 64 bytes). Encoding refuses what QEMU
//! cannot take: IPS >= 6 aborts QEMU; T0SZ outside 16..=39 and TTB0 beyond the output
//! size give C_BAD_CD.

use super::error::QemuError;

/// Stage-1 configuration of a stream: one translation table (TTB0, TTB1 disabled).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct S1Config {
    /// 4096, 16384 or 65536.
    pub granule: u64,
    /// Input size is 64 - t0sz bits; QEMU takes 16..=39.
    pub t0sz: u8,
    /// CD.IPS encoding 0..=5 (32, 36, 40, 42, 44, 48 bits; QEMU caps at 44).
    pub ips: u8,
    pub ttb0: u64,
    pub asid: u16,
    /// Access-flag fault disable: AF = 0 translates instead of faulting.
    pub affd: bool,
    /// Where the driver writes the CD and points the STE: `None` uses the device's own
    /// slot in the SMMU structures. For a nested stream this address is an IPA, so the
    /// stage-2 tables must map it to the same PA (the driver writes the CD at that PA).
    pub cd_addr: Option<u64>,
}

impl S1Config {
    pub fn new(granule: u64, t0sz: u8, ips: u8, ttb0: u64, asid: u16) -> S1Config {
        S1Config {
            granule,
            t0sz,
            ips,
            ttb0,
            asid,
            affd: false,
            cd_addr: None,
        }
    }
}

/// Granule size to the TG0 / S2TG encoding (0 = 4K, 1 = 64K, 2 = 16K).
pub fn tg_bits(granule: u64) -> Result<u64, QemuError> {
    match granule {
        4096 => Ok(0),
        65536 => Ok(1),
        16384 => Ok(2),
        g => Err(QemuError::Config(format!(
            "granule {g:#x} is not 4K, 16K or 64K"
        ))),
    }
}

/// Output-size encoding (CD.IPS / STE.S2PS) to bits; `None` for reserved values.
pub fn size_bits(enc: u8) -> Option<u32> {
    [32, 36, 40, 42, 44, 48, 52].get(enc as usize).copied()
}

/// Encodes the CD as eight little-endian dwords.
pub fn encode_cd(c: &S1Config, oas_bits: u32) -> Result<[u64; 8], QemuError> {
    let tg0 = tg_bits(c.granule)?;
    if !(16..=39).contains(&c.t0sz) {
        return Err(QemuError::Config(format!(
            "stage-1 T0SZ {} outside QEMU's 16..=39",
            c.t0sz
        )));
    }
    if c.ips > 5 {
        return Err(QemuError::Config(format!(
            "CD.IPS {} >= 6 aborts QEMU",
            c.ips
        )));
    }
    let oas = size_bits(c.ips).unwrap().min(oas_bits);
    if c.ttb0 >> oas != 0 || c.ttb0 & 0xf != 0 {
        return Err(QemuError::Config(format!(
            "TTB0 {:#x} unaligned or beyond the {oas}-bit output size",
            c.ttb0
        )));
    }
    let d0 = c.t0sz as u64
        | tg0 << 6
        | 1 << 8 // IR0: write-back
        | 1 << 10 // OR0: write-back
        | 3 << 12 // SH0: inner shareable
        | 2 << 22 // TG1 = 4K (TTB1 is disabled by EPD1)
        | 1 << 30 // EPD1
        | 1 << 31 // V
        | (c.ips as u64) << 32
        | (c.affd as u64) << 35
        | 1 << 41 // AA64
        | 1 << 45 // R: record faults
        | 1 << 46 // A: abort on faults (QEMU requires it)
        | (c.asid as u64) << 48;
    Ok([d0, c.ttb0, 0, 0xff, 0, 0, 0, 0])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cd_matches_the_prototype_and_refuses_what_crashes_qemu() {
        let c = S1Config::new(4096, 16, 4, 0x4010_0000, 1);
        let cd = encode_cd(&c, 44).unwrap();
        assert_eq!(cd[0], 0x0001_6204_c080_3510);
        assert_eq!(cd[1], 0x4010_0000);
        assert_eq!(
            encode_cd(
                &S1Config {
                    granule: 16384,
                    ..c
                },
                44
            )
            .unwrap()[0]
                >> 6
                & 3,
            2
        );
        assert!(matches!(
            encode_cd(&S1Config { ips: 6, ..c }, 44),
            Err(QemuError::Config(_))
        ));
        assert!(matches!(
            encode_cd(&S1Config { t0sz: 40, ..c }, 44),
            Err(QemuError::Config(_))
        ));
        assert!(matches!(
            encode_cd(&S1Config { t0sz: 15, ..c }, 44),
            Err(QemuError::Config(_))
        ));
        assert!(matches!(
            encode_cd(&S1Config { granule: 8192, ..c }, 44),
            Err(QemuError::Config(_))
        ));
        assert!(matches!(
            encode_cd(&S1Config { ttb0: 1 << 44, ..c }, 44),
            Err(QemuError::Config(_))
        ));
        assert!(matches!(
            encode_cd(
                &S1Config {
                    ips: 0,
                    ttb0: 1 << 32,
                    ..c
                },
                44
            ),
            Err(QemuError::Config(_))
        ));
    }
}
