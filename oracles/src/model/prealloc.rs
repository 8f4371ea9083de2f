//! The model of preallocation jobs and VA reservations (docs/SEMANTICS.md,
//! "Preallocation"): outcomes, pool sizes and pins, from the model's own node set. The
//! worst-case count is computed here from the domain rules, not with the engine's code.

use ptfuzz_engine::error::{ErrorKind, MapError};
use ptfuzz_engine::prot::Prot;

use super::Model;

/// A prepared job as the model sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelJob {
    pub iova: u64,
    pub size: u64,
    /// Pages its pool was given.
    pub pages: u64,
    /// Pages still in its pool.
    pub left: u64,
    pub ran: bool,
}

impl Model {
    /// `[iova, iova + size)` checked as every range op does: end, or `inval`/`range`.
    fn va_range(&self, iova: u64, size: u64) -> Result<u64, ErrorKind> {
        let g = self.sizes[0];
        if size == 0 || !iova.is_multiple_of(g) || !size.is_multiple_of(g) {
            return Err(ErrorKind::Inval);
        }
        match iova.checked_add(size) {
            Some(e) if e <= self.ias_end() => Ok(e),
            _ => Err(ErrorKind::Range),
        }
    }

    /// Worst case: for every node level, the node spans the range meets.
    pub fn worst_case(&self, iova: u64, size: u64) -> Result<u64, ErrorKind> {
        let end = self.va_range(iova, size)?;
        Ok((self.rules.start_level + 1..=self.rules.last_level)
            .map(|l| {
                let span = self.table_span(l);
                end.div_ceil(span) - iova / span
            })
            .sum())
    }

    pub fn job_prepare(&mut self, job: u32, iova: u64, size: u64) -> Result<u64, ErrorKind> {
        let n = self.worst_case(iova, size)?;
        if self.jobs.contains_key(&job) {
            return Err(ErrorKind::Exists);
        }
        self.tables
            .reserve_frames(n)
            .map_err(|_| ErrorKind::Nomem)?;
        self.jobs.insert(
            job,
            ModelJob {
                iova,
                size,
                pages: n,
                left: n,
                ran: false,
            },
        );
        Ok(n)
    }

    pub fn job_run(
        &mut self,
        job: u32,
        iova: u64,
        pa: u64,
        pgsize: u64,
        count: u64,
        prot: Prot,
    ) -> Result<u64, MapError> {
        let left = match self.jobs.get_mut(&job) {
            Some(j) if !j.ran => {
                j.ran = true;
                j.left
            }
            _ => return Err(MapError::new(ErrorKind::Inval, 0)),
        };
        self.tables.drawing = Some(left);
        let r = self.map(iova, pa, pgsize, count, prot);
        let left = self.tables.drawing.take().expect("set above");
        self.tables.dry = false;
        self.jobs.get_mut(&job).expect("pending").left = left;
        r
    }

    pub fn job_cleanup(&mut self, job: u32) -> Result<u64, ErrorKind> {
        let j = self.jobs.remove(&job).ok_or(ErrorKind::Inval)?;
        self.tables.return_frames(j.left);
        Ok(j.left)
    }

    /// Pending jobs by id.
    pub fn jobs(&self) -> impl Iterator<Item = (u32, &ModelJob)> + '_ {
        self.jobs.iter().map(|(&k, j)| (k, j))
    }

    /// Frames set aside in pools.
    pub fn pooled(&self) -> u64 {
        self.tables.pooled
    }

    /// Total reservation pins over all nodes.
    pub fn total_pins(&self) -> u64 {
        self.tables.pins.values().map(|&p| p as u64).sum()
    }

    /// Reservations held: ((iova, size), nesting count).
    pub fn reservations(&self) -> impl Iterator<Item = ((u64, u64), u32)> + '_ {
        self.reservations.iter().map(|(&k, &n)| (k, n))
    }

    /// Whether `[iova, end)` lies inside one reservation.
    pub fn inside_reservation(&self, iova: u64, end: u64) -> bool {
        self.reservations
            .keys()
            .any(|&(a, s)| a <= iova && end <= a + s)
    }

    pub fn reserve_va(&mut self, iova: u64, size: u64) -> Result<u64, ErrorKind> {
        let end = self.va_range(iova, size)?;
        // A block leaf (above the last level) in the range: no last level. An armv7s 64K
        // large page lives in a last-level table, like its 4K pages.
        let last = self.rules.last_level;
        let largest_last = self
            .sizes
            .iter()
            .copied()
            .filter(|&s| self.leaf_level(s) == last);
        if self.leaf_larger_meeting(iova, end, largest_last.max().unwrap_or(self.sizes[0])) {
            return Err(ErrorKind::Exists);
        }
        let levels = self.rules.start_level + 1..=self.rules.last_level;
        let mut missing = Vec::new();
        for l in levels.clone() {
            for b in self.tables.bases_meeting(l, iova, end) {
                if !self.tables.contains(l, b) {
                    missing.push((l, b));
                }
            }
        }
        self.tables
            .reserve_frames(missing.len() as u64)
            .map_err(|_| ErrorKind::Nomem)?;
        for &(l, b) in &missing {
            self.tables.insert_reserved(l, b);
        }
        for l in levels {
            let bases: Vec<u64> = self.tables.bases_meeting(l, iova, end).collect();
            for b in bases {
                *self.tables.pins.entry((l, b)).or_insert(0) += 1;
            }
        }
        *self.reservations.entry((iova, size)).or_insert(0) += 1;
        Ok(missing.len() as u64)
    }

    pub fn unreserve_va(&mut self, iova: u64, size: u64) -> Result<u64, ErrorKind> {
        match self.reservations.get_mut(&(iova, size)) {
            Some(1) => {
                self.reservations.remove(&(iova, size));
            }
            Some(n) => *n -= 1,
            None => return Err(ErrorKind::Inval),
        }
        let end = iova + size;
        let mut freed = 0;
        for l in (self.rules.start_level + 1..=self.rules.last_level).rev() {
            let bases: Vec<u64> = self.tables.bases_meeting(l, iova, end).collect();
            for b in bases {
                match self.tables.pins.get_mut(&(l, b)) {
                    Some(1) => {
                        self.tables.pins.remove(&(l, b));
                    }
                    Some(p) => *p -= 1,
                    None => panic!("model: reserved node L{l} {b:#x} has no pin"),
                }
            }
            // Deepest first, so a parent emptied by its child's free goes too.
            for b in self.tables.bases_meeting(l, iova, end).collect::<Vec<_>>() {
                if self.tables.contains(l, b) && !self.tables.pinned(l, b) && self.node_empty(l, b)
                {
                    self.tables.free_node(l, b);
                    freed += 1;
                }
            }
        }
        Ok(freed)
    }

    /// A node with no child node and no leaf in its span.
    fn node_empty(&self, level: u32, base: u64) -> bool {
        let span = self.table_span(level);
        let child =
            level < self.rules.last_level && self.tables.any_node_in(level + 1, base, base + span);
        !child && !self.any_leaf_meeting(base, base + span)
    }
}
