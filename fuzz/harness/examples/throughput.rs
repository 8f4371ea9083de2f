//! Throughput of the fuzz-target body, without a fuzzer around it: runs every file of a
//! corpus directory through `decode` + `execute` (what `run_bytes` does) for a while and
//! prints inputs/s, ops/s and the shape of the corpus (sizes, op counts). Run it under
//! `perf record` to see where one exec goes.
//!
//!     cargo run --release -p ptfuzz --example throughput -- CORPUS_DIR [SECONDS]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use ptfuzz_harness::input::{resolve_config, MAX_OPS};
use ptfuzz_harness::run::{decode, execute};

/// Heap allocations made so far: under ASan each one costs far more than here (redzones,
/// quarantine), so allocations per exec is the figure to keep down for the ASan build.
static ALLOCS: AtomicU64 = AtomicU64::new(0);
/// Fresh allocations and frees (a `realloc` is neither): libFuzzer runs an input again, and
/// then a leak check over the whole heap, whenever it made more allocations than frees.
static MALLOCS: AtomicU64 = AtomicU64::new(0);
static FREES: AtomicU64 = AtomicU64::new(0);

struct Counting;

// SAFETY: every call is forwarded unchanged to the system allocator; the counter is a
// relaxed atomic that allocates nothing.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        MALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        FREES.fetch_add(1, Ordering::Relaxed);
        // SAFETY: `p` came from `System` with layout `l` (every allocation goes through it).
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as for `dealloc`; `n` is the caller's new size.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .context("usage: throughput CORPUS_DIR [SECONDS]")?;
    let secs: f64 = args
        .next()
        .map_or(Ok(5.0), |s| s.parse())
        .context("SECONDS")?;
    let mut files = Vec::new();
    for e in std::fs::read_dir(&dir).with_context(|| format!("reading {dir}"))? {
        let p = e?.path();
        if p.is_file() {
            files.push(std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?);
        }
    }
    files.sort();
    // THROUGHPUT_ONLY=TEXT keeps the inputs whose configuration line (as printed by
    // THROUGHPUT_BY_CONFIG) contains TEXT, to profile one kind of domain.
    if let Ok(only) = std::env::var("THROUGHPUT_ONLY") {
        files.retain(|f| decode(f).is_some_and(|i| config_key(&i).contains(&only)));
    }
    anyhow::ensure!(!files.is_empty(), "{dir} holds no files");

    let (mut ops, mut crashes, mut undecodable) = (0usize, 0usize, 0usize);
    let mut sizes: Vec<usize> = files.iter().map(Vec::len).collect();
    let mut op_counts = Vec::new();
    for f in &files {
        match decode(f) {
            Some(i) => op_counts.push(i.ops.len().min(MAX_OPS)),
            None => undecodable += 1,
        }
    }
    sizes.sort_unstable();
    op_counts.sort_unstable();
    let median = |v: &[usize]| v.get(v.len() / 2).copied().unwrap_or(0);
    println!(
        "{} files ({} undecodable): bytes median {} max {}; ops median {} max {} mean {:.1}",
        files.len(),
        undecodable,
        median(&sizes),
        sizes.last().unwrap_or(&0),
        median(&op_counts),
        op_counts.last().unwrap_or(&0),
        op_counts.iter().sum::<usize>() as f64 / op_counts.len().max(1) as f64
    );

    // THROUGHPUT_DUMP=FILE writes every input's trace (or crash) once, to compare builds.
    if let Some(out) = std::env::var_os("THROUGHPUT_DUMP") {
        use std::fmt::Write as _;
        let mut text = String::new();
        for f in &files {
            match decode(f).map(|i| execute(&i)) {
                None => text.push_str("undecodable\n"),
                Some(Ok(t)) => write!(text, "{t}").expect("to a string"),
                Some(Err(c)) => write!(text, "{c}").expect("to a string"),
            }
            text.push_str("----\n");
        }
        std::fs::write(&out, text).with_context(|| format!("writing {out:?}"))?;
    }
    let budget = Duration::from_secs_f64(secs);
    let t0 = Instant::now();
    let cpu0 = cpu_seconds().unwrap_or(0.0);
    let allocs0 = ALLOCS.load(Ordering::Relaxed);
    let mut execs = 0usize;
    let mut unbalanced = 0usize;
    'outer: loop {
        for f in &files {
            let (m0, f0) = (
                MALLOCS.load(Ordering::Relaxed),
                FREES.load(Ordering::Relaxed),
            );
            if let Some(input) = decode(f) {
                ops += input.ops.len().min(MAX_OPS);
                crashes += execute(&input).is_err() as usize;
            }
            let (m, fr) = (
                MALLOCS.load(Ordering::Relaxed) - m0,
                FREES.load(Ordering::Relaxed) - f0,
            );
            unbalanced += (m > fr) as usize;
            execs += 1;
            if execs.is_multiple_of(64) && t0.elapsed() >= budget {
                break 'outer;
            }
        }
    }
    let dt = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds().map_or(dt, |c| c - cpu0);
    let allocs = ALLOCS.load(Ordering::Relaxed) - allocs0;
    // Where the time goes by configuration: one more pass, each input timed alone.
    let mut by_cfg: std::collections::BTreeMap<String, (usize, f64, usize)> = Default::default();
    let mut each = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let Some(input) = decode(f) else { continue };
        let key = config_key(&input);
        let t = Instant::now();
        for _ in 0..10 {
            let _ = execute(&input);
        }
        let dt = t.elapsed().as_secs_f64() / 10.0;
        each.push((dt, i));
        let e = by_cfg.entry(key).or_default();
        e.0 += 1;
        e.1 += dt;
        e.2 += input.ops.len().min(MAX_OPS);
    }
    if std::env::var_os("THROUGHPUT_BY_CONFIG").is_some() {
        for (k, (n, t, o)) in &by_cfg {
            println!(
                "  {k:40} {n:5} inputs, {:7.1} us/exec, {:5.1} ops",
                t * 1e6 / *n as f64,
                *o as f64 / *n as f64
            );
        }
    }
    // THROUGHPUT_TOP=N: the N most expensive inputs, with their share of the total and the
    // trace of each, to see what makes an input slow.
    if let Some(n) = std::env::var("THROUGHPUT_TOP")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        let total: f64 = each.iter().map(|e| e.0).sum();
        each.sort_by(|a, b| b.0.total_cmp(&a.0));
        for &(dt, i) in each.iter().take(n) {
            let input = decode(&files[i]).expect("decoded above");
            println!(
                "== {:.1} us ({:.1} % of one pass over the corpus), {}",
                dt * 1e6,
                dt * 100.0 / total,
                config_key(&input)
            );
            match execute(&input) {
                Ok(t) => print!("{t}"),
                Err(c) => print!("{c}"),
            }
        }
    }
    // On a loaded machine the wall clock also counts time spent waiting for the core; the
    // figures use the CPU time this thread actually ran.
    println!(
        "{execs} execs in {cpu:.2} s CPU ({dt:.2} s wall): {:.0} exec/s, {:.0} ops/s, {:.1} us/exec, {:.0} allocations/exec, {unbalanced} with more allocations than frees ({crashes} crashed)",
        execs as f64 / cpu,
        ops as f64 / cpu,
        cpu * 1e6 / execs as f64,
        allocs as f64 / execs as f64
    );
    Ok(())
}

/// One line naming the resolved domain configuration of `input`.
fn config_key(input: &ptfuzz_harness::input::Input) -> String {
    let (cfg, custom) = resolve_config(&input.config);
    format!(
        "{:8} {:3} ias {} {}{}",
        cfg.format.name(),
        cfg.granule.name(),
        cfg.ias,
        if cfg.coherent {
            "coherent"
        } else {
            "noncoherent"
        },
        if custom { " custom" } else { "" }
    )
}

/// CPU time this thread has run, from /proc (Linux); `None` elsewhere.
fn cpu_seconds() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = s.split_whitespace().next()?.parse().ok()?;
    Some(ns as f64 * 1e-9)
}
