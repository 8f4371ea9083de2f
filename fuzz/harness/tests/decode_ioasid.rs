//! The `ioasid` target: any bytes decode into an input the executor accepts without a
//! harness panic, every input prints as a trace that replays to the same outcomes, and
//! random inputs reach every refusal the rules define.

use std::collections::BTreeSet;

use ptfuzz_harness::ioasid::{decode, execute};
use ptfuzz_harness::{replay, trace, Command};

fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
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
    let mut seen = BTreeSet::new();
    let mut ops = 0;
    for seed in 0..400u64 {
        let data = bytes(seed, (seed as usize * 53) % 1200);
        let input = decode(&data).expect("every byte string decodes");
        let trace = execute(&input).unwrap_or_else(|c| panic!("seed {seed}: {c}"));
        ops += trace.lines.len() - 2;
        for l in &trace.lines {
            if let (Command::Ioasid(_), Some(e)) = (&l.command, l.expect) {
                let what = e.err.map_or("ok".to_string(), |k| k.to_string());
                seen.insert(format!("{} {what}", l.command.word()));
            }
        }
        let text = trace.to_string();
        let reparsed =
            trace::parse("generated", &text).unwrap_or_else(|e| panic!("seed {seed}: {e}\n{text}"));
        replay("generated", &reparsed).unwrap_or_else(|f| panic!("seed {seed}: {f}\n{text}"));
    }
    assert!(ops > 5000, "inputs should carry ops, got {ops}");
    for want in [
        "ioasid.alloc ok",
        "ioasid.alloc inval",
        "ioasid.alloc nomem",
        "ioasid.alloc exists",
        "ioasid.free ok",
        "ioasid.free busy",
        "ioasid.free inval",
        "ioasid.find ok",
        "ioasid.find inval",
        "ioasid.set_data ok",
        "ioasid.register ok",
        "ioasid.register busy",
        "ioasid.register exists",
        "ioasid.unregister ok",
        "ioasid.unregister busy",
        "ioasid.unregister inval",
        "ioasid.bind ok",
        "ioasid.bind exists",
        "ioasid.unbind ok",
        "ioasid.unbind inval",
        "ioasid.translate ok",
        "ioasid.translate inval",
    ] {
        assert!(seen.contains(want), "never saw `{want}`; saw {seen:?}");
    }
}

/// Bytes too short for the header are not an input; the header alone is one with no ops.
#[test]
fn short_inputs() {
    assert!(decode(&[1, 2, 3]).is_none() || decode(&[1, 2, 3]).unwrap().ops.is_empty());
    let t = execute(&decode(&[0; 6]).unwrap()).unwrap();
    assert_eq!(t.lines.len(), 2, "two domain lines");
}

/// The committed seeds decode, run clean, and each carries ops.
#[test]
fn seeds_run_clean() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../corpus/ioasid");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).expect("corpus/ioasid exists") {
        let p = e.unwrap().path();
        let input = decode(&std::fs::read(&p).unwrap()).expect("seed decodes");
        assert!(input.ops.len() >= 10, "{}", p.display());
        execute(&input).unwrap_or_else(|c| panic!("{}: {c}", p.display()));
        n += 1;
    }
    assert!(n >= 5, "seeds: {n}");
}
