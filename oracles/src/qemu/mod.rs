//! QEMU's emulated Arm SMMUv3 as a differential oracle. `driver` starts and drives one
//! QEMU process (qtest over a unix socket, edu devices as DMA masters); the oracle logic
//! that compares its translations with the engine's lives beside it.

pub mod driver;

pub use driver::{
    Dma, DmaDir, DmaResult, Event, Profile, Qemu, QemuError, S1Config, S2Config, SmmuCommand,
    StreamConfig,
};
