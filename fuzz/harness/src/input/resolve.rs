//! Abstract ops → concrete trace commands, against the model's current state.

use ptfuzz_engine::{Concat, DomainConfig, FormatKind, Granule, Prot};
use ptfuzz_oracles::model::DomainRules;
use ptfuzz_oracles::Model;

use super::{Addr, ConfigChoice, Count, Op, Pools, Size, MAX_PAGES, TIGHT_WINDOW};
use crate::trace::Command;

/// Most spans are at most this many pages.
const SPAN_PAGES: u64 = 64;

const IAS_POOL: [u32; 8] = [32, 36, 39, 40, 42, 44, 47, 48];

/// The bit of `ConfigChoice::format` that asks a stage-2 domain for `concat=max`.
pub const CONCAT_MAX_BIT: u8 = 0x40;

/// Formats a fuzz input can pick: the LPAE ones, then armv7s.
pub const FUZZED_FORMATS: [FormatKind; 5] = [
    FormatKind::Arm64S1,
    FormatKind::Arm64S2,
    FormatKind::Arm32LpaeS1,
    FormatKind::Arm32LpaeS2,
    FormatKind::Armv7s,
];

/// The format a choice picks, from the low three bits of its format byte (bit 6 is the
/// concatenation policy, independent of the format).
pub fn format_of(c: &ConfigChoice) -> FormatKind {
    FUZZED_FORMATS[(c.format & 7) as usize % FUZZED_FORMATS.len()]
}

/// A configuration the engine must accept, derived from any choice.
pub fn resolve_config(c: &ConfigChoice) -> (DomainConfig, bool) {
    let format = format_of(c);
    let granule = match format {
        FormatKind::Arm32LpaeS1 | FormatKind::Arm32LpaeS2 | FormatKind::Armv7s => Granule::G4K,
        _ => Granule::ALL[c.granule as usize % 3],
    };
    let (lo, hi) = match format {
        FormatKind::Arm32LpaeS1 => (32, 32),
        FormatKind::Arm32LpaeS2 => (32, 40),
        FormatKind::Armv7s => (32, 32),
        _ => (32, 48),
    };
    let pick = |v: u8| {
        let x = if v & 0x80 == 0 {
            IAS_POOL[v as usize % IAS_POOL.len()]
        } else {
            lo + (v as u32 % (hi - lo + 1))
        };
        x.clamp(lo, hi)
    };
    let ias = pick(c.ias);
    let oas_hi = if format == FormatKind::Arm32LpaeS1 {
        40
    } else {
        hi
    };
    let mut oas = pick(c.oas).clamp(32, oas_hi);
    if format.is_stage2() {
        oas = oas.max(ias);
    }
    let mut cfg = DomainConfig::new(format, granule, ias, oas);
    cfg.coherent = c.coherent;
    // Bit 6 of the format byte: stage 2 with the deepest start level (`concat=max`).
    if format.is_stage2() && c.format & CONCAT_MAX_BIT != 0 {
        cfg.concat = Concat::Max;
    }
    // Stage 2 without a legal start level (16K, IAS 41): widen the output size.
    while DomainRules::new(&cfg).is_err() && cfg.oas < oas_hi {
        cfg.oas += 1;
    }
    if DomainRules::new(&cfg).is_err() {
        cfg = DomainConfig::new(FormatKind::Arm64S1, Granule::G4K, 48, 48);
    }
    let host = match c.host_page % 4 {
        2 => Granule::G16K,
        3 => Granule::G64K,
        _ => cfg.granule,
    };
    if host.size() > cfg.granule.size() {
        cfg.host_page = Some(host);
    }
    if c.window >= TIGHT_WINDOW {
        // The last 16 or 32 frames below 2^OAS (the base stays aligned to 16 granules,
        // the largest concatenated root): a root of up to 16 frames and few tables more.
        let frames = 16u64 << (c.window - TIGHT_WINDOW).min(1);
        cfg.phys_base = (1u64 << cfg.oas) - frames * cfg.granule.size();
    }
    let custom = c.custom_alloc && matches!(format, FormatKind::Arm64S1 | FormatKind::Arm64S2);
    (cfg, custom)
}

/// Turns ops into commands for domain `dom`.
pub(crate) struct Resolver {
    pub pools: Pools,
    pub dom: crate::trace::Name,
}

