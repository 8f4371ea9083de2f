//! AFL++ twin of the `qemu_diff` libFuzzer target (same bytes, same decoding).

fn main() {
    afl::fuzz!(|data: &[u8]| ptfuzz_harness::qemu::run_qemu_bytes(data));
}
