//! Differential tests against QEMU's SMMUv3: the traces under corpus/qemu/ (stage 1 at every
//! granule, stage 2, nested) must match the model probe for probe, each trace under
//! corpus/qemu-deviations/ must show exactly its known deviation, a planted missing
//! invalidation must be reported as stale, and the qemu_diff target must pass its seeds.
//!
//! QEMU is required: a missing `qemu-system-aarch64` is installed first by
//! qemu-images/install-qemu.sh; where that fails every test here fails, naming the script. The tests share one QEMU per test thread.

use std::path::{Path, PathBuf};

use ptfuzz_harness::qemu::{self, diff::Stop, session, QemuDiff};
use ptfuzz_harness::replay::FailureKind;
use ptfuzz_harness::trace::{self, Command};
use ptfuzz_oracles::qemu::deviation::{Deviation, TABLE};
use ptfuzz_oracles::qemu::oracle::Verdict;
use ptfuzz_oracles::Divergence;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn traces(dir: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "trace"))
        .collect();
    v.sort();
    v
}

fn started() {
    ptfuzz_oracles::qemu::driver::install::ensure_installed().unwrap_or_else(|e| panic!("{e}"));
    if let Err(e) = session::ensure_started() {
        panic!("QEMU is required for these tests and could not start ({e}); install it with qemu-images/install-qemu.sh");
    }
}

/// Replays one file against QEMU; returns the verdicts of every probe.
fn replay(path: &Path) -> Vec<Verdict> {
    started();
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).unwrap();
    let t = trace::parse(&name, &text).unwrap();
    let mut out = Vec::new();
    session::with_oracle(|o| {
        let stats = qemu::replay_qemu(o, &name, &t, &mut out);
        Ok(stats)
    })
    .unwrap_or_else(|e| panic!("{name}: QEMU failed: {e}"))
    .unwrap_or_else(|e| panic!("{e}\n{}", String::from_utf8_lossy(&out)));
    let printed = String::from_utf8(out).unwrap();
    let verdicts: Vec<Verdict> = printed
        .lines()
        .map(|l| {
            if l.contains("known QEMU deviation") {
                let id = l.rsplit('`').nth(1).unwrap();
                let d = TABLE
                    .iter()
                    .find(|r| r.id == id)
                    .and_then(|r| r.deviation)
                    .unwrap();
                Verdict::Deviation(d)
            } else if l.contains("(as predicted)") {
                Verdict::Match
            } else {
                panic!("{name}: unexpected probe line {l}")
            }
        })
        .collect();
    verdicts
}

#[test]
fn traces_match_qemu_at_every_granule_stage_and_nested() {
    let files = traces("corpus/qemu");
    for want in ["s1-4k", "s1-16k", "s1-64k", "s2-4k", "nested-4k"] {
        assert!(
            files.iter().any(|f| f.file_stem().unwrap() == want),
            "corpus/qemu/{want}.trace missing"
        );
    }
    for f in files {
        let v = replay(&f);
        assert!(v.len() >= 10, "{}: only {} probes", f.display(), v.len());
        // Stage-2-only read-only/write-only pages meet QEMU's missing event for a cached
        // permission fault; nothing else may differ.
        let s2_only = f.file_stem().unwrap().to_string_lossy().starts_with("s2-");
        let allowed = |x: &Verdict| {
            *x == Verdict::Match
                || (s2_only && *x == Verdict::Deviation(Deviation::CachedS2PermissionNoEvent))
        };
        assert!(v.iter().all(allowed), "{}: {v:?}", f.display());
        let matched = v.iter().filter(|x| **x == Verdict::Match).count();
        assert!(
            matched * 10 >= v.len() * 8,
            "{}: {matched} of {} matched",
            f.display(),
            v.len()
        );
    }
}

#[test]
fn each_deviation_trace_shows_its_deviation() {
    let rows: Vec<_> = TABLE.iter().filter(|r| r.trace.is_some()).collect();
    assert!(!rows.is_empty());
    for row in rows {
        let path = root()
            .join("corpus/qemu-deviations")
            .join(row.trace.unwrap());
        let v = replay(&path);
        let want = row.deviation.unwrap();
        let seen: Vec<Deviation> = v
            .iter()
            .filter_map(|x| match x {
                Verdict::Deviation(d) => Some(*d),
                _ => None,
            })
            .collect();
        assert!(
            seen.contains(&want),
            "{}: no {want:?} among {v:?}",
            path.display()
        );
        assert!(
            seen.iter().all(|d| *d == want),
            "{}: other deviations {seen:?}",
            path.display()
        );
    }
}

