//! Any bytes decode into an input the executor accepts, and every input prints as a trace
//! that replays to the same outcomes.

use ptfuzz_harness::{decode, execute, replay, trace};

/// xorshift64*: deterministic bytes without a dependency.
fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
        })
        .collect()
}

#[test]
fn random_bytes_decode_run_and_replay_as_traces() {
    let mut ops = 0;
    for seed in 0..400u64 {
        let data = bytes(seed, (seed as usize * 37) % 2048);
        let input = decode(&data).expect("every byte string decodes");
        let trace = execute(&input).unwrap_or_else(|c| panic!("seed {seed}: {c}"));
        ops += trace.lines.len() - 1;
        let text = trace.to_string();
        let reparsed =
            trace::parse("generated", &text).unwrap_or_else(|e| panic!("seed {seed}: {e}\n{text}"));
        replay("generated", &reparsed).unwrap_or_else(|f| panic!("seed {seed}: {f}\n{text}"));
    }
    assert!(ops > 1000, "inputs should carry ops, got {ops}");
}
