//! The format layer: everything one page-table format knows, behind one trait. The walker in
//! `domain` (and the allocator calls, the flush walk, preallocation counts, VA reservation)
//! is generic over it, as Linux generic_pt is: one walker, many formats. What a format
//! decides: its level layout ([`Layout`]: levels, index bits and table size per level, start
//! level, leaf sizes), the validation of a configuration with its own `inval` rules, the
//! descriptor encoding (leaf attributes from a prot, tables, decode), what an empty entry is,
//! and how a leaf larger than one entry is written (repeated entries).
//! docs/FORMATS.md checks this shape against the formats that come next.

mod lpae;
mod v7s;

pub use lpae::{Lpae, MAIR};
pub use v7s::V7s;

use crate::config::{DomainConfig, FormatKind};
use crate::geometry::ConfigError;
use crate::prot::Prot;

/// Most lookup levels any format may have (x86-64 5-level paging has five; one spare).
pub const MAX_LEVELS: usize = 6;

/// What one descriptor is, as the engine itself reads it back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry {
    Invalid,
    /// Next-level table at this physical address.
    Table(u64),
    /// A leaf whose output address is this.
    Leaf(u64),
}

/// The level layout of one domain, as its format lays it out: plain numbers the generic
/// geometry turns into index masks and leaf lookups. Levels are numbered as the format's
/// architecture numbers them (Arm: L0..L3, the root at `start_level`, leaves deepest at
/// `last_level`); at most [`MAX_LEVELS`] of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// log2 of the unit tables are allocated in: the smallest table the format makes (the
    /// granule for LPAE, 1 KiB for armv7s), so tables are carved at their real size.
    pub frame_shift: u32,
    /// Bytes of one descriptor: 8 (LPAE), 4 (short descriptor).
    pub entry_bytes: u32,
    pub start_level: u32,
    pub last_level: u32,
    /// Per level: log2 of the input span of one entry.
    pub shifts: [u32; MAX_LEVELS],
    /// Per level: log2 of the entries of a table at that level (the root's may differ from
    /// the others', e.g. concatenated or short roots, or v7s's 4096-entry first level).
    pub table_bits: [u32; MAX_LEVELS],
    /// Supported leaf sizes as a mask of log2 sizes (bit k: a leaf of 2^k bytes). A leaf
    /// lives at the deepest level whose entry span does not exceed it; one larger than that
    /// span is written as `2^(k - shift)` consecutive entries (v7s large pages and
    /// supersections, RISC-V Svnapot, AMD v1 size-encoded pages).
    pub leaf_sizes: u64,
}

/// Descriptor encoding and layout of a page-table format.
pub trait Format {
    /// The layout of a domain of `cfg`, or why the format refuses it (`inval`).
    fn layout(&self, cfg: &DomainConfig) -> Result<Layout, ConfigError>;
    /// Attribute and type bits of a leaf of 2^`size_log2` bytes at `level` with `prot`;
    /// the leaf descriptor is [`Format::leaf`] of them.
    fn leaf_attrs(&self, prot: Prot, level: u32, size_log2: u32) -> u64;
    /// The descriptor of a leaf at output address `pa` with `attrs`.
    #[inline(always)]
    fn leaf(&self, pa: u64, attrs: u64) -> u64 {
        pa | attrs
    }
    /// A descriptor pointing at the next-level table at `pa`.
    fn table(&self, pa: u64) -> u64;
    /// The value of an empty (invalid) entry, as the engine writes it.
    #[inline(always)]
    fn empty(&self) -> u64 {
        0
    }
    /// Decodes a descriptor the engine wrote at `level`.
    fn decode(&self, pte: u64, level: u32) -> Entry;
    /// For a leaf descriptor at `level`: log2 of the number of consecutive entries the leaf
    /// occupies (0: one entry; v7s large pages and supersections: 4).
    #[inline(always)]
    fn leaf_repeat_log2(&self, _pte: u64, _level: u32) -> u32 {
        0
    }
    /// Whether a custom table allocator may be used (io-pgtable's CAP_CUSTOM_ALLOCATOR).
    fn custom_allocator_cap(&self) -> bool;
}

/// The format of a domain, picked by its [`FormatKind`]: the engine's formats as one type,
/// dispatched by a match (no indirect call per descriptor).
#[derive(Clone, Copy, Debug)]
pub enum AnyFormat {
    Lpae(Lpae),
    V7s(V7s),
}

impl AnyFormat {
    pub fn for_kind(kind: FormatKind) -> AnyFormat {
        match kind {
            FormatKind::Armv7s => AnyFormat::V7s(V7s::new()),
            _ => AnyFormat::Lpae(Lpae::new(kind)),
        }
    }
}

macro_rules! each {
    ($s:expr, $f:ident => $e:expr) => {
        match $s {
            AnyFormat::Lpae($f) => $e,
            AnyFormat::V7s($f) => $e,
        }
    };
}

impl Format for AnyFormat {
    fn layout(&self, cfg: &DomainConfig) -> Result<Layout, ConfigError> {
        each!(self, f => f.layout(cfg))
    }
    #[inline]
    fn leaf_attrs(&self, prot: Prot, level: u32, size_log2: u32) -> u64 {
        each!(self, f => f.leaf_attrs(prot, level, size_log2))
    }
    #[inline(always)]
    fn leaf(&self, pa: u64, attrs: u64) -> u64 {
        each!(self, f => f.leaf(pa, attrs))
    }
    #[inline(always)]
    fn table(&self, pa: u64) -> u64 {
        each!(self, f => f.table(pa))
    }
    #[inline(always)]
    fn empty(&self) -> u64 {
        each!(self, f => f.empty())
    }
    #[inline(always)]
    fn decode(&self, pte: u64, level: u32) -> Entry {
        each!(self, f => f.decode(pte, level))
    }
    #[inline(always)]
    fn leaf_repeat_log2(&self, pte: u64, level: u32) -> u32 {
        each!(self, f => f.leaf_repeat_log2(pte, level))
    }
    fn custom_allocator_cap(&self) -> bool {
        each!(self, f => f.custom_allocator_cap())
    }
}
