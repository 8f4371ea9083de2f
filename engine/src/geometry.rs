//! The level layout of one domain as plain numbers the walker needs, computed once from the
//! [`Layout`] its format gives: shifts and index masks per level, table sizes, leaf sizes.
//! Nothing here knows a format.

use crate::config::{DomainConfig, Granule};
use crate::format::{AnyFormat, Format, Layout, MAX_LEVELS};

/// The per-domain level layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    pub granule: Granule,
    /// log2 of the unit tables are allocated in: the smallest table size (the granule for
    /// LPAE, 1 KiB for armv7s); host pages ([`crate::PhysMem`] frames) hold one or more.
    pub g: u32,
    pub ias: u32,
    pub oas: u32,
    pub start_level: u32,
    /// The deepest level (whose entries are the smallest leaves).
    pub last_level: u32,
    /// Bytes of one descriptor.
    pub entry_bytes: u32,
    /// log2 of the number of entries in the root (concatenated roots included).
    pub root_bits: u32,
    /// Per level: log2 of one entry's span.
    shifts: [u32; MAX_LEVELS],
    /// Per level: log2 of the entries of its tables.
    bits: [u32; MAX_LEVELS],
    /// Per level: index mask (entries - 1).
    masks: [u64; MAX_LEVELS],
    /// Per log2(size): the level a leaf of that size lives at and log2 of the entries it
    /// repeats over, or `NO_LEVEL`.
    leaf_by_log2: [(u8, u8); 64],
    /// Per level: log2 of the most entries one leaf there repeats over (armv7s 64K pages
    /// and 16M supersections: 4; 0 where every leaf is one entry).
    max_repeat: [u32; MAX_LEVELS],
}

const NO_LEVEL: u8 = u8::MAX;

/// Why a configuration cannot be a domain.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid domain configuration: {0}")]
pub struct ConfigError(pub String);

impl ConfigError {
    pub fn kind(&self) -> crate::ErrorKind {
        crate::ErrorKind::Inval
    }
}

impl Geometry {
    /// The geometry of `cfg` under its own format.
    pub fn new(cfg: &DomainConfig) -> Result<Geometry, ConfigError> {
        Geometry::with_format(cfg, &AnyFormat::for_kind(cfg.format))
    }

    /// The geometry `fmt` lays out for `cfg`, after the checks every format shares.
    pub fn with_format(cfg: &DomainConfig, fmt: &impl Format) -> Result<Geometry, ConfigError> {
        let layout = fmt.layout(cfg)?;
        let unit = cfg.granule.size();
        // Tables are placed from phys_base; a root of up to 16 granules (a concatenated LPAE
        // root) must be aligned to its size, so phys_base too. Counted in granules, not
        // allocation units, so a format with sub-granule units (armv7s) refuses the same.
        if !cfg.phys_base.is_multiple_of(16 * unit) {
            return Err(ConfigError(format!(
                "phys_base {:#x} is not aligned to 16 frames of {unit:#x}",
                cfg.phys_base
            )));
        }
        Ok(Geometry::from_layout(cfg, &layout))
    }

