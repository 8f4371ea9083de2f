//! Swarm inputs for the `ioasid` target: its op language drawn straight from a seeded RNG
//! with op-kind weights redrawn every batch, as the page-table and prealloc swarms do.
//! Edited seeds, what the campaign ran before, kept the seeds' few allocator scripts and
//! op mixes. The target resolves IDs, groups and domains by position among what the model
//! holds, so the ops that name an ID weigh no more than allocations, unregisters no more
//! than registers, and unmaps and translations no more than maps.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::swarm::KindWeights;
use crate::ioasid::{IdPick, IoOp, IoasidInput, Script, MAX_IO_OPS};

/// The op kinds generated, in the order of the weights.
pub const KINDS: [&str; 11] = [
    "alloc",
    "free",
    "find",
    "set_data",
    "register",
    "unregister",
    "bind",
    "unbind",
    "translate",
    "map",
    "unmap",
];

/// A deterministic stream of `ioasid` inputs for one seed.
pub struct IoasidSwarm {
    rng: StdRng,
    weights: KindWeights<{ KINDS.len() }>,
}

impl IoasidSwarm {
    pub fn new(seed: u64) -> IoasidSwarm {
        IoasidSwarm {
            rng: StdRng::seed_from_u64(seed),
            weights: KindWeights::new([16; KINDS.len()]),
        }
    }

    pub fn weights(&self) -> [u32; KINDS.len()] {
        self.weights.get()
    }

    /// The next input: three allocator scripts and 1..=MAX_IO_OPS ops.
    pub fn next_input(&mut self) -> IoasidInput {
        if self.weights.next_input(&mut self.rng) {
            let k = |name| KINDS.iter().position(|&n| n == name).expect("a kind");
            let by_id = ["free", "find", "set_data", "bind", "unbind", "translate"].map(k);
            self.weights.require(k("alloc"), &by_id);
            self.weights.require(k("register"), &[k("unregister")]);
            self.weights
                .require(k("map"), &[k("unmap"), k("translate")]);
            self.weights
                .require(k("bind"), &[k("translate"), k("unbind")]);
        }
        let scripts = [(); 3].map(|_| Script(self.rng.random()));
        let n = self.rng.random_range(1..=MAX_IO_OPS);
        let ops = (0..n).map(|_| self.op()).collect();
        IoasidInput { scripts, ops }
    }

    fn op(&mut self) -> IoOp {
        let kind = self.weights.pick(&mut self.rng);
        let r = &mut self.rng;
        match KINDS[kind] {
            "alloc" => IoOp::Alloc {
                set: r.random(),
                range: r.random(),
                data: r.random(),
            },
            "free" => IoOp::Free { id: id(r) },
            "find" => IoOp::Find {
                id: id(r),
                set: r.random(),
                getter: r.random(),
            },
            "set_data" => IoOp::SetData {
                id: id(r),
                data: r.random(),
            },
            "register" => IoOp::Register {
                ops: r.random(),
                private: r.random(),
            },
            "unregister" => IoOp::Unregister { pick: r.random() },
            "bind" => IoOp::Bind {
                id: id(r),
                dom: r.random(),
            },
            "unbind" => IoOp::Unbind { id: id(r) },
            "translate" => IoOp::Translate {
                id: id(r),
                page: r.random(),
            },
            "map" => IoOp::Map {
                dom: r.random(),
                page: r.random(),
                count: r.random(),
            },
            _ => IoOp::Unmap {
                dom: r.random(),
                page: r.random(),
                count: r.random(),
            },
        }
    }
}

/// An ID: an outstanding or bound one most of the time (`IdPick`'s byte ranges), a small
/// ID or an edge (the invalid ID, the PASID limit) one time in eight.
fn id(r: &mut StdRng) -> IdPick {
    IdPick(if r.random_ratio(7, 8) {
        r.random_range(0..=207)
    } else {
        r.random_range(208..=255)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(op: &IoOp) -> &'static str {
        match op {
            IoOp::Alloc { .. } => "alloc",
            IoOp::Free { .. } => "free",
            IoOp::Find { .. } => "find",
            IoOp::SetData { .. } => "set_data",
            IoOp::Register { .. } => "register",
            IoOp::Unregister { .. } => "unregister",
            IoOp::Bind { .. } => "bind",
            IoOp::Unbind { .. } => "unbind",
            IoOp::Translate { .. } => "translate",
            IoOp::Map { .. } => "map",
            IoOp::Unmap { .. } => "unmap",
        }
    }

    /// Same seed, same inputs; a batch's zero-weight kinds never appear in it, and an op
    /// that names an ID never outweighs allocations.
    #[test]
    fn inputs_follow_the_seed_and_the_batch_weights() {
        let draw = |seed| {
            let mut s = IoasidSwarm::new(seed);
            (0..super::super::swarm::BATCH * 3)
                .map(|_| {
                    let i = s.next_input();
                    (format!("{i:?}"), s.weights())
                })
                .collect::<Vec<_>>()
        };
        let a = draw(7);
        assert_eq!(a, draw(7));
        assert_ne!(a, draw(8));
        let mut s = IoasidSwarm::new(7);
        let mut off_seen = 0;
        for _ in 0..super::super::swarm::BATCH * 8 {
            let input = s.next_input();
            let w = s.weights();
            let at = |name| w[KINDS.iter().position(|&n| n == name).unwrap()];
            for o in &input.ops {
                assert_ne!(at(kind(o)), 0, "{} drawn at weight 0: {w:?}", kind(o));
            }
            assert!(at("alloc") >= at("free").max(at("bind")), "{w:?}");
            assert!(at("map") >= at("translate"), "{w:?}");
            off_seen += w.iter().filter(|&&x| x == 0).count();
            assert!((1..=MAX_IO_OPS).contains(&input.ops.len()));
        }
        assert!(off_seen > 0, "some batches turn kinds off");
    }
}
