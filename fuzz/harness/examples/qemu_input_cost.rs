//! The cost of one qemu_diff input, repeated: wall time and qtest round trips per run, on
//! one QEMU (release build, no sanitizer). Tiny inputs show the fixed cost of an input
//! (reset, attach) and the cost of one op.
//!
//!     cargo run --release -p ptfuzz --example qemu_input_cost -- FILE.bin [RUNS]

use std::time::Instant;

use ptfuzz_harness::qemu::{execute_qemu, session};

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: qemu_input_cost FILE.bin [RUNS]");
    let runs: u64 = args.next().map_or(3000, |r| r.parse().expect("a number"));
    let data = std::fs::read(&path).expect("readable input");
    let input = ptfuzz_harness::decode(&data).expect("a qemu_diff input");
    session::ensure_started().expect("QEMU starts (qemu-images/install-qemu.sh)");
    let (rt0, probes0) =
        session::with_oracle(|o| Ok((o.qemu().stats(), o.stats.probes))).expect("QEMU up");
    let t0 = Instant::now();
    for _ in 0..runs {
        session::with_oracle(|o| Ok(execute_qemu(o, &input).map(|_| ()).is_ok()))
            .expect("QEMU stays up")
            .then_some(())
            .expect("the input passes");
    }
    let secs = t0.elapsed().as_secs_f64();
    let (rt, probes) =
        session::with_oracle(|o| Ok((o.qemu().stats(), o.stats.probes))).expect("QEMU up");
    println!(
        "{path}: {runs} runs in {secs:.3} s = {:.1} us/input, {:.2} round trips/input, {:.0} bytes sent/input, {:.1} probes/input",
        secs * 1e6 / runs as f64,
        (rt.round_trips - rt0.round_trips) as f64 / runs as f64,
        (rt.bytes_sent - rt0.bytes_sent) as f64 / runs as f64,
        (probes - probes0) as f64 / runs as f64,
    );
}
