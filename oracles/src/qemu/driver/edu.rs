//! QEMU's edu device as a DMA master: register offsets and the DMA kick. A DMA runs on a
//! +100 ms virtual timer (instant with icount sleep=off); `cmd` bit 0 clears when done.
//! The device's 4 KiB buffer sits at device address 0x40000 and is not MMIO-readable.

use super::qtest::Batch;

pub const REG_ID: u64 = 0x00;
pub const ID_VALUE: u32 = 0x0100_00ed;
pub const REG_DMA_SRC: u64 = 0x80;
pub const REG_DMA_DST: u64 = 0x88;
pub const REG_DMA_COUNT: u64 = 0x90;
pub const REG_DMA_CMD: u64 = 0x98;

pub const CMD_RUN: u64 = 1;
/// Direction bit: device to RAM (the device writes the IOVA).
pub const CMD_TO_RAM: u64 = 2;

/// Device address of the internal buffer.
pub const BUF: u64 = 0x40000;
/// Buffer offset holding the data that write DMAs send (staged through bypass).
pub const BUF_WRITE_SRC: u64 = BUF;
/// Buffer offset receiving what read DMAs fetch.
pub const BUF_READ_DST: u64 = BUF + 0x800;

/// Device reads `len` bytes at `iova` into its buffer at `buf`.
pub fn kick_read(b: &mut Batch, bar: u64, iova: u64, buf: u64, len: usize) {
    b.writeq(bar + REG_DMA_SRC, iova);
    b.writeq(bar + REG_DMA_DST, buf);
    b.writeq(bar + REG_DMA_COUNT, len as u64);
    b.writeq(bar + REG_DMA_CMD, CMD_RUN);
}

/// Device writes `len` bytes from its buffer at `buf` to `iova`.
pub fn kick_write(b: &mut Batch, bar: u64, buf: u64, iova: u64, len: usize) {
    b.writeq(bar + REG_DMA_SRC, buf);
    b.writeq(bar + REG_DMA_DST, iova);
    b.writeq(bar + REG_DMA_COUNT, len as u64);
    b.writeq(bar + REG_DMA_CMD, CMD_RUN | CMD_TO_RAM);
}
