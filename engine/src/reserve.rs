//! Refcounted VA reservation (the seeds' "allocate VA" design): `reserve_va` counts the
//! tables a range lacks, allocates them in one batch, installs every level down to the last
//! and pins each table on the way; while a table is pinned no map replaces it (`busy`) and
//! no unmap frees it. `unreserve_va` drops the pins and frees the tables of the range that
//! are then unpinned and empty, bottom-up. Reservations nest (each holds its own pins).

use crate::domain::Domain;
use crate::events::PoolId;
use crate::flush::FlushOps;
use crate::format::{Entry, Format, MAX_LEVELS};
use crate::ErrorKind;

impl<F: FlushOps> Domain<F> {
    /// Reserves `[iova, iova + size)`; returns the tables it allocated. Errors, in order:
    /// the range checks (`inval`, `range`), `exists` (a block leaf covers part of the range,
    /// so the last level cannot be installed), `nomem` (the batch; nothing changes).
    pub fn reserve_va(&mut self, iova: u64, size: u64) -> Result<u64, ErrorKind> {
        let end = self.check_va_range(iova, size)?;
        let need = self.missing_tables(iova, end)?;
        self.tables
            .reserve_pool(&mut self.mem, PoolId::Reserve, need)?;
        self.tables.set_source(Some(PoolId::Reserve));
        let mut seen = [u64::MAX; MAX_LEVELS];
        let step = self.last_table_span();
        let mut va = iova & !(step - 1);
        while va < end {
            self.pin_path(va, &mut seen, true);
            va += step;
        }
        self.tables.set_source(None);
        let left = self.tables.return_pool(&mut self.mem, PoolId::Reserve);
        debug_assert_eq!(left, Some(0), "the reservation batch was counted exactly");
        *self.reservations.entry((iova, size)).or_insert(0) += 1;
        Ok(need)
    }

    /// Drops one reservation of exactly `[iova, iova + size)` (`inval` if there is none),
    /// then frees every table on the range's paths that is unpinned and empty, deepest
    /// first. Returns how many tables it freed.
    pub fn unreserve_va(&mut self, iova: u64, size: u64) -> Result<u64, ErrorKind> {
        match self.reservations.get_mut(&(iova, size)) {
            Some(1) => {
                self.reservations.remove(&(iova, size));
            }
            Some(n) => *n -= 1,
            None => return Err(ErrorKind::Inval),
        }
        let end = iova + size;
        let mut seen = [u64::MAX; MAX_LEVELS];
        let step = self.last_table_span();
        let mut va = iova & !(step - 1);
        while va < end {
            self.pin_path(va, &mut seen, false);
            va += step;
        }
        let mut freed = 0;
        for level in (self.geo.start_level + 1..=self.geo.last_level).rev() {
            let span = 1u64 << self.geo.shift(level - 1);
            let mut va = iova & !(span - 1);
            while va < end {
                if let Some(parent) = self.find_table(va, level - 1) {
                    let slot = self.slot(parent, va, level - 1);
                    if let Entry::Table(child) = self.fmt.decode(self.rd(slot), level - 1) {
                        if self.tables.pins(child) == 0 && self.tables.live_entries(child) == 0 {
                            self.unlink_table(parent, slot, child, level, va, span);
                            freed += 1;
                        }
                    }
                }
                va += span;
            }
        }
        Ok(freed)
    }

    /// Whether `[iova, end)` lies inside one reservation.
    pub(crate) fn inside_reservation(&self, iova: u64, end: u64) -> bool {
        self.reservations
            .keys()
            .any(|&(a, s)| a <= iova && end <= a + s)
    }

    /// Reservations held, as ((iova, size), nesting count).
    pub fn reservations(&self) -> impl Iterator<Item = ((u64, u64), u32)> + '_ {
        self.reservations.iter().map(|(&k, &n)| (k, n))
    }

    /// Span of one last-level table.
    fn last_table_span(&self) -> u64 {
        1u64 << self.geo.shift(self.geo.last_level - 1)
    }

    /// Tables missing on the paths to every last-level table of `[iova, end)`, each counted
    /// once; `exists` if a block leaf is in the way.
    fn missing_tables(&self, iova: u64, end: u64) -> Result<u64, ErrorKind> {
        let step = self.last_table_span();
        let mut seen = [u64::MAX; MAX_LEVELS];
        let mut n = 0;
        let mut va = iova & !(step - 1);
        while va < end {
            let mut table = Some(self.root);
            for l in self.geo.start_level..self.geo.last_level {
                let next = match table {
                    Some(t) => match self.fmt.decode(self.rd(self.slot(t, va, l)), l) {
                        Entry::Table(c) => Some(c),
                        Entry::Invalid => None,
                        Entry::Leaf(_) => return Err(ErrorKind::Exists),
                    },
                    None => None,
                };
                let base = va & !((1u64 << self.geo.shift(l)) - 1);
                if next.is_none() && seen[l as usize + 1] != base {
                    n += 1;
                    seen[l as usize + 1] = base;
                }
                table = next;
            }
            va += step;
        }
        Ok(n)
    }

    /// Walks to the last-level table for `va`, linking missing tables (from the current
    /// source), and pins (or unpins) each table on the way once per walk sequence.
    fn pin_path(&mut self, va: u64, seen: &mut [u64; MAX_LEVELS], pin: bool) {
        let mut table = self.root;
        for l in self.geo.start_level..self.geo.last_level {
            let slot = self.slot(table, va, l);
            table = match self.fmt.decode(self.rd(slot), l) {
                Entry::Table(next) => next,
                Entry::Invalid if pin => self
                    .link_new_table(table, slot, l + 1)
                    .expect("the reservation batch holds every missing table"),
                e => panic!("reserved path at L{l} for {va:#x} holds {e:?}"),
            };
            let base = va & !((1u64 << self.geo.shift(l)) - 1);
            if seen[l as usize + 1] != base {
                seen[l as usize + 1] = base;
                if pin {
                    self.tables.pin(table);
                } else {
                    self.tables.unpin(table);
                }
            }
        }
    }
}
