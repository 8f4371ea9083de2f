//! QEMU's emulated Arm SMMUv3 as a differential oracle. `driver` starts and drives one
//! QEMU process (qtest over a unix socket, edu devices as DMA masters); the rest turns a
//! domain into a stream, the engine's flushes into commands, the model into predictions,
//! and compares. See docs/QEMU.md.

pub mod deviation;
pub mod driver;
pub mod guest_ram;
pub mod observed;
pub mod oracle;
pub mod predict;
pub mod probe;
pub mod stream;
pub mod tlbi;

pub use driver::{
    Dma, DmaDir, DmaResult, Event, Profile, Qemu, QemuError, S1Config, S2Config, SmmuCommand,
    StreamConfig,
};
pub use oracle::{QemuOracle, Verdict};
