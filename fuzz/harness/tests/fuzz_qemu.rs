//! The `qemu_diff` target under plain `cargo test` (bolero): random inputs for a bounded
//! time against one QEMU (installed by qemu-images/install-qemu.sh when missing; where that
//! fails, the test fails naming the script).

use ptfuzz_harness::target::{QemuDiff, Target};

#[test]
fn qemu_diff() {
    ptfuzz_oracles::qemu::driver::install::ensure_installed().unwrap_or_else(|e| panic!("{e}"));
    bolero::check!().for_each(QemuDiff::fuzz);
}
