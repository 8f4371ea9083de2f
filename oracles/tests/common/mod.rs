//! Helpers shared by the oracle integration tests: deterministic generators (no dependency)
//! and a configuration shorthand.
#![allow(dead_code)]

use ptfuzz_engine::{DomainConfig, FormatKind, Granule};

/// xorshift64 (13, 7, 17).
pub struct XorShift(pub u64);

impl XorShift {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// xorshift64*.
pub struct XorShiftStar(pub u64);

impl XorShiftStar {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

pub fn cfg(f: FormatKind, g: Granule, ias: u32, oas: u32, coherent: bool) -> DomainConfig {
    let mut c = DomainConfig::new(f, g, ias, oas);
    c.coherent = coherent;
    c
}
