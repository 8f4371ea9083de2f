//! The readable regression corpus must replay clean, and the replayer must be able to fail:
//! malformed traces name their line, wrong expectations and refused domains are reported.

use std::path::{Path, PathBuf};

use ptfuzz_harness::trace::{parse, ParseErrorKind};
use ptfuzz_harness::{replay, replay_file, replay_files, FailureKind, FileError};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../corpus/regressions")
}

fn corpus_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus())
        .expect("corpus/regressions exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "trace"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no *.trace under {}", corpus().display());
    files
}

#[test]
fn corpus_regressions_replay_clean() {
    let files = corpus_files();
    let failures: Vec<String> = files
        .iter()
        .filter_map(|f| replay_file(f).err().map(|e| e.to_string()))
        .collect();
    assert!(
        failures.is_empty(),
        "failing regression traces:\n{}",
        failures.join("\n")
    );
}

/// Printing a corpus trace and parsing it back gives the same commands and expectations.
#[test]
fn corpus_round_trips_through_print() {
    for f in corpus_files() {
        let name = f.display().to_string();
        let t = parse(&name, &std::fs::read_to_string(&f).unwrap()).unwrap();
        let again = parse(&name, &t.to_string()).unwrap();
        let strip = |t: &ptfuzz_harness::Trace| {
            t.lines
                .iter()
                .map(|l| (l.command.clone(), l.expect))
                .collect::<Vec<_>>()
        };
        assert_eq!(strip(&t), strip(&again), "{name}");
        assert_eq!(t.to_string(), again.to_string(), "{name}");
    }
}

const D0: &str = "domain d0 fmt=arm64-s1 granule=4k ias=48 oas=48\n";

#[test]
fn malformed_traces_name_the_line() {
    let cases: &[(&str, usize, &str)] = &[
        (
            "# c\n\nmap d0 iova=0 pa=0 pgsize=4k count=1 prot=rz\n",
            4,
            "bad.trace:4: map: unknown prot letter 'z'",
        ),
        (
            "map d0 iova=0 pa=0 count=1 prot=r # no pgsize\n",
            2,
            "bad.trace:2: map: missing key pgsize",
        ),
        (
            "lookup d1 iova=0\n",
            2,
            "bad.trace:2: lookup: domain d1 not declared",
        ),
        (
            "\n\nunmap d0 iova=0xzz pgsize=4k count=1\n",
            4,
            "bad.trace:4: unmap: bad number '0xzz'",
        ),
        (
            "lookup d0 iova=0 -> pa=0x1 none\n",
            2,
            "bad.trace:2: lookup: contradictory expectation: pa and none",
        ),
        (
            "map d0 iova=0 pa=0 pgsize=4k count=1 prot=r -> ok fine\n",
            2,
            "bad.trace:2: map: unknown expectation field 'fine'",
        ),
        (
            "map d0 iova=0 pa=0 pgsize=4k count=1 prot=r colour=red\n",
            2,
            "bad.trace:2: map: unknown key colour",
        ),
    ];
    for (body, line, msg) in cases {
        let e = parse("bad.trace", &format!("{D0}{body}")).unwrap_err();
        assert_eq!((e.line, e.to_string()), (*line, msg.to_string()), "{body}");
    }
    // a domain line is parsed like any other
    let e = parse("bad.trace", "domain d0 fmt=arm64-s1 granule=4k ias=48\n").unwrap_err();
    assert_eq!((e.line, e.kind), (1, ParseErrorKind::MissingKey("oas")));
}

fn replay_text(text: &str) -> Result<usize, ptfuzz_harness::Failure> {
    replay("t.trace", &parse("t.trace", text).unwrap()).map(|s| s.ops)
}

#[test]
fn wrong_expectation_fails_at_its_line() {
    let text = format!(
        "{D0}map d0 iova=0x200000 pa=0x40200000 pgsize=2m count=1 prot=rw -> ok mapped=0x200000\n\
         lookup d0 iova=0x201234 -> pa=0x40201235\n\
         lookup d0 iova=0 -> none\n"
    );
    let f = replay_text(&text).unwrap_err();
    assert_eq!(f.line, 3);
    assert!(matches!(*f.kind, FailureKind::Mismatch { .. }));
    assert_eq!(
        f.to_string(),
        "t.trace:3: lookup d0 iova=0x201234: expected `pa=0x40201235`, got `pa=0x40201234`"
    );
    // and the same trace with the right value passes, counting 3 ops
    assert_eq!(
        replay_text(&text.replace("0x40201235", "0x40201234")).unwrap(),
        3
    );
}

#[test]
fn refused_domains() {
    let bad = "domain d0 fmt=arm64-s1 granule=4k ias=49 oas=48";
    // refused without `-> err=inval`: reported
    let f = replay_text(&format!("{bad}\n")).unwrap_err();
    assert_eq!(
        f.to_string(),
        format!("t.trace:1: {bad}: expected `ok`, got `err=inval`")
    );
    // refused as expected, but then used: reported at the use
    let f = replay_text(&format!("{bad} -> err=inval\nlookup d0 iova=0\n")).unwrap_err();
    assert_eq!(
        (f.line, *f.kind),
        (
            2,
            FailureKind::RefusedDomain {
                name: "d0".into(),
                line: 1
            }
        )
    );
    assert_eq!(replay_text(&format!("{bad} -> err=inval\n")).unwrap(), 0);
}

#[test]
fn replay_files_prints_one_line_per_file() {
    let dir = std::env::temp_dir().join(format!("ptfuzz-replay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.trace");
    let wrong = dir.join("wrong.trace");
    std::fs::write(&good, format!("{D0}lookup d0 iova=0 -> none\n")).unwrap();
    std::fs::write(&wrong, format!("{D0}lookup d0 iova=0 -> pa=0\n")).unwrap();
    let missing = dir.join("missing.trace");
    let mut out = Vec::new();
    let failed = replay_files(&[good.clone(), wrong.clone(), missing.clone()], &mut out).unwrap();
    let out = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(failed, 2);
    assert_eq!(lines[0], format!("PASS {} (1 ops)", good.display()));
    assert_eq!(
        lines[1],
        format!(
            "FAIL {}:2: lookup d0 iova=0: expected `pa=0`, got `none`",
            wrong.display()
        )
    );
    assert!(
        lines[2].starts_with(&format!("FAIL {}: ", missing.display())),
        "{}",
        lines[2]
    );
    assert!(matches!(replay_file(&missing), Err(FileError::Io { .. })));
    std::fs::remove_dir_all(&dir).unwrap();
}
