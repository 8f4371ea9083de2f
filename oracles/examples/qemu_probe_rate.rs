//! Measures the QEMU SMMUv3 driver: startup time, DMA probes per second with one device
//! and with all K devices in parallel, and the reset (invalidate_all) time.
//! Run: cargo run --release -p ptfuzz-oracles --example qemu_probe_rate [seconds-per-metric [K]]

use std::time::{Duration, Instant};

use ptfuzz_oracles::qemu::{Dma, DmaDir, Profile, Qemu, S1Config, SmmuCommand, StreamConfig};

const TABLES: u64 = 0x4000_0000;
const DATA: u64 = 0x5000_0000;
const PAGES: u64 = 64;

/// Maps IOVA page i to DATA page i with 4K S1 tables (T0SZ 25: L1, L2, L3).
fn build_tables(q: &mut Qemu) {
    let (l1, l2, l3) = (TABLES, TABLES + 0x1000, TABLES + 0x2000);
    q.memset(TABLES, 0x3000, 0).unwrap();
    let mut chunks: Vec<(u64, Vec<u8>)> = vec![
        (l1, (l2 | 3).to_le_bytes().to_vec()),
        (l2, (l3 | 3).to_le_bytes().to_vec()),
    ];
    let leaves: Vec<u8> = (0..PAGES)
        .flat_map(|i| ((DATA + i * 0x1000) | 0x743).to_le_bytes())
        .collect();
    chunks.push((l3, leaves));
    let refs: Vec<(u64, &[u8])> = chunks.iter().map(|(a, b)| (*a, b.as_slice())).collect();
    q.write_mem_batch(&refs).unwrap();
}

fn probes(k: usize, n: usize, seed: &mut u64, dir: DmaDir) -> Vec<Dma> {
    (0..n)
        .map(|i| {
            *seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let iova = ((*seed >> 20) % (PAGES * 0x1000)) & !7;
            // Write(u64::MAX) asks for fresh data per probe (the edu buffer is restaged).
            let dir = if dir == DmaDir::Write(u64::MAX) {
                DmaDir::Write(*seed)
            } else {
                dir
            };
            Dma {
                dev: i % k,
                iova,
                len: 8,
                dir,
            }
        })
        .collect()
}

fn rate(q: &mut Qemu, k: usize, dir: DmaDir, tlbi: bool, budget: Duration) -> f64 {
    let mut seed = 1;
    let mut done = 0usize;
    let t0 = Instant::now();
    while t0.elapsed() < budget {
        if tlbi {
            q.submit(&[SmmuCommand::TlbiNsnhAll]).unwrap();
        }
        let reqs = probes(k, k, &mut seed, dir);
        let res = q.dma(&reqs).unwrap();
        if dir == DmaDir::Read {
            for (r, out) in reqs.iter().zip(&res) {
                let want = DATA + r.iova;
                assert_eq!(
                    out.data.as_deref().unwrap(),
                    want.to_le_bytes(),
                    "probe {r:?}"
                );
            }
        }
        done += reqs.len();
    }
    let rate = done as f64 / t0.elapsed().as_secs_f64();
    let st = q.stats();
    eprintln!(
        "  ({done} probes; so far {} round trips, {} DMA rounds, {} polls)",
        st.round_trips, st.dma_rounds, st.dma_polls
    );
    rate
}

/// iommu-testdev write probes in batches of `batch`, each checked to land where the
/// tables say; the tags they overwrite are restored in the same batch.
fn testdev_rate(q: &mut Qemu, batch: usize, budget: Duration) -> f64 {
    use ptfuzz_oracles::qemu::driver::testdev::Outcome;
    let mut seed = 7u64;
    let mut done = 0usize;
    let t0 = Instant::now();
    while t0.elapsed() < budget {
        let probes: Vec<(u64, u64)> = (0..batch)
            .map(|_| {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let iova = ((seed >> 20) % (PAGES * 0x1000)) & !7;
                (iova, DATA + iova)
            })
            .collect();
        let tags: Vec<(u64, [u8; 8])> = probes
            .iter()
            .map(|&(_, pa)| (pa, pa.to_le_bytes()))
            .collect();
        let refs: Vec<(u64, &[u8])> = tags.iter().map(|(a, b)| (*a, &b[..])).collect();
        let res = q.testdev_writes(0, &probes, &refs).unwrap();
        for (p, r) in probes.iter().zip(&res) {
            assert_eq!(r.0, Outcome::Landed, "probe {p:x?}: {r:?}");
        }
        done += batch;
    }
    done as f64 / t0.elapsed().as_secs_f64()
}

