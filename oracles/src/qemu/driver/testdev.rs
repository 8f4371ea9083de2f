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

/// Adds one probe to `b` in two qtest commands, and returns the index of the second. The
/// registers are 32-bit and QEMU splits a wider access into 4-byte accesses in address
/// order, so one `write` of 0x04..0x24 sets the IOVA, the length, the attributes (0:
/// non-secure) and the physical address and arms the device (DBELL at 0x14; arming latches
/// nothing), and one `read` of 0x00..0x14 triggers the DMA (0x00) and then reads the result
/// (0x10). Decode the read's reply with [`result_of`].
pub fn probe(b: &mut Batch, bar: u64, iova: u64, pa: u64) -> usize {
    let mut regs = [0u8; 0x20];
    let mut put = |off: u64, v: u32| {
        let at = (off - REG_IOVA_LO) as usize;
        regs[at..at + 4].copy_from_slice(&v.to_le_bytes());
    };
    put(REG_IOVA_LO, iova as u32);
    put(REG_IOVA_HI, (iova >> 32) as u32);
    put(REG_LEN, LEN);
    put(REG_RESULT, RESULT_IDLE);
    put(REG_DOORBELL, 1);
    put(REG_PA_LO, pa as u32);
    put(REG_PA_HI, (pa >> 32) as u32);
    b.write(bar + REG_IOVA_LO, &regs);
    b.read(bar + REG_TRIGGER, (REG_RESULT + 4) as usize)
}

/// The result register from the reply bytes of [`probe`]'s read.
pub fn result_of(bytes: &[u8]) -> Option<u32> {
    let at = REG_RESULT as usize;
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_probe_is_two_commands_in_register_order() {
        let mut b = Batch::new();
        let idx = probe(&mut b, 0x1000_0000, 0x1_0000_1000, 0x5000_0010);
        assert_eq!(b.len(), 2);
        assert_eq!(idx, 1);
        let mut reply = vec![0u8; 0x14];
        reply[0x10..].copy_from_slice(&RESULT_MISMATCH.to_le_bytes());
        assert_eq!(result_of(&reply), Some(RESULT_MISMATCH));
        assert_eq!(result_of(&reply[..8]), None);
        assert_eq!(Outcome::from_result(0xdead_0005), None);
    }
}
