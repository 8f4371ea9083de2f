//! A coverage-guided fuzzer running one target in processes of its own (libFuzzer, AFL++):
//! what the campaign asks of it while it runs and after, whatever the engine.

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::libfuzzer::Status;
use super::{afl, libfuzzer};
use crate::target::TargetName;

/// Whether `cargo <sub>` is installed (cargo-fuzz, cargo-afl).
pub fn cargo_has(sub: &str) -> bool {
    Command::new("cargo")
        .args([sub, "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs `.ci/fuzz.sh <verb>` under `root`; returns the rest of its last `binaries: ` line.
pub fn fuzz_sh_build(root: &Path, verb: &str) -> io::Result<String> {
    let out = Command::new("bash")
        .arg(root.join(".ci/fuzz.sh"))
        .arg(verb)
        .current_dir(root)
        .stderr(Stdio::inherit())
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("binaries: "));
    match (out.status.success(), line) {
        (true, Some(rest)) => Ok(rest.trim().to_string()),
        _ => Err(io::Error::other(format!(
            "`.ci/fuzz.sh {verb}` failed ({}):\n{text}",
            out.status
        ))),
    }
}

pub trait External {
    fn target(&self) -> TargetName;
    /// The latest statistics (executions, coverage, crashes).
    fn status(&self) -> Status;
    /// Whether every process of it has exited.
    fn finished(&mut self) -> io::Result<bool>;
    /// Stops it (it overran its time).
    fn kill(&mut self);
    /// The crashing inputs it saved.
    fn crash_files(&self) -> Vec<PathBuf>;
    /// Where the inputs it kept are (folders), for the coverage run.
    fn corpus(&self) -> Vec<PathBuf>;
}

impl External for libfuzzer::Running {
    fn target(&self) -> TargetName {
        self.target
    }

    fn status(&self) -> Status {
        *self.status.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn finished(&mut self) -> io::Result<bool> {
        Ok(self.child.try_wait()?.is_some())
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
    }

    fn crash_files(&self) -> Vec<PathBuf> {
        libfuzzer::crash_files(&self.artifacts)
    }

    fn corpus(&self) -> Vec<PathBuf> {
        vec![self.corpus.clone()]
    }
}

impl External for afl::Running {
    fn target(&self) -> TargetName {
        self.target
    }

    fn status(&self) -> Status {
        afl::status(self)
    }

    fn finished(&mut self) -> io::Result<bool> {
        let mut all = true;
        for c in &mut self.children {
            all &= c.try_wait()?.is_some();
        }
        Ok(all)
    }

    fn kill(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
        }
    }

    fn crash_files(&self) -> Vec<PathBuf> {
        afl::crash_files(self)
    }

    fn corpus(&self) -> Vec<PathBuf> {
        afl::queues(self)
    }
}
