//! Driver for QEMU `virt` with an SMMUv3, K `edu` PCI devices and iommu-testdevs, controlled over qtest.
//! Facts it relies on: shared/qemu-smmuv3.md. Entry point: [`Qemu::start`].

pub mod cd;
pub mod command;
pub mod dma;
pub mod edu;
pub mod error;
pub mod event;
pub mod firmware;
pub mod install;
pub mod instance;
pub mod pci;
pub mod process;
pub mod profile;
pub mod qtest;
pub mod smmu;
pub mod ste;
pub mod testdev;

pub use cd::S1Config;
pub use command::SmmuCommand;
pub use dma::{Dma, DmaDir, DmaResult};
pub use error::QemuError;
pub use event::Event;
pub use instance::{Qemu, Stats};
pub use profile::{ProbeMode, Profile};
pub use ste::{S2Config, StreamConfig};
