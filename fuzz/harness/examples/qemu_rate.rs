//! Throughput of the QEMU oracle: swarm inputs through the `qemu_diff` executor, on one
//! QEMU, then on one QEMU per worker thread side by side. Prints inputs/s, probes/s and the
//! time one reset between inputs takes (rewrite STEs + invalidate everything).
//!
//!     cargo run --release -p ptfuzz --example qemu_rate -- [SECONDS] [WORKERS]

use std::time::{Duration, Instant};

use ptfuzz_harness::campaign::swarm::Swarm;
use ptfuzz_harness::qemu::{execute_qemu, session, QemuStop};

struct Tally {
    inputs: u64,
    probes: u64,
    crashes: u64,
    resets: Duration,
    elapsed: Duration,
}

fn worker(seed: u64, seconds: u64) -> Tally {
    session::ensure_started().expect("QEMU starts (qemu-images/install-qemu.sh)");
    let mut swarm = Swarm::new(seed);
    let mut t = Tally {
        inputs: 0,
        probes: 0,
        crashes: 0,
        resets: Duration::ZERO,
        elapsed: Duration::ZERO,
    };
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(seconds) {
        let input = swarm.next_input();
        let r = session::with_oracle(|o| {
            let before = o.stats.probes;
            let t0 = Instant::now();
            o.reset()?;
            let reset = t0.elapsed();
            let r = execute_qemu(o, &input);
            Ok((r, o.stats.probes - before, reset))
        })
        .expect("QEMU stays up");
        let (r, probes, reset) = r;
        t.inputs += 1;
        t.probes += probes;
        t.resets += reset;
        if let Err(QemuStop::Crash(c)) = r {
            t.crashes += 1;
            eprintln!("divergence:\n{c}");
        }
    }
    t.elapsed = start.elapsed();
    session::with_oracle(|o| {
        let q = o.qemu().stats();
        let n = t.inputs.max(1) as f64;
        eprintln!(
            "  DMAs: {} through edus, {} through iommu-testdev; {} qtest round trips ({:.1} per input), {:.0} bytes sent per input, {} edu polls",
            o.stats.edu_dmas,
            o.stats.testdev_dmas,
            q.round_trips,
            q.round_trips as f64 / n,
            q.bytes_sent as f64 / n,
            q.dma_polls
        );
        Ok(())
    })
    .expect("QEMU stays up");
    t
}

fn report(label: &str, ts: &[Tally]) {
    let secs = ts
        .iter()
        .map(|t| t.elapsed.as_secs_f64())
        .fold(0.0, f64::max);
    let inputs: u64 = ts.iter().map(|t| t.inputs).sum();
    let probes: u64 = ts.iter().map(|t| t.probes).sum();
    let crashes: u64 = ts.iter().map(|t| t.crashes).sum();
    let reset_us =
        ts.iter().map(|t| t.resets.as_secs_f64()).sum::<f64>() * 1e6 / inputs.max(1) as f64;
    println!(
        "{label}: {inputs} inputs in {secs:.1} s = {:.1} inputs/s, {probes} probes = {:.0} probes/s, reset {reset_us:.0} us/input, {crashes} divergences",
        inputs as f64 / secs,
        probes as f64 / secs,
    );
}

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("numbers"))
        .collect();
    let seconds = args.first().copied().unwrap_or(10);
    let workers = args.get(1).copied().unwrap_or(2);
    report("1 QEMU", &[worker(1, seconds)]);
    let ts: Vec<Tally> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..workers)
            .map(|w| s.spawn(move || worker(100 + w, seconds)))
            .collect();
        hs.into_iter().map(|h| h.join().expect("worker")).collect()
    });
    report(&format!("{workers} QEMUs, one per worker thread"), &ts);
}
