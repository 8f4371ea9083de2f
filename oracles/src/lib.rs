//! Everything that judges the engine. Shares only the plain types in
//! `ptfuzz_engine::{config, error, prot}` with it, never its page-table code, so an engine
//! bug cannot be repeated here. The walker additionally reads engine state through
//! `Domain`'s public accessors (root, device view of memory, allocator metadata and
//! counters: see `walker::view`), never through its format or geometry.

pub mod divergence;
pub mod ioasid;
pub mod qemu;
pub mod model;
pub mod tlb;
pub mod walker;

pub use divergence::Divergence;
pub use ioasid::IoasidModel;
pub use model::Model;
pub use tlb::TlbOracle;
pub use walker::{check_domain, check_range};

/// A hasher with fixed keys: the oracles' hash maps then take the same paths on every run,
/// which keeps fuzzing deterministic (AFL measures this as stability).
pub(crate) type FixedState =
    std::hash::BuildHasherDefault<std::collections::hash_map::DefaultHasher>;
