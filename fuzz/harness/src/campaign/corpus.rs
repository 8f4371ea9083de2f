//! `ptfuzz corpus`: gathering inputs from anywhere (libFuzzer artifacts and corpora, AFL
//! `queue/` and `crashes/`, OSS-Fuzz testcases, a campaign's `crashes/*.bin`) into one
//! corpus folder of a target, and shrinking a folder by coverage with libFuzzer's merge.
//!
//! `merge` runs every file once: passing inputs are copied into the corpus under the hash of
//! their bytes (so a file already there is not copied twice), crashing ones into a
//! `crashes/` folder beside it with their signature printed, and unreadable or undecodable
//! files are reported and skipped. Nothing is moved or deleted.
//!
//! `import` takes crash files only (libFuzzer artifacts, AFL `crashes/`, OSS-Fuzz
//! testcases), runs each twice and files it by signature, the first of each signature with
//! a minimised readable trace, as a campaign saves its crashes.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::signature::short_hash;
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

/// What an import did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportStats {
    /// Crash files that reproduced, by signature.
    pub filed: BTreeMap<String, usize>,
    /// Crash files whose contents were already filed.
    pub present: usize,
    /// Crash files that passed here (twice), or gave a different result the second time:
    /// kept under `not-reproduced/`.
    pub not_reproduced: usize,
    /// Files that could not be read, were empty, did not decode, or were traces.
    pub skipped: usize,
    /// Files under the folders walked that are no crash artifact (AFL's `queue/`, corpora).
    pub ignored: usize,
}

/// Whether a file found in a folder is a crash a fuzzing engine left: libFuzzer's
/// `crash-`, `oom-`, `timeout-`, `leak-` and `slow-unit-` artifacts, AFL's `id:…` files in
/// `crashes/` or `hangs/`, OSS-Fuzz's `clusterfuzz-testcase-…`.
pub fn is_crash_artifact(p: &Path) -> bool {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let folder = p
        .parent()
        .and_then(|d| d.file_name())
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    [
        "crash-",
        "oom-",
        "timeout-",
        "leak-",
        "slow-unit-",
        "clusterfuzz-testcase-",
    ]
    .iter()
    .any(|pre| name.starts_with(pre))
        || (name.starts_with("id:") && (folder == "crashes" || folder == "hangs"))
}

/// Imports the crash files under `sources` (files named on the command line are taken
/// whatever their name; in folders, only [`is_crash_artifact`] ones) into `into`: each is
/// run twice; one that crashes alike both times is copied to `into/<hash of its
/// signature>/` and the first of each signature is minimised and saved as the readable
/// trace `into/<hash>.trace` (as a campaign saves its crashes); one that passes is copied
/// to `into/not-reproduced/`. Unreadable, empty, undecodable files and traces are reported
/// and skipped. Sources are only read.
pub fn import(
    t: TargetName,
    sources: &[PathBuf],
    into: &Path,
    out: &mut dyn Write,
) -> io::Result<ImportStats> {
    import_with(t, &|d| run_bytes(t, d), sources, into, out)
}

