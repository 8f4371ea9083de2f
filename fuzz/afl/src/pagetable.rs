//! AFL++ target. Raw bytes through `run_bytes` (arbitrary_take_rest, as libFuzzer's
//! `fuzz_target!(|input: Input|)`), not afl's typed `fuzz!(|x: T|)`, so files carry over.

fn main() {
    afl::fuzz!(|data: &[u8]| ptfuzz_harness::run_bytes(data));
}
