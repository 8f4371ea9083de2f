//! Swarm inputs for the `prealloc` target: its op language (jobs, reservations, maps around
//! them) drawn straight from a seeded RNG with op-kind weights redrawn every batch, as the
//! page-table swarm does. Edited seeds, what the campaign ran before, kept the seeds' few
//! configurations and shapes. Places stay near the pool's addresses; the target resolves
//! runs, cleanups and unreserves to live jobs and reservations, so prepares and reserves
//! weigh at least as much as the ops that need them.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::swarm::{config, KindWeights};
use crate::input::prealloc::{POp, PreallocInput, Spot};
use crate::input::MAX_OPS;

/// The op kinds generated, in the order of the weights.
pub const KINDS: [&str; 13] = [
    "prepare",
    "run",
    "cleanup",
    "reserve",
    "unreserve",
    "map",
    "unmap",
    "lookup",
    "grace",
    "fail_nth",
    "map_reserved",
    "unmap_reserved",
    "bogus_unreserve",
];

/// A deterministic stream of `prealloc` inputs for one seed.
pub struct PreallocSwarm {
    rng: StdRng,
    weights: KindWeights<{ KINDS.len() }>,
}

impl PreallocSwarm {
    pub fn new(seed: u64) -> PreallocSwarm {
        // Failure injection and bogus unreserves end or waste an input: weigh them little.
        let caps = KINDS.map(|k| match k {
            "fail_nth" | "bogus_unreserve" => 2,
            _ => 16,
        });
        PreallocSwarm {
            rng: StdRng::seed_from_u64(seed),
            weights: KindWeights::new(caps),
        }
    }

    pub fn weights(&self) -> [u32; KINDS.len()] {
        self.weights.get()
    }

    /// The next input: one random domain configuration and 1..=MAX_OPS ops.
    pub fn next_input(&mut self) -> PreallocInput {
        if self.weights.next_input(&mut self.rng) {
            // Runs and cleanups need prepared jobs; unreserves and binds, reservations (the
            // target resolves them to the n-th live one, when there is one).
            let k = |name| KINDS.iter().position(|&n| n == name).expect("a kind");
            self.weights
                .require(k("prepare"), &[k("run"), k("cleanup")]);
            let users = [k("unreserve"), k("map_reserved"), k("unmap_reserved")];
            self.weights.require(k("reserve"), &users);
        }
        let config = config(&mut self.rng);
        let n = self.rng.random_range(1..=MAX_OPS);
        let ops = (0..n).map(|_| self.op()).collect();
        PreallocInput { config, ops }
    }

    fn op(&mut self) -> POp {
        let kind = self.weights.pick(&mut self.rng);
        let r = &mut self.rng;
        match KINDS[kind] {
            "prepare" => POp::Prepare {
                job: job(r),
                at: spot(r),
                pages: pages(r),
            },
            "run" => POp::Run {
                job: job(r),
                offset: r.random_range(0..8),
                pages: pages(r),
                big: r.random_ratio(1, 4),
                outside: r.random_ratio(1, 16),
            },
            "cleanup" => POp::Cleanup { job: job(r) },
            "reserve" => POp::Reserve {
                at: spot(r),
                pages: pages(r),
            },
            "unreserve" => POp::Unreserve {
                n: r.random_range(0..4),
                bogus: false,
            },
            "map" => POp::Map {
                at: spot(r),
                pages: pages(r) as u8,
                big: r.random_ratio(1, 4),
            },
            "unmap" => POp::Unmap {
                at: spot(r),
                pages: pages(r) as u8,
                big: r.random_ratio(1, 4),
            },
            "lookup" => POp::Lookup { at: spot(r) },
            "grace" => POp::Grace,
            "fail_nth" => POp::FailNth(r.random()),
            "map_reserved" => POp::MapReserved {
                n: r.random_range(0..4),
            },
            "unmap_reserved" => POp::UnmapReserved {
                n: r.random_range(0..4),
            },
            _ => POp::Unreserve {
                n: r.random(),
                bogus: true,
            },
        }
    }
}

/// Below 0xf0 (the target then takes the n-th ready job, if any) 7 times in 8.
fn job(r: &mut StdRng) -> u8 {
    if r.random_ratio(7, 8) {
        r.random_range(0..4)
    } else {
        r.random()
    }
}

/// A pool address, at it or a few pages from it mostly, anywhere rarely.
fn spot(r: &mut StdRng) -> Spot {
    let pages = match r.random_range(0..10) {
        0..=4 => 0,
        5..=8 => r.random_range(-4..=16),
        _ => r.random(),
    };
    Spot {
        base: r.random(),
        pages,
    }
}

/// A few pages mostly, sometimes enough to cross a table or two.
fn pages(r: &mut StdRng) -> u16 {
    match r.random_range(0..10) {
        0..=6 => r.random_range(0..16),
        7..=8 => r.random_range(16..1024),
        _ => r.random(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prealloc_run::execute_prealloc;
    use crate::trace::Command;

    /// The same seed gives the same inputs; and the inputs reach live state: many runs
    /// name a prepared job and succeed, and reservations are dropped again.
    #[test]
    fn inputs_are_deterministic_and_reach_jobs_and_reservations() {
        let mut a = PreallocSwarm::new(7);
        let mut b = PreallocSwarm::new(7);
        let (mut runs, mut runs_ok, mut unreserved) = (0, 0, 0);
        for _ in 0..1024 {
            let (x, y) = (a.next_input(), b.next_input());
            assert_eq!(format!("{x:?}"), format!("{y:?}"));
            let (trace, _) = execute_prealloc(&x).expect("the engine passes");
            for l in &trace.lines {
                let ok = l.expect.as_ref().is_some_and(|e| e.ok);
                match &l.command {
                    Command::JobRun { .. } => {
                        runs += 1;
                        runs_ok += usize::from(ok);
                    }
                    Command::Unreserve { .. } => unreserved += usize::from(ok),
                    _ => {}
                }
            }
        }
        assert!(runs > 300, "{runs} runs");
        assert!(runs_ok * 4 > runs, "{runs_ok} of {runs} runs succeeded");
        assert!(unreserved > 100, "{unreserved} unreserves succeeded");
    }
}
