//! Jobs on a domain: prepare (count + reserve into the job's pool), run (a map whose every
//! table comes from that pool, inside a no-allocate section), cleanup (return leftovers).

use crate::domain::Domain;
use crate::events::PoolId;
use crate::flush::FlushOps;
use crate::noalloc;
use crate::prot::Prot;
use crate::{ErrorKind, MapError};

use super::count::worst_case_tables;

/// A prepared job: the range it was counted for and what it reserved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Job {
    pub iova: u64,
    pub size: u64,
    /// Pages reserved into its pool at prepare.
    pub pages: u64,
    /// Whether it has run (a job runs at most once).
    pub ran: bool,
}

impl<F: FlushOps> Domain<F> {
    /// The end of `[iova, iova + size)` after the checks every range op shares: a zero size
    /// or one not aligned to the granule is `inval`, a range past 2^IAS (or wrapping) `range`.
    pub(crate) fn check_va_range(&self, iova: u64, size: u64) -> Result<u64, ErrorKind> {
        let g = self.geometry().granule.size();
        if size == 0 || !iova.is_multiple_of(g) || !size.is_multiple_of(g) {
            return Err(ErrorKind::Inval);
        }
        iova.checked_add(size)
            .filter(|&e| e <= self.geometry().ia_size())
            .ok_or(ErrorKind::Range)
    }

    /// Worst-case number of table pages a map of the range can need (see
    /// [`worst_case_tables`]).
    pub fn prealloc_count(&self, iova: u64, size: u64) -> Result<u64, ErrorKind> {
        self.check_va_range(iova, size)?;
        Ok(worst_case_tables(self.geometry(), iova, size))
    }

    /// Prepares job `job` for the range: counts and reserves its pool. Errors, in order:
    /// the range checks, `exists` (the id is pending), `nomem` (nothing is taken).
    pub fn job_prepare(&mut self, job: u32, iova: u64, size: u64) -> Result<u64, ErrorKind> {
        let n = self.prealloc_count(iova, size)?;
        if self.jobs.contains_key(&job) {
            return Err(ErrorKind::Exists);
        }
        self.tables
            .reserve_pool(&mut self.mem, PoolId::Job(job), n)?;
        self.jobs.insert(
            job,
            Job {
                iova,
                size,
                pages: n,
                ran: false,
            },
        );
        Ok(n)
    }

    /// Runs job `job`: a map whose tables all come from the job's pool (`budget` when it
    /// runs dry). `inval` with nothing mapped if the job is not pending or already ran; the
    /// map's own checks follow. The whole call is a no-allocate section.
    pub fn job_run(
        &mut self,
        job: u32,
        iova: u64,
        pa: u64,
        pgsize: u64,
        count: u64,
        prot: Prot,
    ) -> Result<u64, MapError> {
        match self.jobs.get_mut(&job) {
            Some(j) if !j.ran => j.ran = true,
            _ => return Err(MapError::new(ErrorKind::Inval, 0)),
        }
        let _section = noalloc::Section::enter();
        self.tables.set_source(Some(PoolId::Job(job)));
        let r = self.map(iova, pa, pgsize, count, prot);
        self.tables.set_source(None);
        r
    }

    /// Cleans job `job` up (run or not): its leftover pages go back to the allocator.
    /// Returns how many; `inval` if the job is not pending.
    pub fn job_cleanup(&mut self, job: u32) -> Result<u64, ErrorKind> {
        self.jobs.remove(&job).ok_or(ErrorKind::Inval)?;
        Ok(self
            .tables
            .return_pool(&mut self.mem, PoolId::Job(job))
            .unwrap_or(0))
    }

    /// Pending jobs, by id.
    pub fn jobs(&self) -> impl Iterator<Item = (u32, &Job)> + '_ {
        self.jobs.iter().map(|(&id, j)| (id, j))
    }
}
