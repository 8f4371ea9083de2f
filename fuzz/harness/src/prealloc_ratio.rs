//! The over-reservation workload: many small VM_BIND-style jobs over a sparse address
//! space, prepared in batches and run in shuffled order, as a GPU driver would queue them.
//! Reports pages reserved (the worst-case count, which for 4K/48-bit is the seeds' formula)
//! against pages the jobs actually took.

use ptfuzz_engine::{Domain, DomainConfig, FormatKind, Granule, Prot};
use ptfuzz_oracles::budget::BudgetStats;

/// Workload shape.
#[derive(Clone, Copy, Debug)]
pub struct Workload {
    pub granule: Granule,
    pub jobs: u64,
    /// Jobs prepared before the batch runs (pending at once).
    pub batch: u64,
    /// Largest job, in granule pages (sizes are uniform in 1..=max_pages).
    pub max_pages: u64,
    /// Distinct 1G regions the jobs land in (smaller = denser).
    pub regions: u64,
    pub seed: u64,
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Runs the workload on an arm64-s1 48-bit domain; the totals as the budget report counts them.
pub fn run_workload(w: &Workload) -> BudgetStats {
    let cfg = DomainConfig::new(FormatKind::Arm64S1, w.granule, 48, 48);
    let mut d = Domain::new(cfg).expect("arm64-s1 48-bit is valid");
    let g = w.granule.size();
    let mut rng = Rng(w.seed.max(1));
    let region_bases: Vec<u64> = (0..w.regions)
        .map(|_| (rng.next() % (1 << 18)) << 30)
        .collect();
    let mut stats = BudgetStats::default();
    let mut next_job = 0u32;
    let mut done = 0;
    while done < w.jobs {
        let n = w.batch.min(w.jobs - done);
        let mut pending = Vec::new();
        for _ in 0..n {
            let pages = 1 + rng.next() % w.max_pages;
            let base = region_bases[(rng.next() % w.regions) as usize];
            let iova = base + (rng.next() % ((1 << 30) / g - pages)) * g;
            let job = next_job;
            next_job += 1;
            let reserved = d
                .job_prepare(job, iova, pages * g)
                .expect("room for the pool");
            stats.prepared += 1;
            stats.reserved += reserved;
            pending.push((job, iova, pages, reserved));
        }
        // Run in a shuffled order; a bind over an already-bound range is skipped (unmapped
        // first, as VM_BIND would do in an unmap op of the same job stream).
        for i in (1..pending.len()).rev() {
            pending.swap(i, (rng.next() % (i as u64 + 1)) as usize);
        }
        for (job, iova, pages, reserved) in pending {
            for k in 0..pages {
                let _ = d.unmap(iova + k * g, g, 1);
            }
            d.job_run(
                job,
                iova,
                iova & ((1 << 40) - 1),
                g,
                pages,
                Prot::READ | Prot::WRITE,
            )
            .expect("a job inside its range never runs dry");
            stats.run += 1;
            let left = d.job_cleanup(job).expect("pending");
            stats.used += reserved - left;
        }
        done += n;
    }
    stats
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Worst-case pages never run dry and are at least what was used.
    #[test]
    fn small_workload_accounts() {
        let w = Workload {
            granule: Granule::G4K,
            jobs: 64,
            batch: 8,
            max_pages: 16,
            regions: 4,
            seed: 3,
        };
        let s = run_workload(&w);
        assert_eq!((s.prepared, s.run), (64, 64));
        assert!(s.used > 0 && s.used <= s.reserved, "{s}");
    }
}