/// [`import`], running each file with `run`.
fn import_with(
    t: TargetName,
    run: &dyn Fn(&[u8]) -> Verdict,
    sources: &[PathBuf],
    into: &Path,
    out: &mut dyn Write,
) -> io::Result<ImportStats> {
    let mut stats = ImportStats::default();
    let mut found = Vec::new();
    for s in sources {
        if s.is_dir() {
            for f in files(std::slice::from_ref(s)) {
                if is_crash_artifact(&f) {
                    found.push(f);
                } else {
                    stats.ignored += 1;
                }
            }
        } else {
            found.push(s.clone());
        }
    }
    for f in found {
        let skip = |why: String, stats: &mut ImportStats, out: &mut dyn Write| {
            stats.skipped += 1;
            writeln!(out, "skipped {}: {why}", f.display())
        };
        let data = match std::fs::read(&f) {
            Ok(d) if d.is_empty() => {
                skip("empty".into(), &mut stats, out)?;
                continue;
            }
            Ok(d) => d,
            Err(e) => {
                skip(e.to_string(), &mut stats, out)?;
                continue;
            }
        };
        if super::repro::trace_of(&data).is_some() {
            skip(
                "a trace, not a raw input (`ptfuzz repro` runs it)".into(),
                &mut stats,
                out,
            )?;
            continue;
        }
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let (first, second) = (run(&data), run(&data));
        let (folder, finding) = match (first, second) {
            (Verdict::Undecodable, _) => {
                skip(format!("not an input of {t}"), &mut stats, out)?;
                continue;
            }
            (Verdict::Crash(a), Verdict::Crash(b)) if a.signature == b.signature => {
                (into.join(short_hash(&a.signature)), Some(a))
            }
            _ => (into.join("not-reproduced"), None),
        };
        let Some(dst) = place(&folder, &name, &data)? else {
            stats.present += 1;
            writeln!(
                out,
                "present {}: already in {}",
                f.display(),
                folder.display()
            )?;
            continue;
        };
        let Some(finding) = finding else {
            stats.not_reproduced += 1;
            writeln!(
                out,
                "not reproduced {} -> {}: passes here (or not twice alike)",
                f.display(),
                dst.display()
            )?;
            continue;
        };
        let n = stats.filed.entry(finding.signature.clone()).or_default();
        *n += 1;
        if *n == 1 {
            let trace = finding
                .trace
                .clone()
                .ok_or_else(|| format!("no trace: {}", finding.message));
            let found_by = format!("{t} crash file {}", f.display());
            // `None`: the trace sits beside its signature's folder of raw files.
            let rec = super::triage::save(
                into,
                None,
                &found_by,
                &finding.signature,
                || trace,
                &finding.message,
                super::minimize::Limits::default(),
            )?;
            let file = into.join(rec.file.trim_start_matches("crashes/"));
            writeln!(
                out,
                "crash {} -> {}: {}
  trace: {} ({} ops after minimising{})",
                f.display(),
                dst.display(),
                finding.signature,
                file.display(),
                rec.ops_after_minimise,
                if rec.reproduces {
                    ", replays twice"
                } else {
                    "; the trace alone does not reproduce it, the raw file does"
                }
            )?;
        } else {
            writeln!(
                out,
                "crash {} -> {}: {}",
                f.display(),
                dst.display(),
                finding.signature
            )?;
        }
    }
    writeln!(
        out,
        "{t}: {} crash files filed under {} signatures, {} already there, {} not reproduced, \
         {} skipped, {} other files ignored; in {}",
        stats.filed.values().sum::<usize>(),
        stats.filed.len(),
        stats.present,
        stats.not_reproduced,
        stats.skipped,
        stats.ignored,
        into.display()
    )?;
    Ok(stats)
}

