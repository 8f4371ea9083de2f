//! Line coverage of `engine/` by the inputs a campaign kept: `.ci/coverage.sh` builds each
//! target with `cargo fuzz coverage`, runs the corpora, merges the profiles and has the
//! nightly toolchain's llvm-cov write an HTML report and a JSON summary, read here for the
//! report page's summary and per-file table.

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use crate::target::TargetName;

/// Lines of one source file, or of all of them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Lines {
    pub count: u64,
    pub covered: u64,
}

impl Lines {
    pub fn percent(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            100.0 * self.covered as f64 / self.count as f64
        }
    }
}

/// What the coverage run measured.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EngineCoverage {
    pub total: Lines,
    /// By file, relative to `engine/src`.
    pub files: Vec<(String, Lines)>,
    /// The HTML report, relative to the campaign folder.
    pub html: String,
    /// Which inputs were run, per target (for the reader: a swarm keeps no corpus).
    pub inputs: Vec<(TargetName, String)>,
}

/// The part of `llvm-cov export -summary-only` read here.
#[derive(Deserialize)]
struct Export {
    data: Vec<ExportData>,
}

#[derive(Deserialize)]
struct ExportData {
    files: Vec<ExportFile>,
    totals: ExportSummary,
}

#[derive(Deserialize)]
struct ExportFile {
    filename: String,
    summary: ExportSummary,
}

#[derive(Deserialize)]
struct ExportSummary {
    lines: ExportLines,
}

#[derive(Deserialize)]
struct ExportLines {
    count: u64,
    covered: u64,
}

/// Reads llvm-cov's JSON summary; file names are cut to what follows `engine/src/`.
pub fn parse_summary(json: &str) -> io::Result<(Lines, Vec<(String, Lines)>)> {
    let e: Export = serde_json::from_str(json).map_err(io::Error::other)?;
    let d = e
        .data
        .into_iter()
        .next()
        .ok_or_else(|| io::Error::other("llvm-cov summary holds no data"))?;
    let lines = |s: &ExportSummary| Lines {
        count: s.lines.count,
        covered: s.lines.covered,
    };
    let mut files: Vec<(String, Lines)> = d
        .files
        .iter()
        .map(|f| {
            let name = f
                .filename
                .rsplit_once("engine/src/")
                .map_or(f.filename.as_str(), |(_, n)| n);
            (name.to_string(), lines(&f.summary))
        })
        .collect();
    files.sort_by(|a, b| a.0.cmp(&b.0));
    Ok((lines(&d.totals), files))
}

/// One target's inputs for the coverage run: corpus folders or files, and how to say it.
pub struct Inputs {
    pub target: TargetName,
    pub paths: Vec<PathBuf>,
    pub what: String,
}

/// Runs `.ci/coverage.sh` under `root` over `inputs`, writing into `out/coverage/`.
pub fn measure(root: &Path, out: &Path, inputs: &[Inputs]) -> io::Result<EngineCoverage> {
    let dir = out.join("coverage");
    let mut cmd = Command::new("bash");
    cmd.arg(root.join(".ci/coverage.sh")).arg(&dir);
    let mut used = Vec::new();
    for i in inputs {
        let paths: Vec<String> = i
            .paths
            .iter()
            .filter(|p| p.exists())
            .map(|p| p.display().to_string())
            .collect();
        if paths.is_empty() {
            continue;
        }
        cmd.arg(format!("{}={}", i.target, paths.join(":")));
        used.push((i.target, i.what.clone()));
    }
    if used.is_empty() {
        return Err(io::Error::other("no inputs to measure coverage with"));
    }
    let status = cmd
        .current_dir(root)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .status()?;
    if !status.success() {
        return Err(io::Error::other(format!(
            ".ci/coverage.sh failed ({status})"
        )));
    }
    let (total, files) = parse_summary(&std::fs::read_to_string(dir.join("summary.json"))?)?;
    Ok(EngineCoverage {
        total,
        files,
        html: "coverage/html/index.html".into(),
        inputs: used,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_llvm_cov_summary() {
        let json = r#"{"data":[{"files":[
            {"filename":"/x/engine/src/domain.rs","summary":{"lines":{"count":10,"covered":7,"percent":70.0}}},
            {"filename":"/x/engine/src/alloc.rs","summary":{"lines":{"count":4,"covered":1,"percent":25.0}}}],
            "totals":{"lines":{"count":14,"covered":8,"percent":57.1}}}],"type":"llvm.coverage.json.export","version":"2.0.1"}"#;
        let (t, f) = parse_summary(json).unwrap();
        assert_eq!(
            t,
            Lines {
                count: 14,
                covered: 8
            }
        );
        assert!((t.percent() - 57.142).abs() < 0.01);
        assert_eq!(f[0].0, "alloc.rs");
        assert_eq!(
            f[1],
            (
                "domain.rs".to_string(),
                Lines {
                    count: 10,
                    covered: 7
                }
            )
        );
        assert!(parse_summary(r#"{"data":[]}"#).is_err());
    }
}