fn main() {
    let secs: f64 = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("seconds"))
        .unwrap_or(3.0);
    let budget = Duration::from_secs_f64(secs);
    let mut profile = Profile::load_default().unwrap_or_else(|e| panic!("{e}"));
    if let Some(k) = std::env::args().nth(2) {
        profile.edu_count = k.parse().expect("K");
        profile.validate().unwrap_or_else(|e| panic!("{e}"));
    }
    let k = profile.edu_count;

    let mut starts: Vec<Duration> = (0..5)
        .map(|_| {
            let t0 = Instant::now();
            let q = Qemu::start(&profile).unwrap_or_else(|e| panic!("{e}"));
            let d = t0.elapsed();
            drop(q);
            d
        })
        .collect();
    starts.sort();
    println!(
        "startup (K={k}, spawn to SMMU + PCI ready): median {:?}, min {:?}, max {:?}",
        starts[2], starts[0], starts[4]
    );

    let mut q = Qemu::start(&profile).unwrap_or_else(|e| panic!("{e}"));
    let t0 = Instant::now();
    for _ in 0..2000 {
        assert!(q.is_alive());
    }
    println!(
        "qtest round trip (one register read): {:?}",
        t0.elapsed() / 2000
    );
    build_tables(&mut q);
    let tag: Vec<u8> = (0..PAGES * 0x1000 / 8)
        .flat_map(|i| (DATA + 8 * i).to_le_bytes())
        .collect();
    q.write_mem(DATA, &tag).unwrap();
    for dev in 0..k {
        q.configure(
            dev,
            &StreamConfig::S1(S1Config::new(4096, 25, 4, TABLES, 1)),
        )
        .unwrap();
    }
    println!(
        "read probes/s, 1 device:           {:.0}",
        rate(&mut q, 1, DmaDir::Read, false, budget)
    );
    println!(
        "write probes/s, 1 device, same data:  {:.0}",
        rate(&mut q, 1, DmaDir::Write(0x1234), false, budget)
    );
    println!(
        "write probes/s, 1 device, fresh data: {:.0}",
        rate(&mut q, 1, DmaDir::Write(u64::MAX), false, budget)
    );
    println!(
        "write probes/s, {k} devices, fresh data: {:.0}",
        rate(&mut q, k, DmaDir::Write(u64::MAX), false, budget)
    );
    // Restore the tags the writes overwrote.
    q.write_mem(DATA, &tag).unwrap();
    println!(
        "read probes/s, {k} devices:         {:.0}",
        rate(&mut q, k, DmaDir::Read, false, budget)
    );
    println!(
        "read probes/s, {k} devices + TLBI:  {:.0}",
        rate(&mut q, k, DmaDir::Read, true, budget)
    );
    if q.testdevs() > 0 {
        let td = q.devices();
        q.configure(td, &StreamConfig::S1(S1Config::new(4096, 25, 4, TABLES, 1)))
            .unwrap();
        for batch in [1usize, 16, 64] {
            println!(
                "iommu-testdev write probes/s, batches of {batch}: {:.0}",
                testdev_rate(&mut q, batch, budget)
            );
        }
    } else {
        println!("iommu-testdev: none in the profile (PTFUZZ_QEMU_PROBE=edu)");
    }
    let n = 200;
    let mean = |q: &mut Qemu, f: &dyn Fn(&mut Qemu)| {
        let t0 = Instant::now();
        for _ in 0..n {
            f(q);
        }
        t0.elapsed() / n
    };
    let inv = mean(&mut q, &|q| q.invalidate_all().unwrap());
    let sync = mean(&mut q, &|q| q.submit(&[]).unwrap());
    let drain = mean(&mut q, &|q| assert!(q.drain_events().unwrap().is_empty()));
    println!("invalidate_all: {inv:?}; of which CMD_SYNC alone {sync:?}, empty drain_events {drain:?} (means of {n})");
}
