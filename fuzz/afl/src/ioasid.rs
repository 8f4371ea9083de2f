//! AFL++ target `ioasid`. Raw bytes through `run_bytes` (arbitrary_take_rest), so files
//! carry over from and to cargo-fuzz and bolero.

fn main() {
    afl::fuzz!(|data: &[u8]| ptfuzz_harness::ioasid::run_bytes(data));
}