/// Copies `data` into `folder` as `name` (or `name-<hash>` when another content has that
/// name); `None` when the folder already holds these bytes.
fn place(folder: &Path, name: &str, data: &[u8]) -> io::Result<Option<PathBuf>> {
    std::fs::create_dir_all(folder)?;
    for e in std::fs::read_dir(folder)?.flatten() {
        if std::fs::read(e.path()).is_ok_and(|d| d == data) {
            return Ok(None);
        }
    }
    let mut dst = folder.join(name);
    if dst.exists() {
        dst = folder.join(format!("{name}-{:016x}", content_hash(data)));
    }
    std::fs::write(&dst, data)?;
    Ok(Some(dst))
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

    /// A stand-in for a buggy engine: bytes starting 0xc1 or 0xc2 crash with one of two
    /// signatures (a trace whose stated expectation the engine does not meet), 0xc3 crashes
    /// only every other run; everything else runs as a real `pagetable` input.
    fn buggy(data: &[u8]) -> Verdict {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static FLAKY: AtomicUsize = AtomicUsize::new(0);
        let crash = |sig: &str| {
            let text = "domain d0 fmt=arm64-s1 granule=4k ias=48 oas=48\n\
                        lookup d0 iova=0x1000 -> pa=0x5\n";
            Verdict::Crash(crate::target::Finding {
                signature: sig.into(),
                kind: None,
                message: format!("planted: {sig}"),
                trace: Some(crate::trace::parse("planted", text).unwrap()),
            })
        };
        match data.first() {
            Some(0xc1) => crash("mismatch lookup"),
            Some(0xc2) => crash("mismatch lookup, again"),
            Some(0xc3) if FLAKY.fetch_add(1, Ordering::Relaxed).is_multiple_of(2) => crash("flaky"),
            _ => run_bytes(TargetName::Pagetable, data),
        }
    }

    #[test]
    fn import_files_crashes_by_signature_and_loses_nothing() {
        let dir = std::env::temp_dir().join(format!("ptfuzz-import-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        // libFuzzer artifacts, an AFL output folder, an OSS-Fuzz testcase.
        let art = dir.join("artifacts");
        let afl = dir.join("afl/default");
        for d in [&art, &afl.join("crashes"), &afl.join("queue")] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(art.join("crash-aa"), [0xc1, 1, 2]).unwrap();
        std::fs::write(art.join("oom-bb"), [0xc1, 9]).unwrap();
        std::fs::write(art.join("timeout-cc"), [7u8; 30]).unwrap();
        std::fs::write(art.join("crash-empty"), []).unwrap();
        std::fs::write(art.join("crash-flaky"), [0xc3]).unwrap();
        std::fs::write(
            art.join("crash-trace"),
            "domain d0 fmt=arm64-s1 granule=4k ias=48 oas=48\n",
        )
        .unwrap();
        std::fs::write(afl.join("crashes/id:000000,sig:06"), [0xc2, 5]).unwrap();
        std::fs::write(afl.join("crashes/README.txt"), "AFL's note").unwrap();
        std::fs::write(afl.join("queue/id:000000,orig:seed"), [0xc1, 1]).unwrap();
        let testcase = dir.join("clusterfuzz-testcase-minimized-pagetable-1");
        std::fs::write(&testcase, [0xc1, 1, 2]).unwrap();
        let before = |d: &Path| files(&[d.to_path_buf()]).len();
        let n_sources = before(&dir);
        let into = dir.join("imported");
        let mut out = Vec::new();
        let s = import_with(
            TargetName::Pagetable,
            &buggy,
            &[art.clone(), dir.join("afl"), testcase, dir.join("missing")],
            &into,
            &mut out,
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        let filed: Vec<(&str, usize)> = s.filed.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(
            filed,
            [("mismatch lookup", 2), ("mismatch lookup, again", 1)],
            "{text}"
        );
        assert_eq!(s.present, 1, "the testcase repeats crash-aa: {text}");
        assert_eq!(
            s.not_reproduced, 2,
            "timeout-cc passes, crash-flaky is flaky: {text}"
        );
        assert_eq!(s.skipped, 3, "empty, trace, missing: {text}");
        assert_eq!(
            s.ignored, 1,
            "AFL's queue entry (README.txt is never read): {text}"
        );
        for (why, name) in [("empty", "crash-empty"), ("a trace", "crash-trace")] {
            assert!(text.contains(&format!("{name}: {why}")), "{text}");
        }
        assert!(text.contains("missing"), "{text}");
        // Each signature: a folder with its raw files, and a readable trace beside it.
        let sig_dir = into.join(short_hash("mismatch lookup"));
        let mut names: Vec<String> = std::fs::read_dir(&sig_dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .collect();
        names.sort();
        assert_eq!(names, ["crash-aa", "oom-bb"]);
        let trace = std::fs::read_to_string(sig_dir.with_extension("trace")).unwrap();
        assert!(
            trace.contains("# signature: mismatch lookup") && trace.contains("lookup d0"),
            "{trace}"
        );
        assert!(into
            .join(short_hash("mismatch lookup, again"))
            .join("id:000000,sig:06")
            .exists());
        assert!(into.join("not-reproduced/timeout-cc").exists());
        // The sources are untouched.
        assert_eq!(before(&dir.join("artifacts")), 6);
        assert_eq!(before(&dir) - before(&into), n_sources);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
