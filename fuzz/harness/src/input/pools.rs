//! Interesting values for one domain: table and block boundaries at every level, the top
//! of the input and output address spaces, concatenated-root table boundaries.

use ptfuzz_oracles::Model;

/// Per-domain pools the resolver draws from.
#[derive(Clone, Debug)]
pub struct Pools {
    pub iovas: Values,
    pub pas: Values,
    pub page_sizes: Values,
    /// Entries in one full table, to make counts that cross tables.
    pub table_entries: u64,
    pub ia_size: u64,
}

impl Pools {
    pub fn new(model: &Model) -> Pools {
        let r = model.rules();
        let ia = 1u64 << r.ias;
        let oa = 1u64 << r.oas;
        let mut iovas = Values::of(&[0, ia / 2]);
        for level in r.start_level..=r.last_level {
            let span = 1u64 << r.level_shift(level);
            iovas.extend([span, 2 * span, ia - span, ia - 2 * span]);
            if level > r.start_level {
                // The last entry of the first table at this level, and the next table.
                let table = 1u64 << r.level_shift(level - 1);
                iovas.extend([table - span, table, ia - table]);
            }
        }
        let mut pas = Values::of(&[0, 0x4000_0000 % oa, oa / 2]);
        for &p in model.page_sizes() {
            pas.extend([p, oa - p, oa - 4 * p]);
        }
        iovas.sort_dedup();
        pas.sort_dedup();
        Pools {
            iovas,
            pas,
            page_sizes: Values::of(model.page_sizes()),
            table_entries: 1 << (r.level_shift(r.last_level - 1) - r.level_shift(r.last_level)),
            ia_size: ia,
        }
    }
}

/// Up to 32 values, inline: pools are built for every input, and a `Vec` each would be three
/// heap allocations per execution (expensive under ASan). The largest pool (IOVAs at four
/// levels) holds 27.
#[derive(Clone, Copy, Debug)]
pub struct Values {
    len: usize,
    v: [u64; 32],
}

impl Values {
    fn of(values: &[u64]) -> Values {
        let mut out = Values { len: 0, v: [0; 32] };
        out.extend(values.iter().copied());
        out
    }

    fn extend(&mut self, values: impl IntoIterator<Item = u64>) {
        for x in values {
            self.v[self.len] = x;
            self.len += 1;
        }
    }

    fn sort_dedup(&mut self) {
        let v = &mut self.v[..self.len];
        v.sort_unstable();
        let mut kept = 0;
        for i in 0..v.len() {
            if kept == 0 || v[i] != v[kept - 1] {
                v[kept] = v[i];
                kept += 1;
            }
        }
        self.len = kept;
    }
}

impl std::ops::Deref for Values {
    type Target = [u64];
    fn deref(&self) -> &[u64] {
        &self.v[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_sort_and_dedup() {
        let mut v = Values::of(&[5, 1, 5, 3, 1]);
        v.extend([0, 3]);
        v.sort_dedup();
        assert_eq!(&*v, [0, 1, 3, 5]);
    }

    #[test]
    fn pools_hold_the_table_edges_of_a_four_level_domain() {
        let cfg = ptfuzz_engine::DomainConfig::new(
            ptfuzz_engine::FormatKind::Arm64S1,
            ptfuzz_engine::Granule::G4K,
            48,
            48,
        );
        let p = Pools::new(&Model::new(&cfg).unwrap());
        assert!(p.iovas.windows(2).all(|w| w[0] < w[1]), "sorted, distinct");
        for edge in [1 << 12, 1 << 21, 1 << 30, 1 << 39, (1 << 48) - (1 << 12)] {
            assert!(p.iovas.contains(&edge), "{edge:#x} in {:x?}", &*p.iovas);
        }
        assert_eq!(&*p.page_sizes, [1 << 12, 1 << 21, 1 << 30]);
    }
}
