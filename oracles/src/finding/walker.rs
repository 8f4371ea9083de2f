//! The walker's findings: translations of the device view against the model's leaves.

use std::fmt;

use ptfuzz_engine::config::Granule;
use ptfuzz_engine::prot::Prot;

use crate::walker::{Fault, LeafAttrs, Translation};

/// A leaf of the model: input start, output address, size, prot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelLeaf {
    pub start: u64,
    pub pa: u64,
    pub size: u64,
    pub prot: Prot,
}

impl ModelLeaf {
    pub fn new((start, pa, size, prot): (u64, u64, u64, Prot)) -> Self {
        ModelLeaf {
            start,
            pa,
            size,
            prot,
        }
    }
}

impl fmt::Display for ModelLeaf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:#x}+{:#x} -> pa {:#x} (prot {})",
            self.start, self.size, self.pa, self.prot
        )
    }
}

/// A valid leaf descriptor as an in-order walk found it in the tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeafSeen {
    pub level: u32,
    pub iova: u64,
    pub size: u64,
    pub oa: u64,
    pub attrs: LeafAttrs,
    /// Where the descriptor sits, and its value.
    pub desc_pa: u64,
    pub desc: u64,
}

impl fmt::Display for LeafSeen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "L{} leaf at iova {:#x} size {:#x} -> pa {:#x} {} (descriptor at pa {:#x} = {:#018x})",
            self.level, self.iova, self.size, self.oa, self.attrs, self.desc_pa, self.desc
        )
    }
}

finding_enum! {
    /// The walker against the model (model values first, then what the tables gave).
    pub enum WalkerFinding: "walker" {
        /// The model and the domain describe different address spaces.
        ModelConfig {
            model: (Granule, u32, u32),
            domain: (Granule, u32, u32),
        } = "model-config" (
            "model is for granule {} ias {} oas {}, domain is {} ias {} oas {}",
            .model.0, .model.1, .model.2, .domain.0, .domain.1, .domain.2
        ),
        /// A byte the model maps faults in the tables.
        MappedFaults { iova: u64, expected_pa: u64, leaf: ModelLeaf, actual: Fault } = "mapped-faults" (
            "iova {iova:#x}: model maps it to pa {expected_pa:#x} (leaf {leaf}), tables give {actual}"
        ),
        LeafOutputAddress {
            iova: u64, expected_pa: u64, leaf: ModelLeaf, expected_attrs: LeafAttrs, actual: Translation,
        } = "leaf-output-address" (
            "iova {iova:#x}: output address differs: expected pa {expected_pa:#x} via leaf {leaf} \
             {expected_attrs}, actual {actual}"
        ),
        LeafSize {
            iova: u64, expected_pa: u64, leaf: ModelLeaf, expected_attrs: LeafAttrs, actual: Translation,
        } = "leaf-size" (
            "iova {iova:#x}: leaf size differs: expected pa {expected_pa:#x} via leaf {leaf} \
             {expected_attrs}, actual {actual}"
        ),
        LeafAttributes {
            iova: u64, expected_pa: u64, leaf: ModelLeaf, expected_attrs: LeafAttrs, actual: Translation,
        } = "leaf-attributes" (
            "iova {iova:#x}: attributes differ: expected pa {expected_pa:#x} via leaf {leaf} \
             {expected_attrs}, actual {actual}"
        ),
        /// Attribute or ignored bits set in a table descriptor on the walk.
        TableDescriptorBits {
            iova: u64, expected_pa: u64, leaf: ModelLeaf, actual: Translation, table_bits: u64,
        } = "table-descriptor-bits" (
            "iova {iova:#x}: table descriptor bits differ: expected none on the walk to pa \
             {expected_pa:#x} via leaf {leaf}, actual {actual} with table bits {table_bits:#x}"
        ),
        /// An unmapped byte gives another fault than a translation fault.
        UnmappedWrongFault { iova: u64, actual: Fault } = "unmapped-wrong-fault" (
            "iova {iova:#x}: unmapped in the model, expected a translation fault, actual {actual}"
        ),
        /// An unmapped byte translates.
        UnmappedTranslates { iova: u64, actual: Translation } = "unmapped-translates" (
            "iova {iova:#x}: unmapped in the model (expected a translation fault), actual {actual}"
        ),
        /// A leaf in the tables where the model has a different one.
        LeafDiffers { found: LeafSeen, model: ModelLeaf, model_attrs: LeafAttrs } = "leaf-differs-from-model" (
            "{found}: the model has leaf {model} {model_attrs}"
        ),
        /// A leaf in the tables where the model maps nothing.
        LeafNotInModel { found: LeafSeen } = "leaf-not-in-model" (
            "{found}: the model has no mapping there"
        ),
        /// A model leaf the tables do not hold.
        ModelLeafMissing { model: ModelLeaf } = "model-leaf-missing" (
            "the model maps leaf {model}, the tables hold no leaf starting there"
        ),
        LeafCount { tables: u64, model: u64 } = "leaf-count" (
            "tables hold {tables} leaves, model has {model}"
        ),
        /// Armv7 short descriptors: an encoding the architecture's walk cannot use (a
        /// 16-slot group that differs, PA bits above 31, a read outside memory).
        ShortMalformed { iova: u64, why: String } = "short-malformed" (
            "walking {iova:#x}: {why}"
        ),
        /// Armv7 short descriptors: (output address, leaf size) of the walk against the model's.
        ShortLeafDiffers { iova: u64, tables: Option<(u64, u64)>, model: Option<(u64, u64)> } = "short-leaf-differs" (
            "iova {iova:#x}: tables give (pa, size) {tables:x?}, model {model:x?}"
        ),
    }
}
