//! DMA requests and results of [`super::Qemu::dma`].

use super::event::Event;

/// One DMA of 1..=8 bytes by edu `dev` at `iova`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dma {
    pub dev: usize,
    pub iova: u64,
    pub len: usize,
    pub dir: DmaDir,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DmaDir {
    /// The device reads memory at the IOVA.
    Read,
    /// The device writes the first `len` bytes of this little-endian value.
    Write(u64),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DmaResult {
    /// For reads: the bytes the device received (zeros where the SMMU refused; QEMU
    /// delivers zeros on a failed read). `None` for writes.
    pub data: Option<Vec<u8>>,
    /// Events recorded for this device's StreamID during this DMA's round.
    pub events: Vec<Event>,
}