/// The QEMU executor stacks the page-table target's oracles under QEMU's: the TLB and
/// break-before-make oracle, frame accounting and the counters see every op, and the walker
/// every op's range (their totals count what they checked).
#[test]
fn qemu_executor_runs_the_engine_side_oracles() {
    started();
    let text = "domain d0 fmt=arm64-s1 granule=4k ias=48 oas=48\n\
                map d0 iova=0x10000000 pa=0x50000000 pgsize=4k count=2 prot=rw\n\
                map d0 iova=0x20000000 pa=0x60000000 pgsize=4k count=1 prot=r\n\
                unmap d0 iova=0x10000000 pgsize=4k count=2\n\
                unmap d0 iova=0x20000000 pgsize=4k count=1\n";
    let t = trace::parse("stacked", text).unwrap();
    ptfuzz_harness::exec::totals::take();
    let mut out = Vec::new();
    session::with_oracle(|o| Ok(qemu::replay_qemu(o, "stacked", &t, &mut out)))
        .unwrap()
        .unwrap_or_else(|e| panic!("{e}"));
    let sum = ptfuzz_harness::exec::totals::take();
    assert_eq!(sum.domains, 1, "{sum:?}");
    assert_eq!(sum.ops, 4, "{sum:?}");
    assert_eq!(sum.frame_checks, 4, "{sum:?}");
    assert!(sum.tlb_breaks >= 3, "{sum:?}");
    assert!(sum.invalidations >= 2, "{sum:?}");
}

/// An engine that forgets to invalidate after an unmap: QEMU still translates the page from
/// its IOTLB, and the oracle says so, naming the op.
const MAP_UNMAP: &str = "domain d0 fmt=arm64-s1 granule=4k ias=48 oas=48\n\
                         map d0 iova=0x10000000 pa=0x50000000 pgsize=4k count=1 prot=rw\n\
                         unmap d0 iova=0x10000000 pgsize=4k count=1\n";

/// A map then an unmap of one page ([`MAP_UNMAP`]), the unmap run with `forget` applied to the diff (an
/// engine or a forwarding that loses the invalidation): the finding that catches it.
fn unmap_without_invalidation(
    name: &str,
    forget: impl FnOnce(&mut QemuDiff) + Copy,
    page_table_oracles: bool,
) -> Divergence {
    let t = trace::parse(name, MAP_UNMAP).unwrap();
    session::with_oracle(|o| {
        let mut d = QemuDiff::new(o)?;
        d.page_table_oracles = page_table_oracles;
        let Command::Domain {
            name,
            cfg,
            custom_alloc,
        } = &t.lines[0].command
        else {
            unreachable!()
        };
        d.create(name, cfg, *custom_alloc)
            .map_err(|e| panic!("{e:?}"))
            .unwrap();
        d.apply(&t.lines[1].command)
            .map_err(|e| panic!("{e:?}"))
            .unwrap();
        forget(&mut d);
        let err = d
            .apply(&t.lines[2].command)
            .expect_err("the missing invalidation must be caught");
        Ok(match err {
            Stop::Failure(FailureKind::Oracle(d)) => d,
            e => panic!("{e:?}"),
        })
    })
    .unwrap()
}

#[test]
fn missing_invalidation_is_a_stale_translation() {
    started();
    // The flushes are dropped on their way to QEMU: the engine's own oracles see them.
    let d = unmap_without_invalidation("planted", |d| d.drop_flushes = true, true);
    assert_eq!(d.kind(), "qemu/stale-translation");
    let msg = d.to_string();
    assert!(
        msg.contains("stale translation: missing invalidation after op 1"),
        "{msg}"
    );
    // With the flushes forwarded the same trace passes.
    let t = trace::parse("planted", MAP_UNMAP).unwrap();
    let mut out = Vec::new();
    session::with_oracle(|o| Ok(qemu::replay_qemu(o, "planted", &t, &mut out)))
        .unwrap()
        .unwrap_or_else(|e| panic!("{e}"));
}

/// `PTFUZZ_QEMU_ONLY` (`page_table_oracles` off): an engine that forgets the invalidation
/// of an unmap is caught by the TLB oracle when the page-table oracles run, and by QEMU (a
/// stale translation in its IOTLB) when they do not.
#[test]
fn qemu_only_leaves_a_missing_invalidation_to_qemu() {
    started();
    for (oracles, want) in [
        (true, "tlb/stale-translation"),
        (false, "qemu/stale-translation"),
    ] {
        let d = unmap_without_invalidation("forgotten", |d| d.engine_drops_flushes = true, oracles);
        assert_eq!(d.kind(), want, "page-table oracles {oracles}");
    }
}

