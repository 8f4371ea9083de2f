//! What a domain is created from: format, granule, address sizes, coherency, placement.

use std::fmt;

/// Page-table formats, by their trace names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FormatKind {
    Arm64S1,
    Arm64S2,
    Arm32LpaeS1,
    Arm32LpaeS2,
    /// Armv7 short descriptor (io-pgtable-arm-v7s).
    Armv7s,
}

impl FormatKind {
    pub const ALL: [FormatKind; 4] = [
        FormatKind::Arm64S1,
        FormatKind::Arm64S2,
        FormatKind::Arm32LpaeS1,
        FormatKind::Arm32LpaeS2,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FormatKind::Arm64S1 => "arm64-s1",
            FormatKind::Arm64S2 => "arm64-s2",
            FormatKind::Arm32LpaeS1 => "arm32-lpae-s1",
            FormatKind::Arm32LpaeS2 => "arm32-lpae-s2",
            FormatKind::Armv7s => "armv7s",
        }
    }

    /// Parses a trace name. `armv7s` is accepted although it is not in [`Self::ALL`] yet
    /// (the fuzz inputs, which pick from `ALL`, do not generate it; traces can name it).
    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .chain([FormatKind::Armv7s])
            .find(|f| f.name() == s)
    }

    pub fn is_stage2(self) -> bool {
        matches!(self, FormatKind::Arm64S2 | FormatKind::Arm32LpaeS2)
    }
}

impl fmt::Display for FormatKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Translation granule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Granule {
    G4K,
    G16K,
    G64K,
}

impl Granule {
    pub const ALL: [Granule; 3] = [Granule::G4K, Granule::G16K, Granule::G64K];

    /// log2 of the granule size.
    pub const fn shift(self) -> u32 {
        match self {
            Granule::G4K => 12,
            Granule::G16K => 14,
            Granule::G64K => 16,
        }
    }

    pub const fn size(self) -> u64 {
        1 << self.shift()
    }

    pub fn name(self) -> &'static str {
        match self {
            Granule::G4K => "4k",
            Granule::G16K => "16k",
            Granule::G64K => "64k",
        }
    }

    pub fn from_size(size: u64) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.size() == size)
    }
}

impl fmt::Display for Granule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a stage-2 domain chooses between its (at most two) legal start levels: the level a
/// stage-1 walk of the same IAS starts at, or one deeper with concatenated root tables.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Concat {
    /// As Linux io-pgtable-arm: the stage-1 start level, one deeper (concatenating) only
    /// where the architecture forbids that level. Stage 1 always uses this.
    #[default]
    Required,
    /// The deepest legal start level: concatenate wherever the architecture allows it
    /// (what reaches QEMU's concatenated-root handling). Stage 2 only.
    Max,
}

impl Concat {
    pub const ALL: [Concat; 2] = [Concat::Required, Concat::Max];

    /// Trace name (`concat=...`).
    pub fn name(self) -> &'static str {
        match self {
            Concat::Required => "required",
            Concat::Max => "max",
        }
    }

    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == s)
    }
}

impl fmt::Display for Concat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Default physical address of the first table frame: QEMU virt's RAM base, so the same
/// bytes can later be loaded into a guest at the addresses they name.
pub const DEFAULT_PHYS_BASE: u64 = 0x4000_0000;

/// Everything a domain is created from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DomainConfig {
    pub format: FormatKind,
    pub granule: Granule,
    /// Input address size in bits.
    pub ias: u32,
    /// Output address size in bits.
    pub oas: u32,
    /// A coherent walker sees CPU writes at once; a non-coherent one only after a sync.
    pub coherent: bool,
    /// Physical address at which table frames start (granule aligned).
    pub phys_base: u64,
    /// Stage-2 start-level policy.
    pub concat: Concat,
    /// The host's allocation page (`hostpage=`): tables are carved from pages of this
    /// size, several to a page when they are smaller. `None`: the granule.
    pub host_page: Option<Granule>,
}

impl DomainConfig {
    pub fn new(format: FormatKind, granule: Granule, ias: u32, oas: u32) -> Self {
        DomainConfig {
            format,
            granule,
            ias,
            oas,
            coherent: true,
            phys_base: DEFAULT_PHYS_BASE,
            concat: Concat::Required,
            host_page: None,
        }
    }

    /// The host allocation page tables are packed into (the granule unless set).
    pub fn host_page(&self) -> Granule {
        self.host_page.unwrap_or(self.granule)
    }
}
