//! The few numbers a walk needs, from the granule, the address sizes and the start level.
//! Written from ARM-FACTS.md §1-§3; nothing here comes from the engine's geometry.

use ptfuzz_engine::config::{DomainConfig, Granule};

use crate::model::DomainRules;

/// Translation regime of one domain, as the walker sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalkParams {
    /// log2 of the granule: 12, 14 or 16.
    pub g: u32,
    /// Input address size in bits.
    pub ias: u32,
    /// Output address size in bits: any table or output address at or above 2^oas is an
    /// address size fault.
    pub oas: u32,
    /// Arm lookup level of the root (0..=3).
    pub start_level: u32,
    /// Stage-2 descriptor attributes (S2AP, MemAttr) instead of stage-1 ones (AP, AttrIndx).
    pub stage2: bool,
}

impl WalkParams {
    pub fn new(granule: Granule, ias: u32, oas: u32, start_level: u32, stage2: bool) -> Self {
        WalkParams {
            g: granule.shift(),
            ias,
            oas,
            start_level,
            stage2,
        }
    }

    /// The walk of a domain: sizes and stage from its config, start level from the model's
    /// independently computed rules.
    pub fn for_domain(cfg: &DomainConfig, rules: &DomainRules) -> Self {
        WalkParams::new(
            cfg.granule,
            cfg.ias,
            cfg.oas,
            rules.start_level,
            cfg.format.is_stage2(),
        )
    }

    /// Bits resolved by one full table: g - 3.
    pub fn stride(&self) -> u32 {
        self.g - 3
    }

    /// log2 of the span of one entry at `level`: g + s * (3 - level).
    pub fn shift(&self, level: u32) -> u32 {
        self.g + self.stride() * (3 - level)
    }

    /// Entries in one non-root table (one granule of 8-byte descriptors).
    pub fn table_entries(&self) -> u64 {
        1 << self.stride()
    }

    /// Entries of the root: 2^(IAS - shift(start)); more than one table's worth means
    /// concatenated root tables indexed as one flat array.
    pub fn root_entries(&self) -> u64 {
        1 << (self.ias - self.shift(self.start_level))
    }

    /// Number of entries of a table at `level`.
    pub fn entries_at(&self, level: u32) -> u64 {
        if level == self.start_level {
            self.root_entries()
        } else {
            self.table_entries()
        }
    }

    /// Index of `iova` into the table at `level`.
    pub fn index(&self, iova: u64, level: u32) -> u64 {
        (iova >> self.shift(level)) & (self.entries_at(level) - 1)
    }

    /// Whether a block (bits[1:0] = 01 above level 3) is allowed at `level` (no LPA/LPA2):
    /// 4K at L1 and L2, 16K and 64K at L2 only (ARM-FACTS §1).
    pub fn block_allowed(&self, level: u32) -> bool {
        match self.g {
            12 => level == 1 || level == 2,
            _ => level == 2,
        }
    }
}