impl Resolver {
    fn pgsize(&self, s: Size) -> u64 {
        match s {
            Size::Legal(i) => self.pools.page_sizes[i as usize % self.pools.page_sizes.len()],
            Size::Pow2(b) => 1u64 << (b % 64),
            Size::Raw(v) => v,
        }
    }

    fn count(&self, c: Count) -> u64 {
        match c {
            Count::Small(n) => 1 + (n % 8) as u64,
            // One span in eight is about a whole table (covering, filling or just crossing
            // one); the rest cross an edge with at most 64 pages: every page costs the
            // oracles work, and an edge is crossed as well by a few pages placed at it.
            Count::Span(n) => {
                let n = u64::from(n);
                if n % 8 == 0 {
                    (self.pools.table_entries - 8 + (n / 8) % 24).min(MAX_PAGES)
                } else {
                    1 + (n / 8) % SPAN_PAGES
                }
            }
            Count::Raw(v) => v,
        }
    }

    /// Keeps the work of one op bounded: a supported page size maps at most `MAX_PAGES`,
    /// unless the range is past the input space anyway (a `range` error, no work).
    fn cap(&self, count: u64, pgsize: u64, iova: u64) -> u64 {
        let legal = self.pools.page_sizes.contains(&pgsize);
        let past_ias = count
            .checked_mul(pgsize)
            .and_then(|s| iova.checked_add(s))
            .is_none_or(|end| end > self.pools.ia_size);
        if legal && !past_ias {
            count.min(MAX_PAGES)
        } else {
            count
        }
    }

    fn addr(&self, a: Addr, pool: &[u64], pgsize: u64, model: &Model, pa: bool) -> u64 {
        let align = |v: u64| {
            if pgsize.is_power_of_two() {
                v & !(pgsize - 1)
            } else {
                v
            }
        };
        match a {
            Addr::Pool(i) => align(pool[i as usize % pool.len()]),
            Addr::Live { n, pages } => {
                let live = model.leaf_count();
                if live == 0 {
                    return align(pool[n as usize % pool.len()]);
                }
                let (iova, out, size, _) = model.leaf_nth(n as usize % live).expect("n < live");
                let base = if pa { out } else { iova };
                let step = if pgsize.is_power_of_two() {
                    pgsize
                } else {
                    size
                };
                align(base.wrapping_add((pages as i64 as u64).wrapping_mul(step)))
            }
            Addr::Raw(v) => v,
        }
    }

    /// The command for `op`, given the model's state now.
    pub fn command(&self, op: &Op, model: &Model) -> Command {
        let dom = self.dom.clone();
        let p = &self.pools;
        match *op {
            Op::Map {
                iova,
                pa,
                size,
                count,
                prot,
            } => {
                let pgsize = self.pgsize(size);
                let iova = self.addr(iova, &p.iovas, pgsize, model, false);
                let count = self.cap(self.count(count), pgsize, iova);
                // Mostly readable and/or writable; the rest exercises "no permission".
                let mut prot = Prot::from_bits_truncate(prot);
                if prot.bits() & 0xc0 != 0 && !prot.readable() && !prot.writable() {
                    prot = prot | Prot::READ;
                }
                Command::Map {
                    dom,
                    iova,
                    pa: self.addr(pa, &p.pas, pgsize, model, true),
                    pgsize,
                    count,
                    prot,
                }
            }
            Op::Unmap { iova, size, count } => {
                let pgsize = self.pgsize(size);
                let iova = self.addr(iova, &p.iovas, pgsize, model, false);
                let count = self.cap(self.count(count), pgsize, iova);
                Command::Unmap {
                    dom,
                    iova,
                    pgsize,
                    count,
                }
            }
            Op::Lookup { iova, offset } => {
                let g = p.page_sizes[0];
                let base = self.addr(iova, &p.iovas, g, model, false);
                Command::Lookup {
                    dom,
                    iova: base.wrapping_add(offset as u64 % (2 * g)),
                }
            }
            Op::Sync => Command::Sync { dom },
            Op::Grace => Command::Grace { dom },
            Op::FailNth(n) => Command::FailNth {
                dom,
                n: (n % 8) as u64,
            },
            Op::Clear => Command::Clear { dom },
        }
    }
}
