//! `ptfuzz convert` for `qemu_diff`: raw → trace (run through QEMU) → raw → trace gives the
//! same trace for every seed the target starts from (corpus/pagetable). Needs QEMU
//! (installed by qemu-images/install-qemu.sh when missing; fails naming it otherwise).

use std::path::Path;

use ptfuzz_harness::campaign::convert::{convert, Converted};
use ptfuzz_harness::target::TargetName;

fn trace(data: &[u8]) -> String {
    match convert(TargetName::QemuDiff, data).unwrap_or_else(|e| panic!("{e}")) {
        Converted::Trace {
            text,
            failure: None,
        } => text,
        other => panic!("{other:?}"),
    }
}

#[test]
fn qemu_diff_seeds_round_trip() {
    ptfuzz_oracles::qemu::driver::install::ensure_installed().unwrap_or_else(|e| panic!("{e}"));
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../corpus/pagetable");
    let mut nested = 0;
    let mut n = 0;
    for e in std::fs::read_dir(&seeds).unwrap().flatten() {
        let first = trace(&std::fs::read(e.path()).unwrap());
        let raw = match convert(TargetName::QemuDiff, first.as_bytes()) {
            Ok(Converted::Raw(raw)) => raw,
            other => panic!("{}: {other:?}\n{first}", e.path().display()),
        };
        assert_eq!(trace(&raw), first, "{}", e.path().display());
        nested += usize::from(first.contains("attach d0 nest=d1"));
        n += 1;
    }
    assert!(n >= 10, "{n} seeds");
    println!("{n} seeds round-trip, {nested} of them nested");
}
