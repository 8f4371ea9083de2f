//! Inputs for the targets that take raw bytes, without a fuzzing engine: seed files with a
//! few random edits (byte flips and overwrites, inserted, deleted and repeated runs, a tail
//! spliced from another seed), or now and then fresh random bytes. Every target's op
//! language resolves its ops against the state they run on, so edited seeds keep reaching
//! live mappings and table edges. Deterministic for a seed and a seed corpus.

use std::path::Path;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Longest input made (the targets cut their op lists long before).
const MAX_LEN: usize = 4096;

pub struct Mutator {
    rng: StdRng,
    seeds: Vec<Vec<u8>>,
    buf: Vec<u8>,
}

impl Mutator {
    pub fn new(seed: u64, seeds: Vec<Vec<u8>>) -> Mutator {
        Mutator {
            rng: StdRng::seed_from_u64(seed),
            seeds,
            buf: Vec::with_capacity(MAX_LEN),
        }
    }

    /// The next input.
    pub fn next_input(&mut self) -> &[u8] {
        let r = &mut self.rng;
        self.buf.clear();
        if self.seeds.is_empty() || r.random_ratio(1, 16) {
            let n = r.random_range(8..512);
            self.buf.extend((0..n).map(|_| r.random::<u8>()));
            return &self.buf;
        }
        let s = &self.seeds[r.random_range(0..self.seeds.len())];
        self.buf.extend_from_slice(s);
        for _ in 0..r.random_range(1..=8) {
            let len = self.buf.len();
            if len == 0 {
                self.buf.push(r.random());
                continue;
            }
            let at = r.random_range(0..len);
            match r.random_range(0..7) {
                0 => self.buf[at] ^= 1 << r.random_range(0..8),
                1 => self.buf[at] = r.random(),
                2 => {
                    let n = r.random_range(1..=8);
                    let bytes: Vec<u8> = (0..n).map(|_| r.random()).collect();
                    self.buf.splice(at..at, bytes);
                }
                3 => {
                    let end = (at + r.random_range(1..=16)).min(len);
                    self.buf.drain(at..end);
                }
                4 => {
                    let end = (at + r.random_range(1..=32)).min(len);
                    let run = self.buf[at..end].to_vec();
                    self.buf.splice(at..at, run);
                }
                5 => {
                    let other = &self.seeds[r.random_range(0..self.seeds.len())];
                    if !other.is_empty() {
                        let from = r.random_range(0..other.len());
                        self.buf.truncate(at);
                        self.buf.extend_from_slice(&other[from..]);
                    }
                }
                _ => {
                    // An interesting byte: a boundary of the op language's pools and counts.
                    self.buf[at] = [0, 1, 0x7f, 0x80, 0xff][r.random_range(0..5)];
                }
            }
        }
        self.buf.truncate(MAX_LEN);
        &self.buf
    }
}

/// The files of a seed folder, by name. A file that cannot be read is reported on stderr and
/// skipped; a missing folder is no seeds.
pub fn read_seeds(dir: &Path) -> Vec<Vec<u8>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    paths
        .into_iter()
        .filter_map(|p| match std::fs::read(&p) {
            Ok(b) => Some(b),
            Err(e) => {
                eprintln!("ptfuzz: skipping seed {}: {e}", p.display());
                None
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_bounded_and_edited() {
        let seeds = vec![vec![1u8; 40], vec![2u8; 300]];
        let mut a = Mutator::new(7, seeds.clone());
        let mut b = Mutator::new(7, seeds.clone());
        let mut edited = 0;
        for _ in 0..2000 {
            let x = a.next_input().to_vec();
            assert_eq!(x, b.next_input());
            assert!(!x.is_empty() && x.len() <= MAX_LEN);
            edited += usize::from(!seeds.contains(&x));
        }
        assert!(
            edited > 1800,
            "only {edited} of 2000 inputs differ from every seed"
        );
        assert!(Mutator::new(1, vec![]).next_input().len() >= 8);
    }
}
