//! Linux's io-pgtable-arm KUnit selftest, re-stated as traces (corpus/linux-selftest/, written
//! by .ci/gen-linux-selftest.py): all 63 configurations replay clean at stage 1 and stage 2.
//! With `concat=max` (the deepest stage-2 start level) the 12 stage-2 IAS-32 configurations
//! with a 4K or 64K granule lose their 1G / 512M leaves and fail, as the engine did before
//! its default followed Linux.

use std::path::{Path, PathBuf};

use ptfuzz_harness::trace::parse;
use ptfuzz_harness::{replay, replay_file};

fn corpus_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../corpus/linux-selftest");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "trace"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_selftest_configuration_passes() {
    let files = corpus_files();
    // {4K,2M,1G}, {16K,32M}, {64K,512M} x IAS <= OAS in {32, 36, 40, 42, 44, 48}
    assert_eq!(files.len(), 63, "expected 63 configurations");
    let failures: Vec<String> = files
        .iter()
        .filter_map(|f| replay_file(f).err().map(|e| e.to_string()))
        .collect();
    assert!(
        failures.is_empty(),
        "failing selftest traces:\n{}",
        failures.join("\n")
    );
}

#[test]
fn concat_max_fails_exactly_the_ias32_4k_and_64k_stage2_configurations() {
    let mut failed = Vec::new();
    for f in corpus_files() {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&f).unwrap();
        let max: String = text
            .lines()
            .map(|l| {
                if l.starts_with("domain s2 ") {
                    format!("{l} concat=max\n")
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        assert_ne!(text, max, "{name}: no stage-2 domain line");
        if let Err(e) = replay(&name, &parse(&name, &max).unwrap()) {
            assert!(e.to_string().contains("got `err=inval mapped=0`"), "{e}");
            failed.push(name);
        }
    }
    let expect: Vec<String> = ["4k", "64k"]
        .iter()
        .flat_map(|g| [32, 36, 40, 42, 44, 48].map(|oas| format!("{g}-ias32-oas{oas}.trace")))
        .collect();
    assert_eq!(failed, expect);
}
