//! `ptfuzz corpus`: gathering inputs from anywhere (libFuzzer artifacts and corpora, AFL
//! `queue/` and `crashes/`, OSS-Fuzz testcases, a campaign's `crashes/*.bin`) into one
//! corpus folder of a target, and shrinking a folder by coverage with libFuzzer's merge.
//!
//! `merge` runs every file once: passing inputs are copied into the corpus under the hash of
//! their bytes (so a file already there is not copied twice), crashing ones into a
//! `crashes/` folder beside it with their signature printed, and unreadable or undecodable
//! files are reported and skipped. Nothing is moved or deleted.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::target::{run_bytes, TargetName, Verdict};

/// What a merge did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MergeStats {
    /// Inputs copied into the corpus (new contents).
    pub added: usize,
    /// Inputs whose contents the corpus already had.
    pub present: usize,
    /// Crashing inputs, by signature.
    pub crashes: BTreeMap<String, usize>,
    /// Files that could not be read or decoded (reported, skipped).
    pub skipped: usize,
}

/// FNV-1a of the bytes: a stable file name for the same contents (std's hasher may change
/// between Rust releases).
fn content_hash(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Every file under `sources` (folders are walked, hidden files and README-like text
/// skipped), sorted, so a merge is deterministic.
fn files(sources: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack: Vec<PathBuf> = sources.to_vec();
    while let Some(p) = stack.pop() {
        if p.is_dir() {
            if let Ok(rd) = std::fs::read_dir(&p) {
                stack.extend(rd.flatten().map(|e| e.path()));
            }
        } else {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            if !name.starts_with('.') && name != "README.txt" {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Merges the inputs found under `sources` into `into` (created when missing).
pub fn merge(
    t: TargetName,
    sources: &[PathBuf],
    into: &Path,
    out: &mut dyn Write,
) -> io::Result<MergeStats> {
    std::fs::create_dir_all(into)?;
    let crash_dir = into.parent().unwrap_or(Path::new(".")).join("crashes");
    let mut stats = MergeStats::default();
    for f in files(sources) {
        let data = match std::fs::read(&f) {
            Ok(d) => d,
            Err(e) => {
                stats.skipped += 1;
                writeln!(out, "skipped {}: {e}", f.display())?;
                continue;
            }
        };
        if super::repro::trace_of(&data).is_some() {
            stats.skipped += 1;
            writeln!(
                out,
                "skipped {}: a trace, not a raw input (`ptfuzz repro` runs it)",
                f.display()
            )?;
            continue;
        }
        let name = format!("{}-{:016x}", t.as_str(), content_hash(&data));
        match run_bytes(t, &data) {
            Verdict::Undecodable => {
                stats.skipped += 1;
                writeln!(out, "skipped {}: not an input of {t}", f.display())?;
            }
            Verdict::Pass(_) => {
                let dst = into.join(&name);
                if dst.exists() {
                    stats.present += 1;
                } else {
                    std::fs::write(&dst, &data)?;
                    stats.added += 1;
                }
            }
            Verdict::Crash(finding) => {
                std::fs::create_dir_all(&crash_dir)?;
                std::fs::write(crash_dir.join(&name), &data)?;
                writeln!(
                    out,
                    "crash {} -> {}: {}",
                    f.display(),
                    crash_dir.join(&name).display(),
                    finding.signature
                )?;
                *stats.crashes.entry(finding.signature).or_default() += 1;
            }
        }
    }
    writeln!(
        out,
        "{t}: {} added, {} already there, {} crashing ({} signatures), {} skipped; corpus {}",
        stats.added,
        stats.present,
        stats.crashes.values().sum::<usize>(),
        stats.crashes.len(),
        stats.skipped,
        into.display()
    )?;
    Ok(stats)
}

/// Shrinks `dir` to the inputs libFuzzer needs for the same coverage (`-merge=1` into a new
/// folder, which then replaces `dir`'s contents; the old files stay in `dir.orig`).
pub fn minimize(root: &Path, t: TargetName, dir: &Path, out: &mut dyn Write) -> io::Result<()> {
    let build = super::libfuzzer::build(root)?;
    let fresh = dir.with_extension("min");
    let _ = std::fs::remove_dir_all(&fresh);
    std::fs::create_dir_all(&fresh)?;
    let status = std::process::Command::new(build.binaries.join(t.as_str()))
        .arg("-merge=1")
        .arg(&fresh)
        .arg(dir)
        .status()?;
    if !status.success() {
        return Err(io::Error::other(format!(
            "libFuzzer's merge of {} failed: {status}",
            dir.display()
        )));
    }
    let before = std::fs::read_dir(dir)?.count();
    let after = std::fs::read_dir(&fresh)?.count();
    let orig = dir.with_extension("orig");
    let _ = std::fs::remove_dir_all(&orig);
    std::fs::rename(dir, &orig)?;
    std::fs::rename(&fresh, dir)?;
    writeln!(
        out,
        "{t}: {before} inputs -> {after} with the same coverage; the old ones are in {}",
        orig.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_copies_once_reports_what_it_skips_and_loses_nothing() {
        let dir = std::env::temp_dir().join(format!("ptfuzz-corpus-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let src = dir.join("from");
        std::fs::create_dir_all(src.join("sub")).unwrap();
        let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../corpus/ioasid");
        let mut n = 0;
        for e in std::fs::read_dir(&seeds).unwrap().flatten() {
            std::fs::copy(e.path(), src.join("sub").join(e.file_name())).unwrap();
            n += 1;
        }
        // The same contents again under another name, and a file that cannot be read.
        let first = std::fs::read_dir(src.join("sub"))
            .unwrap()
            .flatten()
            .next()
            .unwrap()
            .path();
        std::fs::copy(&first, src.join("copy")).unwrap();
        std::fs::create_dir_all(src.join("unreadable")).unwrap();
        std::fs::write(
            src.join("a.trace"),
            "domain d0 fmt=arm64-s1 granule=4k ias=48 oas=48\n",
        )
        .unwrap();
        let into = dir.join("corpus");
        let mut out = Vec::new();
        let s = merge(
            TargetName::Ioasid,
            &[src.clone(), dir.join("missing-file")],
            &into,
            &mut out,
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(s.added, n, "{text}");
        assert_eq!(s.present, 1, "{text}");
        assert!(s.crashes.is_empty(), "{text}");
        assert_eq!(
            s.skipped, 2,
            "the missing file and the trace are reported: {text}"
        );
        assert!(
            text.contains("missing-file") && text.contains("a.trace: a trace"),
            "{text}"
        );
        assert_eq!(std::fs::read_dir(&into).unwrap().count(), n);
        // Nothing was moved or deleted from the sources.
        assert_eq!(std::fs::read_dir(src.join("sub")).unwrap().count(), n);
        // A second merge adds nothing.
        let s = merge(TargetName::Ioasid, &[src], &into, &mut Vec::new()).unwrap();
        assert_eq!((s.added, s.present), (0, n + 1));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