/// An input run again gives the same trace and the same verdicts, and costs less: guest
/// RAM already holds its tables (only differing words are written), and the reset before
/// it sends nothing of its own.
#[test]
fn repeated_input_is_deterministic_and_rewrites_no_tables() {
    started();
    let mut paths: Vec<_> = std::fs::read_dir(root().join("corpus/pagetable"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    let data = std::fs::read(&paths[0]).unwrap();
    let input = ptfuzz_harness::decode(&data).expect("seeds decode");
    let run = || {
        session::with_oracle(|o| {
            let (q0, s0) = (o.qemu().stats(), o.stats.clone());
            let trace = qemu::execute_qemu(o, &input).unwrap_or_else(|e| panic!("{e:?}"));
            let (q1, s1) = (o.qemu().stats(), o.stats.clone());
            Ok((
                trace.to_string(),
                (s1.probes - s0.probes, s1.matched - s0.matched),
                q1.round_trips - q0.round_trips,
                q1.bytes_sent - q0.bytes_sent,
            ))
        })
        .unwrap()
    };
    let first = run();
    let second = run();
    assert_eq!(first.0, second.0);
    assert_eq!(first.1, second.1, "probes and matches");
    assert!(first.1 .0 > 0, "the seed probes");
    assert!(
        second.2 <= first.2,
        "round trips {} then {}",
        first.2,
        second.2
    );
    assert!(
        second.3 < first.3,
        "bytes sent {} then {}",
        first.3,
        second.3
    );
    // A domain and nothing else, after the same: no table word differs and no DMA ran
    // since the last invalidation, so the input sends nothing at all.
    let empty = trace::parse("empty", "domain d0 fmt=arm64-s1 granule=4k ias=48 oas=48\n").unwrap();
    let mut out = Vec::new();
    let sent = session::with_oracle(|o| {
        qemu::replay_qemu(o, "empty", &empty, &mut out).unwrap_or_else(|e| panic!("{e}"));
        let before = o.qemu().stats();
        qemu::replay_qemu(o, "empty", &empty, &mut out).unwrap_or_else(|e| panic!("{e}"));
        Ok(o.qemu().stats().round_trips - before.round_trips)
    })
    .unwrap();
    assert_eq!(sent, 0, "an empty input after an empty input");
}

/// The qemu_diff target over the page-table seeds: no divergence, no QEMU failure; the
/// seed whose choice names arm32-lpae-s2 runs as a nested stream through QEMU.
#[test]
fn qemu_diff_passes_the_seeds() {
    started();
    let (mut n, mut nested) = (0, 0);
    for entry in std::fs::read_dir(root().join("corpus/pagetable")).unwrap() {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let input = ptfuzz_harness::decode(&data).expect("seeds decode");
        let r = session::with_oracle(|o| Ok(qemu::execute_qemu(o, &input))).unwrap();
        match r {
            Ok(trace) => {
                let text = trace.to_string();
                if text.contains("attach d0 nest=d1") {
                    nested += 1;
                    assert!(text.contains("domain d1 fmt=arm64-s2"), "{text}");
                }
                // Every trace the target prints replays (engine and model) as it ran.
                ptfuzz_harness::replay(&path.display().to_string(), &trace)
                    .unwrap_or_else(|e| panic!("{e}\n{text}"));
            }
            Err(stop) => panic!("{}: {stop:?}", path.display()),
        }
        n += 1;
    }
    assert!(n >= 10);
    assert!(nested >= 1, "no seed ran nested");
}

/// Stage 2 of a nested qemu_diff input comes from the input: the nested seeds, with every
/// value of the `oas` byte that picks d1's granule (4K/16K) and IPA size (36..44 bits,
/// concatenated roots included), all pass through QEMU.
#[test]
fn qemu_diff_fuzzes_the_stage2_of_nested_inputs() {
    started();
    let mut seen = std::collections::BTreeSet::new();
    let mut concatenated = false;
    for entry in std::fs::read_dir(root().join("corpus/pagetable")).unwrap() {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let mut input = ptfuzz_harness::decode(&data).expect("seeds decode");
        if qemu::nested_configs(&input.config).is_none() {
            continue;
        }
        for oas in 0..10u8 {
            input.config.oas = oas;
            let (_, s2) = qemu::nested_configs(&input.config).unwrap();
            let r = session::with_oracle(|o| Ok(qemu::execute_qemu(o, &input))).unwrap();
            let trace = r.unwrap_or_else(|stop| panic!("{} oas={oas}: {stop:?}", path.display()));
            let want = format!(
                "domain d1 fmt=arm64-s2 granule={} ias={}",
                if s2.granule.size() == 4096 {
                    "4k"
                } else {
                    "16k"
                },
                s2.ias
            );
            assert!(trace.to_string().contains(&want), "{want}\n{trace}");
            seen.insert((s2.granule.size(), s2.ias));
            let model = ptfuzz_oracles::Model::new(&s2).unwrap();
            let ste =
                ptfuzz_oracles::qemu::stream::stage2(&s2, model.rules(), s2.phys_base).unwrap();
            concatenated |= ste.root_tables() > 1;
        }
    }
    assert_eq!(seen.len(), 10, "{seen:?}");
    assert!(concatenated, "no stage-2 choice has a concatenated root");
}
