//! The engine's flush requests, forwarded as the SMMU commands a driver would issue, so a
//! missing or wrong invalidation shows up as a stale translation in QEMU's IOTLB.
//!
//! Mapping (as an SMMUv3 driver does it): flush-all → TLBI by ASID (stage 1) or by VMID
//! (stage 2); a walk or leaf range → range TLBI by VA (stage 1) or IPA (stage 2) in units
//! of the granule, Leaf = 0 for walks; a stage-2 domain under a nested stream also needs
//! S12_VMALL, because QEMU keeps combined S1+S2 entries that S2_IPA does not drop (§10).

use ptfuzz_engine::FlushEvent;

use super::driver::SmmuCommand;
use super::stream::{ASID, S1_VMID, S2_VMID};

/// How a domain is attached, which decides the commands its flushes become.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The only stage of a stage-1 stream.
    Stage1,
    /// The stage-1 half of a nested stream.
    NestedStage1,
    /// The only stage of a stage-2 stream.
    Stage2,
    /// The stage-2 half of a nested stream.
    NestedStage2,
}

impl Role {
    fn vmid(self) -> u16 {
        match self {
            Role::Stage1 => S1_VMID,
            _ => S2_VMID,
        }
    }
    fn is_stage2(self) -> bool {
        matches!(self, Role::Stage2 | Role::NestedStage2)
    }
}

/// TG field of a range TLBI: 1 = 4K, 2 = 16K, 3 = 64K.
fn tg(granule: u64) -> u8 {
    match granule {
        0x1000 => 1,
        0x4000 => 2,
        _ => 3,
    }
}

/// One range TLBI: `(num + 1) << scale` pages from `addr`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RangeChunk {
    pub addr: u64,
    pub num: u8,
    pub scale: u8,
}

/// Splits `pages` pages from `addr` into range-TLBI chunks: each chunk takes the low five
/// bits of what is left above its lowest set bit, so at most a handful of commands cover
/// any count.
pub fn range_chunks(addr: u64, pages: u64, granule: u64) -> Vec<RangeChunk> {
    let mut out = Vec::new();
    let (mut addr, mut left) = (addr, pages);
    while left > 0 {
        let scale = left.trailing_zeros().min(31);
        let num = ((left >> scale) & 0x1f).clamp(1, 32);
        out.push(RangeChunk {
            addr,
            num: (num - 1) as u8,
            scale: scale as u8,
        });
        let done = num << scale;
        left -= done;
        addr = addr.wrapping_add(done * granule);
    }
    out
}

fn range(role: Role, start: u64, end_excl: u64, granule: u64, leaf: bool) -> Vec<SmmuCommand> {
    let lo = start & !(granule - 1);
    let hi = end_excl.div_ceil(granule) * granule;
    let pages = (hi - lo) / granule;
    range_chunks(lo, pages, granule)
        .into_iter()
        .map(|c| {
            let (addr, tg, ttl, num, scale) = (c.addr, tg(granule), 0, c.num, c.scale);
            if role.is_stage2() {
                SmmuCommand::TlbiS2Ipa {
                    vmid: role.vmid(),
                    addr,
                    tg,
                    ttl,
                    num,
                    scale,
                    leaf,
                }
            } else {
                SmmuCommand::TlbiNhVa {
                    asid: ASID,
                    vmid: role.vmid(),
                    addr,
                    tg,
                    ttl,
                    num,
                    scale,
                    leaf,
                }
            }
        })
        .collect()
}

/// The commands for one flush request (CMD_SYNC is added by the submitter).
pub fn commands(role: Role, granule: u64, ev: &FlushEvent) -> Vec<SmmuCommand> {
    let mut cmds = match *ev {
        FlushEvent::All if role.is_stage2() => {
            vec![SmmuCommand::TlbiS12Vmall { vmid: role.vmid() }]
        }
        FlushEvent::All => vec![SmmuCommand::TlbiNhAsid {
            asid: ASID,
            vmid: role.vmid(),
        }],
        FlushEvent::Walk { iova, size, .. } => {
            range(role, iova, iova.saturating_add(size), granule, false)
        }
        FlushEvent::Leaves { start, end, .. } => {
            range(role, start, end.saturating_add(1), granule, true)
        }
    };
    if role == Role::NestedStage2 && !matches!(ev, FlushEvent::All) {
        cmds.push(SmmuCommand::TlbiS12Vmall { vmid: role.vmid() });
    }
    cmds
}

#[cfg(test)]
mod tests {
    use super::*;

    fn covered(chunks: &[RangeChunk]) -> u64 {
        chunks.iter().map(|c| (c.num as u64 + 1) << c.scale).sum()
    }

    #[test]
    fn chunks_cover_exactly_the_pages_in_order() {
        for pages in [
            1u64,
            2,
            3,
            31,
            32,
            33,
            64,
            100,
            511,
            512,
            513,
            262_144,
            0xdead_beef,
        ] {
            let chunks = range_chunks(0x1000, pages, 0x1000);
            assert_eq!(covered(&chunks), pages, "{pages} pages");
            let mut addr = 0x1000;
            for c in &chunks {
                assert_eq!(c.addr, addr);
                assert!(c.scale <= 31 && c.num <= 31);
                addr += ((c.num as u64 + 1) << c.scale) * 0x1000;
            }
            assert!(
                chunks.len() <= 8,
                "{pages} pages took {} commands",
                chunks.len()
            );
        }
    }

    #[test]
    fn nested_stage2_ranges_end_with_vmall() {
        let ev = FlushEvent::Leaves {
            start: 0x20_0000,
            end: 0x3f_ffff,
            pgsize: 0x20_0000,
        };
        let c = commands(Role::NestedStage2, 0x1000, &ev);
        assert!(matches!(
            c[0],
            SmmuCommand::TlbiS2Ipa {
                leaf: true,
                num: 0,
                scale: 9,
                ..
            }
        ));
        assert_eq!(c.last(), Some(&SmmuCommand::TlbiS12Vmall { vmid: S2_VMID }));
        let s1 = commands(Role::Stage1, 0x1000, &ev);
        assert!(matches!(
            s1[..],
            [SmmuCommand::TlbiNhVa {
                asid: ASID,
                leaf: true,
                ..
            }]
        ));
    }
}
