//! The QEMU SMMUv3 differential target: engine and model as everywhere, plus the very table
//! bytes translated by QEMU's emulated SMMUv3 (`ptfuzz_oracles::qemu`). See docs/QEMU.md.

pub mod diff;
pub mod replay;
pub mod session;
pub mod target;

pub use diff::{QemuDiff, Stop};
pub use replay::{replay_qemu, replay_qemu_files, QemuStats};
pub use target::{
    execute_qemu, nested_configs, resolve_qemu_config, run_qemu, run_qemu_bytes, QemuStop,
};
