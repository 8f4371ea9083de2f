//! Per-format descriptor code behind one small trait; the walker in `domain` is generic
//! over it (as Linux generic_pt: one walker, many formats).

mod lpae;

pub use lpae::{Lpae, MAIR};

use crate::prot::Prot;

/// What one descriptor is, as the engine itself reads it back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry {
    Invalid,
    /// Next-level table at this physical address.
    Table(u64),
    /// A leaf whose output address is this.
    Leaf(u64),
}

/// Descriptor encoding of a page-table format.
pub trait Format {
    /// Attribute and type bits of a leaf at `level` with `prot`; the leaf is `pa | attrs`.
    fn leaf_attrs(&self, prot: Prot, level: u32) -> u64;
    /// A descriptor pointing at the next-level table at `pa`.
    fn table(&self, pa: u64) -> u64;
    /// Decodes a descriptor the engine wrote at `level`.
    fn decode(&self, pte: u64, level: u32) -> Entry;
    /// Whether a custom table allocator may be used (io-pgtable's CAP_CUSTOM_ALLOCATOR).
    fn custom_allocator_cap(&self) -> bool;
}
