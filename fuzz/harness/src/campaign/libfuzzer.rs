//! The campaign's libFuzzer engine: the cargo-fuzz targets, built as `.ci/fuzz.sh` builds
//! them (ASan on nightly, `--sanitizer none` on stable, coverage from the engine and the
//! executor only), all targets at once for the whole campaign, each in libFuzzer's fork mode
//! with its share of the workers and one corpus folder (seeded from `corpus/<target>`).
//! Status lines become the samples of the report (with coverage); crash files are run again
//! in this process to get their signature and trace, then triaged like the swarm's.

use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use crate::target::TargetName;

/// Where the built targets are.
#[derive(Clone, Debug)]
pub struct Build {
    pub binaries: PathBuf,
    pub sanitizer: String,
}

/// Whether cargo-fuzz is installed (the engine `auto` then picks libFuzzer).
pub fn available() -> bool {
    super::external::cargo_has("fuzz")
}

/// Builds every target through `.ci/fuzz.sh libfuzzer-build` (a no-op when CI built them).
pub fn build(root: &Path) -> io::Result<Build> {
    let line = super::external::fuzz_sh_build(root, "libfuzzer-build")?;
    // `<folder> sanitizer: <name>`
    let mut w = line.split_whitespace();
    Ok(Build {
        binaries: w.next().map(PathBuf::from).unwrap_or_default(),
        sanitizer: w.nth(1).unwrap_or("?").to_string(),
    })
}

/// One status line of libFuzzer (plain or fork mode).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Status {
    pub execs: u64,
    pub coverage: u64,
    pub features: u64,
    pub corpus: u64,
    pub exec_per_sec: u64,
    pub crashes: u64,
}

/// Parses `#N ... cov: C ft: F corp: K[/size] exec/s: E ... oom/timeout/crash: a/b/c`.
pub fn parse_status(line: &str) -> Option<Status> {
    let rest = line.strip_prefix('#')?;
    let execs: u64 = rest
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()?;
    let field = |key: &str| -> Option<u64> {
        let after = line.split(key).nth(1)?;
        let tok = after.split_whitespace().next()?;
        tok.split('/').next()?.parse().ok()
    };
    Some(Status {
        execs,
        coverage: field(" cov: ")?,
        features: field(" ft: ").unwrap_or(0),
        corpus: field(" corp: ").unwrap_or(0),
        exec_per_sec: field(" exec/s: ").unwrap_or(0),
        crashes: line
            .split(" oom/timeout/crash: ")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .and_then(|s| s.rsplit('/').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0),
    })
}

/// A running fuzzer: a reader thread keeps `status` at its last status line.
pub struct Running {
    pub target: TargetName,
    pub child: std::process::Child,
    pub artifacts: PathBuf,
    pub corpus: PathBuf,
    pub status: Arc<Mutex<Status>>,
}

/// Starts `t` in fork mode with `jobs` workers for `seconds`, its corpus and artifacts under
/// `work`.
pub fn start(
    b: &Build,
    t: TargetName,
    seeds: &Path,
    work: &Path,
    jobs: usize,
    seconds: u64,
) -> io::Result<Running> {
    let corpus = work.join("corpus").join(t.as_str());
    let artifacts = work.join("artifacts").join(t.as_str());
    std::fs::create_dir_all(&corpus)?;
    std::fs::create_dir_all(&artifacts)?;
    if let Ok(entries) = std::fs::read_dir(seeds) {
        for e in entries.flatten() {
            let _ = std::fs::copy(e.path(), corpus.join(e.file_name()));
        }
    }
    let mut child = Command::new(b.binaries.join(t.as_str()))
        .arg(&corpus)
        .arg(format!("-max_total_time={seconds}"))
        .arg(format!("-fork={}", jobs.max(1)))
        .arg("-ignore_crashes=1")
        .arg("-ignore_timeouts=1")
        .arg("-ignore_ooms=1")
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .arg("-max_len=4096")
        .arg("-timeout=20")
        .arg("-print_final_stats=1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let err = child.stderr.take().expect("piped");
    let status = Arc::new(Mutex::new(Status::default()));
    let last = status.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if let Some(s) = parse_status(&line) {
                *last.lock().unwrap_or_else(|p| p.into_inner()) = s;
            }
        }
    });
    Ok(Running {
        target: t,
        child,
        artifacts,
        corpus,
        status,
    })
}

/// The crash files a run left (`crash-*`, `timeout-*`, `oom-*`, `leak-*`), by name.
pub fn crash_files(artifacts: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(artifacts)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.retain(|p| {
        let n = p
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        ["crash-", "timeout-", "oom-", "leak-"]
            .iter()
            .any(|k| n.starts_with(k))
    });
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_of_both_modes() {
        let plain = "#4096\tpulse  cov: 1289 ft: 4001 corp: 610/40Kb exec/s: 2048 rss: 90Mb";
        assert_eq!(
            parse_status(plain),
            Some(Status {
                execs: 4096,
                coverage: 1289,
                features: 4001,
                corpus: 610,
                exec_per_sec: 2048,
                crashes: 0
            })
        );
        let fork = "#130519: cov: 1350 ft: 5012 corp: 702 exec/s: 4310 oom/timeout/crash: 0/0/3 time: 31s job: 12 dft_time: 0";
        let s = parse_status(fork).unwrap();
        assert_eq!(
            (s.execs, s.coverage, s.corpus, s.exec_per_sec, s.crashes),
            (130519, 1350, 702, 4310, 3)
        );
        assert_eq!(parse_status("INFO: Seed: 1"), None);
        assert_eq!(parse_status("#0\tREAD units: 12"), None);
    }
}
