//! QEMU's iommu-testdev (QEMU >= 11.1, hw/misc/iommu-testdev.c) as a DMA master. A read of
//! its trigger register performs, synchronously inside that MMIO read, a DMA *write* of a
//! fixed pattern to the programmed IOVA through the IOMMU, then reads the programmed
//! physical address directly (not through the IOMMU) and compares: the result register
//! says whether the write was refused (TX_FAIL) or landed at that address (0) or not
//! (MISMATCH). No polling, no timer; the device cannot read through the IOMMU and carries
//! no PASID (its attribute register holds only the security state).

use super::qtest::Batch;

/// PCI vendor/device ID (Red Hat 0x1b36, test device 0x0005).
pub const VENDOR_DEVICE: u32 = 0x0005_1b36;
pub const REG_TRIGGER: u64 = 0x00;
pub const REG_IOVA_LO: u64 = 0x04;
pub const REG_IOVA_HI: u64 = 0x08;
pub const REG_LEN: u64 = 0x0c;
pub const REG_RESULT: u64 = 0x10;
pub const REG_DOORBELL: u64 = 0x14;
pub const REG_PA_LO: u64 = 0x1c;
pub const REG_PA_HI: u64 = 0x20;

/// The result register before any DMA.
pub const RESULT_IDLE: u32 = 0xffff_ffff;
/// The write landed at the programmed physical address.
pub const RESULT_OK: u32 = 0;
/// The IOMMU refused the write.
pub const RESULT_TX_FAIL: u32 = 0xdead_0002;
/// The write went through, but the programmed physical address does not hold the pattern.
pub const RESULT_MISMATCH: u32 = 0xdead_0004;
/// The 32-bit pattern the device writes, repeated (little-endian).
pub const PATTERN: u32 = 0x1234_5678;
/// Every probe moves this many bytes (set once at bring-up).
pub const LEN: u32 = 8;

/// What one trigger did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The write landed at the programmed physical address.
    Landed,
    /// The write went through the IOMMU but not to the programmed address.
    Elsewhere,
    /// The IOMMU refused the write.
    Refused,
}

impl Outcome {
    pub fn from_result(r: u32) -> Option<Outcome> {
        match r {
            RESULT_OK => Some(Outcome::Landed),
            RESULT_MISMATCH => Some(Outcome::Elsewhere),
            RESULT_TX_FAIL => Some(Outcome::Refused),
            _ => None,
        }
    }
}

/// The register values a device holds, so unchanged halves are not rewritten.
#[derive(Clone, Copy, Debug, Default)]
pub struct Regs {
    iova: Option<u64>,
    pa: Option<u64>,
}

impl Regs {
    /// Programs `iova` and `pa` (only the 32-bit halves that change), arms, triggers, and
    /// reads the result; returns the index of the result read.
    pub fn probe(&mut self, b: &mut Batch, bar: u64, iova: u64, pa: u64) -> usize {
        let set = |b: &mut Batch, old: Option<u64>, new: u64, lo: u64, hi: u64| {
            if old.is_none_or(|o| o as u32 != new as u32) {
                b.writel(bar + lo, new as u32);
            }
            if old.is_none_or(|o| o >> 32 != new >> 32) {
                b.writel(bar + hi, (new >> 32) as u32);
            }
        };
        set(b, self.iova, iova, REG_IOVA_LO, REG_IOVA_HI);
        set(b, self.pa, pa, REG_PA_LO, REG_PA_HI);
        self.iova = Some(iova);
        self.pa = Some(pa);
        b.writel(bar + REG_DOORBELL, 1);
        b.readl(bar + REG_TRIGGER);
        b.readl(bar + REG_RESULT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unchanged_register_halves_are_not_rewritten() {
        let mut r = Regs::default();
        let mut b = Batch::new();
        r.probe(&mut b, 0x1000_0000, 0x1_0000_1000, 0x5000_0000);
        assert_eq!(b.len(), 7);
        let mut b = Batch::new();
        let res = r.probe(&mut b, 0x1000_0000, 0x1_0000_2000, 0x5000_0000);
        // iova lo, doorbell, trigger, result.
        assert_eq!(b.len(), 4);
        assert_eq!(res, 3);
        assert_eq!(Outcome::from_result(0xdead_0004), Some(Outcome::Elsewhere));
        assert_eq!(Outcome::from_result(0xdead_0005), None);
    }
}
