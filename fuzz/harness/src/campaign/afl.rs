//! The campaign's AFL++ engine: the cargo-afl targets, built as `.ci/fuzz.sh afl-build`
//! builds them (coverage from the engine and the executor only), every target at once, each
//! as one main instance and secondaries on a shared sync folder (AFL's own way to spread a
//! target over cores). Progress comes from each instance's `fuzzer_stats`, asked to refresh
//! every second; crash files are run again in this process to be signed and triaged.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::libfuzzer::Status;
use crate::target::TargetName;

/// Whether cargo-afl is installed (the engine `auto` then picks AFL when cargo-fuzz is not).
pub fn available() -> bool {
    super::external::cargo_has("afl")
}

/// Builds every target through `.ci/fuzz.sh afl-build`; returns the binaries' folder.
pub fn build(root: &Path) -> io::Result<PathBuf> {
    super::external::fuzz_sh_build(root, "afl-build").map(PathBuf::from)
}

/// A target's instances: the main one first.
pub struct Running {
    pub target: TargetName,
    pub children: Vec<Child>,
    /// The sync folder; each instance has its `queue/` and `crashes/` in a subfolder.
    pub sync: PathBuf,
}

/// Starts `jobs` instances of `t` for `seconds` on seeds `seeds`, under `work/<target>`.
pub fn start(
    binaries: &Path,
    t: TargetName,
    seeds: &Path,
    work: &Path,
    jobs: usize,
    seconds: u64,
) -> io::Result<Running> {
    let sync = work.join(t.as_str());
    if sync.exists() {
        std::fs::remove_dir_all(&sync)?;
    }
    std::fs::create_dir_all(&sync)?;
    let mut children = Vec::new();
    for j in 0..jobs.max(1) {
        let (role, name) = if j == 0 {
            ("-M", "main".to_string())
        } else {
            ("-S", format!("s{j}"))
        };
        let log = File::create(sync.join(format!("{name}.log")))?;
        let child = Command::new("cargo")
            .args(["afl", "fuzz", "-i"])
            .arg(seeds)
            .arg("-o")
            .arg(&sync)
            .args([role, &name, "-V", &seconds.to_string()])
            .arg(binaries.join(t.as_str()))
            // No screen, no CPU binding (several targets share the cores), stats every
            // second for the progress display, crashing seeds skipped rather than fatal.
            .env("AFL_NO_UI", "1")
            .env("AFL_NO_AFFINITY", "1")
            .env("AFL_SKIP_CPUFREQ", "1")
            .env("AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES", "1")
            .env("AFL_NO_WARN_INSTABILITY", "1")
            .env("AFL_IGNORE_SEED_PROBLEMS", "1")
            .env("AFL_FUZZER_STATS_UPDATE_INTERVAL", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        children.push(child);
    }
    Ok(Running {
        target: t,
        children,
        sync,
    })
}

/// Reads `key : value` of a `fuzzer_stats` file.
pub fn stat(text: &str, key: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == key)
            .then(|| v.trim().trim_end_matches('%').parse().ok())
            .flatten()
    })
}

/// The instances' statistics, summed (executions, rate, crashes) or the largest (edges,
/// corpus: the instances share their finds through the sync folder).
pub fn status(r: &Running) -> Status {
    let mut s = Status::default();
    for dir in instances(&r.sync) {
        let Ok(text) = std::fs::read_to_string(dir.join("fuzzer_stats")) else {
            continue;
        };
        let get = |k| stat(&text, k).unwrap_or(0.0) as u64;
        s.execs += get("execs_done");
        s.exec_per_sec += get("execs_per_sec");
        s.crashes += get("saved_crashes");
        s.coverage = s.coverage.max(get("edges_found"));
        s.corpus = s.corpus.max(get("corpus_count"));
    }
    s
}

fn instances(sync: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(sync)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The crash files of every instance (`crashes/id:*`), by path.
pub fn crash_files(r: &Running) -> Vec<PathBuf> {
    files_named(r, "crashes")
}

/// The queues of every instance: the corpus AFL kept.
pub fn queues(r: &Running) -> Vec<PathBuf> {
    instances(&r.sync)
        .into_iter()
        .map(|d| d.join("queue"))
        .filter(|q| q.is_dir())
        .collect()
}

fn files_named(r: &Running, sub: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = instances(&r.sync)
        .iter()
        .flat_map(|d| {
            std::fs::read_dir(d.join(sub))
                .map(|e| e.flatten().map(|e| e.path()).collect::<Vec<_>>())
                .unwrap_or_default()
        })
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("id:"))
        })
        .collect();
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fuzzer_stats() {
        let text = "start_time        : 1765000000\nexecs_done        : 81234\n\
                    execs_per_sec     : 4021.37\nstability         : 97.23%\n\
                    edges_found       : 812\nsaved_crashes     : 2\n";
        assert_eq!(stat(text, "execs_done"), Some(81234.0));
        assert_eq!(stat(text, "execs_per_sec"), Some(4021.37));
        assert_eq!(stat(text, "stability"), Some(97.23));
        assert_eq!(stat(text, "edges_found"), Some(812.0));
        assert_eq!(stat(text, "corpus_count"), None);
    }
}
