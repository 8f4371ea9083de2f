//! Swarm input generation: every batch of inputs draws new op-kind weights, some of them
//! zero. A batch without lookups or without clears reaches states (deep tables, long runs
//! of maps) that one fixed mix of ops rarely does; that is swarm testing (Groce et al.).
//!
//! Inputs are drawn straight from a seeded RNG, not decoded from bytes, so the i-th input
//! of a seed is always the same one and no fuzzing engine is needed.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::input::{Addr, ConfigChoice, Count, Input, Op, Size, MAX_OPS};

/// Inputs drawn with one set of weights.
pub const BATCH: usize = 256;

/// The op kinds generated, in the order of the weights.
pub const KINDS: [&str; 7] = [
    "map", "unmap", "lookup", "sync", "grace", "fail_nth", "clear",
];

/// A deterministic stream of inputs for one seed.
pub struct Swarm {
    rng: StdRng,
    weights: KindWeights<{ KINDS.len() }>,
}

/// Op-kind weights redrawn every [`BATCH`] inputs: each kind off with probability 1/4,
/// else weighted 1..=its cap; never all off.
pub struct KindWeights<const N: usize> {
    weights: [u32; N],
    caps: [u32; N],
    left: usize,
}

impl<const N: usize> KindWeights<N> {
    pub fn new(caps: [u32; N]) -> Self {
        KindWeights {
            weights: [0; N],
            caps,
            left: 0,
        }
    }

    pub fn get(&self) -> [u32; N] {
        self.weights
    }

    /// Called once per input: draws new weights at the start of each batch (then true).
    pub fn next_input(&mut self, rng: &mut StdRng) -> bool {
        if self.left == 0 {
            for (w, &cap) in self.weights.iter_mut().zip(&self.caps) {
                *w = if rng.random_ratio(1, 4) {
                    0
                } else {
                    rng.random_range(1..=cap)
                };
            }
            if self.weights.iter().all(|&w| w == 0) {
                self.weights[0] = 1;
            }
            self.left = BATCH;
            self.left -= 1;
            return true;
        }
        self.left -= 1;
        false
    }

    /// Weighs kind `needed` at least as much as each kind of `by` (a job run without a job
    /// prepared before it only ever fails).
    pub fn require(&mut self, needed: usize, by: &[usize]) {
        let most = by.iter().map(|&k| self.weights[k]).max().unwrap_or(0);
        self.weights[needed] = self.weights[needed].max(most);
    }

    /// A kind, by the current weights.
    pub fn pick(&self, rng: &mut StdRng) -> usize {
        let total: u32 = self.weights.iter().sum();
        let mut pick = rng.random_range(0..total);
        self.weights
            .iter()
            .position(|&w| {
                let hit = pick < w;
                pick = pick.saturating_sub(w);
                hit
            })
            .expect("pick < total")
    }
}

impl Swarm {
    pub fn new(seed: u64) -> Swarm {
        // `clear` and `fail_nth` weigh at most 2: at 1..=16 one op in seven freed the whole
        // domain, so few inputs grew past a handful of tables.
        let caps = KINDS.map(|k| {
            if matches!(k, "clear" | "fail_nth") {
                2
            } else {
                16
            }
        });
        Swarm {
            rng: StdRng::seed_from_u64(seed),
            weights: KindWeights::new(caps),
        }
    }

    /// The current op-kind weights (for the progress display and tests).
    pub fn weights(&self) -> [u32; KINDS.len()] {
        self.weights.get()
    }

    /// The next input: one random domain configuration and 1..=MAX_OPS ops.
    pub fn next_input(&mut self) -> Input {
        let _ = self.weights.next_input(&mut self.rng);
        let config = config(&mut self.rng);
        let n = self.rng.random_range(1..=MAX_OPS);
        let ops = (0..n).map(|_| self.op()).collect();
        Input { config, ops }
    }

    fn op(&mut self) -> Op {
        let kind = self.weights.pick(&mut self.rng);
        let r = &mut self.rng;
        match KINDS[kind] {
            "map" => Op::Map {
                iova: addr(r, 8),
                pa: addr(r, 4),
                size: size(r),
                count: count(r),
                // Readable 7 times in 8: a prot without r and w maps nothing (ok, 0 bytes),
                // and a quarter of the maps did that.
                prot: r.random::<u8>() | u8::from(r.random_ratio(7, 8)),
            },
            "unmap" => Op::Unmap {
                iova: live_addr(r),
                size: size(r),
                count: count(r),
            },
            "lookup" => Op::Lookup {
                iova: live_addr(r),
                offset: r.random(),
            },
            "sync" => Op::Sync,
            "grace" => Op::Grace,
            "fail_nth" => Op::FailNth(r.random()),
            _ => Op::Clear,
        }
    }
}

/// Any domain configuration the fuzz input can name, the tight window 1 in 4.
pub fn config(r: &mut StdRng) -> ConfigChoice {
    ConfigChoice {
        format: r.random(),
        granule: r.random(),
        ias: r.random(),
        oas: r.random(),
        coherent: r.random(),
        custom_alloc: r.random(),
        window: r.random_range(0..8),
        host_page: r.random(),
    }
}

/// Where a map goes: an interesting value from the pool (table and block boundaries), or
/// next to a live mapping `live` times in 20, rarely any number.
fn addr(r: &mut StdRng, live: u32) -> Addr {
    let k = r.random_range(0..20);
    if k < live {
        near_live(r)
    } else if k < 19 {
        Addr::Pool(r.random())
    } else {
        Addr::Raw(r.random())
    }
}

/// What an unmap or a lookup names: mostly a live mapping or a page next to it (the state
/// those ops test; drawn from the pool, 94 % of lookups found nothing), sometimes a pool
/// value, rarely anything.
fn live_addr(r: &mut StdRng) -> Addr {
    match r.random_range(0..20) {
        0..=14 => near_live(r),
        15..=18 => Addr::Pool(r.random()),
        _ => Addr::Raw(r.random()),
    }
}

/// The n-th live mapping: at its start half the time, a few pages before or into it often,
/// sometimes further away.
fn near_live(r: &mut StdRng) -> Addr {
    let pages = match r.random_range(0..10) {
        0..=4 => 0,
        5..=7 => r.random_range(-1..=3),
        _ => r.random(),
    };
    Addr::Live {
        n: r.random(),
        pages,
    }
}

/// Mostly a size the domain supports.
/// The granule half the time: drawn evenly, a third of the sizes were 1G blocks, most of
/// which left a small input space at once (`range`), so little got mapped.
fn size(r: &mut StdRng) -> Size {
    match r.random_range(0..20) {
        0..=9 => Size::Legal(0),
        10..=16 => Size::Legal(r.random()),
        17..=18 => Size::Pow2(r.random()),
        _ => Size::Raw(r.random()),
    }
}

/// Mostly a few pages, sometimes enough to cross a table.
fn count(r: &mut StdRng) -> Count {
    match r.random_range(0..20) {
        0..=15 => Count::Small(r.random()),
        16..=18 => Count::Span(r.random()),
        _ => Count::Raw(r.random()),
    }
}
