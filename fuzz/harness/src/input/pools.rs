//! Interesting values for one domain: table and block boundaries at every level, the top
//! of the input and output address spaces, concatenated-root table boundaries.

use ptfuzz_oracles::Model;

/// Per-domain pools the resolver draws from.
#[derive(Clone, Debug)]
pub struct Pools {
    pub iovas: Vec<u64>,
    pub pas: Vec<u64>,
    pub page_sizes: Vec<u64>,
    /// Entries in one full table, to make counts that cross tables.
    pub table_entries: u64,
    pub ia_size: u64,
}

impl Pools {
    pub fn new(model: &Model) -> Pools {
        let r = model.rules();
        let ia = 1u64 << r.ias;
        let oa = 1u64 << r.oas;
        let mut iovas = vec![0, ia / 2];
        for level in r.start_level..=3 {
            let span = 1u64 << r.level_shift(level);
            iovas.extend([span, 2 * span, ia - span, ia - 2 * span]);
            if level > r.start_level {
                // The last entry of the first table at this level, and the next table.
                let table = 1u64 << r.level_shift(level - 1);
                iovas.extend([table - span, table, ia - table]);
            }
        }
        let mut pas = vec![0, 0x4000_0000 % oa, oa / 2];
        for &p in &r.page_sizes() {
            pas.extend([p, oa - p, oa - 4 * p]);
        }
        iovas.sort_unstable();
        iovas.dedup();
        pas.sort_unstable();
        pas.dedup();
        Pools {
            iovas,
            pas,
            page_sizes: r.page_sizes(),
            table_entries: 1 << (r.granule.shift() - 3),
            ia_size: ia,
        }
    }
}
