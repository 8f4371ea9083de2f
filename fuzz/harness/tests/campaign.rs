//! The stable-toolchain campaign: deterministic for a seed and an input count, a minimiser
//! that keeps only what a failure needs, saved expectations from the model, and a report
//! that parses. None of these depend on which bugs the engine has today.

use std::path::PathBuf;

use ptfuzz_harness::campaign::minimize::{failure_of, minimize, Limits};
use ptfuzz_harness::campaign::print::print_files;
use ptfuzz_harness::campaign::report::Report;
use ptfuzz_harness::campaign::save::with_model_expectations;
use ptfuzz_harness::campaign::{self, Budget, Config};
use ptfuzz_harness::trace::parse;
use ptfuzz_harness::{replay, FailureKind, Trace};

fn out_dir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn campaign(name: &str, seed: u64, inputs: u64) -> (Report, PathBuf) {
    let out = out_dir(name);
    let mut cfg = Config::new(seed, Budget::Inputs(inputs), out.clone());
    cfg.progress = false;
    (campaign::run(&cfg).expect("campaign runs"), out)
}

/// Same seed and input count: same inputs, same stats, same crashes, same saved traces.
#[test]
fn same_seed_same_campaign() {
    let (a, out_a) = campaign("campaign-det-a", 7, 200);
    let (b, out_b) = campaign("campaign-det-b", 7, 200);
    assert_eq!(a.stats, b.stats);
    assert_eq!(a.stats.inputs, 200);
    assert!(a.stats.ops > 200, "inputs carry ops: {}", a.stats.ops);
    let strip = |r: &Report| {
        r.crashes
            .iter()
            .map(|c| (c.signature.clone(), c.first_input, c.count))
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&a), strip(&b));
    for c in &a.crashes {
        let ta = std::fs::read_to_string(out_a.join(&c.file)).unwrap();
        let tb = std::fs::read_to_string(out_b.join(&c.file)).unwrap();
        assert_eq!(ta, tb, "{}", c.file);
    }
    let (c, _) = campaign("campaign-det-c", 8, 200);
    assert_ne!(a.stats, c.stats, "another seed, other inputs");
}

/// report.json parses back into the report, report.html links every crash trace.
#[test]
fn report_is_written_and_parses() {
    let (r, out) = campaign("campaign-report", 3, 100);
    let json = std::fs::read_to_string(out.join("report.json")).unwrap();
    let back: Report = serde_json::from_str(&json).expect("report.json parses");
    assert_eq!(back.stats, r.stats);
    assert_eq!(back.crashes, r.crashes);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    for key in [
        "seed",
        "seconds",
        "inputs",
        "ops",
        "exec_per_sec",
        "op_kinds",
        "configs",
        "outcomes",
        "crashes",
    ] {
        assert!(v.get(key).is_some(), "report.json has {key}");
    }
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.starts_with("<!doctype html>"));
    for c in &r.crashes {
        assert!(html.contains(&format!("href=\"{}\"", c.file)), "{}", c.file);
        let saved = std::fs::read_to_string(out.join(&c.file)).unwrap();
        assert!(saved.starts_with(&format!("# signature: {}\n", c.signature)));
    }
}

const DOMAIN: &str = "domain d0 fmt=arm64-s1 granule=4k ias=48 oas=48\n";

/// A lookup with a wrong expectation after 20 ops that do not matter: the minimiser keeps
/// the map the lookup needs and the lookup with its expectation, and nothing else.
#[test]
fn minimiser_keeps_only_what_the_failure_needs() {
    let mut text = DOMAIN.to_string();
    for i in 0..10u64 {
        let iova = 0x4000_0000 + i * 0x20_0000;
        text += &format!(
            "map d0 iova={iova:#x} pa={:#x} pgsize=4k count=2 prot=rw -> ok\n",
            0x8000_0000 + iova
        );
        text += &format!(
            "lookup d0 iova={:#x} -> pa={:#x}\n",
            iova + 0x1000,
            0x8000_1000 + iova
        );
    }
    text += "map d0 iova=0x200000 pa=0x40200000 pgsize=2m count=1 prot=rw -> ok\n";
    text += "unmap d0 iova=0x1000000 pgsize=4k count=1 -> unmapped=0\n";
    text += "lookup d0 iova=0x201234 -> pa=0x40201235\n";
    let trace = parse("t", &text).unwrap();
    let f = replay("t", &trace).unwrap_err();
    assert!(matches!(*f.kind, FailureKind::Mismatch { .. }), "{f}");
    let sig = failure_of(&trace).unwrap().signature;
    assert_eq!(sig, "lookup: mismatch: expected pa, got pa");

    let min = minimize(&trace, &sig, Limits::default());
    let printed = min.trace.to_string();
    assert_eq!(
        printed,
        format!(
            "{DOMAIN}map d0 iova=0x200000 pa=0x40200000 pgsize=0x200000 count=1 prot=rw\n\
             lookup d0 iova=0x201234 -> pa=0x40201235\n"
        )
    );
    assert_eq!(
        min.failure.as_ref().map(|f| f.signature.as_str()),
        Some(sig.as_str())
    );
    assert!(min.failure.unwrap().message.starts_with("line 3: lookup"));
    assert!(min.replays < 200, "{} replays", min.replays);

    // With the model's outcomes as expectations the trace passes: engine and model agree
    // here, only the hand-written expectation was wrong.
    let fixed = with_model_expectations(&min.trace);
    assert!(
        fixed
            .to_string()
            .contains("lookup d0 iova=0x201234 -> ok pa=0x40201234\n"),
        "{fixed}"
    );
    replay("fixed", &parse("fixed", &fixed.to_string()).unwrap()).expect("model expectations pass");
}

/// A trace that passes is not a crash, and minimising it changes nothing.
#[test]
fn passing_trace_is_left_alone() {
    let trace: Trace = parse("t", &format!("{DOMAIN}lookup d0 iova=0 -> none\n")).unwrap();
    assert!(failure_of(&trace).is_none());
    let min = minimize(&trace, "anything", Limits::default());
    assert!(min.failure.is_none());
    assert_eq!(min.trace.lines.len(), 2);
}

/// `ptfuzz print`: raw bytes print as a trace; unreadable files are named and skipped.
#[test]
fn print_decodes_raw_files_and_skips_bad_ones() {
    let dir = out_dir("campaign-print");
    std::fs::create_dir_all(&dir).unwrap();
    let raw = dir.join("crash-raw");
    std::fs::write(&raw, [0u8; 16]).unwrap();
    let missing = dir.join("missing");
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let bad = print_files(&[missing.clone(), raw.clone()], &mut out, &mut err).unwrap();
    let (out, err) = (
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    );
    assert!(err.contains(&missing.display().to_string()), "{err}");
    assert!(out.contains(&format!("# {}", raw.display())), "{out}");
    assert!(out.contains("\ndomain d0 fmt="), "{out}");
    assert!(bad >= 1);
}
