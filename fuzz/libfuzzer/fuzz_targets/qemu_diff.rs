//! libFuzzer target `qemu_diff` (`ptfuzz_harness::target::QemuDiff`): the page-table op
//! language checked against QEMU's SMMUv3 translating the same table bytes (one QEMU per
//! worker, reused). Raw bytes, so an input that breaks QEMU is kept. Corpus: `pagetable`'s.
#![no_main]

include!("asan_options.rs");

use ptfuzz_harness::target::{QemuDiff, Target};

libfuzzer_sys::fuzz_target!(|data: &[u8]| QemuDiff::fuzz(data));
