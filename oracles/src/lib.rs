//! Everything that judges the engine. Shares only the plain types in
//! `ptfuzz_engine::{config, error, prot}` with it, never its page-table code, so an engine
//! bug cannot be repeated here. The walker additionally reads engine state through
//! `Domain`'s public accessors (root, device view of memory, allocator metadata and
//! counters: see `walker::view`), never through its format or geometry.

pub mod accounting;
pub mod budget;
pub mod divergence;
pub mod finding;
pub mod ioasid;
pub mod model;
pub mod qemu;
mod recycle;
pub mod tlb;
pub mod walker;

pub use accounting::FrameAccounting;
pub use divergence::Divergence;
pub use finding::{Finding, OracleId};
pub use ioasid::IoasidModel;
pub use model::Model;
pub use tlb::TlbOracle;
pub use walker::{check_domain, check_domain_logged, check_range, check_range_logged};

/// The oracles' hasher: fixed (no per-process keys), so their hash maps take the same paths
/// on every run, which keeps fuzzing deterministic (AFL measures this as stability); and
/// cheap, since every key is an address or an index, never attacker-chosen text.
pub(crate) type FixedState = std::hash::BuildHasherDefault<WordHasher>;

/// Multiply-rotate hashing of integer keys (the Fx scheme). The product's low bits depend
/// only on the key's low bits (always zero for word addresses) and hashbrown picks buckets
/// with the low bits, so `finish` rotates the well-mixed high bits down.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct WordHasher(u64);

impl std::hash::Hasher for WordHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0.rotate_left(26)
    }
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    #[inline]
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}