    fn from_layout(cfg: &DomainConfig, l: &Layout) -> Geometry {
        let (start, last) = (l.start_level, l.last_level);
        assert!(
            start <= last && (last as usize) < MAX_LEVELS,
            "levels {start}..={last}"
        );
        let mut leaf_by_log2 = [(NO_LEVEL, 0); 64];
        for (k, slot) in leaf_by_log2.iter_mut().enumerate() {
            if l.leaf_sizes & (1 << k) == 0 {
                continue;
            }
            // The shallowest level whose entries are no larger than the leaf.
            let level = (start..=last)
                .find(|&lv| l.shifts[lv as usize] <= k as u32)
                .expect("a leaf size at least one entry of the last level");
            *slot = (level as u8, (k as u32 - l.shifts[level as usize]) as u8);
        }
        let mut max_repeat = [0; MAX_LEVELS];
        for &(lv, r) in leaf_by_log2.iter().filter(|(lv, _)| *lv != NO_LEVEL) {
            let m = &mut max_repeat[lv as usize];
            *m = (*m).max(u32::from(r));
        }
        let mut masks = [0; MAX_LEVELS];
        for lv in start..=last {
            masks[lv as usize] = (1u64 << l.table_bits[lv as usize]) - 1;
        }
        Geometry {
            granule: cfg.granule,
            g: l.frame_shift,
            ias: cfg.ias,
            oas: cfg.oas,
            start_level: start,
            last_level: last,
            entry_bytes: l.entry_bytes,
            root_bits: l.table_bits[start as usize],
            shifts: l.shifts,
            bits: l.table_bits,
            masks,
            leaf_by_log2,
            max_repeat,
        }
    }

    /// log2 of the most entries a leaf at `level` repeats over.
    #[inline(always)]
    pub fn max_repeat(&self, level: u32) -> u32 {
        self.max_repeat[level as usize]
    }

    /// log2 of the span of one entry at `level`.
    #[inline(always)]
    pub fn shift(&self, level: u32) -> u32 {
        self.shifts[level as usize]
    }

    /// log2 of the entries of a table at `level`.
    #[inline(always)]
    pub fn table_bits(&self, level: u32) -> u32 {
        self.bits[level as usize]
    }

    /// Bytes of a table at `level`.
    pub fn table_bytes(&self, level: u32) -> u64 {
        (self.entry_bytes as u64) << self.table_bits(level)
    }

    /// Allocation units a table at `level` spans: its size in units, at least one. The
    /// unit is the format's smallest table (the granule for LPAE, 1 KiB for armv7s), so
    /// only a short LPAE root (fewer entries than a granule holds) is rounded up.
    pub fn table_frames(&self, level: u32) -> u64 {
        (self.table_bytes(level) >> self.g).max(1)
    }

    /// Index of `iova` in the table at `level`.
    #[inline(always)]
    pub fn index(&self, iova: u64, level: u32) -> usize {
        ((iova >> self.shifts[level as usize]) & self.masks[level as usize]) as usize
    }

    /// Number of units the root occupies (1, or 2..=16 when concatenated or larger: the
    /// 16 KiB armv7s first level is 16 units of 1 KiB).
    pub fn root_frames(&self) -> u64 {
        self.table_frames(self.start_level)
    }

    /// Whether some leaf lives at `level`.
    pub fn leaf_allowed(&self, level: u32) -> bool {
        self.leaf_by_log2.iter().any(|&(l, _)| l as u32 == level)
    }

    /// The level whose entries map `pgsize`, and log2 of the entries one leaf of that size
    /// occupies, if this domain supports it as a leaf.
    #[inline(always)]
    pub fn leaf_of_pgsize(&self, pgsize: u64) -> Option<(u32, u32)> {
        if !pgsize.is_power_of_two() {
            return None;
        }
        match self.leaf_by_log2[pgsize.trailing_zeros() as usize] {
            (NO_LEVEL, _) => None,
            (l, r) => Some((l as u32, r as u32)),
        }
    }

    /// The level whose entries map `pgsize`, if this domain supports it as a leaf.
    #[inline(always)]
    pub fn level_of_pgsize(&self, pgsize: u64) -> Option<u32> {
        self.leaf_of_pgsize(pgsize).map(|(l, _)| l)
    }

    /// Supported leaf sizes, ascending.
    pub fn page_sizes(&self) -> Vec<u64> {
        (0..64)
            .filter(|&k| self.leaf_by_log2[k].0 != NO_LEVEL)
            .map(|k| 1u64 << k)
            .collect()
    }

    /// Input address space size in bytes.
    pub fn ia_size(&self) -> u64 {
        1u64 << self.ias
    }

    pub fn oa_size(&self) -> u64 {
        1u64 << self.oas
    }
}
