//! Command queue entries (16 bytes, four little-endian words; opcode in W0[7:0]).

/// The SMMU commands the oracle issues. `vmid` must be the STE's S2VMID (0 for S1-only
/// streams): QEMU's SMMU has stage 2, so it tags even stage-1 TLB entries with it.
/// Range fields (`tg`, `num`, `scale`, `ttl`) are as in the architecture (RIL).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmmuCommand {
    CfgiAll,
    CfgiSte {
        sid: u32,
    },
    CfgiCd {
        sid: u32,
    },
    TlbiNsnhAll,
    TlbiNhAll {
        vmid: u16,
    },
    TlbiNhAsid {
        asid: u16,
        vmid: u16,
    },
    TlbiNhVa {
        asid: u16,
        vmid: u16,
        addr: u64,
        tg: u8,
        ttl: u8,
        num: u8,
        scale: u8,
        leaf: bool,
    },
    TlbiNhVaa {
        vmid: u16,
        addr: u64,
        tg: u8,
        ttl: u8,
        num: u8,
        scale: u8,
        leaf: bool,
    },
    TlbiS2Ipa {
        vmid: u16,
        addr: u64,
        tg: u8,
        ttl: u8,
        num: u8,
        scale: u8,
        leaf: bool,
    },
    TlbiS12Vmall {
        vmid: u16,
    },
    /// CMD_SYNC without interrupt (QEMU consumes commands synchronously anyway).
    Sync,
    /// Any other encoding, e.g. to check that QEMU refuses it.
    Raw([u32; 4]),
}

pub const OP_CFGI_STE: u32 = 0x03;
pub const OP_CFGI_ALL: u32 = 0x04;
pub const OP_CFGI_CD: u32 = 0x05;
pub const OP_TLBI_NH_ALL: u32 = 0x10;
pub const OP_TLBI_NH_ASID: u32 = 0x11;
pub const OP_TLBI_NH_VA: u32 = 0x12;
pub const OP_TLBI_NH_VAA: u32 = 0x13;
pub const OP_TLBI_S12_VMALL: u32 = 0x28;
pub const OP_TLBI_S2_IPA: u32 = 0x2a;
pub const OP_TLBI_NSNH_ALL: u32 = 0x30;
pub const OP_CMD_SYNC: u32 = 0x46;

/// W0 of a range TLBI: opcode, NUM[16:12], SCALE[24:20].
fn range_w0(op: u32, num: u8, scale: u8) -> u32 {
    op | ((num as u32 & 0x1f) << 12) | ((scale as u32 & 0x1f) << 20)
}

/// W2/W3 of a range TLBI: Addr[63:12], TG[11:10], TTL[9:8], Leaf[0].
fn range_w23(addr: u64, tg: u8, ttl: u8, leaf: bool) -> (u32, u32) {
    let w2 =
        (addr as u32 & !0xfff) | ((tg as u32 & 3) << 10) | ((ttl as u32 & 3) << 8) | leaf as u32;
    (w2, (addr >> 32) as u32)
}

impl SmmuCommand {
    pub fn encode(&self) -> [u32; 4] {
        use SmmuCommand::*;
        match *self {
            CfgiAll => [OP_CFGI_ALL, 0, 31, 0],
            CfgiSte { sid } => [OP_CFGI_STE, sid, 1, 0],
            CfgiCd { sid } => [OP_CFGI_CD, sid, 1, 0],
            TlbiNsnhAll => [OP_TLBI_NSNH_ALL, 0, 0, 0],
            TlbiNhAll { vmid } => [OP_TLBI_NH_ALL, vmid as u32, 0, 0],
            TlbiNhAsid { asid, vmid } => [OP_TLBI_NH_ASID, (asid as u32) << 16 | vmid as u32, 0, 0],
            TlbiNhVa {
                asid,
                vmid,
                addr,
                tg,
                ttl,
                num,
                scale,
                leaf,
            } => {
                let (w2, w3) = range_w23(addr, tg, ttl, leaf);
                [
                    range_w0(OP_TLBI_NH_VA, num, scale),
                    (asid as u32) << 16 | vmid as u32,
                    w2,
                    w3,
                ]
            }
            TlbiNhVaa {
                vmid,
                addr,
                tg,
                ttl,
                num,
                scale,
                leaf,
            } => {
                let (w2, w3) = range_w23(addr, tg, ttl, leaf);
                [range_w0(OP_TLBI_NH_VAA, num, scale), vmid as u32, w2, w3]
            }
            TlbiS2Ipa {
                vmid,
                addr,
                tg,
                ttl,
                num,
                scale,
                leaf,
            } => {
                let (w2, w3) = range_w23(addr, tg, ttl, leaf);
                [range_w0(OP_TLBI_S2_IPA, num, scale), vmid as u32, w2, w3]
            }
            TlbiS12Vmall { vmid } => [OP_TLBI_S12_VMALL, vmid as u32, 0, 0],
            Sync => [OP_CMD_SYNC, 0, 0, 0],
            Raw(w) => w,
        }
    }

    pub fn to_bytes(&self) -> [u8; 16] {
        let mut out = [0u8; 16];
        for (i, w) in self.encode().iter().enumerate() {
            out[4 * i..4 * i + 4].copy_from_slice(&w.to_le_bytes());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_match_the_fact_sheet() {
        assert_eq!(SmmuCommand::CfgiAll.encode(), [0x04, 0, 31, 0]);
        assert_eq!(SmmuCommand::CfgiSte { sid: 8 }.encode(), [0x03, 8, 1, 0]);
        assert_eq!(
            SmmuCommand::TlbiNhAsid { asid: 3, vmid: 5 }.encode(),
            [0x11, 0x0003_0005, 0, 0]
        );
        let va = SmmuCommand::TlbiNhVa {
            asid: 1,
            vmid: 0,
            addr: 0x12_3456_7000,
            tg: 1,
            ttl: 3,
            num: 4,
            scale: 2,
            leaf: true,
        };
        assert_eq!(
            va.encode(),
            [
                0x12 | 4 << 12 | 2 << 20,
                0x0001_0000,
                0x3456_7000 | 1 << 10 | 3 << 8 | 1,
                0x12
            ]
        );
        let ipa = SmmuCommand::TlbiS2Ipa {
            vmid: 5,
            addr: 0x8000_1000,
            tg: 0,
            ttl: 0,
            num: 0,
            scale: 0,
            leaf: false,
        };
        assert_eq!(ipa.encode(), [0x2a, 5, 0x8000_1000, 0]);
        assert_eq!(SmmuCommand::Sync.to_bytes()[0], 0x46);
    }
}
